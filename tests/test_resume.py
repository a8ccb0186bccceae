"""Long runs: resumable state, Ctrl-C / SIGTERM / kill -9, TensorBoard, the checkpoint sheet and the memory guard.

Library level, a :class:`Stylization` stopped after k records, saved with ``tf.train.Checkpoint.write`` and read into
a new object continues exactly as an uninterrupted run. Command level (``python -m neural_style`` in subprocesses,
on conftest's tiny network), one run is interrupted three times (SIGINT, SIGTERM, SIGKILL), refused once with a
changed setting and finally resumed to the end; its result is compared with an uninterrupted run that also writes
TensorBoard summaries and a checkpoint sheet. TensorFlow runs cost ~10 s each, so there are six of them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from conftest import write_vgg_mat
from PIL import Image
from test_cli import (
    _PROBE,
    CHANNELS,
    CONTENT_SIZE,
    ERROR_PREFIX,
    IMPORTS_MARKER,
    Workspace,
    _content_array,
    _he_scaled,
    _run,
    _style_array,
    _workspace,
)

from neural_style import memory
from neural_style.cli import stylize as stylize_cli
from neural_style.config import StyleConfig
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import VggWeights, read_matconvnet
from neural_style.stylization import Progress, Stylization

# ------------------------------------------------------------------------------------------- library-level resume

EVERY = 2  # checkpoint iterations of the library-level runs
CONFIG = StyleConfig(iterations=8, checkpoint_iterations=EVERY, print_iterations=1, seed=0)
# One device, same ops, same inputs: a resumed run is bit-identical to an uninterrupted one in practice. The
# tolerances only leave room for a reduction order that might differ between two tf.function traces.
RTOL = 1e-6
IMAGE_ATOL = 1e-4  # on the 0..255 scale


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[VggWeights, np.ndarray, np.ndarray]:
    """The tiny network (channels (4, 6, 8, 8, 8), He-scaled kernels), a 16x20 content and a 16x16 style image."""
    path = tmp_path_factory.mktemp("vgg") / "vgg.mat"
    write_vgg_mat(path, channels=CHANNELS, tamper=_he_scaled)
    content = _content_array()[:16, :20].astype(np.float32)
    return read_matconvnet(path), content, _style_array().astype(np.float32)


def _stylization(tiny: tuple[VggWeights, np.ndarray, np.ndarray], config: StyleConfig = CONFIG) -> Stylization:
    weights, content, style = tiny
    return Stylization(weights, content, [style], config)


@pytest.fixture
def parsed_flags() -> Callable[..., flags.FlagValues]:
    """Parses a ``neural-style`` command line (flags only) into fresh flag values, for in-process tests."""

    def parse(*argv: str) -> flags.FlagValues:
        fv = stylize_cli.flag_values()
        fv(["neural-style", *argv])
        return fv

    return parse


@pytest.fixture(scope="module")
def uninterrupted(tiny: tuple[VggWeights, np.ndarray, np.ndarray]) -> dict[int, Progress]:
    """Every record of an uninterrupted run, by iteration (0 to 8)."""
    return {record.iteration: record for record in _stylization(tiny)}


def _assert_same_record(got: Progress, want: Progress) -> None:
    assert (got.iteration, got.final) == (want.iteration, want.final)
    for name in ("step_loss", "images"):
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=RTOL, atol=IMAGE_ATOL if name == "images" else 0, err_msg=name)
    assert got.losses is not None and want.losses is not None
    for key in ("content", "style", "tv", "total"):
        np.testing.assert_allclose(got.losses[key], want.losses[key], rtol=RTOL, err_msg=key)


@dataclasses.dataclass
class Saved:
    """The state of one run written after iteration k, with what the run held at that moment."""

    path: str
    best_images: np.ndarray | None
    best_loss: np.ndarray
    current_images: np.ndarray


STOPS = (1, 3, 4)  # before any checkpoint, between checkpoints 2 and 4, at checkpoint 4


@pytest.fixture(scope="module")
def saved(tiny, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Saved]:
    """One run, its state written with tf.train.Checkpoint.write after each iteration of STOPS, then abandoned."""
    directory = tmp_path_factory.mktemp("states")
    run = _stylization(tiny)
    assert run.state is not None
    states = {}
    for record in run:
        if record.iteration in STOPS:
            states[record.iteration] = Saved(
                run.state.write(str(directory / f"run-{record.iteration}.state")),
                run.best_images(),
                run.state.best_loss.numpy(),
                run.current_images(),
            )
        if record.iteration == max(STOPS):
            break
    return states


def test_state_holds_the_run_not_the_network(saved: dict[int, Saved]) -> None:
    """Image, Adam moments and step, iteration, best image and loss, loss history; no network weights."""
    names = {name.split("/.ATTRIBUTES")[0] for name, _ in tf.train.list_variables(saved[4].path)}
    engine = {"engine/image", "engine/optimizer/m", "engine/optimizer/v", "engine/optimizer/step"}
    assert engine | {"iteration", "best", "best_loss", "has_best", "history"} <= names
    assert not any("kernel" in name or "bias" in name for name in names), names
    assert tf.train.load_variable(saved[4].path, "iteration/.ATTRIBUTES/VARIABLE_VALUE") == 4
    assert tf.train.load_variable(saved[3].path, "engine/optimizer/step/.ATTRIBUTES/VARIABLE_VALUE") == 3


@pytest.mark.parametrize(
    ("stop_at", "fresh_seed"),
    [(4, 0), (3, 1), (1, 0)],
    ids=["at-a-checkpoint", "between-checkpoints-other-seed", "before-any-checkpoint"],
)
def test_resumed_run_equals_uninterrupted(
    tiny, uninterrupted: dict[int, Progress], saved: dict[int, Saved], stop_at: int, fresh_seed: int
) -> None:
    """Read the state saved after k records into a new Stylization and finish: the records are the same.

    The second case's new object starts from other noise (seed 1): the saved image, not the noise generator,
    carries the run on, so no RNG state needs saving.
    """
    state = saved[stop_at]
    fresh = _stylization(tiny, dataclasses.replace(CONFIG, seed=fresh_seed))
    assert fresh.state is not None
    fresh.state.read(state.path).assert_consumed()
    assert fresh.iteration == stop_at

    # Right after the restore: the saved run's best image and loss and its current image.
    best = fresh.best_images()
    if stop_at < EVERY:
        assert best is None and state.best_images is None
        np.testing.assert_array_equal(state.best_loss, [np.inf])
    else:
        last_checkpoint = uninterrupted[stop_at - stop_at % EVERY].images
        assert best is not None and last_checkpoint is not None
        np.testing.assert_array_equal(best, state.best_images)
        np.testing.assert_allclose(best, last_checkpoint, rtol=RTOL, atol=IMAGE_ATOL)
    np.testing.assert_array_equal(fresh.state.best_loss.numpy(), state.best_loss)
    np.testing.assert_array_equal(fresh.current_images(), state.current_images)

    rest = list(fresh)
    assert [r.iteration for r in rest] == list(range(stop_at + 1, CONFIG.iterations + 1))
    for record in rest:
        _assert_same_record(record, uninterrupted[record.iteration])
    assert rest[-1].final and rest[-1].images is not None


# ------------------------------------------------------------------------------------- command level: a long run

COMMON = ("--seed=0", "--checkpoint_iterations=5", "--checkpoint_output=out_{}.png", "--print_iterations=1")
FINAL_ITERATIONS = 30
LONG = "--iterations=200"
TIMEOUT = 300  # seconds for anything a run should do in ~15 s; generous for a loaded machine


@dataclasses.dataclass
class Stage:
    """One command of the interrupted run and what it left behind."""

    returncode: int
    stdout: str
    stderr: str
    files: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def last_line(self) -> str:
        lines = self.stderr.strip().splitlines()
        return lines[-1] if lines else ""

    def stopped_at(self) -> int:
        found = re.search(r" at iteration (\d+):", self.last_line)
        assert found, self.last_line
        return int(found.group(1))

    def resumed_at(self) -> int:
        found = re.search(r"^Resumed at iteration (\d+)/", self.stdout, re.MULTILINE)
        assert found, self.stdout
        return int(found.group(1))


def _valid_png(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            image.verify()
            ok = image.format == "PNG"
        with Image.open(path) as image:
            image.load()
        return ok
    except Exception:
        return False


def _temp_files(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob(".tmp-*"))


def _state_dir(ws: Workspace) -> Path:
    return Path(f"{ws.output}.state")


def _saved_iteration(ws: Workspace) -> int | None:
    latest = tf.train.latest_checkpoint(str(_state_dir(ws)))
    if latest is None:
        return None
    return int(tf.train.load_variable(latest, "run/iteration/.ATTRIBUTES/VARIABLE_VALUE"))


def _state_listing(ws: Workspace) -> list[str]:
    directory = _state_dir(ws)
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def _start(ws: Workspace, name: str, *extra: str) -> tuple[subprocess.Popen[bytes], Path, Path]:
    """Starts the command with its output going to files (a pipe could fill up and block it)."""
    out, err = ws.root / f"{name}.stdout", ws.root / f"{name}.stderr"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "neural_style", *ws.args(*COMMON, *extra)],
            cwd=ws.work,
            env=ws.env,
            stdout=stdout,
            stderr=stderr,
        )
    return process, out, err


def _wait_for(path: Path, process: subprocess.Popen[bytes], err: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"exit {process.returncode} before {path.name} appeared:\n{err.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise AssertionError(f"{path.name} did not appear within {TIMEOUT} s")
        time.sleep(0.02)


def _stop(process: subprocess.Popen[bytes], out: Path, err: Path, sig: int) -> Stage:
    process.send_signal(sig)
    try:
        process.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    return Stage(process.returncode, out.read_text(), err.read_text())


def _next_checkpoint(iteration: int) -> int:
    return 5 * (iteration // 5 + 1)


def _outputs(ws: Workspace) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(ws.work.glob("out*.png"))}


@dataclasses.dataclass
class Interrupted:
    """The stages of one run interrupted by SIGINT, SIGTERM and SIGKILL, refused once, then finished."""

    ws: Workspace
    sigint: Stage
    sigterm: Stage
    sigkill: Stage
    refused: Stage
    finished: Stage


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory: pytest.TempPathFactory) -> Interrupted:
    ws = _workspace(tmp_path_factory.mktemp("interrupted"))

    # 1. Ctrl-C once the first checkpoint image exists.
    process, out, err = _start(ws, "sigint", LONG)
    _wait_for(ws.work / "out_5.png", process, err)
    sigint = _stop(process, out, err, signal.SIGINT)
    sigint.files = {
        "output valid": _valid_png(ws.output),
        "state": _state_listing(ws),
        "saves": (_state_dir(ws) / "checkpoint").read_text() if (_state_dir(ws) / "checkpoint").exists() else "",
        "saved iteration": _saved_iteration(ws),
    }

    # 2. Resumed, then SIGTERM once it has written the next checkpoint image.
    process, out, err = _start(ws, "sigterm", LONG, "--resume")
    _wait_for(ws.work / f"out_{_next_checkpoint(sigint.stopped_at())}.png", process, err)
    sigterm = _stop(process, out, err, signal.SIGTERM)
    sigterm.files = {"output valid": _valid_png(ws.output), "saved iteration": _saved_iteration(ws)}

    # 3. Resumed, then kill -9 right after the next checkpoint image appears (while the state is being saved).
    checkpoint = _next_checkpoint(sigterm.stopped_at())
    process, out, err = _start(ws, "sigkill", LONG, "--resume")
    _wait_for(ws.work / f"out_{checkpoint}.png", process, err)
    sigkill = _stop(process, out, err, signal.SIGKILL)
    sigkill.files = {
        "checkpoint": checkpoint,
        "pngs": {p.name: _valid_png(p) for p in sorted(ws.work.glob("*.png"))},
        "temp files": _temp_files(ws.work),
        "saved iteration": _saved_iteration(ws),
        "state": _state_listing(ws),
    }

    # 4. A resume with another --style_weight is refused and changes nothing.
    before = (_outputs(ws), {p.name: p.read_bytes() for p in _state_dir(ws).iterdir() if p.is_file()})
    result = _run(ws, ws.args(*COMMON, f"--iterations={FINAL_ITERATIONS}", "--resume", "--style_weight=100"))
    refused = Stage(result.returncode, result.stdout, result.stderr)
    after = (_outputs(ws), {p.name: p.read_bytes() for p in _state_dir(ws).iterdir() if p.is_file()})
    refused.files = {"unchanged": before == after}

    # 5. Resumed with the same settings and fewer iterations (not part of the fingerprint): runs to the end.
    result = _run(ws, ws.args(*COMMON, f"--iterations={FINAL_ITERATIONS}", "--resume"))
    finished = Stage(result.returncode, result.stdout, result.stderr)
    return Interrupted(ws, sigint, sigterm, sigkill, refused, finished)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, subprocess.CompletedProcess[str]]:
    """The same run uninterrupted, also writing TensorBoard summaries (images every 2) and the checkpoint sheet."""
    ws = _workspace(tmp_path_factory.mktemp("reference"))
    extra = ("--tensorboard_dir=tb", "--tensorboard_images=2", "--checkpoint_sheet")
    return ws, _run(ws, ws.args(*COMMON, f"--iterations={FINAL_ITERATIONS}", *extra))


def _ok(stage: Stage | subprocess.CompletedProcess[str]) -> None:
    assert stage.returncode == 0, f"exit {stage.returncode}\nstdout:\n{stage.stdout}\nstderr:\n{stage.stderr}"


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_sigint_writes_output_saves_state_and_exits_130(interrupted: Interrupted) -> None:
    """Ctrl-C: exit 130, a last stderr line with the resume command, a valid output, a saved state."""
    stage = interrupted.sigint
    assert stage.returncode == 130, stage.stderr
    assert "Traceback" not in stage.stderr
    assert stage.last_line.startswith("neural-style: interrupted"), stage.last_line
    assert "resume with:" in stage.last_line and stage.last_line.endswith("--resume"), stage.last_line
    assert "--iterations=200" in stage.last_line and f"--output={interrupted.ws.output}" in stage.last_line
    assert stage.files["output valid"]
    assert "checkpoint" in stage.files["state"]
    assert stage.files["saved iteration"] == stage.stopped_at() >= 5


def test_sigint_resume_hint_is_a_runnable_command(interrupted: Interrupted) -> None:
    hint = interrupted.sigint.last_line.split("resume with: ", 1)[1]
    assert not hint.split()[0].endswith("__main__.py"), hint


def test_each_save_keeps_the_previous_state(interrupted: Interrupted) -> None:
    """The SIGINT run saved twice (at checkpoint 5 and on Ctrl-C): the 'checkpoint' file should list two states."""
    saves = re.findall(r'all_model_checkpoint_paths: "([^"]+)"', interrupted.sigint.files["saves"])
    assert len(set(saves)) == 2, interrupted.sigint.files


def test_sigterm_is_handled_like_ctrl_c(interrupted: Interrupted) -> None:
    """SIGTERM after a resume: exit 130, 'terminated', the resume hint, the output valid, the state saved."""
    stage = interrupted.sigterm
    assert stage.returncode == 130, stage.stderr
    assert "Traceback" not in stage.stderr
    assert stage.last_line.startswith("neural-style: terminated"), stage.last_line
    assert "resume with:" in stage.last_line and "--resume" in stage.last_line
    assert stage.resumed_at() == interrupted.sigint.stopped_at()
    assert stage.files["output valid"]
    assert stage.files["saved iteration"] == stage.stopped_at() > interrupted.sigint.stopped_at()


def test_sigkill_leaves_valid_files_and_at_most_one_orphan(interrupted: Interrupted) -> None:
    """kill -9 while saving: every image is a valid PNG; only an orphaned .tmp-* file of a write may remain.

    The state on disk is the last complete one: the checkpoint just reached if its save finished, else the
    previous one (the SIGTERM stop or the checkpoint before).
    """
    stage = interrupted.sigkill
    assert stage.returncode == -signal.SIGKILL
    assert stage.resumed_at() == interrupted.sigterm.stopped_at()
    pngs = stage.files["pngs"]
    assert "out.png" in pngs and f"out_{stage.files['checkpoint']}.png" in pngs
    assert all(pngs.values()), pngs
    assert len(stage.files["temp files"]) <= 1, stage.files["temp files"]
    checkpoint = stage.files["checkpoint"]
    saved = stage.files["saved iteration"]
    assert saved is not None and max(interrupted.sigterm.stopped_at(), checkpoint - 5) <= saved <= checkpoint


def test_resume_with_other_setting_is_refused(interrupted: Interrupted) -> None:
    """A different --style_weight: exit 2, one error line naming it, nothing written, the state kept."""
    stage = interrupted.refused
    assert stage.returncode == 2, stage.stderr
    assert "Traceback" not in stage.stderr
    errors = [line for line in stage.stderr.splitlines() if line.startswith("neural-style:")]
    assert errors == [stage.last_line], stage.stderr
    assert stage.last_line.startswith(ERROR_PREFIX + "--resume:")
    assert "--style_weight" in stage.last_line and "500" in stage.last_line and "100" in stage.last_line
    assert stage.files["unchanged"]


def test_resume_finishes_like_an_uninterrupted_run(interrupted: Interrupted, reference) -> None:
    """After SIGINT, SIGTERM and SIGKILL the resumed run ends with exit 0, the state removed, and the same result."""
    stage, ws = interrupted.finished, interrupted.ws
    _ok(stage)
    assert stage.resumed_at() == interrupted.sigkill.files["saved iteration"]
    assert not _state_dir(ws).exists()
    assert _valid_png(ws.output)
    ref_ws, ref_result = reference
    _ok(ref_result)
    # The same result within float tolerance (in practice identical): the losses printed at the end (%g, 6
    # digits) and the pixels (a float difference in the last bits may flip the rounding of a pixel by 1).
    np.testing.assert_allclose(_final_losses(stage.stdout), _final_losses(ref_result.stdout), rtol=2e-5)
    for name in ("out.png", "out_30.png"):
        got, want = _pixels(ws.work / name), _pixels(ref_ws.work / name)
        assert got.shape == want.shape and np.abs(got - want).max() <= 1, name


def _final_losses(stdout: str) -> list[float]:
    """The content, style, tv and total losses printed last."""
    values = re.findall(r"^\s*(content|style|tv|total) loss: (\S+)$", stdout, re.MULTILINE)
    assert [key for key, _ in values[-4:]] == ["content", "style", "tv", "total"], stdout
    return [float(value) for _, value in values[-4:]]


def test_resume_without_state_is_one_error_line(tmp_path: Path) -> None:
    """--resume with no <output>.state: exit 2 and one line, before TensorFlow is imported."""
    ws = _workspace(tmp_path)
    result = _run(ws, ws.args("--resume", "--iterations=3"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(ERROR_PREFIX + "--resume: no saved state in ")
    assert f"{ws.output}.state" in result.stderr
    assert not ws.output.exists()


def test_resume_with_iterations_already_done_loses_nothing(tiny, tmp_path: Path, parsed_flags) -> None:
    """In process: a state saved at iteration 4, resumed with --iterations 3."""
    weights, content, style = tiny
    files = {}
    for name, image in (("content", content), ("style", style)):
        files[name] = tmp_path / f"{name}.png"
        Image.fromarray(image.astype(np.uint8)).save(files[name])
    output = tmp_path / "out.png"

    def single_run(*extra: str) -> stylize_cli.SingleRun:
        fv = parsed_flags(
            *(f"--content={files['content']}", f"--styles={files['style']}", f"--output={output}", "--seed=0"),
            *("--checkpoint_iterations=2", f"--checkpoint_output={tmp_path / 'ck_{}.png'}", *extra),
        )
        config = stylize_cli.style_config(fv)
        inputs = stylize_cli.Inputs(content, [style], None, weights)
        stages = stylize_cli.Stages([20], [config.iterations])
        return stylize_cli.SingleRun(fv, inputs, config, stages, {"output": str(output)}, time.time())

    first = single_run("--iterations=8")
    run = Stylization(weights, content, [style], first.config)
    for record in run:
        if record.iteration == 4:
            break
    stylize_cli.SavedState(first.fv, run, first.config, weights).save()
    with contextlib.suppress(NeuralStyleError):  # refusing is one fix
        single_run("--iterations=3", "--resume").run()
    assert Path(f"{output}.state").is_dir() or output.exists(), "the state was deleted and nothing was written"


# ------------------------------------------------------------------------------------ TensorBoard and the sheet


def _events(directory: Path) -> tuple[dict[str, dict[int, float]], dict[int, tuple[int, int]]]:
    """({scalar tag: {step: value}}, {image step: (width, height)}) of the event files in ``directory``."""
    scalars: dict[str, dict[int, float]] = {}
    images: dict[int, tuple[int, int]] = {}
    files = sorted(directory.glob("events.out.tfevents.*"))
    assert files, f"no event file in {directory}"
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                if plugin == "scalars":
                    steps = scalars.setdefault(value.tag, {})
                    assert event.step not in steps, f"{value.tag} written twice at step {event.step}"
                    steps[event.step] = float(tf.make_ndarray(value.tensor))
                elif plugin == "images":
                    width, height, *pngs = tf.make_ndarray(value.tensor).tolist()
                    assert len(pngs) == 1
                    images[event.step] = (int(width), int(height))
    return scalars, images


def test_tensorboard_loss_terms_every_iteration_and_images(reference) -> None:
    """loss/{content,style,tv,total} at steps 0..29 equal the printed losses; images every 2 iterations."""
    ws, result = reference
    _ok(result)
    scalars, images = _events(ws.work / "tb")
    assert set(scalars) == {"loss/content", "loss/style", "loss/tv", "loss/total"}
    for tag, steps in scalars.items():
        assert sorted(steps) == list(range(FINAL_ITERATIONS)), tag
    printed = [float(v) for v in re.findall(r"^\s*total loss: (\S+)$", result.stdout, re.MULTILINE)]
    assert len(printed) == FINAL_ITERATIONS + 1  # iteration 0 to 30
    assert math.isclose(scalars["loss/total"][0], printed[0], rel_tol=1e-4)
    # The step-k scalars are those of the image after k steps, i.e. the losses printed at iteration k.
    np.testing.assert_allclose([scalars["loss/total"][k] for k in range(FINAL_ITERATIONS)], printed[:-1], rtol=1e-4)
    for k in range(FINAL_ITERATIONS):
        parts = sum(scalars[f"loss/{key}"][k] for key in ("content", "style", "tv"))
        assert math.isclose(parts, scalars["loss/total"][k], rel_tol=1e-5)
    assert sorted(images) == list(range(2, FINAL_ITERATIONS + 1, 2))
    assert set(images.values()) == {CONTENT_SIZE}


def test_checkpoint_sheet_has_one_tile_per_checkpoint(reference) -> None:
    """out_checkpoints.png: 6 tiles (iterations 5..30) of 256 px in 4 columns and 2 rows, the last two empty."""
    ws, result = reference
    _ok(result)
    width, height = CONTENT_SIZE
    tile_width, caption, margin, columns = 256, 18, 6, 4  # neural_style.sweep.contact_sheet
    tile_height = round(height * tile_width / width)  # 20 * 256 / 24 = 213.3 -> 213
    rows = math.ceil(FINAL_ITERATIONS // 5 / columns)
    sheet_path = ws.work / "out_checkpoints.png"
    with Image.open(sheet_path) as sheet:
        expected = (columns * (tile_width + margin) + margin, rows * (tile_height + caption + margin) + margin)
        assert sheet.size == expected == (1054, 480)
        pixels = np.asarray(sheet.convert("RGB"))
    for i in range(rows * columns):
        x = margin + (i % columns) * (tile_width + margin)
        y = margin + (i // columns) * (tile_height + caption + margin)
        tile = pixels[y : y + tile_height, x : x + tile_width]
        assert (tile == 255).all() == (i >= FINAL_ITERATIONS // 5), f"tile {i}"


# ---------------------------------------------------------------------------------------------- the memory guard

# Per input pixel, the floats of conv, relu and pool outputs through relu5_1 for channels (4, 6, 8, 8, 8):
#   block 1 at full size:  4 x (conv, relu) x 2 = 16, pool1 (4 channels / 4)       = 1       -> 17
#   block 2 at 1/4:        6/4 x 4 = 6,              pool2 (6 / 16)                 = 0.375   -> 6.375
#   block 3 at 1/16:       8/16 x 8 = 4,             pool3 (8 / 64)                 = 0.125   -> 4.125
#   block 4 at 1/64:       8/64 x 8 = 1,             pool4 (8 / 256)                = 0.03125 -> 1.03125
#   block 5 at 1/256:      conv5_1, relu5_1: 8/256 x 2                                        = 0.0625
TINY_FLOATS_PER_PIXEL = 17 + 6.375 + 4.125 + 1.03125 + 0.0625  # 28.59375
# Kernel floats: 3x3 x (3*4 + 4*4 + 4*6 + 6*6 + 6*8 + 3*8*8 + 4*8*8 + 4*8*8) = 9 x 840 = 7560, 4 bytes each.
TINY_WEIGHT_BYTES = 7560 * 4
RUNTIME_BYTES = 700 * 2**20


@pytest.fixture(scope="module")
def tiny_weights(tiny) -> VggWeights:
    return tiny[0]


def test_activation_floats_per_pixel_by_hand(tiny_weights: VggWeights) -> None:
    assert memory.activation_floats_per_pixel(tiny_weights, "relu5_1") == TINY_FLOATS_PER_PIXEL
    assert memory.activation_floats_per_pixel(tiny_weights, "relu1_1") == 4 + 4
    assert memory.activation_floats_per_pixel(tiny_weights, "pool1") == 17
    assert memory.activation_floats_per_pixel(tiny_weights, "relu2_1") == 17 + 1.5 + 1.5


def test_estimate_bytes_by_hand(tiny_weights: VggWeights) -> None:
    """runtime + kernels + floats/pixel x pixels x batch x 4 bytes x 1.25 (backward pass)."""
    assert memory.estimate_bytes(tiny_weights, 0, 0) == RUNTIME_BYTES + TINY_WEIGHT_BYTES
    # 28.59375 x 100 x 200 x 4 x 1.25 = 2,859,375 exactly
    assert memory.estimate_bytes(tiny_weights, 100, 200) == RUNTIME_BYTES + TINY_WEIGHT_BYTES + 2_859_375
    assert memory.estimate_bytes(tiny_weights, 100, 200, batch=3) == RUNTIME_BYTES + TINY_WEIGHT_BYTES + 8_578_125
    assert memory.estimate_bytes(tiny_weights, 100, 200, deepest="relu1_1") == (
        RUNTIME_BYTES + TINY_WEIGHT_BYTES + 8 * 100 * 200 * 5
    )


def test_largest_width_by_hand(tiny_weights: VggWeights) -> None:
    """(available - fixed) / (bytes per pixel x aspect), square-rooted and floored."""
    fixed = RUNTIME_BYTES + TINY_WEIGHT_BYTES
    assert memory.largest_width(tiny_weights, 1.0, fixed) == 0
    assert memory.largest_width(tiny_weights, 1.0, fixed - 1) == 0
    # 142.96875 bytes per pixel (28.59375 x 5); 100 x 100 pixels need 1,429,687.5 bytes
    assert memory.largest_width(tiny_weights, 1.0, fixed + 1_429_688) == 100
    assert memory.largest_width(tiny_weights, 0.5, fixed + 1_429_688 // 2 + 1) == 100
    assert memory.largest_width(tiny_weights, 1.0, fixed + 1_429_688, batch=4) == 50


def test_largest_width_fits(tiny_weights: VggWeights) -> None:
    available = RUNTIME_BYTES + TINY_WEIGHT_BYTES + 10**9
    width = memory.largest_width(tiny_weights, 1.0, available)
    assert memory.estimate_bytes(tiny_weights, width, width) <= available
    assert memory.estimate_bytes(tiny_weights, width + 1, width + 1) > available


def test_available_bytes_from_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24684096 kB\nMemFree:         1000000 kB\nMemAvailable:    2048000 kB\n")
    assert memory.available_bytes(str(meminfo), cgroup_files=[str(tmp_path / "none")]) == 2048000 * 1024


def test_available_bytes_capped_by_cgroup(tmp_path: Path) -> None:
    """A cgroup v2 limit minus the cgroup's usage caps MemAvailable."""
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemAvailable:    8388608 kB\n")  # 8 GiB
    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    (cgroup / "memory.max").write_text("4294967296\n")  # 4 GiB
    (cgroup / "memory.current").write_text("1073741824\n")  # 1 GiB used
    files = [str(cgroup / "memory.max")]
    assert memory.available_bytes(str(meminfo), cgroup_files=files) == 3 * 2**30
    (cgroup / "memory.max").write_text("max\n")  # no limit
    assert memory.available_bytes(str(meminfo), cgroup_files=files) == 8 * 2**30
    (cgroup / "memory.max").write_text("1073741824\n")
    (cgroup / "memory.current").unlink()  # usage unknown: counted as 0
    assert memory.available_bytes(str(meminfo), cgroup_files=files) == 2**30


