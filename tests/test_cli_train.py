"""Tests of the ``neural-style-train`` command (neural_style.cli.train).

The command runs in this process (TensorFlow is already imported) on conftest's tiny network and a narrow
transformer: it trains, resumes from its checkpoint and writes a model and TensorBoard records. Bad inputs are
rejected in subprocesses that never import TensorFlow.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import IMPORTS_MARKER, TRAIN_SIZE, photo_array, train_style_array, write_truncated_jpeg
from PIL import Image
from tensorflow.core.util import event_pb2

from neural_style.cli import train as train_cli
from neural_style.transformer import apply_transformer, load_transformer

ERROR_PREFIX = "neural-style-train: error: "
TINY = (
    "--base_filters=4",
    "--residual_blocks=1",
    f"--image_size={TRAIN_SIZE}",
    "--batch_size=2",
    "--seed=0",
    "--content_layers=relu2_2",
    "--style_layers=relu1_2,relu2_2",
)


def _events(directory: Path) -> dict[str, list[int]]:
    """{tag: steps} of the TensorBoard event files in ``directory``."""
    tags: dict[str, list[int]] = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


@pytest.mark.slow
def test_train_command_trains_resumes_and_writes_a_model(
    tiny_vgg_file: Path,
    photo_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NEURAL_STYLE_CACHE", str(tmp_path / "cache"))
    style = tmp_path / "style.png"
    Image.fromarray(train_style_array()).save(style)
    model, board = tmp_path / "m.keras", tmp_path / "board"
    args = [
        "neural-style-train",
        f"--network={tiny_vgg_file}",
        f"--style={style}",
        f"--data={photo_folder}",
        f"--model_out={model}",
        f"--tensorboard_dir={board}",
        "--print_every=2",
        "--summary_every=1",
        "--checkpoint_every=2",
        *TINY,
    ]
    train_cli.main([*args, "--steps=3"])
    out, err = capsys.readouterr()
    warnings = err.splitlines()
    assert all(line.startswith("neural-style-train: warning: ") for line in warnings), err  # nothing else
    assert any("skipping" in line and "broken.jpg" in line for line in warnings)
    assert "neural-style-train: warning: skipped 2 of 6 files" in err  # the broken JPEG and the text file
    assert "Step      3/3" in out and "steps/s" in out and "ETA" in out
    assert f"Wrote {model}" in out
    checkpoints = tmp_path / "m_checkpoints"
    assert sorted(p.name for p in checkpoints.glob("*.index")) == ["ckpt-2.index", "ckpt-3.index"]
    image = photo_array(21, 30, 5).astype(np.float32)
    assert apply_transformer(load_transformer(model), image).shape == image.shape
    tags = _events(board)
    assert tags["loss/total"] == [1, 2, 3] and tags["content"] == [0] and tags["stylized"] == [2, 3]

    before = hashlib.sha256(model.read_bytes()).hexdigest()
    train_cli.main([*args, "--steps=4", "--overwrite"])
    out, err = capsys.readouterr()
    assert err.count("\n") == err.count("neural-style-train: warning: "), err  # the same warnings, nothing else
    assert f"Resuming from step 3 ({checkpoints / 'ckpt-3'})" in out
    assert "Step      4/4" in out and "Step      1/" not in out
    assert hashlib.sha256(model.read_bytes()).hexdigest() != before
    assert sorted(p.name for p in checkpoints.glob("*.index"))[-1] == "ckpt-4.index"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")) == []

    with pytest.raises(SystemExit) as info:  # a checkpoint made with other settings
        train_cli.main([*args, "--steps=5", "--overwrite", "--base_filters=8"])
    assert info.value.code == 2
    assert "--base_filters" in capsys.readouterr().err.splitlines()[-1]  # the fingerprint names the setting


def _bad_data(root: Path) -> list[str]:
    (root / "bad").mkdir()
    write_truncated_jpeg(root / "bad" / "x.jpg")
    return ["--data=bad"]


def _exists(root: Path) -> list[str]:
    (root / "m.keras").write_bytes(b"old")
    return []


def _checkpoint_dir_is_file(root: Path) -> list[str]:
    (root / "ckpt").write_text("x")
    return ["--checkpoint_dir=ckpt"]


def _tensorboard_dir_under_a_file(root: Path) -> list[str]:
    (root / "runs").write_text("x")
    return ["--tensorboard_dir=runs/starry"]  # a missing parent is created, but not over a file


BAD_TRAIN = [
    ("style-missing", lambda r: ["--style=none.png"], "none.png"),
    ("data-missing", lambda r: ["--data=nowhere"], "nowhere"),
    ("all-bad-data", _bad_data, "none of its 1 files"),
    ("model-exists", _exists, "already exists"),
    ("epochs-and-steps", lambda r: ["--epochs=1"], "--epochs and --steps"),
    ("unknown-layer", lambda r: ["--style_layers=relu1_2,relu7_1"], "relu7_1"),
    ("checkpoint-dir-file", _checkpoint_dir_is_file, "--checkpoint_dir"),
    ("tensorboard-under-a-file", _tensorboard_dir_under_a_file, "--tensorboard_dir"),
    ("network-missing", lambda r: ["--network=none.mat"], "none.mat"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("make", "mention"), [c[1:] for c in BAD_TRAIN], ids=[c[0] for c in BAD_TRAIN])
def test_train_bad_input_is_one_error_line(
    tiny_vgg_file: Path, tmp_path: Path, import_probe: Path, make, mention
) -> None:
    """Exit 2, one error line naming the culprit, nothing written, and TensorFlow never imported."""
    (tmp_path / "data").mkdir()
    Image.fromarray(photo_array(40, 40, 0)).save(tmp_path / "data" / "a.png")
    Image.fromarray(train_style_array()).save(tmp_path / "style.png")
    (tmp_path / "home").mkdir()
    extra = make(tmp_path)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    marker = tmp_path / IMPORTS_MARKER
    env = {k: v for k, v in os.environ.items() if k not in ("NEURAL_STYLE_WEIGHTS", "KERAS_HOME")}
    env.update(
        HOME=str(tmp_path / "home"),
        NEURAL_STYLE_CACHE=str(tmp_path / "home" / "cache"),
        NEURAL_STYLE_TEST_IMPORTS=str(marker),
        PYTHONPATH=os.pathsep.join(p for p in (str(import_probe), os.environ.get("PYTHONPATH")) if p),
    )
    args = [
        f"--network={tiny_vgg_file}",
        "--style=style.png",
        "--data=data",
        "--model_out=m.keras",
        "--steps=2",
        *extra,
    ]
    code = "import sys; from neural_style.cli.train import main; sys.argv[0] = 'neural-style-train'; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), result.stderr
    assert mention in lines[0]
    assert result.stdout == ""
    marker_text = marker.read_text()
    marker.unlink()
    after = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "home")}
    assert after == {p: t for p, t in before.items() if not p.is_relative_to(tmp_path / "home")}
    assert marker_text == ""


def test_train_interrupted_is_not_an_error(
    tiny_vgg_file: Path,
    photo_folder: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Ctrl-C saves a checkpoint: the line says so without "error:" (as neural-style's does), exit 130."""
    import signal

    monkeypatch.setenv("NEURAL_STYLE_CACHE", str(tmp_path / "cache"))
    style = tmp_path / "style.png"
    Image.fromarray(train_style_array()).save(style)
    loop = train_cli._loop

    def interrupted(fv, trainer, dataset, total, save, reporter, interruption, checkpoint_dir):  # type: ignore[no-untyped-def]
        os.kill(os.getpid(), signal.SIGINT)
        return loop(fv, trainer, dataset, total, save, reporter, interruption, checkpoint_dir)

    monkeypatch.setattr(train_cli, "_loop", interrupted)
    args = ["neural-style-train", f"--network={tiny_vgg_file}", f"--style={style}", f"--data={photo_folder}"]
    with pytest.raises(SystemExit) as info:
        train_cli.main([*args, f"--model_out={tmp_path / 'm.keras'}", "--steps=5", *TINY])
    assert info.value.code == 130
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" not in line]
    assert len(lines) == 1 and lines[0].startswith("neural-style-train: interrupted at step 1; saved a checkpoint in")
