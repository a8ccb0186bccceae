"""Tests of the ImageNet classifier check (neural_style.classify): preprocessing by hand, the fc head against
NumPy, and conftest's planted network whose answers are known in advance. The ``neural-style-classify`` command is
tested in test_cli_classify.py."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import BLUE_CLASS, RED_CLASS, he_scaled, uniform_colour, write_vgg_mat

from neural_style.classify import ImageNetClassifier, check_classifier, classifier_input, top_k
from neural_style.errors import NeuralStyleError
from neural_style.image_io import resize
from neural_style.matconvnet import read_matconvnet
from neural_style.vgg import feature_extractor


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max())
    return e / e.sum()


def _planted_reference(mat, rgb) -> np.ndarray:
    """Probabilities of a uniform image by NumPy: with centre taps only, each conv acts on one pixel vector."""
    x = np.asarray(rgb, np.float64) - mat.mean_pixel
    for name in mat.names:
        if name.startswith("conv"):
            x = np.maximum(x @ mat.kernels[name][1, 1] + mat.biases[name], 0)
    x = np.maximum(x @ mat.kernels["fc6"].sum(axis=(0, 1)) + mat.biases["fc6"], 0)  # 7x7 VALID on a uniform map
    x = np.maximum(x @ mat.kernels["fc7"][0, 0] + mat.biases["fc7"], 0)
    return _softmax(x @ mat.kernels["fc8"][0, 0] + mat.biases["fc8"])


# --------------------------------------------------------------------------------------------- preprocessing


def test_input_crop_of_a_wide_image_by_hand():
    """224x300: the shorter side is already 224, so only the centre crop: columns (300 - 224) // 2 = 38 to 262."""
    image = np.random.default_rng(0).uniform(0, 255, (224, 300, 3)).astype(np.float32)
    mean = np.array([1.0, 2.0, 3.0], np.float32)
    np.testing.assert_array_equal(classifier_input(image, mean), image[:, 38:262] - mean)


def test_input_of_a_tall_small_image_is_enlarged_then_cropped():
    """100x50 (H x W): the width 50 becomes 224, the height 448; rows (448 - 224) // 2 = 112 to 336 are kept."""
    image = np.random.default_rng(1).uniform(0, 255, (100, 50, 3)).astype(np.float32)
    mean = np.array([10.0, 20.0, 30.0], np.float32)
    out = classifier_input(image, mean)
    assert out.shape == (224, 224, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, resize(image, (448, 224))[112:336] - mean)


def test_input_of_a_square_image_is_resized_whole():
    image = np.random.default_rng(2).uniform(0, 255, (300, 300, 3)).astype(np.float32)
    np.testing.assert_array_equal(classifier_input(image, np.zeros(3)), resize(image, (224, 224)))


# ----------------------------------------------------------------------------------------------- the network


def test_planted_network_gives_the_known_classes(planted):
    """A red image is class 3, a blue one class 1, whatever the image's size and aspect."""
    _, _, classifier = planted
    red = classifier.top_k(uniform_colour((255, 0, 0), 300, 400))
    blue = classifier.top_k(uniform_colour((0, 0, 255), 250, 180))
    assert red[0][0] == f"class {RED_CLASS} description" and red[0][1] > 0.9
    assert blue[0][0] == f"class {BLUE_CLASS} description" and blue[0][1] > 0.9


@pytest.mark.parametrize("rgb", [(255, 0, 0), (0, 0, 255), (200, 40, 150)])
def test_planted_top5_equals_numpy(planted, rgb):
    """The whole top 5, order and probabilities, equals the NumPy forward pass; probabilities sum to 1."""
    mat, weights, classifier = planted
    probs = classifier.probabilities([uniform_colour(rgb)])[0]
    expected = _planted_reference(mat, rgb)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert abs(probs.sum() - 1) < 1e-6
    result = top_k(weights, uniform_colour(rgb))
    order = np.argsort(-expected)[:5]
    assert [name for name, _ in result] == [f"class {i} description" for i in order]
    np.testing.assert_allclose([p for _, p in result], expected[order], atol=1e-6)
    assert sum(p for _, p in result) <= 1 + 1e-6
    assert all(a[1] >= b[1] for a, b in zip(result, result[1:], strict=False))


def test_fc_head_of_a_random_network_equals_numpy(tmp_path):
    """On a random image and random (He-scaled) weights: pool5 from the feature extractor, then fc6 (a 7x7 VALID
    convolution = a dot product with the whole map), ReLU, fc7, ReLU, fc8 and softmax in NumPy."""

    def tamper(name: str, kernel: np.ndarray) -> np.ndarray:
        return he_scaled(name, kernel) * np.float32(0.02 if name == "fc6" else 1.0)  # logits of order 1

    mat = write_vgg_mat(tmp_path / "vgg.mat", fc_kernel=(7, 7), n_classes=6, tamper=tamper, seed=3)
    weights = read_matconvnet(mat.path, keep_classifier=True)
    image = np.random.default_rng(4).uniform(0, 255, (230, 260, 3)).astype(np.float32)
    crop = classifier_input(image, weights.mean_pixel)
    pool5 = feature_extractor(weights, ["pool5"], preprocessed=True)(crop[None])["pool5"].numpy()[0].astype(np.float64)
    assert pool5.shape == (7, 7, 5)
    x = np.maximum(np.einsum("hwi,hwio->o", pool5, mat.kernels["fc6"]) + mat.biases["fc6"], 0)
    x = np.maximum(x @ mat.kernels["fc7"][0, 0] + mat.biases["fc7"], 0)
    expected = _softmax(x @ mat.kernels["fc8"][0, 0] + mat.biases["fc8"])
    assert 0.01 < expected.max() < 0.99  # the test means something: no class takes it all
    np.testing.assert_allclose(ImageNetClassifier(weights).probabilities([image])[0], expected, atol=1e-6)


def test_file_without_classifier_is_an_error(tmp_path):
    mat = write_vgg_mat(tmp_path / "vgg.mat", fc_kernel=(7, 7))
    with pytest.raises(NeuralStyleError, match="no classifier"):
        top_k(read_matconvnet(mat.path), uniform_colour((0, 0, 0)))


def test_fc6_that_does_not_fit_224_is_an_error(tmp_path):
    mat = write_vgg_mat(tmp_path / "vgg.mat")  # conftest's default fc6 is 2x2
    weights = read_matconvnet(mat.path, keep_classifier=True)
    with pytest.raises(NeuralStyleError, match="fc6 has a 2x2 kernel but pool5 gives 7x7 at a 224x224 input"):
        check_classifier(weights, source=str(mat.path))


def test_class_names_that_do_not_match_fc8_are_an_error(planted):
    _, weights, _ = planted
    with pytest.raises(NeuralStyleError, match="names 3 classes but its last layer has 8 outputs"):
        check_classifier(dataclasses.replace(weights, classes=weights.classes[:3]))


def test_missing_class_names_are_numbered(planted):
    _, weights, _ = planted
    result = ImageNetClassifier(dataclasses.replace(weights, classes=())).top_k(uniform_colour((255, 0, 0)), 2)
    assert result[0][0] == f"class {RED_CLASS}"
