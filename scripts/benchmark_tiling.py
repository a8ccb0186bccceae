"""What exact tiling costs: seconds per loss-and-gradient evaluation, tiled against untiled, next to its floor.

Example::

    python scripts/benchmark_tiling.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg \\
        --width 1024 --tiles 256,512,1024

One process builds neural-style's objective (default layers: content relu4_2, style relu1_1..relu5_1, so the
deepest layer is relu5_1 and the halo 80 px) for the content resized to ``--width``, then times one evaluation of
the loss and its gradient (what one Adam iteration or one L-BFGS evaluation costs) untiled and in tiles of each
size, interleaved over ``--rounds`` after a warm-up call each; the figure is the median. Every evaluation's loss and
gradient are compared with the untiled ones.

The floor: two forward passes and one backward replace one of each (about 4/3 of the work, a backward pass costing
about two forward ones), and every tile is computed with its halo. ``floor (formula)`` is
4/3 x (tile + 2 halo)^2 / tile^2, the cost of an interior tile; ``floor (this image)`` is 4/3 x the area of all the
crops over the image's area, smaller because tiles at the image's edge have no halo on that side; ``measured floor``
replaces 4/3 with (loss alone + loss and gradient) / (loss and gradient) of the untiled image, timed here too (a
backward pass costs less than two forward ones on CPUs, so the second forward pass weighs more than 1/3).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG-19 .mat file.")
flags.DEFINE_string("content", None, "Content image.")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_integer("width", 1024, "Width of the image in pixels.")
flags.DEFINE_integer("height", 1365, "Height of the image in pixels (the content is resized to it); 0: its aspect.")
flags.DEFINE_list("tiles", ["256", "512", "1024"], "Tile sizes.")
flags.DEFINE_integer("rounds", 2, "Interleaved rounds.")
flags.DEFINE_string("precision", "float32", "Precision of the network.")


def main(argv: Sequence[str]) -> None:
    if not (FLAGS.network and FLAGS.content and FLAGS.style):
        raise app.UsageError("--network, --content and --style are required")
    import tensorflow as tf

    from neural_style.config import StyleConfig
    from neural_style.gradients import compile_loss
    from neural_style.image_io import read_image, resize, resize_styles, scaled_size
    from neural_style.matconvnet import default_cache_dir, load_vgg
    from neural_style.stylization import build_objective
    from neural_style.tiling import TiledObjective
    from neural_style.vgg import preprocess

    tf.get_logger().setLevel("ERROR")
    weights = load_vgg(FLAGS.network, cache_dir=default_cache_dir())
    content = read_image(FLAGS.content)
    size = (FLAGS.height, FLAGS.width) if FLAGS.height else scaled_size(content.shape, FLAGS.width)
    content = resize(content, size)
    height, width = content.shape[:2]
    styles = resize_styles([read_image(FLAGS.style)], None, FLAGS.width)
    objective = build_objective(weights, content, styles, StyleConfig(precision=FLAGS.precision))
    images = preprocess(content[None].astype(np.float32), weights.mean_pixel)
    images += np.random.default_rng(0).normal(0, 8, images.shape).astype(np.float32)
    params = {"blend": np.ones((1, 1), np.float32), "style_weight": np.full(1, 5e2, np.float32)}
    x = tf.constant(images)

    losses = {"untiled": objective}
    for tile in FLAGS.tiles:
        losses[f"tiles of {int(tile)}"] = TiledObjective(objective, int(tile))
    functions = {name: compile_loss(loss, params)[1] for name, loss in losses.items()}
    forward = compile_loss(objective, params)[0]  # the untiled loss alone: what a forward pass costs
    functions_and_forward = {**functions, "untiled, loss only": lambda images: (forward(images), None)}
    reference = None
    times: dict[str, list[float]] = {name: [] for name in functions_and_forward}
    for function in functions_and_forward.values():  # warm-up: traces
        terms, gradient = function(x)
        if reference is None:
            reference = (float(terms["total"][0]), gradient.numpy())
    assert reference is not None
    errors = {}
    for _ in range(FLAGS.rounds):
        for name, function in functions_and_forward.items():
            start = time.perf_counter()
            terms, gradient = function(x)
            if gradient is None:
                float(terms["total"][0])  # wait for it
                times[name].append(time.perf_counter() - start)
                continue
            gradient = gradient.numpy()
            times[name].append(time.perf_counter() - start)
            loss_error = abs(float(terms["total"][0]) / reference[0] - 1)
            gradient_error = float(np.abs(gradient - reference[1]).max() / np.abs(reference[1]).max())
            errors[name] = (loss_error, gradient_error)

    pixels = height * width
    base = statistics.median(times["untiled"])
    alone = statistics.median(times["untiled, loss only"])
    # Two forward passes and one backward against one of each, with the backward's cost as measured here.
    measured = (alone + base) / base
    print(f"{width}x{height}, {FLAGS.precision}, medians of {FLAGS.rounds} interleaved rounds")
    print(
        f"untiled: loss and gradient {base:.2f} s, loss alone {alone:.2f} s: a backward pass costs "
        f"{(base - alone) / alone:.2f} forward passes, so two forward and one backward are {measured:.2f}x one of "
        "each (4/3 if it cost 2)"
    )
    print(
        f"{'':16s} {'s/eval':>8s} {'us/pixel':>9s} {'x untiled':>10s} {'floor (formula)':>16s} "
        f"{'floor (this image)':>19s} {'measured floor':>15s} {'tiles':>6s} {'loss err':>9s} {'grad err':>9s}"
    )
    for name, values in times.items():
        if name not in functions:
            continue
        seconds = statistics.median(values)
        loss = losses[name]
        if isinstance(loss, TiledObjective):
            grid = loss.tiling.grid
            tiles = grid.tiles(height, width)
            halo, tile = grid.halo, grid.tile_size
            formula = 4 / 3 * (tile + 2 * halo) ** 2 / tile**2
            crops = sum((t.crop_rows[1] - t.crop_rows[0]) * (t.crop_cols[1] - t.crop_cols[0]) for t in tiles)
            floors = f"{formula:16.2f} {4 / 3 * crops / pixels:19.2f} {measured * crops / pixels:15.2f} {len(tiles):6d}"
        else:
            floors = f"{'':16s} {'':19s} {'':15s} {'':6s}"
        loss_error, gradient_error = errors[name]
        print(
            f"{name:16s} {seconds:8.2f} {seconds / pixels * 1e6:9.3f} {seconds / base:10.2f} {floors} "
            f"{loss_error:9.1e} {gradient_error:9.1e}"
        )


if __name__ == "__main__":
    app.run(main)
