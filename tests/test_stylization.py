"""Tests of neural_style.stylization: the start image, the loop and its stopping rules, the best image, precision
and XLA, sweeps in batches, and a :class:`Stylization` saved and restored.

Optimisations run on conftest's tiny He-scaled synthetic VGG and small images, a few iterations each. Whether the
speed options are actually faster is measured by ``scripts/benchmark_quality.py``, not here. Sweeps: candidate i
of a batched sweep (one batch or chunks) equals a run of candidate i alone. Resume: a :class:`Stylization` stopped
after k records, saved with ``tf.train.Checkpoint.write`` and read into a new object continues exactly as an
uninterrupted run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pytest
import tensorflow as tf
from conftest import (
    CHANNELS,
    LINEAR_ADAM,
    LOSS_KEYS,
    TinyRun,
    he_scaled,
    record_image,
    record_losses,
    record_step_loss,
    run_stylize,
    step_losses,
    tiny_config,
    write_vgg_mat,
)

from neural_style.config import TOLERANCE_WINDOW, Candidate, StyleConfig
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import VggWeights, load_vgg
from neural_style.progress import Progress
from neural_style.stylization import NOISE_SCALE, Stylization, build_objective, initial_image, sweep
from neural_style.vgg import preprocess

# --- initial_image ----------------------------------------------------------------------------------------------------


MEAN_PIXEL = np.array([123.68, 116.779, 103.939], np.float32)


@pytest.fixture
def content():
    """A 32x40 RGB content image of whole numbers in 0..255."""
    return np.random.default_rng(7).integers(0, 256, (32, 40, 3)).astype(np.float32)


def test_initial_image_without_initial_is_seeded_noise(content):
    """No initial, noiseblend None: pure N(0, 0.256^2) noise, the same for a seed, different across seeds."""
    start = initial_image(content, MEAN_PIXEL, seed=1)
    assert start.shape == (1, 32, 40, 3) and start.dtype == np.float32
    assert NOISE_SCALE == 0.256
    assert abs(start.std() - 0.256) < 0.01
    assert abs(start.mean()) < 0.01
    np.testing.assert_array_equal(initial_image(content, MEAN_PIXEL, seed=1), start)
    assert not np.allclose(initial_image(content, MEAN_PIXEL, seed=2), start)


def test_initial_image_with_initial_is_exactly_the_preprocessed_initial(content):
    """An initial image and noiseblend None: exactly preprocess(initial), no noise."""
    initial = content[::-1].copy()
    start = initial_image(content, MEAN_PIXEL, initial=initial, seed=1)
    np.testing.assert_array_equal(start, preprocess(initial, MEAN_PIXEL)[None])


def test_initial_image_noiseblend_half_mixes_content_and_noise(content):
    """noiseblend 0.5 without initial: 0.5 preprocess(content) + 0.5 noise, the noise the seed gives at blend 1."""
    noise = initial_image(content, MEAN_PIXEL, noiseblend=1.0, seed=3)
    start = initial_image(content, MEAN_PIXEL, noiseblend=0.5, seed=3)
    expected = 0.5 * preprocess(content, MEAN_PIXEL)[None] + 0.5 * noise
    assert expected.dtype == np.float32
    np.testing.assert_array_equal(start, expected)


def test_initial_image_shape_mismatch_is_an_error(content):
    """An initial image of another size than the content raises NeuralStyleError."""
    with pytest.raises(NeuralStyleError, match="initial image"):
        initial_image(content, MEAN_PIXEL, initial=content[:16])


# ----------------------------------------------------------------------------------------------- stopping rules


@pytest.fixture(scope="module")
def lbfgs_run(tiny_run: TinyRun) -> list[Progress]:
    """Eight L-BFGS iterations with every loss reported (iteration 0 included)."""
    return run_stylize(tiny_run, tiny_config(optimizer="lbfgs", print_iterations=1))


@pytest.fixture(scope="module")
def adam_run(tiny_run: TinyRun) -> list[Progress]:
    """Adam with tolerance 1e9 (so it stops once the window is full) and stop_at_loss 0 (never reached).

    Its step losses are also the reference the stop_at_loss test is checked against.
    """
    return run_stylize(tiny_run, tiny_config(iterations=50, tolerance=1e9, stop_at_loss=0.0))


def test_the_first_record_is_the_start_with_its_losses(tiny_run: TinyRun) -> None:
    """Every run begins with a record of iteration 0: the start image's loss terms (the first row of a history,
    with or without print_iterations), equal to the loss the first step reports for the image it started from."""
    for print_iterations in (None, 2):
        records = run_stylize(tiny_run, tiny_config(iterations=2, print_iterations=print_iterations))
        start = records[0]
        assert start.iteration == 0 and start.step_loss is None and start.images is None and not start.final
        np.testing.assert_allclose(record_losses(start)["total"], record_step_loss(records[1]), rtol=1e-5)
        terms = record_losses(start)
        np.testing.assert_allclose(terms["total"], terms["content"] + terms["style"] + terms["tv"], rtol=1e-6)
        assert [r.iteration for r in records] == [0, 1, 2]


def test_huge_tolerance_stops_right_after_the_window(adam_run: list[Progress]) -> None:
    """Any improvement is 'too small' for tolerance 1e9: the run ends as soon as the window of 20 is full.

    stop_at_loss 0 is never reached (the loss is positive), so it does not end the run before.
    """
    assert TOLERANCE_WINDOW == 20
    assert [r.iteration for r in adam_run] == list(range(TOLERANCE_WINDOW + 2))  # 0: the start
    assert [r.final for r in adam_run] == [False] * (TOLERANCE_WINDOW + 1) + [True]
    assert record_image(adam_run[-1]).shape == (20, 24, 3)
    assert all(r.evaluations is None for r in adam_run), "evaluations are counted for L-BFGS only"


def _saved_losses(tiny_run: TinyRun, optimizer: str) -> list[float]:
    """The total loss of the image a run would save after each iteration 1, 2, ... (best so far at every one)."""
    records = run_stylize(tiny_run, tiny_config(iterations=6, optimizer=optimizer, checkpoint_iterations=1))
    return [float(r.image_losses["total"][0]) for r in records if r.image_losses is not None]


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_stop_at_loss_stops_at_the_first_iteration_whose_saved_image_reaches_it(
    tiny_run: TinyRun, optimizer: str
) -> None:
    """The run ends (final, with the result image) at the first iteration whose image, as saved, has a loss at or
    below the target; the optimiser's trajectory is the one of a run without the rule."""
    saved = _saved_losses(tiny_run, optimizer)
    target = saved[3]  # the best saved image so far is reached at iteration 4, not before
    assert all(loss > target for loss in saved[:3]), saved
    records = run_stylize(tiny_run, tiny_config(iterations=50, optimizer=optimizer, stop_at_loss=target))
    assert [r.iteration for r in records] == [0, 1, 2, 3, 4]
    assert [r.final for r in records] == [False, False, False, False, True]
    assert record_image(records[-1]).shape == (20, 24, 3)
    assert records[-1].image_losses is not None and float(records[-1].image_losses["total"][0]) <= target
    free = run_stylize(tiny_run, tiny_config(iterations=4, optimizer=optimizer))
    np.testing.assert_allclose(step_losses(records), step_losses(free), rtol=1e-5)


