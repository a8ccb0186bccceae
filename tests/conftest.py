"""Shared test helpers: tiny synthetic MatConvNet VGG files in both layouts.

``write_vgg_mat`` writes a VGG-19 (or VGG-16) shaped network with a few channels per block, so a file is a few KB,
and returns what the loader is expected to produce. The ``make_vgg_mat`` fixture is the same function writing into
the test's ``tmp_path``.

The layouts mirror the real downloads (see ``scipy.io.loadmat`` of ``imagenet-vgg-verydeep-19.mat``):

* new: ``layers`` is a 1xL cell of 1x1 structs with fields name, type, weights, size, pad, stride (+ method, pool
  for pooling layers); ``meta`` is a struct with ``normalization.averageImage`` (1x1x3) and ``classes.name`` /
  ``classes.description`` (1xK cells of strings).
* old: ``layers`` structs have ``weights`` first (weights, pad, type, name, stride); top-level ``normalization``
  holds a whole HxWx3 ``averageImage`` (224x224x3 in the real file) and top-level ``classes`` the descriptions.

``write_v73`` writes a minimal MATLAB v7.3 (HDF5) file, which the loader must refuse.

It also holds what the command tests share: the tiny inputs (``content_array``, ``style_array``, ``CHANNELS``), a
:class:`Workspace` with them and a tiny He-scaled network (``make_workspace``, the ``ws`` fixture), running
``python -m neural_style`` in it (``run_neural_style``, ``assert_ok``), checks that a rejected command wrote nothing
(``snapshot``, ``temp_files``) and imported no TensorFlow (``IMPORT_PROBE``, the ``import_probe`` fixture,
``probe_env``), parsing ``neural-style`` flags in process (``stylize_flags``) and the hypothesis settings of the
property tests (``PROPERTIES``).

And the small problems several test modules share: stylization runs on the tiny network (``tiny_run``,
``tiny_config``, ``run_stylize`` and the record accessors; ``small_problem``), the one-channel ``red_network`` of the
by-hand loss tests, the photos and narrow transformer of the training and apply tests (``photo_array``,
``photo_folder``, ``tiny_vgg_file``, ``tiny_transformer``), and the ``planted`` classifier network whose answers are
known in advance.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import io
import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, settings
from PIL import Image

MEAN_PIXEL = (123.68, 116.779, 103.939)
"""The mean pixel planted in the synthetic files (the classic VGG value)."""

FC_NAMES = ("fc6", "relu6", "fc7", "relu7", "fc8", "prob")


@dataclasses.dataclass
class VggMat:
    """A synthetic MatConvNet file and what the loader should read from it.

    Attributes:
        path: the written ``.mat`` file.
        layout: ``new`` or ``old``.
        names: every layer name in file order (features then classifier).
        kinds: the MatConvNet type of each layer.
        raw_kernels: conv name -> kernel as stored, MatConvNet order [width, height, in, out].
        kernels: conv name -> kernel in TensorFlow order [height, width, in, out].
        biases: conv name -> flat float32 bias [out].
        average_image: the stored averageImage (1x1x3 new layout, HxWx3 old layout).
        mean_pixel: the planted mean pixel, float64 [3].
        classes: class descriptions, in order.
    """

    path: Path
    layout: str
    names: list[str]
    kinds: list[str]
    raw_kernels: dict[str, np.ndarray]
    kernels: dict[str, np.ndarray]
    biases: dict[str, np.ndarray]
    average_image: np.ndarray
    mean_pixel: np.ndarray
    classes: tuple[str, ...]

    @property
    def feature_names(self) -> list[str]:
        """Names of the layers up to and including pool5."""
        return self.names[: self.names.index("pool5") + 1]

    @property
    def feature_kinds(self) -> list[str]:
        return self.kinds[: len(self.feature_names)]


def vgg_spec(
    *,
    vgg16: bool = False,
    channels: Sequence[int] = (2, 3, 4, 5, 5),
    fc_kernel: tuple[int, int] = (2, 2),
    fc_channels: int = 6,
    n_classes: int = 4,
) -> list[tuple[str, str, tuple[int, ...] | None]]:
    """The VGG layer list as (name, type, MatConvNet kernel shape or None)."""
    convs_per_block = (2, 2, 3, 3, 3) if vgg16 else (2, 2, 4, 4, 4)
    spec: list[tuple[str, str, tuple[int, ...] | None]] = []
    fan_in = 3
    for block, (count, fan_out) in enumerate(zip(convs_per_block, channels, strict=True), start=1):
        for i in range(1, count + 1):
            spec.append((f"conv{block}_{i}", "conv", (3, 3, fan_in, fan_out)))
            spec.append((f"relu{block}_{i}", "relu", None))
            fan_in = fan_out
        spec.append((f"pool{block}", "pool", None))
    spec += [
        ("fc6", "conv", (*fc_kernel, fan_in, fc_channels)),
        ("relu6", "relu", None),
        ("fc7", "conv", (1, 1, fc_channels, fc_channels)),
        ("relu7", "relu", None),
        ("fc8", "conv", (1, 1, fc_channels, n_classes)),
        ("prob", "softmax", None),
    ]
    return spec


def _struct(fields: dict[str, object]) -> np.ndarray:
    """A 1x1 MATLAB struct for savemat, with fields in the given order."""
    struct = np.empty((1, 1), dtype=[(name, object) for name in fields])
    for name, value in fields.items():
        struct[name][0, 0] = value
    return struct


def _cell(items: Sequence[object]) -> np.ndarray:
    """A 1xN MATLAB cell array for savemat."""
    cell = np.empty((1, len(items)), dtype=object)
    for i, item in enumerate(items):
        cell[0, i] = item
    return cell


def _layer_struct(layout: str, name: str, kind: str, weights: np.ndarray, size: np.ndarray) -> np.ndarray:
    pad = np.ones((1, 4)) if kind == "conv" and name.startswith("conv") else np.zeros((1, 4))
    stride = np.array([[2.0, 2.0]]) if kind == "pool" else np.array([[1.0, 1.0]])
    if layout == "new":
        fields: dict[str, object] = {
            "name": name,
            "type": kind,
            "weights": weights,
            "size": size,
            "pad": pad,
            "stride": stride,
        }
    else:
        fields = {"weights": weights, "pad": pad, "type": kind, "name": name, "stride": stride}
    if kind == "pool":
        fields["method"] = "max"
        fields["pool"] = np.array([[2.0, 2.0]])
    return _struct(fields)


def write_vgg_mat(
    path: str | Path,
    *,
    layout: str = "new",
    vgg16: bool = False,
    channels: Sequence[int] = (2, 3, 4, 5, 5),
    fc_kernel: tuple[int, int] = (2, 2),
    fc_channels: int = 6,
    n_classes: int = 4,
    image_size: int = 8,
    mean_pixel: Sequence[float] = MEAN_PIXEL,
    seed: int = 0,
    compress: bool = False,
    tamper: Callable[[str, np.ndarray], np.ndarray] | None = None,
) -> VggMat:
    """Writes a small random MatConvNet VGG file and returns it with the expected arrays.

    Args:
        path: where to write the ``.mat`` file.
        layout: ``new`` (``meta`` struct, 1x1x3 mean) or ``old`` (top-level ``normalization`` with an
            ``image_size`` x ``image_size`` x 3 mean image, ``weights`` the first layer field).
        vgg16: 3 convolutions in blocks 3-5 instead of 4.
        channels: output channels of the five blocks.
        fc_kernel: (width, height) of the fc6 kernel as MatConvNet stores it.
        fc_channels, n_classes: outputs of fc6/fc7 and of fc8.
        image_size: side of the old layout's averageImage.
        mean_pixel: the RGB mean pixel planted in averageImage.
        seed: for the random kernels, biases and mean image.
        compress: write with zlib compression (MATLAB's default) instead of plain.
        tamper: called as ``tamper(name, kernel)`` with each MatConvNet-order kernel; what it returns is written
            (and reported as expected) instead, to make broken files.
    """
    if layout not in ("new", "old"):
        raise ValueError(f"layout must be 'new' or 'old', not {layout!r}")
    path = Path(path)
    rng = np.random.default_rng(seed)
    spec = vgg_spec(vgg16=vgg16, channels=channels, fc_kernel=fc_kernel, fc_channels=fc_channels, n_classes=n_classes)

    raw_kernels: dict[str, np.ndarray] = {}
    kernels: dict[str, np.ndarray] = {}
    biases: dict[str, np.ndarray] = {}
    layers = []
    for name, kind, shape in spec:
        if kind == "conv":
            assert shape is not None
            kernel = rng.standard_normal(shape).astype(np.float32)
            if tamper is not None:
                kernel = np.asarray(tamper(name, kernel))
            bias = rng.standard_normal((1, kernel.shape[-1])).astype(np.float32)
            raw_kernels[name] = kernel
            kernels[name] = np.transpose(kernel, (1, 0, 2, 3)) if kernel.ndim == 4 else kernel
            biases[name] = bias.reshape(-1)
            weights = _cell([kernel, bias])
            size = np.array([kernel.shape], dtype=np.float64)
        else:
            weights = np.empty((1, 0), dtype=object)
            size = np.empty((1, 0), dtype=object)
        layers.append(_layer_struct(layout, name, kind, weights, size))

    mean = np.asarray(mean_pixel, dtype=np.float64)
    descriptions = tuple(f"class {i} description" for i in range(n_classes))
    classes = _struct(
        {
            "name": _cell([f"n{i:08d}" for i in range(n_classes)]),
            "description": _cell(list(descriptions)),
        }
    )
    if layout == "new":
        average_image = mean.astype(np.float32).reshape(1, 1, 3)
        meta = _struct(
            {
                "inputs": _struct({"name": "input", "size": np.array([[224.0, 224.0, 3.0, 10.0]])}),
                "classes": classes,
                "normalization": _struct({"imageSize": np.array([[224.0, 224.0, 3.0]]), "averageImage": average_image}),
            }
        )
        variables = {"layers": _cell(layers), "meta": meta}
    else:
        noise = rng.uniform(-20.0, 20.0, (image_size, image_size, 3))
        average_image = (noise - noise.mean(axis=(0, 1)) + mean).astype(np.float32)
        variables = {
            "layers": _cell(layers),
            "classes": classes,
            "normalization": _struct({"averageImage": average_image, "imageSize": np.array([[224.0, 224.0, 3.0]])}),
        }
    scipy.io.savemat(path, variables, do_compression=compress, oned_as="row")
    return VggMat(
        path=path,
        layout=layout,
        names=[name for name, _, _ in spec],
        kinds=[kind for _, kind, _ in spec],
        raw_kernels=raw_kernels,
        kernels=kernels,
        biases=biases,
        average_image=average_image,
        mean_pixel=mean,
        classes=descriptions,
    )


@pytest.fixture
def make_vgg_mat(tmp_path: Path) -> Callable[..., VggMat]:
    """``write_vgg_mat`` into ``tmp_path``: ``make_vgg_mat(name='vgg.mat', **options)``."""

    def make(name: str = "vgg.mat", **options: object) -> VggMat:
        # options are write_vgg_mat's keyword arguments, passed through untyped
        return write_vgg_mat(tmp_path / name, **options)  # type: ignore[arg-type]

    return make


# A sitecustomize module: run first in a subprocess, it records at exit whether TensorFlow or Keras was imported.
IMPORT_PROBE = textwrap.dedent(
    """
    import atexit
    import os
    import sys

    _marker = os.environ.get("NEURAL_STYLE_TEST_IMPORTS")
    if _marker:
        def _record():
            with open(_marker, "w") as f:
                f.write(" ".join(m for m in ("tensorflow", "keras") if m in sys.modules))

        atexit.register(_record)
    """
)


def he_scaled(name: str, kernel: np.ndarray) -> np.ndarray:
    """Scales a random N(0, 1) kernel by sqrt(2 / fan_in) so activations neither explode nor vanish."""
    return kernel * np.float32(np.sqrt(2.0 / (kernel.shape[0] * kernel.shape[1] * kernel.shape[2])))


def write_v73(path: Path) -> None:
    """A minimal MATLAB v7.3 file: HDF5 with a 512-byte user block starting with the MATLAB text header."""
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w", userblock_size=512) as f:
        f["layers"] = np.zeros(3)
    text = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    header = text.ljust(116, b" ") + bytes(8) + b"\x00\x02IM"  # subsystem offset, version 0x0200, endianness
    assert len(header) == 128
    with open(path, "r+b") as f:
        f.write(header)


# ------------------------------------------------------------------------------------------ the command's inputs

ERROR_PREFIX = "neural-style: error: "
CONTENT_SIZE = (24, 20)  # (width, height), as Pillow gives sizes
STYLE_SIZE = (16, 16)
CHANNELS = (4, 6, 8, 8, 8)  # a little wider than write_vgg_mat's default, so the losses are not trivially tiny
IMPORTS_MARKER = "imports.txt"  # written by IMPORT_PROBE when a command exits, outside the snapshot

# No example database: nothing is written into the working tree.
PROPERTIES = settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def content_array() -> np.ndarray:
    """A smooth, moderately saturated 24x20 image (no colour near the edge of the gamut)."""
    width, height = CONTENT_SIZE
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([70 + 4 * x, 90 + 3 * y, 170 - 2 * x - y], axis=-1)
    return rgb.astype(np.uint8)


def style_array(seed: int = 0) -> np.ndarray:
    """A 16x16 pattern of coloured 4x4 blocks."""
    blocks = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((4, 4, 1), dtype=np.uint8))


@dataclasses.dataclass
class Workspace:
    """A test's files: ``work`` holds the inputs and outputs; ``root`` also holds the cache and ``$HOME``."""

    root: Path
    work: Path
    content: Path
    style: Path
    network: Path
    output: Path

    @property
    def env(self) -> dict[str, str]:
        """The environment of the command: no user settings, cache and home inside ``root``."""
        env = {k: v for k, v in os.environ.items() if k not in ("NEURAL_STYLE_WEIGHTS", "KERAS_HOME", "XDG_CACHE_HOME")}
        env["NEURAL_STYLE_CACHE"] = str(self.root / "cache")
        env["HOME"] = str(self.root / "home")
        env["TMPDIR"] = str(self.root / "tmp")  # TensorFlow's autograph leaves files in the temporary directory
        return env

    def args(self, *extra: str, output: Path | None = None) -> list[str]:
        """The flags of a minimal valid run, then ``extra``."""
        return [
            f"--content={self.content}",
            f"--styles={self.style}",
            f"--network={self.network}",
            f"--output={output or self.output}",
            *extra,
        ]


def make_workspace(root: Path) -> Workspace:
    """The content and style images and the tiny He-scaled network (``CHANNELS``) in ``root/work``."""
    work = root / "work"
    work.mkdir(parents=True)
    (root / "home").mkdir()
    (root / "tmp").mkdir()
    ws = Workspace(root, work, work / "content.png", work / "style.png", work / "vgg.mat", work / "out.png")
    Image.fromarray(content_array()).save(ws.content)
    Image.fromarray(style_array()).save(ws.style)
    write_vgg_mat(ws.network, channels=CHANNELS, tamper=he_scaled)
    return ws


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    """Fresh inputs in this test's temporary directory."""
    return make_workspace(tmp_path)


def run_neural_style(
    ws: Workspace, args: Sequence[str], *, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m neural_style`` with ``args`` in ``ws.work``, with ``ws.env`` unless ``env`` is given."""
    return subprocess.run(
        [sys.executable, "-m", "neural_style", *args],
        cwd=ws.work,
        env=env or ws.env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def assert_ok(result: Any, *, quiet: bool = True) -> None:
    """The command (a CompletedProcess or anything with returncode, stdout and stderr) exited 0 and, ``quiet``,
    printed nothing on stderr: a successful run is silent there (TensorFlow's start-up log included)."""
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    if quiet:
        assert result.stderr == "", f"a successful run printed on stderr:\n{result.stderr}"


def temp_files(root: Path) -> list[Path]:
    """The temporary files of atomic writes (``.tmp-*``) left under ``root``."""
    return sorted(root.rglob(".tmp-*"))


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under ``root`` (but the import marker): mtime and content hash."""
    files = {}
    for path in root.rglob("*"):
        if path.is_file() and path.name != IMPORTS_MARKER:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            files[str(path.relative_to(root))] = (path.stat().st_mtime_ns, digest)
    return files


@pytest.fixture(scope="module")
def import_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a ``sitecustomize`` (IMPORT_PROBE) that records whether TensorFlow or Keras was imported."""
    directory = tmp_path_factory.mktemp("probe")
    (directory / "sitecustomize.py").write_text(IMPORT_PROBE)
    return directory


def probe_env(env: dict[str, str], import_probe: Path, marker: Path) -> dict[str, str]:
    """``env`` with the import probe first on PYTHONPATH, writing to ``marker`` at exit."""
    env = dict(env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(import_probe), env.get("PYTHONPATH")) if p)
    env["NEURAL_STYLE_TEST_IMPORTS"] = str(marker)
    return env


def stylize_flags(*argv: str) -> Any:
    """Fresh ``neural-style`` flag values (absl FlagValues) with ``argv`` (flags only) parsed, for in-process tests."""
    from neural_style.cli import stylize as stylize_cli

    fv = stylize_cli.flag_values()
    fv(["neural-style", *argv])
    return fv


# --------------------------------------------------------------------------- a tiny problem for stylization runs

LOSS_KEYS = ("content", "style", "tv", "total")
# For comparisons of one Adam step computed two ways: with epsilon far above the gradients (|g| ~ 1e2 here) the step
# is proportional to the gradient. At the default epsilon 1e-8 the first step is lr x sign(g), which turns rounding
# in a near-zero gradient component into a full 10-level jump of that pixel.
LINEAR_ADAM = {"learning_rate": 1e3, "epsilon": 1e4}


@dataclasses.dataclass
class TinyRun:
    """The tiny He-scaled network (``CHANNELS``) with the command tests' content and style images."""

    weights: Any  # VggWeights
    content: np.ndarray  # [20, 24, 3], smooth, well inside 0..255
    style: np.ndarray  # [16, 16, 3]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> TinyRun:
    """A :class:`TinyRun` (built once per test module)."""
    from neural_style.matconvnet import load_vgg

    path = tmp_path_factory.mktemp("tiny") / "vgg.mat"
    write_vgg_mat(path, channels=CHANNELS, tamper=he_scaled)
    return TinyRun(load_vgg(path), content_array().astype(np.float32), style_array().astype(np.float32))


def tiny_config(**changes: Any) -> Any:
    """Settings of the tiny runs: seeded noise start, tv_weight 1 (neural-style's 1e2 blurs 24x20 images)."""
    from neural_style.config import StyleConfig

    return dataclasses.replace(StyleConfig(iterations=8, seed=0, tv_weight=1.0), **changes)


def run_stylize(tiny: TinyRun, config: Any, **options: Any) -> list[Any]:
    """Every record of ``stylize`` on the tiny problem."""
    from neural_style.stylization import stylize

    return list(stylize(tiny.weights, tiny.content, [tiny.style], config, **options))


def step_losses(records: Any) -> list[float]:
    """The step loss of each record that has one."""
    return [float(r.step_loss[0]) for r in records if r.step_loss is not None]


def record_image(record: Any) -> np.ndarray:
    assert record.image is not None, f"the record of iteration {record.iteration} has no image"
    return record.image


def record_losses(record: Any) -> dict[str, np.ndarray]:
    assert record.losses is not None, f"the record of iteration {record.iteration} has no losses"
    return record.losses


def record_step_loss(record: Any) -> np.ndarray:
    assert record.step_loss is not None, f"the record of iteration {record.iteration} has no step loss"
    return record.step_loss


# ------------------------------------------------------------------------- the one-channel network of by-hand tests


def red_network(mean_red: float = 10.0) -> Any:
    """conv1_1 copies the red channel (1x1 kernel, no bias), then relu1_1 and pool1; mean pixel (mean_red, 0, 0).

    relu1_1 of an image is then max(R - mean_red, 0): every loss on it can be worked out by hand.
    """
    from neural_style.matconvnet import Layer, VggWeights

    kernel = np.zeros((1, 1, 3, 1), np.float32)
    kernel[0, 0, 0, 0] = 1.0
    layers = (
        Layer("conv1_1", "conv", kernel, np.zeros(1, np.float32)),
        Layer("relu1_1", "relu"),
        Layer("pool1", "pool"),
    )
    return VggWeights(layers=layers, mean_pixel=np.array([mean_red, 0.0, 0.0], np.float32))


def red_image(values: list[list[float]]) -> np.ndarray:
    """[1, H, W, 3] image whose red channel is ``values`` and whose green and blue are 0."""
    red = np.asarray(values, np.float32)
    return np.stack([red, np.zeros_like(red), np.zeros_like(red)], axis=-1)[None]


def random_images(n: int, height: int = 20, width: int = 24, seed: int = 0) -> np.ndarray:
    """``n`` uniformly random 0..255 float32 images."""
    return np.random.default_rng(seed).uniform(0, 255, (n, height, width, 3)).astype(np.float32)


@pytest.fixture
def scaled_vgg(tmp_path: Path) -> tuple[VggMat, Any]:
    """A small random He-scaled VGG-19 file (``CHANNELS``) and its weights."""
    from neural_style.matconvnet import read_matconvnet

    mat = write_vgg_mat(tmp_path / "vgg.mat", channels=CHANNELS, tamper=he_scaled)
    return mat, read_matconvnet(mat.path)


# ----------------------------------------------------------------------------------- transformer training and use

TRAIN_SIZE = 32  # side of the training crops


def photo_array(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth gradient with a few blocks on it: something with content at every scale."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([60 + 150 * x, 80 + 120 * y, 200 - 100 * x * y], axis=-1)
    blocks = np.kron(rng.uniform(-40, 40, (4, 4, 3)), np.ones((-(-height // 4), -(-width // 4), 1)))
    return np.clip(base + blocks[:height, :width], 0, 255).astype(np.uint8)


def train_style_array() -> np.ndarray:
    """A 24x24 pattern of coloured 6x6 blocks."""
    blocks = np.random.default_rng(7).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((6, 6, 1), dtype=np.uint8))


def write_truncated_jpeg(path: Path) -> Path:
    """The first half of a JPEG photo."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(photo_array(40, 40, 9)).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


@pytest.fixture(scope="module")
def tiny_vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny He-scaled network (``CHANNELS``) as a ``.mat`` file."""
    path = tmp_path_factory.mktemp("network") / "vgg.mat"
    write_vgg_mat(path, channels=CHANNELS, tamper=he_scaled)
    return path


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """Four good images (one in a subfolder, one a JPEG) and a truncated JPEG, a text file and a hidden file."""
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(photo_array(40, 48, 0)).save(folder / "a.png")
    Image.fromarray(photo_array(36, 36, 1)).save(folder / "b.jpg", quality=95)
    Image.fromarray(photo_array(50, 34, 2)).save(folder / "c.png")
    Image.fromarray(photo_array(33, 45, 3)).save(folder / "sub" / "d.png")
    write_truncated_jpeg(folder / "broken.jpg")
    (folder / "readme.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"ignored")
    return folder


def tiny_transformer(seed: int = 0) -> Any:
    """A narrow transformer: ``base_filters=4``, one residual block."""
    from neural_style.transformer import build_transformer

    return build_transformer(base_filters=4, residual_blocks=1, seed=seed)


def randomized(model: Any, seed: int = 0) -> Any:
    """Every weight random (normalisation scales and offsets start as ones and zeros), so that all of them count."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def uniform_images(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """Uniformly random 0..255 float32 values of ``shape``."""
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)


# ---------------------------------------------------------------------- the planted ImageNet classifier network

N_CLASSES = 8
RED_CLASS = 3  # what the planted network answers for a red image
BLUE_CLASS = 1  # and for a blue one


def planted_kernels(name: str, kernel: np.ndarray) -> np.ndarray:
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


def uniform_colour(rgb: tuple[int, int, int], height: int | None = None, width: int | None = None) -> np.ndarray:
    """An image of one colour, float32; the classifier's input size (224 x 224) unless given."""
    from neural_style.classify import INPUT_SIZE

    shape = (height or INPUT_SIZE, width or INPUT_SIZE, 3)
    return np.broadcast_to(np.asarray(rgb, np.float32), shape).copy()


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[VggMat, Any, Any]:
    """The planted network (fc6 7x7 on the 7x7 pool5 output), its file, its weights and its classifier."""
    from neural_style.classify import ImageNetClassifier
    from neural_style.matconvnet import read_matconvnet

    mat = write_vgg_mat(
        tmp_path_factory.mktemp("planted") / "planted.mat",
        fc_kernel=(7, 7),
        n_classes=N_CLASSES,
        tamper=planted_kernels,
    )
    weights = read_matconvnet(mat.path, keep_classifier=True)
    return mat, weights, ImageNetClassifier(weights)


@pytest.fixture(scope="module")
def small_problem(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, np.ndarray, np.ndarray]:
    """The tiny network (channels (4, 6, 8, 8, 8), He-scaled kernels), a 16x20 content and a 16x16 style image."""
    from neural_style.matconvnet import read_matconvnet

    path = tmp_path_factory.mktemp("vgg") / "vgg.mat"
    write_vgg_mat(path, channels=CHANNELS, tamper=he_scaled)
    content = content_array()[:16, :20].astype(np.float32)
    return read_matconvnet(path), content, style_array().astype(np.float32)


@contextlib.contextmanager
def read_only_directory(target: Path) -> Iterator[Path]:
    """``target`` made (new) and unwritable for the duration: chmod 0500, or for root (whom permissions do not stop)
    a read-only tmpfs mounted on it; skips the test when neither works."""
    target.mkdir()
    if os.geteuid() != 0:
        target.chmod(0o500)
        try:
            yield target
        finally:
            target.chmod(0o700)
        return
    mount = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(target)], capture_output=True, timeout=30
    )
    if mount.returncode != 0:
        pytest.skip("root, and no read-only tmpfs can be mounted here")
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], capture_output=True, timeout=30)


# ------------------------------------------------------------------------------------------- commands in process


@contextlib.contextmanager
def process_like(work: Path, env: dict[str, str], no_network: bool) -> Iterator[None]:
    """Runs a command in this process as if it were its own: in ``work``, with ``env`` as the environment and, with
    ``no_network``, every socket resolve or connect failing. (In-process, TensorFlow is started once for all lines.)"""
    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), list(sys.argv)
    saved_socket = socket.getaddrinfo, socket.socket.connect

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("network disabled by the test")

    os.environ.clear()
    os.environ.update(env)
    os.chdir(work)
    if no_network:
        socket.getaddrinfo = refuse
        socket.socket.connect = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.getaddrinfo, socket.socket.connect = saved_socket  # type: ignore[method-assign]
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        sys.argv[:] = saved_argv


def run_command(module: str, argv: list[str], work: Path, env: dict[str, str], no_network: bool) -> Completed:
    """The command's entry point called with ``argv`` (its name first): exit status, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    status = 0
    with process_like(work, env, no_network), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        sys.argv[:] = argv
        try:
            importlib.import_module(module).main(argv)
        except SystemExit as e:
            status = e.code if isinstance(e.code, int) else 1
    return Completed(status, out.getvalue(), err.getvalue())


@dataclasses.dataclass(frozen=True)
class Completed:
    """What a command line did, as ``subprocess.CompletedProcess`` would tell it."""

    returncode: int
    stdout: str
    stderr: str


def run_in_process(ws: Workspace, args: Sequence[str], *, command: str = "neural-style") -> Completed:
    """What :func:`run_neural_style` tells of ``command`` with ``args``, from the command's ``main`` called in this
    process (as test_readme runs the README's lines): a few seconds faster, with no Python or TensorFlow to start.
    What TensorFlow's C++ code writes to the file descriptors directly is not captured: a test of a silent stderr,
    of the imports or of signals runs the command in its own process."""
    from neural_style.cli import MODULES

    return run_command(MODULES[command], [command, *args], ws.work, ws.env, no_network=False)


# ----------------------------------------------------------------------------------------- video clips, clusters

# The clip of the video tests (test_video, test_flow, test_temporal, test_cli_video): a red square moving 2 px a
# frame across a still colour gradient with a faint ripple (DIS flow, like any patch-based flow, cannot tell a shifted
# linear ramp from a brighter one, so a background with no texture at all gets the square's motion smeared over it),
# twelve 64x48 frames at 12 frames/s.
CLIP_HEIGHT, CLIP_WIDTH, CLIP_FRAMES, CLIP_RATE = 48, 64, 12, Fraction(12)
SQUARE, TOP, LEFT, STEP = 12, 16, 8, 2  # side, top row, first left column and motion (px / frame) of the square
RED = (230.0, 40.0, 40.0)


def clip_background() -> np.ndarray:
    """The still background of the clip, [48, 64, 3] float32."""
    y, x = np.mgrid[0:CLIP_HEIGHT, 0:CLIP_WIDTH].astype(np.float32)
    ramp = np.stack([60 + 2 * x, 80 + 2 * y, 150 - x - y], axis=-1)
    return np.clip(ramp + (20 * np.sin(0.7 * x) * np.sin(0.6 * y))[..., None], 0, 255)


def square_frames(count: int = CLIP_FRAMES) -> list[np.ndarray]:
    """[H, W, 3] float32 frames with whole values: the square at column LEFT + STEP t in frame t."""
    frames = []
    for t in range(count):
        frame = np.rint(clip_background())
        left = LEFT + STEP * t
        frame[TOP : TOP + SQUARE, left : left + SQUARE] = RED
        frames.append(frame)
    return frames


def write_clip(path: Path, frames: list[np.ndarray], *, audio_seconds: float = 1.0) -> Path:
    """The frames as H.264 (CRF 10) at CLIP_RATE with a 440 Hz AAC tone, written with PyAV directly."""
    import av

    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=CLIP_RATE)
        video.width, video.height, video.pix_fmt = CLIP_WIDTH, CLIP_HEIGHT, "yuv420p"
        video.options = {"crf": "10"}
        audio = container.add_stream("aac", rate=44100)
        for t, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, 1 / CLIP_RATE
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = int(44100 * audio_seconds)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)[None]
        for start in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start : start + 1024]), "fltp", "mono")
            chunk.sample_rate, chunk.pts = 44100, start
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))
    return path


def tf_config(ports: Sequence[int], index: int) -> str:
    """The TF_CONFIG of worker ``index`` of workers on localhost ``ports``."""
    return json.dumps(
        {"cluster": {"worker": [f"localhost:{port}" for port in ports]}, "task": {"type": "worker", "index": index}}
    )


# ------------------------------------------------------------------------------------------------------ test tiers

SLOW_RULE = (
    "this test starts a Python process (a command, a worker); mark it @pytest.mark.slow (setup.cfg [tool:pytest] "
    'markers): the fast tier, python -m pytest -m "not slow", starts none'
)


def _starts_python(argv: object) -> bool:
    """Whether ``argv`` (of subprocess.Popen) runs a Python interpreter or one of the commands; small tools that
    libraries run (``uname`` for platform.processor, ``mount``) do not count."""
    program = argv if isinstance(argv, (str, bytes, os.PathLike)) else next(iter(argv), "")  # type: ignore[call-overload]
    name = os.path.basename(os.fsdecode(program)).split()[0] if program else ""
    return name.startswith(("python", "neural-style")) or os.fsdecode(program) == sys.executable


def pytest_configure(config: pytest.Config) -> None:
    """Coverage, and its floor (setup.cfg), are for the whole suite: a part of it (-m, -k, or named files) runs
    without them."""
    whole = config.args_source == pytest.Config.ArgsSource.TESTPATHS
    if not whole or config.option.markexpr or config.option.keyword:
        config.option.no_cov = True
        coverage = config.pluginmanager.get_plugin("_cov")  # pytest-cov's, which read its options before this
        if coverage is not None:
            coverage.options.no_cov = True


@contextlib.contextmanager
def _no_processes(item: pytest.Item) -> Iterator[None]:
    """Fails a test that is not marked slow as soon as it (or a fixture it sets up) starts a Python process."""
    if item.get_closest_marker("slow") is not None:
        yield
        return
    execute = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def guarded(self: subprocess.Popen[Any], args: object, *rest: object, **kwargs: object) -> None:
        if _starts_python(args):
            pytest.fail(f"{SLOW_RULE}: {args!r}"[:400], pytrace=False)
        execute(self, args, *rest, **kwargs)

    subprocess.Popen._execute_child = guarded  # type: ignore[attr-defined]
    try:
        yield
    finally:
        subprocess.Popen._execute_child = execute  # type: ignore[attr-defined]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    with _no_processes(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    with _no_processes(item):
        return (yield)
