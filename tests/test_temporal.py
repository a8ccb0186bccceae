"""Tests of video frames stylized one after another with the temporal term (neural_style.temporal).

The temporal term and the objective that carries it are worked out by hand; whole runs use conftest's tiny network
on the frames of conftest's clip (a red square moving 2 px a frame across a still background), without encoding
them. The flow is OpenCV's (the video extra): everything is skipped without it.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("cv2")

from conftest import (  # noqa: E402
    CHANNELS,
    CLIP_HEIGHT,
    CLIP_WIDTH,
    SQUARE,
    TOP,
    he_scaled,
    square_frames,
    style_array,
    tiny_config,
    write_vgg_mat,
)

from neural_style import flow  # noqa: E402
from neural_style.errors import NeuralStyleError  # noqa: E402


def test_temporal_loss_by_hand() -> None:
    from neural_style.losses import temporal_loss

    images = np.zeros((2, 1, 2, 3), np.float32)
    images[1] = 3.0
    warped = np.ones((1, 1, 2, 3), np.float32)
    mask = np.float32([1.0, 0.0]).reshape(1, 1, 2, 1)
    # image 0: (0 - 1)^2 on the 3 values of the trusted pixel, over 6 values; image 1: (3 - 1)^2 x 3 / 6
    assert np.asarray(temporal_loss(images, warped, mask)).tolist() == [0.5, 2.0]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory):
    from neural_style.matconvnet import load_vgg

    path = tmp_path_factory.mktemp("vgg") / "vgg.mat"
    write_vgg_mat(path, channels=CHANNELS, tamper=he_scaled)
    return load_vgg(path)


def _results(weights, frames, config, **options) -> list[np.ndarray]:
    from neural_style.temporal import stylize_frames

    results = [
        r.image
        for _, r in stylize_frames(weights, frames, [style_array().astype(np.float32)], config, **options)
        if r.final
    ]
    return [np.clip(np.rint(image), 0, 255) for image in results]


@dataclasses.dataclass
class FrameRuns:
    weights: object
    config: object
    frames: list[np.ndarray]
    independent: list[np.ndarray]
    consistent: list[np.ndarray]


# The tiny network's content and style terms are about 1e7 on these frames, far more per pixel than VGG-19's, so the
# temporal term gets a weight that gives it a share of the loss like the default's with VGG-19.
TINY_TEMPORAL_WEIGHT = 1e5


@pytest.fixture(scope="module")
def frame_runs(tiny_weights) -> FrameRuns:
    """Three frames of the square optimised as independent runs and with the temporal term, same seed and
    iterations."""
    from neural_style.config import StyleConfig

    frames = square_frames(3)
    config = StyleConfig(iterations=20, seed=0, tv_weight=1.0)
    independent = _results(tiny_weights, frames, config, temporal_weight=0.0)
    consistent = _results(tiny_weights, frames, config, temporal_weight=TINY_TEMPORAL_WEIGHT, frame_iterations=20)
    return FrameRuns(tiny_weights, config, frames, independent, consistent)


@pytest.mark.slow
def test_the_temporal_term_halves_the_flicker_on_the_still_background(frame_runs: FrameRuns) -> None:
    """Mean absolute change between consecutive results below the square."""
    still = (slice(TOP + SQUARE + 4, None), slice(None))

    def flicker(results: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(b[still] - a[still]).mean() for a, b in zip(results, results[1:], strict=False)]))

    independent, consistent = flicker(frame_runs.independent), flicker(frame_runs.consistent)
    print(f"flicker: {consistent:.2f} with the temporal term, {independent:.2f} without")
    assert consistent <= 0.5 * independent, (consistent, independent)


@pytest.mark.slow
def test_a_run_resumed_at_a_frame_gives_the_same_frames(frame_runs: FrameRuns) -> None:
    whole, frames = frame_runs.consistent, frame_runs.frames
    rest = _results(
        frame_runs.weights,
        frames[2:],
        frame_runs.config,
        temporal_weight=TINY_TEMPORAL_WEIGHT,
        frame_iterations=20,
        first=2,
        previous=(frames[1], whole[1]),
    )
    assert len(rest) == 1 and np.array_equal(rest[0], whole[2])


def test_the_objective_adds_the_weighted_temporal_term_by_hand(tiny_run) -> None:
    """The image is the warped result + 2 on every value; the mask trusts one pixel of the 20x24 frame: the term is
    (3 values x 2^2) / (20 x 24 x 3 values) = 1/120, times the weight 2. The other terms are the objective's own."""
    from neural_style.stylization import build_objective
    from neural_style.temporal import TemporalObjective

    base = build_objective(tiny_run.weights, tiny_run.content, [tiny_run.style], tiny_config())
    warped = np.random.default_rng(0).uniform(-100, 100, (20, 24, 3)).astype(np.float32)
    mask = np.zeros((20, 24), np.float32)
    mask[3, 5] = 1.0
    objective = TemporalObjective.extend(base, 2.0).with_previous(warped, mask)
    images = (warped + 2.0)[None]
    terms, plain = objective(images), base(images)
    assert float(terms["temporal"][0]) == pytest.approx(2.0 / 120, rel=1e-5)
    for name in ("content", "style", "tv"):
        assert float(terms[name][0]) == float(plain[name][0])
    assert float(terms["total"][0]) == pytest.approx(float(plain["total"][0]) + 2.0 / 120, rel=1e-6)
    none = objective.with_previous(None, None)(images)
    assert float(none["temporal"][0]) == 0.0 and float(none["total"][0]) == float(plain["total"][0])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"temporal_weight": -1.0}, "temporal_weight is -1.0; it must be a finite number, 0 or more"),
        ({"temporal_weight": float("nan")}, "temporal_weight is nan; it must be a finite number, 0 or more"),
        ({"frame_iterations": 0}, "frame_iterations is 0; it must be at least 1"),
        ({"first": 1}, "a run that starts after the first frame needs the previous frame and its result"),
    ],
    ids=["negative-weight", "nan-weight", "zero-iterations", "no-previous"],
)
def test_bad_frame_settings_are_refused_before_work(tiny_run, options: dict, message: str) -> None:
    from neural_style.temporal import stylize_frames

    with pytest.raises(NeuralStyleError) as info:
        next(stylize_frames(tiny_run.weights, [tiny_run.content], [tiny_run.style], tiny_config(), **options))
    assert str(info.value) == message


