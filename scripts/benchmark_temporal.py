"""Temporal consistency of video stylization, measured on a clip whose motion is known (needs the video extra).

Example::

    python scripts/benchmark_temporal.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --background ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg

The clip is made here: ``--background`` as a still photo, and across it two things that move by ``--speed`` pixels a
frame: a patch (the photo upside down, shrunk) moving right and a thin bar (a strip of the photo in negative) moving
left. So the true optical flow of every frame is known, and so are the pixels it uncovers: those behind the patch's
trailing edge, never seen before, and those the bar passes over, seen a few frames earlier. Each setting stylizes
the clip (the flow the stylization uses is estimated, as in any video) and is judged by:

* temporal error: Ruder et al.'s measure, the mean squared difference (0..255 levels) between each stylized frame
  and the previous stylized frame warped by the TRUE flow, over the pixels not occluded in the previous frame;
* still flicker: the mean absolute change (levels) between consecutive stylized frames on the pixels no moving
  thing comes near (the still part);
* return error: the mean squared difference between a pixel the bar uncovers and the same pixel in the last frame
  before the bar covered it (what long-term consistency is for);
* frames per minute: the clip's frames over the minutes the setting took (flow, tracing and every pass included).

The settings: independent frames (each an image run of ``--iterations`` from its own noise, as runs without
``--seed`` are); same noise (``--temporal_weight 0``: independent frames from one seed's noise, the steadiest
independent frames can be); short-term (the frame before); long-term (``--temporal_offsets``); multi-pass
(long-term, ``--passes`` passes). The ratios are to independent frames. A strip of the frames (the content, then
one row per setting) is written to ``--output``. On a shared machine the load average moves the times; it is
printed with them.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG-19 .mat file.")
flags.DEFINE_string("background", None, "Photo the clip is made from.")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_integer("width", 96, "Width of the clip.")
flags.DEFINE_integer("height", 64, "Height of the clip.")
flags.DEFINE_integer("frames", 12, "Frames of the clip.")
flags.DEFINE_integer("speed", 2, "Pixels a frame the patch and the bar move.")
flags.DEFINE_integer("iterations", 60, "Iterations of the first frame (and of every independent frame).")
flags.DEFINE_integer("frame_iterations", None, "Iterations of the other frames (default: --iterations / 2).")
flags.DEFINE_float("temporal_weight", None, "Temporal weight (default: the library's).")
flags.DEFINE_list("temporal_offsets", ["1", "2", "5"], "Offsets of the long-term and multi-pass settings.")
flags.DEFINE_integer("passes", 3, "Passes of the multi-pass setting.")
flags.DEFINE_string("optimizer", None, "adam or lbfgs (default: the library's).")
flags.DEFINE_float("learning_rate", None, "Adam learning rate (default: the library's).")
flags.DEFINE_float("frame_learning_rate", None, "Adam learning rate of the later frames (default: the library's).")
flags.DEFINE_integer("seed", 0, "Seed of the start noise.")
flags.DEFINE_list(
    "settings", ["independent", "same-noise", "short-term", "long-term", "multi-pass"], "Settings to run."
)
flags.DEFINE_string("output", "temporal_strip.png", "The strip of frames (PNG).")


@dataclasses.dataclass
class Clip:
    """A clip with known motion.

    Attributes:
        frames: T [H, W, 3] float32 RGB 0..255.
        flows: T - 1 [H, W, 2] true backward flows, frame t -> t - 1 (for t = 1 ..).
        visible: T - 1 [H, W] bool: the pixels of frame t that frame t - 1 shows (not uncovered at t).
        still: [H, W] bool: pixels no moving thing comes within 4 px of.
        returns: (t, t_before, [H, W] bool): background pixels uncovered at t, last seen uncovered at t_before.
    """

    frames: list[np.ndarray]
    flows: list[np.ndarray]
    visible: list[np.ndarray]
    still: np.ndarray
    returns: list[tuple[int, int, np.ndarray]]


def make_clip(photo: np.ndarray, height: int, width: int, count: int, speed: int) -> Clip:
    from neural_style.image_io import resize

    background = resize(photo, (height, width))
    patch_size = (height // 3, width // 4)
    patch = resize(photo[::-1], patch_size)
    bar_size = (height // 3, max(4, 4 * speed))  # each pixel it passes is hidden 4 frames, seen again 5 frames on
    strip = photo[:, photo.shape[1] // 3 : photo.shape[1] // 3 + max(1, photo.shape[1] // 16)]
    bar = 255.0 - resize(strip[:, ::-1], bar_size)  # in negative: unlike what it passes over
    patch_top, bar_top = height // 12, height // 2 + height // 12

    def places(t: int) -> list[tuple[int, int, np.ndarray, int]]:  # (top, left, image, motion in x) of each thing
        return [
            (patch_top, width // 16 + speed * t, patch, speed),
            (bar_top, width - width // 8 - bar_size[1] - speed * t, bar, -speed),
        ]

    frames, covers, motions = [], [], []
    for t in range(count):
        frame = background.copy()
        cover = np.zeros((height, width), bool)
        motion = np.zeros((height, width, 2), np.float32)
        for top, left, image, dx in places(t):
            if left < 0 or left + image.shape[1] > width:
                raise SystemExit("the clip is too long for its width: the moving things leave it; give fewer --frames")
            rows, cols = slice(top, top + image.shape[0]), slice(left, left + image.shape[1])
            frame[rows, cols] = image
            cover[rows, cols] = True
            motion[rows, cols, 0] = -dx  # where this pixel was in the frame before
        frames.append(np.clip(np.rint(frame), 0, 255).astype(np.float32))
        covers.append(cover)
        motions.append(motion)
    near = np.any(covers, axis=0)
    for axis in (0, 1):  # 4 px around the things' paths
        for shift in range(1, 5):
            near = near | np.roll(near, shift, axis) | np.roll(near, -shift, axis)
    last_seen = np.where(covers[0], -1, 0)  # the last frame each pixel was background, -1 if never yet
    returns = []
    for t in range(1, count):
        uncovered = covers[t - 1] & ~covers[t]
        for before in np.unique(last_seen[uncovered]):
            pixels = uncovered & (last_seen == before)
            if before >= 0 and pixels.any():
                returns.append((t, int(before), pixels))
        last_seen = np.where(covers[t], last_seen, t)
    visible = [~(covers[t - 1] & ~covers[t]) for t in range(1, count)]
    return Clip(frames, motions[1:], visible, ~near, returns)


def temporal_error(results: list[np.ndarray], clip: Clip) -> float:
    from neural_style.flow import warp

    errors = []
    for t in range(1, len(results)):
        difference = (results[t] - warp(results[t - 1], clip.flows[t - 1])) ** 2
        errors.append(float(difference[clip.visible[t - 1]].mean()))
    return float(np.mean(errors))


def still_flicker(results: list[np.ndarray], clip: Clip) -> float:
    return float(np.mean([np.abs(b - a)[clip.still].mean() for a, b in zip(results, results[1:], strict=False)]))


def return_error(results: list[np.ndarray], clip: Clip) -> float:
    squares = [((results[t] - results[before]) ** 2)[pixels] for t, before, pixels in clip.returns]
    return float(np.concatenate(squares).mean()) if squares else float("nan")


def stylize(weights, clip: Clip, style: np.ndarray, config, temporal) -> tuple[list[np.ndarray], float]:
    """The results of the last pass, and the seconds the whole run took; ``temporal`` None: each frame an image run
    of its own seed (``config.seed`` + its index)."""
    from neural_style.stylization import stylize as stylize_image
    from neural_style.temporal import stylize_clip

    began = time.perf_counter()
    results: dict[int, np.ndarray] = {}
    if temporal is None:
        for t, frame in enumerate(clip.frames):
            seeded = dataclasses.replace(config, seed=config.seed + t)
            final = [r for r in stylize_image(weights, frame, [style], seeded) if r.final][-1]
            assert final.image is not None
            results[t] = np.asarray(final.image, np.float32)
        return [results[t] for t in range(len(clip.frames))], time.perf_counter() - began
    for _, index, record in stylize_clip(weights, clip.frames, [style], config, temporal):
        if record.final:
            assert record.image is not None
            results[index] = np.asarray(record.image, np.float32)
    return [results[t] for t in range(len(clip.frames))], time.perf_counter() - began


def write_strip(path: str, rows: list[tuple[str, list[np.ndarray]]]) -> None:
    """One row of frames per (label, frames), the label on the left, written atomically."""
    from PIL import Image, ImageDraw

    from neural_style.image_io import write_image

    height, width = rows[0][1][0].shape[:2]
    label, gap = 96, 2
    count = max(len(frames) for _, frames in rows)
    sheet = Image.new("RGB", (label + count * (width + gap), len(rows) * (height + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (name, frames) in enumerate(rows):
        top = r * (height + gap)
        draw.text((4, top + height // 2 - 6), name, fill=(0, 0, 0))
        for c, frame in enumerate(frames):
            image = Image.fromarray(np.clip(np.rint(frame), 0, 255).astype(np.uint8))
            sheet.paste(image, (label + c * (width + gap), top))
    write_image(path, sheet)


def main(argv: list[str]) -> None:
    del argv
    if not (FLAGS.network and FLAGS.background and FLAGS.style):
        sys.exit("give --network, --background and --style")
    from neural_style.cli.command import start_tensorflow

    start_tensorflow()
    from neural_style.config import FRAME_LEARNING_RATE_SHARE, StyleConfig, TemporalConfig
    from neural_style.image_io import read_image, resize_styles
    from neural_style.matconvnet import load_vgg

    weights = load_vgg(FLAGS.network)
    clip = make_clip(read_image(FLAGS.background), FLAGS.height, FLAGS.width, FLAGS.frames, FLAGS.speed)
    style = resize_styles([read_image(FLAGS.style)], None, FLAGS.width)[0]
    overrides = {"optimizer": FLAGS.optimizer, "learning_rate": FLAGS.learning_rate}
    config = StyleConfig(
        iterations=FLAGS.iterations, seed=FLAGS.seed, **{k: v for k, v in overrides.items() if v is not None}
    )
    frame_iterations = FLAGS.frame_iterations or max(1, FLAGS.iterations // 2)
    frame_rate = FLAGS.frame_learning_rate or FRAME_LEARNING_RATE_SHARE * config.learning_rate
    weight = TemporalConfig().temporal_weight if FLAGS.temporal_weight is None else FLAGS.temporal_weight
    offsets = tuple(int(v) for v in FLAGS.temporal_offsets)
    temporal = TemporalConfig(
        temporal_weight=weight, frame_iterations=frame_iterations, frame_learning_rate=FLAGS.frame_learning_rate
    )
    settings = {
        "independent": None,
        "same-noise": TemporalConfig(temporal_weight=0.0),
        "short-term": temporal,
        "long-term": dataclasses.replace(temporal, temporal_offsets=offsets),
        "multi-pass": dataclasses.replace(temporal, temporal_offsets=offsets, passes=FLAGS.passes),
    }
    unknown = [name for name in FLAGS.settings if name not in settings]
    if unknown:
        sys.exit(f"unknown --settings {', '.join(unknown)}; choose from {', '.join(settings)}")
    print(
        f"Clip {FLAGS.width}x{FLAGS.height}, {FLAGS.frames} frames, {FLAGS.speed} px a frame; {config.optimizer}, "
        f"{FLAGS.iterations} iterations for the first frame (learning rate {config.learning_rate:g}) and "
        f"{frame_iterations} for the others (learning rate {frame_rate:g}), temporal weight {weight:g}, offsets "
        f"{','.join(map(str, offsets))} "
        f"(long-term, multi-pass), {FLAGS.passes} passes (multi-pass); still part {clip.still.mean():.0%} of the "
        f"pixels; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    rows: list[tuple[str, list[np.ndarray]]] = [("content", clip.frames)]
    figures: dict[str, tuple[float, float, float, float]] = {}
    print(f"{'setting':<12} {'temporal error':>20} {'still flicker':>19} {'return error':>19} {'frames/min':>11}")
    for name in FLAGS.settings:
        results, seconds = stylize(weights, clip, style, config, settings[name])
        rows.append((name, results))
        figures[name] = (
            temporal_error(results, clip),
            still_flicker(results, clip),
            return_error(results, clip),
            len(results) / (seconds / 60),
        )
        base = figures.get("independent")
        shown = []
        for k in range(3):
            ratio = f"({figures[name][k] / base[k]:.2f})" if base is not None and base[k] > 0 else ""
            shown.append(f"{figures[name][k]:>12.2f} {ratio:>6}")
        print(f"{name:<12} {shown[0]:>20} {shown[1]:>19} {shown[2]:>19} {figures[name][3]:>11.1f}", flush=True)
    write_strip(FLAGS.output, rows)
    rows_written = ", ".join(FLAGS.settings)
    print(f"Wrote {FLAGS.output} (the content, then {rows_written}; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    app.run(main)
