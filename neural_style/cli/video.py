"""``neural-style`` on a video: every frame optimised in turn, consistent with the one before (Ruder et al. 2016).

A video ``--content`` (by its extension) takes this route. Every input is checked first (the video is decoded
once, the styles, the output's codec, a saved state). Each frame's result is saved as a PNG in ``<output>.state/``
as it is made, with a ``RunState`` holding the number of frames done and the settings they were made with, so an
interrupted run resumes at the next frame with ``--resume``. At the end, or on Ctrl-C / SIGTERM with the frames done
so far, the frames are encoded into ``--output`` with the content's frame rate and audio.
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
from neural_style.config import StyleConfig
from neural_style.errors import NeuralStyleError

if TYPE_CHECKING:
    from neural_style.video import VideoInfo

__all__ = ["check_styles", "frame_path", "is_video_run", "run"]

# The neural-style flags that make images only (sweeps, coarse to fine, per-iteration files): refused with a video.
_IMAGE_ONLY = (
    *("blend_sweep", "blends", "sweep_style_weights", "scales", "initial", "checkpoint_output", "checkpoint_sheet"),
    *("progress_write", "progress_plot", "tensorboard_dir"),
)
_VIDEO_ONLY = ("temporal_weight", "frame_iterations")


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


def frame_path(state: str, index: int) -> str:
    """The saved result of frame ``index`` (0-based) of a run whose state is in ``state``."""
    return os.path.join(state, "frames", f"frame_{index:06d}.png")


def _frame_iterations(fv: flags.FlagValues, config: StyleConfig) -> int:
    if fv.frame_iterations is None:
        return max(1, config.iterations // 2)
    if fv.frame_iterations < 1:
        raise NeuralStyleError(f"--frame_iterations is {fv.frame_iterations}; it must be at least 1")
    return int(fv.frame_iterations)


@dataclasses.dataclass
class _Plan:
    """What the checks found: the video, the output size, the state directory and the frames' iterations."""

    info: VideoInfo
    height: int
    width: int
    state: str
    frame_iterations: int


def _check(fv: flags.FlagValues, config: StyleConfig) -> _Plan:
    """Every check of a video run that needs no TensorFlow."""
    from neural_style.image_io import scaled_size
    from neural_style.video import check_video_output, probe_video

    for name in _IMAGE_ONLY:
        if fv[name].present:
            raise NeuralStyleError(f"--{name} is for images; it does not work with a video --content")
    if fv.temporal_weight < 0:
        raise NeuralStyleError(f"--temporal_weight is {fv.temporal_weight}; it must be 0 or more")
    frame_iterations = _frame_iterations(fv, config)
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
    return _Plan(info, int(height), int(width), state, frame_iterations)


def _write_video(plan: _Plan, output: str, content: str, frames: int) -> None:
    """Encodes the saved results of frames 0 .. ``frames - 1`` into ``output``, with the content's rate and audio."""
    from neural_style.image_io import read_image
    from neural_style.video import VideoWriter

    with VideoWriter(output, plan.width, plan.height, plan.info.rate, audio_from=content) as writer:
        for index in range(frames):
            writer.write(read_image(frame_path(plan.state, index), what="saved frame"))


