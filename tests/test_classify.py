"""Tests of the ImageNet classifier check: preprocessing by hand, the fc head against NumPy, a planted network
whose answers are known in advance, and the ``neural-style-classify`` command."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import write_vgg_mat
from PIL import Image

from neural_style.classify import INPUT_SIZE, ImageNetClassifier, check_classifier, classifier_input, top_k
from neural_style.errors import NeuralStyleError
from neural_style.image_io import resize
from neural_style.matconvnet import read_matconvnet
from neural_style.vgg import feature_extractor

N_CLASSES = 8
RED_CLASS = 3  # what the planted network answers for a red image
BLUE_CLASS = 1  # and for a blue one


def _planted(name: str, kernel: np.ndarray) -> np.ndarray:
    """Kernels (MatConvNet order [w, h, in, out]) that carry red and blue through the network to two classes.

    conv1_1's centre tap sends the mean-subtracted red channel to channel 0 and blue to channel 1; every other
    convolution's centre tap copies channels 0 and 1 and drops the rest. A uniform image stays uniform (only
    centre taps, so the zero padding is never seen) and ReLU keeps the positive one: red (255 - 123.68) in
    channel 0, or blue (255 - 103.94) in channel 1. fc6 averages the 7x7 pool5 map, fc7 copies, fc8 sends channel
    0 to class 3 and channel 1 to class 1 at a gain of 0.05 (logit ~6.5 or ~7.5, far above the random biases).
    """
    planted = np.zeros_like(kernel)
    if name == "conv1_1":
        planted[1, 1, 0, 0] = planted[1, 1, 2, 1] = 1.0
    elif name.startswith("conv"):
        planted[1, 1, 0, 0] = planted[1, 1, 1, 1] = 1.0
    elif name == "fc6":
        planted[:, :, 0, 0] = planted[:, :, 1, 1] = 1.0 / (kernel.shape[0] * kernel.shape[1])
    elif name == "fc7":
        planted[0, 0, 0, 0] = planted[0, 0, 1, 1] = 1.0
    elif name == "fc8":
        planted[0, 0, 0, RED_CLASS] = planted[0, 0, 1, BLUE_CLASS] = 0.05
    return planted


def _he_scaled(name: str, kernel: np.ndarray) -> np.ndarray:
    return kernel * np.float32(np.sqrt(2.0 / (kernel.shape[0] * kernel.shape[1] * kernel.shape[2])))


def _uniform(rgb: tuple[int, int, int], height: int = INPUT_SIZE, width: int = INPUT_SIZE) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, np.float32), (height, width, 3)).copy()


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


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """The planted network (fc6 7x7 on the 7x7 pool5 output), its file and its classifier."""
    mat = write_vgg_mat(
        tmp_path_factory.mktemp("planted") / "planted.mat", fc_kernel=(7, 7), n_classes=N_CLASSES, tamper=_planted
    )
    weights = read_matconvnet(mat.path, keep_classifier=True)
    return mat, weights, ImageNetClassifier(weights)


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
    red = classifier.top_k(_uniform((255, 0, 0), 300, 400))
    blue = classifier.top_k(_uniform((0, 0, 255), 250, 180))
    assert red[0][0] == f"class {RED_CLASS} description" and red[0][1] > 0.9
    assert blue[0][0] == f"class {BLUE_CLASS} description" and blue[0][1] > 0.9


@pytest.mark.parametrize("rgb", [(255, 0, 0), (0, 0, 255), (200, 40, 150)])
def test_planted_top5_equals_numpy(planted, rgb):
    """The whole top 5, order and probabilities, equals the NumPy forward pass; probabilities sum to 1."""
    mat, weights, classifier = planted
    probs = classifier.probabilities([_uniform(rgb)])[0]
    expected = _planted_reference(mat, rgb)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert abs(probs.sum() - 1) < 1e-6
    result = top_k(weights, _uniform(rgb))
    order = np.argsort(-expected)[:5]
    assert [name for name, _ in result] == [f"class {i} description" for i in order]
    np.testing.assert_allclose([p for _, p in result], expected[order], atol=1e-6)
    assert sum(p for _, p in result) <= 1 + 1e-6
    assert all(a[1] >= b[1] for a, b in zip(result, result[1:], strict=False))


def test_fc_head_of_a_random_network_equals_numpy(tmp_path):
    """On a random image and random (He-scaled) weights: pool5 from the feature extractor, then fc6 (a 7x7 VALID
    convolution = a dot product with the whole map), ReLU, fc7, ReLU, fc8 and softmax in NumPy."""

    def tamper(name: str, kernel: np.ndarray) -> np.ndarray:
        return _he_scaled(name, kernel) * np.float32(0.02 if name == "fc6" else 1.0)  # logits of order 1

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
        top_k(read_matconvnet(mat.path), _uniform((0, 0, 0)))


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
    result = ImageNetClassifier(dataclasses.replace(weights, classes=())).top_k(_uniform((255, 0, 0)), 2)
    assert result[0][0] == f"class {RED_CLASS}"


# ----------------------------------------------------------------------------------------------- the command

_RUNNER = (
    "import atexit, os, sys\n"
    "atexit.register(lambda: open(os.environ['IMPORTS_MARKER'], 'w').write(str('tensorflow' in sys.modules)))\n"
    "from neural_style.cli.classify import main\n"
    "sys.argv[0] = 'neural-style-classify'\n"
    "main()\n"
)


def _classify(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    """Runs the command; returns its result and whether it imported TensorFlow."""
    for name in ("home", "cache", "tmp"):
        (tmp_path / name).mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("NEURAL_STYLE_WEIGHTS", "KERAS_HOME", "XDG_CACHE_HOME")}
    marker = tmp_path / "imports.txt"
    env.update(
        HOME=str(tmp_path / "home"),
        NEURAL_STYLE_CACHE=str(tmp_path / "cache"),
        TMPDIR=str(tmp_path / "tmp"),
        IMPORTS_MARKER=str(marker),
    )
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    return result, marker.read_text() == "True"


def test_command_prints_five_lines_per_image(planted, tmp_path):
    """IMAGE<TAB>RANK<TAB>PROBABILITY<TAB>DESCRIPTION, five per image, in order, equal to the library's answer."""
    mat, weights, classifier = planted
    red, blue = tmp_path / "red.png", tmp_path / "blue image.jpg"
    Image.fromarray(_uniform((255, 0, 0), 120, 160).astype(np.uint8)).save(red)
    Image.fromarray(_uniform((0, 0, 255), 90, 60).astype(np.uint8)).save(blue, quality=100)
    result, imported_tf = _classify(tmp_path, f"--network={mat.path}", str(red), str(blue))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 10
    rows = [line.split("\t") for line in lines]
    assert all(len(row) == 4 for row in rows)
    assert [row[0] for row in rows] == [str(red)] * 5 + [str(blue)] * 5
    assert [int(row[1]) for row in rows] == [1, 2, 3, 4, 5] * 2
    assert rows[0][3] == f"class {RED_CLASS} description"
    assert rows[5][3] == f"class {BLUE_CLASS} description"
    for path, block in ((red, rows[:5]), (blue, rows[5:])):
        expected = classifier.top_k(np.asarray(Image.open(path).convert("RGB"), np.float32))
        assert [row[3] for row in block] == [name for name, _ in expected]
        np.testing.assert_allclose([float(row[2]) for row in block], [p for _, p in expected], atol=2e-6)
    assert imported_tf


