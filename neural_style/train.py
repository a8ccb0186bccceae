"""Training a feed-forward transformer (Johnson et al. 2016) with neural-style's VGG losses.

The transformer (:mod:`neural_style.transformer`) learns to stylize any image in one pass: on batches of photos it
minimises ``content_weight x content + style_weight x style + tv_weight x tv`` where the content term compares its
output's VGG activations with the photo's, the style term compares their Gram matrices with one style image's, and
the tv term smooths the output. The loss is :class:`neural_style.objective.Objective` on the frozen
:class:`neural_style.vgg.VggFeatures`; the settings are :class:`neural_style.config.TrainConfig`.

* :func:`scan_images` checks a folder of training images with Pillow and reports the files it skips; it needs no
  TensorFlow, so a command can check its inputs in a fraction of a second. TensorFlow is imported by the functions
  and classes that need it.
* :func:`make_dataset` is the ``tf.data`` pipeline: parallel decode, resize and random crop, shuffle, prefetch.
* :class:`Trainer` holds the model, the Adam optimizer, the step counter (all three in ``trainer.checkpoint``, a
  ``tf.train.Checkpoint``) and one compiled training step; :meth:`Trainer.train` yields a :class:`TrainProgress`
  after every step. Nothing here prints or writes files: the caller decides what to checkpoint, log and save.

Default weights: the losses here are mean squares (content: over H W C; style: over the C x C entries of Grams
normalised by H W C, with the style layers weighing 1/4 each; tv: over the pixels of the 0..255 image), which is the
normalisation of Johnson's ``fast-neural-style`` code. Its defaults, content 1 and style 5 on each of four layers,
become content 1 and style 20 here; its tv strength 1e-6 on a sum over a batch of four 256 px images becomes about 1
on a mean. Only the ratios matter to Adam. They are a starting point for the real VGG-19, not tuned values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from neural_style.errors import NeuralStyleError

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from neural_style.config import TrainConfig
    from neural_style.matconvnet import VggWeights

__all__ = [
    "FILES_PER_WORKER",
    "ImageFolder",
    "TrainProgress",
    "Trainer",
    "center_crops",
    "make_dataset",
    "scan_images",
    "shard_policy",
]

# Formats tf.io.decode_image reads (MPO is how Pillow names many camera JPEGs).
_DECODABLE = frozenset({"JPEG", "MPO", "PNG", "GIF", "BMP", "WEBP"})
# Sharding by file needs this many files per worker at least; with fewer, the workers shard the data instead.
FILES_PER_WORKER = 10


@dataclasses.dataclass(frozen=True)
class ImageFolder:
    """The training images of a folder.

    Attributes:
        paths: the files that decode, sorted.
        skipped: (path, reason) of every file that does not.
    """

    paths: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]


def _check_image(path: str) -> str | None:
    """None when ``path`` is an image tf.io.decode_image reads, else why not (decodes it in full, at reduced scale)."""
    try:
        with Image.open(path) as image:
            if image.format not in _DECODABLE:
                return f"{image.format} images are not read by the training pipeline; convert it to JPEG or PNG"
            image.draft("RGB", (64, 64))  # JPEG: a scaled decode still reads every byte of the file
            image.load()
            if image.width < 1 or image.height < 1:
                return "the image is empty"
    except PermissionError:
        return "permission denied"
    except Image.DecompressionBombError:
        return "too many pixels"
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        return " ".join(str(e).split()) or type(e).__name__
    return None


def scan_images(directory: str | os.PathLike[str], *, what: str = "training folder", workers: int = 2) -> ImageFolder:
    """Finds the training images in a folder and its subfolders (hidden files and folders are left out).

    Every file is decoded once with Pillow; those that fail, or that are in a format the ``tf.data`` decoder does not
    read (JPEG, PNG, GIF, BMP and WebP are read), are skipped and reported.

    Args:
        directory: the folder.
        what: how to name it in errors.
        workers: threads decoding at once.

    Returns:
        The readable files and the skipped ones with the reason.

    Raises:
        NeuralStyleError: the folder is missing, or holds no readable image.
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise NeuralStyleError(
            f"{what} {directory} "
            + ("is not a directory" if os.path.exists(directory) else "does not exist")
            + "; give a folder of training images"
        )
    if not os.access(directory, os.R_OK | os.X_OK):
        raise NeuralStyleError(f"{what} {directory} cannot be read (permission denied); fix its permissions")
    files: list[str] = []
    for root, dirs, names in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(os.path.join(root, n) for n in sorted(names) if not n.startswith("."))
    if not files:
        raise NeuralStyleError(f"{what} {directory} holds no files; put training images (JPEG or PNG) in it")
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        reasons = list(pool.map(_check_image, files))
    paths = tuple(f for f, reason in zip(files, reasons, strict=True) if reason is None)
    skipped = tuple((f, reason) for f, reason in zip(files, reasons, strict=True) if reason is not None)
    if not paths:
        first, reason = skipped[0]
        raise NeuralStyleError(
            f"{what} {directory}: none of its {len(files)} files is a readable image (e.g. {first}: {reason})"
        )
    return ImageFolder(paths, skipped)


