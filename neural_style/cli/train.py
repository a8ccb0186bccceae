"""The ``neural-style-train`` command: trains a feed-forward transformer network (Johnson et al. 2016) on a folder
of photos to reproduce one style.

Its checkpoints (model, optimizer, step) are a :class:`neural_style.run_state.RunState` with a fingerprint of the
settings, so running the same command again resumes, and a run with other settings is refused. Optional TensorBoard
logs; a ``.keras`` file at the end. Every input is checked before TensorFlow is imported: a mistake costs a fraction
of a second and one line on stderr (exit status 2); a run that fails exits 1.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from absl import flags

from neural_style.cli import distribute, report
from neural_style.cli.command import (
    Command,
    Interruption,
    check_directory_target,
    check_distinct,
    check_target,
    define_network,
    flag_settings,
    interruptible,
    network_path,
    require,
    start_tensorflow,
)
from neural_style.cli.options import define_loss_flags
from neural_style.cli.saved_run import train_fingerprint
from neural_style.config import TrainConfig
from neural_style.errors import NeuralStyleError

__all__ = ["flag_values", "main", "train_config"]

_USAGE = """Usage: neural-style-train --style IMAGE --data DIR --model_out MODEL.keras [flags]

Trains a feed-forward transformer network (Johnson et al. 2016) to apply the style of IMAGE to any photo, with the
VGG losses of neural-style. Run the same command again to resume from the latest checkpoint.
"""

# The TrainConfig settings given by the flag of the same name, as they are (the others are converted).
_CONFIG_FLAGS = (
    *("image_size", "batch_size", "steps", "content_weight", "style_weight", "tv_weight", "learning_rate"),
    *("style_layer_weight_exp", "style_size", "pooling", "base_filters", "residual_blocks", "seed"),
)
# Flags that must be at least 1 (the TrainConfig checks its own settings).
_COUNT_FLAGS = ("checkpoint_every", "keep_checkpoints", "print_every", "summary_every")


def flag_values() -> flags.FlagValues:
    """The flags of ``neural-style-train``, on a fresh FlagValues."""
    fv = flags.FlagValues()
    defaults = TrainConfig()
    define_network(fv, __name__, " for the losses")
    flags.DEFINE_string("style", None, "Style image.", flag_values=fv)
    flags.DEFINE_string(
        "data", None, "Folder of training images (searched recursively; JPEG, PNG, ...).", flag_values=fv
    )
    flags.DEFINE_string("model_out", None, "Where to write the trained network, a .keras file.", flag_values=fv)
    flags.DEFINE_integer("image_size", defaults.image_size, "Side of the square training crops.", flag_values=fv)
    flags.DEFINE_integer("batch_size", defaults.batch_size, "Images per step.", flag_values=fv)
    flags.DEFINE_integer(
        "epochs", None, f"Passes over the training images (default {defaults.epochs}; or give --steps).", flag_values=fv
    )
    flags.DEFINE_integer("steps", None, "Training steps in all (instead of --epochs).", flag_values=fv)
    define_loss_flags(fv, __name__, defaults)
    flags.DEFINE_float("learning_rate", defaults.learning_rate, "Adam learning rate.", flag_values=fv)
    flags.DEFINE_integer(
        "style_size", None, "The style image's longer side is resized to this (default --image_size).", flag_values=fv
    )
    flags.DEFINE_integer("base_filters", defaults.base_filters, "Transformer width (the paper's 32).", flag_values=fv)
    flags.DEFINE_integer(
        "residual_blocks", defaults.residual_blocks, "Transformer residual blocks (the paper's 5).", flag_values=fv
    )
    flags.DEFINE_string(
        "checkpoint_dir",
        None,
        "Checkpoints (model, optimizer, step); a run finds the latest one there and resumes from it. "
        "Default: beside --model_out, named after it with _checkpoints.",
        flag_values=fv,
    )
    flags.DEFINE_integer(
        "checkpoint_every", 500, "Write a checkpoint every this many steps (and at the end).", flag_values=fv
    )
    flags.DEFINE_integer("keep_checkpoints", 3, "How many recent checkpoints to keep.", flag_values=fv)
    flags.DEFINE_string(
        "tensorboard_dir", None, "Write TensorBoard loss scalars and sample images here.", flag_values=fv
    )
    flags.DEFINE_integer("print_every", 10, "Print a progress line every this many steps.", flag_values=fv)
    flags.DEFINE_integer("summary_every", 10, "Write TensorBoard scalars every this many steps.", flag_values=fv)
    flags.DEFINE_integer("seed", None, "Seed of the initial weights, shuffling and crops.", flag_values=fv)
    flags.DEFINE_boolean("overwrite", False, "Replace --model_out if it exists.", flag_values=fv)
    distribute.define_flags(fv, __name__, strategy=True)
    return fv


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``neural-style-train``; ``argv`` defaults to ``sys.argv``."""
    command = Command("neural-style-train", flag_values(), _USAGE, __name__)
    command.run(argv, lambda _: _train(command))