def test_command_rejects_bad_input_before_importing_tensorflow(planted, tmp_path):
    mat, _, _ = planted
    no_classifier = write_vgg_mat(tmp_path / "small.mat").path  # fc6 2x2: does not fit 224
    image = tmp_path / "red.png"
    Image.fromarray(_uniform((255, 0, 0), 8, 8).astype(np.uint8)).save(image)
    cases = [
        ([f"--network={mat.path}"], "give one or more image files"),
        ([f"--network={mat.path}", str(tmp_path / "missing.png")], "missing.png does not exist"),
        ([f"--network={no_classifier}", str(image)], "fc6 has a 2x2 kernel"),
        ([f"--network={mat.path}", "--top_k=0", str(image)], "--top_k is 0"),
        ([f"--network={mat.path}", f"--top_k={N_CLASSES + 1}", str(image)], f"has only {N_CLASSES} classes"),
        ([f"--network={tmp_path / 'none.mat'}", str(image)], "none.mat does not exist"),
        (["--bogus", str(image)], "Unknown command line flag 'bogus'"),
    ]
    for args, message in cases:
        result, imported_tf = _classify(tmp_path, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stdout == ""
        assert result.stderr.startswith("neural-style-classify: error: ") and message in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert not imported_tf, args


def test_help_lists_only_the_classify_flags(tmp_path):
    result, imported_tf = _classify(tmp_path, "--help")
    assert result.returncode == 0
    assert "--top_k" in result.stdout and "--network" in result.stdout
    assert "--output_dir" not in result.stdout and "--content" not in result.stdout
    assert not imported_tf
