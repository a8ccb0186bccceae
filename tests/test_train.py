"""Tests of transformer training (neural_style.train) and of the ``neural-style-train`` command.

Training runs on a synthetic VGG file (conftest.py) with a few channels per block and He-scaled kernels, so that
activations stay finite, a narrow transformer (``base_filters=4``, one residual block) and 32 px images: a step
takes milliseconds. The command runs in this process (TensorFlow is already imported); bad inputs are rejected in
subprocesses that never import TensorFlow.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import IMPORT_PROBE as _PROBE
from conftest import he_scaled as _he_scaled
from conftest import write_vgg_mat
from PIL import Image
from tensorflow.core.util import event_pb2

from neural_style.cli import train as train_cli
from neural_style.config import TrainConfig
from neural_style.errors import NeuralStyleError
from neural_style.image_io import check_model_file
from neural_style.matconvnet import VggWeights, load_vgg
from neural_style.train import Trainer, center_crops, make_dataset, scan_images
from neural_style.transformer import apply_transformer, load_transformer

CHANNELS = (4, 6, 8, 8, 8)
SIZE = 32
ERROR_PREFIX = "neural-style-train: error: "
IMPORTS_MARKER = "imports.txt"
# The loss network stops at relu2_2: a quarter of the layers, so the training step compiles faster.
SHALLOW = {"content_layers": ("relu2_2",), "style_layers": ("relu1_2", "relu2_2")}
TINY = (
    "--base_filters=4",
    "--residual_blocks=1",
    f"--image_size={SIZE}",
    "--batch_size=2",
    "--seed=0",
    "--content_layers=relu2_2",
    "--style_layers=relu1_2,relu2_2",
)


def _photo(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth gradient with a few blocks on it: something with content at every scale."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    base = np.stack([60 + 150 * x, 80 + 120 * y, 200 - 100 * x * y], axis=-1)
    blocks = np.kron(rng.uniform(-40, 40, (4, 4, 3)), np.ones((-(-height // 4), -(-width // 4), 1)))
    return np.clip(base + blocks[:height, :width], 0, 255).astype(np.uint8)


def _style() -> np.ndarray:
    blocks = np.random.default_rng(7).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((6, 6, 1), dtype=np.uint8))


def _truncated_jpeg(path: Path) -> Path:
    buffer = io.BytesIO()
    Image.fromarray(_photo(40, 40, 9)).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    return path


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("network") / "vgg.mat"
    write_vgg_mat(path, channels=CHANNELS, tamper=_he_scaled)
    return path


@pytest.fixture(scope="module")
def vgg(network: Path) -> VggWeights:
    return load_vgg(network)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """Four good images (one in a subfolder, one a JPEG) and a truncated JPEG, a text file and a hidden file."""
    folder = tmp_path / "data"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(_photo(40, 48, 0)).save(folder / "a.png")
    Image.fromarray(_photo(36, 36, 1)).save(folder / "b.jpg", quality=95)
    Image.fromarray(_photo(50, 34, 2)).save(folder / "c.png")
    Image.fromarray(_photo(33, 45, 3)).save(folder / "sub" / "d.png")
    _truncated_jpeg(folder / "broken.jpg")
    (folder / "readme.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"ignored")
    return folder


# ------------------------------------------------------------------------------------------------ settings and data


def test_total_steps() -> None:
    assert TrainConfig(epochs=2, batch_size=2).total_steps(5) == 5  # ceil(2 * 5 / 2)
    assert TrainConfig(epochs=1, batch_size=4).total_steps(6) == 2  # the last batch rounded up
    assert TrainConfig(epochs=3, batch_size=4, steps=7).total_steps(1000) == 7


@pytest.mark.parametrize(
    ("changes", "setting", "mention"),
    [
        ({"image_size": 0}, "image_size", "is 0"),
        ({"batch_size": 0}, "batch_size", "is 0"),
        ({"steps": 0}, "steps", "is 0"),
        ({"style_weight": -1.0}, "style_weight", "is -1.0"),
        ({"tv_weight": float("nan")}, "tv_weight", "is nan"),
        ({"content_weight": 0.0, "style_weight": 0.0, "tv_weight": 0.0}, "content_weight", "nothing to learn"),
        ({"learning_rate": 0.0}, "learning_rate", "positive"),
        ({"content_layers": ()}, "content_layers", "empty"),
        ({"style_layers": ("relu1_2", "relu1_2")}, "style_layers", "twice"),
        ({"style_layers": ("relu9_9",)}, "style_layers", "relu9_9"),
        ({"pooling": "median"}, "pooling", "median"),
        ({"residual_blocks": -1}, "residual_blocks", "is -1"),
        ({"style_layer_weight_exp": 0.0}, "style_layer_weight_exp", "positive"),
    ],
)
def test_config_validation(vgg: VggWeights, changes: dict, setting: str, mention: str) -> None:
    """Each bad setting is refused by name (the command turns the name into its flag) with what is wrong."""
    with pytest.raises(NeuralStyleError, match=mention) as info:
        TrainConfig(**changes).validate(vgg.layer_names)
    assert info.value.setting == setting
    assert str(info.value).startswith(setting)


def test_scan_skips_and_counts_unreadable_files(data: Path) -> None:
    Image.fromarray(_photo(20, 20, 4)).save(data / "e.tif")  # Pillow reads TIFF, tf.io.decode_image does not
    folder = scan_images(data)
    assert [Path(p).relative_to(data).as_posix() for p in folder.paths] == ["a.png", "b.jpg", "c.png", "sub/d.png"]
    skipped = {Path(p).name: reason for p, reason in folder.skipped}
    assert sorted(skipped) == ["broken.jpg", "e.tif", "readme.txt"]
    assert "TIFF" in skipped["e.tif"]


def test_scan_errors(tmp_path: Path) -> None:
    with pytest.raises(NeuralStyleError, match="does not exist"):
        scan_images(tmp_path / "none")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NeuralStyleError, match="not a directory"):
        scan_images(tmp_path / "file")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NeuralStyleError, match="no files"):
        scan_images(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    _truncated_jpeg(tmp_path / "bad" / "x.jpg")
    (tmp_path / "bad" / "y.txt").write_text("x")
    with pytest.raises(NeuralStyleError, match="none of its 2 files"):
        scan_images(tmp_path / "bad")


def test_dataset_batches_and_skips_what_fails_to_decode(data: Path) -> None:
    """Batches of square crops in 0..255; a corrupt file that reaches the pipeline is dropped, not fatal."""
    paths = [*scan_images(data).paths, str(data / "readme.txt")]
    batches = [b.numpy() for b in make_dataset(paths, SIZE, 2, seed=3).take(6)]
    assert all(b.shape == (2, SIZE, SIZE, 3) and b.dtype == np.float32 for b in batches)
    assert all(b.min() >= 0 and b.max() <= 255 for b in batches)
    again = [b.numpy() for b in make_dataset(paths, SIZE, 2, seed=3).take(6)]
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))  # the seed fixes order and crops


def test_center_crops(data: Path) -> None:
    crops = center_crops([str(data / "c.png")], 16)  # 34 x 50: the middle 34 x 34 square, resized
    assert crops.shape == (1, 16, 16, 3)
    assert crops.dtype == np.float32


def test_check_model_file(tmp_path: Path) -> None:
    (tmp_path / "m.keras").write_bytes(b"PK not really")
    with pytest.raises(NeuralStyleError, match="not a .keras model file"):
        check_model_file(tmp_path / "m.keras")


# ------------------------------------------------------------------------------------------------ training


def _batch() -> np.ndarray:
    return np.stack([_photo(SIZE, SIZE, 0), _photo(SIZE, SIZE, 1)]).astype(np.float32)


def test_training_lowers_the_loss(vgg: VggWeights) -> None:
    """16 Adam steps on one batch with the default loss layers: the total loss falls to well under half."""
    config = TrainConfig(image_size=SIZE, batch_size=2, base_filters=4, residual_blocks=1, seed=0)
    trainer = Trainer(vgg, _style().astype(np.float32), config)
    batch = _batch()
    records = [trainer.train_step(batch) for _ in range(16)]  # each reports the loss before its update
    assert [r.step for r in records] == list(range(1, 17))
    first, last = records[0].losses, records[-1].losses
    assert first["total"] == pytest.approx(first["content"] + first["style"] + first["tv"], rel=1e-5)
    assert last["total"] < 0.5 * first["total"], [r.losses["total"] for r in records]
    assert all(np.isfinite(r.losses["total"]) for r in records)


def test_checkpoint_restores_model_optimizer_and_step(vgg: VggWeights, tmp_path: Path) -> None:
    config = TrainConfig(image_size=SIZE, batch_size=2, base_filters=4, residual_blocks=1, seed=0, **SHALLOW)
    style = _style().astype(np.float32)
    trainer = Trainer(vgg, style, config)
    batches = [_batch(), _batch()[::-1]]
    list(trainer.train(batches, 2))
    manager = tf.train.CheckpointManager(trainer.checkpoint, tmp_path, max_to_keep=1)
    manager.save(checkpoint_number=2)

    resumed = Trainer(vgg, style, TrainConfig(**{**config.__dict__, "seed": 1}))  # other initial weights
    resumed.checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    assert int(resumed.step.numpy()) == 2
    for a, b in zip(trainer.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert int(resumed.optimizer.iterations.numpy()) == 2
    for a, b in zip(trainer.optimizer.variables, resumed.optimizer.variables, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # Adam's moments too
    assert list(resumed.train(batches, 2)) == []  # already there
    losses = trainer.losses(_batch())
    assert losses["total"].shape == (2,)  # per image
    np.testing.assert_allclose(losses["total"], losses["content"] + losses["style"] + losses["tv"], rtol=1e-5)


def test_trainer_rejects_unknown_layers(vgg: VggWeights) -> None:
    with pytest.raises(NeuralStyleError, match="relu4_9"):
        Trainer(vgg, _style().astype(np.float32), TrainConfig(content_layers=("relu4_9",)))


# ------------------------------------------------------------------------------------------------ neural-style-train


def _events(directory: Path) -> dict[str, list[int]]:
    """{tag: steps} of the TensorBoard event files in ``directory``."""
    tags: dict[str, list[int]] = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    return tags


def test_train_command_trains_resumes_and_writes_a_model(
    network: Path, data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEURAL_STYLE_CACHE", str(tmp_path / "cache"))
    style = tmp_path / "style.png"
    Image.fromarray(_style()).save(style)
    model, board = tmp_path / "m.keras", tmp_path / "board"
    args = [
        "neural-style-train",
        f"--network={network}",
        f"--style={style}",
        f"--data={data}",
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
    assert any("skipping" in line and "broken.jpg" in line for line in warnings)
    assert "neural-style-train: warning: skipped 2 of 6 files" in err  # the broken JPEG and the text file
    assert "Step      3/3" in out and "steps/s" in out and "ETA" in out
    assert f"Wrote {model}" in out
    checkpoints = tmp_path / "m_checkpoints"
    assert sorted(p.name for p in checkpoints.glob("*.index")) == ["ckpt-2.index", "ckpt-3.index"]
    image = _photo(21, 30, 5).astype(np.float32)
    assert apply_transformer(load_transformer(model), image).shape == image.shape
    tags = _events(board)
    assert tags["loss/total"] == [1, 2, 3] and tags["content"] == [0] and tags["stylized"] == [2, 3]

    before = hashlib.sha256(model.read_bytes()).hexdigest()
    train_cli.main([*args, "--steps=4", "--overwrite"])
    out, _ = capsys.readouterr()
    assert f"Resuming from step 3 ({checkpoints / 'ckpt-3'})" in out
    assert "Step      4/4" in out and "Step      1/" not in out
    assert hashlib.sha256(model.read_bytes()).hexdigest() != before
    assert sorted(p.name for p in checkpoints.glob("*.index"))[-1] == "ckpt-4.index"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")) == []

    with pytest.raises(SystemExit) as info:  # a checkpoint made with other settings
        train_cli.main([*args, "--steps=5", "--overwrite", "--base_filters=8"])
    assert info.value.code == 2
    assert "--base_filters" in capsys.readouterr().err.splitlines()[-1]  # the fingerprint names the setting


@pytest.fixture(scope="module")
def import_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("probe")
    (directory / "sitecustomize.py").write_text(_PROBE)
    return directory


def _bad_data(root: Path) -> list[str]:
    (root / "bad").mkdir()
    _truncated_jpeg(root / "bad" / "x.jpg")
    return ["--data=bad"]


def _exists(root: Path) -> list[str]:
    (root / "m.keras").write_bytes(b"old")
    return []


def _checkpoint_dir_is_file(root: Path) -> list[str]:
    (root / "ckpt").write_text("x")
    return ["--checkpoint_dir=ckpt"]


BAD_TRAIN = [
    ("style-missing", lambda r: ["--style=none.png"], "none.png"),
    ("data-missing", lambda r: ["--data=nowhere"], "nowhere"),
    ("all-bad-data", _bad_data, "none of its 1 files"),
    ("model-exists", _exists, "already exists"),
    ("epochs-and-steps", lambda r: ["--epochs=1"], "--epochs and --steps"),
    ("unknown-layer", lambda r: ["--style_layers=relu1_2,relu7_1"], "relu7_1"),
    ("checkpoint-dir-file", _checkpoint_dir_is_file, "--checkpoint_dir"),
    ("tensorboard-parent", lambda r: ["--tensorboard_dir=no/such/dir"], "--tensorboard_dir"),
    ("network-missing", lambda r: ["--network=none.mat"], "none.mat"),
]


@pytest.mark.parametrize(("make", "mention"), [c[1:] for c in BAD_TRAIN], ids=[c[0] for c in BAD_TRAIN])
def test_train_bad_input_is_one_error_line(network: Path, tmp_path: Path, import_probe: Path, make, mention) -> None:
    """Exit 2, one error line naming the culprit, nothing written, and TensorFlow never imported."""
    (tmp_path / "data").mkdir()
    Image.fromarray(_photo(40, 40, 0)).save(tmp_path / "data" / "a.png")
    Image.fromarray(_style()).save(tmp_path / "style.png")
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
    args = [f"--network={network}", "--style=style.png", "--data=data", "--model_out=m.keras", "--steps=2", *extra]
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