def small_frames(count: int) -> list[np.ndarray]:
    """The clip's frames cut to 16x24 around the square's path (rows 12..27, columns 0..23)."""
    return [frame[12:28, :24] for frame in square_frames(count)]


@pytest.mark.slow
def test_with_no_temporal_weight_every_frame_is_its_own_run(tiny_run) -> None:
    """Weight 0: each frame's result is that of stylize on the frame alone with the same settings (same seed, so
    the same start noise), and every record's temporal term is 0; frames are numbered from ``first``."""
    from neural_style.stylization import stylize
    from neural_style.temporal import stylize_frames

    config = tiny_config(iterations=2)
    frames, styles = small_frames(2), [tiny_run.style]
    records = list(
        stylize_frames(
            tiny_run.weights, frames, styles, config, temporal_weight=0.0, first=3, previous=(frames[0], frames[0])
        )
    )
    assert sorted({index for index, _ in records}) == [3, 4]
    for index, frame in zip((3, 4), frames, strict=True):
        (result,) = [r.image for i, r in records if i == index and r.final]
        alone = [r for r in stylize(tiny_run.weights, frame, styles, config) if r.final][0]
        np.testing.assert_array_equal(result, alone.image)
    assert {float(r.losses["temporal"][0]) for _, r in records if r.losses is not None} == {0.0}


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_a_later_frame_starts_from_the_warped_result(tiny_run, optimizer: str) -> None:
    """Frame 2 starts where the temporal term is 0 (its start is the warped result) and runs frame_iterations (2)
    steps, after which the term is above 0; the first frame runs the config's 3 with no temporal term."""
    from neural_style.temporal import stylize_frames

    config = tiny_config(iterations=3, optimizer=optimizer)
    records = list(
        stylize_frames(
            tiny_run.weights, small_frames(2), [tiny_run.style], config, temporal_weight=1e5, frame_iterations=2
        )
    )
    second = [r for index, r in records if index == 1]
    assert second[0].iteration == 0 and float(second[0].losses["temporal"][0]) == 0.0
    assert second[-1].final and second[-1].iterations == 2
    assert float(second[-1].losses["temporal"][0]) > 0.0
    first = [r for index, r in records if index == 0]
    assert first[-1].iterations == 3 and {float(r.losses["temporal"][0]) for r in first if r.losses} == {0.0}


