"""Tests of the options that make a run faster: L-BFGS, the stopping rules, coarse-to-fine, bfloat16 and XLA.

Optimisations run on a tiny He-scaled synthetic VGG (see conftest.py) and 24x20 images, a few iterations each; the
CLI tests reuse test_cli.py's workspace and cost several seconds per successful run, so there are only two of
those. Whether the options are actually faster is measured by ``scripts/benchmark_quality.py``, not here.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
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
    _ok,
    _run,
    _style_array,
    _workspace,
)

from neural_style.coarse import MIN_STAGE_WIDTH, check_widths, coarse_to_fine, split_iterations, stage_widths
from neural_style.config import TOLERANCE_WINDOW, Candidate, StyleConfig
from neural_style.engines import AdamEngine
from neural_style.errors import NeuralStyleError
from neural_style.image_io import resize, style_size
from neural_style.matconvnet import VggWeights, load_vgg
from neural_style.stylization import Progress, build_objective, initial_image, stylize
from neural_style.vgg import preprocess

LOSS_KEYS = ("content", "style", "tv", "total")
# For comparisons of one Adam step computed two ways: with epsilon far above the gradients (|g| ~ 1e2 here) the step
# is proportional to the gradient. At the default epsilon 1e-8 the first step is lr x sign(g), which turns rounding
# in a near-zero gradient component into a full 10-level jump of that pixel.
LINEAR_ADAM = {"learning_rate": 1e3, "epsilon": 1e4}


@dataclasses.dataclass
class Tiny:
    weights: VggWeights
    content: np.ndarray  # [20, 24, 3], smooth, well inside 0..255
    style: np.ndarray  # [16, 16, 3]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    path = tmp_path_factory.mktemp("tiny") / "vgg.mat"
    write_vgg_mat(path, channels=CHANNELS, tamper=_he_scaled)
    return Tiny(load_vgg(path), _content_array().astype(np.float32), _style_array().astype(np.float32))


def _config(**changes: Any) -> StyleConfig:
    """Settings of the tiny runs: seeded noise start, tv_weight 1 (neural-style's 1e2 blurs 24x20 images)."""
    return dataclasses.replace(StyleConfig(iterations=8, seed=0, tv_weight=1.0), **changes)


def _run_stylize(tiny: Tiny, config: StyleConfig, **options: Any) -> list[Progress]:
    return list(stylize(tiny.weights, tiny.content, [tiny.style], config, **options))


def _step_losses(records: Iterable[Progress]) -> list[float]:
    return [float(r.step_loss[0]) for r in records if r.step_loss is not None]


def _image(record: Progress) -> np.ndarray:
    assert record.image is not None, f"the record of iteration {record.iteration} has no image"
    return record.image


def _losses(record: Progress) -> dict[str, np.ndarray]:
    assert record.losses is not None, f"the record of iteration {record.iteration} has no losses"
    return record.losses


def _step_loss(record: Progress) -> np.ndarray:
    assert record.step_loss is not None, f"the record of iteration {record.iteration} has no step loss"
    return record.step_loss


# ---------------------------------------------------------------------------------------------------- L-BFGS


@pytest.fixture(scope="module")
def lbfgs_run(tiny: Tiny) -> list[Progress]:
    """Eight L-BFGS iterations with every loss reported (iteration 0 included)."""
    return _run_stylize(tiny, _config(optimizer="lbfgs", print_iterations=1))


def test_lbfgs_lowers_the_loss(lbfgs_run: list[Progress]) -> None:
    """Every iteration's loss is at or below the previous one's, and 8 iterations at least halve the start loss."""
    assert [r.iteration for r in lbfgs_run] == list(range(9))
    totals = [float(_losses(r)["total"][0]) for r in lbfgs_run]
    assert np.isfinite(totals).all()
    assert all(b <= a for a, b in zip(totals, totals[1:], strict=False)), totals
    assert totals[-1] < 0.5 * totals[0], totals
    # For L-BFGS the step loss is the loss at the new iterate, i.e. the loss the record reports.
    np.testing.assert_allclose(_step_losses(lbfgs_run), totals[1:], rtol=1e-5)
    assert lbfgs_run[-1].final and _image(lbfgs_run[-1]).shape == (20, 24, 3)


def test_lbfgs_counts_evaluations(lbfgs_run: list[Progress]) -> None:
    """Each iteration evaluates the loss at least once: the count grows and is never below the iteration."""
    records = lbfgs_run[1:]
    evaluations = [r.evaluations for r in records]
    assert all(isinstance(e, int) for e in evaluations), evaluations
    assert evaluations[0] is not None and evaluations[0] >= 2, "the first iteration evaluates the start and a step"
    counts = [e for e in evaluations if e is not None]
    assert all(e >= r.iteration for e, r in zip(counts, records, strict=True)), counts
    assert all(b > a for a, b in zip(counts, counts[1:], strict=False)), counts


def test_lbfgs_keeps_pixels_within_bounds(tiny: Tiny) -> None:
    """From a black-and-white start Adam leaves 0..255 within 5 steps; L-BFGS stays inside and rests on both bounds."""
    blocks = np.array([[0, 255, 0], [255, 0, 255]], np.float32)
    content = np.kron(blocks[..., None] * np.ones(3, np.float32), np.ones((10, 8, 1), np.float32))  # [20, 24, 3]

    def final_image(optimizer: str) -> np.ndarray:
        config = _config(iterations=5, optimizer=optimizer, initial_noiseblend=0.0)
        records = list(stylize(tiny.weights, content, [tiny.style], config))
        assert records[-1].final
        return _image(records[-1])

    adam = final_image("adam")
    assert adam.min() < -1.0 and adam.max() > 256.0, "the test needs a problem whose pixels want to leave 0..255"
    image = final_image("lbfgs")
    assert image.min() >= -1e-3 and image.max() <= 255.0 + 1e-3, (image.min(), image.max())
    assert (np.abs(image) <= 1e-3).any() and (np.abs(image - 255.0) <= 1e-3).any(), "both bounds should be active"


def test_lbfgs_refuses_a_batch(tiny: Tiny) -> None:
    candidates = [Candidate.make((1.0,), 500.0), Candidate.make((1.0,), 100.0)]
    with pytest.raises(NeuralStyleError, match="one image at a time"):
        _run_stylize(tiny, _config(optimizer="lbfgs"), candidates=candidates)


# ----------------------------------------------------------------------------------------------- stopping rules


@pytest.fixture(scope="module")
def adam_run(tiny: Tiny) -> list[Progress]:
    """Adam with tolerance 1e9 (so it stops once the window is full) and stop_at_loss 0 (never reached).

    Its step losses are also the reference the stop_at_loss test is checked against.
    """
    return _run_stylize(tiny, _config(iterations=50, tolerance=1e9, stop_at_loss=0.0))


def test_huge_tolerance_stops_right_after_the_window(adam_run: list[Progress]) -> None:
    """Any improvement is 'too small' for tolerance 1e9: the run ends as soon as the window of 20 is full.

    stop_at_loss 0 is never reached (the loss is positive), so it does not end the run before.
    """
    assert TOLERANCE_WINDOW == 20
    assert [r.iteration for r in adam_run] == list(range(1, TOLERANCE_WINDOW + 2))
    assert [r.final for r in adam_run] == [False] * TOLERANCE_WINDOW + [True]
    assert _image(adam_run[-1]).shape == (20, 24, 3)
    assert all(r.evaluations is None for r in adam_run), "evaluations are counted for L-BFGS only"


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_stop_at_loss_stops_at_the_first_iteration_reaching_it(
    tiny: Tiny, adam_run: list[Progress], lbfgs_run: list[Progress], optimizer: str
) -> None:
    """The run ends (final, with the result image) at the first iteration whose step loss is <= the target."""
    reference = _step_losses(adam_run if optimizer == "adam" else lbfgs_run)
    target = reference[3]  # reached at iteration 4 (the losses fall monotonically on this problem)
    assert all(loss > target for loss in reference[:3]), reference
    records = _run_stylize(tiny, _config(iterations=50, optimizer=optimizer, stop_at_loss=target))
    assert [r.iteration for r in records] == [1, 2, 3, 4]
    assert [r.final for r in records] == [False, False, False, True]
    assert _image(records[-1]).shape == (20, 24, 3) and np.isfinite(_losses(records[-1])["total"]).all()
    np.testing.assert_allclose(_step_losses(records), reference[:4], rtol=1e-5)


def test_stop_at_loss_result_reaches_the_target(tiny: Tiny, adam_run: list[Progress]) -> None:
    """When Adam's step loss (of the image the step started from) reaches the target, that image is the result.

    Adam's loss is not monotonic: here the step after the first local minimum makes the image worse. A target equal
    to that minimum stops the run there, and the image that reached it must be the one kept (the best seen), not
    the worse one the stopping step produced.
    """
    reference = _step_losses(adam_run)
    k = next(
        k for k in range(1, len(reference) - 1) if reference[k + 1] > reference[k] and reference[k] < min(reference[:k])
    )
    records = _run_stylize(tiny, _config(iterations=50, stop_at_loss=reference[k]))
    assert records[-1].iteration == k + 1 and records[-1].final
    assert float(_losses(records[-1])["total"][0]) <= reference[k] * (1 + 1e-5)


# ------------------------------------------------------------------------------------------------ coarse-to-fine


def test_stage_widths() -> None:
    """Widths halve from the output width; a stage narrower than 32 px is refused."""
    assert MIN_STAGE_WIDTH == 32
    assert stage_widths(256, 1) == [256]
    assert stage_widths(256, 3) == [64, 128, 256]
    assert stage_widths(300, 2) == [150, 300]
    assert stage_widths(250, 3) == [62, 125, 250]  # 62.5 rounds to even
    assert stage_widths(128, 3) == [32, 64, 128]
    with pytest.raises(NeuralStyleError, match="^scales is 0"):
        stage_widths(256, 0)
    with pytest.raises(NeuralStyleError, match="first stage 16 px wide"):
        stage_widths(128, 4)


def test_split_iterations() -> None:
    """Equal shares; the remainder goes to the last (full-size) stage."""
    assert split_iterations(10, 3) == [3, 3, 4]
    assert split_iterations(9, 3) == [3, 3, 3]
    assert split_iterations(5, 2) == [2, 3]
    assert split_iterations(7, 1) == [7]
    assert split_iterations(3, 3) == [1, 1, 1]
    with pytest.raises(NeuralStyleError, match="^iterations 2 cannot be shared by 3 scales"):
        split_iterations(2, 3)


@pytest.mark.parametrize("widths", [[64, 32, 128], [64, 64, 128], [16, 128], [32, 64], [32, 64, 256]])
def test_check_widths_rejects(widths: list[int]) -> None:
    with pytest.raises(NeuralStyleError, match="must increase from at least 32 px to the output width 128"):
        check_widths(widths, 128)


def test_check_widths_accepts() -> None:
    check_widths([32, 100, 128], 128)
    check_widths([128], 128)


def test_coarse_to_fine_stages(tiny: Tiny) -> None:
    """Stages run in order at their sizes, each from the previous result upsampled; the result has the content's size.

    The content is 64x48 with stages 32 and 64 px wide, so stage 0 works on 32x24 images. The stopping rule
    (``stop_at_loss`` reached at once) fires only in the last stage.
    """
    content = resize(tiny.content, (48, 64))
    config = _config(stop_at_loss=1e30)
    records = list(coarse_to_fine(tiny.weights, content, [tiny.style], config, widths=[32, 64], iterations=[3, 4]))
    assert [(stage, r.iteration) for stage, r in records] == [(0, 1), (0, 2), (0, 3), (1, 1)]
    assert [r.final for _, r in records] == [False, False, True, True]
    assert [r.iterations for _, r in records] == [3, 3, 3, 4]
    coarse, fine = _image(records[2][1]), _image(records[3][1])
    assert coarse.shape == (24, 32, 3)
    assert fine.shape == (48, 64, 3) and np.isfinite(fine).all()

    # Stage 1's first step starts from stage 0's result resized to 64x48, without noise; the style image is
    # resized to the stage width as a single run at 64 px would.
    style = resize(tiny.style, style_size(tiny.style.shape, 1.0, 64))
    objective = build_objective(tiny.weights, content, [style], config)
    start = preprocess(resize(coarse, (48, 64)), tiny.weights.mean_pixel)[None].astype(np.float32)
    np.testing.assert_allclose(_step_loss(records[3][1]), objective(tf.constant(start))["total"].numpy(), rtol=1e-4)


# ------------------------------------------------------------------------------------- compiled step, precision


def test_compiled_step_equals_the_eager_computation(tiny: Tiny) -> None:
    """One compiled Adam step (AdamEngine) = an eager gradient and the update rule worked out in NumPy."""
    config = _config(**LINEAR_ADAM)
    objective = build_objective(tiny.weights, tiny.content, [tiny.style], config)
    start = initial_image(tiny.content, tiny.weights.mean_pixel, seed=0)

    x = tf.constant(start)
    with tf.GradientTape() as tape:
        tape.watch(x)
        eager = objective(x)
        summed = tf.reduce_sum(eager["total"])
    gradient = tape.gradient(summed, x).numpy().astype(np.float64)
    m = (1 - config.beta1) * gradient
    v = (1 - config.beta2) * gradient**2
    assert np.sqrt(v).max() < 1e-2 * config.epsilon, "the comparison needs Adam's linear regime"
    alpha = config.learning_rate * np.sqrt(1 - config.beta2) / (1 - config.beta1)
    expected = start - alpha * m / (np.sqrt(v) + config.epsilon)

    settings = (config.learning_rate, config.beta1, config.beta2, config.epsilon)
    engine = AdamEngine(objective, start, {}, settings)
    step_losses = engine.step()  # the loss terms of the start image, computed on the way

    for key in LOSS_KEYS:
        np.testing.assert_allclose(step_losses[key], eager[key].numpy(), rtol=1e-5, err_msg=key)
    moved = np.abs(expected - start).max()
    assert moved > 0.1, moved  # the step moves pixels by a visible amount
    np.testing.assert_allclose(engine.images(), expected, rtol=0, atol=1e-4)
    np.testing.assert_allclose(engine.images() - start, expected - start, rtol=1e-4, atol=1e-5)
    # The compiled gradient differs from the eager one by oneDNN's summation order: ~1e-5 of its largest component.
    np.testing.assert_allclose(engine.optimizer.m.numpy(), m, rtol=1e-4, atol=1e-5 * np.abs(m).max())


def test_bfloat16_losses_stay_close_to_float32(tiny: Tiny) -> None:
    """bfloat16 convolutions change each loss term by a few % at most, on a noise image and a half-noise one."""
    objectives = {
        p: build_objective(tiny.weights, tiny.content, [tiny.style], _config(precision=p))
        for p in ("float32", "bfloat16")
    }
    assert objectives["bfloat16"].network.precision == "bfloat16"
    for noiseblend in (1.0, 0.5):
        x = tf.constant(initial_image(tiny.content, tiny.weights.mean_pixel, noiseblend=noiseblend, seed=0))
        f32, bf16 = ({k: v.numpy() for k, v in objectives[p](x).items()} for p in ("float32", "bfloat16"))
        for key in LOSS_KEYS:
            assert bf16[key].dtype == np.float32
            np.testing.assert_allclose(bf16[key], f32[key], rtol=0.03, err_msg=f"{key}, noise blend {noiseblend}")
        assert not np.array_equal(bf16["style"], f32["style"]), "bfloat16 should not be float32 in disguise"


def test_bfloat16_run_stays_close_to_float32(tiny: Tiny) -> None:
    """Three Adam steps in bfloat16: step losses and the float32-evaluated loss of the result within 5% of float32's.

    The issue's criterion (2% after N iterations) is for the real VGG-19 and is checked by
    scripts/benchmark_quality.py. On this 4-8 channel network rounding averages out less, and Adam's first steps
    (lr x sign(g)) amplify it: the two runs drift apart by up to ~12% by step 7 here, so only short runs are compared.
    """
    runs = {p: _run_stylize(tiny, _config(iterations=3, precision=p)) for p in ("float32", "bfloat16")}
    np.testing.assert_allclose(_step_losses(runs["bfloat16"]), _step_losses(runs["float32"]), rtol=0.05)
    objective = build_objective(tiny.weights, tiny.content, [tiny.style], _config())
    losses = {
        p: float(objective(tf.constant(preprocess(_image(records[-1]), tiny.weights.mean_pixel)[None]))["total"][0])
        for p, records in runs.items()
    }
    assert abs(losses["bfloat16"] / losses["float32"] - 1) < 0.05, losses
    assert losses["float32"] < 0.8 * _step_losses(runs["float32"])[0], "the runs should have made progress"


def _xla_available() -> bool:
    try:
        return float(tf.function(lambda x: x * 2.0, jit_compile=True)(tf.constant(1.0))) == 2.0
    except Exception:  # noqa: BLE001 - any failure means no XLA here
        return False


def test_xla_matches_the_plain_step(tiny: Tiny) -> None:
    """--xla compiles the same computation: two Adam steps agree with the non-XLA run to ~1e-4."""
    if not _xla_available():
        pytest.skip("XLA (jit_compile) is not available")
    runs = {xla: _run_stylize(tiny, _config(iterations=2, xla=xla, **LINEAR_ADAM)) for xla in (False, True)}
    for a, b in zip(runs[False], runs[True], strict=True):
        np.testing.assert_allclose(_step_loss(b), _step_loss(a), rtol=1e-4)
    plain, xla = runs[False][-1], runs[True][-1]
    for key in LOSS_KEYS:
        np.testing.assert_allclose(_losses(xla)[key], _losses(plain)[key], rtol=1e-4, err_msg=key)
    np.testing.assert_allclose(_image(xla), _image(plain), rtol=0, atol=1e-2)  # 0..255 grey levels


# ---------------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return _workspace(tmp_path)


def test_cli_lbfgs_prints_evaluations(ws: Workspace) -> None:
    result = _run(ws, ws.args("--optimizer=lbfgs", "--iterations=3", "--seed=0", "--tv_weight=1"))
    _ok(result)
    counts = [int(n) for n in re.findall(r"^Iteration +\d+/ +3 \[(\d+) evaluations\]", result.stdout, re.MULTILINE)]
    assert len(counts) == 3, result.stdout
    assert all(b > a for a, b in zip(counts, counts[1:], strict=False)) and counts[0] >= 2, counts
    with Image.open(ws.output) as image:
        assert image.size == CONTENT_SIZE


def test_cli_scales_writes_the_output_size(ws: Workspace) -> None:
    result = _run(ws, ws.args("--scales=2", "--width=64", "--iterations=3", "--seed=0", "--tv_weight=1"))
    _ok(result)
    assert "Coarse to fine: 1 at 32 px, 2 at 64 px" in result.stdout
    assert "(scale 2/2)" in result.stdout
    with Image.open(ws.output) as image:
        assert image.size == (64, CONTENT_SIZE[1] * 64 // CONTENT_SIZE[0])


@pytest.fixture(scope="module")
def import_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a ``sitecustomize`` that records whether TensorFlow or Keras was imported."""
    directory = tmp_path_factory.mktemp("probe")
    (directory / "sitecustomize.py").write_text(_PROBE)
    return directory


BAD_FLAGS = {
    "scales_zero": (["--scales=0"], "--scales must be a count or increasing widths"),
    "scales_text": (["--scales=abc"], "--scales must be a count or increasing widths"),
    "scales_decreasing": (["--width=64", "--scales=64,32"], "--scales widths 64,32 must increase"),
    "scales_wrong_end": (["--width=64", "--scales=32,48"], "to the output width 64"),
    "scales_too_many": (["--width=64", "--scales=3"], "--scales 3 makes the first stage 16 px wide"),
    "iterations_per_scale": (["--width=64", "--scales=2", "--iterations=1"], "--iterations 1 cannot be shared"),
    "lbfgs_sweep": (["--optimizer=lbfgs", "--blend_sweep=2"], "--batch_size 1"),
    "float16_on_cpu": (["--precision=float16"], "--precision float16 is for GPUs"),
    "scales_empty": (["--scales="], "--scales must be a count or increasing widths"),
    "scales_superscript": (["--scales=\u00b2"], "--scales must be a count or increasing widths"),
}
# Stages.plan (neural_style.cli.stylize): min([]) raises ValueError for an empty list; '²'.isdigit() is true but
# int('²') raises ValueError.
BAD_FLAG_CASES = [pytest.param(case, id=case) for case in BAD_FLAGS]


@pytest.mark.parametrize("case", BAD_FLAG_CASES)
def test_bad_speed_flags_are_one_error_line(ws: Workspace, import_probe: Path, case: str) -> None:
    """Exit 2 and a last stderr line 'neural-style: error: ...'; before TensorFlow is imported when possible.

    The float16 check needs TensorFlow (is there a GPU?), whose start-up may log lines of its own before ours.
    """
    if case == "float16_on_cpu" and tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible")
    extra, mention = BAD_FLAGS[case]
    args = ws.args(*extra)
    if case == "lbfgs_sweep":  # a blend sweep needs two styles
        style2 = ws.work / "style2.png"
        Image.fromarray(_style_array(seed=1)).save(style2)
        args[1] = f"--styles={ws.style},{style2}"
    marker = ws.root / IMPORTS_MARKER
    env = ws.env
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(import_probe), env.get("PYTHONPATH")) if p)
    env["NEURAL_STYLE_TEST_IMPORTS"] = str(marker)

    result = _run(ws, args, env=env)

    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert lines and lines[-1].startswith(ERROR_PREFIX), result.stderr
    assert mention in lines[-1], lines[-1]
    assert sum(line.startswith(ERROR_PREFIX) for line in lines) == 1
    assert result.stdout == ""
    assert not ws.output.exists()
    if case == "float16_on_cpu":
        assert "tensorflow" in marker.read_text()
    else:
        assert len(lines) == 1, result.stderr
        assert marker.read_text() == "", "bad flags must be rejected before TensorFlow is imported"