def run(fv: flags.FlagValues, config: StyleConfig, start: float) -> None:
    """Stylizes the video ``--content`` frame by frame into ``--output``; exits 130 on Ctrl-C after writing the
    frames done as a shorter video."""
    from neural_style.image_io import read_image, resize_styles
    from neural_style.matconvnet import default_cache_dir, load_vgg

    plan = _check(fv, config)
    info = plan.info
    styles = read_styles(fv, plan.width)
    check_directory_target(os.path.join(plan.state, "frames"), "output", what=f"the state directory of {fv.output}")
    vgg = load_vgg(network_path(fv), cache_dir=default_cache_dir())
    check_memory(fv, vgg, plan.height, plan.width, 1)
    start_tensorflow()
    import tensorflow as tf

    from neural_style.errors import NonFiniteLossError
    from neural_style.image_io import write_image
    from neural_style.temporal import stylize_frames
    from neural_style.video import read_frames

    styles = resize_styles(styles, floats("style_scales", fv.style_scales), plan.width)
    settings = fingerprint(fv, config, vgg, Stages([plan.width], [config.iterations]))
    settings.update({"--temporal_weight": fv.temporal_weight, "--frame_iterations": plan.frame_iterations})
    settings["--iterations"] = config.iterations  # a frame's result depends on it: a resume must not change it
    discard_on_restart(fv)
    done = tf.Variable(0, dtype=tf.int64, trainable=False, name="frames_done")
    state = SavedRun(fv.output, {"frames_done": done}, settings)
    previous = None
    if fv.resume:
        state.restore()
        first = min(int(done.numpy()), info.frames)
        if first > 0:
            before = next(read_frames(fv.content, size=(plan.height, plan.width), start=first - 1))
            previous = (before, read_image(frame_path(plan.state, first - 1), what="saved frame"))
        if first < info.frames:
            print(f"Resumed at frame {first + 1}/{info.frames}")
        else:  # stopped while the video was being written
            print(f"All {info.frames} frames were done; writing the video")
    first = int(done.numpy())
    os.makedirs(os.path.dirname(frame_path(plan.state, 0)), exist_ok=True)

    print(
        f"Stylizing {info.frames} frames of {plan.width}x{plan.height} at {float(info.rate):g} frames/s with "
        f"{len(styles)} style(s): {config.iterations} iterations for the first, {plan.frame_iterations} for the "
        f"others, temporal weight {fv.temporal_weight:g}"
    )
    frame_config = dataclasses.replace(config, print_iterations=None)
    frames = read_frames(fv.content, size=(plan.height, plan.width), start=first)
    began = time.time()
    stopped: str | None = None
    with interruptible() as interruption:
        try:
            records = stylize_frames(
                vgg,
                frames,
                styles,
                frame_config,
                temporal_weight=fv.temporal_weight,
                frame_iterations=plan.frame_iterations,
                first=first,
                previous=previous,
            )
            clock = report.EtaClock(info.frames, began, done=first)
            for index, record in records:
                if record.final:
                    assert record.image is not None
                    write_image(frame_path(plan.state, index), record.image)
                    done.assign(index + 1)
                    state.save()
                    clock.tick(index + 1)
                    _frame_line(index, clock, record)
                if interruption and not (record.final and index + 1 == info.frames):
                    stopped = interruption.reason  # the frame in progress is given up: a resume redoes it
                    break
        except NonFiniteLossError as e:
            raise NeuralStyleError(
                f"{e}; the {int(done.numpy())} frames done are kept in {plan.state} (resume with --resume)",
                usage=False,
            ) from None
    count = int(done.numpy())
    if stopped is not None:
        _stop(fv, plan, stopped, count)
    _write_video(plan, fv.output, fv.content, count)
    state.remove()
    print(f"Wrote {fv.output} ({report.plural(count, 'frame')}) in {report.hms(time.time() - start)}")


def _frame_line(index: int, clock: report.EtaClock, record: object) -> None:
    """``Frame  3/12: total loss 1.2e+05 (temporal 3.4e+03), 12.3 s (1 min elapsed, 2 min remaining)``."""
    losses = getattr(record, "losses", None)
    terms = ""
    if losses is not None:
        terms = f": total loss {float(losses['total'][0]):.4g}"
        if "temporal" in losses and float(losses["temporal"][0]):
            terms += f" (temporal {float(losses['temporal'][0]):.4g})"
    print(f"Frame {index + 1:4d}/{clock.total}{terms}, {clock.seconds:.1f} s {clock.status()}")


def _stop(fv: flags.FlagValues, plan: _Plan, why: str, count: int) -> None:
    """Ctrl-C / SIGTERM: the frames done so far as a shorter video, the state kept, how to resume; exit 130."""
    where = f"neural-style: {report.stopped_after(why, count, plan.info.frames)}"
    if not count:
        shutil.rmtree(plan.state, ignore_errors=True)
        print(f"{where}: no frame was finished, so nothing was written", file=sys.stderr)
        sys.exit(130)
    _write_video(plan, fv.output, fv.content, count)
    print(f"{where}: wrote the {report.plural(count, 'frame')} done to {fv.output}; {resume_hint()}", file=sys.stderr)
    sys.exit(130)
