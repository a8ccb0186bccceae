"""The ``neural-style-classify`` command: the top ImageNet classes of images, to check that a network file loads.

``neural-style-classify --network FILE IMAGE...`` prints one line per class; every input is checked before
TensorFlow is imported.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import flags

from neural_style.cli.command import Command, define_network, network_path, start_tensorflow
from neural_style.errors import NeuralStyleError

__all__ = ["flag_values", "main"]

_USAGE = """Usage: neural-style-classify --network FILE IMAGE [IMAGE...]

Prints the most probable ImageNet classes of each image with the network's classifier (fc6..fc8), to check that
the file loaded correctly. Images are resized so the shorter side is 224 pixels, centre-cropped to 224x224 and
mean-subtracted. One line per class: IMAGE<TAB>RANK<TAB>PROBABILITY<TAB>DESCRIPTION.
"""


def flag_values() -> flags.FlagValues:
    """The flags of ``neural-style-classify``, on a fresh FlagValues."""
    fv = flags.FlagValues()
    define_network(fv, __name__)
    flags.DEFINE_integer("top_k", 5, "How many classes to print per image.", flag_values=fv)
    return fv


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``neural-style-classify``; the image paths are the positional arguments."""
    fv = flag_values()
    Command("neural-style-classify", fv, _USAGE, __name__).run(
        argv, lambda images: _classify(fv, images), positional=True
    )


def _classify(fv: flags.FlagValues, images: Sequence[str]) -> None:
    if not images:
        raise NeuralStyleError("give one or more image files to classify (see --help)")
    k = fv.top_k
    if k < 1:
        raise NeuralStyleError(f"--top_k is {k}; it must be at least 1")

    from neural_style.classify import ImageNetClassifier, check_classifier
    from neural_style.image_io import read_image
    from neural_style.matconvnet import read_matconvnet

    arrays = [read_image(path) for path in images]
    network = network_path(fv)
    vgg = read_matconvnet(network, keep_classifier=True)
    check_classifier(vgg, source=network)
    n_classes = len(vgg.classes) if vgg.classes else None
    if n_classes is not None and k > n_classes:
        raise NeuralStyleError(f"--top_k is {k} but {network} has only {n_classes} classes")

    start_tensorflow()
    classifier = ImageNetClassifier(vgg, source=network)
    for path, image in zip(images, arrays, strict=True):
        for rank, (description, probability) in enumerate(classifier.top_k(image, k), start=1):
            print(f"{path}\t{rank}\t{probability:.6f}\t{description}")
