"""Tests of the MatConvNet VGG loader on small synthetic files (see conftest.py) and, when present, a real one."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from conftest import FC_NAMES, MEAN_PIXEL, VggMat, write_v73

from neural_style import matconvnet
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import (
    VggWeights,
    default_cache_dir,
    load_vgg,
    read_matconvnet,
)

REAL_FILE = Path(__file__).resolve().parents[2] / "shared" / "weights" / "vgg19-layout-hed-edges.mat"

LAYOUTS = pytest.mark.parametrize("layout", ["new", "old"])
NETWORKS = pytest.mark.parametrize("vgg16", [False, True], ids=["vgg19", "vgg16"])


def _assert_same_weights(actual: VggWeights, expected: VggWeights) -> None:
    """Same layers (names, kinds, exact arrays and dtypes), mean pixel, classes and md5."""
    assert actual.layer_names == expected.layer_names
    assert [layer.kind for layer in actual.layers] == [layer.kind for layer in expected.layers]
    for got, want in zip(actual.layers, expected.layers, strict=True):
        if want.kernel is None:
            assert got.kernel is None and got.bias is None
        else:
            assert got.kernel.dtype == want.kernel.dtype == np.float32
            np.testing.assert_array_equal(got.kernel, want.kernel)
            np.testing.assert_array_equal(got.bias, want.bias)
    assert actual.mean_pixel.dtype == np.float32
    np.testing.assert_array_equal(actual.mean_pixel, expected.mean_pixel)
    assert actual.classes == expected.classes
    assert actual.md5 == expected.md5


def _npz_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix == ".npz") if directory.exists() else []


# --------------------------------------------------------------------------------------------------- reading


@LAYOUTS
@NETWORKS
def test_kernels_are_transposed_to_tensorflow_order(make_vgg_mat, layout: str, vgg16: bool) -> None:
    """Every conv kernel is the MatConvNet [w, h, in, out] array transposed (1, 0, 2, 3), exactly, in float32."""
    mat: VggMat = make_vgg_mat(layout=layout, vgg16=vgg16)
    weights = read_matconvnet(mat.path)
    convs = [layer for layer in weights.layers if layer.kind == "conv"]
    assert len(convs) == (13 if vgg16 else 16)
    for layer in convs:
        raw = mat.raw_kernels[layer.name]
        assert layer.kernel.dtype == np.float32
        assert layer.kernel.flags.c_contiguous
        np.testing.assert_array_equal(layer.kernel, np.transpose(raw, (1, 0, 2, 3)))
        # The synthetic kernels are asymmetric, so leaving out the transpose would be caught above.
        assert not np.array_equal(layer.kernel, raw)


@LAYOUTS
@NETWORKS
def test_biases_are_flat_float32(make_vgg_mat, layout: str, vgg16: bool) -> None:
    """Biases stored as 1 x out come back as float32 of shape (out,), with their values."""
    mat = make_vgg_mat(layout=layout, vgg16=vgg16)
    for layer in read_matconvnet(mat.path).layers:
        if layer.kind != "conv":
            assert layer.kernel is None and layer.bias is None
            continue
        assert layer.bias.dtype == np.float32
        assert layer.bias.shape == (layer.kernel.shape[3],)
        np.testing.assert_array_equal(layer.bias, mat.biases[layer.name])


@LAYOUTS
@NETWORKS
def test_feature_layers_stop_at_pool5(make_vgg_mat, layout: str, vgg16: bool) -> None:
    """Feature layers are conv1_1 .. pool5 with their kinds, in file order; the classifier is dropped."""
    mat = make_vgg_mat(layout=layout, vgg16=vgg16)
    weights = read_matconvnet(mat.path)
    assert weights.layer_names == tuple(mat.feature_names)
    assert [layer.kind for layer in weights.layers] == mat.feature_kinds
    assert len(weights.layers) == (31 if vgg16 else 37)
    assert weights.layer_names[0] == "conv1_1" and weights.layer_names[-1] == "pool5"
    last_conv = "conv5_3" if vgg16 else "conv5_4"
    assert weights.layer_names[-3:] == (last_conv, last_conv.replace("conv", "relu"), "pool5")
    assert weights.classifier == ()


@LAYOUTS
def test_feature_channels_chain(make_vgg_mat, layout: str) -> None:
    """Kernel shapes follow the block widths: RGB in, then each conv takes the previous conv's outputs."""
    channels = (2, 3, 4, 5, 6)
    weights = read_matconvnet(make_vgg_mat(layout=layout, channels=channels).path)
    shapes = {layer.name: layer.kernel.shape for layer in weights.layers if layer.kind == "conv"}
    assert shapes["conv1_1"] == (3, 3, 3, 2)
    assert shapes["conv1_2"] == (3, 3, 2, 2)
    assert shapes["conv2_1"] == (3, 3, 2, 3)
    assert shapes["conv3_4"] == (3, 3, 4, 4)
    assert shapes["conv5_1"] == (3, 3, 5, 6)
    assert shapes["conv5_4"] == (3, 3, 6, 6)