def test_the_result_and_its_losses_are_those_of_the_saved_file(tiny_run: TinyRun) -> None:
    """From a black-and-white start Adam's iterate leaves 0..255; the result is the best image as a PNG would hold
    it (whole grey levels in 0..255) and image_losses are the objective's value of exactly that image, not the loss
    Adam reports for its unclipped iterate."""
    content = _black_and_white()
    config = tiny_config(iterations=5, initial_noiseblend=0.0, checkpoint_iterations=1)
    run = Stylization(tiny_run.weights, content, [tiny_run.style], config)
    records = list(run)
    raw = run.iterates()
    assert raw.min() < -1.0 and raw.max() > 256.0, "the test needs a problem whose pixels want to leave 0..255"
    image = record_image(records[-1])
    np.testing.assert_array_equal(image, np.clip(np.rint(image), 0, 255))
    objective = build_objective(tiny_run.weights, content, [tiny_run.style], config)
    scored = objective(tf.constant(preprocess(image, tiny_run.weights.mean_pixel)[None]))
    terms = records[-1].image_losses
    assert terms is not None
    for key in LOSS_KEYS:
        np.testing.assert_allclose(terms[key], scored[key].numpy(), rtol=1e-5, err_msg=key)
    # The best is the lowest saved loss of the checkpoints (every iteration here).
    saved = [float(r.image_losses["total"][0]) for r in records if r.image_losses is not None]
    assert float(terms["total"][0]) == min(saved)
    # Adam's own loss of its last iterate differs from the saved image's: they describe different images.
    assert abs(float(record_losses(records[-1])["total"][0]) / float(terms["total"][0]) - 1) > 1e-3


