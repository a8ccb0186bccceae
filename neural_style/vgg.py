"""The one VGG network: a serialisable Keras layer returning ``{layer name: activation}``.

:class:`VggFeatures` holds the convolution weights of a MatConvNet file as frozen Keras weights. Every user of VGG
features takes it: the stylization objective, the feed-forward trainer's loss, the Keras losses, the exported
feature extractor and the classifier. It takes RGB images in 0..255 and subtracts the mean pixel itself, or, with
``preprocessed=True``, images that are already mean-subtracted (the optimised image of a stylization lives in that
space). Its convolutions run in float32, bfloat16 or float16 (``precision``); activations come out in float32.

Its config holds only names, shapes, pooling, precision and the mean pixel, so a ``.keras`` file that contains it
reloads without the ``.mat``: the weights travel in the archive. The layer is registered with Keras under the package
``neural_style``. The checks of layer names against a network live here too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import keras
import numpy as np
import tensorflow as tf

from neural_style.config import PRECISIONS, check_pooling
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import VggWeights, load_vgg
from neural_style.memory import deepest_layer, layer_specs

__all__ = ["FrozenLayer", "VggFeatures", "check_layers", "feature_extractor", "preprocess", "unprocess"]

ArrayT = TypeVar("ArrayT")
_KINDS = ("conv", "relu", "pool")


def preprocess(image: ArrayT, mean_pixel: np.ndarray) -> ArrayT:
    """RGB floats in 0..255 -> network input: subtracts the mean pixel. Works on arrays and tensors [..., 3]."""
    return image - mean_pixel


def unprocess(image: ArrayT, mean_pixel: np.ndarray) -> ArrayT:
    """Inverse of :func:`preprocess`: adds the mean pixel back. Works on arrays and tensors [..., 3]."""
    return image + mean_pixel


def check_layers(layers: Sequence[str], available: Sequence[str]) -> None:
    """Raises NeuralStyleError when ``layers`` is empty or names a layer that is not in ``available``."""
    if not layers:
        raise NeuralStyleError("no layers requested from the feature extractor")
    unknown = sorted(set(layers).difference(available))
    if unknown:
        raise NeuralStyleError(f"layer(s) {', '.join(unknown)} are not in the network; it has {', '.join(available)}")


class FrozenLayer(keras.layers.Layer):
    """A layer whose non-trainable weights are created in ``__init__`` from its config and filled in later.

    The weights are zeros until they are set (from a ``.mat`` file, :meth:`set_weights` or a ``.keras`` archive);
    using the layer before that raises, instead of silently computing with zeros. The layer's variables are float32
    also under a global mixed-precision policy.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("trainable", None)  # frozen by construction; a config may still carry the key
        kwargs.setdefault("dtype", "float32")
        super().__init__(trainable=False, **kwargs)
        self._weights_set = False

    def frozen_weight(self, shape: Sequence[int], name: str, value: np.ndarray | None = None) -> keras.Variable:
        """A new non-trainable float32 weight of ``value`` (made with it: no zeros written first), or of zeros."""
        initializer: Any = "zeros" if value is None else (lambda shape, dtype=None: np.asarray(value, np.float32))
        return self.add_weight(shape=tuple(shape), initializer=initializer, trainable=False, name=name)

    def mark_set(self) -> None:
        """Records that the weights hold real values."""
        self._weights_set = True

    def set_weights(self, weights: Sequence[np.ndarray]) -> None:
        super().set_weights(weights)
        self.mark_set()

    def load_own_variables(self, store: Any) -> None:
        super().load_own_variables(store)
        self.mark_set()

    def require_weights(self) -> None:
        """Raises NeuralStyleError when the weights were never set."""
        if not self._weights_set:
            raise NeuralStyleError(
                f"layer {self.name} has no weights yet: build it with from_weights() or load it from a .keras file"
            )


def _pooled(size: int | None) -> int | None:
    """Side of a 2x2, stride 2, SAME pooling's output."""
    return None if size is None else math.ceil(size / 2)


