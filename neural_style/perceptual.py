"""neural-style's losses as Keras losses, for use in other TensorFlow pipelines.

* :class:`ContentLoss`, :class:`StyleLoss`, :class:`TotalVariationLoss` and :class:`PerceptualLoss` are
  ``keras.losses.Loss`` subclasses for ``model.compile`` / ``fit`` and custom loops. A loss that needs the network
  holds its own :class:`VggFeatures` (and, for fixed style images, a :class:`GramTargets` layer with their Gram
  matrices); ``get_config`` serialises both, so a model compiled with the loss saves and loads as ``.keras``.

The network is :class:`neural_style.vgg.VggFeatures` and the math :mod:`neural_style.losses` (PerceptualLoss is
its :class:`~neural_style.objective.Objective`); nothing is re-implemented here. Every class is registered with Keras
under the package ``neural_style``: import this module (or use any of its names through ``neural_style``) before
``keras.models.load_model`` and no ``custom_objects`` are needed.

Tiling: the losses evaluate whole batches (a training batch fits in memory). What may not is a large style image:
:meth:`GramTargets.from_styles` with ``tile_size`` computes its Gram matrices tile by tile (the same matrices,
:mod:`neural_style.tiling`), to pass as ``style_targets``. To optimise one image larger than memory allows, use
:class:`neural_style.TiledObjective` rather than these losses.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from neural_style import losses
from neural_style.config import LossSettings
from neural_style.config import content_layer_weights as default_layer_weights
from neural_style.config import style_layer_weights as default_style_weights
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import VggWeights
from neural_style.objective import Objective, WholeImages
from neural_style.tiling import TiledImages
from neural_style.vgg import FrozenLayer, VggFeatures, vgg_weights

__all__ = ["ContentLoss", "GramTargets", "PerceptualLoss", "StyleLoss", "TotalVariationLoss"]


@keras.saving.register_keras_serializable(package="neural_style")
class GramTargets(FrozenLayer):
    """Fixed Gram matrices of S style images, kept as frozen weights so that ``.keras`` files carry them.

    Args:
        shapes: ``{layer: [S, C, C]}``.
        **kwargs: passed to ``keras.layers.Layer``.
    """

    def __init__(self, shapes: Mapping[str, Sequence[int]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shapes = {layer: tuple(int(d) for d in shape) for layer, shape in shapes.items()}
        self._grams = {layer: self.frozen_weight(shape, f"{layer}_gram") for layer, shape in self.shapes.items()}
        self.built = True

    @classmethod
    def from_styles(
        cls,
        network: VggFeatures,
        styles: Sequence[np.ndarray],
        layers: Sequence[str],
        *,
        name: str = "gram_targets",
        tile_size: int | None = None,
    ) -> GramTargets:
        """Computes the Gram matrices of style images.

        Args:
            network: the feature layer; it must return ``layers``.
            styles: S images [H_s, W_s, 3] in 0..255 (sizes may differ).
            layers: the style layers.
            name: the Keras layer's name.
            tile_size: run images larger than this through the network tile by tile
                (:meth:`neural_style.Tiling.grams`): the same matrices, for style images larger than memory allows
                in one pass; None: whole.
        """
        source = WholeImages(network) if tile_size is None else TiledImages(network, tile_size)
        per_style = []
        for style in styles:
            found = source.grams(tf.constant(style[None], tf.float32), layers)
            per_style.append({layer: found[layer][0].numpy() for layer in layers})
        grams = {layer: np.stack([g[layer] for g in per_style]) for layer in layers}
        targets = cls({layer: g.shape for layer, g in grams.items()}, name=name)
        for layer, gram in grams.items():
            targets._grams[layer].assign(gram)
        targets.mark_set()
        return targets

    @property
    def grams(self) -> dict[str, keras.Variable]:
        """``{layer: [S, C, C]}``."""
        self.require_weights()
        return dict(self._grams)

    def call(self, inputs: Any = None) -> dict[str, keras.Variable]:
        return self.grams

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["shapes"] = {layer: list(shape) for layer, shape in self.shapes.items()}
        return config


def _features_for(
    network: VggWeights | str | os.PathLike[str] | VggFeatures | Mapping[str, Any],
    layers: Sequence[str],
    pooling: str,
    cache_dir: str | os.PathLike[str] | None,
) -> VggFeatures:
    """The loss's feature layer: a given VggFeatures (checked to return ``layers``), or a new one."""
    given: Any = network
    if isinstance(given, Mapping):  # a serialised VggFeatures, from a config
        given = keras.saving.deserialize_keras_object(dict(given))
    if isinstance(given, VggFeatures):
        missing = [layer for layer in layers if layer not in given.outputs]
        if missing:
            raise NeuralStyleError(
                f"the VggFeatures layer {given.name} does not return {', '.join(missing)}; "
                f"it returns {', '.join(given.outputs)}"
            )
        return given
    return VggFeatures.from_weights(vgg_weights(given, cache_dir), layers, pooling=pooling)


