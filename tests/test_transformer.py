"""Tests of the image transformer network (neural_style.transformer) and of the ``neural-style-apply`` command.

The default (paper-sized) network is built once to check its structure; everything else uses a narrow network
(``base_filters=4``, one residual block) on tiny images. The command runs once in a subprocess, on a folder, and
once in this process, on a file; bad inputs are rejected in subprocesses that never import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import IMPORT_PROBE as _PROBE
from PIL import Image

from neural_style.cli import apply as apply_cli
from neural_style.errors import NeuralStyleError
from neural_style.transformer import (
    CropToMatch,
    PadToMultiple,
    ReflectionPadding2D,
    apply_transformer,
    build_transformer,
    load_transformer,
    save_transformer,
)

ERROR_PREFIX = "neural-style-apply: error: "
IMPORTS_MARKER = "imports.txt"


def _tiny(seed: int = 0) -> keras.Model:
    return build_transformer(base_filters=4, residual_blocks=1, seed=seed)


def _randomized(model: keras.Model, seed: int = 0) -> keras.Model:
    """Every weight random (normalisation scales and offsets start as ones and zeros), so that all of them count."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.3, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def _images(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)


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

    out = apply_transformer(model, _images((37, 53, 3)))
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
    model = _tiny()
    for size in [(1, 1), (3, 5), (9, 4), (37, 53), (64, 64)]:
        out = apply_transformer(model, _images((2, *size, 3)))
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
    same = [np.array_equal(a, b) for a, b in zip(_tiny(1).get_weights(), _tiny(1).get_weights(), strict=True)]
    assert all(same)
    kernels = zip(_tiny(1).get_weights(), _tiny(2).get_weights(), strict=True)
    assert not any(np.array_equal(a, b) for a, b in kernels if a.ndim == 4)


# ------------------------------------------------------------------------------------------------ save and load


def test_save_load_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    model = _randomized(_tiny())
    path = tmp_path / "model.keras"
    save_transformer(model, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]  # no temporary file left
    loaded = load_transformer(path)
    images = _images((2, 37, 53, 3), seed=1)
    np.testing.assert_array_equal(apply_transformer(loaded, images), apply_transformer(model, images))
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]

    other = _randomized(_tiny(), seed=5)
    save_transformer(other, path)  # replaces the file
    reloaded = load_transformer(path).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(reloaded, other.get_weights(), strict=True))


def test_save_needs_keras_extension(tmp_path: Path) -> None:
    with pytest.raises(NeuralStyleError, match=r"\.keras"):
        save_transformer(_tiny(), tmp_path / "model.h5")
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
        apply_transformer(_tiny(), np.zeros((8, 8), np.float32))


# ------------------------------------------------------------------------------------------------ neural-style-apply


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    save_transformer(_randomized(_tiny()), path)
    return path


@dataclasses.dataclass
class ApplyWorkspace:
    root: Path
    model: Path
    photos: Path  # a folder of three images of different sizes and formats
    photo: Path  # one of them

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("NEURAL_STYLE_WEIGHTS", "KERAS_HOME")}
        env["HOME"] = str(self.root / "home")
        env["TMPDIR"] = str(self.root / "tmp")
        return env


SIZES = {"a.png": (37, 53), "b.jpg": (20, 31), "c.bmp": (16, 16)}


@pytest.fixture
def aws(tmp_path: Path, model_file: Path) -> ApplyWorkspace:
    photos = tmp_path / "photos"
    photos.mkdir()
    (tmp_path / "home").mkdir()
    (tmp_path / "tmp").mkdir()
    for i, (name, (height, width)) in enumerate(SIZES.items()):
        Image.fromarray(_images((height, width, 3), seed=i).astype(np.uint8)).save(photos / name)
    (photos / "notes.txt").write_text("not an image, and not an image name: ignored")
    return ApplyWorkspace(tmp_path, model_file, photos, photos / "a.png")


