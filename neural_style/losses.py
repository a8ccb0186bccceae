"""The losses of neural-style: pure functions of feature tensors.

Every loss is returned per image, shape [N], so that a batch of N candidate images is optimised as N independent
problems: the gradient of the batch's summed loss with respect to image i is the gradient of loss i alone.
:class:`neural_style.objective.Objective` assembles them into the loss of a batch of images.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import tensorflow as tf

from neural_style.config import check_blend_weights
from neural_style.vgg import VggFeatures

__all__ = [
    "blend_weights",
    "content_loss",
    "gram_matrix",
    "gram_sum",
    "guided_gram_matrix",
    "guided_style_loss",
    "layer_masks",
    "mask_area",
    "paired_style_loss",
    "style_loss",
    "temporal_loss",
    "total_loss",
    "tv_loss",
]


def gram_sum(features: tf.Tensor, masks: tf.Tensor | None = None) -> tf.Tensor:
    """The unnormalised Gram matrix, a sum over positions: the part of a Gram matrix that a tile contributes.

    Args:
        features: [N, H, W, C] activations.
        masks: None, or [M, H, W] weights m_p of the positions (one Gram matrix per mask).

    Returns:
        [N, C, C] sum_p f_p f_p^T; with masks [N, M, C, C] sum_p m_p f_p f_p^T.
    """
    shape = tf.shape(features)
    if masks is None:
        flat = tf.reshape(features, (shape[0], shape[1] * shape[2], shape[3]))
        return tf.matmul(flat, flat, transpose_a=True)
    flat = tf.reshape(features, (shape[0], 1, shape[1] * shape[2], shape[3]))  # [N, 1, P, C]
    weights = tf.reshape(tf.cast(masks, features.dtype), (1, -1, shape[1] * shape[2], 1))  # [1, M, P, 1]
    weighted = flat * weights  # [N, M, P, C]
    return tf.matmul(tf.broadcast_to(flat, tf.shape(weighted)), weighted, transpose_a=True)


def gram_matrix(features: tf.Tensor) -> tf.Tensor:
    """Gram matrix normalised by the feature map's size.

    Args:
        features: [N, H, W, C] activations.

    Returns:
        [N, C, C]: F^T F / (H W C) with F the activations of each image reshaped to [H W, C].
    """
    shape = tf.shape(features)
    size = tf.cast(shape[1] * shape[2] * shape[3], features.dtype)
    return gram_sum(features) / size


def mask_area(masks: tf.Tensor, channels: int | tf.Tensor, dtype: tf.DType = tf.float32) -> tf.Tensor:
    """The normaliser of :func:`guided_gram_matrix`: C sum_p m_p for each of masks [M, H, W], as [M]."""
    area = tf.reduce_sum(tf.cast(masks, dtype), axis=(1, 2)) * tf.cast(channels, dtype)
    return tf.maximum(area, 1e-12)


def guided_gram_matrix(features: tf.Tensor, masks: tf.Tensor) -> tf.Tensor:
    """Gram matrices of the regions that masks pick out, each normalised by its mask's area.

    G_m = sum_p m_p f_p f_p^T / (C sum_p m_p): the outer products of the feature vectors f_p at the positions p,
    weighted by the mask (the features weighted by sqrt(m), as a Gram matrix), over the channel count C times the
    mask's area. A mask of all ones gives :func:`gram_matrix`; a mask of constant value gives the same.

    Args:
        features: [N, H, W, C] activations.
        masks: [M, H, W] non-negative weights, each with a positive sum.

    Returns:
        [N, M, C, C].
    """
    area = mask_area(masks, tf.shape(features)[3], features.dtype)
    return gram_sum(features, masks) / area[None, :, None, None]


def layer_masks(masks: np.ndarray | tf.Tensor, network: VggFeatures, layers: Sequence[str]) -> dict[str, tf.Tensor]:
    """Masks at the input's resolution brought to the resolution of each of ``layers``.

    Every 2x2 pooling of the network is mirrored by a 2x2 average of the mask (SAME padding, which averages only
    the pixels inside the image), so a mask keeps its area share and soft edges widen at deeper layers.

    Args:
        masks: [M, H, W] floats in 0..1 at the size of the network's input.
        network: the VGG layer whose features the masks go with.
        layers: layer names of ``network``.

    Returns:
        {layer: [M, H_l, W_l]} float32.
    """
    x = tf.convert_to_tensor(masks, tf.float32)[..., None]
    found: dict[str, tf.Tensor] = {}
    for name, kind, _ in network.layer_specs:
        if kind == "pool":
            x = tf.nn.avg_pool2d(x, 2, 2, padding="SAME")
        if name in layers:
            found[name] = x[..., 0]
        if len(found) == len(layers):
            break
    return {layer: found[layer] for layer in layers}


def blend_weights(weights: Sequence[float] | None, n_styles: int) -> np.ndarray:
    """Style blend weights normalised to sum 1; equal weights when ``weights`` is None.

    Returns:
        float32 [n_styles].

    Raises:
        NeuralStyleError: a count other than ``n_styles``, a negative weight or a zero sum.
    """
    if weights is None:
        return np.full(n_styles, 1.0 / n_styles, dtype=np.float32)
    check_blend_weights(weights, n_styles)
    array = np.asarray(weights, dtype=np.float64)
    return (array / array.sum()).astype(np.float32)


def content_loss(
    features: Mapping[str, tf.Tensor], targets: Mapping[str, tf.Tensor], layer_weights: Mapping[str, float]
) -> tf.Tensor:
    """sum_l w_l mean((F_l - P_l)^2), per image.

    Args:
        features: {layer: [N, H, W, C]} activations of the images.
        targets: {layer: [1 or N, H, W, C]} activations of the content image.
        layer_weights: {layer: w_l}.

    Returns:
        [N] content loss of each image (unweighted by the content weight).
    """
    terms = [
        w * tf.reduce_mean(tf.square(features[layer] - targets[layer]), axis=(1, 2, 3))
        for layer, w in layer_weights.items()
    ]
    return tf.add_n(terms)


def style_loss(
    grams: Mapping[str, tf.Tensor],
    target_grams: Mapping[str, tf.Tensor],
    layer_weights: Mapping[str, float],
    blend: tf.Tensor,
) -> tf.Tensor:
    """sum_s b_s sum_l w_l mean((G_l - A_sl)^2), per image.

    Args:
        grams: {layer: [N, C, C]} Gram matrices of the images, or {layer: [N, S, C, C]}: one per style (each of
            the region where that style applies, :func:`guided_gram_matrix`).
        target_grams: {layer: [S, C, C]} Gram matrices of the S style images.
        layer_weights: {layer: w_l}.
        blend: [S] or [N, S] style blend weights b_s (one row per image for blend sweeps).

    Returns:
        [N] style loss of each image (unweighted by the style weight).
    """
    blend = tf.convert_to_tensor(blend, dtype=tf.float32)

    def per_style_grams(layer: str) -> tf.Tensor:
        gram = grams[layer]
        return gram if gram.shape.rank == 4 else gram[:, None]

    per_style = tf.add_n(
        [
            w * tf.reduce_mean(tf.square(per_style_grams(layer) - target_grams[layer][None]), axis=(2, 3))
            for layer, w in layer_weights.items()
        ]
    )  # [N, S]
    return tf.reduce_sum(per_style * blend, axis=-1)


def guided_style_loss(
    features: Mapping[str, tf.Tensor],
    target_grams: Mapping[str, tf.Tensor],
    masks: Mapping[str, tf.Tensor],
    layer_weights: Mapping[str, float],
    blend: tf.Tensor,
) -> tf.Tensor:
    """Spatially guided style loss: sum_s b_s sum_l w_l mean((G_l^s - A_sl)^2), with G_l^s the Gram matrix of
    the region of style s (:func:`guided_gram_matrix` with its mask), per image.

    Where every mask is 0, no style applies; two disjoint masks give the sum of the two single-region losses.

    Args:
        features: {layer: [N, H, W, C]} activations of the images.
        target_grams: {layer: [S, C, C]} Gram matrices of the S style images (each over its own style mask, if any).
        masks: {layer: [S, H, W]} where each style applies, at that layer's resolution (:func:`layer_masks`).
        layer_weights: {layer: w_l}.
        blend: [S] or [N, S] weights of the regions' terms.

    Returns:
        [N] style loss of each image (unweighted by the style weight).
    """
    grams = {layer: guided_gram_matrix(features[layer], masks[layer]) for layer in layer_weights}
    return style_loss(grams, target_grams, layer_weights, blend)


def tv_loss(images: tf.Tensor) -> tf.Tensor:
    """Total variation: mean((x[1:, :] - x[:-1, :])^2) + mean((x[:, 1:] - x[:, :-1])^2), per image.

    Args:
        images: [N, H, W, C], preprocessed.

    Returns:
        [N] total variation of each image (unweighted by the tv weight).
    """
    dy = images[:, 1:, :, :] - images[:, :-1, :, :]
    dx = images[:, :, 1:, :] - images[:, :, :-1, :]
    return tf.reduce_mean(tf.square(dy), axis=(1, 2, 3)) + tf.reduce_mean(tf.square(dx), axis=(1, 2, 3))


def temporal_loss(images: tf.Tensor, warped: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Ruder et al.'s short-term temporal loss: (1 / D) sum c (x - w)^2 over the D = H W C values, per image.

    Args:
        images: [N, H, W, C] the frames being optimised.
        warped: [1 or N, H, W, C] the previous frame's result warped into this frame (same space as ``images``).
        mask: [1 or N, H, W, 1] (or [.., C]) weights c, 1 where the flow is trusted and 0 where it is not.

    Returns:
        [N] the mean of ``mask * (images - warped)^2`` over each image's values (masked values count as zeros).
    """
    weights = tf.broadcast_to(tf.cast(mask, images.dtype), tf.shape(images))
    return tf.reduce_mean(weights * tf.square(images - warped), axis=(1, 2, 3))


