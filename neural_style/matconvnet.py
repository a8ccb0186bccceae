"""MatConvNet VGG files (``imagenet-vgg-verydeep-19.mat`` and ``-16.mat``) to plain NumPy arrays.

Two layouts are found in the wild and both are read:

* new (the current download): ``meta.normalization.averageImage`` is the 1x1x3 mean pixel, the class names are in
  ``meta.classes.description`` and each layer struct keeps its parameters in the field ``weights`` (not first).
* old (the ``beta16`` download): top-level ``normalization.averageImage`` is a 224x224x3 mean image, whose mean
  over height and width is the mean pixel; ``classes.description``; ``weights`` is the first field of a layer.

Struct fields are always looked up by name. MatConvNet stores kernels as [width, height, in, out]; they are
returned in TensorFlow's [height, width, in, out] order. Only the convolutional part is kept in memory: the
classifier (fc6..fc8, about 480 MB in VGG-19) is dropped unless asked for. A compact conv-only ``.npz`` cache makes
later loads fast and small.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neural_style.atomic import atomic_file
from neural_style.errors import NeuralStyleError

__all__ = [
    "KNOWN_MD5",
    "Layer",
    "VggWeights",
    "default_cache_dir",
    "load_vgg",
    "read_matconvnet",
]

# MD5 of the files users download, with the layout each one has.
KNOWN_MD5 = {
    "106118b7cf60435e6d8e04f6a6dc3657": "imagenet-vgg-verydeep-19.mat (current download, new layout)",
    "8ee3263992981a1d26e73b3ca028a123": "imagenet-vgg-verydeep-19.mat (beta16 download, old layout)",
}

_CACHE_FORMAT = 1
_FEATURE_KINDS = ("conv", "relu", "pool")


@dataclasses.dataclass(frozen=True)
class Layer:
    """One layer of the network.

    Attributes:
        name: MatConvNet layer name, e.g. ``conv1_1``, ``relu1_1``, ``pool1``, ``fc6``.
        kind: ``conv``, ``relu``, ``pool`` or ``softmax``.
        kernel: for ``conv`` only, float32 of shape [height, width, in, out] (TensorFlow order).
        bias: for ``conv`` only, float32 of shape [out].
    """

    name: str
    kind: str
    kernel: np.ndarray | None = None
    bias: np.ndarray | None = None


@dataclasses.dataclass(frozen=True)
class VggWeights:
    """The parameters of a VGG network read from a MatConvNet file.

    Attributes:
        layers: the feature layers (conv/relu/pool) from the input up to pool5, in file order.
        mean_pixel: float32 [3], the RGB mean pixel subtracted by preprocessing.
        classes: ImageNet class descriptions, empty when the file has none.
        classifier: fc6..prob (fully connected layers stored as convolutions), empty unless asked for.
        md5: hex MD5 of the source file.
    """

    layers: tuple[Layer, ...]
    mean_pixel: np.ndarray
    classes: tuple[str, ...] = ()
    classifier: tuple[Layer, ...] = ()
    md5: str = ""

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Names of the feature layers, in order."""
        return tuple(layer.name for layer in self.layers)


def _field(struct: np.ndarray, name: str, where: str, path: str) -> Any:
    """Returns field ``name`` of a 1x1 MATLAB struct loaded by scipy, unwrapped to its value."""
    names = struct.dtype.names or ()
    if name not in names:
        raise NeuralStyleError(f"{path}: {where} has no field '{name}'; this is not a MatConvNet VGG file")
    return struct[name].flat[0] if struct.size else None


def _string(value: Any) -> str:
    """A MATLAB char array as loaded by scipy (possibly wrapped in 1x1 object arrays) as a Python str."""
    while isinstance(value, np.ndarray):
        if value.size == 0:
            return ""
        if value.dtype.kind == "U":
            return "".join(value.ravel().tolist())
        value = value.flat[0]
    return str(value)


