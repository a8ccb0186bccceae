"""Tests of the VGG network (neural_style.vgg): the feature extractor against NumPy references, the pre/unprocessing,
and the VggFeatures Keras layer: RGB input with the preprocessing built in against preprocessed input, reading a
``.mat`` path, frozen weights, errors, and saving to and loading from ``.keras`` files without the ``.mat``."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import MEAN_PIXEL, random_images, red_image, red_network

from neural_style.config import POOLING
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import read_matconvnet
from neural_style.vgg import VggFeatures, feature_extractor, preprocess, unprocess

POOLINGS = pytest.mark.parametrize("pooling", POOLING)


@pytest.fixture
def vgg(make_vgg_mat):
    """A synthetic VGG-19 file and its weights as loaded."""
    mat = make_vgg_mat()
    return mat, read_matconvnet(mat.path)


def _conv_same_reference(image: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Direct stride-1 SAME convolution (cross-correlation, as TF does) of [H, W, I] with [kh, kw, I, O]."""
    kh, kw, _, n_out = kernel.shape
    top, left = (kh - 1) // 2, (kw - 1) // 2
    padded = np.pad(image, ((top, kh - 1 - top), (left, kw - 1 - left), (0, 0)))
    height, width = image.shape[:2]
    out = np.zeros((height, width, n_out))
    for y in range(height):
        for x in range(width):
            window = padded[y : y + kh, x : x + kw, :]  # [kh, kw, I]
            out[y, x] = np.einsum("hwi,hwio->o", window, kernel) + bias
    return out