def _black_and_white() -> np.ndarray:
    """[20, 24, 3] blocks of 0 and 255: a start whose pixels Adam pushes out of 0..255 within a few steps."""
    blocks = np.array([[0, 255, 0], [255, 0, 255]], np.float32)
    return np.kron(blocks[..., None] * np.ones(3, np.float32), np.ones((10, 8, 1), np.float32))


@pytest.mark.slow
def test_clip_keeps_adam_within_0_255_and_is_the_projection_of_its_step(tiny_run: TinyRun) -> None:
    """--clip: after one step the iterate is exactly Adam's step clipped to 0..255 (same start, same gradient)."""
    content = _black_and_white()
    iterates = {}
    for clip in (False, True):
        run = Stylization(
            tiny_run.weights, content, [tiny_run.style], tiny_config(iterations=1, initial_noiseblend=0.0, clip=clip)
        )
        list(run)
        iterates[clip] = run.iterates()
    assert iterates[False].min() < 0 or iterates[False].max() > 255
    np.testing.assert_allclose(iterates[True], np.clip(iterates[False], 0, 255), atol=1e-3)
    run = Stylization(
        tiny_run.weights, content, [tiny_run.style], tiny_config(iterations=5, initial_noiseblend=0.0, clip=True)
    )
    list(run)
    assert run.iterates().min() >= -1e-3 and run.iterates().max() <= 255 + 1e-3


@pytest.mark.slow
def test_average_decay_saves_the_bias_corrected_average_of_the_iterates(tiny_run: TinyRun) -> None:
    """average_decay D: after 3 steps the result is (D^2 (1-D) x1 + D (1-D) x2 + (1-D) x3) / (1 - D^3), rounded;
    the trajectory is the one of a run without averaging."""
    decay = 0.6
    xs = []
    for k in (1, 2, 3):
        run = Stylization(tiny_run.weights, tiny_run.content, [tiny_run.style], tiny_config(iterations=k))
        list(run)
        xs.append(run.iterates().astype(np.float64))
    want = (decay**2 * (1 - decay) * xs[0] + decay * (1 - decay) * xs[1] + (1 - decay) * xs[2]) / (1 - decay**3)
    run = Stylization(
        tiny_run.weights, tiny_run.content, [tiny_run.style], tiny_config(iterations=3, average_decay=decay)
    )
    records = list(run)
    np.testing.assert_allclose(run.iterates(), xs[2], atol=1e-3)
    assert np.abs(record_image(records[-1]) - np.clip(want[0], 0, 255)).max() <= 0.5 + 1e-3


# -------------------------------------------------------------------------------------------- precision and XLA


def test_bfloat16_losses_stay_close_to_float32(tiny_run: TinyRun) -> None:
    """bfloat16 convolutions change each loss term by a few % at most, on a noise image and a half-noise one."""
    objectives = {
        p: build_objective(tiny_run.weights, tiny_run.content, [tiny_run.style], tiny_config(precision=p))
        for p in ("float32", "bfloat16")
    }
    assert objectives["bfloat16"].network.precision == "bfloat16"
    for noiseblend in (1.0, 0.5):
        x = tf.constant(initial_image(tiny_run.content, tiny_run.weights.mean_pixel, noiseblend=noiseblend, seed=0))
        f32, bf16 = ({k: v.numpy() for k, v in objectives[p](x).items()} for p in ("float32", "bfloat16"))
        for key in LOSS_KEYS:
            assert bf16[key].dtype == np.float32
            np.testing.assert_allclose(bf16[key], f32[key], rtol=0.03, err_msg=f"{key}, noise blend {noiseblend}")
        assert not np.array_equal(bf16["style"], f32["style"]), "bfloat16 should not be float32 in disguise"