def total_loss(
    content: tf.Tensor,
    style: tf.Tensor,
    tv: tf.Tensor,
    *,
    content_weight: float | tf.Tensor,
    style_weight: float | tf.Tensor,
    tv_weight: float | tf.Tensor,
) -> dict[str, tf.Tensor]:
    """Weights the three loss terms and adds them up.

    Args:
        content, style, tv: [N] unweighted terms.
        content_weight, style_weight, tv_weight: their weights, scalars or [N] (one per image).

    Returns:
        {"content", "style", "tv", "total"}: each [N], weighted; total = content + style + tv.
    """
    weighted = {"content": content_weight * content, "style": style_weight * style, "tv": tv_weight * tv}
    weighted["total"] = weighted["content"] + weighted["style"] + weighted["tv"]
    return weighted


def paired_style_loss(
    grams: Mapping[str, tf.Tensor], target_grams: Mapping[str, tf.Tensor], layer_weights: Mapping[str, float]
) -> tf.Tensor:
    """sum_l w_l mean((G_l - A_l)^2), per image, each image against its own target.

    Args:
        grams: {layer: [N, C, C]} Gram matrices of the images.
        target_grams: {layer: [N, C, C]} the Gram matrix each image is compared with.
        layer_weights: {layer: w_l}.

    Returns:
        [N] style loss of each image (unweighted by the style weight).
    """
    # mean((G - A)^2) per image is the content loss of the Gram matrices seen as [N, C, C, 1] maps.
    own = {layer: grams[layer][..., None] for layer in layer_weights}
    targets = {layer: target_grams[layer][..., None] for layer in layer_weights}
    return content_loss(own, targets, layer_weights)