# ------------------------------------------------------------------------------------------------------ checks


def train_config(fv: flags.FlagValues) -> TrainConfig:
    """The training settings of the flags (not yet checked against the network)."""
    if fv.epochs is not None and fv.steps is not None:
        raise NeuralStyleError("--epochs and --steps both set the length of training; give one of them")
    return TrainConfig(
        **flag_settings(fv, _CONFIG_FLAGS),
        epochs=TrainConfig().epochs if fv.epochs is None else fv.epochs,
        content_layers=tuple(fv.content_layers or ()),
        style_layers=tuple(fv.style_layers or ()),
    )


def _check_model_out(path: str, overwrite: bool) -> None:
    if not path.endswith(".keras"):
        raise NeuralStyleError(f"--model_out {path} must end in .keras (the Keras model format)")
    check_target(path, overwrite=overwrite, what="--model_out", example="model.keras")


# ------------------------------------------------------------------------------------------------------ training


class _TrainReport:
    """Progress lines (steps/s, images/s, ETA) and TensorBoard scalars and sample images of a training run."""

    def __init__(
        self,
        fv: flags.FlagValues,
        trainer: Any,
        samples: Any,
        steps: tuple[int, int],
        batch_size: int,
        *,
        writes: bool = True,
    ) -> None:
        """Args:
        fv: the command's flags.
        trainer: the :class:`neural_style.train.Trainer`.
        samples: [N, S, S, 3] images stylized for TensorBoard.
        steps: (the step training starts from, the last step).
        batch_size: images per step (over all replicas).
        writes: whether this process writes TensorBoard records (only the chief of several workers does).
        """
        import tensorflow as tf

        self.fv, self.trainer, self.samples, self.batch_size = fv, trainer, samples, batch_size
        self.first, self.total = steps
        first = self.first
        self.writer = tf.summary.create_file_writer(fv.tensorboard_dir) if fv.tensorboard_dir and writes else None
        # The rate of the steps since the last line (a window of one line): the ETA follows the latest speed.
        self.clock = report.EtaClock(self.total, time.time(), done=first, window=1)
        if self.writer is not None and first == 0:
            with self.writer.as_default(step=0):
                report.image_summary("content", samples)

    def images(self, step: int) -> None:
        """The stylized sample images at ``step``, for TensorBoard."""
        if self.writer is not None:
            with self.writer.as_default(step=step):
                report.image_summary("stylized", self.trainer.model(self.samples, training=False))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.writer is not None:
            with self.writer.as_default(step=step):
                for key, value in values.items():
                    report.scalar_summary(key, value)

    def step(self, step: int, losses: dict[str, float]) -> None:
        """Reports the losses of ``step``: TensorBoard every --summary_every, a line every --print_every."""
        if step % self.fv.summary_every == 0 or step == self.total:
            self.scalars(step, {f"loss/{key}": value for key, value in losses.items()})
        if step % self.fv.print_every == 0 or step == self.total or step == self.first + 1:
            self.clock.tick(step)
            terms = " ".join(f"{key} {losses[key]:.4g}" for key in ("content", "style", "tv"))
            line = f"Step {step:6d}/{self.total}  loss {losses['total']:.4g} ({terms})"
            if step == self.first + 1:
                line += f"  first step (with compilation) {self.clock.seconds:.1f} s"
            else:
                rate, eta = self.clock.rate, report.hms(self.clock.remaining)
                line += f"  {rate:.3g} steps/s {rate * self.batch_size:.3g} images/s  ETA {eta}"
                self.scalars(step, {"steps_per_second": rate})
            print(line, flush=True)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()


