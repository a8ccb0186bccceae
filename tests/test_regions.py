"""Tests of spatial control (neural_style.regions, and the guided losses in neural_style.losses): guided Gram
matrices by hand, masks at each layer's resolution, the identities that tie the guided loss to the unguided one,
the checks of masks, every kind of run with regions, and (with the real-feature network of ../shared) two styles
kept to their halves of the image."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import red_image, red_network

from neural_style import losses as L
from neural_style.coarse import coarse_to_fine
from neural_style.config import Candidate, StyleConfig
from neural_style.errors import NeuralStyleError
from neural_style.objective import Objective
from neural_style.regions import Regions, mask_from_image, resize_mask
from neural_style.stylization import build_objective, stylize, sweep
from neural_style.vgg import VggFeatures, preprocess

SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_FILE = SHARED / "weights" / "vgg19-layout-hed-edges.mat"


def _halves(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Left-half and right-half masks [height, width]."""
    left = np.zeros((height, width), np.float32)
    left[:, : width // 2] = 1.0
    return left, 1.0 - left


# --- guided Gram matrices and layer masks, by hand --------------------------------------------------------------------


def test_guided_gram_matrix_by_hand() -> None:
    """G = sum_p m_p f_p f_p^T / (C sum_p m_p) on a 1x3 map of 2 channels, with a soft mask and a one-pixel mask."""
    features = tf.constant([[[[1.0, 2.0], [3.0, 0.0], [0.0, -1.0]]]])  # [1, 1, 3, 2]: f = (1,2), (3,0), (0,-1)
    masks = tf.constant([[[1.0, 0.5, 0.0]], [[0.0, 0.0, 1.0]]])  # [2, 1, 3]
    grams = L.guided_gram_matrix(features, masks).numpy()
    assert grams.shape == (1, 2, 2, 2)
    # mask 1: 1 * (1,2)(1,2)^T + 0.5 * (3,0)(3,0)^T = [[1, 2], [2, 4]] + [[4.5, 0], [0, 0]] = [[5.5, 2], [2, 4]];
    # C sum m = 2 * 1.5 = 3.
    np.testing.assert_allclose(grams[0, 0], np.array([[5.5, 2.0], [2.0, 4.0]]) / 3, rtol=1e-6)
    # mask 2: (0,-1)(0,-1)^T = [[0, 0], [0, 1]]; C sum m = 2.
    np.testing.assert_allclose(grams[0, 1], np.array([[0.0, 0.0], [0.0, 0.5]]), rtol=1e-6)


def test_layer_masks_average_each_pooling() -> None:
    """relu1_1 keeps the input's mask; pool1 (2x2, stride 2, SAME) averages it: a 2x3 mask becomes 1x2, the last
    column averaged over the pixels inside the image only."""
    network = VggFeatures.from_weights(red_network(), ["relu1_1", "pool1"])
    mask = np.array([[[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]], np.float32)  # [1, 2, 3]
    found = L.layer_masks(mask, network, ["relu1_1", "pool1"])
    np.testing.assert_array_equal(found["relu1_1"].numpy(), mask)
    np.testing.assert_allclose(found["pool1"].numpy(), [[[0.75, 0.5]]], rtol=1e-6)


def test_style_mask_takes_the_gram_matrices_of_its_region() -> None:
    """With the 1x1 red network, the style Gram matrices over a left-half style mask equal those of the left half
    cut out: (R - 10) clipped, squared and averaged over the 2 pixels of the region."""
    network = VggFeatures.from_weights(red_network(), ["relu1_1"])
    objective = Objective(network, {"relu1_1": 1.0}, {"relu1_1": 1.0})
    style = red_image([[14.0, 12.0, 50.0], [16.0, 11.0, 99.0]])[0]  # the right column is left out by the mask
    mask = np.array([[1, 1, 0], [1, 1, 0]], np.float32)
    grams = objective.style_grams([style], [mask])["relu1_1"].numpy()
    # relu1_1 in the region: 4, 2, 6, 1 -> (16 + 4 + 36 + 1) / (1 channel x 4 pixels) = 57 / 4.
    np.testing.assert_allclose(grams, [[[57 / 4]]], rtol=1e-6)
    np.testing.assert_allclose(grams, objective.style_grams([style[:, :2]])["relu1_1"].numpy(), rtol=1e-6)


# --- the identities ---------------------------------------------------------------------------------------------------


def _objective(problem, styles, regions=None, **changes):
    weights, content, _ = problem
    return build_objective(weights, content, styles, StyleConfig(**changes), regions=regions)


def _images(problem, n: int = 2) -> tf.Tensor:
    weights, content, _ = problem
    noise = np.random.default_rng(3).uniform(0, 255, (n, *content.shape)).astype(np.float32)
    return tf.constant(preprocess(noise, weights.mean_pixel))


def test_a_mask_of_all_ones_is_the_unguided_loss_exactly(small_problem) -> None:
    """Guided by one all-ones content mask (and an all-ones style mask), every term equals the unguided one."""
    _, content, style = small_problem
    ones = np.ones(content.shape[:2], np.float32)
    regions = Regions((ones,), (np.ones(style.shape[:2], np.float32),))
    images = _images(small_problem)
    guided = _objective(small_problem, [style], regions)(images)
    plain = _objective(small_problem, [style])(images)
    for key in ("content", "style", "tv", "total"):
        np.testing.assert_array_equal(guided[key].numpy(), plain[key].numpy(), err_msg=key)


def test_two_disjoint_masks_are_the_sum_of_the_two_masked_problems(small_problem) -> None:
    """Left half style A, right half style B, blend (w, 1 - w): style term = w x (A on the left alone) +
    (1 - w) x (B on the right alone)."""
    _, content, style = small_problem
    other = style[::-1, ::-1, ::-1].copy()
    left, right = _halves(*content.shape[:2])
    images = _images(small_problem)
    both = _objective(small_problem, [style, other], Regions((left, right)), style_blend_weights=(0.25, 0.75))
    alone_a = _objective(small_problem, [style], Regions((left,)))
    alone_b = _objective(small_problem, [other], Regions((right,)))
    np.testing.assert_allclose(
        both(images)["style"].numpy(),
        0.25 * alone_a(images)["style"].numpy() + 0.75 * alone_b(images)["style"].numpy(),
        rtol=1e-5,
    )


def test_guided_style_loss_by_hand_on_the_red_network() -> None:
    """One style, a mask on the left column: only the left column's relu1_1 enters the style term."""
    network = VggFeatures.from_weights(red_network(), ["relu1_1"])
    objective = Objective(network, {"relu1_1": 1.0}, {"relu1_1": 1.0}, content_weight=0.0, tv_weight=0.0)
    style = red_image([[13.0]])[0]  # relu1_1 = 3: Gram 9
    mask = np.array([[1, 0], [1, 0]], np.float32)
    objective = objective.with_targets(content=red_image([[0.0, 0.0]])[0], styles=[style], content_masks=mask[None])
    image = red_image([[12.0, 90.0], [14.0, 70.0]])  # left column relu1_1 2, 4: Gram (4 + 16) / 2 = 10
    # style weight 500 x (10 - 9)^2.
    np.testing.assert_allclose(objective(tf.constant(image))["style"].numpy(), [500.0], rtol=1e-6)


# --- masks: reading, resizing, checks ---------------------------------------------------------------------------------


def test_mask_from_image_and_resize() -> None:
    image = np.zeros((4, 6, 3), np.float32)
    image[:, :3] = 255.0
    mask = mask_from_image(image)
    np.testing.assert_allclose(mask[:, :3], 1.0, rtol=1e-6)
    np.testing.assert_array_equal(mask[:, 3:], 0.0)
    resized = resize_mask(mask, (8, 12))
    assert resized.shape == (8, 12) and resized.min() >= 0.0 and resized.max() <= 1.0


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        (Regions((np.ones((20, 24)),)), "content_masks has 1 masks for 2 styles; give one per style"),
        (Regions(None, (np.ones((16, 16)),)), "style_masks has 1 masks for 2 styles"),
        (Regions((np.ones((20, 24)), np.zeros((20, 24)))), "content_masks mask 2 is all black (0)"),
        (
            Regions((np.ones((10, 12)), np.ones((20, 30)))),
            "content_masks mask 2 is 30x20, but the content image is 24x20",
        ),
        (
            Regions(None, (np.ones((16, 16)), np.ones((8, 16)))),
            "style_masks mask 2 is 16x8, but style image 2 is 16x16",
        ),
    ],
)
def test_bad_masks_are_refused(regions: Regions, message: str) -> None:
    with pytest.raises(NeuralStyleError, match=f"^{re.escape(message)}"):
        regions.check((20, 24, 3), [(16, 16, 3), (16, 16, 3)])


