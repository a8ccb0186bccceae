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
    SQUARE,
    TOP,
    he_scaled,
    square_frames,
    style_array,
    tiny_config,
    write_vgg_mat,
)

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
