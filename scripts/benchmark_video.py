"""Speed and steadiness of video stylization (needs the video extra: pip install -e ".[video]").

Example::

    python scripts/benchmark_video.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg

The clips are made from ``--content``: the photo as a still background with a square cut from ``--style`` moving
across it by 1/64 of the width a frame. It prints:

* apply: frames per second of ``neural-style-apply`` (decode, network in batches, encode) on a 640x360 clip, with
  an untrained transformer of the default size (speed does not depend on its weights);
* optimisation at ``--width``: seconds for the first frame (``--iterations`` from noise) and for each later frame
  (``--frame_iterations`` from the previous result warped by the optical flow, with the temporal term); the loss
  (content + style + tv, the temporal term left out) of each later frame at its start and end, and the iterations
  the first frame needed from noise to get down to that end loss;
* flicker: the mean absolute change (0..255 levels) between consecutive results on the still background (away from
  the square), with the temporal term and without it (``--temporal_weight 0``: independent frames, every one run for
  ``--iterations``), same seed.

On a shared machine the load average moves the times; it is printed beside them.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG-19 .mat file.")
flags.DEFINE_string("content", None, "Photo the clips are made from.")
flags.DEFINE_string("style", None, "Style image (also the moving square).")
flags.DEFINE_integer("apply_frames", 24, "Frames of the 640x360 clip for neural-style-apply.")
flags.DEFINE_integer("batch_size", 8, "neural-style-apply --batch_size.")
flags.DEFINE_integer("frames", 4, "Frames of the optimisation clip.")
flags.DEFINE_integer("width", 256, "Width of the optimisation clip.")
flags.DEFINE_integer("iterations", 100, "Iterations of the first frame (and of every independent frame).")
flags.DEFINE_integer("frame_iterations", 50, "Iterations of the later frames.")
flags.DEFINE_float("temporal_weight", None, "Temporal weight (default: the command's).")
flags.DEFINE_integer("seed", 0, "Seed of the first frame's noise.")
flags.DEFINE_boolean("skip_apply", False, "Only the optimisation figures.")
flags.DEFINE_boolean("skip_flicker", False, "Leave out the run without the temporal term.")
flags.DEFINE_boolean("skip_optimisation", False, "Only the apply figure.")


def clip_frames(photo: np.ndarray, square: np.ndarray, height: int, width: int, count: int) -> list[np.ndarray]:
    """``photo`` resized to width x height, with ``square`` (resized to a quarter of the height) pasted at a left
    edge moving right by width / 64 a frame, at mid height."""
    from neural_style.image_io import resize

    background = resize(photo, (height, width))
    side = max(4, height // 4)
    patch = resize(square, (side, side))
    top, step = (height - side) // 2, max(1, width // 64)
    frames = []
    for t in range(count):
        frame = background.copy()
        left = width // 8 + step * t
        frame[top : top + side, left : left + side] = patch
        frames.append(np.clip(np.rint(frame), 0, 255))
    return frames


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def bench_apply(photo: np.ndarray, style: np.ndarray, work: str) -> None:
    from neural_style.cli import apply as apply_cli
    from neural_style.transformer import build_transformer, save_transformer
    from neural_style.video import VideoWriter

    path, model, out = (os.path.join(work, name) for name in ("clip640.mp4", "net.keras", "out640.mp4"))
    with VideoWriter(path, 640, 360, 24) as writer:
        for frame in clip_frames(photo, style, 360, 640, FLAGS.apply_frames):
            writer.write(frame)
    save_transformer(build_transformer(seed=0), model)
    argv = ["neural-style-apply", f"--model={model}", f"--content={path}", f"--output={out}", "--overwrite"]
    apply_cli.main([*argv[:3], f"--output={os.path.join(work, 'warm.mp4')}", "--batch_size=1"])  # traces once
    began, cpu = time.perf_counter(), time.process_time()
    apply_cli.main([*argv, f"--batch_size={FLAGS.batch_size}"])
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    print(
        f"APPLY 640x360, {FLAGS.apply_frames} frames, batch {FLAGS.batch_size}: {FLAGS.apply_frames / seconds:.2f} "
        f"frames/s ({seconds / FLAGS.apply_frames:.2f} s and {cpu / FLAGS.apply_frames:.2f} CPU s a frame; {load()})"
    )


def run_frames(weights, frames, style, config, temporal_weight, frame_iterations):
    """(results, seconds of each frame, per-frame list of the step losses without the temporal term, final loss of
    each frame without it)."""
    from neural_style.temporal import stylize_frames

    results, seconds, curves, finals = [], [], [], []
    began = time.perf_counter()
    curve: list[float] = []
    for _, record in stylize_frames(
        weights, frames, [style], config, temporal_weight=temporal_weight, frame_iterations=frame_iterations
    ):
        if record.step_losses is not None:  # the loss of the image the step started from: k - 1 steps done
            terms = record.step_losses
            curve.append(float(terms["total"][0] - terms.get("temporal", np.zeros(1))[0]))
        if record.final:
            assert record.losses is not None and record.image is not None
            losses = record.losses
            finals.append(float(losses["total"][0] - losses.get("temporal", np.zeros(1))[0]))
            curve.append(finals[-1])  # after the last step
            results.append(np.clip(np.rint(record.image), 0, 255))
            seconds.append(time.perf_counter() - began)
            curves.append(curve)
            began, curve = time.perf_counter(), []
    return results, seconds, curves, finals


def flicker(results: list[np.ndarray], still: np.ndarray) -> float:
    """Mean absolute change between consecutive results on the ``still`` pixels."""
    return float(np.mean([np.abs(b - a)[still].mean() for a, b in zip(results, results[1:], strict=False)]))


def reached(curve: list[float], target: float) -> str:
    """The iterations done when the loss first was at most ``target`` (``curve[k]``: after k iterations)."""
    hits = [k for k, value in enumerate(curve) if value <= target * (1 + 1e-6)]
    return str(hits[0]) if hits else f"not in {len(curve) - 1}"


def bench_optimisation(photo: np.ndarray, style: np.ndarray) -> None:
    from neural_style.config import TEMPORAL_WEIGHT, StyleConfig
    from neural_style.image_io import resize_styles
    from neural_style.matconvnet import load_vgg

    weights = load_vgg(FLAGS.network)
    height = int(round(FLAGS.width * photo.shape[0] / photo.shape[1]))
    frames = clip_frames(photo, style, height, FLAGS.width, FLAGS.frames)
    styles = resize_styles([style], None, FLAGS.width)
    config = StyleConfig(iterations=FLAGS.iterations, seed=FLAGS.seed)
    weight = TEMPORAL_WEIGHT if FLAGS.temporal_weight is None else FLAGS.temporal_weight
    side = max(4, height // 4)
    still = np.ones((height, FLAGS.width), bool)
    top = (height - side) // 2
    still[max(0, top - 8) : top + side + 8, :] = False  # rows the square crosses, with a margin
    still = np.broadcast_to(still[..., None], (height, FLAGS.width, 3))

    results, seconds, curves, finals = run_frames(weights, frames, styles[0], config, weight, FLAGS.frame_iterations)
    target = finals[0]
    print(
        f"OPTIMISATION {FLAGS.width}x{height}, temporal weight {weight:g} ({load()}): first frame "
        f"{seconds[0]:.1f} s for {FLAGS.iterations} iterations ({seconds[0] / FLAGS.iterations:.2f} s each), loss "
        f"{target:.4g}"
    )
    for k in range(1, len(results)):
        print(
            f"  frame {k + 1}: {seconds[k]:.1f} s for {FLAGS.frame_iterations} iterations "
            f"({seconds[k] / FLAGS.frame_iterations:.2f} s each); loss {curves[k][0]:.4g} at its warped start, "
            f"{finals[k]:.4g} at the end (the first frame's {target:.4g} reached after "
            f"{reached(curves[k], target)}); the first frame needed {reached(curves[0], finals[k])} iterations from "
            f"noise to get down to {finals[k]:.4g}"
        )
    with_term = flicker(results, still)
    if FLAGS.skip_flicker:
        print(f"FLICKER with the temporal term: {with_term:.2f} levels")
        return
    alone, alone_seconds, _, alone_finals = run_frames(weights, frames, styles[0], config, 0.0, None)
    without = flicker(alone, still)
    print(
        f"FLICKER on the still background: {with_term:.2f} levels with the temporal term, {without:.2f} without "
        f"(ratio {with_term / without:.2f}); independent frames took {np.mean(alone_seconds):.1f} s each, final "
        f"losses {', '.join(f'{v:.4g}' for v in alone_finals)}"
    )


def main(argv: list[str]) -> None:
    del argv
    if not (FLAGS.network and FLAGS.content and FLAGS.style):
        sys.exit("give --network, --content and --style")
    from neural_style.cli.command import start_tensorflow
    from neural_style.image_io import read_image

    start_tensorflow()
    photo, style = read_image(FLAGS.content), read_image(FLAGS.style)
    with tempfile.TemporaryDirectory() as work:
        if not FLAGS.skip_apply:
            bench_apply(photo, style, work)
        if not FLAGS.skip_optimisation:
            bench_optimisation(photo, style)


if __name__ == "__main__":
    app.run(main)