def test_a_mask_off_by_a_rounding_pixel_is_accepted() -> None:
    """A 99x75 mask of a 100x75 image (its height off by under a pixel at the image's width) is the same shape: it
    is accepted and resized to the image, still all ones."""
    regions = Regions((np.ones((75, 99)),))
    regions.check((75, 100, 3), [(16, 16, 3)])
    resized = regions.content_at((75, 100))
    assert resized is not None and resized.shape == (1, 75, 100) and resized.min() == resized.max() == 1.0


# --- every kind of run ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_halves(small_problem):
    weights, content, style = small_problem
    return weights, content, [style, style[:, ::-1, ::-1].copy()], Regions(_halves(*content.shape[:2]))


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_regions_run_with_both_optimisers(two_halves, optimizer: str) -> None:
    weights, content, styles, regions = two_halves
    config = StyleConfig(iterations=2, seed=0, tv_weight=1.0, optimizer=optimizer, style_blend_weights=(2, 1))
    records = list(stylize(weights, content, styles, config, regions=regions))
    assert records[-1].final and records[-1].image is not None and np.isfinite(records[-1].image).all()


@pytest.mark.slow
def test_regions_sweep_gives_each_candidate_its_blend(two_halves) -> None:
    """A sweep with regions: candidate i is the single run with its blend (the regions' weights)."""
    weights, content, styles, regions = two_halves
    config = StyleConfig(iterations=2, seed=0, tv_weight=1.0)
    candidates = [Candidate.make((1, 0), 500.0), Candidate.make((1, 3), 500.0)]
    last = [record for _, record in sweep(weights, content, styles, config, candidates, regions=regions)][-1]
    single = list(
        stylize(weights, content, styles, dataclasses.replace(config, style_blend_weights=(1, 3)), regions=regions)
    )
    assert last.images is not None
    np.testing.assert_allclose(last.images[1], single[-1].image, atol=1e-2)