def test_every_frame_is_a_run_with_every_setting(tiny_run, monkeypatch: pytest.MonkeyPatch) -> None:
    """The frames after the first honour the run's settings as the first does: a stop_at_loss every saved image
    reaches ends each frame after its first iteration, and each frame's result is its best image judged as saved,
    with that image's losses. One run serves all the later frames (two runs are built for four frames)."""
    from neural_style import stylization
    from neural_style.temporal import stylize_frames

    built = []
    original = stylization.Stylization.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(stylization.Stylization, "__init__", counting)
    config = tiny_config(iterations=3, stop_at_loss=1e30, average_decay=0.9)
    records: dict[int, list] = {}
    for index, record in stylize_frames(
        tiny_run.weights, small_frames(4), [tiny_run.style], config, temporal_weight=1e5, frame_iterations=3
    ):
        records.setdefault(index, []).append(record)
    assert len(built) == 2
    for index in range(4):
        final = records[index][-1]
        assert final.final and final.iteration == 1, (index, final.iteration)
        assert final.image_losses is not None and final.images is not None
        assert np.array_equal(final.image, np.rint(final.image))
        assert set(final.image_losses) >= {"content", "style", "tv", "total"}


def test_tiles_with_the_temporal_term_are_refused_before_work(tiny_run) -> None:
    from neural_style.temporal import stylize_frames

    config = tiny_config(tile_size=32)
    with pytest.raises(NeuralStyleError, match="tile_size.*video frames are optimised whole"):
        list(stylize_frames(tiny_run.weights, small_frames(2), [tiny_run.style], config, temporal_weight=1.0))


# ------------------------------------------------------------------------------------------------ long-term, passes


