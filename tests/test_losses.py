"""Tests of the pure losses against numbers worked out by hand on tiny arrays."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from neural_style import losses as L
from neural_style.config import STYLE_LAYERS, content_layer_weights, style_layer_weights
from neural_style.errors import NeuralStyleError


def _t(values: object) -> tf.Tensor:
    """A float32 tensor."""
    return tf.constant(values, dtype=tf.float32)


# --- gram_matrix ----------------------------------------------------------------------------------------------------


def test_gram_matrix_single_image_by_hand():
    """G = F^T F / (H W C) for a 1x2x1x2 feature map."""
    # Two pixels (H=2, W=1), two channels: F = [[1, 2], [3, 4]] (rows are pixels).
    features = _t([[[[1, 2]], [[3, 4]]]])
    assert features.shape == (1, 2, 1, 2)
    # F^T F = [[1*1 + 3*3, 1*2 + 3*4], [2*1 + 4*3, 2*2 + 4*4]] = [[10, 14], [14, 20]]; H W C = 2*1*2 = 4.
    expected = np.array([[[10 / 4, 14 / 4], [14 / 4, 20 / 4]]])
    np.testing.assert_allclose(L.gram_matrix(features).numpy(), expected, rtol=1e-6)


def test_gram_matrix_1x1x2x2_by_hand():
    """The same rule with the pixels laid out along the width: 1x1x2x2."""
    features = _t([[[[1, -1], [2, 0]]]])  # F = [[1, -1], [2, 0]]
    # F^T F = [[1 + 4, -1 + 0], [-1 + 0, 1 + 0]] = [[5, -1], [-1, 1]]; H W C = 1*2*2 = 4.
    expected = np.array([[[5 / 4, -1 / 4], [-1 / 4, 1 / 4]]])
    np.testing.assert_allclose(L.gram_matrix(features).numpy(), expected, rtol=1e-6)


def test_gram_matrix_batch_gives_one_gram_per_image():
    """A batch of 2 gives [2, C, C], each image's own Gram matrix."""
    features = _t(
        [
            [[[1, 2]], [[3, 4]]],  # F0 = [[1, 2], [3, 4]]
            [[[0, 1]], [[-1, 2]]],  # F1 = [[0, 1], [-1, 2]]
        ]
    )
    # F0^T F0 = [[10, 14], [14, 20]]; F1^T F1 = [[0 + 1, 0 - 2], [0 - 2, 1 + 4]] = [[1, -2], [-2, 5]]; divide by 4.
    expected = np.array(
        [
            [[2.5, 3.5], [3.5, 5.0]],
            [[0.25, -0.5], [-0.5, 1.25]],
        ]
    )
    grams = L.gram_matrix(features).numpy()
    assert grams.shape == (2, 2, 2)
    np.testing.assert_allclose(grams, expected, rtol=1e-6)


# --- content_loss ---------------------------------------------------------------------------------------------------


def test_content_loss_weights_layers_by_hand():
    """sum_l w_l mean((F_l - P_l)^2) per image, with relu4_2 at 0.25 and relu5_2 at 0.75."""
    features = {
        "relu4_2": _t([[[[1], [2]]], [[[3], [5]]]]),  # [2, 1, 2, 1]
        "relu5_2": _t([[[[2]]], [[[-1]]]]),  # [2, 1, 1, 1]
    }
    targets = {
        "relu4_2": _t([[[[1], [1]]]]),  # [1, 1, 2, 1], shared by both images
        "relu5_2": _t([[[[0]]]]),
    }
    weights = {"relu4_2": 0.25, "relu5_2": 0.75}
    # relu4_2: image 0 diffs (0, 1) -> mean of squares 0.5; image 1 diffs (2, 4) -> (4 + 16) / 2 = 10.
    # relu5_2: image 0 diff 2 -> 4; image 1 diff -1 -> 1.
    expected = [0.25 * 0.5 + 0.75 * 4, 0.25 * 10 + 0.75 * 1]  # [3.125, 3.25]
    np.testing.assert_allclose(L.content_loss(features, targets, weights).numpy(), expected, rtol=1e-6)


