"""Tests of transformer training (neural_style.train): scanning a folder of images, the data pipeline and its shards
for multi-worker training, and the Trainer's steps and checkpoints.

Training runs on conftest's tiny network (a few channels per block, He-scaled kernels, so that activations stay
finite), a narrow transformer (``base_filters=4``, one residual block) and 32 px images: a step takes
milliseconds. TrainConfig is tested in test_config.py, the ``neural-style-train`` command in test_cli_train.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import TRAIN_SIZE, photo_array, train_style_array, write_truncated_jpeg
from PIL import Image

from neural_style.config import TrainConfig
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import VggWeights, load_vgg
from neural_style.train import Trainer, center_crops, make_dataset, scan_images, shard_policy

# The loss network stops at relu2_2: a quarter of the layers, so the training step compiles faster.
SHALLOW = {"content_layers": ("relu2_2",), "style_layers": ("relu1_2", "relu2_2")}


@pytest.fixture(scope="module")
def vgg(tiny_vgg_file: Path) -> VggWeights:
    return load_vgg(tiny_vgg_file)


# ------------------------------------------------------------------------------------------------ data


def test_scan_skips_and_counts_unreadable_files(photo_folder: Path) -> None:
    Image.fromarray(photo_array(20, 20, 4)).save(
        photo_folder / "e.tif"
    )  # Pillow reads TIFF, tf.io.decode_image does not
    folder = scan_images(photo_folder)
    assert [Path(p).relative_to(photo_folder).as_posix() for p in folder.paths] == [
        "a.png",
        "b.jpg",
        "c.png",
        "sub/d.png",
    ]
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
    write_truncated_jpeg(tmp_path / "bad" / "x.jpg")
    (tmp_path / "bad" / "y.txt").write_text("x")
    with pytest.raises(NeuralStyleError, match="none of its 2 files"):
        scan_images(tmp_path / "bad")


def test_dataset_batches_and_skips_what_fails_to_decode(photo_folder: Path) -> None:
    """Batches of square crops in 0..255; a corrupt file that reaches the pipeline is dropped, not fatal."""
    paths = [*scan_images(photo_folder).paths, str(photo_folder / "readme.txt")]
    batches = [b.numpy() for b in make_dataset(paths, TRAIN_SIZE, 2, seed=3).take(6)]
    assert all(b.shape == (2, TRAIN_SIZE, TRAIN_SIZE, 3) and b.dtype == np.float32 for b in batches)
    assert all(b.min() >= 0 and b.max() <= 255 for b in batches)
    again = [b.numpy() for b in make_dataset(paths, TRAIN_SIZE, 2, seed=3).take(6)]
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))  # the seed fixes order and crops


def test_center_crops(photo_folder: Path) -> None:
    crops = center_crops([str(photo_folder / "c.png")], 16)  # 34 x 50: the middle 34 x 34 square, resized
    assert crops.shape == (1, 16, 16, 3)
    assert crops.dtype == np.float32


# ------------------------------------------------------------------------------------------------ training


def _batch() -> np.ndarray:
    return np.stack([photo_array(TRAIN_SIZE, TRAIN_SIZE, 0), photo_array(TRAIN_SIZE, TRAIN_SIZE, 1)]).astype(np.float32)


@pytest.mark.slow
def test_training_lowers_the_loss(vgg: VggWeights) -> None:
    """16 Adam steps on one batch with the default loss layers: the total loss falls to well under half."""
    config = TrainConfig(image_size=TRAIN_SIZE, batch_size=2, base_filters=4, residual_blocks=1, seed=0)
    trainer = Trainer(vgg, train_style_array().astype(np.float32), config)
    batch = _batch()
    records = [trainer.train_step(batch) for _ in range(16)]  # each reports the loss before its update
    assert [r.step for r in records] == list(range(1, 17))
    first, last = records[0].losses, records[-1].losses
    assert first["total"] == pytest.approx(first["content"] + first["style"] + first["tv"], rel=1e-5)
    assert last["total"] < 0.5 * first["total"], [r.losses["total"] for r in records]
    assert all(np.isfinite(r.losses["total"]) for r in records)


@pytest.mark.slow
def test_checkpoint_restores_model_optimizer_and_step(vgg: VggWeights, tmp_path: Path) -> None:
    config = TrainConfig(image_size=TRAIN_SIZE, batch_size=2, base_filters=4, residual_blocks=1, seed=0, **SHALLOW)
    style = train_style_array().astype(np.float32)
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
        Trainer(vgg, train_style_array().astype(np.float32), TrainConfig(content_layers=("relu4_9",)))


# ------------------------------------------------------------------------------------------------ shards


def test_shards_by_data_interleave_the_common_stream(tmp_path: Path) -> None:
    """With few files, worker k of 2 keeps crops k, k + 2, ... of the stream every worker draws with the seed."""
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(photo_array(20, 24, i)).save(paths[-1])
    assert shard_policy(3, 2) == "data" and shard_policy(20, 2) == "file" and shard_policy(19, 2) == "data"
    whole = [b.numpy() for b in make_dataset(paths, 8, 1, seed=5).take(6)]
    shards = [[b.numpy() for b in make_dataset(paths, 8, 1, seed=5, shard=(2, k)).take(3)] for k in (0, 1)]
    np.testing.assert_array_equal(np.concatenate(shards[0]), np.concatenate(whole[0::2]))
    np.testing.assert_array_equal(np.concatenate(shards[1]), np.concatenate(whole[1::2]))


def test_shards_by_file_read_their_own_files(tmp_path: Path) -> None:
    """With 10 files per worker or more, worker k of 2 reads files k, k + 2, ... only (uniform images: grey 10 i)."""
    paths = []
    for i in range(20):
        paths.append(str(tmp_path / f"{i:02d}.png"))
        Image.new("RGB", (12, 12), (10 * i,) * 3).save(paths[-1])
    for k in (0, 1):
        greys = {int(round(float(b.numpy().mean()))) for b in make_dataset(paths, 8, 1, seed=1, shard=(2, k)).take(40)}
        assert greys == {10 * i for i in range(k, 20, 2)}
