"""ImageNet classification with the whole MatConvNet VGG network: a check that a downloaded file loaded correctly.

The classifier is the feature layers (max pooling) followed by fc6..fc8 stored as convolutions: fc6 is a VALID
convolution whose 7x7 kernel covers the whole 7x7 pool5 output of a 224x224 input, fc7 and fc8 are 1x1
convolutions, with ReLU after fc6 and fc7 and a softmax at the end.

Preprocessing (:func:`classifier_input`), for an RGB image in 0..255: resize so that the shorter side is 224
pixels (the longer side rounded to the nearest pixel, Lanczos when shrinking, bicubic when enlarging), crop the
central 224x224 square (offset floor((side - 224) / 2)), subtract the mean pixel. MatConvNet's quick-start example
squashes the whole image to 224x224 instead and subtracts ``averageImage``; on a square image with the new-layout
file the two agree, otherwise the probabilities differ a little but the top classes of a correct file do not.

Only model building imports TensorFlow; the checks run without it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from neural_style.errors import NeuralStyleError
from neural_style.image_io import resize
from neural_style.matconvnet import VggWeights

__all__ = ["INPUT_SIZE", "ImageNetClassifier", "check_classifier", "classifier_input", "top_k"]

INPUT_SIZE = 224


def classifier_input(image: np.ndarray, mean_pixel: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """MatConvNet-style classifier input: shorter side to ``size``, central square crop, mean pixel subtracted.

    Args:
        image: [H, W, 3] RGB in 0..255.
        mean_pixel: [3] RGB mean pixel.
        size: side of the network's input.

    Returns:
        [size, size, 3] float32.
    """
    height, width = image.shape[:2]
    scale = size / min(height, width)
    resized = resize(image, (max(size, round(height * scale)), max(size, round(width * scale))))
    top = (resized.shape[0] - size) // 2
    left = (resized.shape[1] - size) // 2
    crop = resized[top : top + size, left : left + size]
    return (crop - np.asarray(mean_pixel, np.float32)).astype(np.float32)


def check_classifier(weights: VggWeights, *, source: str = "the network file", size: int = INPUT_SIZE) -> None:
    """Checks that the file's classifier can classify a ``size`` x ``size`` image.

    Args:
        weights: read with ``keep_classifier=True``.
        source: how to name the file in errors.
        size: side of the network's input.

    Raises:
        NeuralStyleError: no classifier, a layer of an unsupported kind, an fc6 kernel that does not cover the
            pool5 output exactly, channel counts that do not chain, or class names that do not match fc8.
    """
    if not weights.classifier:
        raise NeuralStyleError(
            f"{source} has no classifier layers (fc6..fc8); it cannot classify images. Use the full "
            "imagenet-vgg-verydeep-19.mat (read with keep_classifier=True)"
        )
    side = size
    channels = 3
    for layer in weights.layers:
        if layer.kind == "pool":
            side = math.ceil(side / 2)
        elif layer.kind == "conv":
            assert layer.kernel is not None
            channels = layer.kernel.shape[3]
    convs = [layer for layer in weights.classifier if layer.kind == "conv"]
    if not convs:
        raise NeuralStyleError(f"{source}: the classifier has no fully connected (conv) layers")
    for i, layer in enumerate(weights.classifier):
        if layer.kind not in ("conv", "relu", "softmax"):
            raise NeuralStyleError(f"{source}: classifier layer {layer.name} is a '{layer.kind}' layer")
        if layer.kind == "softmax" and i != len(weights.classifier) - 1:
            raise NeuralStyleError(f"{source}: the softmax {layer.name} is not the last classifier layer")
        if layer.kind != "conv":
            continue
        assert layer.kernel is not None
        height, width, fan_in, fan_out = layer.kernel.shape
        if (height, width) != (side, side):
            below = "pool5 gives" if layer is convs[0] else "its input is"
            raise NeuralStyleError(
                f"{source}: {layer.name} has a {height}x{width} kernel but {below} {side}x{side} at a "
                f"{size}x{size} input; this is not an ImageNet VGG classifier"
            )
        if fan_in != channels:
            raise NeuralStyleError(f"{source}: {layer.name} takes {fan_in} channels but receives {channels}")
        channels = fan_out
        side = 1
    if weights.classes and len(weights.classes) != channels:
        raise NeuralStyleError(
            f"{source} names {len(weights.classes)} classes but its last layer has {channels} outputs"
        )


class ImageNetClassifier:
    """The network's classifier as a Keras model, with its class names.

    Args:
        weights: read with ``keep_classifier=True``.
        source: how to name the file in errors.

    Raises:
        NeuralStyleError: see :func:`check_classifier`.
    """

    def __init__(self, weights: VggWeights, *, source: str = "the network file") -> None:
        check_classifier(weights, source=source)
        self.weights = weights
        n_classes = next(layer.kernel.shape[3] for layer in reversed(weights.classifier) if layer.kernel is not None)
        self.classes = weights.classes or tuple(f"class {i}" for i in range(n_classes))
        self.model = _build_model(weights)

    def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities of RGB images.

        Args:
            images: N images [H, W, 3] in 0..255, any sizes (see :func:`classifier_input`).

        Returns:
            [N, K] float32, each row summing to 1.
        """
        batch = np.stack([classifier_input(image, self.weights.mean_pixel) for image in images])
        return np.asarray(self.model(batch, training=False))

    def top_k(self, image: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
        """The ``k`` most probable classes of one image, most probable first.

        Args:
            image: [H, W, 3] RGB in 0..255.
            k: how many classes (at most the number of classes).

        Returns:
            ``[(description, probability), ...]``.
        """
        probs = self.probabilities([image])[0]
        order = np.argsort(-probs, kind="stable")[:k]
        return [(self.classes[i], float(probs[i])) for i in order]


def top_k(weights: VggWeights, image: np.ndarray, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable ImageNet classes of one image; see :class:`ImageNetClassifier`.

    Args:
        weights: read with ``keep_classifier=True``.
        image: [H, W, 3] RGB in 0..255.
        k: how many classes.

    Returns:
        ``[(description, probability), ...]``, most probable first.

    Raises:
        NeuralStyleError: the file has no usable classifier.
    """
    return ImageNetClassifier(weights).top_k(image, k)


def _build_model(weights: VggWeights) -> Any:
    """[N, 224, 224, 3] preprocessed images -> [N, K] probabilities."""
    import keras  # imported here so that the checks above run without TensorFlow

    from neural_style.vgg import VggFeatures

    features = VggFeatures.from_weights(weights, [weights.layers[-1].name], preprocessed=True, name="vgg_features")
    inputs = keras.Input(shape=(INPUT_SIZE, INPUT_SIZE, 3), dtype="float32", name="image")
    x = features(inputs)[weights.layers[-1].name]
    convs = []
    for layer in weights.classifier:
        if layer.kind == "conv":
            assert layer.kernel is not None
            conv = keras.layers.Conv2D(layer.kernel.shape[3], layer.kernel.shape[:2], padding="valid", name=layer.name)
            x = conv(x)
            convs.append((conv, layer))
        elif layer.kind == "relu":
            x = keras.layers.ReLU(name=layer.name)(x)
    x = keras.layers.Flatten(name="logits")(x)  # [N, 1, 1, K] -> [N, K]
    # The softmax is applied whether or not the file ends with one: the output is always probabilities.
    outputs = keras.layers.Softmax(name="prob")(x)
    for conv, layer in convs:
        conv.set_weights([layer.kernel, layer.bias])
    model = keras.Model(inputs, outputs, name="vgg_classifier")
    model.trainable = False
    return model