def _apply(aws: ApplyWorkspace, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    code = "import sys; from neural_style.cli.apply import main; sys.argv[0] = 'neural-style-apply'; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=aws.root,
        env=env or aws.env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_apply_folder_keeps_sizes_names_and_formats(aws: ApplyWorkspace) -> None:
    out = aws.root / "out"
    result = _apply(aws, f"--model={aws.model}", f"--content={aws.photos}", f"--output={out}")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(SIZES)
    model = load_transformer(aws.model)
    for name, size in SIZES.items():
        with Image.open(out / name) as image:
            assert (image.height, image.width) == size
            assert image.format == {"png": "PNG", "jpg": "JPEG", "bmp": "BMP"}[name[-3:]]
            pixels = np.asarray(image.convert("RGB"), np.float32)
        if name.endswith(".png"):  # lossless: the network's output, rounded
            with Image.open(aws.photos / name) as source:
                expected = apply_transformer(model, np.asarray(source.convert("RGB"), np.float32))
            assert np.abs(pixels - expected).max() <= 0.5 + 1e-3


def test_apply_one_image_in_process(aws: ApplyWorkspace, capsys: pytest.CaptureFixture[str]) -> None:
    out = aws.root / "one.png"
    apply_cli.main(["neural-style-apply", f"--model={aws.model}", f"--content={aws.photo}", f"--output={out}"])
    with Image.open(out) as image:
        assert (image.height, image.width) == SIZES["a.png"]
    assert f"Wrote {out}" in capsys.readouterr().out
    with pytest.raises(SystemExit) as info:  # exists now
        apply_cli.main(["neural-style-apply", f"--model={aws.model}", f"--content={aws.photo}", f"--output={out}"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith(ERROR_PREFIX)


def _snapshot(root: Path) -> dict[str, tuple[int, str]]:
    return {
        str(p.relative_to(root)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
        for p in root.rglob("*")
        if p.is_file() and p.name != IMPORTS_MARKER
    }


def _exists(aws: ApplyWorkspace) -> list[str]:
    (aws.root / "exists.png").write_bytes(b"old")
    return [f"--content={aws.photo}", "--output=exists.png"]


def _corrupt(aws: ApplyWorkspace) -> list[str]:
    (aws.photos / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return [f"--content={aws.photos}", "--output=out"]


def _output_file_for_folder(aws: ApplyWorkspace) -> list[str]:
    (aws.root / "file.png").write_bytes(b"x")
    return [f"--content={aws.photos}", "--output=file.png"]


BAD_APPLY = [
    ("no-model", lambda a: ["--content=photos/a.png", "--output=o.png"], "--model is required", False),
    (
        "model-missing",
        lambda a: ["--model=none.keras", "--content=photos/a.png", "--output=o.png"],
        "none.keras",
        False,
    ),
    (
        "model-not-keras",
        lambda a: ["--model=photos/a.png", "--content=photos/a.png", "--output=o.png"],
        "not a .keras",
        False,
    ),
    ("content-missing", lambda a: ["--content=nope.png", "--output=o.png"], "nope.png", True),
    ("output-extension", lambda a: ["--content=photos/a.png", "--output=o.xyz"], ".xyz", True),
    ("output-exists", _exists, "exists.png already exists", True),
    ("corrupt-in-folder", _corrupt, "d.png", True),
    ("output-is-content", lambda a: ["--content=photos", "--output=photos"], "--content folder", True),
    ("output-file-for-folder", _output_file_for_folder, "is a file", True),
    ("output-parent-missing", lambda a: ["--content=photos", "--output=no/such/dir"], "does not exist", True),
    ("positional", lambda a: ["--content=photos/a.png", "--output=o.png", "extra"], "unexpected argument", True),
    ("unknown-flag", lambda a: ["--bogus"], "bogus", False),
]


@pytest.fixture(scope="module")
def import_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("probe")
    (directory / "sitecustomize.py").write_text(_PROBE)
    return directory


@pytest.mark.parametrize(("make", "mention", "with_model"), [c[1:] for c in BAD_APPLY], ids=[c[0] for c in BAD_APPLY])
def test_apply_bad_input_is_one_error_line(aws: ApplyWorkspace, import_probe: Path, make, mention, with_model) -> None:
    """Exit 2, one error line naming the culprit, nothing written, and TensorFlow never imported."""
    args = make(aws)
    if with_model:
        args = [f"--model={aws.model}", *args]
    before = _snapshot(aws.root)
    marker = aws.root / IMPORTS_MARKER
    env = aws.env
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(import_probe), env.get("PYTHONPATH")) if p)
    env["NEURAL_STYLE_TEST_IMPORTS"] = str(marker)
    result = _apply(aws, *args, env=env)
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), result.stderr
    assert mention in lines[0]
    assert result.stdout == ""
    assert _snapshot(aws.root) == before
    assert marker.read_text() == ""