def test_the_temporal_term_over_offsets_by_hand(tiny_weights) -> None:
    """Images of 0 against two warped results, 1 on the left half and 3 on the right, each trusted on its half:
    weight x (mean of 1 over the left half's values + mean of 9 over the right's) = weight x (0.5 + 4.5)."""
    from neural_style.config import StyleConfig
    from neural_style.stylization import build_objective
    from neural_style.temporal import TemporalObjective

    frame = square_frames(1)[0]
    objective = build_objective(tiny_weights, frame, [style_array().astype(np.float32)], StyleConfig())
    warped = np.stack([np.full(frame.shape, 1.0), np.full(frame.shape, 3.0)]).astype(np.float32)
    masks = np.zeros((2, CLIP_HEIGHT, CLIP_WIDTH), np.float32)
    masks[0, :, : CLIP_WIDTH // 2] = masks[1, :, CLIP_WIDTH // 2 :] = 1.0
    temporal = TemporalObjective.extend(objective, 2.0).with_previous(warped, masks)
    terms = temporal(np.zeros((1, *frame.shape), np.float32))
    assert float(terms["temporal"][0]) == pytest.approx(2.0 * (0.5 * 1 + 0.5 * 9))
    plain = objective(np.zeros((1, *frame.shape), np.float32))
    assert float(terms["total"][0]) == pytest.approx(float(plain["total"][0]) + 10.0)


def test_pass_start_by_hand() -> None:
    """Where trusted: blend x the neighbour's warped result + (1 - blend) x the frame's result of the pass before;
    elsewhere the latter."""
    from neural_style.temporal import pass_start

    warped = np.full((1, 2, 3), 100.0, np.float32)
    before = np.full((1, 2, 3), 20.0, np.float32)
    mask = np.float32([[1.0, 0.0]])
    assert pass_start(warped, mask, before)[0, :, 0].tolist() == [60.0, 20.0]
    assert pass_start(warped, mask, before, 0.25)[0, :, 0].tolist() == [40.0, 20.0]
    assert pass_start(warped, mask, before, 1.0)[0, :, 0].tolist() == [100.0, 20.0]


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"temporal_offsets": (2, 5)}, "temporal_offsets is '2,5'; give increasing offsets starting with 1"),
        ({"temporal_offsets": (1, 5, 2)}, "temporal_offsets is '1,5,2'; give increasing offsets starting with 1"),
        ({"temporal_offsets": (1, 1)}, "temporal_offsets is '1,1'; give increasing offsets"),
        ({"temporal_offsets": (0, 1)}, "temporal_offsets is '0,1'; give whole numbers of frames, 1 or more"),
        ({"temporal_offsets": ()}, "temporal_offsets is ''; give whole numbers"),
        ({"passes": 0}, "passes is 0; it must be at least 1"),
        ({"pass_blend": 1.5}, "pass_blend is 1.5; it must be in [0, 1]"),
        ({"temporal_weight": float("nan")}, "temporal_weight is nan; it must be a finite number"),
        ({"frame_iterations": 0}, "frame_iterations is 0; it must be at least 1"),
        ({"frame_learning_rate": 0.0}, "frame_learning_rate is 0.0; it must be a positive finite number"),
    ],
)
def test_bad_temporal_settings_are_refused(changes: dict, words: str) -> None:
    from neural_style.config import TemporalConfig

    with pytest.raises(NeuralStyleError) as info:
        TemporalConfig(**changes).validate()
    assert str(info.value).startswith(words), str(info.value)


def _clip_records(weights, frames, config, temporal, **options) -> list[tuple[int, int, object]]:
    """(pass, frame, final record) of each frame run of stylize_clip, in order."""
    from neural_style.temporal import stylize_clip

    style = [style_array().astype(np.float32)]
    return [(p, i, r) for p, i, r in stylize_clip(weights, frames, style, config, temporal, **options) if r.final]


@pytest.fixture(scope="module")
def passes_run(tiny_weights):
    """Three frames, long-term offsets 1 and 2, three passes; the starts each frame run was given."""
    from neural_style.config import StyleConfig, TemporalConfig
    from neural_style.stylization import Stylization

    config = StyleConfig(iterations=6, seed=0, tv_weight=1.0)
    temporal = TemporalConfig(TINY_TEMPORAL_WEIGHT, frame_iterations=4, temporal_offsets=(1, 2), passes=3)
    starts: list[np.ndarray | None] = []
    built: list[Stylization] = []
    original_init, original_restart = Stylization.__init__, Stylization.restart

    def init(self, *args, **kwargs):
        starts.append(kwargs.get("initial"))
        built.append(self)
        original_init(self, *args, **kwargs)

    def restart(self, content, *, initial=None):
        starts.append(initial)
        original_restart(self, content, initial=initial)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Stylization, "__init__", init)
        patch.setattr(Stylization, "restart", restart)
        records = _clip_records(tiny_weights, square_frames(3), config, temporal)
    return config, temporal, records, starts, built


