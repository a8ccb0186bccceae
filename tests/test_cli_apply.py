"""Tests of the ``neural-style-apply`` command (neural_style.cli.apply).

It runs once in a subprocess, on a folder, and once in this process, on a file, with conftest's narrow transformer
(random weights) saved as a ``.keras`` file; bad inputs are rejected in subprocesses that never import TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import IMPORTS_MARKER, randomized, snapshot, tiny_transformer, uniform_images, write_vgg_mat
from PIL import Image

from neural_style.cli import apply as apply_cli
from neural_style.transformer import apply_transformer, load_transformer, save_transformer

ERROR_PREFIX = "neural-style-apply: error: "


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.keras"
    save_transformer(randomized(tiny_transformer()), path)
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
        Image.fromarray(uniform_images((height, width, 3), seed=i).astype(np.uint8)).save(photos / name)
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


@pytest.mark.slow
def test_apply_folder_keeps_sizes_names_and_formats(aws: ApplyWorkspace) -> None:
    out = aws.root / "out"
    result = _apply(aws, f"--model={aws.model}", f"--content={aws.photos}", f"--output={out}")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "a successful run is silent on stderr"
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


def test_apply_in_bfloat16(aws: ApplyWorkspace, capsys: pytest.CaptureFixture[str]) -> None:
    """--precision bfloat16 writes the network's output rounded to 16 bits: close to float32's; float16 (a GPU's)
    is refused in one line on a machine without one, before anything is written."""
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
        if "avx512_bf16" not in f.read():
            pytest.skip("this CPU has no AVX512-BF16")
    out = aws.root / "half.png"
    apply_cli.main(
        [
            "neural-style-apply",
            f"--model={aws.model}",
            f"--content={aws.photo}",
            f"--output={out}",
            "--precision=bfloat16",
        ]
    )
    with Image.open(out) as image, Image.open(aws.photo) as source:
        pixels = np.asarray(image.convert("RGB"), np.float32)
        expected = apply_transformer(load_transformer(aws.model), np.asarray(source.convert("RGB"), np.float32))
    assert 0 < np.abs(pixels - expected).mean() <= 2.0
    capsys.readouterr()
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        with pytest.raises(SystemExit) as info:
            apply_cli.main(
                [
                    "neural-style-apply",
                    f"--model={aws.model}",
                    f"--content={aws.photo}",
                    "--output=f16.png",
                    "--precision=float16",
                ]
            )
        assert info.value.code == 2
        assert (
            capsys.readouterr().err
            == f"{ERROR_PREFIX}--precision float16 is for GPUs (none is visible); use bfloat16 or float32\n"
        )
        assert not (aws.root / "f16.png").exists()


def _exists(aws: ApplyWorkspace) -> list[str]:
    (aws.root / "exists.png").write_bytes(b"old")
    return [f"--content={aws.photo}", "--output=exists.png"]


def _corrupt(aws: ApplyWorkspace) -> list[str]:
    (aws.photos / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    return [f"--content={aws.photos}", "--output=out"]


def _output_file_for_folder(aws: ApplyWorkspace) -> list[str]:
    (aws.root / "file.png").write_bytes(b"x")
    return [f"--content={aws.photos}", "--output=file.png"]


def _output_folder_under_a_file(aws: ApplyWorkspace) -> list[str]:
    (aws.root / "file.png").write_bytes(b"x")
    return [f"--content={aws.photos}", "--output=file.png/styled"]  # missing parents are created, not over a file


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
    ("output-under-a-file", _output_folder_under_a_file, "is a file", True),
    ("positional", lambda a: ["--content=photos/a.png", "--output=o.png", "extra"], "unexpected argument", True),
    ("unknown-flag", lambda a: ["--bogus"], "bogus", False),
    ("precision", lambda a: ["--content=photos/a.png", "--output=o.png", "--precision=float64"], "--precision", True),
]


@pytest.mark.slow
@pytest.mark.parametrize(("make", "mention", "with_model"), [c[1:] for c in BAD_APPLY], ids=[c[0] for c in BAD_APPLY])
def test_apply_bad_input_is_one_error_line(aws: ApplyWorkspace, import_probe: Path, make, mention, with_model) -> None:
    """Exit 2, one error line naming the culprit, nothing written, and TensorFlow never imported."""
    args = make(aws)
    if with_model:
        args = [f"--model={aws.model}", *args]
    before = snapshot(aws.root)
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
    assert snapshot(aws.root) == before
    assert marker.read_text() == ""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dense", "vgg_features"])
def test_a_keras_file_that_is_not_a_transformer_is_one_whole_line(aws: ApplyWorkspace, kind: str) -> None:
    """Another Keras model (a dense classifier; the feature extractor neural-style-export writes) is named as not
    a transformer, in one line that ends with the advice, never a Keras message cut mid-word."""
    import keras

    from neural_style.vgg import feature_extractor

    path = aws.root / f"{kind}.keras"
    if kind == "dense":
        keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]).save(path)
    else:
        mat = write_vgg_mat(aws.root / "vgg.mat")
        feature_extractor(mat.path, ["relu1_1"]).save(path)
    result = _apply(aws, f"--model={path}", f"--content={aws.photo}", "--output=out.png")
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0] == (
        f"neural-style-apply: error: --model {path} is not an image transformer: it must map [N, H, W, 3] to "
        "[N, H, W, 3]"
    )
    assert not (aws.root / "out.png").exists()


@pytest.mark.slow
def test_an_output_that_is_the_content_or_the_model_is_refused(aws: ApplyWorkspace) -> None:
    """With --overwrite too, however spelled: the photo itself, a hard link to it, the model; and in a folder run,
    an output folder whose file would be a hard link of an input."""
    os.link(aws.photo, aws.root / "hard.png")
    elsewhere = aws.root / "styled"
    elsewhere.mkdir()
    os.link(aws.photos / "b.jpg", elsewhere / "b.jpg")
    cases = [
        ([f"--content={aws.photo}", f"--output={aws.photo}"], "is the --content image"),
        ([f"--content={aws.photo}", "--output=hard.png"], "is the --content image"),
        ([f"--content={aws.photo}", f"--output={aws.model}"], "is the --model file"),
        ([f"--content={aws.photos}", f"--output={elsewhere}"], "is the --content image"),
    ]
    for args, words in cases:
        before = {p: p.read_bytes() for p in aws.root.rglob("*") if p.is_file()}
        result = _apply(aws, f"--model={aws.model}", *args, "--overwrite")
        lines = result.stderr.splitlines()
        assert result.returncode == 2 and len(lines) == 1 and words in lines[0], (args, result.stderr)
        assert {p: p.read_bytes() for p in aws.root.rglob("*") if p.is_file()} == before


def test_apply_folder_interrupted_says_how_many_outputs_were_written(
    aws: ApplyWorkspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl-C during the first of three images: that one is finished and written, the line counts it, exit 130."""
    import signal

    original = apply_transformer
    calls = []

    def interrupting(model, image, **options):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return original(model, image, **options)

    monkeypatch.setattr("neural_style.transformer.apply_transformer", interrupting)
    out = aws.root / "out"
    with pytest.raises(SystemExit) as info:
        apply_cli.main(["neural-style-apply", f"--model={aws.model}", f"--content={aws.photos}", f"--output={out}"])
    assert info.value.code == 130
    assert len(list(out.iterdir())) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"neural-style-apply: interrupted after image 1/3: wrote 1 output to {out}"
    ]
