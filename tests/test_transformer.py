"""Tests of the image transformer network (neural_style.transformer): its architecture, padding layers, seeds,
and saving and loading ``.keras`` files.

The default (paper-sized) network is built once to check its structure; everything else uses conftest's narrow
network (``base_filters=4``, one residual block) on tiny images. The ``neural-style-apply`` command is tested in
test_cli_apply.py.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import randomized, tiny_transformer, uniform_images

from neural_style.errors import NeuralStyleError
from neural_style.transformer import (
    CropToMatch,
    PadToMultiple,
    ReflectionPadding2D,
    _upsampling_taps,
    apply_transformer,
    build_transformer,
    inference_function,
    load_transformer,
    save_transformer,
)

# ------------------------------------------------------------------------------------------------ architecture


def test_default_architecture_layers_and_parameters() -> None:
    """Johnson et al.'s layer list, 1,677,635 parameters, and an odd-sized image comes back at its size."""
    model = build_transformer(seed=0)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size[0], c.strides[0]) for c in convs] == [
        (32, 9, 1),
        (64, 3, 2),
        (128, 3, 2),
        *[(128, 3, 1)] * 10,
        (64, 3, 1),
        (32, 3, 1),
        (3, 9, 1),
    ]
    assert [c.use_bias for c in convs] == [False] * 15 + [True]  # normalisation follows all but the last
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.GroupNormalization)]
    assert [n.groups for n in norms] == [c.filters for c in convs[:-1]]  # one group per channel: instance norm
    ups = [layer for layer in model.layers if isinstance(layer, keras.layers.UpSampling2D)]
    assert [(u.size, u.interpolation) for u in ups] == [((2, 2), "nearest")] * 2
    assert sum(isinstance(layer, keras.layers.Add) for layer in model.layers) == 5
    pads = [layer.padding for layer in model.layers if isinstance(layer, ReflectionPadding2D)]
    assert pads == [c.kernel_size[0] // 2 for c in convs]

    # Kernels: 9*9*3*32 + 3*3*32*64 + 3*3*64*128 + 10*3*3*128*128 + 3*3*128*64 + 3*3*64*32 + 9*9*32*3, + 3 biases;
    # scale and offset of the 15 normalisations: 2 * (32 + 64 + 128 + 10*128 + 64 + 32).
    kernels = 7776 + 18432 + 73728 + 1474560 + 73728 + 18432 + 7776
    assert model.count_params() == kernels + 3 + 2 * 1600 == 1_677_635

    out = apply_transformer(model, uniform_images((37, 53, 3)))
    assert out.shape == (37, 53, 3)
    assert out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 255.0


def test_group_normalization_is_instance_normalization() -> None:
    """GroupNormalization(groups=-1) normalises each image's channels over H and W alone (hand-computed)."""
    layer = keras.layers.GroupNormalization(groups=-1, epsilon=1e-5)
    x = np.zeros((2, 2, 2, 2), np.float32)
    x[0, :, :, 0] = [[1, 2], [3, 4]]  # mean 2.5, variance 1.25
    x[0, :, :, 1] = [[10, 10], [10, 30]]  # mean 15, variance 75
    x[1, :, :, 0] = [[-1, 1], [-1, 1]]  # mean 0, variance 1
    x[1, :, :, 1] = [[0, 0], [0, 8]]  # mean 2, variance 12
    expected = np.zeros_like(x)
    expected[0, :, :, 0] = (x[0, :, :, 0] - 2.5) / np.sqrt(1.25 + 1e-5)
    expected[0, :, :, 1] = (x[0, :, :, 1] - 15) / np.sqrt(75 + 1e-5)
    expected[1, :, :, 0] = x[1, :, :, 0] / np.sqrt(1 + 1e-5)
    expected[1, :, :, 1] = (x[1, :, :, 1] - 2) / np.sqrt(12 + 1e-5)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-5)
    assert layer.groups == 2