def test_content_loss_leaves_out_unweighted_layers_and_accepts_per_image_targets():
    """Only the layers in layer_weights count; targets may have one row per image."""
    features = {"relu4_2": _t([[[[1, 2]]], [[[0, 0]]]]), "relu5_2": _t([[[[100]]], [[[100]]]])}
    targets = {"relu4_2": _t([[[[0, 0]]], [[[3, 4]]]])}  # [2, 1, 1, 2]: one target per image
    # image 0: (1 + 4) / 2 = 2.5; image 1: (9 + 16) / 2 = 12.5; relu5_2 is not weighted, so not even looked up.
    loss = L.content_loss(features, targets, {"relu4_2": 1.0})
    np.testing.assert_allclose(loss.numpy(), [2.5, 12.5], rtol=1e-6)


# --- style_loss -----------------------------------------------------------------------------------------------------

# Image Gram matrices (N=2, C=2) and two style targets (S=2) for one layer.
_GRAMS = _t([[[3, 1], [1, 1]], [[1, 1], [1, 1]]])
_STYLE_A = [[0, 0], [0, 0]]
_STYLE_B = [[1, 1], [1, 1]]
# mean over the 4 entries of (G - A)^2:
#   image 0 vs A: (9 + 1 + 1 + 1) / 4 = 3     image 0 vs B: (4 + 0 + 0 + 0) / 4 = 1
#   image 1 vs A: (1 + 1 + 1 + 1) / 4 = 1     image 1 vs B: 0


def test_style_loss_one_style_by_hand():
    """One style: w_l mean((G_l - A_l)^2) per image, summed over two weighted layers."""
    grams = {"relu1_1": _GRAMS, "relu2_1": _t([[[2]], [[0]]])}  # relu2_1 has C=1
    targets = {"relu1_1": _t([_STYLE_A]), "relu2_1": _t([[[1]]])}
    weights = {"relu1_1": 0.5, "relu2_1": 2.0}
    # relu2_1: image 0 (2 - 1)^2 = 1; image 1 (0 - 1)^2 = 1.
    expected = [0.5 * 3 + 2.0 * 1, 0.5 * 1 + 2.0 * 1]  # [3.5, 2.5]
    loss = L.style_loss(grams, targets, weights, np.array([1.0], np.float32))
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-6)


def test_style_loss_two_styles_shared_blend_by_hand():
    """Two styles blended [0.25, 0.75] for every image."""
    loss = L.style_loss({"relu1_1": _GRAMS}, {"relu1_1": _t([_STYLE_A, _STYLE_B])}, {"relu1_1": 1.0}, [0.25, 0.75])
    expected = [0.25 * 3 + 0.75 * 1, 0.25 * 1 + 0.75 * 0]  # [1.5, 0.25]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-6)


def test_style_loss_per_image_blend_by_hand():
    """An [N, S] blend gives each image its own mix: image 0 only style A, image 1 half and half."""
    blend = np.array([[1.0, 0.0], [0.5, 0.5]], np.float32)
    loss = L.style_loss({"relu1_1": _GRAMS}, {"relu1_1": _t([_STYLE_A, _STYLE_B])}, {"relu1_1": 3.0}, blend)
    expected = [3.0 * (1.0 * 3 + 0.0 * 1), 3.0 * (0.5 * 1 + 0.5 * 0)]  # [9, 1.5]
    np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-6)


# --- tv_loss --------------------------------------------------------------------------------------------------------


def test_tv_loss_3x3_by_hand():
    """mean of squared vertical differences + mean of squared horizontal differences, 1x3x3x1."""
    image = np.array([[1, 2, 4], [0, 0, 0], [3, 3, 3]], np.float32)
    # vertical (row below minus row above): [-1, -2, -4], [3, 3, 3] -> squares 1 + 4 + 16 + 9 + 9 + 9 = 48 over 6.
    # horizontal (right minus left): [1, 2], [0, 0], [0, 0] -> squares 1 + 4 = 5 over 6.
    expected = 48 / 6 + 5 / 6
    np.testing.assert_allclose(L.tv_loss(_t(image[None, :, :, None])).numpy(), [expected], rtol=1e-6)


