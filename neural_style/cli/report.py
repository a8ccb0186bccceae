"""What the commands report about a run: progress lines with an ETA, loss lines, the loss history, TensorBoard
records and contact sheets.

The loss history is a text table (``progress.txt``, NumPy's ``savetxt`` format, as neural-style writes it) and a
log-scale plot (``progress.png``). TensorBoard's ``tf.summary.scalar`` and ``tf.summary.image`` live in the
tensorboard package, which TensorFlow no longer installs; :func:`scalar_summary` and :func:`image_summary` write
the same records (with the plugin metadata TensorBoard reads) through ``tf.summary.write``, to the default summary
writer the caller has set. TensorFlow is imported only by those two.
"""

from __future__ import annotations

import io
import math
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageDraw

from neural_style.config import TERMS

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "LOSS_KEYS",
    "EtaClock",
    "LossHistory",
    "contact_sheet",
    "eta_line",
    "format_table",
    "hms",
    "image_summary",
    "plot_losses",
    "print_losses",
    "remaining_seconds",
    "scalar_summary",
]

LOSS_KEYS = TERMS  # the loss terms, in the order they are printed and written
_COLORS = {"content": (31, 119, 180), "style": (214, 39, 40), "tv": (44, 160, 44), "total": (0, 0, 0)}
ETA_WINDOW = 10  # the ETA follows the mean time of this many recent iterations


def hms(seconds: float) -> str:
    """Seconds as ``1 hr 2 min``, ``3 min 4 sec`` or ``5 sec``."""
    seconds = int(seconds)
    hours, minutes, secs = seconds // 3600, seconds // 60 % 60, seconds % 60
    if hours:
        return f"{hours} hr {minutes} min"
    if minutes:
        return f"{minutes} min {secs} sec"
    return f"{secs} sec"


def remaining_seconds(done: int, total: int, times: Sequence[float]) -> float:
    """The seconds left after ``done`` of ``total`` iterations: the mean of ``times`` (seconds each) per iteration."""
    return sum(times) / len(times) * (total - done) if times else 0.0


def eta_line(done: int, total: int, times: Sequence[float], start: float, extra: str = "") -> str:
    """``Iteration   done/total{extra} (E elapsed, R remaining)``, R from the mean of ``times`` (seconds each)."""
    remaining = remaining_seconds(done, total, times)
    return f"Iteration {done:4d}/{total:4d}{extra} ({hms(time.time() - start)} elapsed, {hms(remaining)} remaining)"


class EtaClock:
    """Times the iterations of a run of ``total`` iterations that began at ``start``, for its progress lines."""

    def __init__(self, total: int, start: float) -> None:
        self.total, self.start = total, start
        self.times: list[float] = []
        self.last = time.time()

    def tick(self, done: int | None, extra: str = "") -> str | None:
        """Marks a record: the progress line after ``done`` iterations in all, or None (and no timing) for a record
        that starts a run (``done`` None)."""
        now = time.time()
        line = None
        if done is not None:
            self.times = (self.times + [now - self.last])[-ETA_WINDOW:]
            line = eta_line(done, self.total, self.times, self.start, extra)
        self.last = now
        return line

    def remaining(self, done: int) -> float:
        """The seconds left after ``done`` iterations, as the progress line gives them."""
        return remaining_seconds(done, self.total, self.times)


def print_losses(losses: Mapping[str, Sequence[float] | np.ndarray], index: int = 0) -> None:
    """Prints the loss terms of image ``index``, one per line, as neural-style does (``  content loss: 1.5``)."""
    for key in LOSS_KEYS:
        print(f"{key + ' loss:':>13s} {float(losses[key][index]):g}")


def format_table(iterations: Sequence[int], losses: Mapping[str, Sequence[float]]) -> str:
    """The rows of ``progress.txt``: a header ``# itr content style tv total`` and one row per iteration.

    The format is NumPy's ``savetxt`` (``np.loadtxt`` reads it back), as neural-style writes it.
    """
    table = np.column_stack([np.asarray(iterations, dtype=np.float64)] + [np.asarray(losses[k]) for k in LOSS_KEYS])
    buffer = io.StringIO()
    np.savetxt(buffer, table, header=" ".join(("itr", *LOSS_KEYS)))
    return buffer.getvalue()