def test_passes_alternate_and_start_from_the_blend_of_the_pass_before(passes_run) -> None:
    """Forward, backward, forward; in a later pass a frame starts from pass_start of its neighbour's result of this
    pass (warped) and its own of the pass before, and the first frame of a pass from its own result, held to the
    frames on its other side."""
    from neural_style.temporal import pass_start

    _, temporal, records, starts, built = passes_run
    frames = square_frames(3)
    assert [(p, i) for p, i, _ in records] == [(0, 0), (0, 1), (0, 2), (1, 2), (1, 1), (1, 0), (2, 0), (2, 1), (2, 2)]
    result = {(p, i): r.image for p, i, r in records}
    assert starts[0] is None  # the first frame starts from noise
    assert np.array_equal(starts[3], result[0, 2])  # pass 2 begins at the last frame, from its own result
    turn = {(p, i): r for p, i, r in records}[1, 2]
    assert float(turn.losses["temporal"][0]) > 0  # held to frames 1 and 0 as the first pass left them
    warped, mask = flow.temporal_guide(frames[2], frames[1], result[1, 2])
    assert np.array_equal(starts[4], pass_start(warped, mask, result[0, 1], temporal.pass_blend))
    warped, mask = flow.temporal_guide(frames[1], frames[2], result[2, 1])
    assert np.array_equal(starts[8], pass_start(warped, mask, result[1, 2], temporal.pass_blend))
    assert len(built) == 2  # one run from noise, one from results: each step traced once
    assert (built[0].config.learning_rate, built[1].config.learning_rate) == (10.0, 1.0)  # a tenth, by default
    assert (built[0].config.iterations, built[1].config.iterations) == (6, 4)
    for run in built:
        assert run._engine._step.experimental_get_tracing_count() == 1
    assert not np.array_equal(result[2, 1], result[0, 1])


def test_a_clip_resumed_mid_pass_gives_the_uninterrupted_frames(tiny_weights, passes_run) -> None:
    """Resumed in the backward pass after its first frame (given each frame's newest result), and in the first
    pass after two frames: the frames the uninterrupted run made."""
    config, temporal, records, _, _ = passes_run
    result = {(p, i): r.image for p, i, r in records}
    frames = square_frames(3)
    newest = {0: result[0, 0], 1: result[0, 1], 2: result[1, 2]}
    rest = _clip_records(tiny_weights, frames, config, temporal, start=(1, 1), results=newest)
    assert [(p, i) for p, i, _ in rest] == [(p, i) for p, i, _ in records[4:]]
    for p, i, record in rest:
        assert np.array_equal(record.image, result[p, i]), (p, i)
    first_pass = _clip_records(
        tiny_weights, frames, config, temporal, start=(0, 2), results={0: result[0, 0], 1: result[0, 1]}
    )
    assert [(p, i) for p, i, _ in first_pass] == [(p, i) for p, i, _ in records[2:]]
    assert all(np.array_equal(r.image, result[p, i]) for p, i, r in first_pass)


def test_a_resume_without_the_results_it_needs_is_refused(tiny_weights, passes_run) -> None:
    config, temporal, *_ = passes_run
    with pytest.raises(NeuralStyleError, match=r"resumed at pass 2, frame 2 needs the results of frames 0, 2"):
        _clip_records(tiny_weights, square_frames(3), config, temporal, start=(1, 1), results={1: np.zeros(1)})
    with pytest.raises(NeuralStyleError, match=r"a run of 3 passes cannot start at pass 4"):
        _clip_records(tiny_weights, square_frames(3), config, temporal, start=(3, 0))


def test_independent_frames_share_one_run_and_equal_runs_of_each_frame(frame_runs: FrameRuns) -> None:
    """With a temporal weight of 0 each frame is the image run of that frame (same start noise), though one run
    serves them all."""
    from neural_style.stylization import stylize

    style = [style_array().astype(np.float32)]
    alone = [r for r in stylize(frame_runs.weights, frame_runs.frames[2], style, frame_runs.config) if r.final]
    # Equal to float32 round-off: the frames' loss has a temporal term of weight 0, which adds zeros to the gradient
    # in another order; over 20 iterations that moves a value across a rounding boundary here and there.
    apart = np.abs(frame_runs.independent[2] - alone[-1].image)
    assert apart.max() <= 1 and np.mean(apart > 0) <= 1e-3, (apart.max(), np.mean(apart > 0))