@LAYOUTS
@NETWORKS
def test_keep_classifier(make_vgg_mat, layout: str, vgg16: bool) -> None:
    """keep_classifier=True adds fc6 .. prob, fc6's non-square kernel transposed like the others."""
    mat = make_vgg_mat(layout=layout, vgg16=vgg16, fc_kernel=(2, 3), fc_channels=6, n_classes=4)
    weights = read_matconvnet(mat.path, keep_classifier=True)
    assert weights.layer_names == tuple(mat.feature_names)
    assert tuple(layer.name for layer in weights.classifier) == FC_NAMES
    assert [layer.kind for layer in weights.classifier] == ["conv", "relu", "conv", "relu", "conv", "softmax"]
    fc = {layer.name: layer for layer in weights.classifier}
    assert mat.raw_kernels["fc6"].shape == (2, 3, 5, 6)  # MatConvNet [width, height, in, out]
    assert fc["fc6"].kernel.shape == (3, 2, 5, 6)  # TensorFlow [height, width, in, out]
    assert fc["fc7"].kernel.shape == (1, 1, 6, 6)
    assert fc["fc8"].kernel.shape == (1, 1, 6, 4)
    for name in ("fc6", "fc7", "fc8"):
        assert fc[name].kernel.dtype == np.float32
        np.testing.assert_array_equal(fc[name].kernel, np.transpose(mat.raw_kernels[name], (1, 0, 2, 3)))
        np.testing.assert_array_equal(fc[name].bias, mat.biases[name])
        assert fc[name].bias.shape == (fc[name].kernel.shape[3],)
    assert fc["prob"].kernel is None


def test_mean_pixel_new_layout(make_vgg_mat) -> None:
    """New layout: the 1x1x3 averageImage is the mean pixel, as float32 [3]."""
    weights = read_matconvnet(make_vgg_mat(layout="new").path)
    assert weights.mean_pixel.shape == (3,)
    assert weights.mean_pixel.dtype == np.float32
    np.testing.assert_array_equal(weights.mean_pixel, np.array(MEAN_PIXEL, dtype=np.float32))


@pytest.mark.parametrize("image_size", [8, 224])
def test_mean_pixel_old_layout(make_vgg_mat, image_size: int) -> None:
    """Old layout: the mean pixel is the mean over height and width of the whole HxWx3 averageImage."""
    mat = make_vgg_mat(layout="old", image_size=image_size)
    assert mat.average_image.shape == (image_size, image_size, 3)
    by_hand = np.array([np.mean(mat.average_image[:, :, c].astype(np.float64)) for c in range(3)], dtype=np.float64)
    np.testing.assert_allclose(by_hand, MEAN_PIXEL, atol=1e-3)  # the planted image has the classic mean
    assert not np.allclose(mat.average_image[0, 0], MEAN_PIXEL, atol=1.0)  # but its pixels differ from it
    weights = read_matconvnet(mat.path)
    assert weights.mean_pixel.shape == (3,)
    assert weights.mean_pixel.dtype == np.float32
    np.testing.assert_allclose(weights.mean_pixel, by_hand, rtol=1e-6)


@LAYOUTS
def test_class_descriptions(make_vgg_mat, layout: str) -> None:
    """The class descriptions are kept, in order, as Python strings, in both layouts."""
    mat = make_vgg_mat(layout=layout, n_classes=5)
    weights = read_matconvnet(mat.path)
    assert weights.classes == (
        "class 0 description",
        "class 1 description",
        "class 2 description",
        "class 3 description",
        "class 4 description",
    )
    assert weights.classes == mat.classes
    assert all(type(c) is str for c in weights.classes)


@LAYOUTS
def test_md5_of_file(make_vgg_mat, layout: str) -> None:
    """md5 is the hex MD5 of the file's bytes."""
    mat = make_vgg_mat(layout=layout)
    assert read_matconvnet(mat.path).md5 == hashlib.md5(mat.path.read_bytes()).hexdigest()