def test_any_size_comes_back_at_its_size() -> None:
    model = tiny_transformer()
    for size in [(1, 1), (3, 5), (9, 4), (37, 53), (64, 64)]:
        out = apply_transformer(model, uniform_images((2, *size, 3)))
        assert out.shape == (2, *size, 3)
        assert np.all(np.isfinite(out)) and out.min() >= 0.0 and out.max() <= 255.0


def test_pad_to_multiple_replicates_bottom_and_right_edges() -> None:
    x = np.arange(15, dtype=np.float32).reshape(1, 3, 5, 1)
    padded = np.asarray(PadToMultiple(4, 8)(x))
    assert padded.shape == (1, 8, 8, 1)
    rows = np.minimum(np.arange(8), 2)
    cols = np.minimum(np.arange(8), 4)
    np.testing.assert_array_equal(padded[0, :, :, 0], x[0, :, :, 0][rows][:, cols])
    assert np.asarray(PadToMultiple(4, 8)(np.zeros((1, 9, 12, 2), np.float32))).shape == (1, 12, 12, 2)


def test_reflection_padding_and_crop() -> None:
    x = np.arange(12, dtype=np.float32).reshape(1, 3, 4, 1)
    padded = np.asarray(ReflectionPadding2D(2)(x))
    np.testing.assert_array_equal(padded[0, :, :, 0], np.pad(x[0, :, :, 0], 2, mode="reflect"))
    cropped = np.asarray(CropToMatch()([padded, np.zeros((1, 3, 2, 5), np.float32)]))
    np.testing.assert_array_equal(cropped, padded[:, :3, :2, :])


def test_seed_makes_the_initial_weights() -> None:
    same = [
        np.array_equal(a, b)
        for a, b in zip(tiny_transformer(1).get_weights(), tiny_transformer(1).get_weights(), strict=True)
    ]
    assert all(same)
    kernels = zip(tiny_transformer(1).get_weights(), tiny_transformer(2).get_weights(), strict=True)
    assert not any(np.array_equal(a, b) for a, b in kernels if a.ndim == 4)


# ------------------------------------------------------------------------------------------------ save and load


def test_save_load_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    model = randomized(tiny_transformer())
    path = tmp_path / "model.keras"
    save_transformer(model, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]  # no temporary file left
    loaded = load_transformer(path)
    images = uniform_images((2, 37, 53, 3), seed=1)
    np.testing.assert_array_equal(apply_transformer(loaded, images), apply_transformer(model, images))
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]

    other = randomized(tiny_transformer(), seed=5)
    save_transformer(other, path)  # replaces the file
    reloaded = load_transformer(path).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(reloaded, other.get_weights(), strict=True))


def test_save_needs_keras_extension(tmp_path: Path) -> None:
    with pytest.raises(NeuralStyleError, match=r"\.keras"):
        save_transformer(tiny_transformer(), tmp_path / "model.h5")
    assert list(tmp_path.iterdir()) == []


