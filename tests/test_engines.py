"""Tests of the engines (neural_style.engines): the Adam update rule, one compiled Adam step against the eager
computation, L-BFGS-B on the tiny problem, and Adam replicated over two logical CPU devices.

The replicated engine needs logical devices configured before TensorFlow initialises, so that check runs in a fresh
interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    LINEAR_ADAM,
    LOSS_KEYS,
    TinyRun,
    he_scaled,
    record_image,
    record_losses,
    run_stylize,
    step_losses,
    tiny_config,
)

from neural_style.engines import Adam, AdamEngine
from neural_style.progress import Progress
from neural_style.stylization import Stylization, build_objective, initial_image

# --- Adam ----------------------------------------------------------------------------------------------------


# Adam settings with a non-negligible epsilon, so where epsilon goes (outside the square root) matters.
LR, BETA1, BETA2, EPS = 0.1, 0.8, 0.9, 1e-2
START = np.array([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]], np.float32)
GRADIENTS = [
    np.array([[0.5, -1.0, 2.0], [0.1, 0.0, -3.0]], np.float32),
    np.array([[-0.5, 2.0, 1.0], [0.2, 1.0, -1.0]], np.float32),
    np.array([[1.0, 0.5, -2.0], [-0.3, 4.0, 0.5]], np.float32),
]


def _adam_reference(start: np.ndarray, gradients: list[np.ndarray]) -> list[np.ndarray]:
    """TF/Keras Adam in float64, the variable after each step."""
    var = start.astype(np.float64)
    m = np.zeros_like(var)
    v = np.zeros_like(var)
    history = []
    for t, g in enumerate(gradients, start=1):
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * g**2
        var = var - LR * np.sqrt(1 - BETA2**t) / (1 - BETA1**t) * m / (np.sqrt(v) + EPS)
        history.append(var.copy())
    return history


def test_adam_first_step_by_hand():
    """Step 1: m = 0.2 g, v = 0.1 g^2, so var -= lr sqrt(0.1)/0.2 * 0.2 g / (sqrt(0.1) |g| + eps)."""
    variable = tf.Variable([2.0])
    Adam(variable, LR, BETA1, BETA2, EPS).apply(tf.constant([0.5]), variable)
    # m = (1 - 0.8) 0.5 = 0.1; v = (1 - 0.9) 0.25 = 0.025; alpha = 0.1 sqrt(1 - 0.9) / (1 - 0.8) = 0.5 sqrt(0.1).
    m, v, alpha = 0.1, 0.025, 0.5 * np.sqrt(0.1)
    np.testing.assert_allclose(variable.numpy(), [2.0 - alpha * m / (np.sqrt(v) + EPS)], rtol=1e-6)


def test_adam_three_steps_match_the_update_rule():
    """Three steps of Adam.apply equal the TF/Keras rule computed in NumPy after every step."""
    variable = tf.Variable(START)
    adam = Adam(variable, LR, BETA1, BETA2, EPS)
    for g, expected in zip(GRADIENTS, _adam_reference(START, GRADIENTS), strict=True):
        adam.apply(tf.constant(g), variable)
        np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert int(adam.step.numpy()) == 3


def test_adam_matches_keras_adam():
    """Adam.apply and keras.optimizers.Adam agree after three steps with the same gradients."""
    ours = tf.Variable(START)
    adam = Adam(ours, LR, BETA1, BETA2, EPS)
    theirs = keras.Variable(START)
    keras_adam = keras.optimizers.Adam(learning_rate=LR, beta_1=BETA1, beta_2=BETA2, epsilon=EPS)
    for g in GRADIENTS:
        adam.apply(tf.constant(g), ours)
        keras_adam.apply([tf.constant(g)], [theirs])
        np.testing.assert_allclose(ours.numpy(), keras.ops.convert_to_numpy(theirs), rtol=1e-6, atol=1e-7)


def test_adam_works_inside_tf_function():
    """Adam.apply compiled in a tf.function gives the same three steps as eagerly."""
    variable = tf.Variable(START)
    adam = Adam(variable, LR, BETA1, BETA2, EPS)
    step = tf.function(lambda g: adam.apply(g, variable))
    for g in GRADIENTS:
        step(tf.constant(g))
    np.testing.assert_allclose(variable.numpy(), _adam_reference(START, GRADIENTS)[-1], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------- L-BFGS


@pytest.fixture(scope="module")
def lbfgs_run(tiny_run: TinyRun) -> list[Progress]:
    """Eight L-BFGS iterations with every loss reported (iteration 0 included)."""
    return run_stylize(tiny_run, tiny_config(optimizer="lbfgs", print_iterations=1))


def test_lbfgs_lowers_the_loss(lbfgs_run: list[Progress]) -> None:
    """Every iteration's loss is at or below the previous one's, and 8 iterations at least halve the start loss."""
    assert [r.iteration for r in lbfgs_run] == list(range(9))
    totals = [float(record_losses(r)["total"][0]) for r in lbfgs_run]
    assert np.isfinite(totals).all()
    assert all(b <= a for a, b in zip(totals, totals[1:], strict=False)), totals
    assert totals[-1] < 0.5 * totals[0], totals
    # For L-BFGS the step loss is the loss at the new iterate, i.e. the loss the record reports.
    np.testing.assert_allclose(step_losses(lbfgs_run), totals[1:], rtol=1e-5)
    assert lbfgs_run[-1].final and record_image(lbfgs_run[-1]).shape == (20, 24, 3)


def test_lbfgs_counts_evaluations(lbfgs_run: list[Progress]) -> None:
    """Each iteration evaluates the loss at least once: the count grows and is never below the iteration."""
    records = lbfgs_run[1:]
    evaluations = [r.evaluations for r in records]
    assert all(isinstance(e, int) for e in evaluations), evaluations
    assert evaluations[0] is not None and evaluations[0] >= 2, "the first iteration evaluates the start and a step"
    counts = [e for e in evaluations if e is not None]
    assert all(e >= r.iteration for e, r in zip(counts, records, strict=True)), counts
    assert all(b > a for a, b in zip(counts, counts[1:], strict=False)), counts


@pytest.mark.slow
def test_lbfgs_keeps_pixels_within_bounds(tiny_run: TinyRun) -> None:
    """From a black-and-white start Adam leaves 0..255 within 5 steps; L-BFGS stays inside and rests on both bounds."""
    blocks = np.array([[0, 255, 0], [255, 0, 255]], np.float32)
    content = np.kron(blocks[..., None] * np.ones(3, np.float32), np.ones((10, 8, 1), np.float32))  # [20, 24, 3]

    def iterate(optimizer: str) -> np.ndarray:
        config = tiny_config(iterations=5, optimizer=optimizer, initial_noiseblend=0.0)
        run = Stylization(tiny_run.weights, content, [tiny_run.style], config)
        assert list(run)[-1].final
        return run.iterates()[0]

    adam = iterate("adam")
    assert adam.min() < -1.0 and adam.max() > 256.0, "the test needs a problem whose pixels want to leave 0..255"
    image = iterate("lbfgs")
    assert image.min() >= -1e-3 and image.max() <= 255.0 + 1e-3, (image.min(), image.max())
    assert (np.abs(image) <= 1e-3).any() and (np.abs(image - 255.0) <= 1e-3).any(), "both bounds should be active"


# ------------------------------------------------------------------------------------------ compiled Adam step


def test_compiled_step_equals_the_eager_computation(tiny_run: TinyRun) -> None:
    """One compiled Adam step (AdamEngine) = an eager gradient and the update rule worked out in NumPy."""
    config = tiny_config(**LINEAR_ADAM)
    objective = build_objective(tiny_run.weights, tiny_run.content, [tiny_run.style], config)
    start = initial_image(tiny_run.content, tiny_run.weights.mean_pixel, seed=0)

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


# ------------------------------------------------------------------------------- replicated over two devices


SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    from neural_style.config import Candidate, StyleConfig
    from neural_style.matconvnet import read_matconvnet
    from neural_style.stylization import sweep

    weights = read_matconvnet(sys.argv[1])
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 255, (16, 20, 3)).astype(np.float32)
    styles = [rng.uniform(0, 255, (12, 12, 3)).astype(np.float32), rng.uniform(0, 255, (14, 10, 3)).astype(np.float32)]
    candidates = [Candidate.make((1, 0), 500.0), Candidate.make((1, 1), 500.0), Candidate.make((0, 1), 50.0)]
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])

    def final(config, **options):
        records = [record for _, record in sweep(weights, content, styles, config, candidates, **options)]
        return records[-1]

    figures = {}
    for pooling in ("max", "avg"):  # one process for both: starting TensorFlow is most of the cost
        config = StyleConfig(iterations=4, seed=0, tv_weight=1.0, pooling=pooling)
        split, alone = final(config, strategy=strategy), final(config)
        figures[pooling] = {
            "replicas": strategy.num_replicas_in_sync,
            "split": split.losses["total"].tolist(),
            "alone": alone.losses["total"].tolist(),
            "max_pixel_difference": float(np.abs(split.images - alone.images).max()),
        }
    json.dump(figures, sys.stdout)
    """
)


@pytest.mark.slow
def test_two_logical_devices_match_one(make_vgg_mat, tmp_path: Path) -> None:
    """3 candidates over 2 logical CPUs (split 2 + 1) equal the same sweep on one device, loss and pixels, with
    max and with average pooling."""
    network = make_vgg_mat(channels=(4, 6, 8, 8, 8), tamper=he_scaled).path
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(network)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(figures) == ["avg", "max"]
    for pooling, figure in figures.items():
        assert figure["replicas"] == 2
        np.testing.assert_allclose(figure["split"], figure["alone"], rtol=1e-5, err_msg=pooling)
        assert figure["max_pixel_difference"] < 1e-2, pooling
