"""How far the loss a run reports is from the loss of the image it saves (clipped to 0..255, 8-bit).

Example::

    python scripts/score_saved.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg --width 128 \\
        --iterations 200 --every 50

Runs neural-style's Adam loop (default settings, seeded) and every ``--every`` iterations prints the total loss the
run reports for its current image, ``neural_style.score_images`` of that same image (it must agree: the check that
scoring is the run's objective), the score of the image as a file would hold it (clipped and rounded), and the share
of pixel values outside 0..255. The last two are what ``neural-style-score`` prints for a written result.
"""

from __future__ import annotations

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG .mat file.", required=True)
flags.DEFINE_string("content", None, "Content image.", required=True)
flags.DEFINE_string("style", None, "Style image.", required=True)
flags.DEFINE_integer("width", 128, "Output width in pixels.", lower_bound=2)
flags.DEFINE_integer("iterations", 200, "Adam steps.", lower_bound=1)
flags.DEFINE_integer("every", 50, "Compare every this many iterations.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of the initial noise.")


def main(argv: list[str]) -> None:
    del argv
    import numpy as np

    import neural_style as ns
    from neural_style.image_io import resize, resize_styles, scaled_size, to_uint8

    weights = ns.load_vgg(FLAGS.network)
    content = ns.read_image(FLAGS.content)
    content = resize(content, scaled_size(content.shape, FLAGS.width))
    styles = resize_styles([ns.read_image(FLAGS.style)], None, FLAGS.width)
    config = ns.StyleConfig(iterations=FLAGS.iterations, print_iterations=FLAGS.every, seed=FLAGS.seed)
    run = ns.Stylization(weights, content, styles, config)
    print(f"{content.shape[1]}x{content.shape[0]}, {FLAGS.iterations} iterations, default settings")
    print(f"{'iteration':>9} {'reported':>11} {'scored':>11} {'saved':>11} {'saved/rep':>9} {'outside':>8}")
    for record in run:
        if record.losses is None or (record.iteration % FLAGS.every and not record.final):
            continue
        image = run.current_images()[0]
        saved = to_uint8(image).astype(np.float32)
        scores = ns.score_images(weights, content, styles, [image, saved], config)
        reported = float(record.losses["total"][0])
        scored, kept = (float(v) for v in scores["total"])
        outside = float(np.mean((image < 0) | (image > 255)))
        print(
            f"{record.iteration:9d} {reported:11.6g} {scored:11.6g} {kept:11.6g} {kept / reported:9.4f} "
            f"{100 * outside:7.2f}%"
        )


if __name__ == "__main__":
    app.run(main)
