"""What the saved-image options cost per Adam iteration: a stopping rule's scoring, --clip, --average_decay.

Example::

    python scripts/benchmark_options.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg --width 256

Each configuration runs :class:`neural_style.stylization.Stylization` (Adam, from the content image, seed 0) in this
process, interleaved over ``--rounds``; the figure is the median wall time between records of iterations 3 to
``--iterations - 2`` (the first iterations trace, the last one scores the result), then the median over rounds.
``stop_at_loss`` is set to 1, which is never reached, so the saved image is scored at every iteration.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG-19 .mat file.")
flags.DEFINE_string("content", None, "Content image.")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_integer("width", 256, "Width in pixels.")
flags.DEFINE_integer("iterations", 14, "Iterations of each run.")
flags.DEFINE_integer("rounds", 2, "Interleaved rounds.")

CONFIGURATIONS = {
    "plain": {},
    "stop_at_loss (scored every iteration)": {"stop_at_loss": 1.0},
    "clip": {"clip": True},
    "average_decay 0.9": {"average_decay": 0.9},
}


def main(argv: Sequence[str]) -> None:
    if not (FLAGS.network and FLAGS.content and FLAGS.style):
        raise app.UsageError("--network, --content and --style are required")
    import tensorflow as tf

    from neural_style.config import StyleConfig
    from neural_style.image_io import read_image, resize, resize_styles, scaled_size
    from neural_style.matconvnet import default_cache_dir, load_vgg
    from neural_style.stylization import Stylization

    tf.get_logger().setLevel("ERROR")  # each run traces its own functions; TensorFlow warns about retracing
    weights = load_vgg(FLAGS.network, cache_dir=default_cache_dir())
    content = read_image(FLAGS.content)
    content = resize(content, scaled_size(content.shape, FLAGS.width))
    styles = resize_styles([read_image(FLAGS.style)], None, FLAGS.width)
    results: dict[str, list[float]] = {name: [] for name in CONFIGURATIONS}
    for _ in range(FLAGS.rounds):
        for name, changes in CONFIGURATIONS.items():
            config = StyleConfig(iterations=FLAGS.iterations, seed=0, **changes)
            times, last = [], None
            for record in Stylization(weights, content, styles, config, initial=content):
                now = time.perf_counter()
                if last is not None and 3 <= record.iteration <= FLAGS.iterations - 2:
                    times.append(now - last)
                last = now
            results[name].append(statistics.median(times))
    base = statistics.median(results["plain"])
    print(f"Adam at {FLAGS.width} px, seconds per iteration (median of {FLAGS.rounds} rounds)")
    for name, values in results.items():
        seconds = statistics.median(values)
        print(f"  {name:38s} {seconds:.3f}  ({seconds - base:+.3f})")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