@pytest.mark.slow
def test_regions_coarse_to_fine_resizes_the_masks(two_halves) -> None:
    weights, _, styles, regions = two_halves
    content = np.random.default_rng(0).uniform(0, 255, (51, 64, 3)).astype(np.float32)
    config = StyleConfig(seed=0, tv_weight=1.0)
    stages = list(coarse_to_fine(weights, content, styles, config, widths=[32, 64], iterations=[1, 1], regions=regions))
    assert [stage for stage, record in stages if record.final] == [0, 1]
    assert stages[-1][1].image.shape == (51, 64, 3)


# --- the real-feature network: two styles, each kept to its half ------------------------------------------------------


def _two_colour_styles(size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """The same swirling pattern in reds and oranges, and in blues and cyans."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    t = np.clip((np.sin(12 * np.hypot(xx - 0.4, yy - 0.45) + 5 * np.arctan2(yy - 0.45, xx - 0.4)) + 1) / 2, 0, 1)
    t = t[..., None]
    red = np.array([110, 20, 20]) + t * np.array([140, 150, 40])
    blue = np.array([10, 40, 90]) + t * np.array([80, 180, 110])
    return red.astype(np.float32), blue.astype(np.float32)


@pytest.mark.slow
@pytest.mark.skipif(not REAL_FILE.is_file(), reason=f"{REAL_FILE} is not present")
def test_real_network_keeps_each_style_to_its_half() -> None:
    """Left half red style, right half blue style: each half's mean colour ends closer to its own style's."""
    from neural_style.matconvnet import load_vgg

    weights = load_vgg(REAL_FILE)
    height, width = 36, 48
    yy, xx = np.mgrid[0:height, 0:width]
    content = np.stack([128 + 60 * np.sin(xx / 5.0), 128 + 60 * np.cos(yy / 4.0), np.full(xx.shape, 128.0)], -1)
    red, blue = _two_colour_styles()
    config = StyleConfig(iterations=60, seed=0)
    regions = Regions(_halves(height, width))
    result = list(stylize(weights, content.astype(np.float32), [red, blue], config, regions=regions))[-1].image
    means = {name: style.reshape(-1, 3).mean(axis=0) for name, style in (("red", red), ("blue", blue))}
    for half, own, other in ((result[:, : width // 2], "red", "blue"), (result[:, width // 2 :], "blue", "red")):
        mean = half.reshape(-1, 3).mean(axis=0)
        assert np.linalg.norm(mean - means[own]) < np.linalg.norm(mean - means[other]), (own, mean, means)
