"""The cost of one L-BFGS evaluation against one Adam step, on the same objective and image.

Example::

    python scripts/benchmark_lbfgs.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg --widths 128,256

For each width and precision, interleaved over ``--rounds``: Adam engine steps (the compiled step: loss, gradient
and update), iterations of the device L-BFGS (:mod:`neural_style.lbfgs`, what ``--optimizer lbfgs`` runs) and of
scipy's L-BFGS-B (``engines.LbfgsEngine``, the reference), all from the same start (the content image), each after
two warm-up iterations. Reported per round, then as the best of the rounds (the least disturbed by other work on the
machine):

* Adam: wall (and process CPU) seconds per step;
* each L-BFGS: wall seconds per loss-and-gradient evaluation (all of an iteration's time, the optimiser's own work
  included, divided by the evaluations it made), and its ratio to Adam's step, the figure the target (at most 1.05)
  is about; for the device L-BFGS also in CPU seconds, which shared cores disturb less than wall seconds;
* for the device L-BFGS, the calls of the Python loss function per evaluation during the timed iterations: 0 means
  that no evaluation went back to Python (each iteration, line search included, is one compiled call); for scipy,
  the seconds per evaluation spent inside the evaluation itself (TensorFlow and the float64 copies).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG-19 .mat file.")
flags.DEFINE_string("content", None, "Content image.")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_list("widths", ["128", "256"], "Widths in pixels.")
flags.DEFINE_list("precisions", ["float32", "bfloat16"], "VGG precisions.")
flags.DEFINE_integer("steps", 15, "Timed iterations of each engine (after 2 warm-up iterations).")
flags.DEFINE_integer("rounds", 3, "Interleaved rounds.")


def _problem(width: int, precision: str):
    from neural_style.config import StyleConfig
    from neural_style.image_io import read_image, resize, resize_styles, scaled_size
    from neural_style.matconvnet import default_cache_dir, load_vgg
    from neural_style.stylization import build_objective

    weights = load_vgg(FLAGS.network, cache_dir=default_cache_dir())
    content = read_image(FLAGS.content)
    content = resize(content, scaled_size(content.shape, width))
    styles = resize_styles([read_image(FLAGS.style)], None, width)
    objective = build_objective(weights, content, styles, StyleConfig(precision=precision))
    start = (content - weights.mean_pixel)[None].astype(np.float32)
    params = {"blend": np.ones((1, 1), np.float32), "style_weight": np.array([5e2], np.float32)}
    return objective, start, params, np.asarray(weights.mean_pixel, np.float32)


def _adam(objective, start, params) -> tuple[float, float]:
    from neural_style.engines import AdamEngine

    engine = AdamEngine(objective, start, params)
    for _ in range(2):
        engine.step()
    begin, cpu = time.perf_counter(), time.process_time()
    for _ in range(FLAGS.steps):
        engine.step()
    return (time.perf_counter() - begin) / FLAGS.steps, (time.process_time() - cpu) / FLAGS.steps


def _scipy(objective, start, params, mean) -> tuple[float, float]:
    from neural_style.engines import LbfgsEngine

    engine = LbfgsEngine(objective, start, params, lower=-mean, upper=255.0 - mean)
    inside = [0.0]
    evaluate = engine._fun  # noqa: SLF001 - timing the evaluation scipy calls

    def timed(x: np.ndarray):
        begin = time.perf_counter()
        result = evaluate(x)
        inside[0] += time.perf_counter() - begin
        return result

    engine._fun = timed  # type: ignore[method-assign]  # noqa: SLF001
    try:
        for _ in range(2):
            engine.step()
        inside[0] = 0.0
        before = engine.evaluations
        begin = time.perf_counter()
        for _ in range(FLAGS.steps):
            engine.step()
        seconds = time.perf_counter() - begin
        count = engine.evaluations - before
    finally:
        engine.close()
    return seconds / count, inside[0] / count


def _device(objective, start, params, mean) -> tuple[float, float, float]:
    from neural_style.lbfgs import DeviceLbfgsEngine

    calls = [0]

    def counted(images, **values):
        calls[0] += 1
        return objective(images, **values)

    engine = DeviceLbfgsEngine(counted, start, params, lower=-mean, upper=255.0 - mean)
    for _ in range(2):
        engine.step()
    calls[0] = 0
    before = engine.evaluations
    begin, cpu = time.perf_counter(), time.process_time()
    for _ in range(FLAGS.steps):
        engine.step()
    seconds, cpu = time.perf_counter() - begin, time.process_time() - cpu
    count = engine.evaluations - before
    return seconds / count, cpu / count, calls[0] / count


def main(argv: Sequence[str]) -> None:
    if not (FLAGS.network and FLAGS.content and FLAGS.style):
        raise app.UsageError("--network, --content and --style are required")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    cases = [(int(w), p) for w in FLAGS.widths for p in FLAGS.precisions]
    problems = {case: _problem(*case) for case in cases}
    results: dict[tuple[int, str], list[tuple[float, ...]]] = {case: [] for case in cases}
    print(f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}, {FLAGS.steps} timed iterations, {FLAGS.rounds} rounds")
    for round_ in range(FLAGS.rounds):
        for case in cases:
            objective, start, params, mean = problems[case]
            adam, adam_cpu = _adam(objective, start, params)
            device, device_cpu, python_calls = _device(objective, start, params, mean)
            scipy_evaluation, inside = _scipy(objective, start, params, mean)
            results[case].append((adam, device, scipy_evaluation, inside, adam_cpu, device_cpu))
            print(
                f"round {round_ + 1} {case[0]} px {case[1]:8s} Adam {adam:.3f} s/step (cpu {adam_cpu:.3f})  "
                f"device L-BFGS {device:.3f} s/evaluation (cpu {device_cpu:.3f}; ratio {device / adam:.2f}, cpu "
                f"{device_cpu / adam_cpu:.2f}; {python_calls:.2f} Python calls of the loss per evaluation)  "
                f"scipy L-BFGS-B {scipy_evaluation:.3f} s/evaluation (ratio {scipy_evaluation / adam:.2f}, "
                f"{inside:.3f} inside the evaluation)",
                flush=True,
            )
    print(f"\nbest of {FLAGS.rounds} rounds")
    for case, rows in results.items():
        adam, device, scipy_evaluation, inside, adam_cpu, device_cpu = (min(r[i] for r in rows) for i in range(6))
        print(
            f"  {case[0]} px {case[1]:8s} Adam {adam:.3f} s/step (cpu {adam_cpu:.3f})  device L-BFGS {device:.3f} "
            f"s/evaluation (cpu {device_cpu:.3f}; ratio {device / adam:.2f}, cpu {device_cpu / adam_cpu:.2f})  "
            f"scipy L-BFGS-B {scipy_evaluation:.3f} s/evaluation (ratio {scipy_evaluation / adam:.2f}; "
            f"{inside:.3f} inside)"
        )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
