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
from neural_style.config import PRECISIONS as _PRECISIONS
from neural_style.errors import NeuralStyleError
from neural_style.image_io import check_model_file

__all__ = [
    "CropToMatch",
    "PadToMultiple",
    "ReflectionPadding2D",
    "apply_transformer",
    "build_transformer",
    "inference_function",
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
    """The Keras model itself as one graph function, traced once for every image size (any model; float32)."""
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


# --------------------------------------------------------------------------------------- the inference graph

# Keys of a layer's config that say how it was initialised or stored, not what it computes.
_UNCOMPUTED = ("name", "trainable", "dtype", "seed")


def _computed(config: Any) -> Any:
    """A layer config without the entries that do not change the function it computes."""
    if isinstance(config, dict):
        return {
            key: _computed(value)
            for key, value in config.items()
            if key not in _UNCOMPUTED and not key.endswith(("_initializer", "_regularizer", "_constraint"))
        }
    if isinstance(config, list | tuple):
        return [_computed(value) for value in config]
    return config


def _architecture(model: keras.Model) -> int | None:
    """The number of residual blocks when ``model`` is a :func:`build_transformer` network (the same layers, names
    and settings, in the same order, float32), else None."""
    try:
        base_filters = int(model.get_layer("conv1").filters)
    except (ValueError, AttributeError, TypeError):
        return None
    blocks = sum(isinstance(layer, keras.layers.Add) for layer in model.layers)
    if base_filters < 1 or len(model.inputs) != 1:
        return None
    reference = build_transformer(base_filters=base_filters, residual_blocks=blocks, name=model.name)

    def signature(network: keras.Model) -> list[tuple[type, str, Any, str]]:
        return [
            (type(layer), layer.name, _computed(layer.get_config()), str(layer.dtype_policy.name))
            for layer in network.layers
        ]

    return blocks if signature(model) == signature(reference) else None


def _upsampling_taps() -> np.ndarray:
    """[2, 3, 2] 0/1: ``taps[r, d, a] = 1`` when row ``d`` of a 3x3 kernel, applied at output row 2i + a of a 2x
    nearest-neighbour upsampled, reflect-padded image, reads row i - 1 + a + r of the original, edge-padded by one.

    Row 2i + a + d - 1 of the upsampled image is row i + floor((a + d - 1) / 2) of the original (rows i - 1 and i
    for a = 0, rows i and i + 1 for a = 1), and reflecting the upsampled image by one row repeats the original's
    edge row; so the convolution is a 2x2 one of the original for each of the four output phases.
    """
    taps = np.zeros((2, 3, 2), np.float32)
    for a in range(2):
        for d in range(3):
            taps[(a + d - 1) // 2 + 1 - a, d, a] = 1.0
    return taps


class _Inference:
    """The forward pass of a :func:`build_transformer` network in plain TensorFlow ops, one image at a time.

    It computes what the Keras model computes, arranged to run faster on a CPU:

    * instance normalisation takes moments over height and width directly (no reshape into groups). In float32 it
      is the Keras layer's formula (two-pass moments, ``x * inv + (beta - mean * inv)``); in 16-bit precisions it is
      one fused batch-normalisation op in training mode (an image is a batch of one, so its statistics are per
      channel over height and width; they are computed in float32);
    * each "2x nearest-neighbour upsampling, reflect padding, 3x3 convolution" is a 2x2 convolution of the
      edge-padded small image into 4x the channels (one set per output phase), shifted and rearranged by
      ``depth_to_space``: the upsampled image is never formed, and four output pixels take 16 multiply-adds per
      input and output channel instead of 36;
    * the last 9x9 convolution to 3 channels, which oneDNN runs slowly for so few outputs, is a 1x9 convolution to
      27 channels (9 rows x 3 colours) followed by a float32 sum of the 9 rows (a fixed 9x1 convolution of 0s and
      1s);
    * with ``precision`` bfloat16 or float16 the convolutions and normalisations read and write that type; the
      normalisation statistics, the residual stream and the last sum stay float32.

    The weights are read from the model's variables at every call, so the model may go on training between calls.
    The float32 result differs from the Keras model's by the order of floating-point sums only (the tests bound
    it); a 16-bit one also by the rounding of activations and weights to that type.
    """

    def __init__(self, model: keras.Model, blocks: int, precision: str) -> None:
        self._model = weakref.ref(model)
        self._blocks = blocks
        self._dtype = tf.as_dtype(precision)
        self._taps = tf.constant(_upsampling_taps())
        rows = np.zeros((9, 1, 27, 3), np.float32)
        for row in range(9):
            for channel in range(3):
                rows[row, 0, 3 * row + channel, channel] = 1.0
        self._rows = tf.constant(rows)
        self.function = tf.function(self._forward, input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])

    def _layer(self, name: str) -> Any:
        model = self._model()
        assert model is not None, "the model was deleted"
        return model.get_layer(name)

    def _normalise(self, y: tf.Tensor, name: str, *, relu: bool) -> tf.Tensor:
        """Instance normalisation of [1, H, W, C] (and ReLU), in the convolutions' type."""
        norm = self._layer(f"{name}_norm")
        gamma, beta = norm.gamma.value, norm.beta.value
        if self._dtype == tf.float32:
            mean, variance = tf.nn.moments(y, [1, 2], keepdims=True)
            y = tf.nn.batch_normalization(y, mean, variance, beta, gamma, norm.epsilon)
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(y, gamma, beta, epsilon=norm.epsilon, is_training=True)
        return tf.nn.relu(y) if relu else y

    def _padded(self, x: tf.Tensor, pad: int, mode: str = "REFLECT") -> tf.Tensor:
        return tf.pad(tf.cast(x, self._dtype), [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode)

    def _conv(self, x: tf.Tensor, name: str, stride: int = 1) -> tf.Tensor:
        kernel = tf.cast(self._layer(name).kernel.value, self._dtype)
        return tf.nn.conv2d(self._padded(x, int(kernel.shape[0]) // 2), kernel, stride, "VALID")

    def _upsampled_conv(self, x: tf.Tensor, name: str) -> tf.Tensor:
        """2x nearest-neighbour upsampling, reflect padding by 1 and a 3x3 convolution, from the small image."""
        kernel = tf.cast(self._layer(name).kernel.value, tf.float32)
        inputs, outputs = int(kernel.shape[2]), int(kernel.shape[3])
        # [r, s, in, a, b, out]: the 2x2 kernel of output phase (a, b), its window starting at row a, column b
        phases = tf.einsum("rda,seb,deio->rsiabo", self._taps, self._taps, kernel)
        phases = tf.cast(tf.reshape(phases, [2, 2, inputs, 4 * outputs]), self._dtype)
        y = tf.nn.conv2d(self._padded(x, 1, "SYMMETRIC"), phases, 1, "VALID")  # SYMMETRIC by 1: the edge repeated
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        shifted = [
            y[:, a : a + height, b : b + width, (2 * a + b) * outputs : (2 * a + b + 1) * outputs]
            for a in range(2)
            for b in range(2)
        ]
        return tf.nn.depth_to_space(tf.concat(shifted, axis=-1), 2)

    def _output_conv(self, x: tf.Tensor) -> tf.Tensor:
        """The 9x9 convolution to 3 channels and its bias: rows as channels, then summed in float32."""
        layer = self._layer("conv_out")
        kernel = layer.kernel.value  # [9, 9, C, 3]
        size, inputs = int(kernel.shape[0]), int(kernel.shape[2])
        by_rows = tf.reshape(tf.transpose(kernel, [1, 2, 0, 3]), [1, size, inputs, size * 3])
        partial = tf.nn.conv2d(self._padded(x, size // 2), tf.cast(by_rows, self._dtype), 1, "VALID")
        return tf.nn.conv2d(tf.cast(partial, tf.float32), self._rows, 1, "VALID") + layer.bias.value

    def _forward(self, images: tf.Tensor) -> tf.Tensor:
        x = self._layer("pad_to_multiple")(images)
        x = self._layer("to_unit")(x)
        x = self._normalise(self._conv(x, "conv1"), "conv1", relu=True)
        x = self._normalise(self._conv(x, "conv2", 2), "conv2", relu=True)
        x = tf.cast(self._normalise(self._conv(x, "conv3", 2), "conv3", relu=True), tf.float32)
        for i in range(1, self._blocks + 1):  # the residual stream x is float32
            y = self._normalise(self._conv(x, f"res{i}_a"), f"res{i}_a", relu=True)
            x = x + tf.cast(self._normalise(self._conv(y, f"res{i}_b"), f"res{i}_b", relu=False), tf.float32)
        for name in ("up1_conv", "up2_conv"):
            x = self._normalise(self._upsampled_conv(x, name), name, relu=True)
        x = tf.tanh(self._output_conv(x)) * 127.5 + 127.5
        return x[:, : tf.shape(images)[1], : tf.shape(images)[2], :]


_INFERENCE: weakref.WeakKeyDictionary[keras.Model, dict[str, Callable[[tf.Tensor], tf.Tensor] | None]] = (
    weakref.WeakKeyDictionary()
)


def inference_function(model: keras.Model, precision: str = "float32") -> Callable[[tf.Tensor], tf.Tensor] | None:
    """The fast forward pass of a :func:`build_transformer` network (see :func:`apply_transformer`).

    Returns:
        A graph function of one image, [1, H, W, 3] float32 RGB 0..255 -> the same, traced once for every size;
        None for a float32 model that :func:`build_transformer` did not build (it runs as its Keras layers say).

    Raises:
        NeuralStyleError: ``precision`` is not one of float32, bfloat16, float16, or is a 16-bit one for a model
            that :func:`build_transformer` did not build.
    """
    if precision not in _PRECISIONS:
        raise NeuralStyleError(f"is '{precision}'; use one of: {', '.join(_PRECISIONS)}", setting="precision")
    functions = _INFERENCE.setdefault(model, {})
    if precision not in functions:
        blocks = _architecture(model)
        functions[precision] = None if blocks is None else _Inference(model, blocks, precision).function
    if functions[precision] is None and precision != "float32":
        raise NeuralStyleError(
            f"is {precision}, which runs only networks built by neural-style-train; this model has other layers: "
            "use float32",
            setting="precision",
        )
    return functions[precision]


def apply_transformer(model: keras.Model, images: np.ndarray, *, precision: str = "float32") -> np.ndarray:
    """Stylizes images with a transformer network.

    A network built by :func:`build_transformer` (as ``neural-style-train`` saves them) runs through a faster
    graph of the same computation, one image at a time (see :class:`_Inference`); any other model runs as its Keras
    layers define it, in float32 only.

    Args:
        model: from :func:`build_transformer` or :func:`load_transformer`.
        images: [H, W, 3] or [N, H, W, 3] RGB floats in 0..255.
        precision: float32, or bfloat16 or float16 for the convolutions (bfloat16: CPUs with AVX512-BF16 or AMX;
            both: recent GPUs); the result then differs from float32's by the rounding to 16 bits.

    Returns:
        float32 array of the same shape, RGB in 0..255.

    Raises:
        NeuralStyleError: images of another shape, or a precision :func:`inference_function` refuses.
    """
    array = np.asarray(images, dtype=np.float32)
    if array.ndim not in (3, 4) or array.shape[-1] != 3:
        raise NeuralStyleError(f"images must be [H, W, 3] or [N, H, W, 3] RGB, got shape {array.shape}")
    batch = array[None] if array.ndim == 3 else array
    function = inference_function(model, precision)
    if function is None:
        result = np.asarray(_compiled(model)(tf.convert_to_tensor(batch)))
    else:
        result = np.stack([np.asarray(function(tf.convert_to_tensor(image[None])))[0] for image in batch])
    return result[0] if array.ndim == 3 else result
