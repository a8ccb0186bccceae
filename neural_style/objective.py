"""The one objective: images -> ``{content, style, tv, total}``, assembled from the pure losses.

:class:`Objective` maps images to those terms: network features -> Gram matrices -> the three terms
(:mod:`neural_style.losses`) -> their weighted sum. The stylization loop, the feed-forward trainer and the Keras
losses all use it, built by :meth:`Objective.from_settings`; they differ only in their targets (a fixed content image
or each image's own photo; fixed style images or each image's own style target) and weights. How the targets'
features are computed is given (:class:`TargetFeatures`): here, one pass of the whole image; :mod:`neural_style.tiling`
does it tile by tile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, TypeVar

import numpy as np
import tensorflow as tf

from neural_style import losses as L
from neural_style.config import LossSettings, loss_layers
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import VggWeights
from neural_style.resizable import resizable
from neural_style.vgg import VggFeatures

__all__ = ["Objective", "TargetFeatures", "WholeImages"]


class TargetFeatures(Protocol):
    """How the features that targets are made of are computed from an image: :class:`WholeImages` runs it through
    the network whole; :class:`neural_style.tiling.TiledImages` runs an image larger than a tile through it tile by
    tile (the same values, in memory bounded by the tile)."""

    def features(self, image: tf.Tensor, layers: Sequence[str]) -> Mapping[str, tf.Tensor]:
        """{layer: [1, H_l, W_l, C]} activations of an image [1, H, W, 3]."""
        ...

    def grams(self, image: tf.Tensor, layers: Sequence[str], mask: np.ndarray | None = None) -> Mapping[str, tf.Tensor]:
        """{layer: [1, C, C]} Gram matrices of an image [1, H, W, 3] (:func:`~neural_style.losses.gram_matrix`), or
        with a mask [H, W] in 0..1 those of the region it picks out (:func:`~neural_style.losses.guided_gram_matrix`).
        """
        ...


@dataclasses.dataclass(frozen=True)
class WholeImages:
    """:class:`TargetFeatures` in one pass of the whole image through ``network``."""

    network: VggFeatures

    def features(self, image: tf.Tensor, layers: Sequence[str]) -> dict[str, tf.Tensor]:
        """{layer: [N, H_l, W_l, C]} activations of images [N, H, W, 3]."""
        return self.network(image, layers=tuple(layers))

    def grams(self, image: tf.Tensor, layers: Sequence[str], mask: np.ndarray | None = None) -> dict[str, tf.Tensor]:
        """{layer: [N, C, C]} Gram matrices of images [N, H, W, 3], or with a mask [H, W] those of its region."""
        features = self.features(image, layers)
        if mask is None:
            return {layer: L.gram_matrix(features[layer]) for layer in layers}
        guides = L.layer_masks(np.asarray(mask, np.float32)[None], self.network, tuple(layers))
        return {layer: L.guided_gram_matrix(features[layer], guides[layer])[:, 0] for layer in layers}


HeldT = TypeVar("HeldT", bound="Objective")


@dataclasses.dataclass(frozen=True)
class Objective:
    """The loss of a batch of images: ``{content, style, tv, total}``, [N] each, weighted.

    One network pass computes every layer the terms need. The content term compares the images' activations with
    content targets; the style term compares their Gram matrices with those of S style images, blended (or, given
    ``style_targets`` in the call, each image with its own target); the tv term smooths the images. Targets and
    weights fixed at construction serve as defaults that a call can override, so one objective serves a batch of
    candidates with per-image blends and style weights, or a trainer whose content targets change every batch.

    Attributes:
        network: the VGG layer; its outputs include every content and style layer.
        content_layers: {layer: weight} of the content term.
        style_layers: {layer: weight} of the style term.
        content_weight, style_weight, tv_weight: weights of the terms; style_weight may be [N] (one per image).
        content_targets: {layer: [1 or N, H, W, C]} content activations, or None to give them with each call.
        style_targets: {layer: [S, C, C]} Gram matrices of the style images, or None.
        blend: [S] or [N, S] style blend weights summing to 1 (per image for blend sweeps), or None.
        content_masks: {style layer: [S, H_l, W_l]} where each style applies (spatial control), or None: every
            style everywhere.
    """

    network: VggFeatures
    content_layers: Mapping[str, float]
    style_layers: Mapping[str, float]
    content_weight: float | tf.Tensor = 5e0
    style_weight: float | tf.Tensor = 5e2
    tv_weight: float | tf.Tensor = 1e2
    content_targets: Mapping[str, tf.Tensor] | None = None
    style_targets: Mapping[str, tf.Tensor] | None = None
    blend: tf.Tensor | None = None
    content_masks: Mapping[str, tf.Tensor] | None = None

    @classmethod
    def from_settings(
        cls,
        network: VggWeights | VggFeatures,
        settings: LossSettings,
        *,
        preprocessed: bool = False,
        name: str | None = None,
        **targets: Any,
    ) -> Objective:
        """The objective that ``settings`` describe (e.g. :attr:`neural_style.config.StyleConfig.loss_settings`).

        Args:
            network: the VGG layer, returning every layer the settings use; or the weights to build it from, with
                the settings' layers, pooling and precision.
            settings: the layers with their weights, the terms' weights, pooling and precision.
            preprocessed, name: of a network built here (see :class:`neural_style.vgg.VggFeatures`).
            **targets: targets and blend known already (``content_targets``, ``style_targets``, ``blend``,
                ``content_masks``); :meth:`with_targets` computes them from images.
        """
        if isinstance(network, VggWeights):
            options = {} if name is None else {"name": name}
            network = VggFeatures.from_weights(
                network,
                settings.layers,
                pooling=settings.pooling,
                precision=settings.precision,
                preprocessed=preprocessed,
                **options,
            )
        return cls(
            network,
            settings.content_layers,
            settings.style_layers,
            content_weight=settings.content_weight,
            style_weight=settings.style_weight,
            tv_weight=settings.tv_weight,
            **targets,
        )

    @property
    def layers(self) -> tuple[str, ...]:
        """The network layers the terms use: content layers, then the style layers not among them."""
        return loss_layers(list(self.content_layers), list(self.style_layers))

    def content_features(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """{content layer: [N, H', W', C]} activations, e.g. the content targets of images [N, H, W, 3]."""
        return WholeImages(self.network).features(images, tuple(self.content_layers))

    def grams(self, images: tf.Tensor) -> dict[str, tf.Tensor]:
        """{style layer: [N, C, C]} Gram matrices of images [N, H, W, 3], e.g. style targets."""
        return WholeImages(self.network).grams(images, tuple(self.style_layers))

    def style_grams(
        self,
        styles: Sequence[np.ndarray | tf.Tensor],
        masks: Sequence[np.ndarray | None] | None = None,
        *,
        features: TargetFeatures | None = None,
    ) -> dict[str, tf.Tensor]:
        """{style layer: [S, C, C]} Gram matrices of S style images [H_s, W_s, 3] of any sizes.

        Args:
            styles: the images.
            masks: per style, None or a mask [H_s, W_s] in 0..1: its Gram matrices are then those of that region
                (:func:`~neural_style.losses.guided_gram_matrix`).
            features: how they are computed; None: :class:`WholeImages` of the objective's network.
        """
        source = WholeImages(self.network) if features is None else features
        layers = tuple(self.style_layers)
        per_style = [
            source.grams(tf.convert_to_tensor(style, tf.float32)[None], layers, None if masks is None else masks[i])
            for i, style in enumerate(styles)
        ]
        return {layer: tf.concat([grams[layer] for grams in per_style], axis=0) for layer in layers}

    def with_targets(
        self,
        *,
        content: np.ndarray | tf.Tensor | None = None,
        styles: Sequence[np.ndarray | tf.Tensor] | None = None,
        blend: Sequence[float] | np.ndarray | None = None,
        content_masks: np.ndarray | None = None,
        style_masks: Sequence[np.ndarray | None] | None = None,
        features: TargetFeatures | None = None,
    ) -> Objective:
        """The same objective with targets computed from images (in the network's input space).

        Args:
            content: [H, W, 3] content image, or None to keep the current content targets.
            styles: S style images [H_s, W_s, 3], or None to keep the current style targets.
            blend: S blend weights (normalised to sum 1), or None: equal weights for new styles, else unchanged.
            content_masks: [S, H, W] in 0..1, where each style applies in images of size H x W (the content's), or
                None to keep the current ones.
            style_masks: with ``styles``: per style, None or a mask [H_s, W_s] of the part it is taken from.
            features: how the targets' features are computed; None: :class:`WholeImages` of the objective's
                network. :class:`neural_style.tiling.TiledImages` gives the same targets in memory bounded by a tile.
        """
        source = WholeImages(self.network) if features is None else features
        changes: dict[str, Any] = {}
        if content is not None:
            image = tf.convert_to_tensor(content, tf.float32)[None]
            targets = source.features(image, tuple(self.content_layers))
            changes["content_targets"] = {layer: tf.constant(value) for layer, value in targets.items()}
        if content_masks is not None:
            changes["content_masks"] = L.layer_masks(content_masks, self.network, tuple(self.style_layers))
        if styles is not None:
            if not len(styles):
                raise NeuralStyleError("no style images given; pass at least one")
            changes["style_targets"] = self.style_grams(styles, style_masks, features=source)
            given = None if blend is None else [float(b) for b in blend]
            changes["blend"] = tf.constant(L.blend_weights(given, len(styles)))
        elif blend is not None:
            changes["blend"] = tf.constant(np.asarray(blend, np.float32))
        return dataclasses.replace(self, **changes)

    def held_targets(self: HeldT) -> HeldT:
        """The same objective with its content targets, style targets and blend held in variables, the content
        targets' height and width free to change: a step traced with it serves the targets that :meth:`assign_targets`
        gives it later, at any size (e.g. the stages of coarse-to-fine, or video frames)."""
        if self.content_targets is None or self.style_targets is None or self.blend is None:
            raise NeuralStyleError("an objective is held with its targets: compute them first (with_targets)")
        return dataclasses.replace(
            self,
            content_targets={
                layer: resizable(value, name=f"content_{layer}") for layer, value in self.content_targets.items()
            },
            style_targets={
                layer: tf.Variable(value, trainable=False, name=f"style_{layer}")
                for layer, value in self.style_targets.items()
            },
            blend=tf.Variable(self.blend, trainable=False, name="blend"),
        )

    def assign_targets(self, other: Objective) -> None:
        """Copies the targets and blend of ``other`` (the same objective, e.g. at another size) into this
        :meth:`held_targets` one."""
        assert self.content_targets is not None and other.content_targets is not None
        assert self.style_targets is not None and other.style_targets is not None
        assert isinstance(self.blend, tf.Variable) and other.blend is not None
        for held, given in ((self.content_targets, other.content_targets), (self.style_targets, other.style_targets)):
            for layer, value in given.items():
                variable = held[layer]
                assert isinstance(variable, tf.Variable)
                variable.assign(value)
        self.blend.assign(other.blend)

    def __call__(
        self,
        images: tf.Tensor,
        *,
        content_targets: Mapping[str, tf.Tensor] | None = None,
        style_targets: Mapping[str, tf.Tensor] | None = None,
        blend: tf.Tensor | None = None,
        style_weight: float | tf.Tensor | None = None,
    ) -> dict[str, tf.Tensor]:
        """The weighted terms of images [N, H, W, 3] (in the network's input space).

        Args:
            images: the batch.
            content_targets: {layer: [1 or N, ...]}, instead of the objective's.
            style_targets: {layer: [N, C, C]}: compare image i with target i, instead of with the blended styles.
            blend: [S] or [N, S], instead of the objective's.
            style_weight: scalar or [N], instead of the objective's.

        Returns:
            {"content", "style", "tv", "total"}: [N] each, weighted; total = content + style + tv.
        """
        features = self.network(images, layers=self.layers)
        targets = self.content_targets if content_targets is None else content_targets
        if targets is None:
            raise NeuralStyleError("the objective has no content targets: give content_targets or with_targets()")
        if style_targets is not None:
            grams = {layer: L.gram_matrix(features[layer]) for layer in self.style_layers}
            style = L.paired_style_loss(grams, style_targets, self.style_layers)
        else:
            if self.style_targets is None:
                raise NeuralStyleError("the objective has no style targets: give style_targets or with_targets()")
            chosen = self.blend if blend is None else blend
            assert chosen is not None
            if self.content_masks is not None:
                style = L.guided_style_loss(features, self.style_targets, self.content_masks, self.style_layers, chosen)
            else:
                grams = {layer: L.gram_matrix(features[layer]) for layer in self.style_layers}
                style = L.style_loss(grams, self.style_targets, self.style_layers, chosen)
        return L.total_loss(
            L.content_loss(features, targets, self.content_layers),
            style,
            L.tv_loss(images),
            content_weight=self.content_weight,
            style_weight=self.style_weight if style_weight is None else style_weight,
            tv_weight=self.tv_weight,
        )
