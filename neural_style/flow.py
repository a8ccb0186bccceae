"""Optical flow between video frames, warping by it, and where it can be trusted (Ruder et al. 2016).

The flow is OpenCV's DIS (dense inverse search), part of the video extra; OpenCV is imported inside the functions
that need it. A flow ``f`` from image ``a`` to image ``b`` is [H, W, 2] (x, y) displacements with
``a[y, x] ~ b[y + f[y, x, 1], x + f[y, x, 0]]``, so :func:`warp` of ``b`` by ``f`` resembles ``a``: to bring the
previous frame's result into the current frame, warp it by the flow from the current frame to the previous one.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

import numpy as np

from neural_style.errors import NeuralStyleError
from neural_style.image_io import to_uint8

__all__ = [
    "PHOTOMETRIC_TOLERANCE",
    "consistency_mask",
    "long_term_guide",
    "long_term_masks",
    "optical_flow",
    "photometric_mask",
    "temporal_guide",
    "warp",
]

# Ruder et al.'s forward-backward check: a pixel is trusted when |w + b|^2 <= A (|w|^2 + |b|^2) + B, where b is its
# backward flow and w the forward flow where b leads; and not on a motion boundary, where
# |grad b_x|^2 + |grad b_y|^2 > C |b|^2 + D.
_CONSISTENCY = (0.01, 0.5)
_BOUNDARY = (0.01, 0.002)
# The largest mean absolute difference (0..255 levels, over R, G and B) between a content frame and the previous one
# warped into it at a trusted pixel. DIS flow is smooth across object edges, where the two tests above can miss a
# disocclusion; a pixel whose own content the warp does not reproduce cannot be trusted with the result's either.
PHOTOMETRIC_TOLERANCE = 12.0


def _cv2() -> ModuleType:
    try:
        import cv2
    except ImportError:
        from neural_style.video import INSTALL_HINT

        raise NeuralStyleError(f"optical flow needs OpenCV, part of the video extra: {INSTALL_HINT}") from None
    return cv2


def _gray(image: np.ndarray) -> np.ndarray:
    """[H, W, 3] RGB 0..255 -> [H, W] uint8 luma (BT.601)."""
    rgb = np.asarray(image, np.float32)
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return to_uint8(luma)


def optical_flow(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The dense optical flow from ``source`` to ``target`` (OpenCV's DIS, medium preset, on luma).

    Args:
        source, target: [H, W, 3] RGB in 0..255, the same size.

    Returns:
        [H, W, 2] float32 (x, y) displacements: ``source[p] ~ target[p + flow[p]]``.
    """
    if source.shape != target.shape:
        raise NeuralStyleError(f"frames of shapes {source.shape} and {target.shape}; the flow needs one size")
    cv2 = _cv2()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return np.asarray(dis.calc(_gray(source), _gray(target), None), np.float32)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` sampled at ``p + flow[p]`` for every pixel p (bilinear; outside the image, its nearest edge).

    Args:
        image: [H, W, C] (or [H, W]) floats.
        flow: [H, W, 2] (x, y) displacements.

    Returns:
        float32 of the shape of ``image``.
    """
    cv2 = _cv2()
    height, width = flow.shape[:2]
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x = x + flow[..., 0].astype(np.float32)
    map_y = y + flow[..., 1].astype(np.float32)
    source = np.ascontiguousarray(image, np.float32)
    return np.asarray(
        cv2.remap(source, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE), np.float32
    )


def consistency_mask(forward: np.ndarray, backward: np.ndarray) -> np.ndarray:
    """Where the backward flow can be trusted: Ruder et al.'s forward-backward consistency and motion boundaries.

    A pixel p of the later frame is kept when following its backward flow b(p) to the earlier frame and the
    forward flow w = forward(p + b(p)) from there comes back near p, and when b does not change sharply around p.
    Pixels that were hidden in the earlier frame (disoccluded, e.g. behind a moving object's trailing edge) fail
    the first test.

    Args:
        forward: [H, W, 2] flow from the earlier frame to the later one.
        backward: [H, W, 2] flow from the later frame to the earlier one.

    Returns:
        [H, W] float32, 1 where the flow is trusted and 0 where it is not.
    """
    there = warp(forward, backward)
    a, b = _CONSISTENCY
    round_trip = np.sum((there + backward) ** 2, axis=-1)
    consistent = round_trip <= a * (np.sum(there**2, axis=-1) + np.sum(backward**2, axis=-1)) + b
    dy_x, dx_x = np.gradient(backward[..., 0])
    dy_y, dx_y = np.gradient(backward[..., 1])
    c, d = _BOUNDARY
    boundary = dx_x**2 + dy_x**2 + dx_y**2 + dy_y**2 > c * np.sum(backward**2, axis=-1) + d
    return (consistent & ~boundary).astype(np.float32)


def photometric_mask(
    previous_content: np.ndarray, content: np.ndarray, backward: np.ndarray, tolerance: float = PHOTOMETRIC_TOLERANCE
) -> np.ndarray:
    """Where warping the previous content frame by ``backward`` reproduces the current one.

    Args:
        previous_content, content: [H, W, 3] consecutive frames, RGB 0..255.
        backward: [H, W, 2] flow from ``content`` to ``previous_content``.
        tolerance: largest mean absolute difference over the channels, in 0..255 levels.

    Returns:
        [H, W] float32, 1 where ``|warp(previous_content, backward) - content|`` averaged over R, G and B is at most
        ``tolerance``, else 0.
    """
    error = np.mean(np.abs(warp(previous_content, backward) - np.asarray(content, np.float32)), axis=-1)
    return (error <= tolerance).astype(np.float32)


def temporal_guide(
    previous_content: np.ndarray, content: np.ndarray, previous_result: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The previous result brought into the current frame, and where that can be trusted.

    Args:
        previous_content, content: [H, W, 3] consecutive content frames, RGB 0..255.
        previous_result: [H, W, 3] the stylized previous frame, RGB 0..255.

    Returns:
        (warped [H, W, 3] float32, mask [H, W] float32 of 0 and 1): the mask is 1 where both
        :func:`consistency_mask` and :func:`photometric_mask` trust the flow.
    """
    backward = optical_flow(content, previous_content)
    forward = optical_flow(previous_content, content)
    mask = consistency_mask(forward, backward) * photometric_mask(previous_content, content, backward)
    return warp(previous_result, backward), mask


def long_term_masks(masks: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Ruder et al.'s long-term weights: each earlier frame counts only where no nearer one is trusted.

    ``c_long_j = max(c_j - sum_{k nearer than j} c_k, 0)``, so with masks of 0 and 1 every pixel is compared with
    the nearest frame in which it was not occluded, and with none where it was occluded in all.

    Args:
        masks: [H, W] weights c_j in 0..1 of the earlier frames, nearest first.

    Returns:
        [H, W] float32 each, in the same order (the first unchanged).
    """
    result: list[np.ndarray] = []
    nearer: np.ndarray | None = None
    for mask in masks:
        mask = np.asarray(mask, np.float32)
        result.append(mask if nearer is None else np.maximum(mask - nearer, 0.0))
        nearer = mask if nearer is None else nearer + mask
    return result


def long_term_guide(
    content: np.ndarray, earlier: Sequence[tuple[np.ndarray, np.ndarray] | None]
) -> tuple[np.ndarray, np.ndarray]:
    """Several earlier results brought into the current frame, each weighed by :func:`long_term_masks`.

    Args:
        content: [H, W, 3] the current content frame, RGB 0..255.
        earlier: (content frame, result), RGB 0..255, of each earlier frame compared with, nearest first; None for
            an offset with no such frame (before the clip's start), which gets a warped image of zeros and mask 0.

    Returns:
        (warped [K, H, W, 3] float32, masks [K, H, W] float32) for the K entries of ``earlier``: each result warped
        into this frame (:func:`temporal_guide`) and its long-term weight. The first mask is that entry's own
        trusted pixels, so with one entry this is :func:`temporal_guide` with a leading axis.
    """
    height, width = content.shape[:2]
    warped = np.zeros((len(earlier), height, width, 3), np.float32)
    masks = []
    for k, pair in enumerate(earlier):
        if pair is None:
            masks.append(np.zeros((height, width), np.float32))
            continue
        warped[k], mask = temporal_guide(pair[0], content, pair[1])
        masks.append(mask)
    return warped, np.stack(long_term_masks(masks)) if masks else np.zeros((0, height, width), np.float32)
