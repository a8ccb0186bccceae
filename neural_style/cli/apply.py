"""The ``neural-style-apply`` command: runs a network trained by ``neural-style-train`` on an image or a folder.

Every input (the model file, each image, each output path) is checked before TensorFlow is imported.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from typing import Any

from absl import flags

from neural_style.cli.command import (
    Command,
    check_directory_target,
    check_distinct,
    check_target,
    check_writable,
    interruptible,
    require,
    start_tensorflow,
)
from neural_style.cli.inputs import check_precision
from neural_style.config import PRECISIONS
from neural_style.errors import NeuralStyleError

__all__ = ["flag_values", "main"]

_USAGE = """Usage: neural-style-apply --model MODEL.keras --content IMAGE|DIR|VIDEO --output FILE|DIR|VIDEO [flags]

Stylizes an image, every image in a folder, or every frame of a video (.mp4, .webm, .mkv, ...; needs the video
extra) with a network trained by neural-style-train. Images keep their size; videos their size, rate and audio.
"""


def flag_values() -> flags.FlagValues:
    """The flags of ``neural-style-apply``, on a fresh FlagValues."""
    fv = flags.FlagValues()
    flags.DEFINE_string("model", None, "Trained network, a .keras file from neural-style-train.", flag_values=fv)
    flags.DEFINE_string("content", None, "Image to stylize, or a folder of images.", flag_values=fv)
    flags.DEFINE_string(
        "output",
        None,
        "Output image (the format follows the extension), or a folder when --content is one; images keep their "
        "names (and their format when Pillow can write it, else PNG).",
        flag_values=fv,
    )
    flags.DEFINE_boolean("overwrite", False, "Replace output images that exist.", flag_values=fv)
    flags.DEFINE_integer("batch_size", 8, "Video: frames read and written together (up to memory).", flag_values=fv)
    flags.DEFINE_enum(
        "precision",
        "float32",
        PRECISIONS,
        "Precision of the network's convolutions: bfloat16 runs about twice as fast on CPUs with AVX512-BF16 or AMX "
        "(and recent GPUs) and changes the result by the rounding to 16 bits; float16 needs a GPU.",
        flag_values=fv,
    )
    return fv


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``neural-style-apply``; ``argv`` defaults to ``sys.argv``."""
    fv = flag_values()
    Command("neural-style-apply", fv, _USAGE, __name__).run(argv, lambda _: _apply(fv))