def test_tv_loss_2x3_per_image_and_per_channel_mean():
    """1x2x3 images: a constant image has 0; the mean runs over channels too; one value per image."""
    image = np.array([[0, 1, 3], [2, 2, 2]], np.float32)
    # vertical: [2, 1, -1] -> (4 + 1 + 1) / 3 = 2; horizontal: [1, 2], [0, 0] -> (1 + 4) / 4 = 1.25.
    one_channel = 2 + 1.25
    # A second channel that is constant halves both means.
    two_channels = np.stack([image, np.full_like(image, 7)], axis=-1)
    batch = np.stack([two_channels, np.full_like(two_channels, 5)])  # [2, 2, 3, 2]
    np.testing.assert_allclose(L.tv_loss(_t(batch)).numpy(), [one_channel / 2, 0.0], rtol=1e-6)


# --- layer and blend weights ----------------------------------------------------------------------------------------


def test_style_layer_weights_exp_1_is_uniform():
    """exp=1 gives every style layer 1/5."""
    assert style_layer_weights(1.0) == pytest.approx(dict.fromkeys(STYLE_LAYERS, 0.2))


def test_style_layer_weights_exp_2_doubles_per_layer():
    """exp=2 gives 1, 2, 4, 8, 16 over 31."""
    expected = dict(zip(STYLE_LAYERS, (1 / 31, 2 / 31, 4 / 31, 8 / 31, 16 / 31), strict=True))
    weights = style_layer_weights(2.0)
    assert list(weights) == list(STYLE_LAYERS)
    assert weights == pytest.approx(expected)
    assert sum(weights.values()) == pytest.approx(1.0)


def test_style_layer_weights_exp_0_keeps_only_relu1_1():
    """exp=0 gives 1, 0, 0, 0, 0: only relu1_1, the zero-weight layers left out."""
    assert style_layer_weights(0.0) == {"relu1_1": 1.0}


def test_style_layer_weights_nan_is_an_error():
    """An exponent whose weights do not sum to a positive number is refused, naming the flag."""
    with pytest.raises(NeuralStyleError, match="^style_layer_weight_exp"):
        style_layer_weights(float("nan"))


@pytest.mark.parametrize(
    "blend, expected",
    [
        (1.0, {"relu4_2": 1.0}),
        (0.3, {"relu4_2": 0.3, "relu5_2": 0.7}),
        (0.0, {"relu5_2": 1.0}),
    ],
)
def test_content_layer_weights(blend, expected):
    """relu4_2 weighs the blend, relu5_2 the rest; a zero weight leaves its layer out."""
    weights = content_layer_weights(blend)
    assert list(weights) == list(expected)
    assert weights == pytest.approx(expected)


def test_blend_weights_none_is_equal():
    """No weights: 1/S each, float32."""
    weights = L.blend_weights(None, 3)
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights, [1 / 3, 1 / 3, 1 / 3], rtol=1e-6)


def test_blend_weights_are_normalised():
    """[1, 3] becomes [0.25, 0.75]."""
    weights = L.blend_weights([1, 3], 2)
    assert weights.dtype == np.float32
    np.testing.assert_allclose(weights, [0.25, 0.75], rtol=1e-6)


@pytest.mark.parametrize(
    "weights, n_styles",
    [([1.0], 2), ([1.0, 2.0, 3.0], 2), ([1.0, -0.5], 2), ([0.0, 0.0], 2)],
    ids=["too-few", "too-many", "negative", "zero-sum"],
)
def test_blend_weights_bad_values_are_errors(weights, n_styles):
    """A wrong count, a negative weight or a zero sum raise an error naming --style_blend_weights."""
    with pytest.raises(NeuralStyleError, match="^style_blend_weights"):
        L.blend_weights(weights, n_styles)


# --- total_loss -----------------------------------------------------------------------------------------------------


def test_total_loss_weights_terms_and_sums_them():
    """Each term is multiplied by its weight; total is their sum, per image."""
    result = L.total_loss(_t([1, 2]), _t([3, 4]), _t([5, 6]), content_weight=2.0, style_weight=10.0, tv_weight=0.5)
    assert set(result) == {"content", "style", "tv", "total"}
    np.testing.assert_allclose(result["content"].numpy(), [2, 4])
    np.testing.assert_allclose(result["style"].numpy(), [30, 40])
    np.testing.assert_allclose(result["tv"].numpy(), [2.5, 3])
    np.testing.assert_allclose(result["total"].numpy(), [2 + 30 + 2.5, 4 + 40 + 3])  # [34.5, 47]