def plot_losses(
    iterations: Sequence[int], losses: Mapping[str, Sequence[float]], size: tuple[int, int] = (640, 400)
) -> Image.Image:
    """Loss terms against iteration on a log scale, one coloured line each, with a legend.

    Non-positive values (a zero loss weight) cannot be drawn on a log scale and are left out.
    """
    width, height = size
    left, right, top, bottom = 70, 20, 20, 40
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    values = [v for k in LOSS_KEYS for v in losses[k] if v > 0 and math.isfinite(v)]
    x_max = max(max(iterations, default=1), 1)
    lo, hi = (math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))) if values else (0, 1)
    hi = max(hi, lo + 1)

    def point(itr: float, value: float) -> tuple[float, float]:
        x = left + (width - left - right) * itr / x_max
        y = top + (height - top - bottom) * (hi - math.log10(value)) / (hi - lo)
        return x, y

    draw.rectangle((left, top, width - right, height - bottom), outline="black")
    for decade in range(lo, hi + 1):
        _, y = point(0, 10.0**decade)
        draw.line((left, y, width - right, y), fill=(220, 220, 220))
        draw.text((5, y - 6), f"1e{decade}", fill="black")
    draw.text((left, height - bottom + 8), "0", fill="black")
    draw.text((width - right - 40, height - bottom + 8), f"{x_max} itr", fill="black")
    for row, key in enumerate(LOSS_KEYS):
        points = [point(i, v) for i, v in zip(iterations, losses[key], strict=True) if v > 0 and math.isfinite(v)]
        if len(points) > 1:
            draw.line(points, fill=_COLORS[key], width=2)
        elif points:
            x, y = points[0]
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=_COLORS[key])
        legend_y = top + 8 + 14 * row
        draw.line((width - right - 90, legend_y + 6, width - right - 70, legend_y + 6), fill=_COLORS[key], width=2)
        draw.text((width - right - 64, legend_y), key, fill="black")
    return image


class LossHistory:
    """The loss terms of one image at the iterations they were reported, written as ``progress.txt`` / ``.png``."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.losses: dict[str, list[float]] = {key: [] for key in LOSS_KEYS}

    def add(self, iteration: int, losses: Mapping[str, Sequence[float] | np.ndarray], index: int = 0) -> None:
        """Records the terms of image ``index`` at ``iteration``."""
        self.rows.append(iteration)
        for key in LOSS_KEYS:
            self.losses[key].append(float(losses[key][index]))

    def continue_from(self, table: str | None, done: int) -> None:
        """Starts with the rows of a saved run's ``table`` (its progress.txt) up to iteration ``done``, so that a
        resumed run's history is the whole run's. A missing or unreadable table leaves the history as it is."""
        if not table or not os.path.isfile(table):
            return
        try:
            saved = np.loadtxt(table, ndmin=2)
        except (OSError, ValueError):
            return
        if saved.shape[1] != 1 + len(LOSS_KEYS):
            return
        for row in saved[saved[:, 0] <= done]:
            self.add(int(row[0]), {key: [value] for key, value in zip(LOSS_KEYS, row[1:], strict=True)})

    def write(self, table: str | None, plot: str | None) -> None:
        """Writes the table to ``table`` and the plot to ``plot`` (each when given), once there is a row."""
        from neural_style.image_io import atomic_write, write_image

        if self.rows and table:
            atomic_write(table, format_table(self.rows, self.losses).encode())
        if self.rows and plot:
            write_image(plot, plot_losses(self.rows, self.losses))


def contact_sheet(images: Sequence[np.ndarray], captions: Sequence[str], *, tile_width: int = 256) -> Image.Image:
    """Tiles images in a grid (up to 4 columns), each captioned underneath.

    Args:
        images: [H, W, 3] RGB floats 0..255, all the same size.
        captions: one line of text per image.
        tile_width: width of each tile; images are scaled to it.
    """
    if len(images) != len(captions) or not images:
        raise ValueError("contact_sheet needs one caption per image and at least one image")
    height, width = images[0].shape[:2]
    tile_height = max(1, round(height * tile_width / width))
    caption_height, margin = 18, 6
    columns = min(len(images), 4)
    rows = math.ceil(len(images) / columns)
    sheet = Image.new(
        "RGB",
        (columns * (tile_width + margin) + margin, rows * (tile_height + caption_height + margin) + margin),
        "white",
    )
    draw = ImageDraw.Draw(sheet)
    for i, (image, caption) in enumerate(zip(images, captions, strict=True)):
        tile = Image.fromarray(np.clip(np.rint(image), 0, 255).astype(np.uint8), "RGB")
        tile = tile.resize((tile_width, tile_height), Image.Resampling.LANCZOS)
        x = margin + (i % columns) * (tile_width + margin)
        y = margin + (i // columns) * (tile_height + caption_height + margin)
        sheet.paste(tile, (x, y))
        draw.text((x + 2, y + tile_height + 3), caption, fill="black")
    return sheet


def _metadata(plugin: str) -> object:
    from tensorflow.core.framework import summary_pb2

    return summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin))


def scalar_summary(tag: str, value: float, step: int | None = None) -> None:
    """A scalar for TensorBoard's scalars dashboard, to the default summary writer."""
    import tensorflow as tf

    tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=_metadata("scalars"))


def image_summary(tag: str, images: np.ndarray | tf.Tensor, step: int | None = None) -> None:
    """Images [N, H, W, 3] in 0..255, as TensorBoard's image plugin stores them: width, height, then PNGs."""
    import tensorflow as tf

    pixels = tf.cast(tf.round(tf.clip_by_value(tf.convert_to_tensor(images, tf.float32), 0.0, 255.0)), tf.uint8)
    shape = tf.shape(pixels)
    encoded = [tf.io.encode_png(pixels[i]) for i in range(int(shape[0]))]
    tensor = tf.stack([tf.as_string(shape[2]), tf.as_string(shape[1]), *encoded])
    tf.summary.write(tag, tensor, step=step, metadata=_metadata("images"))
