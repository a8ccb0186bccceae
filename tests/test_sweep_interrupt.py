"""Ctrl-C / SIGTERM during a blend sweep: what is written, what is said, the exit status; and ``sweep_runs``.

A sweep of 5 blends in batches of 2 (2 + 2 + 1) runs in a subprocess on the tiny synthetic VGG of conftest.py and is
signalled once batch 2 has printed a few iteration lines. It must stop at the end of the iteration, write the
finished candidates (equal to an uninterrupted run's), the batch in progress as it is at that iteration (equal to
a run of those candidates stopped after as many iterations) and the sheet of them, leave the candidate not started
out, print one stderr line with the counts and exit 130. Stopping between batches is tested in process, with the
signal sent while the first batch's images are written. ``sweep_runs`` is checked against ``sweep``.

The inputs are made here (a few lines copied from conftest.py's command helpers) so that this file depends only on
``write_vgg_mat``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import CONTENT_SIZE, content_array, style_array, write_vgg_mat
from PIL import Image

from neural_style.config import Candidate, StyleConfig, even_blends
from neural_style.matconvnet import VggWeights, load_vgg
from neural_style.stylization import sweep, sweep_runs

CHANNELS = (4, 6, 8, 8, 8)
ITERATIONS = 300  # per batch: batch 2 runs for far longer than a signal takes to arrive
BLENDS = [f"{a:.3g}-{b:.3g}" for a, b in even_blends(5)]  # 1-0, 0.75-0.25, 0.5-0.5, 0.25-0.75, 0-1
SHEET_OF_4 = (4 * (256 + 6) + 6, round(20 * 256 / 24) + 18 + 6 + 6)  # report.contact_sheet: 4 tiles in a row
HANG_GUARD = 600  # seconds; only to fail instead of hanging, never a measure of speed


def _he_scaled(name: str, kernel: np.ndarray) -> np.ndarray:
    return kernel * np.float32(np.sqrt(2.0 / (kernel.shape[0] * kernel.shape[1] * kernel.shape[2])))


@dataclasses.dataclass
class Inputs:
    """The files every run here reads, in ``root/inputs``; each run writes into a directory of its own."""

    root: Path
    content: Path
    styles: str
    network: Path

    def directory(self, name: str) -> Path:
        path = self.root / name
        path.mkdir()
        return path

    def env(self) -> dict[str, str]:
        """No user settings; cache, home and temporary files inside ``root``; stdout unbuffered (read as it comes)."""
        env = {k: v for k, v in os.environ.items() if k not in ("NEURAL_STYLE_WEIGHTS", "KERAS_HOME", "XDG_CACHE_HOME")}
        for name in ("cache", "home", "tmp"):
            (self.root / name).mkdir(exist_ok=True)
        env.update(
            NEURAL_STYLE_CACHE=str(self.root / "cache"),
            HOME=str(self.root / "home"),
            TMPDIR=str(self.root / "tmp"),
            PYTHONUNBUFFERED="1",
        )
        return env

    def args(self, output: Path, *extra: str) -> list[str]:
        return [
            f"--content={self.content}",
            f"--styles={self.styles}",
            f"--network={self.network}",
            f"--output={output}",
            "--seed=0",
            "--tv_weight=1",
            *extra,
        ]


SWEEP = ("--blend_sweep=5", "--batch_size=2", f"--iterations={ITERATIONS}")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    root = tmp_path_factory.mktemp("sweep_interrupt")
    directory = root / "inputs"
    directory.mkdir()
    content, style1, style2 = directory / "content.png", directory / "style1.png", directory / "style2.png"
    Image.fromarray(content_array()).save(content)
    Image.fromarray(style_array(0)).save(style1)
    Image.fromarray(style_array(1)).resize((16, 16)).save(style2)
    network = directory / "vgg.mat"
    write_vgg_mat(network, channels=CHANNELS, tamper=_he_scaled)
    return Inputs(root, content, f"{style1},{style2}", network)


def _run(inputs: Inputs, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "neural_style", *args],
        env=inputs.env(),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        assert image.size == CONTENT_SIZE
        return np.asarray(image.convert("RGB"), np.int16)


@pytest.fixture(scope="module")
def uninterrupted(inputs: Inputs) -> Path:
    """The directory of the whole sweep run without a signal."""
    directory = inputs.directory("uninterrupted")
    _run(inputs, inputs.args(directory / "out.png", *SWEEP))
    assert sorted(p.name for p in directory.iterdir()) == sorted([*(f"out_{b}.png" for b in BLENDS), "out_sheet.png"])
    return directory


@dataclasses.dataclass
class Interrupted:
    directory: Path
    returncode: int
    stdout: str
    stderr: str


def _interrupt(inputs: Inputs, name: str, signum: int, batch_lines: int = 3) -> Interrupted:
    """The sweep in a subprocess, sent ``signum`` once it has printed ``batch_lines`` iteration lines of batch 2."""
    directory = inputs.directory(name)
    out, err = directory.parent / f"{name}.stdout", directory.parent / f"{name}.stderr"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "neural_style", *inputs.args(directory / "out.png", *SWEEP)],
            env=inputs.env(),
            stdout=stdout,
            stderr=stderr,
            text=True,
        )
        try:
            deadline = time.monotonic() + HANG_GUARD
            while out.read_text().count("(batch 2/3)") < batch_lines:
                assert process.poll() is None, f"the sweep ended before batch 2: {err.read_text()}"
                assert time.monotonic() < deadline, "no progress lines of batch 2"
                time.sleep(0.02)
            process.send_signal(signum)
            returncode = process.wait(timeout=HANG_GUARD)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return Interrupted(directory, returncode, out.read_text(), err.read_text())


LINE = re.compile(
    r"neural-style: (?P<why>\w+) at iteration (?P<k>\d+)/300 of batch 2/3: wrote 2 finished candidates, "
    r"2 unfinished \(best so far\) and (?P<sheet>\S+); 1 candidate not started"
)


# SIGINT only: SIGTERM goes through the same interruptible() (tests/test_command.py checks it tells them apart), and
# each of these subprocess runs costs about 20 s.
@pytest.mark.slow
@pytest.mark.parametrize("signum, why", [pytest.param(signal.SIGINT, "interrupted", id="SIGINT")])
def test_signal_during_a_sweep_writes_every_candidate_started(
    inputs: Inputs, uninterrupted: Path, signum: int, why: str
) -> None:
    """Signalled in batch 2 of 3: batch 1 as an uninterrupted run writes it, batch 2 at the iteration reached, the
    sheet of the four; candidate 5 not started, so not written; one stderr line with the counts; exit 130."""
    got = _interrupt(inputs, why, signum)
    assert got.returncode == 130, got.stderr
    lines = got.stderr.splitlines()
    assert len(lines) == 1, got.stderr
    match = LINE.fullmatch(lines[0])
    assert match is not None, lines[0]
    assert match["why"] == why
    assert match["sheet"] == str(got.directory / "out_sheet.png")
    k = int(match["k"])
    assert 3 <= k < ITERATIONS
    # It stopped at the end of the iteration it was in: the last progress line is that of iteration k of batch 2.
    progress = [line for line in got.stdout.splitlines() if line.startswith("Iteration")]
    assert progress[-1].startswith(f"Iteration {ITERATIONS + k:4d}/{3 * ITERATIONS:4d} (batch 2/3)"), progress[-1]

    written = sorted(p.name for p in got.directory.iterdir())
    assert written == sorted([*(f"out_{b}.png" for b in BLENDS[:4]), "out_sheet.png"]), "no temporary files either"
    for blend in BLENDS[:2]:  # finished: the same images as the uninterrupted run
        name = f"out_{blend}.png"
        difference = np.abs(_pixels(got.directory / name) - _pixels(uninterrupted / name))
        assert difference.max() <= 1, name
    for blend in BLENDS[2:4]:  # unfinished: valid images, far from the finished ones
        name = f"out_{blend}.png"
        assert np.abs(_pixels(got.directory / name) - _pixels(uninterrupted / name)).max() > 10, name
    with Image.open(got.directory / "out_sheet.png") as sheet:
        assert sheet.size == SHEET_OF_4

    # The unfinished candidates are the images after k iterations: a run of batch 2 alone for k iterations.
    check = inputs.directory(f"{why}_after_{k}")
    args = inputs.args(check / "out.png", "--blends=0.5,0.5;0.25,0.75", "--batch_size=2", f"--iterations={k}")
    _run(inputs, args)
    for blend in BLENDS[2:4]:
        name = f"out_{blend}.png"
        assert np.abs(_pixels(got.directory / name) - _pixels(check / name)).max() <= 1, name


def test_signal_between_batches_writes_the_finished_ones(
    inputs: Inputs, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SIGINT while batch 1's images are being written: batch 2 is not started; the two images, their sheet, exit
    130 with the line ``interrupted after batch 1/3``. (In process: the signal comes from the write itself.)"""
    from neural_style import image_io
    from neural_style.cli import stylize as stylize_cli

    directory = inputs.directory("between")
    output = directory / "out.png"
    real_write = image_io.write_image
    written: list[str] = []

    def write_and_signal(path: str | os.PathLike[str], image: object, **options: object) -> None:
        real_write(path, image, **options)  # type: ignore[arg-type]
        written.append(os.path.basename(path))
        if len(written) == 1:
            os.kill(os.getpid(), signal.SIGINT)  # handled by the sweep's interruptible(): stop when you can

    monkeypatch.setattr(image_io, "write_image", write_and_signal)
    with pytest.raises(SystemExit) as exit_info:
        stylize_cli.main(["neural-style", *inputs.args(output, "--blend_sweep=5", "--batch_size=2", "--iterations=3")])
    assert exit_info.value.code == 130
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"neural-style: interrupted after batch 1/3: wrote 2 finished candidates, 0 unfinished (best so far) and "
        f"{directory / 'out_sheet.png'}; 3 candidates not started"
    ]
    assert written == ["out_1-0.png", "out_0.75-0.25.png", "out_sheet.png"]
    assert sorted(p.name for p in directory.iterdir()) == sorted(written)
    with Image.open(directory / "out_sheet.png") as sheet:
        assert sheet.size == (2 * (256 + 6) + 6, SHEET_OF_4[1])