def _load_crop(path: tf.Tensor, seed: tf.Tensor, size: int) -> tf.Tensor:
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False, dtype=tf.uint8)
    image = tf.cast(image, tf.float32)
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = size / tf.reduce_min(shape)
    # The shorter side becomes exactly `size`; rounding must not leave the longer side short of it.
    new_size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), size)
    image = tf.image.resize(image, new_size, method="bilinear", antialias=True)
    image = tf.image.stateless_random_crop(image, (size, size, 3), seed=seed)
    return tf.clip_by_value(image, 0.0, 255.0)


def shard_policy(files: int, workers: int) -> str:
    """How :func:`make_dataset` splits ``files`` between ``workers``: ``"file"`` or ``"data"``.

    By file, each worker reads its own share of the files (every ``workers``-th), so no image is decoded twice: the
    choice for large folders. With fewer than :data:`FILES_PER_WORKER` files per worker, shares would be uneven (a
    worker with fewer files shows each of them more often), so every worker reads every file and keeps every
    ``workers``-th crop of one common stream instead (by data), at the price of decoding everything everywhere.
    """
    return "file" if files >= FILES_PER_WORKER * workers else "data"


def make_dataset(
    paths: Sequence[str],
    image_size: int,
    batch_size: int,
    *,
    seed: int | None = None,
    shuffle: bool = True,
    shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """An endless ``tf.data`` pipeline of training batches.

    Files are shuffled (reshuffled every pass), decoded in parallel, resized so that their shorter side is
    ``image_size`` and randomly cropped to a square; files that fail to decode after all are dropped with a warning
    in TensorFlow's log.

    Args:
        paths: image files, e.g. ``scan_images(...).paths``.
        image_size: side of the crops.
        batch_size: images per batch.
        seed: makes the order and the crops reproducible.
        shuffle: False keeps the files in order.
        shard: (workers, this worker's index): the worker's share of the images, split as :func:`shard_policy`
            says (the shares are disjoint when ``seed`` is given, as every worker must then draw the same stream);
            None: all of them.

    Returns:
        A dataset of float32 batches [batch_size, image_size, image_size, 3], RGB in 0..255.
    """
    import tensorflow as tf

    if not paths:
        raise NeuralStyleError("no training images")
    workers, index = shard or (1, 0)
    by_file = shard_policy(len(paths), workers) == "file"
    if by_file:
        paths = list(paths)[index::workers]
    files = tf.data.Dataset.from_tensor_slices(list(paths))
    if shuffle:
        files = files.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    # Stateless crops, one seed pair per image, keep the parallel map reproducible.
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    dataset = tf.data.Dataset.zip((files.repeat(), seeds))
    dataset = dataset.map(
        tf.autograph.experimental.do_not_convert(lambda path, pair: _load_crop(path, pair, image_size)),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=seed is not None,
    )
    dataset = dataset.ignore_errors(log_warning=True)
    if workers > 1 and not by_file:
        dataset = dataset.shard(workers, index)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def center_crops(paths: Iterable[str], image_size: int) -> np.ndarray:
    """The central squares of images, resized to ``image_size``: [N, image_size, image_size, 3] float32 in 0..255.

    For sample images that stay the same from one run to the next (e.g. in TensorBoard).
    """
    from neural_style.image_io import read_image, resize

    crops = []
    for path in paths:
        image = read_image(path, what="training image")
        height, width = image.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        crops.append(resize(image[top : top + side, left : left + side], (image_size, image_size)))
    return np.stack(crops).astype(np.float32)


def _resize_style(style: np.ndarray, longer_side: int) -> np.ndarray:
    from neural_style.image_io import resize

    height, width = style.shape[:2]
    scale = longer_side / max(height, width)
    return resize(style, (max(1, round(height * scale)), max(1, round(width * scale))))


@dataclasses.dataclass(frozen=True)
class TrainProgress:
    """What one training step did.

    Attributes:
        step: steps taken so far (after this one), counting those before a resume.
        losses: batch means of the weighted terms: ``content``, ``style``, ``tv`` and ``total``.
    """

    step: int
    losses: Mapping[str, float]


class Trainer:
    """A transformer, its optimizer and step counter, the loss objective, and one compiled training step.

    ``trainer.checkpoint`` (a ``tf.train.Checkpoint`` of ``model``, ``optimizer`` and ``step``) saves and restores
    all of the training state, e.g. through :class:`neural_style.run_state.RunState`.

    With a ``tf.distribute`` strategy (e.g. ``MultiWorkerMirroredStrategy``) everything is built in its scope and
    a step takes a distributed batch (``strategy.distribute_datasets_from_function``) of ``config.batch_size`` images
    per replica: each replica's gradient of its batch mean, divided by the number of replicas, is summed across
    them by the optimizer, so a step follows the mean over the global batch of ``batch_size`` x replicas images.
    """

    def __init__(
        self,
        weights: VggWeights,
        style_image: np.ndarray,
        config: TrainConfig,
        *,
        model: keras.Model | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ) -> None:
        """Builds the networks and the style targets.

        Args:
            weights: the loss network's parameters, from :func:`neural_style.matconvnet.load_vgg`.
            style_image: [H, W, 3] RGB in 0..255; resized so that its longer side is ``config.style_size``.
            config: the settings.
            model: a transformer to train further; None builds a new one from the config (in the strategy's scope).
            strategy: spreads each step over its replicas; None: the default device.

        Raises:
            NeuralStyleError: a setting out of range or a layer the network does not have.
        """
        import keras
        import tensorflow as tf

        from neural_style.objective import Objective
        from neural_style.transformer import build_transformer

        config.validate(weights.layer_names)
        self.config = config
        self.strategy = strategy
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            self.model = model or build_transformer(
                base_filters=config.base_filters, residual_blocks=config.residual_blocks, seed=config.seed
            )
            self.optimizer = keras.optimizers.Adam(config.learning_rate)
            self.optimizer.build(self.model.trainable_variables)  # so that a checkpoint restores its slots at once
            # Counted once per step, however many replicas take it.
            self.step = tf.Variable(
                0, dtype=tf.int64, trainable=False, name="step", aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA
            )
            self.checkpoint = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, step=self.step)

            objective = Objective.from_settings(weights, config.loss_settings, name="loss_net")
            style = _resize_style(np.asarray(style_image, np.float32), config.style_size or config.image_size)
            self.objective = objective.with_targets(styles=[style])
        # No AutoGraph: the steps have no tensor-dependent Python control flow, and unconverted code traces faster.
        if strategy is None:
            self._train_step = tf.function(self._step, reduce_retracing=True, autograph=False)
        else:
            self._train_step = tf.function(self._replicated_step, reduce_retracing=True, autograph=False)
        self._compute_losses = tf.function(self._losses, reduce_retracing=True, autograph=False)

    def _step(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        import tensorflow as tf

        from neural_style.gradients import value_and_gradient

        # The photos' activations are only needed at the content layers, which are usually shallower.
        targets = self.objective.content_features(images)
        variables = self.model.trainable_variables
        terms, gradients = value_and_gradient(
            lambda: self.objective(self.model(images, training=True), content_targets=targets), variables, mean=True
        )
        replicas = tf.distribute.get_replica_context().num_replicas_in_sync
        if replicas > 1:  # the optimizer sums the replicas' gradients: their mean is that of the global batch
            gradients = [gradient / replicas for gradient in gradients]
        self.optimizer.apply_gradients(zip(gradients, variables, strict=True))
        self.step.assign_add(1)
        return {key: tf.reduce_mean(value) for key, value in terms.items()}

    def _replicated_step(self, images: Any) -> dict[str, tf.Tensor]:
        import tensorflow as tf

        assert self.strategy is not None
        terms = self.strategy.run(self._step, args=(images,))
        # Every replica's batch is as large, so the mean of their means is the global batch's.
        return {
            key: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None) for key, value in terms.items()
        }

    def _losses(self, images: tf.Tensor) -> Mapping[str, tf.Tensor]:
        targets = self.objective.content_features(images)
        return self.objective(self.model(images, training=False), content_targets=targets)

    def train_step(self, images: Any) -> TrainProgress:
        """One Adam step on a batch [N, H, W, 3] (RGB, 0..255), or with a strategy a distributed batch of them; the
        losses are those before the update."""
        import tensorflow as tf

        values = self._train_step(images if self.strategy is not None else tf.convert_to_tensor(images, tf.float32))
        return TrainProgress(int(self.step.numpy()), {key: float(value) for key, value in values.items()})

    def losses(self, images: np.ndarray | tf.Tensor) -> dict[str, np.ndarray]:
        """The weighted loss terms of each image of a batch, without training: {"content", ..., "total"}: [N]."""
        import tensorflow as tf

        values = self._compute_losses(tf.convert_to_tensor(images, tf.float32))
        return {key: np.asarray(value) for key, value in values.items()}

    def train(self, batches: Iterable[Any], total_steps: int) -> Iterator[TrainProgress]:
        """Trains until ``step`` reaches ``total_steps``, yielding after every step.

        Args:
            batches: e.g. :func:`make_dataset`; it must not run out before the last step.
            total_steps: the step to stop at, counting steps taken before (a resumed run continues from ``step``).
        """
        iterator = iter(batches)
        while int(self.step.numpy()) < total_steps:
            try:
                batch = next(iterator)
            except StopIteration:
                raise NeuralStyleError(
                    f"the training images ran out at step {int(self.step.numpy())} of {total_steps}", usage=False
                ) from None
            yield self.train_step(batch)
