"""The image transformer network of Johnson, Alahi and Fei-Fei (2016) for real-time style transfer, in Keras.

One forward pass stylizes an image: 9x9 conv 32, 3x3 stride-2 convs 64 and 128, five residual blocks of 128
channels, two upsampling stages (nearest-neighbour x2 then 3x3 conv, 64 and 32 channels; this avoids the checkerboard
artefacts of transposed convolutions) and a 9x9 conv to 3 channels. Every convolution but the last is followed by
instance normalisation and ReLU; the output is ``255 (tanh(x) + 1) / 2``, RGB in 0..255 like the input.

Choices, for the record:

* Instance normalisation is ``keras.layers.GroupNormalization(groups=-1)``: one group per channel, so each image's
  channels are normalised over height and width alone, with a learnable scale and offset per channel. That is
  instance normalisation exactly (the tests check it against the formula); no custom layer is needed.
* Convolutions are reflect-padded (:class:`ReflectionPadding2D` before a VALID convolution), as in Johnson's
  ``fast-neural-style`` code, so image borders do not darken.
* Any input size works: :class:`PadToMultiple` replicates the bottom and right edges up to a multiple of 4 (and to at
  least 8 pixels, so that every reflect padding inside is valid), and :class:`CropToMatch` crops the output back.
* A convolution followed by normalisation has no bias (the normalisation's offset would cancel it).

The custom layers are registered with Keras under the package ``neural_style``, so a ``.keras`` file loads with
:func:`load_transformer` (or ``keras.saving.load_model`` once this module is imported).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from neural_style.atomic import atomic_file
from neural_style.errors import NeuralStyleError
from neural_style.image_io import check_model_file

__all__ = [
    "CropToMatch",
    "PadToMultiple",
    "ReflectionPadding2D",
    "apply_transformer",
    "build_transformer",
    "load_transformer",
    "save_transformer",
]

_MULTIPLE = 4  # two stride-2 convolutions
_MINIMUM = 8  # the smallest padded side for which every reflect padding inside is valid


@keras.saving.register_keras_serializable(package="neural_style")
class ReflectionPadding2D(keras.layers.Layer):
    """Pads height and width by ``padding`` pixels on each side, mirroring the image (edge not repeated).

    Each side must be longer than ``padding``. [N, H, W, C] -> [N, H + 2p, W + 2p, C].
    """

    def __init__(self, padding: int = 1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, inputs: Any) -> Any:
        p = self.padding
        return keras.ops.pad(inputs, ((0, 0), (p, p), (p, p), (0, 0)), mode="reflect")

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        n, h, w, c = input_shape
        grow = 2 * self.padding
        return n, None if h is None else h + grow, None if w is None else w + grow, c

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="neural_style")
class PadToMultiple(keras.layers.Layer):
    """Replicates the bottom row and right column until height and width are multiples of ``multiple``, at least
    ``minimum``. [N, H, W, C] -> [N, H', W', C]; the top-left [H, W] is the input unchanged.
    """

    def __init__(self, multiple: int = _MULTIPLE, minimum: int = _MINIMUM, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multiple = int(multiple)
        self.minimum = int(minimum)

    def _padded(self, size: Any) -> Any:
        size = keras.ops.maximum(size, self.minimum)
        return (size + self.multiple - 1) // self.multiple * self.multiple

    def call(self, inputs: Any) -> Any:
        shape = keras.ops.shape(inputs)
        # Gathering clipped indices repeats the last row/column however small the image is (tf.pad's REFLECT and
        # SYMMETRIC modes need the image to be larger than the padding).
        rows = keras.ops.minimum(keras.ops.arange(self._padded(shape[1])), shape[1] - 1)
        cols = keras.ops.minimum(keras.ops.arange(self._padded(shape[2])), shape[2] - 1)
        return keras.ops.take(keras.ops.take(inputs, rows, axis=1), cols, axis=2)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        n, h, w, c = input_shape

        def padded(size: int | None) -> int | None:
            if size is None:
                return None
            size = max(size, self.minimum)
            return -(-size // self.multiple) * self.multiple

        return n, padded(h), padded(w), c

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "multiple": self.multiple, "minimum": self.minimum}


@keras.saving.register_keras_serializable(package="neural_style")
class CropToMatch(keras.layers.Layer):
    """Crops the first input to the height and width of the second: ([N, H', W', C], [N, H, W, _]) -> [N, H, W, C]."""

    def call(self, inputs: Any) -> Any:
        image, reference = inputs
        shape = keras.ops.shape(reference)
        return image[:, : shape[1], : shape[2], :]

    def compute_output_shape(self, input_shape: Any) -> tuple:
        image_shape, reference_shape = input_shape
        return image_shape[0], reference_shape[1], reference_shape[2], image_shape[3]


def build_transformer(
    *,
    base_filters: int = 32,
    residual_blocks: int = 5,
    seed: int | None = None,
    name: str = "transformer",
) -> keras.Model:
    """Builds Johnson et al.'s image transformer network.

    Args:
        base_filters: channels of the first and last hidden convolutions (the paper's 32); the downsampling stages
            have 2x and 4x as many. Smaller values make tiny networks for tests.
        residual_blocks: number of residual blocks (the paper's 5).
        seed: seed of the initial weights (each layer gets its own stream); None: fresh random weights.
        name: the Keras model's name.

    Returns:
        A Keras model mapping RGB images [N, H, W, 3] (float32, 0..255, any H and W) to stylized RGB images of the
        same shape, in 0..255. With the defaults it has 1,677,635 parameters (3,200 of them normalisation scales and
        offsets).

    Raises:
        NeuralStyleError: ``base_filters`` or ``residual_blocks`` out of range.
    """
    if base_filters < 1:
        raise NeuralStyleError(f"is {base_filters}; it must be at least 1", setting="base_filters")
    if residual_blocks < 0:
        raise NeuralStyleError(f"is {residual_blocks}; it must be 0 or more", setting="residual_blocks")
    counter = iter(range(1_000_000))

    def initializer() -> keras.initializers.Initializer:
        # A seeded Keras initializer repeats its values on every call, so each layer needs a seed of its own.
        return keras.initializers.GlorotUniform(seed=None if seed is None else seed * 1000 + next(counter))

    def conv(x: Any, filters: int, size: int, stride: int, layer: str, *, norm: bool = True, relu: bool = True) -> Any:
        x = ReflectionPadding2D(size // 2, name=f"{layer}_pad")(x)
        x = keras.layers.Conv2D(
            filters, size, strides=stride, use_bias=not norm, kernel_initializer=initializer(), name=layer
        )(x)
        if norm:
            x = keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=f"{layer}_norm")(x)
        if relu:
            x = keras.layers.ReLU(name=f"{layer}_relu")(x)
        return x

    f = base_filters
    inputs = keras.Input(shape=(None, None, 3), dtype="float32", name="image")
    x = PadToMultiple(name="pad_to_multiple")(inputs)
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="to_unit")(x)  # 0..255 -> -1..1
    x = conv(x, f, 9, 1, "conv1")
    x = conv(x, 2 * f, 3, 2, "conv2")
    x = conv(x, 4 * f, 3, 2, "conv3")
    for i in range(1, residual_blocks + 1):
        y = conv(x, 4 * f, 3, 1, f"res{i}_a")
        y = conv(y, 4 * f, 3, 1, f"res{i}_b", relu=False)
        x = keras.layers.Add(name=f"res{i}")([x, y])
    for i, filters in enumerate((2 * f, f), start=1):
        x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{i}")(x)
        x = conv(x, filters, 3, 1, f"up{i}_conv")
    x = conv(x, 3, 9, 1, "conv_out", norm=False, relu=False)
    x = keras.layers.Activation("tanh", name="tanh")(x)
    x = keras.layers.Rescaling(127.5, offset=127.5, name="to_rgb")(x)  # -1..1 -> 0..255
    outputs = CropToMatch(name="crop")([x, inputs])
    return keras.Model(inputs, outputs, name=name)


def save_transformer(model: keras.Model, path: str | os.PathLike[str]) -> None:
    """Saves the model as a ``.keras`` file, atomically: a crash leaves the old file or the complete new one.

    Raises:
        NeuralStyleError: ``path`` does not end in ``.keras``, or the file system refused the write.
    """
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise NeuralStyleError(f"model file {path} must end in .keras")
    with atomic_file(path, suffix=".keras") as tmp:
        model.save(tmp)


def _first_sentence(error: Exception, limit: int = 120) -> str:
    """The start of an error's message, whole words only: Keras's messages run to several paragraphs."""
    text = " ".join(str(error).split()) or type(error).__name__
    text = text.split(". ")[0]
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " ..."
    return text


def load_transformer(path: str | os.PathLike[str], *, what: str = "model") -> keras.Model:
    """Loads a transformer saved by :func:`save_transformer` (or any Keras model mapping [N, H, W, 3] to itself).

    Raises:
        NeuralStyleError: the file is missing, not a ``.keras`` model, or a model of another shape.
    """
    from neural_style import vgg  # noqa: F401 - registers VggFeatures: an exported network is named, not garbled

    path = os.fspath(path)
    check_model_file(path, what=what)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as e:  # Keras raises ValueError, TypeError, KeyError, OSError... for damaged archives
        raise NeuralStyleError(f"{what} {path} could not be loaded as a Keras model ({_first_sentence(e)})") from None
    inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    if not inputs or not outputs or len(inputs) != 1 or len(outputs) != 1 or inputs[0].shape[-1] != 3:
        raise NeuralStyleError(f"{what} {path} is not an image transformer: it must map [N, H, W, 3] to [N, H, W, 3]")
    if tuple(outputs[0].shape[-1:]) != (3,):
        raise NeuralStyleError(f"{what} {path} is not an image transformer: it must map [N, H, W, 3] to [N, H, W, 3]")
    return model


_COMPILED: weakref.WeakKeyDictionary[keras.Model, Callable[[tf.Tensor], tf.Tensor]] = weakref.WeakKeyDictionary()


def _compiled(model: keras.Model) -> Callable[[tf.Tensor], tf.Tensor]:
    """One graph function per model, traced once for every image size."""
    function = _COMPILED.get(model)
    if function is None:
        ref = weakref.ref(model)  # the cache must not keep the model alive

        def call(images: tf.Tensor) -> tf.Tensor:
            live = ref()
            assert live is not None, "the model was deleted"
            return live(images, training=False)

        function = tf.function(call, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        _COMPILED[model] = function
    return function


def apply_transformer(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Stylizes images with a transformer network.

    Args:
        model: from :func:`build_transformer` or :func:`load_transformer`.
        images: [H, W, 3] or [N, H, W, 3] RGB floats in 0..255.

    Returns:
        float32 array of the same shape, RGB in 0..255.
    """
    array = np.asarray(images, dtype=np.float32)
    if array.ndim not in (3, 4) or array.shape[-1] != 3:
        raise NeuralStyleError(f"images must be [H, W, 3] or [N, H, W, 3] RGB, got shape {array.shape}")
    batch = array[None] if array.ndim == 3 else array
    result = np.asarray(_compiled(model)(tf.convert_to_tensor(batch)))
    return result[0] if array.ndim == 3 else result