def test_compressed_file(make_vgg_mat) -> None:
    """A zlib-compressed file (MATLAB's default -v7) reads the same as a plain one."""
    plain = read_matconvnet(make_vgg_mat("plain.mat", seed=3).path)
    packed = read_matconvnet(make_vgg_mat("packed.mat", seed=3, compress=True).path)
    assert packed.md5 != plain.md5
    _assert_same_weights(packed, dataclasses.replace(plain, md5=packed.md5))


def test_accepts_str_and_pathlike(make_vgg_mat) -> None:
    """The path may be a str or a Path."""
    mat = make_vgg_mat()
    _assert_same_weights(read_matconvnet(str(mat.path)), read_matconvnet(mat.path))


# --------------------------------------------------------------------------------------------------- bad files


def _truncated(make_vgg_mat, tmp_path: Path, compress: bool) -> Path:
    data = make_vgg_mat("whole.mat", compress=compress).path.read_bytes()
    path = tmp_path / "half.mat"
    path.write_bytes(data[: len(data) // 2])
    return path


def _bad_file(case: str, make_vgg_mat, tmp_path: Path) -> Path:
    """Makes the bad network file named by ``case`` and returns its path."""
    if case == "missing":
        return tmp_path / "missing.mat"
    if case == "directory":
        (tmp_path / "dir.mat").mkdir()
        return tmp_path / "dir.mat"
    if case == "zero bytes":
        (tmp_path / "empty.mat").write_bytes(b"")
        return tmp_path / "empty.mat"
    if case == "zero-filled":
        (tmp_path / "zeros.mat").write_bytes(bytes(4096))
        return tmp_path / "zeros.mat"
    if case == "text":  # 40-odd bytes: shorter than the 128-byte MATLAB header
        (tmp_path / "text.mat").write_text("this is a text file, not a network\n")
        return tmp_path / "text.mat"
    if case == "html page":
        (tmp_path / "page.mat").write_text("<html><body>" + "Not Found. " * 40 + "</body></html>\n")
        return tmp_path / "page.mat"
    if case == "truncated":
        return _truncated(make_vgg_mat, tmp_path, compress=False)
    if case == "truncated compressed":
        return _truncated(make_vgg_mat, tmp_path, compress=True)
    if case == "no layers":
        scipy.io.savemat(tmp_path / "x.mat", {"x": 1})
        return tmp_path / "x.mat"
    if case == "broken chain":  # conv2_1 expects one channel more than conv1_2 gives
        return make_vgg_mat(
            tamper=lambda name, k: np.ones((3, 3, k.shape[2] + 1, k.shape[3]), np.float32) if name == "conv2_1" else k
        ).path
    if case == "5x5 kernel":
        return make_vgg_mat(
            tamper=lambda name, k: np.ones((5, 5, *k.shape[2:]), np.float32) if name == "conv1_2" else k
        ).path
    if case == "nan":

        def nan(name: str, k: np.ndarray) -> np.ndarray:
            if name == "conv3_2":
                k = k.copy()
                k[0, 1, 0, 0] = np.nan
            return k

        return make_vgg_mat(tamper=nan).path
    if case == "matlab v7.3":
        write_v73(tmp_path / "v73.mat")
        return tmp_path / "v73.mat"
    raise AssertionError(case)


BAD_CASES = [
    "missing",
    "directory",
    "zero bytes",
    "zero-filled",
    "text",
    "html page",
    "truncated",
    "truncated compressed",
    "no layers",
    "broken chain",
    "5x5 kernel",
    "nan",
    "matlab v7.3",
]

EXPECTED_WORDS = {
    "missing": "does not exist",
    "directory": "directory",
    "no layers": "'layers'",
    "broken chain": "conv2_1",
    "5x5 kernel": "5x5",
    "nan": "NaN",
    "matlab v7.3": "v7.3",
    "truncated": "truncated",
}


@pytest.mark.parametrize("case", BAD_CASES)
@pytest.mark.parametrize("loader", ["read_matconvnet", "load_vgg with cache"])
def test_bad_file_raises_neural_style_error(make_vgg_mat, tmp_path: Path, case: str, loader: str) -> None:
    """Each kind of bad file raises NeuralStyleError naming the file (and, with a cache, caches nothing)."""
    path = _bad_file(case, make_vgg_mat, tmp_path)
    cache = tmp_path / "cache"
    with pytest.raises(NeuralStyleError) as caught:
        if loader == "read_matconvnet":
            read_matconvnet(path)
        else:
            load_vgg(path, cache_dir=cache)
    message = str(caught.value)
    assert str(path) in message
    assert "\n" not in message
    assert EXPECTED_WORDS.get(case, "") in message
    assert _npz_files(cache) == []


# --------------------------------------------------------------------------------------------------- cache


@LAYOUTS
def test_cache_first_call_writes_one_npz(make_vgg_mat, tmp_path: Path, layout: str) -> None:
    """The first cached load reads the .mat, returns what read_matconvnet does and writes exactly one .npz."""
    mat = make_vgg_mat(layout=layout)
    cache = tmp_path / "cache"
    weights = load_vgg(mat.path, cache_dir=cache)
    _assert_same_weights(weights, read_matconvnet(mat.path))
    assert len(_npz_files(cache)) == 1
    assert [p.name for p in cache.iterdir()] == [_npz_files(cache)[0].name]  # no temporary files left


@LAYOUTS
def test_cache_hit_does_not_read_mat(make_vgg_mat, tmp_path: Path, layout: str, monkeypatch) -> None:
    """The second cached load returns identical arrays, md5 and classes without reading the .mat file."""
    mat = make_vgg_mat(layout=layout)
    cache = tmp_path / "cache"
    first = load_vgg(mat.path, cache_dir=cache)

    def refuse(*args, **kwargs):
        raise AssertionError("the .mat file was read although the cache is valid")

    monkeypatch.setattr(matconvnet, "read_matconvnet", refuse)
    monkeypatch.setattr(matconvnet, "_loadmat", refuse)
    monkeypatch.setattr(scipy.io, "loadmat", refuse)
    second = load_vgg(mat.path, cache_dir=cache)
    _assert_same_weights(second, first)
    assert second.md5 == hashlib.md5(mat.path.read_bytes()).hexdigest()
    assert second.classes == mat.classes
    for layer in second.layers:
        if layer.kind == "conv":
            np.testing.assert_array_equal(layer.kernel, mat.kernels[layer.name])
    assert len(_npz_files(cache)) == 1


def _counting_reader(monkeypatch) -> list[str]:
    """Wraps read_matconvnet so that the test can count the reads of the .mat file."""
    calls: list[str] = []
    real = matconvnet.read_matconvnet

    def counting(path, **kwargs):
        calls.append(os.fspath(path))
        return real(path, **kwargs)

    monkeypatch.setattr(matconvnet, "read_matconvnet", counting)
    return calls


def test_cache_misses_after_source_touched(make_vgg_mat, tmp_path: Path, monkeypatch) -> None:
    """A new modification time of the source makes the cache miss: the .mat is read again."""
    mat = make_vgg_mat()
    cache = tmp_path / "cache"
    calls = _counting_reader(monkeypatch)
    load_vgg(mat.path, cache_dir=cache)
    load_vgg(mat.path, cache_dir=cache)
    assert len(calls) == 1
    stat = mat.path.stat()
    os.utime(mat.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    weights = load_vgg(mat.path, cache_dir=cache)
    assert len(calls) == 2
    _assert_same_weights(weights, read_matconvnet(mat.path))
    load_vgg(mat.path, cache_dir=cache)  # and the new cache is used
    assert len(calls) == 2


def test_cache_misses_after_source_replaced(make_vgg_mat, tmp_path: Path) -> None:
    """A different network written to the same path is read, not the cache of the old one."""
    cache = tmp_path / "cache"
    old = load_vgg(make_vgg_mat(seed=1).path, cache_dir=cache)
    mat = make_vgg_mat(seed=2, channels=(3, 3, 4, 4, 4))
    stat = mat.path.stat()
    os.utime(mat.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 7_000_000_000))
    new = load_vgg(mat.path, cache_dir=cache)
    assert new.md5 != old.md5
    assert new.layers[0].kernel.shape == (3, 3, 3, 3)
    np.testing.assert_array_equal(new.layers[0].kernel, mat.kernels["conv1_1"])


def _savez(path: Path, **arrays: np.ndarray) -> None:
    with open(path, "wb") as f:  # np.savez would append .npz to a name without it; a handle writes in place
        np.savez(f, **arrays)


CORRUPTIONS = [
    pytest.param(lambda path, good: path.write_bytes(b"this is garbage, not a zip archive\n" * 20), id="garbage"),
    pytest.param(lambda path, good: path.write_bytes(b""), id="empty"),
    pytest.param(lambda path, good: _savez(path, format=np.array(99)), id="other format"),
    pytest.param(lambda path, good: _savez(path, unrelated=np.zeros(3)), id="foreign npz"),
    pytest.param(lambda path, good: path.write_bytes(good[: len(good) // 2]), id="truncated"),
]


@pytest.mark.parametrize("corrupt", CORRUPTIONS)
def test_corrupt_cache_is_rebuilt(make_vgg_mat, tmp_path: Path, corrupt, monkeypatch) -> None:
    """A damaged cache file is silently replaced by a good one built from the .mat file."""
    mat = make_vgg_mat()
    cache = tmp_path / "cache"
    expected = load_vgg(mat.path, cache_dir=cache)
    (target,) = _npz_files(cache)
    corrupt(target, target.read_bytes())
    calls = _counting_reader(monkeypatch)
    _assert_same_weights(load_vgg(mat.path, cache_dir=cache), expected)
    assert len(calls) == 1
    assert _npz_files(cache) == [target]
    _assert_same_weights(load_vgg(mat.path, cache_dir=cache), expected)  # the rebuilt cache is valid
    assert len(calls) == 1


def test_no_cache_dir_writes_nothing(make_vgg_mat, tmp_path: Path, monkeypatch) -> None:
    """cache_dir=None reads the file and writes no cache, not even in the default cache directory."""
    mat = make_vgg_mat()
    monkeypatch.setenv("NEURAL_STYLE_CACHE", str(tmp_path / "env-cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    calls = _counting_reader(monkeypatch)
    for _ in range(2):
        _assert_same_weights(load_vgg(mat.path), read_matconvnet(mat.path))
    assert len(calls) == 2
    assert sorted(tmp_path.rglob("*")) == before


def test_cache_dir_is_created(make_vgg_mat, tmp_path: Path) -> None:
    """A cache directory that does not exist yet is created, parents included."""
    cache = tmp_path / "a" / "b" / "cache"
    load_vgg(make_vgg_mat().path, cache_dir=cache)
    assert len(_npz_files(cache)) == 1


def test_cache_dir_that_is_a_file_is_not_an_error(make_vgg_mat, tmp_path: Path) -> None:
    """A cache path that cannot be a directory only costs speed: the weights are still returned."""
    mat = make_vgg_mat()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the cache directory should be")
    _assert_same_weights(load_vgg(mat.path, cache_dir=blocker), read_matconvnet(mat.path))
    assert blocker.read_text() == "a file where the cache directory should be"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write to any directory")
def test_unwritable_cache_dir_is_not_an_error(make_vgg_mat, tmp_path: Path) -> None:
    """A read-only cache directory only costs speed: the weights are returned and nothing is written."""
    mat = make_vgg_mat()
    cache = tmp_path / "readonly"
    cache.mkdir()
    cache.chmod(0o555)
    try:
        _assert_same_weights(load_vgg(mat.path, cache_dir=cache), read_matconvnet(mat.path))
        assert list(cache.iterdir()) == []
    finally:
        cache.chmod(0o755)


def test_keep_classifier_reads_the_mat_file(make_vgg_mat, tmp_path: Path, monkeypatch) -> None:
    """keep_classifier=True bypasses the conv-only cache, so the classifier is returned even after a cached load."""
    mat = make_vgg_mat()
    cache = tmp_path / "cache"
    load_vgg(mat.path, cache_dir=cache)
    calls = _counting_reader(monkeypatch)
    weights = load_vgg(mat.path, cache_dir=cache, keep_classifier=True)
    assert len(calls) == 1
    assert tuple(layer.name for layer in weights.classifier) == FC_NAMES


def test_default_cache_dir(tmp_path: Path, monkeypatch) -> None:
    """$NEURAL_STYLE_CACHE wins, then $XDG_CACHE_HOME/neural_style, then ~/.cache/neural_style."""
    monkeypatch.setenv("NEURAL_STYLE_CACHE", str(tmp_path / "ns"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "ns"
    monkeypatch.delenv("NEURAL_STYLE_CACHE")
    assert default_cache_dir() == tmp_path / "xdg" / "neural_style"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "neural_style"


# --------------------------------------------------------------------------------------------------- real file


@pytest.mark.skipif(not REAL_FILE.is_file(), reason=f"{REAL_FILE} is not present")
def test_real_new_layout_file() -> None:
    """The real new-layout VGG-19 file: 37 feature layers, 512-channel conv5_4, the ImageNet mean pixel."""
    weights = read_matconvnet(REAL_FILE)
    assert len(weights.layers) == 37
    assert weights.layer_names[0] == "conv1_1" and weights.layer_names[-1] == "pool5"
    layers = {layer.name: layer for layer in weights.layers}
    assert layers["conv1_1"].kernel.shape == (3, 3, 3, 64)
    assert layers["conv5_4"].kernel.shape == (3, 3, 512, 512)
    assert layers["conv5_4"].bias.shape == (512,)
    np.testing.assert_allclose(weights.mean_pixel, [122.68, 116.67, 104.01], atol=0.01)
    assert len(weights.classes) == 1000
    assert weights.classifier == ()