def _pool_same_reference(image: np.ndarray, pooling: str) -> np.ndarray:
    """2x2 stride-2 SAME pooling of [H, W, C]; the padding (at the bottom/right) is ignored, not counted as zeros."""
    height, width = image.shape[:2]
    out = np.zeros(((height + 1) // 2, (width + 1) // 2, image.shape[2]))
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            window = image[2 * y : 2 * y + 2, 2 * x : 2 * x + 2]  # slicing drops what lies past the edge
            out[y, x] = window.max(axis=(0, 1)) if pooling == "max" else window.mean(axis=(0, 1))
    return out


def _pool_of(plane: np.ndarray, pooling: str) -> np.ndarray:
    """pool1 of the one-channel network for an image whose red channel is ``plane`` (non-negative)."""
    model = feature_extractor(red_network(mean_red=0.0), ["pool1"], pooling=pooling, preprocessed=True)
    image = np.zeros((1, *plane.shape, 3), np.float32)
    image[0, :, :, 0] = plane
    return model(tf.constant(image))["pool1"].numpy()[0, :, :, 0]


def test_returns_exactly_the_requested_layers(vgg):
    """The output dict has exactly the requested layer names, in any order asked."""
    _, weights = vgg
    requested = ["relu2_1", "conv1_1", "relu1_1"]
    model = feature_extractor(weights, requested, preprocessed=True)
    features = model(tf.zeros((1, 8, 8, 3)))
    assert set(features) == set(requested)
    assert features["conv1_1"].shape == (1, 8, 8, 2)
    assert features["relu2_1"].shape == (1, 4, 4, 3)  # after pool1


@pytest.mark.parametrize("requested, deepest", [(["relu1_1"], "relu1_1"), (["relu4_2", "relu2_1"], "relu4_2")])
def test_stops_at_the_deepest_requested_layer(vgg, requested, deepest):
    """The network ends at the deepest requested layer: no layer after it is built, and every weight is frozen."""
    _, weights = vgg
    model = feature_extractor(weights, requested, preprocessed=True)
    network = model.layers[-1]
    assert isinstance(network, VggFeatures)
    assert network.layer_specs[-1][0] == deepest
    built = {name for name, _, _ in network.layer_specs}
    later = weights.layer_names[weights.layer_names.index(deepest) + 1 :]
    assert built.isdisjoint(later)
    convs = [name for name in built if name.startswith("conv")]
    assert len(network.weights) == 2 * len(convs)  # a kernel and a bias each, nothing for later layers
    assert not model.trainable and not network.trainable_weights


def test_conv1_1_matches_a_direct_numpy_convolution(vgg):
    """conv1_1 and relu1_1 equal a direct 3x3 SAME convolution with the TF-order kernel + bias (then ReLU)."""
    mat, weights = vgg
    rng = np.random.default_rng(3)
    image = rng.normal(0, 1, (5, 7, 3)).astype(np.float32)  # non-square, so a transposed kernel cannot pass
    model = feature_extractor(weights, ["conv1_1", "relu1_1"], preprocessed=True)
    features = model(tf.constant(image[None]))
    expected = _conv_same_reference(image.astype(np.float64), mat.kernels["conv1_1"], mat.biases["conv1_1"])
    np.testing.assert_allclose(features["conv1_1"].numpy()[0], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(features["relu1_1"].numpy()[0], np.maximum(expected, 0), rtol=1e-5, atol=1e-5)
    assert (expected < 0).any() and (expected > 0).any()  # the ReLU is really exercised
    # The MatConvNet-order kernel (width and height swapped) gives something else: orientation matters.
    swapped = _conv_same_reference(image.astype(np.float64), mat.raw_kernels["conv1_1"], mat.biases["conv1_1"])
    assert not np.allclose(swapped, expected, atol=1e-3)


@pytest.mark.parametrize(
    "pooling, expected",
    [
        ("max", [[5, 7], [8, 6]]),
        # (1 + 5 + 3 + 2) / 4, (0 + 2 + 7 + 1) / 4, (0 + 0 + 8 + 1) / 4, (4 + 4 + 2 + 6) / 4
        ("avg", [[2.75, 2.5], [2.25, 4.0]]),
    ],
)
def test_pooling_4x4_by_hand(pooling, expected):
    """2x2 stride-2 max or average pooling of a hand-made 4x4 plane."""
    plane = np.array([[1, 5, 0, 2], [3, 2, 7, 1], [0, 0, 4, 4], [8, 1, 2, 6]], np.float32)
    np.testing.assert_allclose(_pool_of(plane, pooling), expected, rtol=1e-6)


@pytest.mark.parametrize(
    "pooling, expected",
    [
        # x[r, c] = 5 r + c grows along rows and columns, so each window's max is its bottom-right pixel.
        ("max", [[6, 8, 9], [16, 18, 19], [21, 23, 24]]),
        # Windows on the last row/column hold 2 (or 1) real pixels and are averaged over those only:
        # (0 + 1 + 5 + 6) / 4 = 3, (2 + 3 + 7 + 8) / 4 = 5, (4 + 9) / 2 = 6.5, ..., (20 + 21) / 2 = 20.5, 24 / 1.
        ("avg", [[3, 5, 6.5], [13, 15, 16.5], [20.5, 22.5, 24]]),
    ],
)
def test_pooling_same_padding_on_odd_size_by_hand(pooling, expected):
    """SAME pooling turns 5x5 into 3x3; average pooling counts only the valid pixels (like tf.nn.avg_pool)."""
    plane = np.arange(25, dtype=np.float32).reshape(5, 5)
    result = _pool_of(plane, pooling)
    np.testing.assert_allclose(result, expected, rtol=1e-6)
    reference = tf.nn.pool(plane[None, :, :, None], (2, 2), pooling.upper(), strides=(2, 2), padding="SAME")
    np.testing.assert_allclose(result, reference.numpy()[0, :, :, 0], rtol=1e-6)


@POOLINGS
def test_pool1_of_the_network_matches_numpy_pooling(vgg, pooling):
    """pool1 of the synthetic network is the NumPy SAME pooling of its relu1_2, for an odd-sized image."""
    _, weights = vgg
    model = feature_extractor(weights, ["relu1_2", "pool1"], pooling=pooling, preprocessed=True)
    image = np.random.default_rng(4).normal(0, 1, (1, 7, 9, 3)).astype(np.float32)
    features = model(tf.constant(image))
    expected = _pool_same_reference(features["relu1_2"].numpy()[0].astype(np.float64), pooling)
    assert features["pool1"].shape == (1, 4, 5, 2)
    np.testing.assert_allclose(features["pool1"].numpy()[0], expected, rtol=1e-5, atol=1e-6)


@POOLINGS
def test_unknown_layer_is_an_error(vgg, pooling):
    """A layer name not in the network raises NeuralStyleError naming it."""
    _, weights = vgg
    with pytest.raises(NeuralStyleError, match="relu9_9"):
        feature_extractor(weights, ["relu1_1", "relu9_9"], pooling=pooling, preprocessed=True)


def test_unknown_pooling_is_an_error(vgg):
    """A pooling other than max or avg raises NeuralStyleError naming the pooling setting."""
    _, weights = vgg
    with pytest.raises(NeuralStyleError, match="^pooling"):
        feature_extractor(weights, ["relu1_1"], pooling="min", preprocessed=True)


def test_no_layers_is_an_error(vgg):
    """Asking for no layer at all raises NeuralStyleError."""
    _, weights = vgg
    with pytest.raises(NeuralStyleError):
        feature_extractor(weights, [], preprocessed=True)


def test_preprocess_subtracts_the_mean_pixel(vgg):
    """preprocess subtracts the file's mean pixel from each RGB channel."""
    _, weights = vgg
    np.testing.assert_allclose(weights.mean_pixel, MEAN_PIXEL, rtol=1e-6)
    image = np.array([[[123.68, 116.779, 103.939], [0.0, 0.0, 0.0]]], np.float32)  # [1, 2, 3]
    result = preprocess(image, weights.mean_pixel)
    np.testing.assert_allclose(result[0, 0], [0, 0, 0], atol=1e-5)
    np.testing.assert_allclose(result[0, 1], [-123.68, -116.779, -103.939], rtol=1e-6)


def test_preprocess_unprocess_round_trip_on_arrays_and_tensors(vgg):
    """unprocess(preprocess(x)) == x, for NumPy arrays and TF tensors alike."""
    _, weights = vgg
    image = np.random.default_rng(5).uniform(0, 255, (2, 4, 5, 3)).astype(np.float32)
    np.testing.assert_allclose(unprocess(preprocess(image, weights.mean_pixel), weights.mean_pixel), image, atol=1e-4)
    tensor = preprocess(tf.constant(image), weights.mean_pixel)
    assert isinstance(tensor, tf.Tensor)
    np.testing.assert_allclose(tensor.numpy(), image - np.asarray(MEAN_PIXEL, np.float32), atol=1e-4)
    np.testing.assert_allclose(unprocess(tensor, weights.mean_pixel).numpy(), image, atol=1e-4)


# ------------------------------------------------------------------------------------------ the VggFeatures layer

LAYERS = ("relu1_1", "pool2", "relu4_2", "relu5_1")


@pytest.mark.parametrize("pooling", POOLING)
def test_rgb_input_equals_preprocessed_input(scaled_vgg, pooling):
    """0..255 input with the preprocessing built in gives the activations of the library's network."""
    _, weights = scaled_vgg
    images = random_images(2, 21, 19)  # odd sizes exercise SAME pooling
    ours = feature_extractor(weights, LAYERS, pooling=pooling)(images)
    theirs = feature_extractor(weights, LAYERS, pooling=pooling, preprocessed=True)(
        preprocess(images, weights.mean_pixel)
    )
    assert list(ours) == list(LAYERS)
    for layer in LAYERS:
        assert ours[layer].shape == theirs[layer].shape
        np.testing.assert_allclose(ours[layer].numpy(), theirs[layer].numpy(), rtol=1e-6, atol=1e-6)


def test_feature_extractor_reads_a_mat_path_and_is_frozen(scaled_vgg):
    mat, weights = scaled_vgg
    model = feature_extractor(mat.path, ["relu2_1"])
    assert model.trainable_weights == []
    assert model.non_trainable_weights  # the kernels and biases are there, frozen
    (layer,) = [lyr for lyr in model.layers if isinstance(lyr, VggFeatures)]
    # conv1_1, conv1_2, conv2_1: only what relu2_1 needs is built.
    assert [name for name, kind, _ in layer.layer_specs if kind == "conv"] == ["conv1_1", "conv1_2", "conv2_1"]
    kernels = {weight.name: weight for weight in layer.weights}
    np.testing.assert_array_equal(kernels["conv2_1_kernel"].numpy(), mat.kernels["conv2_1"])


def test_preprocessing_is_built_in_by_hand():
    """relu1_1 of the red network is max(R - 10, 0): R = 5, 12, 10, 40 gives 0, 2, 0, 30."""
    features = VggFeatures.from_weights(red_network(), ["relu1_1", "pool1"])
    out = features(red_image([[5, 12], [10, 40]]))
    np.testing.assert_array_equal(out["relu1_1"].numpy()[0, ..., 0], [[0, 2], [0, 30]])
    np.testing.assert_array_equal(out["pool1"].numpy()[0, ..., 0], [[30]])


def test_feature_layer_errors(scaled_vgg):
    _, weights = scaled_vgg
    with pytest.raises(NeuralStyleError, match="relu9_9"):
        VggFeatures.from_weights(weights, ["relu9_9"])
    with pytest.raises(NeuralStyleError, match="no layers"):
        VggFeatures.from_weights(weights, [])
    with pytest.raises(NeuralStyleError, match="pooling"):
        feature_extractor(weights, ["relu1_1"], pooling="median")
    with pytest.raises(NeuralStyleError, match="does not exist"):
        feature_extractor("/nonexistent/vgg.mat", ["relu1_1"])


def test_a_layer_without_weights_refuses_to_run(scaled_vgg):
    """Built from its config alone (no .mat, no .keras archive), the layer has zero weights: it says so."""
    _, weights = scaled_vgg
    empty = VggFeatures.from_config(VggFeatures.from_weights(weights, ["relu1_1"]).get_config())
    with pytest.raises(NeuralStyleError, match="no weights yet"):
        empty(random_images(1))


def test_feature_extractor_saves_and_loads_without_the_mat(scaled_vgg, tmp_path):
    mat, weights = scaled_vgg
    model = feature_extractor(mat.path, LAYERS, pooling="avg")
    x = random_images(2, 17, 23)
    before = model(x)
    model.save(tmp_path / "features.keras")
    mat.path.unlink()
    after = keras.models.load_model(tmp_path / "features.keras")(x)
    assert list(after) == list(LAYERS)
    for layer in LAYERS:
        np.testing.assert_array_equal(after[layer].numpy(), before[layer].numpy())