@keras.saving.register_keras_serializable(package="neural_style")
class VggFeatures(FrozenLayer):
    """VGG activations of a batch of images.

    Convolutions are stride 1, SAME padded, with bias; ReLU; pooling is 2x2, stride 2, SAME, max or average
    (average pooling often gives smoother results). The layer computes the network only up to the deepest layer
    asked for; all its weights are frozen.

    Args:
        layer_specs: ``[name, kind, kernel shape or None]`` for each layer from the input to the deepest output,
            kind ``conv`` (kernel shape [h, w, in, out]), ``relu`` or ``pool``.
        outputs: names of the layers whose activations are returned, in the order of the returned dict.
        pooling: ``"max"`` or ``"avg"``.
        mean_pixel: the RGB mean pixel subtracted from the input.
        precision: ``"float32"``, or ``"bfloat16"``/``"float16"`` to run the layers in that type (weights stay
            float32 and the activations are returned as float32).
        preprocessed: False: the input is RGB in 0..255; True: it is already mean-subtracted (:func:`preprocess`).
        values: {conv layer: (kernel, bias)} to make the weights with, or None for zeros (to be filled in from a
            ``.keras`` archive).
        **kwargs: passed to ``keras.layers.Layer`` (e.g. ``name``).

    Use :meth:`from_weights` to build one from a network file; without ``values`` the constructor makes zero
    weights, to be filled in from a ``.keras`` archive.
    """

    def __init__(
        self,
        layer_specs: Sequence[Sequence[Any]],
        outputs: Sequence[str],
        pooling: str = "max",
        mean_pixel: Sequence[float] = (0.0, 0.0, 0.0),
        precision: str = "float32",
        preprocessed: bool = False,
        values: Mapping[str, tuple[np.ndarray, np.ndarray]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_pooling(pooling)
        if precision not in PRECISIONS:
            raise NeuralStyleError(f"is '{precision}'; use one of: {', '.join(PRECISIONS)}", setting="precision")
        self.layer_specs = [
            (str(name), str(kind), None if shape is None else tuple(int(d) for d in shape))
            for name, kind, shape in layer_specs
        ]
        self.outputs = tuple(outputs)
        self.pooling = pooling
        self.mean_pixel = tuple(float(v) for v in mean_pixel)
        self.precision = precision
        self.preprocessed = bool(preprocessed)
        self._names = [name for name, _, _ in self.layer_specs]
        check_layers(self.outputs, self._names)
        self._kernels: dict[str, keras.Variable] = {}
        self._biases: dict[str, keras.Variable] = {}
        for name, kind, shape in self.layer_specs:
            if kind not in _KINDS:
                raise NeuralStyleError(f"layer {name} has kind '{kind}'; VggFeatures takes {', '.join(_KINDS)}")
            if kind == "conv":
                if shape is None or len(shape) != 4:
                    raise NeuralStyleError(f"layer {name} needs a kernel shape [h, w, in, out], not {shape}")
                kernel, bias = (None, None) if values is None else values[name]
                self._kernels[name] = self.frozen_weight(shape, f"{name}_kernel", kernel)
                self._biases[name] = self.frozen_weight(shape[3:], f"{name}_bias", bias)
        self.built = True
        if values is not None:
            self.mark_set()

    @classmethod
    def from_weights(
        cls,
        weights: VggWeights,
        layers: Sequence[str],
        *,
        pooling: str = "max",
        precision: str = "float32",
        preprocessed: bool = False,
        name: str = "vgg_features",
    ) -> VggFeatures:
        """Builds the layer from loaded network weights.

        Args:
            weights: from :func:`neural_style.load_vgg` or :func:`neural_style.read_matconvnet`.
            layers: names of the layers to return, e.g. ``("relu4_2", "relu5_1")``.
            pooling, precision, preprocessed: see the class.
            name: the Keras layer's name.

        Raises:
            NeuralStyleError: an unknown pooling, precision or layer name, or no layers.
        """
        layers = (layers,) if isinstance(layers, str) else tuple(layers)
        check_layers(layers, weights.layer_names)
        count = weights.layer_names.index(deepest_layer(weights.layer_names, layers)) + 1
        used = weights.layers[:count]
        specs = layer_specs(weights)[:count]
        return cls(
            specs,
            layers,
            pooling=pooling,
            mean_pixel=weights.mean_pixel.tolist(),
            precision=precision,
            preprocessed=preprocessed,
            values={
                layer.name: (layer.kernel, layer.bias)
                for layer in used
                if layer.kernel is not None and layer.bias is not None  # the conv layers
            },
            name=name,
        )

    def call(self, images: tf.Tensor, layers: Sequence[str] | None = None) -> dict[str, tf.Tensor]:
        """Activations of a batch.

        Args:
            images: [N, H, W, 3] RGB in 0..255 (mean-subtracted if the layer was built ``preprocessed``).
            layers: a subset of the layer's outputs to return (the network then stops at the deepest of them);
                None: all of them.

        Returns:
            ``{layer: [N, H', W', C]}`` float32, in the order of ``layers`` (or of the outputs).
        """
        self.require_weights()
        wanted = self.outputs if layers is None else tuple(layers)
        check_layers(wanted, self.outputs)
        x = tf.cast(images, tf.float32)
        if not self.preprocessed:
            x = preprocess(x, tf.constant(self.mean_pixel, tf.float32))
        low = self.precision != "float32"
        if low:
            x = tf.cast(x, self.precision)
        found: dict[str, tf.Tensor] = {}
        for name, kind, _ in self.layer_specs:
            if kind == "conv":
                kernel, bias = self._kernels[name], self._biases[name]
                if low:
                    kernel, bias = tf.cast(kernel, self.precision), tf.cast(bias, self.precision)
                x = tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"), bias)
            elif kind == "relu":
                x = tf.nn.relu(x)
            elif self.pooling == "max":
                x = tf.nn.max_pool2d(x, 2, 2, padding="SAME")
            else:
                x = tf.nn.avg_pool2d(x, 2, 2, padding="SAME")
            if name in wanted:
                found[name] = tf.cast(x, tf.float32) if low else x
                if len(found) == len(wanted):
                    break
        return {name: found[name] for name in wanted}

    def compute_output_spec(self, images: Any, layers: Sequence[str] | None = None) -> dict[str, keras.KerasTensor]:
        wanted = self.outputs if layers is None else tuple(layers)
        batch, height, width = images.shape[0], images.shape[1], images.shape[2]
        channels = 3
        specs = {}
        for name, kind, shape in self.layer_specs:
            if kind == "conv":
                assert shape is not None
                channels = shape[3]
            elif kind == "pool":
                height, width = _pooled(height), _pooled(width)
            if name in wanted:
                specs[name] = keras.KerasTensor((batch, height, width, channels), dtype="float32")
        return {name: specs[name] for name in wanted}

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            layer_specs=[
                [name, kind, None if shape is None else list(shape)] for name, kind, shape in self.layer_specs
            ],
            outputs=list(self.outputs),
            pooling=self.pooling,
            mean_pixel=list(self.mean_pixel),
            precision=self.precision,
            preprocessed=self.preprocessed,
        )
        return config


def vgg_weights(network: VggWeights | str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None) -> VggWeights:
    """``network`` itself when it is loaded weights, else the weights of the ``.mat`` file it names."""
    if isinstance(network, VggWeights):
        return network
    if isinstance(network, (str, os.PathLike)):
        return load_vgg(network, cache_dir=cache_dir)
    raise NeuralStyleError(
        f"network is a {type(network).__name__}; give a .mat path, VggWeights or a VggFeatures layer"
    )


def feature_extractor(
    network: VggWeights | str | os.PathLike[str],
    layers: Sequence[str],
    *,
    pooling: str = "max",
    precision: str = "float32",
    preprocessed: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    name: str = "vgg_features",
) -> keras.Model:
    """A frozen Keras model from images to VGG activations, its network a :class:`VggFeatures` layer.

    Args:
        network: loaded weights or the path of a MatConvNet ``.mat`` file.
        layers: names of the layers to return, e.g. ``("relu1_1", "relu4_2")``.
        pooling, precision, preprocessed: see :class:`VggFeatures`.
        cache_dir: with a path, where :func:`neural_style.load_vgg` keeps its conv-only cache; None: no cache.
        name: the Keras model's name.

    Returns:
        A model mapping [N, H, W, 3] float RGB in 0..255 (or preprocessed) to ``{layer: [N, H', W', C]}``; saved
        as ``.keras`` it reloads without the ``.mat`` file. It runs whole images; for an image too large for one
        pass, :class:`neural_style.Tiling` gives the same features and Gram matrices tile by tile.

    Raises:
        NeuralStyleError: the file cannot be read, or an unknown layer, pooling or precision.
    """
    weights = vgg_weights(network, cache_dir)
    features = VggFeatures.from_weights(
        weights, layers, pooling=pooling, precision=precision, preprocessed=preprocessed, name=name
    )
    inputs = keras.Input(shape=(None, None, 3), dtype="float32", name="image")
    model = keras.Model(inputs, features(inputs), name=name)
    model.trainable = False
    return model