def _train(cmd: Command) -> None:
    fv = cmd.flags
    start = time.time()
    style_path = require(fv, "style", "the style image")
    data_dir = require(fv, "data", "a folder of training images")
    model_out = require(fv, "model_out", "where to write the trained network (.keras)")
    config = train_config(fv)
    config.validate()
    for name in _COUNT_FLAGS:
        value = fv[name].value
        if value is None or value < 1:
            raise NeuralStyleError(f"--{name} is {value}; it must be at least 1")
    cluster = distribute.cluster_of(fv, fv.strategy)
    chief = cluster is None or cluster.is_chief
    network_given = fv.network if fv["network"].present else None
    check_distinct([("--style image", style_path), ("--network file", network_given)], [("--model_out", model_out)])
    _check_model_out(model_out, fv.overwrite)
    checkpoint_dir = fv.checkpoint_dir or os.path.splitext(model_out)[0] + "_checkpoints"
    # The directories the command owns: created with their missing parents, once every input has been checked.
    owned = [checkpoint_dir, *([fv.tensorboard_dir] if fv.tensorboard_dir else [])]
    check_directory_target(checkpoint_dir, "checkpoint_dir")
    if fv.tensorboard_dir:
        check_directory_target(fv.tensorboard_dir, "tensorboard_dir")

    from neural_style.image_io import read_image
    from neural_style.matconvnet import default_cache_dir, load_vgg
    from neural_style.train import scan_images

    style = read_image(style_path, what="--style image")
    network = network_path(fv)
    vgg = load_vgg(network, cache_dir=default_cache_dir())
    config.validate(vgg.layer_names)
    folder = scan_images(data_dir, what="--data")
    for path, reason in folder.skipped[:10]:
        cmd.warn(f"skipping {path}: {reason}")
    if folder.skipped:
        cmd.warn(
            f"skipped {len(folder.skipped)} of {len(folder.paths) + len(folder.skipped)} files in --data {data_dir}"
        )

    start_tensorflow()  # every input is good: from here on TensorFlow is needed
    # First of all TensorFlow's work: a multi-worker strategy configures the runtime as it starts.
    strategy = distribute.make_strategy(fv.strategy, cluster, fv.worker_timeout, cmd.prog)
    replicas = 1 if strategy is None else strategy.num_replicas_in_sync
    total = config.total_steps(len(folder.paths), replicas)
    settings = train_fingerprint(config, style_path, vgg.md5)
    hint = f"the last checkpoint is in {checkpoint_dir}: start every worker again to resume from it"
    with distribute.lost_workers(cluster, fv.worker_timeout, hint):
        if cluster is not None:
            assert strategy is not None
            run = {"--data images": len(folder.paths), "steps": total, "replicas": replicas}
            distribute.check_agreement(strategy, cluster, {**settings, **run})
        if chief:
            for directory in owned:
                try:
                    os.makedirs(directory, exist_ok=True)
                except OSError as e:
                    raise NeuralStyleError(f"could not create {directory}: {e.strerror or e}", usage=False) from None
        step = _run(
            cmd, config, (style, style_path, vgg, network), folder, (checkpoint_dir, model_out), strategy, cluster
        )
    if chief:
        print(f"Wrote {model_out} after {step} steps in {report.hms(time.time() - start)}")
    else:
        print(f"Done after {step} steps in {report.hms(time.time() - start)}; the chief writes {model_out}")


