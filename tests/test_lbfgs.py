"""Tests of L-BFGS on the device (neural_style.lbfgs): the two-loop recursion against the BFGS inverse-Hessian
formula, convergence on quadratics with and without bounds, one history per image of a batch, the saved state, no
Python (host) work per loss evaluation, and scipy's L-BFGS-B (engines.LbfgsEngine) as the reference on the tiny
stylization problem.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from conftest import TinyRun, tiny_config

from neural_style.config import Candidate
from neural_style.engines import LbfgsEngine
from neural_style.image_io import to_uint8
from neural_style.lbfgs import DeviceLbfgsEngine, Lbfgs
from neural_style.stylization import Stylization, build_objective, initial_image

# --- the recursion ---------------------------------------------------------------------------------------------


def _bfgs_inverse(pairs: list[tuple[np.ndarray, np.ndarray]], gamma: float) -> np.ndarray:
    """H after the BFGS inverse updates H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T, oldest pair first,
    from H_0 = gamma I."""
    n = pairs[0][0].size
    h = gamma * np.eye(n)
    for s, y in pairs:
        rho = 1.0 / (s @ y)
        v = np.eye(n) - rho * np.outer(y, s)
        h = v.T @ h @ v + rho * np.outer(s, s)
    return h


def _remembered(optimizer: Lbfgs, pairs: list[tuple[np.ndarray, np.ndarray]]) -> None:
    for s, y in pairs:
        slope = tf.constant([-1.0])  # any step with s.y >= (1 - c2) * 1 is kept
        optimizer._remember(tf.constant(s[None]), tf.constant(y[None]), tf.constant([True]), slope)


RNG = np.random.default_rng(0)
PAIRS = [(RNG.normal(size=5), RNG.normal(size=5)) for _ in range(4)]
PAIRS = [(s, y + 2.0 * s) for s, y in PAIRS]  # y = (2 I + noise) s: positive curvature s.y


def test_pairs_have_positive_curvature() -> None:
    assert all(s @ y > 1.0 for s, y in PAIRS), [s @ y for s, y in PAIRS]


def test_two_loop_recursion_is_the_bfgs_inverse_hessian() -> None:
    """With three stored pairs, H g from the recursion = the explicit product of the three BFGS updates, H_0 scaled
    by s.y / y.y of the newest pair."""
    optimizer = Lbfgs(np.zeros((1, 5), np.float32), memory=3)
    pairs = [(s.astype(np.float32), y.astype(np.float32)) for s, y in PAIRS[:3]]
    _remembered(optimizer, pairs)
    s, y = pairs[-1]
    expected = _bfgs_inverse(pairs, float(s @ y / (y @ y)))
    g = RNG.normal(size=5).astype(np.float32)
    got = optimizer._two_loop(tf.constant(g[None])).numpy()[0]
    np.testing.assert_allclose(got, expected @ g, rtol=1e-4, atol=1e-5)


def test_the_ring_keeps_the_newest_pairs() -> None:
    """Memory 2 after four pairs: the recursion uses the last two only."""
    optimizer = Lbfgs(np.zeros((1, 5), np.float32), memory=2)
    pairs = [(s.astype(np.float32), y.astype(np.float32)) for s, y in PAIRS]
    _remembered(optimizer, pairs)
    assert optimizer.count.numpy().tolist() == [2] and optimizer.head.numpy().tolist() == [0]
    s, y = pairs[-1]
    expected = _bfgs_inverse(pairs[2:], float(s @ y / (y @ y)))
    g = RNG.normal(size=5).astype(np.float32)
    np.testing.assert_allclose(optimizer._two_loop(tf.constant(g[None])).numpy()[0], expected @ g, rtol=1e-4)


def test_a_pair_without_curvature_is_skipped() -> None:
    """s.y <= 0 (or below (1 - c2) |g.s|, a step kept for its decrease alone) is not stored."""
    optimizer = Lbfgs(np.zeros((1, 2), np.float32), memory=3)
    s = tf.constant([[1.0, 0.0]])
    optimizer._remember(s, tf.constant([[-1.0, 0.0]]), tf.constant([True]), tf.constant([-1.0]))
    optimizer._remember(s, tf.constant([[0.05, 0.0]]), tf.constant([True]), tf.constant([-1.0]))  # < 0.1
    assert optimizer.count.numpy().tolist() == [0]
    optimizer._remember(s, tf.constant([[0.2, 0.0]]), tf.constant([True]), tf.constant([-1.0]))
    assert optimizer.count.numpy().tolist() == [1]
    np.testing.assert_allclose(optimizer.gamma.numpy(), [0.2 / 0.04])  # s.y / y.y


# --- quadratics ------------------------------------------------------------------------------------------------

A = np.array(
    [[4.0, 1.0, 0.0, 0.5], [1.0, 3.0, 0.2, 0.0], [0.0, 0.2, 2.0, 0.3], [0.5, 0.0, 0.3, 1.0]], np.float32
)  # symmetric, positive definite (diagonally dominant)


def _quadratic(b: np.ndarray):
    """f(x) = 1/2 x^T A x - b_i^T x for each row i of x [B, 4], and its value-and-gradient."""
    a, bt = tf.constant(A), tf.constant(b, tf.float32)

    def value_and_gradient(x: tf.Tensor):
        total = 0.5 * tf.reduce_sum(x * tf.matmul(x, a), axis=1) - tf.reduce_sum(x * bt, axis=1)
        return {"total": total}, tf.matmul(x, a) - bt

    return value_and_gradient


def _minimise(optimizer: Lbfgs, value_and_gradient, iterations: int) -> None:
    iterate = tf.function(lambda: optimizer.iterate(value_and_gradient), autograph=False)
    optimizer.start(value_and_gradient)
    for _ in range(iterations):
        iterate()


def test_an_unbounded_quadratic_reaches_its_minimum() -> None:
    """x* = A^-1 b; with 4 unknowns and memory 4, 12 iterations get there as closely as float32 values of f (about 5,
    rounded at 5e-7) can tell: |g|^2 / 2 ||A|| below that rounding puts x within about 1e-3."""
    b = np.array([[1.0, -2.0, 0.5, 3.0]], np.float32)
    optimizer = Lbfgs(np.zeros((1, 4), np.float32), memory=4)
    _minimise(optimizer, _quadratic(b), 12)
    np.testing.assert_allclose(optimizer.x.numpy()[0], np.linalg.solve(A, b[0]), atol=1e-3)


def test_bounds_are_kept_and_the_box_minimum_is_found() -> None:
    """A diagonal quadratic sum d_i (x_i - c_i)^2 in the box [0, 1]: the minimum is c clipped, reached exactly on
    the bounds, and no iterate ever leaves the box."""
    d = np.array([1.0, 3.0, 0.5, 2.0], np.float32)
    c = np.array([-0.7, 0.4, 1.8, 0.9], np.float32)

    def value_and_gradient(x: tf.Tensor):
        return {"total": tf.reduce_sum(d * tf.square(x - c), axis=1)}, 2.0 * d * (x - c)

    optimizer = Lbfgs(np.full((1, 4), 0.5, np.float32), 0.0, 1.0, memory=3)
    iterate = tf.function(lambda: optimizer.iterate(value_and_gradient), autograph=False)
    optimizer.start(value_and_gradient)
    for _ in range(15):
        iterate()
        x = optimizer.x.numpy()
        assert x.min() >= 0.0 and x.max() <= 1.0, x
    x = optimizer.x.numpy()[0]
    np.testing.assert_allclose(x, np.clip(c, 0.0, 1.0), atol=1e-5)
    assert x[0] == 0.0 and x[2] == 1.0, "the active bounds are met exactly"


def test_each_image_of_a_batch_has_its_own_history() -> None:
    """Two problems in one batch take the same iterates as each alone (their line searches end at different
    evaluations; the one done first waits where it is)."""
    b = np.array([[1.0, -2.0, 0.5, 3.0], [-3.0, 0.1, 2.0, -1.0]], np.float32)
    start = np.array([[0.0, 0.0, 0.0, 0.0], [5.0, -5.0, 5.0, -5.0]], np.float32)
    together = Lbfgs(start, -2.0, 2.0, memory=3)
    _minimise(together, _quadratic(b), 6)
    for i in range(2):
        alone = Lbfgs(start[i : i + 1], -2.0, 2.0, memory=3)
        _minimise(alone, _quadratic(b[i : i + 1]), 6)
        np.testing.assert_allclose(together.x.numpy()[i], alone.x.numpy()[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(together.f.numpy()[i], alone.f.numpy()[0], rtol=1e-5)


def test_the_iteration_calls_the_loss_at_one_place() -> None:
    """The loss is traced into the iteration once (a loop of search turns and a revisit turn), not three times (a
    first trial, the loop, a re-evaluation)."""
    b = np.array([[1.0, -2.0, 0.5, 3.0]], np.float32)
    traced = []
    quadratic = _quadratic(b)

    def counted(x: tf.Tensor):
        traced.append(1)
        return quadratic(x)

    optimizer = Lbfgs(np.zeros((1, 4), np.float32), memory=4)
    _minimise(optimizer, counted, 3)
    assert len(traced) == 2  # the start (eager) and the one place in the traced iteration
    np.testing.assert_allclose(optimizer.f.numpy(), quadratic(optimizer.x)[0]["total"].numpy(), rtol=1e-6)


def test_a_search_that_runs_out_takes_its_lowest_point_evaluated_again() -> None:
    """f = (x - 1.5)^2 from 0 (f 2.25, g -3), no history: the first trial moves one unit (x = 1: f 0.25, g -1, too
    short for c2 = 0.1 since -1 < 0.1 * -3), the second four (x = 4: f 6.25, no decrease); with two evaluations
    allowed the search ends there, keeps x = 1 and evaluates it again for its loss and gradient."""

    def value_and_gradient(x: tf.Tensor):
        return {"total": tf.reduce_sum(tf.square(x - 1.5), axis=1)}, 2.0 * (x - 1.5)

    optimizer = Lbfgs(np.zeros((1, 1), np.float32), memory=3, max_evaluations=2, c2=0.1)
    _minimise(optimizer, value_and_gradient, 1)
    np.testing.assert_allclose(optimizer.x.numpy(), [[1.0]], rtol=1e-6)
    np.testing.assert_allclose(optimizer.f.numpy(), [0.25], rtol=1e-5)
    np.testing.assert_allclose(optimizer.g.numpy(), [[-1.0]], rtol=1e-5)
    assert int(optimizer.evaluations.numpy()) == 1 + 2 + 1  # the start, the two trials, the revisit


def test_a_point_with_nowhere_to_go_has_converged() -> None:
    """f = sum(x) on [0, 1] from x = 0: every gradient component points out of the box, so the projected gradient
    is zero and the engine is finished after one step, without moving."""

    def loss(images: tf.Tensor) -> dict[str, tf.Tensor]:
        return {"total": tf.reduce_sum(images, axis=(1, 2, 3))}

    engine = DeviceLbfgsEngine(loss, np.zeros((1, 2, 2, 3), np.float32), {}, lower=np.zeros(3), upper=np.ones(3))
    np.testing.assert_array_equal(engine.step()["total"], [0.0])
    assert engine.finished and engine.images().max() == 0.0


# --- the engine on the tiny stylization problem ----------------------------------------------------------------


def _tiny_engine(tiny_run: TinyRun, cls=DeviceLbfgsEngine, precision: str = "float32", loss=None):
    config = tiny_config(precision=precision)
    objective = build_objective(tiny_run.weights, tiny_run.content, [tiny_run.style], config)
    mean = np.asarray(tiny_run.weights.mean_pixel, np.float32)
    start = initial_image(tiny_run.content, mean, seed=0)
    return cls(loss or objective, start, {}, lower=-mean, upper=255.0 - mean, memory=10), mean


def _saved_loss(engine, mean: np.ndarray) -> float:
    """The total loss of the image as a PNG holds it (clipped, whole grey levels)."""
    saved = to_uint8(engine.images() + mean).astype(np.float32)
    return float(engine.evaluate(saved - mean)["total"][0])


def _denoising(images: tf.Tensor) -> dict[str, tf.Tensor]:
    """A convex problem with one minimum in the box, some pixels on its bounds: the mean squared distance to a
    target reaching beyond [-50, 50], plus total variation."""
    target = tf.constant(np.linspace(-80.0, 80.0, 6 * 7 * 3, dtype=np.float32).reshape(1, 6, 7, 3))
    dy = images[:, 1:] - images[:, :-1]
    dx = images[:, :, 1:] - images[:, :, :-1]
    tv = tf.reduce_mean(tf.square(dy), axis=(1, 2, 3)) + tf.reduce_mean(tf.square(dx), axis=(1, 2, 3))
    return {"total": tf.reduce_mean(tf.square(images - target), axis=(1, 2, 3)) + 0.3 * tv}


def test_scipy_and_the_device_reach_the_same_minimum() -> None:
    """The reference, on a convex problem: scipy's L-BFGS-B and the device L-BFGS, from the same start within the
    box [-50, 50], reach the same loss (within 1e-5 of it) and the same image (within 0.05 on a range of 100), with
    the bounds active on the same pixels."""
    start = np.zeros((1, 6, 7, 3), np.float32)
    results = {}
    for cls in (LbfgsEngine, DeviceLbfgsEngine):
        engine = cls(_denoising, start, {}, lower=np.full(3, -50.0), upper=np.full(3, 50.0), memory=5)
        for _ in range(60):
            engine.step()
        results[cls] = (float(engine.evaluate()["total"][0]), engine.images())
        engine.close()
    (scipy_loss, scipy_image), (device_loss, device_image) = results[LbfgsEngine], results[DeviceLbfgsEngine]
    start_loss = float(_denoising(tf.constant(start))["total"][0])
    assert device_loss < 0.3 * start_loss, (start_loss, device_loss)
    np.testing.assert_allclose(device_loss, scipy_loss, rtol=1e-5)
    np.testing.assert_allclose(device_image, scipy_image, atol=0.05)
    assert (np.abs(np.abs(device_image) - 50.0) < 1e-4).sum() >= 10, "the problem needs active bounds"
    np.testing.assert_array_equal(np.abs(device_image) >= 50.0 - 1e-4, np.abs(scipy_image) >= 50.0 - 1e-3)


@pytest.mark.slow
def test_the_saved_image_is_no_worse_than_scipys(tiny_run: TinyRun) -> None:
    """The yardstick, on the tiny stylization problem: after 60 iterations from the same start, the device L-BFGS's
    image as saved (clipped, whole grey levels) has no higher a loss than scipy's, both far below the start's."""
    saved = {}
    for cls in (LbfgsEngine, DeviceLbfgsEngine):
        engine, mean = _tiny_engine(tiny_run, cls)
        for _ in range(60):
            engine.step()
        saved[cls] = _saved_loss(engine, mean)
        assert saved[cls] < float(engine.start_losses["total"][0]) / 500, saved
        engine.close()
    assert saved[DeviceLbfgsEngine] <= saved[LbfgsEngine], saved


def test_bfloat16_lowers_the_loss(tiny_run: TinyRun) -> None:
    """With the network in bfloat16 (history and image float32), 20 iterations lower the loss 100-fold."""
    engine, _ = _tiny_engine(tiny_run, precision="bfloat16")
    totals = [float(engine.step()["total"][0]) for _ in range(20)]
    assert all(b <= a for a, b in zip(totals, totals[1:], strict=False)), totals
    assert totals[-1] < float(engine.start_losses["total"][0]) / 100, totals


def test_no_loss_evaluation_goes_through_python(tiny_run: TinyRun) -> None:
    """The loss callable (Python) runs only while the iteration is traced: 8 more iterations, with more than 8
    evaluations among them, do not call it again, and the compiled iteration holds no Python function op."""
    objective = build_objective(tiny_run.weights, tiny_run.content, [tiny_run.style], tiny_config())
    calls = []

    def counted(images, **params):
        calls.append(1)
        return objective(images, **params)

    engine, _ = _tiny_engine(tiny_run, loss=counted)
    engine.step()  # traces the start and the iteration
    traced, evaluations = len(calls), engine.evaluations
    for _ in range(8):
        engine.step()
    assert len(calls) == traced
    assert engine.evaluations > evaluations + 8, "the test needs line searches of several evaluations"
    graph = engine._iterate.get_concrete_function().graph.as_graph_def()
    ops = {node.op for node in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    assert "While" in ops or "StatelessWhile" in ops
    assert not ops & {"PyFunc", "PyFuncStateless", "EagerPyFunc"}, ops


@pytest.mark.slow
def test_a_restored_engine_continues_exactly(tiny_run: TinyRun, tmp_path) -> None:
    """Saved after 4 iterations and restored into a new engine, 4 more iterations give the losses and image of 8
    uninterrupted ones: the history is part of the saved state."""
    whole, _ = _tiny_engine(tiny_run)
    totals = [float(whole.step()["total"][0]) for _ in range(8)]
    first, _ = _tiny_engine(tiny_run)
    for _ in range(4):
        first.step()
    path = first.state.write(str(tmp_path / "state"))
    second, _ = _tiny_engine(tiny_run)
    second.state.read(path).assert_consumed()
    assert int(second.optimizer.count.numpy()[0]) > 0
    resumed = [float(second.step()["total"][0]) for _ in range(4)]
    np.testing.assert_allclose(resumed, totals[4:], rtol=1e-6)
    np.testing.assert_allclose(second.images(), whole.images(), atol=1e-4)
    assert second.evaluations == whole.evaluations


@pytest.mark.slow
def test_a_sweep_runs_one_history_per_candidate(tiny_run: TinyRun) -> None:
    """Two candidates (style weights 500 and 50) optimised as one batch end where each ends alone."""
    candidates = [Candidate.make((1.0,), 500.0), Candidate.make((1.0,), 50.0)]
    config = tiny_config(optimizer="lbfgs", iterations=6)
    batch = list(Stylization(tiny_run.weights, tiny_run.content, [tiny_run.style], config, candidates=candidates))
    for i, candidate in enumerate(candidates):
        alone = list(Stylization(tiny_run.weights, tiny_run.content, [tiny_run.style], config, candidates=[candidate]))
        np.testing.assert_allclose(batch[-1].image_losses["total"][i], alone[-1].image_losses["total"][0], rtol=1e-4)
        assert np.abs(batch[-1].images[i] - alone[-1].images[0]).max() <= 1.0


@pytest.mark.slow
def test_tiles_run_the_same_iterations(tiny_run: TinyRun) -> None:
    """A 40x56 image in 16 px tiles (the loss evaluated piece by piece, so the iteration runs eagerly) takes the
    steps of the whole image, with as many evaluations."""
    content = np.kron(tiny_run.content[:10, :14], np.ones((4, 4, 1), np.float32))  # [40, 56, 3]
    runs = {}
    for tile_size in (None, 16):
        config = tiny_config(optimizer="lbfgs", iterations=4, tile_size=tile_size)
        runs[tile_size] = list(Stylization(tiny_run.weights, content, [tiny_run.style], config))
    plain, tiled = runs[None], runs[16]
    np.testing.assert_allclose([r.step_loss[0] for r in tiled[1:]], [r.step_loss[0] for r in plain[1:]], rtol=1e-4)
    assert tiled[-1].evaluations == plain[-1].evaluations