def _style_list(style_images: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """S style images as float32 [H, W, 3] arrays, from one [H, W, 3], a batch [S, H, W, 3] or a list."""
    if isinstance(style_images, np.ndarray) or tf.is_tensor(style_images):
        array = np.asarray(style_images, dtype=np.float32)
        if array.ndim not in (3, 4):
            raise NeuralStyleError(f"style_images has shape {array.shape}; expected [H, W, 3] or [S, H, W, 3]")
        styles = [array] if array.ndim == 3 else list(array)
    else:
        styles = [np.asarray(s, dtype=np.float32) for s in style_images]
    if not styles:
        raise NeuralStyleError("style_images is empty; give one or more [H, W, 3] images or None")
    for style in styles:
        if style.ndim != 3 or style.shape[2] != 3:
            raise NeuralStyleError(f"a style image has shape {style.shape}; expected [H, W, 3] RGB in 0..255")
    return styles


def _layer_weights(weights: Mapping[str, float] | None, default: Mapping[str, float], what: str) -> dict[str, float]:
    chosen = dict(default if weights is None else weights)
    if not chosen:
        raise NeuralStyleError(f"{what} is empty; give at least one layer")
    bad = [layer for layer, w in chosen.items() if not (math.isfinite(w) and w >= 0)]
    if bad:
        raise NeuralStyleError(f"{what}: the weights of {', '.join(bad)} must be finite and >= 0")
    return {layer: float(w) for layer, w in chosen.items()}


class _StyleTerm:
    """The style term shared by StyleLoss and PerceptualLoss: against fixed styles, or against ``y_true``."""

    layer_weights: dict[str, float]
    targets: GramTargets | None
    blend: np.ndarray | None

    def _setup_style(
        self,
        network: VggFeatures,
        style_images: np.ndarray | Sequence[np.ndarray] | None,
        style_targets: GramTargets | Mapping[str, Any] | None,
        style_blend_weights: Sequence[float] | None,
    ) -> None:
        targets: GramTargets | None
        if isinstance(style_targets, Mapping):  # serialised, from a config
            targets = keras.saving.deserialize_keras_object(dict(style_targets))
        else:
            targets = style_targets
        if style_images is not None and targets is not None:
            raise NeuralStyleError("give style_images or style_targets, not both")
        if style_images is not None:
            targets = GramTargets.from_styles(network, _style_list(style_images), list(self.layer_weights))
        if targets is not None:
            missing = [layer for layer in self.layer_weights if layer not in targets.shapes]
            if missing:
                raise NeuralStyleError(f"style_targets has no Gram matrices for {', '.join(missing)}")
        self.targets = targets
        if targets is None:
            if style_blend_weights is not None:
                raise NeuralStyleError("style_blend_weights needs style_images: without them y_true is the style")
            self.blend = None
            return
        n_styles = next(iter(targets.shapes.values()))[0]
        self.blend = losses.blend_weights(style_blend_weights, n_styles)

    def _style(self, grams: Mapping[str, tf.Tensor], features_true: Mapping[str, tf.Tensor] | None) -> tf.Tensor:
        """[N] style loss of each image, unweighted."""
        if self.targets is not None:
            return losses.style_loss(grams, self.targets.grams, self.layer_weights, self.blend)
        assert features_true is not None
        true = {layer: losses.gram_matrix(features_true[layer]) for layer in self.layer_weights}
        return losses.paired_style_loss(grams, true, self.layer_weights)

    def _style_config(self) -> dict[str, Any]:
        return {
            "style_targets": None if self.targets is None else keras.saving.serialize_keras_object(self.targets),
            "style_blend_weights": None if self.blend is None else [float(b) for b in self.blend],
        }


def _pop_serialised(config: dict[str, Any]) -> dict[str, Any]:
    config = dict(config)
    config["network"] = keras.saving.deserialize_keras_object(config["network"])
    return config


@keras.saving.register_keras_serializable(package="neural_style")
class ContentLoss(keras.losses.Loss):
    """Content loss: sum_l w_l mean((F_l(y_pred) - F_l(y_true))^2), per image.

    Args:
        network: the VGG network: weights, a ``.mat`` path, or a :class:`VggFeatures` that returns the layers.
        layer_weights: ``{layer: w_l}``; default ``{"relu4_2": 1}`` (neural-style's default blend).
        pooling: ``"max"`` or ``"avg"`` (ignored when ``network`` is a VggFeatures layer).
        cache_dir: conv-only cache directory for a ``.mat`` path, or None.
        name, reduction, dtype: as ``keras.losses.Loss``; the default reduction averages over the batch.

    Called as ``loss(y_true, y_pred)`` with [N, H, W, 3] RGB images in 0..255; ``call`` returns [N].
    """

    def __init__(
        self,
        network: VggWeights | str | os.PathLike[str] | VggFeatures,
        layer_weights: Mapping[str, float] | None = None,
        *,
        pooling: str = "max",
        cache_dir: str | os.PathLike[str] | None = None,
        name: str = "content_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.layer_weights = _layer_weights(layer_weights, default_layer_weights(1.0), "layer_weights")
        self.network = _features_for(network, list(self.layer_weights), pooling, cache_dir)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        """[N] content loss of each image of ``y_pred`` against the same image of ``y_true``."""
        return losses.content_loss(self.network(y_pred), self.network(y_true), self.layer_weights)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(network=keras.saving.serialize_keras_object(self.network), layer_weights=self.layer_weights)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ContentLoss:
        return cls(**_pop_serialised(config))


@keras.saving.register_keras_serializable(package="neural_style")
class StyleLoss(_StyleTerm, keras.losses.Loss):
    """Style loss: sum_s b_s sum_l w_l mean((G_l(y_pred) - A_sl)^2), per image, with G the Gram matrices.

    The targets A are the Gram matrices of fixed ``style_images`` (computed once; ``y_true`` is then ignored), or,
    without them, those of ``y_true``, each image against its own target.

    Args:
        network: the VGG network: weights, a ``.mat`` path, or a :class:`VggFeatures` that returns the layers.
        style_images: None, one image [H, W, 3], a batch [S, H, W, 3] or a list of S images of any sizes, RGB
            in 0..255.
        layer_weights: ``{layer: w_l}``; default relu1_1..relu5_1 at 0.2 each (neural-style's default).
        style_blend_weights: S weights b_s, normalised to sum 1; default equal. Only with style images.
        pooling: ``"max"`` or ``"avg"`` (ignored when ``network`` is a VggFeatures layer).
        cache_dir: conv-only cache directory for a ``.mat`` path, or None.
        style_targets: Gram targets computed earlier (e.g. from a config), instead of ``style_images``.
        name, reduction, dtype: as ``keras.losses.Loss``.

    Called as ``loss(y_true, y_pred)`` with [N, H, W, 3] RGB images in 0..255; ``call`` returns [N].
    """

    def __init__(
        self,
        network: VggWeights | str | os.PathLike[str] | VggFeatures,
        style_images: np.ndarray | Sequence[np.ndarray] | None = None,
        layer_weights: Mapping[str, float] | None = None,
        style_blend_weights: Sequence[float] | None = None,
        *,
        pooling: str = "max",
        cache_dir: str | os.PathLike[str] | None = None,
        style_targets: GramTargets | Mapping[str, Any] | None = None,
        name: str = "style_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.layer_weights = _layer_weights(layer_weights, default_style_weights(1.0), "layer_weights")
        self.network = _features_for(network, list(self.layer_weights), pooling, cache_dir)
        self._setup_style(self.network, style_images, style_targets, style_blend_weights)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        """[N] style loss of each image of ``y_pred``."""
        features = self.network(y_pred)
        grams = {layer: losses.gram_matrix(features[layer]) for layer in self.layer_weights}
        return self._style(grams, None if self.targets is not None else self.network(y_true))

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            network=keras.saving.serialize_keras_object(self.network),
            layer_weights=self.layer_weights,
            **self._style_config(),
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> StyleLoss:
        return cls(**_pop_serialised(config))


@keras.saving.register_keras_serializable(package="neural_style")
class TotalVariationLoss(keras.losses.Loss):
    """Total variation of ``y_pred``: mean of squared differences of neighbours down and across, per image.

    ``y_true`` is ignored. Called as ``loss(y_true, y_pred)`` with [N, H, W, 3] images; ``call`` returns [N].
    """

    def __init__(
        self, name: str = "total_variation_loss", reduction: str | None = "sum_over_batch_size", dtype: Any = None
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        """[N] total variation of each image of ``y_pred``."""
        return losses.tv_loss(y_pred)


@keras.saving.register_keras_serializable(package="neural_style")
class PerceptualLoss(_StyleTerm, keras.losses.Loss):
    """content_weight x content + style_weight x style + tv_weight x total variation, per image.

    The content term compares ``y_pred`` with ``y_true``; the style term compares ``y_pred`` with fixed
    ``style_images`` or, without them, with ``y_true`` (see :class:`StyleLoss`). One VGG pass per image computes
    every layer both terms need. The defaults are neural-style's.

    Args:
        network: the VGG network: weights, a ``.mat`` path, or a :class:`VggFeatures` that returns the layers.
        style_images: None, one image [H, W, 3], a batch [S, H, W, 3] or a list of S images, RGB in 0..255.
        content_weight, style_weight, tv_weight: weights of the three terms.
        content_layer_weights: ``{layer: w_l}``; default ``{"relu4_2": 1}``.
        style_layer_weights: ``{layer: w_l}``; default relu1_1..relu5_1 at 0.2 each.
        style_blend_weights: S weights, normalised to sum 1; default equal. Only with style images.
        pooling: ``"max"`` or ``"avg"`` (ignored when ``network`` is a VggFeatures layer).
        cache_dir: conv-only cache directory for a ``.mat`` path, or None.
        style_targets: Gram targets computed earlier, instead of ``style_images``.
        name, reduction, dtype: as ``keras.losses.Loss``.

    Called as ``loss(y_true, y_pred)`` with [N, H, W, 3] RGB images in 0..255; ``call`` returns [N].
    """

    def __init__(
        self,
        network: VggWeights | str | os.PathLike[str] | VggFeatures,
        style_images: np.ndarray | Sequence[np.ndarray] | None = None,
        *,
        content_weight: float = 5e0,
        style_weight: float = 5e2,
        tv_weight: float = 1e2,
        content_layer_weights: Mapping[str, float] | None = None,
        style_layer_weights: Mapping[str, float] | None = None,
        style_blend_weights: Sequence[float] | None = None,
        pooling: str = "max",
        cache_dir: str | os.PathLike[str] | None = None,
        style_targets: GramTargets | Mapping[str, Any] | None = None,
        name: str = "perceptual_loss",
        reduction: str | None = "sum_over_batch_size",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        for what, value in (
            ("content_weight", content_weight),
            ("style_weight", style_weight),
            ("tv_weight", tv_weight),
        ):
            if not (math.isfinite(value) and value >= 0):
                raise NeuralStyleError(f"{what} is {value}; it must be a finite number >= 0")
        self.content_weight = float(content_weight)
        self.style_weight = float(style_weight)
        self.tv_weight = float(tv_weight)
        self.content_layer_weights = _layer_weights(
            content_layer_weights, default_layer_weights(1.0), "content_layer_weights"
        )
        self.layer_weights = _layer_weights(style_layer_weights, default_style_weights(1.0), "style_layer_weights")
        self._settings = LossSettings(
            self.content_layer_weights,
            self.layer_weights,
            content_weight=self.content_weight,
            style_weight=self.style_weight,
            tv_weight=self.tv_weight,
            pooling=pooling,
        )
        needed = list(dict.fromkeys([*self.layer_weights, *self.content_layer_weights]))
        self.network = _features_for(network, needed, pooling, cache_dir)
        self._setup_style(self.network, style_images, style_targets, style_blend_weights)

    def terms(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> dict[str, tf.Tensor]:
        """The weighted terms, for logging in custom loops.

        Args:
            y_true: [N, H, W, 3] content targets, RGB in 0..255.
            y_pred: [N, H, W, 3] images, RGB in 0..255.

        Returns:
            ``{"content", "style", "tv", "total"}``, each [N], weighted; total = content + style + tv.
        """
        fixed = self.targets is not None
        objective = Objective.from_settings(
            self.network,
            self._settings,
            style_targets=self.targets.grams if self.targets is not None else None,
            blend=self.blend,
        )
        # One pass over y_true gives the content targets and, without fixed styles, each image's style target.
        features_true = self.network(keras.ops.cast(y_true, "float32"), layers=objective.layers)
        return objective(
            keras.ops.cast(y_pred, "float32"),
            content_targets=features_true,
            style_targets=None if fixed else {k: losses.gram_matrix(features_true[k]) for k in self.layer_weights},
        )

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        """[N] total perceptual loss of each image of ``y_pred``."""
        return self.terms(y_true, y_pred)["total"]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            network=keras.saving.serialize_keras_object(self.network),
            content_weight=self.content_weight,
            style_weight=self.style_weight,
            tv_weight=self.tv_weight,
            content_layer_weights=self.content_layer_weights,
            style_layer_weights=self.layer_weights,
            **self._style_config(),
        )
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PerceptualLoss:
        return cls(**_pop_serialised(config))