def _run(
    cmd: Command,
    config: TrainConfig,
    loss_inputs: tuple[Any, str, Any, str],
    folder: Any,
    paths: tuple[str, str],
    strategy: Any,
    cluster: Any,
) -> int:
    """Builds the trainer (resuming from the latest checkpoint), trains to the last step and writes the model; with
    several workers only the chief writes (checkpoints, TensorBoard, the model). Returns the last step."""
    from neural_style.run_state import RunState
    from neural_style.train import Trainer, center_crops, make_dataset, shard_policy
    from neural_style.transformer import save_transformer

    fv = cmd.flags
    style, style_path, vgg, network = loss_inputs
    checkpoint_dir, model_out = paths
    chief = cluster is None or cluster.is_chief
    replicas = 1 if strategy is None else strategy.num_replicas_in_sync
    total = config.total_steps(len(folder.paths), replicas)
    trainer = Trainer(vgg, style, config, strategy=strategy)
    state = RunState(
        checkpoint_dir,
        {"train": trainer.checkpoint},
        train_fingerprint(config, style_path, vgg.md5),
        max_to_keep=fv.keep_checkpoints,
        checkpoint_name="ckpt",
    )
    if state.restore() is not None:
        print(f"Resuming from step {int(trainer.step.numpy())} ({state.latest})")
    first = int(trainer.step.numpy())
    if cluster is not None:
        distribute.check_agreement(
            strategy,
            cluster,
            {"the step to resume from (--checkpoint_dir must be one directory every worker reads)": first},
            what="the saved state",
        )
    # Every worker keeps its state in step; the chief alone writes it (the others' copy would be the same).
    save = state.save if chief else lambda step: None
    samples = center_crops(folder.paths[: min(3, len(folder.paths))], config.image_size)
    global_batch = config.batch_size * replicas
    reporter = _TrainReport(fv, trainer, samples, (first, total), global_batch, writes=chief)
    where = ""
    if cluster is not None:
        policy = shard_policy(len(folder.paths), cluster.size)
        role = "the chief" if chief else f"worker {cluster.rank}"
        where = (
            f" on {cluster.size} workers ({replicas} replicas; this is {role}, images sharded by {policy}), global "
            f"batch {global_batch}"
        )
    elif replicas > 1:
        where = f" on {replicas} replicas, global batch {global_batch}"
    print(
        f"Training to step {total} from step {first}: {len(folder.paths)} images at {config.image_size} px, batch "
        f"{config.batch_size}{where}, style {style_path}, network {network}; checkpoints in {checkpoint_dir}"
    )
    if strategy is None:
        dataset = make_dataset(folder.paths, config.image_size, config.batch_size, seed=config.seed)
    else:

        def shard(context: Any) -> Any:
            shard = (context.num_input_pipelines, context.input_pipeline_id)
            return make_dataset(folder.paths, config.image_size, config.batch_size, seed=config.seed, shard=shard)

        dataset = strategy.distribute_datasets_from_function(shard)
    with interruptible() as interruption:
        step = _loop(fv, trainer, dataset, total, save, reporter, interruption, checkpoint_dir)
        if interruption:
            if step == first:
                raise KeyboardInterrupt
            save(step)
            # Not an error: the work is saved (neural-style's line says the same without "error:").
            print(
                f"neural-style-train: {interruption.reason} at step {step}; saved a checkpoint in {checkpoint_dir}: "
                "run the same command to resume",
                file=sys.stderr,
            )
            sys.exit(130)
    if step > first:
        save(step)
        reporter.images(step)
    reporter.close()
    if chief:
        save_transformer(trainer.model, model_out)
    return step


def _loop(
    fv: flags.FlagValues,
    trainer: Any,
    dataset: Any,
    total: int,
    save: Any,
    reporter: _TrainReport,
    interruption: Interruption,
    checkpoint_dir: str,
) -> int:
    """Trains to step ``total`` or until ``interruption``; returns the last step done."""
    step = reporter.first
    for record in trainer.train(dataset, total):
        step = record.step
        loss = record.losses["total"]
        if not math.isfinite(loss):
            raise NeuralStyleError(
                f"the loss became {loss} at step {step}; lower --learning_rate or the loss weights (the last good "
                f"checkpoint is in {checkpoint_dir})",
                usage=False,
            )
        reporter.step(step, record.losses)
        if interruption:
            break
        if step % fv.checkpoint_every == 0 and step < total:
            save(step)
            reporter.images(step)
    return step