@pytest.mark.slow
def test_bfloat16_run_stays_close_to_float32(tiny_run: TinyRun) -> None:
    """Three Adam steps in bfloat16: step losses and the float32-evaluated loss of the result within 5% of float32's.

    The issue's criterion (2% after N iterations) is for the real VGG-19 and is checked by
    scripts/benchmark_quality.py. On this 4-8 channel network rounding averages out less, and Adam's first steps
    (lr x sign(g)) amplify it: the two runs drift apart by up to ~12% by step 7 here, so only short runs are compared.
    """
    runs = {p: run_stylize(tiny_run, tiny_config(iterations=3, precision=p)) for p in ("float32", "bfloat16")}
    np.testing.assert_allclose(step_losses(runs["bfloat16"]), step_losses(runs["float32"]), rtol=0.05)
    objective = build_objective(tiny_run.weights, tiny_run.content, [tiny_run.style], tiny_config())
    losses = {
        p: float(
            objective(tf.constant(preprocess(record_image(records[-1]), tiny_run.weights.mean_pixel)[None]))["total"][0]
        )
        for p, records in runs.items()
    }
    assert abs(losses["bfloat16"] / losses["float32"] - 1) < 0.05, losses
    assert losses["float32"] < 0.8 * step_losses(runs["float32"])[0], "the runs should have made progress"


def _xla_available() -> bool:
    try:
        return float(tf.function(lambda x: x * 2.0, jit_compile=True)(tf.constant(1.0))) == 2.0
    except Exception:  # noqa: BLE001 - any failure means no XLA here
        return False


@pytest.mark.slow
def test_xla_matches_the_plain_step(tiny_run: TinyRun) -> None:
    """--xla compiles the same computation: two Adam steps agree with the non-XLA run to ~1e-4."""
    if not _xla_available():
        pytest.skip("XLA (jit_compile) is not available")
    runs = {xla: run_stylize(tiny_run, tiny_config(iterations=2, xla=xla, **LINEAR_ADAM)) for xla in (False, True)}
    for a, b in zip(runs[False][1:], runs[True][1:], strict=True):  # [0]: the start, before any step
        np.testing.assert_allclose(record_step_loss(b), record_step_loss(a), rtol=1e-4)
    plain, xla = runs[False][-1], runs[True][-1]
    for key in LOSS_KEYS:
        np.testing.assert_allclose(record_losses(xla)[key], record_losses(plain)[key], rtol=1e-4, err_msg=key)
    np.testing.assert_allclose(record_image(xla), record_image(plain), rtol=0, atol=1e-2)  # 0..255 grey levels


# ------------------------------------------------------------------------------------------ sweeps in batches


CONTENT_SHAPE = (16, 20, 3)
CANDIDATES = [
    Candidate.make((1, 0), 500.0),
    Candidate.make((1, 1), 500.0),
    Candidate.make((0, 1), 100.0),  # its own style weight too
]
# Batched and single runs are bitwise equal on the CPUs we tried, but oneDNN may pick other convolution blocking
# and reduction orders for a batch of 3 than for 1, and Adam divides each gradient by its own running RMS, so
# rounding-level differences in gradients are not damped. Images (0..255) must agree to 0.05 of a grey level
# (candidates differ by tens of levels) and losses to 1e-4 relative.
SWEEP_IMAGE_ATOL = 0.05
LOSS_RTOL = 1e-4


@dataclasses.dataclass
class SweepProblem:
    weights: VggWeights
    content: np.ndarray
    styles: list[np.ndarray]


