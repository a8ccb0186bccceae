"""``neural-style`` on a video: every frame optimised in turn, consistent with the one before (Ruder et al. 2016).

A video ``--content`` (by its extension) takes this route. Every input is checked first (the video is decoded
once, the styles, the output's codec, a saved state). Each frame's result is saved as a PNG in ``<output>.state/``
as it is made (forward passes in ``frames/``, backward passes in ``frames_backward/``, so the pass before's results
stay whole while a pass overwrites its own), with a ``RunState`` holding the pass, the number of frames done in it
and the settings they were made with, so an interrupted run resumes at the next frame with ``--resume``. At the
end, or on Ctrl-C / SIGTERM with the frames done so far, the newest result of every frame done is encoded into
``--output`` with the content's frame rate and audio.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from typing import TYPE_CHECKING

from absl import flags

from neural_style.cli import report
from neural_style.cli.command import (
    check_directory_target,
    check_distinct,
    check_target,
    floats,
    interruptible,
    network_path,
    start_tensorflow,
)
from neural_style.cli.inputs import input_files, read_styles
from neural_style.cli.plan import Stages, check_memory
from neural_style.cli.saved_run import (
    SavedRun,
    check_saved_state,
    discard_on_restart,
    fingerprint,
    resume_hint,
    state_dir,
)
from neural_style.config import FRAME_LEARNING_RATE_SHARE, StyleConfig, TemporalConfig
from neural_style.errors import NeuralStyleError

if TYPE_CHECKING:
    import numpy as np

    from neural_style.video import VideoInfo

__all__ = ["check_styles", "frame_path", "is_video_run", "run"]

# The neural-style flags that make images only (sweeps, coarse to fine, masks, per-iteration output): refused with a
# video, whose every setting applies to every frame.
_IMAGE_ONLY = (
    *("blend_sweep", "blends", "sweep_style_weights", "batch_size", "devices", "scales", "stage_iterations"),
    "initial",
    *("content_masks", "style_masks", "checkpoint_output", "checkpoint_sheet", "print_iterations"),
    *("progress_write", "progress_plot", "tensorboard_dir", "tensorboard_images"),
)
_VIDEO_ONLY = ("temporal_weight", "frame_iterations", "frame_learning_rate", "temporal_offsets", "passes")


def is_video_run(fv: flags.FlagValues) -> bool:
    """Whether ``--content`` is a video (by its extension)."""
    from neural_style.video import is_video

    return bool(fv.content) and is_video(fv.content) and not os.path.isdir(fv.content)


def check_styles(fv: flags.FlagValues) -> None:
    """Refuses a video among the style images, and the video flags without a video."""
    from neural_style.video import is_video

    for path in fv.styles or ():
        if is_video(path):
            raise NeuralStyleError(
                f"--styles {path} is a video; style images are still images (save one of its frames as PNG)"
            )
    if not is_video_run(fv):
        for name in _VIDEO_ONLY:
            if fv[name].present:
                raise NeuralStyleError(f"--{name} is for a video --content (.mp4, .webm, .mkv, ...)")
        return
    for name in ("tile_size", "max_memory"):
        if fv[name].value is not None:
            raise NeuralStyleError(f"--{name} tiles still images; a video's frames are optimised whole (use --width)")


def frame_path(state: str, index: int, stage: int = 0) -> str:
    """The saved result of frame ``index`` in pass ``stage`` (both 0-based) of a run whose state is in ``state``:
    forward passes in ``frames/``, backward passes in ``frames_backward/``."""
    return os.path.join(state, "frames" if stage % 2 == 0 else "frames_backward", f"frame_{index:06d}.png")


def _frame_iterations(fv: flags.FlagValues, config: StyleConfig) -> int:
    if fv.frame_iterations is None:
        return max(1, config.iterations // 2)
    if fv.frame_iterations < 1:
        raise NeuralStyleError(f"--frame_iterations is {fv.frame_iterations}; it must be at least 1")
    return int(fv.frame_iterations)


def _temporal(fv: flags.FlagValues, config: StyleConfig) -> TemporalConfig:
    """The video settings of the flags, checked (the frames' iterations and step size made explicit)."""
    try:
        offsets = tuple(int(value) for value in fv.temporal_offsets or ())
    except ValueError:
        raise NeuralStyleError(
            f"--temporal_offsets is '{','.join(fv.temporal_offsets)}'; give whole numbers of frames, e.g. 1,2,5"
        ) from None
    rate = fv.frame_learning_rate
    if rate is not None and config.optimizer != "adam":
        raise NeuralStyleError(f"--frame_learning_rate is Adam's step size; --optimizer {config.optimizer} takes none")
    temporal = TemporalConfig(
        temporal_weight=fv.temporal_weight,
        frame_iterations=_frame_iterations(fv, config),
        frame_learning_rate=FRAME_LEARNING_RATE_SHARE * config.learning_rate if rate is None else rate,
        temporal_offsets=offsets,
        passes=fv.passes,
    )
    temporal.validate()
    return temporal


@dataclasses.dataclass
class _Plan:
    """What the checks found: the video, the output size, the state directory and the video settings."""

    info: VideoInfo
    height: int
    width: int
    state: str
    temporal: TemporalConfig

    @property
    def frame_iterations(self) -> int:
        assert self.temporal.frame_iterations is not None
        return self.temporal.frame_iterations

    def position(self, stage: int, index: int) -> int:
        """Frames done in pass ``stage`` before frame ``index``: forward passes go from the first frame."""
        return index if stage % 2 == 0 else self.info.frames - 1 - index

    def newest(self, stage: int, done: int) -> list[str]:
        """The newest saved result of every frame made, ``done`` frames into pass ``stage``, in frame order."""
        if stage == 0:
            return [frame_path(self.state, index) for index in range(done)]
        return [
            frame_path(self.state, index, stage if self.position(stage, index) < done else stage - 1)
            for index in range(self.info.frames)
        ]


def _check(fv: flags.FlagValues, config: StyleConfig) -> _Plan:
    """Every check of a video run that needs no TensorFlow."""
    from neural_style.image_io import scaled_size
    from neural_style.video import check_video_output, probe_video

    for name in _IMAGE_ONLY:
        if fv[name].present:
            raise NeuralStyleError(f"--{name} is for images; it does not work with a video --content")
    if fv.temporal_weight < 0:
        raise NeuralStyleError(f"--temporal_weight is {fv.temporal_weight}; it must be 0 or more")
    temporal = _temporal(fv, config)
    info = probe_video(fv.content, what="--content video")
    check_video_output(fv.output)
    check_distinct(input_files(fv), [("--output", fv.output)])
    if fv.width is not None and fv.width < 1:
        raise NeuralStyleError(f"--width is {fv.width}; it must be at least 1")
    height, width = (info.height, info.width) if fv.width is None else scaled_size((info.height, info.width), fv.width)
    if min(height, width) < 2:
        raise NeuralStyleError(f"the frames would be {width}x{height} pixels; they need at least 2x2")
    state = state_dir(fv.output)
    saved = check_saved_state(fv)  # --resume or --restart may replace the saved run's own output
    check_target(fv.output, overwrite=fv.overwrite or saved, what="--output", example="out.mp4")
    return _Plan(info, int(height), int(width), state, temporal)


def _write_video(plan: _Plan, output: str, content: str, paths: list[str]) -> None:
    """Encodes the saved frames ``paths`` into ``output``, with the content's rate and audio."""
    from neural_style.image_io import read_image
    from neural_style.video import VideoWriter

    with VideoWriter(output, plan.width, plan.height, plan.info.rate, audio_from=content) as writer:
        for path in paths:
            writer.write(read_image(path, what="saved frame"))


def run(fv: flags.FlagValues, config: StyleConfig, start: float) -> None:
    """Stylizes the video ``--content`` frame by frame into ``--output``; exits 130 on Ctrl-C after writing the
    frames done (in the first pass, as a shorter video)."""
    from neural_style.image_io import read_image, resize_styles
    from neural_style.matconvnet import default_cache_dir, load_vgg

    plan = _check(fv, config)
    info, temporal = plan.info, plan.temporal
    styles = read_styles(fv, plan.width)
    for stage in range(min(temporal.passes, 2)):
        directory = os.path.dirname(frame_path(plan.state, 0, stage))
        check_directory_target(directory, "output", what=f"the state directory of {fv.output}")
    vgg = load_vgg(network_path(fv), cache_dir=default_cache_dir())
    check_memory(fv, vgg, plan.height, plan.width, 1)
    start_tensorflow()
    import tensorflow as tf

    from neural_style.errors import NonFiniteLossError
    from neural_style.image_io import write_image
    from neural_style.temporal import stylize_clip
    from neural_style.video import read_frames

    styles = resize_styles(styles, floats("style_scales", fv.style_scales), plan.width)
    settings = fingerprint(fv, config, vgg, Stages([plan.width], [config.iterations]))
    settings.update({"--temporal_weight": fv.temporal_weight, "--frame_iterations": plan.frame_iterations})
    settings.update({"--temporal_offsets": list(temporal.temporal_offsets), "--passes": temporal.passes})
    settings["--frame_learning_rate"] = temporal.frame_learning_rate
    settings["--iterations"] = config.iterations  # a frame's result depends on it: a resume must not change it
    discard_on_restart(fv)
    done = tf.Variable(0, dtype=tf.int64, trainable=False, name="frames_done")  # in the current pass
    stage_done = tf.Variable(0, dtype=tf.int64, trainable=False, name="pass")  # the current pass, from 0
    state = SavedRun(fv.output, {"frames_done": done, "pass": stage_done}, settings)
    results: dict[int, np.ndarray] = {}
    stage, first = 0, 0  # where the run starts: pass, frames done in it
    if fv.resume:
        state.restore()
        stage, first = int(stage_done.numpy()), int(done.numpy())
        for index, path in enumerate(plan.newest(stage, first)):
            if stage > 0 or temporal.passes > 1 or index >= first - max(temporal.temporal_offsets):
                results[index] = read_image(path, what="saved frame")
        if first == info.frames and stage + 1 < temporal.passes:  # stopped between two passes
            stage, first = stage + 1, 0
        if first < info.frames:
            print(f"Resumed at frame {first + 1}/{info.frames}{_of_pass(stage, temporal.passes)}")
        else:  # stopped while the video was being written
            print(f"All {info.frames} frames were done; writing the video")
    for index in range(min(temporal.passes, 2)):
        os.makedirs(os.path.dirname(frame_path(plan.state, 0, index)), exist_ok=True)

    offsets = ",".join(str(offset) for offset in temporal.temporal_offsets)
    print(
        f"Stylizing {info.frames} frames of {plan.width}x{plan.height} at {float(info.rate):g} frames/s with "
        f"{len(styles)} style(s): {config.iterations} iterations for the first, {plan.frame_iterations} for the "
        f"others, temporal weight {fv.temporal_weight:g} over frames {offsets} before"
        + (f", {temporal.passes} passes" if temporal.passes > 1 else "")
    )
    frame_config = dataclasses.replace(config, print_iterations=None)
    frames = read_frames(fv.content, size=(plan.height, plan.width))
    clock = report.EtaClock(info.frames * temporal.passes, time.time(), done=stage * info.frames + first)
    stopped: str | None = None
    with interruptible() as interruption:
        try:
            records = stylize_clip(vgg, frames, styles, frame_config, temporal, start=(stage, first), results=results)
            for stage, index, record in records:
                if record.final:
                    assert record.image is not None
                    write_image(frame_path(plan.state, index, stage), record.image)
                    done.assign(plan.position(stage, index) + 1)
                    stage_done.assign(stage)
                    state.save()
                    clock.tick(stage * info.frames + int(done.numpy()))
                    _frame_line(index, clock, record, info.frames, _of_pass(stage, temporal.passes))
                last = stage + 1 == temporal.passes and int(done.numpy()) == info.frames
                if interruption and not (record.final and last):
                    stopped = interruption.reason  # the frame in progress is given up: a resume redoes it
                    break
        except NonFiniteLossError as e:
            raise NeuralStyleError(
                f"{e}; the frames done are kept in {plan.state} (resume with --resume)", usage=False
            ) from None
    stage, count = int(stage_done.numpy()), int(done.numpy())
    paths = plan.newest(stage, count)
    if stopped is not None:
        _stop(fv, plan, stopped, stage, count, paths)
    _write_video(plan, fv.output, fv.content, paths)
    state.remove()
    print(f"Wrote {fv.output} ({report.plural(len(paths), 'frame')}) in {report.hms(time.time() - start)}")


def _of_pass(stage: int, passes: int) -> str:
    """`` of pass 2/3`` with several passes, else nothing."""
    return f" of pass {stage + 1}/{passes}" if passes > 1 else ""


def _frame_line(index: int, clock: report.EtaClock, record: object, total: int, of_pass: str = "") -> None:
    """``Frame  3/12: total loss 1.2e+05 (temporal 3.4e+03), 12.3 s (1 min elapsed, 2 min remaining)``; with
    several passes ``Frame  3/12 of pass 2/3: ...``."""
    losses = getattr(record, "losses", None)
    terms = ""
    if losses is not None:
        terms = f": total loss {float(losses['total'][0]):.4g}"
        if "temporal" in losses and float(losses["temporal"][0]):
            terms += f" (temporal {float(losses['temporal'][0]):.4g})"
    print(f"Frame {index + 1:4d}/{total}{of_pass}{terms}, {clock.seconds:.1f} s {clock.status()}")


def _stop(fv: flags.FlagValues, plan: _Plan, why: str, stage: int, count: int, paths: list[str]) -> None:
    """Ctrl-C / SIGTERM: the newest result of every frame made as a video, the state kept, how to resume; exit 130."""
    passes = plan.temporal.passes
    if count == plan.info.frames and stage + 1 < passes:  # between two passes
        stage, count = stage + 1, 0
    where = f"neural-style: {report.stopped_after(why, count, plan.info.frames)}{_of_pass(stage, passes)}"
    if not paths:
        shutil.rmtree(plan.state, ignore_errors=True)
        print(f"{where}: no frame was finished, so nothing was written", file=sys.stderr)
        sys.exit(130)
    _write_video(plan, fv.output, fv.content, paths)
    made = (
        f"the {report.plural(len(paths), 'frame')} done"
        if stage == 0
        else f"the newest result of all {len(paths)} frames"
    )
    print(f"{where}: wrote {made} to {fv.output}; {resume_hint()}", file=sys.stderr)
    sys.exit(130)
