"""The cost of one L-BFGS evaluation against one Adam step, on the same objective and image.

Example::

    python scripts/benchmark_lbfgs.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg --widths 128,256

For each width and precision, interleaved over ``--rounds``: Adam engine steps (the compiled step: loss, gradient
and update) and L-BFGS engine iterations from the same start (the content image), each after two warm-up
iterations. Reported per round, then as medians:

* Adam: wall seconds per step;
* L-BFGS: wall seconds per loss-and-gradient evaluation (all of an iteration's time, scipy's own work and the
  hand-over between threads included, divided by the evaluations it made), and the part of it spent inside the
  evaluation itself (TensorFlow, float64 conversions);
* the ratio of the two, the figure the target (at most 1.1) is about.
"""

from __future__ import annotations

import os
import statistics
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
flags.DEFINE_integer("rounds", 2, "Interleaved rounds.")


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


def _adam(objective, start, params) -> float:
    from neural_style.engines import AdamEngine

    engine = AdamEngine(objective, start, params)
    for _ in range(2):
        engine.step()
    begin = time.perf_counter()
    for _ in range(FLAGS.steps):
        engine.step()
    return (time.perf_counter() - begin) / FLAGS.steps


def _lbfgs(objective, start, params, mean) -> tuple[float, float]:
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


def main(argv: Sequence[str]) -> None:
    if not (FLAGS.network and FLAGS.content and FLAGS.style):
        raise app.UsageError("--network, --content and --style are required")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    cases = [(int(w), p) for w in FLAGS.widths for p in FLAGS.precisions]
    problems = {case: _problem(*case) for case in cases}
    results: dict[tuple[int, str], list[tuple[float, float, float]]] = {case: [] for case in cases}
    print(f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}, {FLAGS.steps} timed iterations, {FLAGS.rounds} rounds")
    for round_ in range(FLAGS.rounds):
        for case in cases:
            objective, start, params, mean = problems[case]
            adam = _adam(objective, start, params)
            per_evaluation, inside = _lbfgs(objective, start, params, mean)
            results[case].append((adam, per_evaluation, inside))
            print(
                f"round {round_ + 1} {case[0]} px {case[1]:8s} Adam {adam:.3f} s/step  L-BFGS {per_evaluation:.3f} "
                f"s/evaluation ({inside:.3f} inside the evaluation)  ratio {per_evaluation / adam:.2f}",
                flush=True,
            )
    print("\nmedians")
    for case, rows in results.items():
        adam, per_evaluation, inside = (statistics.median(r[i] for r in rows) for i in range(3))
        print(
            f"  {case[0]} px {case[1]:8s} Adam {adam:.3f} s/step  L-BFGS {per_evaluation:.3f} s/evaluation "
            f"({inside:.3f} inside)  ratio {per_evaluation / adam:.2f}"
        )


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
