"""Tests of what the commands report (neural_style.cli.report): the loss history table and plot, hms, the ETA
lines, contact sheets and TensorBoard records. The plumbing the commands share (neural_style.cli.command) is
tested in test_command.py."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from neural_style.cli import report

# ------------------------------------------------------------------------------------------------ loss history


ROWS = [0, 10, 20]
LOSSES = {
    "content": [1.5e6, 2.25e5, 1.0e5],
    "style": [3.0e8, 1.0e7, 123456.789],
    "tv": [0.5, 1.0e3, 2.0e3],
    "total": [3.015e8, 1.02260e7, 225456.789],
}


def test_format_table_parses_back() -> None:
    """The table's header is exact and np.loadtxt reads back the very numbers given."""
    text = report.format_table(ROWS, LOSSES)
    assert text.splitlines()[0] == "# itr content style tv total"
    table = np.loadtxt(text.splitlines())
    expected = np.column_stack([ROWS] + [LOSSES[k] for k in report.LOSS_KEYS])
    np.testing.assert_array_equal(table, expected)


def test_format_table_single_row() -> None:
    """One row still parses as one row of five columns."""
    text = report.format_table([0], {k: [1.0] for k in report.LOSS_KEYS})
    assert np.loadtxt(text.splitlines(), ndmin=2).shape == (1, 5)


@pytest.mark.parametrize("size", [(640, 400), (300, 200)])
def test_plot_losses_size(size: tuple[int, int]) -> None:
    """The plot is an RGB image of the requested size, not blank."""
    plot = report.plot_losses(ROWS, LOSSES, size=size)
    assert plot.mode == "RGB"
    assert plot.size == size
    assert len(plot.getcolors(maxcolors=1 << 16) or ()) != 1


def test_plot_losses_default_size() -> None:
    """Without a size the plot is 640x400."""
    assert report.plot_losses(ROWS, LOSSES).size == (640, 400)


@pytest.mark.parametrize(
    ("rows", "losses"),
    [
        (ROWS, {"content": [0.0, 0.0, 0.0], "style": [-1.0, 5.0, 2.0], "tv": [0.0, 0.0, 1.0], "total": [1, 5, 3]}),
        (ROWS, {k: [0.0, 0.0, 0.0] for k in report.LOSS_KEYS}),
        (ROWS, {k: [math.nan, math.inf, -math.inf] for k in report.LOSS_KEYS}),
        ([0], {k: [7.0] for k in report.LOSS_KEYS}),
        ([], {k: [] for k in report.LOSS_KEYS}),
    ],
    ids=["some-non-positive", "all-zero", "non-finite", "one-point", "empty"],
)
def test_plot_losses_tolerates_unplottable_values(rows: list[int], losses: dict[str, list[float]]) -> None:
    """Zero, negative and non-finite losses (and one or no rows) are left out, not a crash."""
    plot = report.plot_losses(rows, losses, size=(200, 150))
    assert plot.size == (200, 150)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(3725, "1 hr 2 min"), (125, "2 min 5 sec"), (5, "5 sec"), (0, "0 sec"), (59.9, "59 sec"), (3600, "1 hr 0 min")],
)
def test_hms(seconds: float, text: str) -> None:
    """hms formats seconds as hours and minutes, minutes and seconds, or seconds."""
    assert report.hms(seconds) == text


def test_loss_history_writes_the_table_and_plot(tmp_path: Path) -> None:
    """Rows added one at a time come back from progress.txt; nothing is written before the first row."""
    history = report.LossHistory()
    table, plot = tmp_path / "progress.txt", tmp_path / "progress.png"
    history.write(str(table), str(plot))
    assert not table.exists() and not plot.exists()
    for i, row in enumerate(ROWS):
        history.add(row, {k: [0.0, LOSSES[k][i]] for k in report.LOSS_KEYS}, index=1)
    history.write(str(table), None)
    np.testing.assert_array_equal(np.loadtxt(table), np.column_stack([ROWS] + [LOSSES[k] for k in report.LOSS_KEYS]))
    assert not plot.exists()
    history.write(None, str(plot))
    assert plot.stat().st_size > 0