def _mean_pixel(normalization: np.ndarray, path: str) -> np.ndarray:
    average = np.asarray(_field(normalization, "averageImage", "normalization", path), dtype=np.float32)
    if average.ndim == 3 and average.shape[2] == 3:
        # The old layout stores a whole 224x224x3 mean image; its mean over height and width is the mean pixel.
        return average.mean(axis=(0, 1), dtype=np.float64).astype(np.float32)
    if average.size == 3:
        return average.reshape(3)
    raise NeuralStyleError(f"{path}: averageImage has shape {average.shape}, expected 1x1x3 or HxWx3")


def _class_descriptions(classes: np.ndarray | None) -> tuple[str, ...]:
    if classes is None or "description" not in (classes.dtype.names or ()):
        return ()
    descriptions = classes["description"].flat[0]
    return tuple(_string(d) for d in np.asarray(descriptions).ravel())


def _conv_params(layer: np.ndarray, name: str, path: str) -> tuple[np.ndarray, np.ndarray]:
    weights = np.asarray(_field(layer, "weights", f"layer {name}", path)).ravel()
    if weights.size != 2:
        raise NeuralStyleError(f"{path}: layer {name} has {weights.size} weight arrays, expected kernel and bias")
    kernel = np.asarray(weights[0])
    bias = np.asarray(weights[1])
    if kernel.ndim == 2:  # MATLAB drops trailing singleton dimensions
        kernel = kernel[:, :, None, None]
    elif kernel.ndim == 3:
        kernel = kernel[..., None]
    if kernel.ndim != 4:
        raise NeuralStyleError(f"{path}: layer {name} kernel has shape {kernel.shape}, expected 4 dimensions")
    # MatConvNet: [width, height, in, out]; TensorFlow: [height, width, in, out].
    kernel = np.ascontiguousarray(np.transpose(kernel, (1, 0, 2, 3)), dtype=np.float32)
    bias = np.ascontiguousarray(bias.reshape(-1), dtype=np.float32)
    if bias.shape[0] != kernel.shape[3]:
        raise NeuralStyleError(f"{path}: layer {name} has {bias.shape[0]} biases for {kernel.shape[3]} filters")
    if not (np.isfinite(kernel).all() and np.isfinite(bias).all()):
        raise NeuralStyleError(f"{path}: layer {name} has NaN or infinite weights; download the file again")
    return kernel, bias


def _check_features(layers: Sequence[Layer], path: str) -> None:
    """Checks the feature chain: 3x3 kernels, RGB input, channels of each conv = outputs of the previous one."""
    convs = [layer for layer in layers if layer.kind == "conv"]
    if not convs:
        raise NeuralStyleError(f"{path}: no convolution layers found; this is not a MatConvNet VGG file")
    channels = 3
    seen: set[str] = set()
    for layer in layers:
        if layer.name in seen:
            raise NeuralStyleError(f"{path}: layer name {layer.name} appears twice")
        seen.add(layer.name)
        if layer.kind != "conv":
            continue
        assert layer.kernel is not None
        height, width, fan_in, fan_out = layer.kernel.shape
        if (height, width) != (3, 3):
            raise NeuralStyleError(f"{path}: layer {layer.name} has a {height}x{width} kernel, expected 3x3")
        if fan_in != channels:
            raise NeuralStyleError(
                f"{path}: layer {layer.name} takes {fan_in} channels but receives {channels}; the file is not a VGG"
            )
        channels = fan_out


