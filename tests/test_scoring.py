"""Tests of neural_style.scoring: the score is the run's objective on the image, with terms worked out by hand where
they can be (tv of a 3x3 image; a content or style term of zero for the target image itself)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import tiny_config

from neural_style.config import TERMS, StyleConfig
from neural_style.errors import NeuralStyleError
from neural_style.image_io import to_uint8
from neural_style.scoring import score_images
from neural_style.stylization import build_objective
from neural_style.vgg import preprocess


def _saved(tiny_run, seed: int) -> np.ndarray:
    """A 20x24 image as a file would hold it: the content plus noise, clipped and rounded to 8 bits."""
    noise = np.random.default_rng(seed).normal(0, 40, tiny_run.content.shape)
    return to_uint8(tiny_run.content + noise).astype(np.float32)


@pytest.mark.parametrize("pooling", ["max", "avg"])
def test_score_is_the_objective_of_the_run_on_the_image(tiny_run, pooling):
    """Exactly build_objective's value on the preprocessed image, as a run with the same settings evaluates it."""
    config = tiny_config(pooling=pooling, style_weight=100.0, content_weight_blend=0.5, style_layer_weight_exp=2.0)
    image = _saved(tiny_run, 0)
    scores = score_images(tiny_run.weights, tiny_run.content, [tiny_run.style], image, config)
    objective = build_objective(tiny_run.weights, tiny_run.content, [tiny_run.style], config)
    expected = objective(preprocess(image, tiny_run.weights.mean_pixel)[None])
    assert set(scores) == set(TERMS)
    for key in TERMS:
        assert scores[key].shape == (1,) and scores[key].dtype == np.float32
        np.testing.assert_array_equal(scores[key], np.asarray(expected[key]))
    assert scores["content"][0] > 0 and scores["style"][0] > 0 and scores["tv"][0] > 0
    np.testing.assert_allclose(scores["total"], scores["content"] + scores["style"] + scores["tv"], rtol=1e-6)


def test_a_batch_scores_each_image_as_alone(tiny_run):
    """[N, H, W, 3], a list of [H, W, 3] and one image at a time give the same numbers, in order."""
    config = tiny_config()
    images = np.stack([_saved(tiny_run, 1), _saved(tiny_run, 2)])
    batch = score_images(tiny_run.weights, tiny_run.content, [tiny_run.style], images, config)
    as_list = score_images(tiny_run.weights, tiny_run.content, [tiny_run.style], list(images), config)
    alone = [score_images(tiny_run.weights, tiny_run.content, [tiny_run.style], image, config) for image in images]
    for key in TERMS:
        assert batch[key].shape == (2,)
        np.testing.assert_array_equal(batch[key], as_list[key])
        np.testing.assert_array_equal(batch[key], [alone[0][key][0], alone[1][key][0]])
    assert batch["total"][0] != batch["total"][1]


def test_the_content_image_itself_has_no_content_loss(tiny_run):
    """Its features are the content targets: the content term is 0 and the rest is style + tv."""
    scores = score_images(tiny_run.weights, tiny_run.content, [tiny_run.style], tiny_run.content, tiny_config())
    assert scores["content"][0] == 0.0
    assert scores["style"][0] > 0
    np.testing.assert_allclose(scores["total"], scores["style"] + scores["tv"], rtol=1e-6)


def test_the_style_image_itself_has_no_style_loss(tiny_run):
    """Scored at the style's own size against itself as the content too: content and style terms are 0, the total
    is the tv term."""
    style = tiny_run.style
    scores = score_images(tiny_run.weights, style, [style], style, tiny_config())
    assert scores["content"][0] == 0.0
    assert scores["style"][0] == pytest.approx(0.0, abs=1e-6 * float(scores["tv"][0]))  # approx takes Python floats
    np.testing.assert_allclose(scores["total"], scores["tv"], rtol=1e-6)


def test_tv_term_of_a_3x3_image_by_hand(tiny_run):
    """Red rows (0, 10, 20), (0, 10, 20), (5, 15, 25), green and blue constant. Horizontal differences: 6 of 10 in
    red among 3x2x3 = 18, mean 600 / 18; vertical: 3 of 5 (second to third row) among 2x3x3 = 18, mean 75 / 18.
    tv = 675 / 18 = 37.5 (the mean pixel cancels in differences); weighted by tv_weight 2: 75."""
    red = np.array([[0, 10, 20], [0, 10, 20], [5, 15, 25]], np.float32)
    image = np.stack([red, np.full_like(red, 100), np.full_like(red, 200)], axis=-1)
    content = np.full_like(image, 128)
    config = dataclasses.replace(tiny_config(), tv_weight=2.0)
    scores = score_images(tiny_run.weights, content, [tiny_run.style], image, config)
    assert scores["tv"][0] == pytest.approx(75.0, rel=1e-6)
    flat = score_images(tiny_run.weights, content, [tiny_run.style], content, config)
    assert flat["tv"][0] == 0.0 and flat["content"][0] == 0.0


def test_two_styles_blend_as_the_run_does(tiny_run):
    """Two styles with blend weights 3:1: the style term is 0.75 x that of the first alone + 0.25 x the second's."""
    second = tiny_run.style[::-1, :, ::-1].copy()
    image = _saved(tiny_run, 3)
    args = (tiny_run.weights, tiny_run.content)
    both = score_images(*args, [tiny_run.style, second], image, tiny_config(style_blend_weights=(3.0, 1.0)))
    first = score_images(*args, [tiny_run.style], image, tiny_config())
    only_second = score_images(*args, [second], image, tiny_config())
    expected = 0.75 * first["style"][0] + 0.25 * only_second["style"][0]
    assert both["style"][0] == pytest.approx(expected, rel=1e-5)
    assert both["content"][0] == first["content"][0]


def test_bad_input_is_one_clear_error(tiny_run):
    args = (tiny_run.weights, tiny_run.content, [tiny_run.style])
    with pytest.raises(NeuralStyleError, match="image 0 is 12x10 but the content is 24x20"):
        score_images(*args, tiny_run.content[:10, :12])
    with pytest.raises(NeuralStyleError, match="no images to score"):
        score_images(*args, [])
    with pytest.raises(NeuralStyleError, match="content_weight_blend is 2.0"):
        score_images(*args, tiny_run.content, StyleConfig(content_weight_blend=2.0))
    with pytest.raises(NeuralStyleError, match="must be"):
        score_images(*args, tiny_run.content[..., 0])


def test_score_images_is_public():
    import neural_style

    assert "score_images" in neural_style.__all__ and neural_style.score_images is score_images