def test_print_losses(capsys: pytest.CaptureFixture[str]) -> None:
    report.print_losses({k: [LOSSES[k][1], 0.0] for k in report.LOSS_KEYS})
    assert capsys.readouterr().out.splitlines() == [
        "content loss: 225000",
        "  style loss: 1e+07",
        "     tv loss: 1000",
        "  total loss: 1.0226e+07",
    ]


class _FakeTime:
    """``time.time`` that stands still until moved on by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _clock(monkeypatch: pytest.MonkeyPatch, **kwargs: object) -> tuple[report.EtaClock, _FakeTime]:
    fake = _FakeTime(1000.0)
    monkeypatch.setattr(report.time, "time", fake)
    return report.EtaClock(start=fake.now, **kwargs), fake  # type: ignore[arg-type]


def test_iteration_line_uses_the_mean_step_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Steps of 1 s and 3 s, the 2nd of 100 done 64 s after the start: 98 x 2 s = 3 min 16 sec remaining."""
    clock, fake = _clock(monkeypatch, total=100)
    fake.now += 1.0
    assert clock.tick(1)
    fake.now += 3.0
    clock.tick(2)
    fake.now += 60.0  # elapsed time counts from the start, whatever the steps took
    line = report.iteration_line(clock, " (scale 1/2)")
    assert line == "Iteration    2/ 100 (scale 1/2) (1 min 4 sec elapsed, 3 min 16 sec remaining)"


def test_eta_clock_times_only_iterations(monkeypatch: pytest.MonkeyPatch) -> None:
    """A record that starts a run (done None) is not timed and the next tick counts one unit; the window keeps the
    last 10 ticks."""
    clock, fake = _clock(monkeypatch, total=50)
    fake.now += 100.0  # e.g. building the run: not an iteration
    assert not clock.tick(None) and list(clock.spans) == []
    for done in range(1, 13):
        fake.now += done  # the k-th iteration takes k seconds
        assert clock.tick(done)
    assert list(clock.spans) == [(float(k), 1) for k in range(3, 13)]
    assert clock.remaining == pytest.approx(38 * 7.5)  # the mean of 3..12 s, 38 iterations left