# ------------------------------------------------------------------------------------------ the library: sweep_runs

CANDIDATES = [Candidate.make((1, 0), 500.0), Candidate.make((1, 1), 500.0), Candidate.make((0, 1), 100.0)]


@dataclasses.dataclass
class Tiny:
    weights: VggWeights
    content: np.ndarray
    styles: list[np.ndarray]


@pytest.fixture(scope="module")
def tiny(inputs: Inputs) -> Tiny:
    styles = [
        style_array(0).astype(np.float32),
        np.asarray(Image.fromarray(style_array(1)).resize((12, 20)), np.float32),
    ]
    return Tiny(load_vgg(inputs.network), content_array().astype(np.float32), styles)


def _config(**changes: object) -> StyleConfig:
    return dataclasses.replace(StyleConfig(iterations=5, seed=0, tv_weight=1.0), **changes)  # type: ignore[arg-type]


@pytest.mark.slow
def test_sweep_runs_are_the_chunks_of_sweep(tiny: Tiny) -> None:
    """Each run of ``sweep_runs`` is one chunk; iterated, they give the records and final images of ``sweep``."""
    plain = list(sweep(tiny.weights, tiny.content, tiny.styles, _config(), CANDIDATES, batch_size=2))
    finals = {first: record for first, record in plain if record.final}
    assert sorted(finals) == [0, 2]
    runs = []
    for first, run in sweep_runs(tiny.weights, tiny.content, tiny.styles, _config(), CANDIDATES, batch_size=2):
        records = list(run)
        assert [r.iteration for r in records] == [r.iteration for f, r in plain if f == first] == [0, 1, 2, 3, 4, 5]
        assert records[-1].final and records[-1].images is not None and finals[first].images is not None
        assert records[-1].images.shape == (2 if first == 0 else 1, 20, 24, 3)
        np.testing.assert_allclose(records[-1].images, finals[first].images, rtol=0, atol=0.05)
        np.testing.assert_allclose(records[-1].losses["total"], finals[first].losses["total"], rtol=1e-4)
        runs.append(first)
    assert runs == [0, 2]
    assert np.abs(finals[0].images[0] - finals[0].images[1]).max() > 1, "the candidates differ"


@pytest.mark.slow
def test_a_run_stopped_early_holds_its_images_so_far(tiny: Tiny) -> None:
    """The chunk in progress, left after k records: current_images() are the final images of a k-iteration sweep;
    best_images() are None before a checkpoint, then those of the last checkpoint (what the CLI writes on Ctrl-C)."""
    runs = sweep_runs(tiny.weights, tiny.content, tiny.styles, _config(checkpoint_iterations=2), CANDIDATES[:2])
    first, run = next(runs)
    assert first == 0
    records = iter(run)
    assert next(records).iteration == 0  # the start
    next(records)
    assert run.iteration == 1 and run.best_images() is None
    next(records), next(records)
    assert run.iteration == 3
    current, best = run.current_images(), run.best_images()
    assert best is not None
    for iterations, images in ((3, current), (2, best)):
        short = [
            r for _, r in sweep(tiny.weights, tiny.content, tiny.styles, _config(iterations=iterations), CANDIDATES[:2])
        ]
        assert short[-1].final and short[-1].images is not None
        np.testing.assert_allclose(images, short[-1].images, rtol=0, atol=0.05)
    assert np.abs(current - best).max() > 1, "iteration 3 is not iteration 2"
    with pytest.raises(StopIteration):
        next(runs)
