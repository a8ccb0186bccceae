"""Speed of real-time stylization: applying a transformer network, and training one.

Example::

    python scripts/benchmark_fast.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --style ../shared/images/starry_night.jpg

* apply: images per second of ``apply_transformer`` on ``--apply_size`` square images, one at a time (as
  ``neural-style-apply`` runs them), after one untimed call that traces the graph;
* train: steps (and images) per second of ``Trainer.train_step`` at ``--train_size`` px and ``--batch_size``, with
  the default loss layers, after one untimed step that traces the graph. Batches are in memory, so this is the
  compute alone; in ``neural-style-train`` the ``tf.data`` pipeline decodes the next batches in parallel.

The images are random: speed does not depend on what they show. The load average is printed beside the figures
because on a shared machine it moves them; CPU seconds per image or step (summed over threads) move less.
"""

from __future__ import annotations

import os
import statistics
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG .mat file (the loss network for training).")
flags.DEFINE_string("style", None, "Style image for training (default: random pixels).")
flags.DEFINE_integer("apply_size", 512, "Side of the square images to stylize.")
flags.DEFINE_integer("apply_images", 5, "Timed images.")
flags.DEFINE_integer("train_size", 256, "Side of the square training crops.")
flags.DEFINE_integer("batch_size", 4, "Training batch size.")
flags.DEFINE_integer("train_steps", 5, "Timed training steps.")
flags.DEFINE_integer("base_filters", 32, "Transformer width (the paper's 32).")
flags.DEFINE_boolean("skip_train", False, "Only time applying.")


def _timed(function, count: int) -> tuple[float, list[float], float]:
    """Seconds of the first call, of each of ``count`` more, and the mean CPU seconds (all threads) of those."""
    start = time.perf_counter()
    function()
    first = time.perf_counter() - start
    times = []
    cpu = time.process_time()
    for _ in range(count):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return first, times, (time.process_time() - cpu) / count


def main(argv: list[str]) -> None:
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    from neural_style.config import TrainConfig
    from neural_style.image_io import read_image
    from neural_style.matconvnet import default_cache_dir, load_vgg
    from neural_style.train import Trainer
    from neural_style.transformer import apply_transformer, build_transformer

    rng = np.random.default_rng(0)
    print(
        f"CPUs: {os.cpu_count()}, TensorFlow {tf.__version__}, intra-op threads "
        f"{tf.config.threading.get_intra_op_parallelism_threads() or 'auto'}, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )

    model = build_transformer(base_filters=FLAGS.base_filters, seed=0)
    image = rng.uniform(0, 255, (FLAGS.apply_size, FLAGS.apply_size, 3)).astype(np.float32)
    first, times, cpu = _timed(lambda: apply_transformer(model, image), FLAGS.apply_images)
    median = statistics.median(times)
    print(
        f"apply  {FLAGS.apply_size}x{FLAGS.apply_size}, {model.count_params():,} parameters: "
        f"{1 / median:.3f} images/s ({median:.3f} s/image, median of {len(times)}; {cpu:.2f} CPU s/image; "
        f"first call {first:.2f} s)"
    )
    if FLAGS.skip_train:
        return
    if not FLAGS.network:
        raise app.UsageError("--network is required to time training (or pass --skip_train)")

    vgg = load_vgg(FLAGS.network, cache_dir=default_cache_dir())
    style = read_image(FLAGS.style) if FLAGS.style else rng.uniform(0, 255, (256, 256, 3)).astype(np.float32)
    config = TrainConfig(
        image_size=FLAGS.train_size, batch_size=FLAGS.batch_size, base_filters=FLAGS.base_filters, seed=0
    )
    trainer = Trainer(vgg, style, config)
    batch = rng.uniform(0, 255, (FLAGS.batch_size, FLAGS.train_size, FLAGS.train_size, 3)).astype(np.float32)
    first, times, cpu = _timed(lambda: trainer.train_step(batch), FLAGS.train_steps)
    median = statistics.median(times)
    print(
        f"train  {FLAGS.train_size}x{FLAGS.train_size} batch {FLAGS.batch_size}, loss layers "
        f"{','.join(config.loss_layers)}: {1 / median:.3f} steps/s, {FLAGS.batch_size / median:.2f} images/s "
        f"({median:.2f} s/step, median of {len(times)}; {cpu:.1f} CPU s/step; first step {first:.1f} s)"
    )
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    app.run(main)