@pytest.fixture(scope="module")
def sweep_problem(tmp_path_factory: pytest.TempPathFactory) -> SweepProblem:
    """A sweep_problem He-scaled VGG, a random 16x20 content image and two random styles of other sizes."""
    path = tmp_path_factory.mktemp("sweep_problem") / "vgg.mat"
    write_vgg_mat(path, channels=CHANNELS, tamper=he_scaled)
    rng = np.random.default_rng(1)
    content = rng.uniform(0, 255, CONTENT_SHAPE).astype(np.float32)
    styles = [rng.uniform(0, 255, shape).astype(np.float32) for shape in ((16, 16, 3), (12, 20, 3))]
    return SweepProblem(load_vgg(path), content, styles)


def _sweep_config(pooling: str, seed: int | None = 0) -> StyleConfig:
    return StyleConfig(iterations=5, seed=seed, checkpoint_iterations=None, pooling=pooling)


def _final(records) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The images and losses of the last record of a stylize run."""
    last = list(records)[-1]
    assert last.final
    return last.images, last.losses


def _sweep_results(
    sweep_problem: SweepProblem, config: StyleConfig, candidates: Sequence[Candidate], batch_size: int | None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All candidates' final images [N, H, W, 3] and losses {term: [N]}, put together from the chunks."""
    images: dict[int, np.ndarray] = {}
    losses: dict[int, dict[str, float]] = {}
    for first, record in sweep(
        sweep_problem.weights, sweep_problem.content, sweep_problem.styles, config, candidates, batch_size=batch_size
    ):
        if record.final:
            for i, image in enumerate(record.images):
                images[first + i] = image
                losses[first + i] = {key: value[i] for key, value in record.losses.items()}
    assert sorted(images) == list(range(len(candidates)))
    keys = losses[0].keys()
    return np.stack([images[i] for i in range(len(candidates))]), {
        key: np.array([losses[i][key] for i in range(len(candidates))]) for key in keys
    }


@pytest.fixture(scope="module", params=["max", "avg"])
def singles(
    request: pytest.FixtureRequest, sweep_problem: SweepProblem
) -> tuple[str, np.ndarray, dict[str, np.ndarray]]:
    """Each candidate run alone (``stylize(candidates=[c])``): pooling, images [3, H, W, 3], losses {term: [3]}."""
    from neural_style.stylization import stylize

    pooling = request.param
    runs = [
        _final(
            stylize(
                sweep_problem.weights,
                sweep_problem.content,
                sweep_problem.styles,
                _sweep_config(pooling),
                candidates=[c],
            )
        )
        for c in CANDIDATES
    ]
    images = np.concatenate([images for images, _ in runs])
    losses = {key: np.concatenate([run_losses[key] for _, run_losses in runs]) for key in runs[0][1]}
    return pooling, images, losses


def _assert_same(got: tuple[np.ndarray, dict], want: tuple[np.ndarray, dict]) -> None:
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=SWEEP_IMAGE_ATOL)
    for key in ("content", "style", "tv", "total"):
        np.testing.assert_allclose(got[1][key], want[1][key], rtol=LOSS_RTOL, err_msg=key)


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [None, 2], ids=["one-batch", "chunks-2+1"])
def test_sweep_candidate_equals_single_run(sweep_problem: SweepProblem, singles, batch_size: int | None) -> None:
    """Candidate i of a sweep (one batch of 3, or chunks of 2 + 1) equals a run of candidate i alone."""
    pooling, images, losses = singles
    got = _sweep_results(sweep_problem, _sweep_config(pooling), CANDIDATES, batch_size)
    assert got[0].shape == (3, *CONTENT_SHAPE)
    _assert_same(got, (images, losses))
    # The candidates really differ, by far more than the tolerances above.
    assert np.abs(images[0] - images[2]).max() > 100 * SWEEP_IMAGE_ATOL
    assert not np.allclose(losses["style"][0], losses["style"][1], rtol=10 * LOSS_RTOL)


@pytest.mark.slow
def test_single_candidate_equals_config_run(sweep_problem: SweepProblem) -> None:
    """``candidates=[c]`` is the same run as a config with c's blend and style weight (what the CLI does)."""
    from neural_style.stylization import stylize

    candidate = Candidate.make((1, 3), 200.0)
    config = _sweep_config("max")
    alone = _final(
        stylize(sweep_problem.weights, sweep_problem.content, sweep_problem.styles, config, candidates=[candidate])
    )
    blended = dataclasses.replace(config, style_blend_weights=(1.0, 3.0), style_weight=200.0)
    _assert_same(alone, _final(stylize(sweep_problem.weights, sweep_problem.content, sweep_problem.styles, blended)))