def _zip(path: Path, files: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return path


@pytest.mark.parametrize(
    ("make", "mention"),
    [
        (lambda d: d / "missing.keras", "does not exist"),
        (lambda d: d, "is a directory"),
        (lambda d: (d / "x.keras").write_bytes(b"not a zip") and d / "x.keras", "not a .keras model file"),
        (lambda d: _zip(d / "x.keras", {"other.txt": "x"}), "not a .keras model file"),
        (lambda d: _zip(d / "x.keras", {"config.json": "{not json", "metadata.json": "{}"}), "could not be loaded"),
    ],
    ids=["missing", "directory", "not-zip", "no-config", "bad-config"],
)
def test_load_errors(tmp_path: Path, make, mention: str) -> None:
    with pytest.raises(NeuralStyleError, match=mention):
        load_transformer(make(tmp_path))


def test_load_rejects_a_model_of_another_shape(tmp_path: Path) -> None:
    inputs = keras.Input((4,))
    path = tmp_path / "dense.keras"
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(path)
    with pytest.raises(NeuralStyleError, match="not an image transformer"):
        load_transformer(path)


def test_apply_transformer_rejects_other_shapes() -> None:
    with pytest.raises(NeuralStyleError, match="RGB"):
        apply_transformer(tiny_transformer(), np.zeros((8, 8), np.float32))


# ------------------------------------------------------------------------------------------ the inference graph

# The fast float32 graph differs from the Keras layers only in the order of floating-point sums: within 1e-5 of the
# 0..255 range. bfloat16 rounds activations and weights to 8 significant bits: on these networks a grey level or so
# on average, a few levels at most (see the README's feed-forward figures for a trained network).
FLOAT32_TOLERANCE = 255 * 1e-5
BFLOAT16_MEAN, BFLOAT16_MAX = 2.0, 16.0


def _keras(model: keras.Model, images: np.ndarray) -> np.ndarray:
    return np.asarray(model(images, training=False))


def test_upsampling_taps_by_hand() -> None:
    """Output row 2i reads rows i-1, i, i of the original for kernel rows 0, 1, 2; row 2i+1 reads i, i, i+1."""
    taps = _upsampling_taps()
    # taps[r, d, a]: window row r (of the two starting at i - 1 + a) that kernel row d reads at phase a
    assert [int(np.argmax(taps[:, d, 0])) - 1 for d in range(3)] == [-1, 0, 0]
    assert [int(np.argmax(taps[:, d, 1])) for d in range(3)] == [0, 0, 1]
    assert taps.sum() == 6  # each kernel row reads exactly one row at each phase


@pytest.mark.parametrize("network", ["tiny", "default"])
def test_the_inference_graph_computes_what_the_layers_compute(network: str) -> None:
    """float32: within 1e-5 of the range of the Keras model's own output, for every image of a batch; bfloat16
    within the stated tolerance."""
    model = randomized(tiny_transformer()) if network == "tiny" else build_transformer(seed=0)
    images = uniform_images((2, 37, 53, 3), seed=1)
    expected = _keras(model, images)
    assert inference_function(model) is not None
    fast = apply_transformer(model, images)
    assert fast.shape == expected.shape and fast.dtype == np.float32
    assert np.abs(fast - expected).max() <= FLOAT32_TOLERANCE
    half = apply_transformer(model, images, precision="bfloat16")
    difference = np.abs(half - expected)
    assert difference.mean() <= BFLOAT16_MEAN and difference.max() <= BFLOAT16_MAX
    assert difference.max() > FLOAT32_TOLERANCE  # it did run in bfloat16


def test_the_inference_graph_reads_the_current_weights() -> None:
    """Weights changed after the first call (more training) are used by the next one."""
    model = tiny_transformer()
    images = uniform_images((1, 24, 20, 3), seed=2)
    apply_transformer(model, images)
    randomized(model, seed=3)
    np.testing.assert_allclose(apply_transformer(model, images), _keras(model, images), rtol=0, atol=FLOAT32_TOLERANCE)


def test_a_loaded_network_runs_the_inference_graph(tmp_path: Path) -> None:
    model = randomized(tiny_transformer())
    save_transformer(model, tmp_path / "model.keras")
    assert inference_function(load_transformer(tmp_path / "model.keras"), "bfloat16") is not None


def test_other_models_run_their_layers_in_float32_only() -> None:
    """A model of other layers (here one whose normalisation has another epsilon) is run as Keras runs it; a
    16-bit precision is refused, naming what to do."""
    inputs = keras.Input((None, None, 3))
    other = keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same", name="conv1")(inputs))
    changed = tiny_transformer()
    changed.get_layer("conv1_norm").epsilon = 1e-3
    images = uniform_images((2, 16, 16, 3))
    for model in (other, changed):
        assert inference_function(model) is None
        np.testing.assert_array_equal(apply_transformer(model, images), _keras(model, images))
        with pytest.raises(NeuralStyleError, match="precision is bfloat16, which runs only networks built by"):
            apply_transformer(model, images, precision="bfloat16")
    with pytest.raises(NeuralStyleError, match="precision is 'float64'; use one of"):
        apply_transformer(tiny_transformer(), images, precision="float64")
