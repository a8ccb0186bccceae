"""Long runs of the ``neural-style`` command (neural_style.cli.stylize): Ctrl-C, SIGTERM, kill -9, --resume,
TensorBoard summaries and the checkpoint sheet.

``python -m neural_style`` runs in subprocesses on conftest's tiny network: one run is interrupted three times
(SIGINT, SIGTERM, SIGKILL), refused once with a changed setting and finally resumed to the end; its result is
compared with an uninterrupted run that also writes TensorBoard summaries and a checkpoint sheet. TensorFlow runs
cost ~10 s each, so there are six of them. In process: a resume asking for fewer iterations than were done, and a
state that cannot be saved. That a :class:`Stylization` restored from its state continues exactly is tested in
test_stylization.py.
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
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    CONTENT_SIZE,
    ERROR_PREFIX,
    Workspace,
    assert_ok,
    make_workspace,
    run_neural_style,
    stylize_flags,
)
from PIL import Image

from neural_style.cli import run as run_cli
from neural_style.cli.command import Interruption
from neural_style.cli.inputs import Inputs
from neural_style.cli.options import style_config
from neural_style.cli.plan import Stages
from neural_style.cli.saved_run import SavedState, fingerprint, state_dir
from neural_style.config import StyleConfig
from neural_style.errors import NeuralStyleError
from neural_style.run_state import RunState
from neural_style.stylization import Stylization

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
    ws = make_workspace(tmp_path_factory.mktemp("interrupted"))

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
    result = run_neural_style(
        ws, ws.args(*COMMON, f"--iterations={FINAL_ITERATIONS}", "--resume", "--style_weight=100")
    )
    refused = Stage(result.returncode, result.stdout, result.stderr)
    after = (_outputs(ws), {p.name: p.read_bytes() for p in _state_dir(ws).iterdir() if p.is_file()})
    refused.files = {"unchanged": before == after}

    # 5. Resumed with the same settings and fewer iterations (not part of the fingerprint): runs to the end.
    result = run_neural_style(ws, ws.args(*COMMON, f"--iterations={FINAL_ITERATIONS}", "--resume"))
    finished = Stage(result.returncode, result.stdout, result.stderr)
    return Interrupted(ws, sigint, sigterm, sigkill, refused, finished)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, subprocess.CompletedProcess[str]]:
    """The same run uninterrupted, also writing TensorBoard summaries (images every 2) and the checkpoint sheet."""
    ws = make_workspace(tmp_path_factory.mktemp("reference"))
    extra = ("--tensorboard_dir=tb", "--tensorboard_images=2", "--checkpoint_sheet")
    return ws, run_neural_style(ws, ws.args(*COMMON, f"--iterations={FINAL_ITERATIONS}", *extra))


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.mark.slow
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


@pytest.mark.slow
def test_sigint_resume_hint_is_a_runnable_command(interrupted: Interrupted) -> None:
    hint = interrupted.sigint.last_line.split("resume with: ", 1)[1]
    assert not hint.split()[0].endswith("__main__.py"), hint


@pytest.mark.slow
def test_each_save_keeps_the_previous_state(interrupted: Interrupted) -> None:
    """The SIGINT run saved twice (at checkpoint 5 and on Ctrl-C): the 'checkpoint' file should list two states."""
    saves = re.findall(r'all_model_checkpoint_paths: "([^"]+)"', interrupted.sigint.files["saves"])
    assert len(set(saves)) == 2, interrupted.sigint.files


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_resume_finishes_like_an_uninterrupted_run(interrupted: Interrupted, reference) -> None:
    """After SIGINT, SIGTERM and SIGKILL the resumed run ends with exit 0, the state removed, and the same result."""
    stage, ws = interrupted.finished, interrupted.ws
    assert_ok(stage)
    assert stage.resumed_at() == interrupted.sigkill.files["saved iteration"]
    assert not _state_dir(ws).exists()
    assert _valid_png(ws.output)
    ref_ws, ref_result = reference
    assert_ok(ref_result)
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


@pytest.mark.slow
def test_resume_without_state_is_one_error_line(tmp_path: Path) -> None:
    """--resume with no <output>.state: exit 2 and one line, before TensorFlow is imported."""
    ws = make_workspace(tmp_path)
    result = run_neural_style(ws, ws.args("--resume", "--iterations=3"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [result.stderr.strip()]
    assert result.stderr.startswith(ERROR_PREFIX + "--resume: no saved state in ")
    assert f"{ws.output}.state" in result.stderr
    assert not ws.output.exists()


def test_resume_with_iterations_already_done_loses_nothing(small_problem, tmp_path: Path) -> None:
    """In process: a state saved at iteration 4, resumed with --iterations 3."""
    weights, content, style = small_problem
    files = {}
    for name, image in (("content", content), ("style", style)):
        files[name] = tmp_path / f"{name}.png"
        Image.fromarray(image.astype(np.uint8)).save(files[name])
    output = tmp_path / "out.png"

    def single_run(*extra: str) -> run_cli.SingleRun:
        fv = stylize_flags(
            *(f"--content={files['content']}", f"--styles={files['style']}", f"--output={output}", "--seed=0"),
            *("--checkpoint_iterations=2", f"--checkpoint_output={tmp_path / 'ck_{}.png'}", *extra),
        )
        config = style_config(fv)
        inputs = Inputs(content, [style], None, weights)
        stages = Stages([20], [config.iterations])
        return run_cli.SingleRun(fv, inputs, config, stages, {"output": str(output)}, time.time())

    first = single_run("--iterations=8")
    run = Stylization(weights, content, [style], first.config)
    for record in run:
        if record.iteration == 4:
            break
    settings = fingerprint(first.fv, first.config, weights, first.stages)
    SavedState(first.fv, run, 0, settings).save()
    with contextlib.suppress(NeuralStyleError):  # refusing is one fix
        single_run("--iterations=3", "--resume").run()
    assert Path(f"{output}.state").is_dir() or output.exists(), "the state was deleted and nothing was written"


# --------------------------------------------------------------------- L-BFGS and coarse to fine, in process


class _StopAfter(Interruption):
    """An interruption that arrives after ``records`` records (as if Ctrl-C came then)."""

    def __init__(self, records: int) -> None:
        super().__init__()
        self.left = records

    def __bool__(self) -> bool:
        self.left -= 1
        if self.left < 0:
            self.reason = "interrupted"
        return self.reason is not None


def _single_run(problem, tmp_path: Path, stages: list[int], *extra: str) -> run_cli.SingleRun:
    """A SingleRun of the small problem (final width 20) writing tmp_path/out.png, as the command would build it."""
    weights, content, style = problem
    files = {}
    for name, image in (("content", content), ("style", style)):
        files[name] = tmp_path / f"{name}.png"
        if not files[name].exists():
            Image.fromarray(image.astype(np.uint8)).save(files[name])
    fv = stylize_flags(
        *(f"--content={files['content']}", f"--styles={files['style']}", f"--output={tmp_path / 'out.png'}"),
        *("--seed=0", "--checkpoint_iterations=2", f"--checkpoint_output={tmp_path / 'ck_{}.png'}"),
        *("--progress_write", "--overwrite", *extra),
    )
    config = style_config(fv)
    inputs = Inputs(content, [style], None, weights)
    plan = Stages(stages, [config.iterations // len(stages)] * len(stages))
    paths = {"output": str(tmp_path / "out.png"), "progress_write": str(tmp_path / "progress.txt")}
    return run_cli.SingleRun(fv, inputs, config, plan, paths, time.time())


def _interrupt(monkeypatch: pytest.MonkeyPatch, run: run_cli.SingleRun, records: int) -> None:
    monkeypatch.setattr(run_cli, "interrupted_by", lambda hooks: contextlib.nullcontext(_StopAfter(records)))
    with pytest.raises(SystemExit) as stopped:
        run.run()
    assert stopped.value.code == 130
    monkeypatch.undo()


def _progress(tmp_path: Path) -> np.ndarray:
    return np.loadtxt(tmp_path / "progress.txt", ndmin=2)


@pytest.mark.slow
@pytest.mark.parametrize("stop_after", [3, 8], ids=["in-the-coarse-stage", "in-the-fine-stage"])
def test_coarse_to_fine_adam_resumes_exactly(
    small_problem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_after: int, capsys
) -> None:
    """--scales 10,20 with 6 Adam iterations each: stopped in either stage and resumed, the output and the loss
    history equal those of an uninterrupted run."""
    whole = tmp_path / "whole"
    whole.mkdir()
    _single_run(small_problem, whole, [10, 20], "--iterations=12").run()
    _interrupt(monkeypatch, _single_run(small_problem, tmp_path, [10, 20], "--iterations=12"), stop_after)
    assert Path(f"{tmp_path / 'out.png'}.state").is_dir()
    capsys.readouterr()
    _single_run(small_problem, tmp_path, [10, 20], "--iterations=12", "--resume").run()
    said = capsys.readouterr().out
    scale = 1 if stop_after <= 6 else 2
    assert re.search(rf"^Resumed at iteration \d+/12, scale {scale}/2 \({10 * scale} px\)$", said, re.MULTILINE), said
    got, want = (np.asarray(Image.open(d / "out.png"), np.float32) for d in (tmp_path, whole))
    np.testing.assert_allclose(got, want, atol=1.0)
    assert not Path(f"{tmp_path / 'out.png'}.state").exists()


@pytest.mark.slow
def test_lbfgs_resumes_exactly(small_problem, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """L-BFGS stopped after 4 iterations and resumed (its history is part of the saved state) writes the output and
    the loss history of an uninterrupted run."""
    extra = ("--iterations=8", "--optimizer=lbfgs", "--print_iterations=1")
    whole = tmp_path / "whole"
    whole.mkdir()
    _single_run(small_problem, whole, [20], *extra).run()
    _interrupt(monkeypatch, _single_run(small_problem, tmp_path, [20], *extra), 4)  # after records 0..4
    stopped = _progress(tmp_path)
    assert stopped[-1, 0] == 4
    capsys.readouterr()
    _single_run(small_problem, tmp_path, [20], *extra, "--resume").run()
    said = capsys.readouterr().out
    assert re.search(r"^Resumed at iteration 4/8$", said, re.MULTILINE), said
    after, uninterrupted = _progress(tmp_path), _progress(whole)
    assert list(after[:, 0]) == list(range(9)), "the history is the whole run's: rows 0..8"
    np.testing.assert_allclose(after, uninterrupted, rtol=1e-5)
    got, want = (np.asarray(Image.open(d / "out.png"), np.float32) for d in (tmp_path, whole))
    np.testing.assert_allclose(got, want, atol=1.0)


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


@pytest.mark.slow
def test_tensorboard_loss_terms_every_iteration_and_images(reference) -> None:
    """loss/{content,style,tv,total} at steps 0..29 equal the printed losses; images every 2 iterations."""
    ws, result = reference
    assert_ok(result)
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


@pytest.mark.slow
def test_checkpoint_sheet_has_one_tile_per_checkpoint(reference) -> None:
    """out_checkpoints.png: 6 tiles (iterations 5..30) of 256 px in 4 columns and 2 rows, the last two empty."""
    ws, result = reference
    assert_ok(result)
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


# ------------------------------------------------------------------------------------------- saving the state


def test_state_save_failure_is_a_neural_style_error(small_problem, tmp_path: Path) -> None:
    output = tmp_path / "out.png"
    Path(f"{output}.state").write_text("a file where the state directory goes\n")
    weights, content, style = small_problem
    run = Stylization(
        weights, content, [style], StyleConfig(iterations=8, checkpoint_iterations=2, print_iterations=1, seed=0)
    )
    with pytest.raises(NeuralStyleError, match=r"out\.png\.state"):
        RunState(state_dir(str(output)), {"run": run.state}, {"--seed": 0}).save()
