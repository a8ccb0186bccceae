"""The run driver of ``neural-style``: the checks, then one output image (:class:`SingleRun`), a sweep or a video.

:func:`stylize` is the whole command once its flags are parsed: every input checked before TensorFlow starts, then
the run. A single run is made of parts that each do one job: :class:`~neural_style.cli.inputs.Inputs` (the images
at the output size and the network), :class:`~neural_style.cli.plan.Stages` (coarse to fine),
:class:`~neural_style.cli.saved_run.SavedState` (what ``--resume`` continues), :class:`RunReport` (progress and loss
lines, the history, TensorBoard, checkpoint images and sheet) and :class:`SingleRun`, which runs the loop and writes
the output, also on Ctrl-C. Sweeps are run by :mod:`neural_style.cli.sweep`, videos by :mod:`neural_style.cli.video`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NoReturn

from absl import flags

from neural_style.cli import report, sweep, video
from neural_style.cli.command import (
    Interruption,
    RunHooks,
    check_directory_target,
    check_distinct,
    check_writable,
    floats,
    interrupted_by,
)
from neural_style.cli.inputs import Inputs, input_files
from neural_style.cli.options import checkpoint_path, style_config
from neural_style.cli.plan import Stages, describe_tiles
from neural_style.cli.saved_run import (
    SavedState,
    check_saved_state,
    discard_on_restart,
    fingerprint,
    resume_hint,
)
from neural_style.config import StyleConfig
from neural_style.errors import NeuralStyleError
from neural_style.image_io import write_image

if TYPE_CHECKING:
    import numpy as np

    from neural_style.progress import Progress
    from neural_style.stylization import Stylization

__all__ = ["RunReport", "SingleRun", "outputs", "stylize"]


def outputs(fv: flags.FlagValues, config: StyleConfig) -> dict[str, str]:
    """Every file a single run will write, checked before any work: {purpose: path}."""
    paths = {"output": fv.output}
    names = {"output": "--output"}
    if fv.checkpoint_output:
        assert config.checkpoint_iterations is not None
        for k in range(config.checkpoint_iterations, config.iterations + 1, config.checkpoint_iterations):
            paths[f"checkpoint {k}"] = checkpoint_path(fv.checkpoint_output, k)
            names[f"checkpoint {k}"] = f"--checkpoint_output (iteration {k})"
    directory = os.path.dirname(os.path.abspath(fv.output))
    if fv.progress_write:
        paths["progress_write"] = os.path.join(directory, "progress.txt")
    if fv.progress_plot:
        paths["progress_plot"] = os.path.join(directory, "progress.png")
    if fv.checkpoint_sheet:
        if not config.checkpoint_iterations:
            raise NeuralStyleError("--checkpoint_sheet needs --checkpoint_iterations (and --checkpoint_output)")
        paths["checkpoint_sheet"] = sweep.candidate_path(fv.output, "checkpoints")
    check_distinct(
        input_files(fv), [(names.get(purpose, f"--{purpose} file"), path) for purpose, path in paths.items()]
    )
    # A resumed or restarted run rewrites its own files: the output written on Ctrl-C, earlier checkpoints, the
    # history. The saved run is named before any of its files is found in the way.
    saved = check_saved_state(fv)
    overwrite = fv.overwrite or saved
    for purpose, path in paths.items():
        if purpose == "progress_write":
            if os.path.isdir(path):
                raise NeuralStyleError(f"{path} is a directory (--progress_write); move it or write elsewhere")
            if os.path.exists(path) and not overwrite:
                raise NeuralStyleError(f"{path} already exists (--progress_write); pass --overwrite or move it")
            continue
        check_writable(path, overwrite=overwrite, what=names.get(purpose, f"--{purpose}"))
    if fv.tensorboard_images < 1:
        raise NeuralStyleError(f"--tensorboard_images is {fv.tensorboard_images}; it must be at least 1")
    if fv.tensorboard_dir:
        check_directory_target(fv.tensorboard_dir, "tensorboard_dir")
    return paths


# ------------------------------------------------------------------------------------------------ reporting


class RunReport:
    """Everything a single run reports as it goes: progress lines with an ETA, loss lines and their history,
    TensorBoard records, checkpoint images and the checkpoint sheet; and the best image so far."""

    def __init__(self, fv: flags.FlagValues, config: StyleConfig, stages: Stages, paths: dict[str, str], start: float):
        self.fv, self.config, self.stages, self.paths = fv, config, stages, paths
        self.clock = report.EtaClock(config.iterations, start)
        self.history = report.LossHistory()
        self.sheet: list[tuple[int, np.ndarray]] = []
        self.evaluations = [0] * len(stages.widths)  # L-BFGS evaluations of each stage so far
        self.best: np.ndarray | None = None
        self.writer: Any = None
        self._tile_shown = self._tile_started = time.monotonic()
        if fv.tensorboard_dir:
            import tensorflow as tf

            self.writer = tf.summary.create_file_writer(fv.tensorboard_dir)

    def record(self, stage: int, done: int, record: Progress, run: Stylization | None) -> None:
        """Reports a record of ``stage``, ``done`` iterations into the whole run (``run``: the stage's
        Stylization, when it is one, for the current image)."""
        extra = self._extra(stage, record)
        if self.clock.tick(done if record.iteration > 0 else None):
            print(report.iteration_line(self.clock, extra))
        if self.writer is not None and record.step_losses is not None:
            self._tensorboard(done, record, run)
        if record.losses is not None and (record.iteration > 0 or stage == 0):
            if record.iteration > 0 or self.config.print_iterations:
                report.print_losses(record.losses)
            if record.final and record.image_losses is not None and stage == len(self.stages.widths) - 1:
                print(f"{'saved image:':>13s} total loss {float(record.image_losses['total'][0]):g} (0..255, rounded)")
            self.history.add(done, record.losses)  # the start's row too: the history begins before the first step
        if record.image is not None:
            self.best = record.image
            if self.is_checkpoint(done):
                if self.fv.checkpoint_output:
                    write_image(checkpoint_path(self.fv.checkpoint_output, done), record.image)
                if self.fv.checkpoint_sheet:
                    self.sheet.append((done, record.image))

    def tile(self, done: int, total: int) -> None:
        """After each tile (of the targets, of a loss evaluation, of a loss-and-gradient evaluation): a line at most
        every 10 s, so a long iteration shows it is alive, and one at the end of a pass over the tiles that took that
        long."""
        now = time.monotonic()
        if done == 1:
            self._tile_started = self._tile_shown = now
        elapsed = report.hms(now - self._tile_started)
        if done == total and now - self._tile_started >= 10.0:
            print(f"  {done}/{total} tiles in {elapsed}", flush=True)
        elif done < total and now - self._tile_shown >= 10.0:
            self._tile_shown = now
            print(f"  {done}/{total} tiles ({elapsed} so far)", flush=True)

    def is_checkpoint(self, done: int) -> bool:
        """Whether ``done`` iterations is a checkpoint (--checkpoint_iterations)."""
        every = self.config.checkpoint_iterations
        return every is not None and done % every == 0

    def _extra(self, stage: int, record: Progress) -> str:
        extra = f" (scale {stage + 1}/{len(self.stages.widths)})" if len(self.stages.widths) > 1 else ""
        if record.evaluations is not None:
            self.evaluations[stage] = record.evaluations
            extra += f" [{sum(self.evaluations)} evaluations]"
        return extra

    def _tensorboard(self, done: int, record: Progress, run: Stylization | None) -> None:
        assert record.step_losses is not None
        with self.writer.as_default():
            for key, value in record.step_losses.items():  # the losses of the image the step started from
                report.scalar_summary(f"loss/{key}", float(value[0]), step=done - 1)
            if done % self.fv.tensorboard_images == 0 or record.final:
                image = run.current_images() if run is not None else record.images
                if image is not None:
                    report.image_summary("image", image[:1], step=done)
        self.writer.flush()

    def write_history(self) -> None:
        """Writes progress.txt / progress.png as asked (--progress_write, --progress_plot)."""
        self.history.write(self.paths.get("progress_write"), self.paths.get("progress_plot"))

    def finish(self) -> None:
        """Writes the history and the checkpoint sheet at the end of the run."""
        self.write_history()
        if self.sheet:
            images = [image for _, image in self.sheet]
            captions = [f"iteration {k}" for k, _ in self.sheet]
            write_image(self.paths["checkpoint_sheet"], report.contact_sheet(images, captions))


class SingleRun:
    """One output image: the stages' records through the report, the state saved at checkpoints, the output written
    at the end or on Ctrl-C / SIGTERM (exit 130), or the best image so far when the loss stops being finite."""

    def __init__(
        self,
        fv: flags.FlagValues,
        inputs: Inputs,
        config: StyleConfig,
        stages: Stages,
        paths: dict[str, str],
        start: float,
        hooks: RunHooks | None = None,
    ) -> None:
        self.fv, self.inputs, self.config, self.stages, self.start = fv, inputs, config, stages, start
        self.hooks = hooks  # a program driving the run in-process (see RunHooks); None: the command's own
        self.report = RunReport(fv, config, stages, paths, start)
        self.run_object: Stylization | None = None  # the current stage's
        self.stage = 0
        self.saved: SavedState | None = None

    def records(self) -> Iterator[tuple[int, Progress]]:
        """(stage, record) pairs, each stage a resumable Stylization (one stage without --scales)."""
        from neural_style.coarse import stage_runs

        inputs, config, stages = self.inputs, self.config, self.stages
        discard_on_restart(self.fv)
        first = SavedState.saved_stage(self.fv) if self.fv.resume else 0
        if not 0 <= first < len(stages.widths):
            raise NeuralStyleError(f"--resume: the saved run is at a stage this run does not have ({first + 1})")
        settings = fingerprint(self.fv, config, inputs.vgg, stages)
        runs = stage_runs(
            inputs.vgg,
            inputs.content,
            inputs.styles,
            config,
            widths=stages.widths,
            iterations=stages.iterations,
            style_scales=floats("style_scales", self.fv.style_scales),
            initial=inputs.initial,
            regions=inputs.regions,
            first=first,
            on_tile=self.report.tile,
            reuse=None if self.hooks is None else self.hooks.kept_run,
        )
        for stage, run in runs:
            self.run_object, self.stage = run, stage
            if self.hooks is not None:  # a program's next run may restart it (only one run is kept)
                self.hooks.kept_run = run if run.resizable else None
            self.saved = None if run.state is None else SavedState(self.fv, run, stage, settings)
            if self.fv.resume and stage == first:
                assert self.saved is not None  # a single run's engine can always be saved
                self.saved.resume(run, stages)
                done = stages.offsets[stage] + run.iteration
                self.report.history.continue_from(self.report.paths.get("progress_write"), done)
            for record in run:
                yield stage, record

    def run(self) -> None:
        """Runs to the end and writes the output; exits 130 on Ctrl-C / SIGTERM after writing what it has."""
        from neural_style.errors import NonFiniteLossError

        content = self.inputs.content
        network = self.fv.network if self.fv["network"].present else "found by default"
        styles = len(self.inputs.styles)
        print(f"Stylizing {content.shape[1]}x{content.shape[0]} with {styles} style(s), network {network}")
        plan = self.stages.describe()
        if plan is not None:
            print(plan)
        tiles = describe_tiles(self.inputs.vgg, self.config, *content.shape[:2])
        if tiles is not None:
            print(tiles)
        with interrupted_by(self.hooks) as interruption:
            try:
                stopped = self._loop(interruption)
            except NonFiniteLossError as e:
                self.report.write_history()
                if e.best is None:
                    message = f"{e}; no checkpoint was reached, so no image was written"
                    raise NeuralStyleError(message, usage=False) from None
                write_image(self.fv.output, e.best[0])
                raise NeuralStyleError(f"{e}; the best image so far is in {self.fv.output}", usage=False) from None
            if stopped:
                assert interruption.reason is not None
                self._stop(interruption.reason)
        self.report.finish()
        if self.saved is not None:
            self.saved.remove()
        print(f"Wrote {self.fv.output} in {report.hms(time.time() - self.start)}")

    def _loop(self, interruption: Interruption) -> bool:
        """Reports every record; returns whether ``interruption`` stopped the run before its last record."""
        offsets = self.stages.offsets
        last_stage = len(self.stages.widths) - 1
        for stage, record in self.records():
            done = offsets[stage] + record.iteration
            self.report.record(stage, done, record, self.run_object)
            if record.image is not None:
                if self.saved is not None and not record.final:  # a checkpoint of the stage
                    self.saved.save()
                if record.final and stage == last_stage:
                    write_image(self.fv.output, record.image)
            if self.hooks is not None:
                if self.saved is not None and not record.final and record.image is None and self.hooks.save_due():
                    self.saved.save()
                remaining = self.report.clock.remaining
                self.hooks.record(done, self.config.iterations, record, self.run_object, remaining=remaining)
            if interruption and not record.final:
                return True
        return False

    def _stop(self, why: str) -> NoReturn:
        """Ctrl-C / SIGTERM: the best image so far to the output, the state saved, how to resume; exit 130."""
        self.report.write_history()
        image = self.report.best
        if self.run_object is not None:
            best = self.run_object.best_images()
            image = best[0] if best is not None else self.run_object.current_images()[0]
        if image is not None and image.shape != self.inputs.content.shape:  # stopped in a coarse stage
            from neural_style.image_io import resize

            image = resize(image, self.inputs.content.shape[:2])
        output = self.fv.output
        if image is not None:
            write_image(output, image)
        wrote = f"wrote the best image so far to {output}" if image is not None else "no image written"
        if self.saved is not None:
            self.saved.save()
            hint = f"; {resume_hint()}"
        else:
            hint = ""
        it = None if self.run_object is None else self.stages.offsets[self.stage] + self.run_object.iteration
        where = f" at iteration {it}" if it is not None else ""
        print(f"neural-style: {why}{where}: {wrote}{hint}", file=sys.stderr)
        sys.exit(130)


# ------------------------------------------------------------------------------------------------ the driver


def stylize(fv: flags.FlagValues, start: float | None = None, hooks: RunHooks | None = None) -> None:
    """The run ``neural-style``'s flags ``fv`` ask for, from the checks to the files written: a single image (in
    stages with --scales), a sweep or a video. ``start``: when the command started (default now), for the times it
    reports; ``hooks``: a program driving the run in its own process (the studio), see
    :class:`neural_style.cli.command.RunHooks`.

    Raises:
        NeuralStyleError: a bad input (before any work) or a failed run; SystemExit 130 after Ctrl-C / SIGTERM,
            with what was done written.
    """
    start = time.time() if start is None else start
    config = style_config(fv)
    video.check_styles(fv)
    if video.is_video_run(fv):
        sweep.check_cluster(fv, None, video=True)
        video.run(fv, config, start)
        return
    sweep_plan = sweep.plan(fv)
    cluster = sweep.check_cluster(fv, sweep_plan)
    paths = outputs(fv, config) if sweep_plan is None else sweep.outputs(fv, sweep_plan, input_files(fv))
    batch = 1 if sweep_plan is None else (fv.batch_size or len(sweep_plan.candidates))
    inputs, stages = Inputs.read(fv, config, batch)
    sweep.check_split_tiles(fv, cluster, inputs.tile_size)
    config = dataclasses.replace(config, tile_size=inputs.tile_size)
    if hooks is not None:
        hooks.ready()
    if sweep_plan is not None:
        sweep.run(
            fv,
            inputs.vgg,
            inputs.content,
            inputs.styles,
            inputs.initial,
            config,
            sweep_plan,
            paths,
            start,
            inputs.regions,
            cluster,
            hooks,
        )
        return
    if fv.devices not in ("auto", "none"):
        sweep.check_devices(fv)  # a single image runs on the default device, but a missing one is refused alike
    SingleRun(fv, inputs, config, stages, paths, start, hooks).run()