def test_available_bytes_cgroup_v1_unlimited_and_unknown(tmp_path: Path) -> None:
    cgroup = tmp_path / "memory"
    cgroup.mkdir()
    (cgroup / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # v1 "no limit"
    (cgroup / "memory.usage_in_bytes").write_text("5\n")
    files = [str(cgroup / "memory.limit_in_bytes")]
    assert memory.available_bytes(str(tmp_path / "no-meminfo"), cgroup_files=files) is None
    (cgroup / "memory.limit_in_bytes").write_text("1005\n")
    assert memory.available_bytes(str(tmp_path / "no-meminfo"), cgroup_files=files) == 1000
    bad = tmp_path / "bad-meminfo"
    bad.write_text("MemAvailable: lots kB\n")
    assert memory.available_bytes(str(bad), cgroup_files=[str(tmp_path / "none")]) is None


def test_check_memory_in_process(tiny_weights: VggWeights, parsed_flags, monkeypatch: pytest.MonkeyPatch) -> None:
    """Too large for the available memory: NeuralStyleError naming --width and the width that fits."""
    available = RUNTIME_BYTES + TINY_WEIGHT_BYTES + 1_429_688  # 100 x 100 fits (see above)
    monkeypatch.setattr(memory, "available_bytes", lambda *args, **kwargs: available)
    fv = parsed_flags()
    stylize_cli.check_memory(fv, tiny_weights, 100, 100, 1)
    with pytest.raises(NeuralStyleError, match=r"use --width 100 or less") as info:
        stylize_cli.check_memory(fv, tiny_weights, 200, 200, 1)
    assert "--nomemory_guard" in str(info.value)
    with pytest.raises(NeuralStyleError, match=r"--batch_size"):
        stylize_cli.check_memory(fv, tiny_weights, 100, 100, 2)
    stylize_cli.check_memory(parsed_flags("--nomemory_guard"), tiny_weights, 20000, 20000, 8)  # not checked
    monkeypatch.setattr(memory, "available_bytes", lambda *args, **kwargs: None)
    stylize_cli.check_memory(fv, tiny_weights, 20000, 20000, 8)  # unknown memory: not refused


GUARD_CHANNELS = (128, 128, 64, 64, 64)  # ~3.6 kB per pixel: the guard refuses a few thousand pixels wide


def test_memory_guard_refuses_too_large_width_before_tensorflow(tmp_path: Path) -> None:
    """A width needing more than the available memory: exit 2 within seconds, one line naming a --width that
    fits, nothing written, TensorFlow never imported."""
    ws = _workspace(tmp_path)
    write_vgg_mat(ws.network, channels=GUARD_CHANNELS, tamper=_he_scaled)
    vgg = read_matconvnet(ws.network)
    available = memory.available_bytes()
    if available is None:
        pytest.skip("available memory unknown on this system")
    aspect = CONTENT_SIZE[1] / CONTENT_SIZE[0]
    fits = memory.largest_width(vgg, aspect, available)
    width = int(fits * 1.4) + 10
    if width > 8000:
        pytest.skip(f"{available / 2**30:.0f} GiB available: the refused width {width} would take long to resize")
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(_PROBE)
    env = ws.env
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(probe), env.get("PYTHONPATH")) if p)
    env["NEURAL_STYLE_TEST_IMPORTS"] = str(tmp_path / IMPORTS_MARKER)
    before = sorted(p.name for p in ws.work.iterdir())

    result = _run(ws, ws.args(f"--width={width}", "--iterations=5"), env=env)

    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    line = result.stderr.strip()
    assert line.startswith(ERROR_PREFIX) and "GiB" in line, line
    suggested = re.search(r"use --width (\d+) or less", line)
    assert suggested, line
    assert 0 < int(suggested.group(1)) < width
    assert abs(int(suggested.group(1)) - fits) <= max(10, fits // 20)  # the memory available moved a little
    assert (tmp_path / IMPORTS_MARKER).read_text() == "", "refused before TensorFlow is imported"
    assert sorted(p.name for p in ws.work.iterdir()) == before


def test_nomemory_guard_flag_is_accepted(tmp_path: Path) -> None:
    """--nomemory_guard parses; the run goes on to the next check (here: --iterations 0 is refused)."""
    ws = _workspace(tmp_path)
    result = _run(ws, ws.args("--nomemory_guard", "--iterations=0"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith(ERROR_PREFIX + "--iterations is 0"), result.stderr
    result = _run(ws, ws.args("--memory_guard=maybe"))
    assert result.returncode == 2 and "memory_guard" in result.stderr


# ------------------------------------------------------------------------------------------- saving the state


def test_state_save_failure_is_a_neural_style_error(tiny, tmp_path: Path) -> None:
    from neural_style.run_state import RunState

    output = tmp_path / "out.png"
    Path(f"{output}.state").write_text("a file where the state directory goes\n")
    run = _stylization(tiny)
    with pytest.raises(NeuralStyleError, match=r"out\.png\.state"):
        RunState(stylize_cli.state_dir(str(output)), {"run": run.state}, {"--seed": 0}).save()