def _image_extensions() -> dict[str, str]:
    """{extension: Pillow format} of the formats Pillow reads."""
    from PIL import Image

    Image.init()
    return {ext: fmt for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def _output_name(name: str) -> str:
    """The input's file name when Pillow can write its format, else the same stem with .png."""
    from PIL import Image

    Image.init()
    stem, ext = os.path.splitext(name)
    return name if Image.registered_extensions().get(ext.lower()) in Image.SAVE else stem + ".png"


def _folder_jobs(content: str, output: str, overwrite: bool, model: str) -> list[tuple[str, str]]:
    """(input, output) pairs for the images of the folder ``content``, every one checked."""
    from neural_style.image_io import read_image

    if os.path.exists(output) and not os.path.isdir(output):
        raise NeuralStyleError(f"--output {output} is a file, but --content {content} is a folder; give a folder")
    if os.path.exists(output) and os.path.samefile(content, output):
        raise NeuralStyleError(f"--output {output} is the --content folder; write the results to another folder")
    check_directory_target(output, "output")
    extensions = _image_extensions()
    names = sorted(
        n
        for n in os.listdir(content)
        if not n.startswith(".")
        and os.path.isfile(os.path.join(content, n))
        and os.path.splitext(n)[1].lower() in extensions
    )
    if not names:
        raise NeuralStyleError(f"--content {content} holds no image files")
    pairs = [(os.path.join(content, name), os.path.join(output, _output_name(name))) for name in names]
    check_distinct(
        [("--model file", model), *(("--content image", source) for source, _ in pairs)],
        [("--output", target) for _, target in pairs],
    )
    jobs = []
    for source, target in pairs:
        read_image(source, what="--content image")
        if os.path.isdir(target):
            raise NeuralStyleError(f"--output {target} is a directory; move it out of the way")
        if os.path.exists(target) and not overwrite:
            raise NeuralStyleError(f"--output {target} already exists; pass --overwrite or choose another folder")
        jobs.append((source, target))
    targets = [target for _, target in jobs]
    if len(set(targets)) != len(targets):
        raise NeuralStyleError(f"--content {content} has images whose outputs would share a name (e.g. a.gif, a.png)")
    return jobs


def _jobs(content: str, output: str, overwrite: bool, model: str) -> list[tuple[str, str]]:
    """(input, output) pairs, every one checked."""
    from neural_style.image_io import read_image

    if os.path.isdir(content):
        return _folder_jobs(content, output, overwrite, model)
    if not os.path.exists(content):
        raise NeuralStyleError(f"--content {content} does not exist; give an image or a folder of images")
    read_image(content, what="--content image")
    check_distinct([("--model file", model), ("--content image", content)], [("--output", output)])
    check_writable(output, overwrite=overwrite, what="--output")
    return [(content, output)]


def _apply(fv: flags.FlagValues) -> None:
    start = time.time()
    model_path, content, output = (
        require(fv, name, what)
        for name, what in (
            ("model", "a network trained by neural-style-train (.keras)"),
            ("content", "an image or a folder of images"),
            ("output", "where to write the result"),
        )
    )
    from neural_style.image_io import check_model_file

    check_model_file(model_path, what="--model")
    from neural_style.video import is_video

    if is_video(content) and not os.path.isdir(content):
        _apply_video(fv, model_path, content, output)
        return
    jobs = _jobs(content, output, fv.overwrite, model_path)

    model = _load(model_path, fv.precision)
    from neural_style.cli.report import plural, stopped_after
    from neural_style.image_io import read_image, write_image
    from neural_style.transformer import apply_transformer

    if os.path.isdir(content):
        os.makedirs(output, exist_ok=True)
    with interruptible() as interruption:
        for done, (source, target) in enumerate(jobs):
            if interruption:  # Ctrl-C / SIGTERM: stop after the image in progress, say what was written
                print(
                    f"neural-style-apply: {stopped_after(interruption.reason or '', done, len(jobs), 'image')}: "
                    f"wrote {plural(done, 'output')} to {output}",
                    file=sys.stderr,
                )
                sys.exit(130)
            image = read_image(source, what="--content image")
            began = time.time()
            result = apply_transformer(model, image, precision=fv.precision)
            write_image(target, result)
            print(f"Wrote {target} ({image.shape[1]}x{image.shape[0]}, {time.time() - began:.2f} s)")
    if len(jobs) > 1:
        print(f"Stylized {len(jobs)} images in {time.time() - start:.1f} s")


def _load(model_path: str, precision: str) -> Any:
    """Starts TensorFlow and loads the model, checking that it and the hardware can run ``precision``."""
    start_tensorflow()
    check_precision(precision)
    from neural_style.transformer import inference_function, load_transformer

    model = load_transformer(model_path, what="--model")
    inference_function(model, precision)
    return model


def _apply_video(fv: flags.FlagValues, model_path: str, content: str, output: str) -> None:
    """Every frame of the video ``content`` through the network, in batches, into the video ``output``.

    The output keeps the frame rate, size and frame count, and a copy of the audio. Ctrl-C (or SIGTERM) stops after
    the batch in progress and writes the frames done so far as a shorter video (exit 130).
    """
    import numpy as np

    from neural_style.video import check_video_output, probe_video

    if fv.batch_size < 1:
        raise NeuralStyleError(f"--batch_size is {fv.batch_size}; it must be at least 1")
    info = probe_video(content, what="--content video")
    check_video_output(output)
    check_distinct([("--model file", model_path), ("--content video", content)], [("--output", output)])
    check_target(output, overwrite=fv.overwrite, what="--output", example="out.mp4")

    model = _load(model_path, fv.precision)
    from neural_style.cli.report import EtaClock, hms, plural, stopped_after
    from neural_style.transformer import apply_transformer
    from neural_style.video import VideoWriter, read_frames

    print(f"Stylizing {plural(info.frames, 'frame')} of {info.width}x{info.height} at {float(info.rate):g} frames/s")
    clock = EtaClock(info.frames, time.time(), done=0, window=None)  # the rate of the whole video so far
    stopped: str | None = None
    with (
        interruptible() as interruption,
        VideoWriter(output, info.width, info.height, info.rate, audio_from=content) as writer,
    ):
        batch: list[np.ndarray] = []
        for frame in read_frames(content):
            batch.append(frame)
            if len(batch) == fv.batch_size or writer.frames + len(batch) == info.frames:
                for result in apply_transformer(model, np.stack(batch), precision=fv.precision):
                    writer.write(result)
                batch = []
                clock.tick(writer.frames)
                print(
                    f"Frame {writer.frames:5d}/{info.frames} ({clock.rate:.2f} frames/s, {hms(clock.remaining)} left)"
                )
                if interruption and writer.frames < info.frames:
                    stopped = interruption.reason
                    break
    if stopped is not None:
        print(
            f"neural-style-apply: {stopped_after(stopped, writer.frames, info.frames)}: wrote the "
            f"{plural(writer.frames, 'frame')} done to {output}",
            file=sys.stderr,
        )
        sys.exit(130)
    seconds = time.time() - clock.start
    done = plural(info.frames, "frame")
    print(f"Wrote {output} ({done} in {hms(seconds)}, {info.frames / seconds:.2f} frames/s)")