@pytest.mark.slow
def test_targets_are_computed_once_for_a_chunked_sweep(
    sweep_problem: SweepProblem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One objective (one set of Gram targets) serves all chunks; chunks are batch_size candidates at once."""
    import tensorflow as tf

    from neural_style import losses
    from neural_style import stylization as stylization_module

    objectives: list[object] = []
    original_build = stylization_module.build_objective

    def counting_build(*args, **kwargs):
        objectives.append(original_build(*args, **kwargs))
        return objectives[-1]

    eager_grams: list[int] = []
    original_gram = losses.gram_matrix

    def counting_gram(features):
        if tf.executing_eagerly():  # target computation; the step's Gram matrices are traced, not eager
            eager_grams.append(int(features.shape[0]))
        return original_gram(features)

    chunks: list[tuple[int, object]] = []
    original_run = stylization_module.Stylization

    def recording_run(*args, candidates=None, objective=None, **kwargs):
        chunks.append((len(candidates), objective))
        return original_run(*args, candidates=candidates, objective=objective, **kwargs)

    monkeypatch.setattr(stylization_module, "build_objective", counting_build)
    monkeypatch.setattr(losses, "gram_matrix", counting_gram)
    monkeypatch.setattr(stylization_module, "Stylization", recording_run)

    config = dataclasses.replace(_sweep_config("max"), iterations=2)
    images, _ = _sweep_results(sweep_problem, config, CANDIDATES, batch_size=2)
    assert images.shape == (3, *CONTENT_SHAPE)
    assert len(objectives) == 1
    assert [size for size, _ in chunks] == [2, 1]
    assert all(objective is objectives[0] for _, objective in chunks)
    assert eager_grams == [1] * 2 * 5, "one Gram matrix per style (2) and style layer (5), each of one image"


def test_sweep_rejects_bad_batch_size(sweep_problem: SweepProblem) -> None:
    with pytest.raises(NeuralStyleError, match="^batch_size"):
        next(
            sweep(
                sweep_problem.weights,
                sweep_problem.content,
                sweep_problem.styles,
                _sweep_config("max"),
                CANDIDATES,
                batch_size=0,
            )
        )


@pytest.mark.slow
def test_chunks_share_the_start_image_without_a_seed(sweep_problem: SweepProblem) -> None:
    """Without --seed, one batch starts all candidates from one noise image; chunks of 1 should too."""
    config = dataclasses.replace(_sweep_config("max", seed=None), iterations=1)
    same = [CANDIDATES[0], CANDIDATES[0]]
    images, _ = _sweep_results(sweep_problem, config, same, batch_size=1)
    np.testing.assert_allclose(images[0], images[1], rtol=0, atol=SWEEP_IMAGE_ATOL)


# ------------------------------------------------------------------------------------ saved and restored state


EVERY = 2  # checkpoint iterations of the library-level runs
RESUME_CONFIG = StyleConfig(iterations=8, checkpoint_iterations=EVERY, print_iterations=1, seed=0)
# One device, same ops, same inputs: a resumed run is bit-identical to an uninterrupted one in practice. The
# tolerances only leave room for a reduction order that might differ between two tf.function traces.
RESUME_RTOL = 1e-6
RESUME_IMAGE_ATOL = 1e-4  # on the 0..255 scale


def _stylization(
    small_problem: tuple[VggWeights, np.ndarray, np.ndarray], config: StyleConfig = RESUME_CONFIG
) -> Stylization:
    weights, content, style = small_problem
    return Stylization(weights, content, [style], config)


@pytest.fixture(scope="module")
def uninterrupted(small_problem: tuple[VggWeights, np.ndarray, np.ndarray]) -> dict[int, Progress]:
    """Every record of an uninterrupted run, by iteration (0 to 8)."""
    return {record.iteration: record for record in _stylization(small_problem)}


def _assert_same_record(got: Progress, want: Progress) -> None:
    assert (got.iteration, got.final) == (want.iteration, want.final)
    for name in ("step_loss", "images"):
        a, b = getattr(got, name), getattr(want, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_allclose(
                a, b, rtol=RESUME_RTOL, atol=RESUME_IMAGE_ATOL if name == "images" else 0, err_msg=name
            )
    assert got.losses is not None and want.losses is not None
    for key in ("content", "style", "tv", "total"):
        np.testing.assert_allclose(got.losses[key], want.losses[key], rtol=RESUME_RTOL, err_msg=key)


@dataclasses.dataclass
class Saved:
    """The state of one run written after iteration k, with what the run held at that moment."""

    path: str
    best_images: np.ndarray | None
    best_terms: np.ndarray
    current_images: np.ndarray


STOPS = (1, 3, 4)  # before any checkpoint, between checkpoints 2 and 4, at checkpoint 4


@pytest.fixture(scope="module")
def saved(small_problem, tmp_path_factory: pytest.TempPathFactory) -> dict[int, Saved]:
    """One run, its state written with tf.train.Checkpoint.write after each iteration of STOPS, then abandoned."""
    directory = tmp_path_factory.mktemp("states")
    run = _stylization(small_problem)
    assert run.state is not None
    states = {}
    for record in run:
        if record.iteration in STOPS:
            states[record.iteration] = Saved(
                run.state.write(str(directory / f"run-{record.iteration}.state")),
                run.best_images(),
                run.state.best_terms.numpy(),
                run.current_images(),
            )
        if record.iteration == max(STOPS):
            break
    return states


def test_state_holds_the_run_not_the_network(saved: dict[int, Saved]) -> None:
    """Image, Adam moments and step, iteration, best image and loss, loss history; no network weights."""
    names = {name.split("/.ATTRIBUTES")[0] for name, _ in tf.train.list_variables(saved[4].path)}
    engine = {"engine/image", "engine/optimizer/m", "engine/optimizer/v", "engine/optimizer/step"}
    assert engine | {"iteration", "best", "best_terms", "has_best", "history"} <= names
    assert not any("kernel" in name or "bias" in name for name in names), names
    assert tf.train.load_variable(saved[4].path, "iteration/.ATTRIBUTES/VARIABLE_VALUE") == 4
    assert tf.train.load_variable(saved[3].path, "engine/optimizer/step/.ATTRIBUTES/VARIABLE_VALUE") == 3


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop_at", "fresh_seed"),
    [(4, 0), (3, 1), (1, 0)],
    ids=["at-a-checkpoint", "between-checkpoints-other-seed", "before-any-checkpoint"],
)
def test_resumed_run_equals_uninterrupted(
    small_problem, uninterrupted: dict[int, Progress], saved: dict[int, Saved], stop_at: int, fresh_seed: int
) -> None:
    """Read the state saved after k records into a new Stylization and finish: the records are the same.

    The second case's new object starts from other noise (seed 1): the saved image, not the noise generator,
    carries the run on, so no RNG state needs saving.
    """
    state = saved[stop_at]
    fresh = _stylization(small_problem, dataclasses.replace(RESUME_CONFIG, seed=fresh_seed))
    assert fresh.state is not None
    fresh.state.read(state.path).assert_consumed()
    assert fresh.iteration == stop_at

    # Right after the restore: the saved run's best image and loss and its current image.
    best = fresh.best_images()
    if stop_at < EVERY:
        assert best is None and state.best_images is None
        np.testing.assert_array_equal(state.best_terms, np.full((4, 1), np.inf))
    else:
        last_checkpoint = uninterrupted[stop_at - stop_at % EVERY].images
        assert best is not None and last_checkpoint is not None
        np.testing.assert_array_equal(best, state.best_images)
        np.testing.assert_allclose(best, last_checkpoint, rtol=RESUME_RTOL, atol=RESUME_IMAGE_ATOL)
    np.testing.assert_array_equal(fresh.state.best_terms.numpy(), state.best_terms)
    np.testing.assert_array_equal(fresh.current_images(), state.current_images)

    rest = list(fresh)
    assert [r.iteration for r in rest] == list(range(stop_at + 1, RESUME_CONFIG.iterations + 1))
    for record in rest:
        _assert_same_record(record, uninterrupted[record.iteration])
    assert rest[-1].final and rest[-1].images is not None


# ------------------------------------------------------------------------------------------------ restarting a run


def _records_equal(got: list[Progress], want: list[Progress]) -> None:
    assert [r.iteration for r in got] == [r.iteration for r in want]
    for a, b in zip(got, want, strict=True):
        for name in ("step_loss", "images"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None) == (y is None), name
            if x is not None:
                np.testing.assert_allclose(x, y, rtol=RESUME_RTOL, atol=RESUME_IMAGE_ATOL, err_msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_a_restarted_run_equals_a_new_run_and_traces_nothing_again(tiny_run: TinyRun, optimizer: str) -> None:
    """One run from noise, then restarted from a grey start image: its records are a new run's from that image,
    with the best image, history, average and optimiser state started afresh, and its step is not traced again.
    (The objective's targets stay; video frames change theirs through variables: tests/test_video.py.)"""
    config = tiny_config(optimizer=optimizer, iterations=5, checkpoint_iterations=2, average_decay=0.5)
    other = tiny_run.content
    start = np.full_like(other, 100.0)
    run = Stylization(tiny_run.weights, other, [tiny_run.style], config)
    first = list(run)
    step = getattr(run._engine, "_step", None) or run._engine._iterate  # Adam's compiled step, L-BFGS's iteration
    traces = step.experimental_get_tracing_count()
    run.restart(other, initial=start)
    assert run.iteration == 0 and run.best_images() is None
    again = list(run)
    fresh = list(Stylization(tiny_run.weights, other, [tiny_run.style], config, initial=start))
    _records_equal(again, fresh)
    assert not np.allclose(record_image(again[-1]), record_image(first[-1]))
    assert step.experimental_get_tracing_count() == traces


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_a_run_restarts_at_another_size_with_new_styles_and_traces_nothing_again(
    tiny_run: TinyRun, optimizer: str
) -> None:
    """The stages of coarse-to-fine: a run restarted at a larger size, with other styles, iterations and start, is a
    new run of those (to round-off), through the same traced step."""
    from neural_style.image_io import resize

    config = tiny_config(optimizer=optimizer, iterations=3)
    run = Stylization(tiny_run.weights, tiny_run.content, [tiny_run.style], config)
    assert run.resizable
    list(run)
    step = getattr(run._engine, "_step", None) or run._engine._iterate
    traces = step.experimental_get_tracing_count()
    larger = resize(tiny_run.content, (30, 36))
    styles = [tiny_run.style[::-1]]
    start = np.full_like(larger, 90.0)
    longer = dataclasses.replace(config, iterations=4, style_blend_weights=None)
    with pytest.raises(NeuralStyleError, match="a restart may change only iterations, stop_at_loss"):
        run.restart(larger, styles=styles, config=dataclasses.replace(longer, tv_weight=2.0))
    with pytest.raises(NeuralStyleError, match=r"a restart keeps the number of styles \(1\); build a new run for 2"):
        run.restart(larger, styles=[*styles, tiny_run.style])
    run.restart(larger, initial=start, styles=styles, config=longer)
    again = list(run)
    fresh = list(Stylization(tiny_run.weights, larger, styles, longer, initial=start))
    _records_equal(again, fresh)
    assert record_image(again[-1]).shape == (30, 36, 3)
    assert step.experimental_get_tracing_count() == traces


def test_a_run_given_its_objective_restarts_only_at_its_size(tiny_run: TinyRun) -> None:
    """A caller that gives the objective changes its targets itself (video frames): the size must stay."""
    from neural_style.stylization import build_objective

    config = tiny_config(iterations=1)
    objective = build_objective(tiny_run.weights, tiny_run.content, [tiny_run.style], config)
    run = Stylization(tiny_run.weights, tiny_run.content, [tiny_run.style], config, objective=objective)
    assert not run.resizable
    with pytest.raises(
        NeuralStyleError,
        match=r"this run cannot change size or styles .* a restart needs a content "
        r"image of \(20, 24\), not \(24, 20\)",
    ):
        run.restart(np.zeros((24, 20, 3), np.float32))