def _file_md5(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def _loadmat(path: str) -> dict[str, Any]:
    import scipy.io  # imported here: loading scipy.io costs start-up time that cached runs do not need
    from scipy.io.matlab import MatReadError

    if os.path.isdir(path):
        raise NeuralStyleError(f"{path} is a directory, not a network file; give the .mat file", setting="network")
    if not os.path.exists(path):
        raise NeuralStyleError(
            f"{path} does not exist; download it with neural-style-download or give its path", setting="network"
        )
    try:
        return scipy.io.loadmat(path, variable_names=("layers", "meta", "normalization", "classes"), squeeze_me=False)
    except NotImplementedError:
        raise NeuralStyleError(
            f"{path} is a MATLAB v7.3 (HDF5) file, which is not a MatConvNet download; use the original .mat file"
        ) from None
    except MemoryError:
        raise
    except PermissionError:
        raise NeuralStyleError(f"{path} cannot be read (permission denied); fix its permissions") from None
    except (
        MatReadError,
        ValueError,
        TypeError,
        OSError,
        EOFError,
        KeyError,
        IndexError,
        AttributeError,
        zlib.error,
    ) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NeuralStyleError(
            f"{path} is not a readable MATLAB .mat file ({detail}); it may be truncated: download it again"
        ) from None


def read_matconvnet(path: str | os.PathLike[str], *, keep_classifier: bool = False) -> VggWeights:
    """Reads a MatConvNet VGG file in either layout.

    Args:
        path: the ``.mat`` file.
        keep_classifier: also return fc6..prob (as convolutions); otherwise they are dropped right after reading.

    Returns:
        The network's parameters, kernels in TensorFlow order.

    Raises:
        NeuralStyleError: the file is missing, unreadable, truncated, or not a VGG network.
    """
    path = os.fspath(path)
    data = _loadmat(path)
    if "layers" not in data:
        raise NeuralStyleError(f"{path} has no 'layers' variable; it is not a MatConvNet network file")
    if "meta" in data:  # new layout
        meta = data["meta"]
        normalization = _field(meta, "normalization", "meta", path)
        names = meta.dtype.names or ()
        classes = meta["classes"].flat[0] if "classes" in names else None
    elif "normalization" in data:  # old layout
        normalization = data["normalization"]
        classes = data.get("classes")
    else:
        raise NeuralStyleError(f"{path} has neither 'meta' nor 'normalization'; it is not a MatConvNet VGG file")
    mean_pixel = _mean_pixel(normalization, path)

    features: list[Layer] = []
    classifier: list[Layer] = []
    for cell in np.asarray(data["layers"]).ravel():
        layer = cell
        while isinstance(layer, np.ndarray) and layer.dtype == object and layer.size == 1:
            layer = layer.flat[0]  # scipy wraps each cell of the layers array in 1x1 object arrays
        if not isinstance(layer, np.ndarray) or layer.dtype.names is None:
            raise NeuralStyleError(f"{path}: a layer is not a struct; this is not a MatConvNet network file")
        name = _string(_field(layer, "name", "layer", path))
        kind = _string(_field(layer, "type", f"layer {name}", path))
        in_features = not classifier and not name.startswith("fc") and kind in _FEATURE_KINDS
        if not in_features and not keep_classifier:
            break
        if kind == "conv":
            kernel, bias = _conv_params(layer, name, path)
            parsed = Layer(name, kind, kernel, bias)
        elif kind in ("relu", "pool", "softmax"):
            parsed = Layer(name, kind)
        elif kind == "dropout":
            continue  # identity at inference
        else:
            raise NeuralStyleError(f"{path}: layer {name} has unsupported type '{kind}'")
        (features if in_features else classifier).append(parsed)
    del data  # the classifier arrays, if not kept, are released here

    _check_features(features, path)
    return VggWeights(
        layers=tuple(features),
        mean_pixel=mean_pixel,
        classes=_class_descriptions(classes),
        classifier=tuple(classifier),
        md5=_file_md5(path),
    )


def default_cache_dir() -> Path:
    """Where conv-only caches go: ``$NEURAL_STYLE_CACHE``, else ``$XDG_CACHE_HOME/neural_style`` (~/.cache)."""
    if os.environ.get("NEURAL_STYLE_CACHE"):
        return Path(os.environ["NEURAL_STYLE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "neural_style"


def _cache_path(source: str, cache_dir: Path) -> tuple[Path, os.stat_result]:
    """``<stem>-<hash of real path>-<hash of size and mtime>.npz``: one live cache file per source path."""
    stat = os.stat(source)
    where = hashlib.sha256(os.path.realpath(source).encode()).hexdigest()[:8]
    version = hashlib.sha256(f"{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:8]
    return cache_dir / f"{Path(source).stem}-{where}-{version}.npz", stat


def _write_cache(weights: VggWeights, target: Path, stat: os.stat_result) -> None:
    arrays: dict[str, Any] = {
        "format": np.array(_CACHE_FORMAT),
        "names": np.array([layer.name for layer in weights.layers]),
        "kinds": np.array([layer.kind for layer in weights.layers]),
        "mean_pixel": weights.mean_pixel,
        "classes": np.array(weights.classes, dtype=str),
        "md5": np.array(weights.md5),
        "source_size": np.array(stat.st_size),
        "source_mtime_ns": np.array(stat.st_mtime_ns),
    }
    for i, layer in enumerate(weights.layers):
        if layer.kind == "conv":
            assert layer.kernel is not None and layer.bias is not None
            arrays[f"kernel_{i}"] = layer.kernel
            arrays[f"bias_{i}"] = layer.bias
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(target, suffix=".npz") as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    stem, where, _ = target.stem.rsplit("-", 2)
    for stale in target.parent.glob(f"{stem}-{where}-*.npz"):
        if stale != target:
            stale.unlink(missing_ok=True)  # caches of earlier versions of the same source file


def _read_cache(target: Path, stat: os.stat_result, source: str) -> VggWeights | None:
    try:
        with np.load(target, allow_pickle=False) as z:
            if int(z["format"]) != _CACHE_FORMAT:
                return None
            if int(z["source_size"]) != stat.st_size or int(z["source_mtime_ns"]) != stat.st_mtime_ns:
                return None
            layers = []
            for i, (name, kind) in enumerate(zip(z["names"].tolist(), z["kinds"].tolist(), strict=True)):
                if kind == "conv":
                    layers.append(Layer(name, kind, z[f"kernel_{i}"], z[f"bias_{i}"]))
                else:
                    layers.append(Layer(name, kind))
            weights = VggWeights(
                layers=tuple(layers),
                mean_pixel=z["mean_pixel"],
                classes=tuple(z["classes"].tolist()),
                md5=str(z["md5"]),
            )
    except (OSError, ValueError, KeyError, zlib.error, zipfile.BadZipFile, EOFError):
        return None  # a damaged or foreign cache is rebuilt from the source
    try:
        _check_features(weights.layers, source)
    except NeuralStyleError:
        return None
    return weights


# The network last read from a cache file, with that file's identity: a process that loads the same network again
# (the studio, once per job) gets it from memory while the cache file is unchanged.
_loaded: list[tuple[tuple[object, ...] | None, VggWeights] | None] = [None]


def _loaded_key(target: Path) -> tuple[object, ...] | None:
    try:
        stat = target.stat()
    except OSError:
        return None
    return (str(target), stat.st_ino, stat.st_size, stat.st_mtime_ns)


def load_vgg(
    path: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    keep_classifier: bool = False,
) -> VggWeights:
    """Loads a MatConvNet VGG file, through a conv-only cache when ``cache_dir`` is given.

    The cache file is keyed by the source's real path, size and modification time and records the source's MD5;
    a stale, damaged or unwritable cache is never an error, the source is read instead.

    Args:
        path: the ``.mat`` file.
        cache_dir: directory for the ``.npz`` cache, or None for no cache.
        keep_classifier: also load fc6..prob; this always reads the ``.mat`` file.

    Returns:
        The network's parameters.

    Raises:
        NeuralStyleError: the file is missing, unreadable, truncated, or not a VGG network.
    """
    source = os.fspath(path)
    if cache_dir is None or keep_classifier or not os.path.isfile(source):
        return read_matconvnet(source, keep_classifier=keep_classifier)
    target, stat = _cache_path(source, Path(cache_dir))
    if target.is_file():
        key = _loaded_key(target)
        last = _loaded[0]
        if key is not None and last is not None and last[0] == key:
            return last[1]
        cached = _read_cache(target, stat, source)
        if cached is not None:
            _loaded[0] = (key, cached)
            return cached
    weights = read_matconvnet(source)
    with contextlib.suppress(OSError, NeuralStyleError):  # a read-only cache directory only costs speed
        _write_cache(weights, target, stat)
    return weights