def test_eta_clock_rate_of_uneven_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Ticks of several units (training steps between two progress lines): the rate is units over seconds; a window
    of 1 follows the last tick alone; a resumed clock counts from the units done before."""
    clock, fake = _clock(monkeypatch, total=1000, done=100, window=1)
    fake.now += 2.0
    clock.tick(101)
    assert (clock.seconds, clock.rate) == (2.0, 0.5)
    fake.now += 5.0
    clock.tick(111)
    assert clock.rate == 2.0 and clock.remaining == pytest.approx(889 / 2.0)
    whole, fake = _clock(monkeypatch, total=30, done=0, window=None)
    for frames, seconds in ((4, 1.0), (8, 3.0)):
        fake.now += seconds
        whole.tick(frames)
    assert whole.rate == 2.0 and whole.remaining == 11.0  # 8 frames in 4 s; 22 left


def test_summaries_are_what_tensorboard_reads(tmp_path: Path) -> None:
    """A scalar and an image record, with the plugin names and the (width, height, PNG...) image layout."""
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        report.scalar_summary("loss/total", 2.5, step=3)
        report.image_summary("image", np.full((1, 5, 7, 3), 300.0), step=4)
    writer.flush()
    seen = {}
    for path in tmp_path.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                seen[value.tag] = (event.step, value.metadata.plugin_data.plugin_name, tf.make_ndarray(value.tensor))
    step, plugin, tensor = seen["loss/total"]
    assert (step, plugin, float(tensor)) == (3, "scalars", 2.5)
    step, plugin, tensor = seen["image"]
    assert (step, plugin) == (4, "images") and tensor[:2].tolist() == [b"7", b"5"]
    assert (tf.io.decode_png(tensor[2]).numpy() == 255).all()  # clipped to 0..255


# ------------------------------------------------------------------------------------------------ contact sheets


# Five 20x10 images on a sheet of 40-pixel tiles: the code's margin is 6 and the caption strip 18 pixels high.
SHEET_COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (200, 100, 50), (10, 20, 30)]
TILE_W, TILE_H, MARGIN, CAPTION = 40, 20, 6, 18  # tile height = 10 * 40 / 20


def test_contact_sheet_size_and_tiles() -> None:
    """4 columns x 2 rows; each tile is its (constant-colour) image scaled to 40x20, the gaps stay white."""
    images = [np.full((10, 20, 3), colour, np.float32) for colour in SHEET_COLOURS]
    sheet = report.contact_sheet(images, [f"tile {i}" for i in range(5)], tile_width=TILE_W)
    # Width 4 (40 + 6) + 6 = 190, height 2 (20 + 18 + 6) + 6 = 94.
    assert sheet.size == (190, 94)
    assert sheet.mode == "RGB"
    pixels = np.asarray(sheet)
    for i, colour in enumerate(SHEET_COLOURS):
        x = MARGIN + (i % 4) * (TILE_W + MARGIN)  # 6, 52, 98, 144
        y = MARGIN + (i // 4) * (TILE_H + CAPTION + MARGIN)  # 6, 50
        tile = pixels[y : y + TILE_H, x : x + TILE_W]
        assert (tile == colour).all(), (i, np.unique(tile.reshape(-1, 3), axis=0))
        assert (pixels[y - 1, x : x + TILE_W] == 255).all() and (pixels[y : y + TILE_H, x - 1] == 255).all()
        caption = pixels[y + TILE_H : y + TILE_H + CAPTION, x : x + TILE_W]
        assert (caption < 128).any(), f"caption {i} is missing"  # black text on white
    assert (pixels[50:, 52:] == 255).all(), "the unused cells of the last row stay white"


def test_contact_sheet_scales_rounds_and_clips() -> None:
    """Tiles keep the aspect ratio (height rounded); values outside 0..255 are clipped."""
    images = [np.full((7, 9, 3), 300.0, np.float32), np.full((7, 9, 3), -5.0, np.float32)]
    sheet = report.contact_sheet(images, ["a", "b"], tile_width=30)
    tile_height = round(7 * 30 / 9)  # 23.33 -> 23
    assert sheet.size == (2 * (30 + MARGIN) + MARGIN, tile_height + CAPTION + 2 * MARGIN)
    pixels = np.asarray(sheet)
    assert (pixels[MARGIN : MARGIN + tile_height, MARGIN : MARGIN + 30] == 255).all()
    assert (pixels[MARGIN : MARGIN + tile_height, 2 * MARGIN + 30 : 2 * MARGIN + 60] == 0).all()


@pytest.mark.parametrize("n_images, n_captions", [(0, 0), (2, 1)])
def test_contact_sheet_needs_one_caption_per_image(n_images: int, n_captions: int) -> None:
    with pytest.raises(ValueError):
        report.contact_sheet([np.zeros((4, 4, 3))] * n_images, ["x"] * n_captions)


def test_a_resumed_history_keeps_the_saved_rows_up_to_the_resume(tmp_path: Path) -> None:
    """continue_from: the rows of progress.txt at or before the resumed iteration come first; later rows (written
    after the state was saved) and unreadable files are dropped."""
    table = tmp_path / "progress.txt"
    history = report.LossHistory()
    for k, total in ((0, 10.0), (2, 7.0), (4, 5.0), (6, 4.5)):
        history.add(k, {"content": [1.0], "style": [total - 2.0], "tv": [1.0], "total": [total]})
    history.write(str(table), None)
    resumed = report.LossHistory()
    resumed.continue_from(str(table), 4)
    resumed.add(5, {"content": [1.0], "style": [2.5], "tv": [1.0], "total": [4.5]})
    assert resumed.rows == [0, 2, 4, 5]
    assert resumed.losses["total"] == [10.0, 7.0, 5.0, 4.5]
    assert resumed.losses["style"] == [8.0, 5.0, 3.0, 2.5]
    table.write_text("not a table\n")
    fresh = report.LossHistory()
    fresh.continue_from(str(table), 4)
    fresh.continue_from(str(tmp_path / "missing.txt"), 4)
    assert fresh.rows == []
