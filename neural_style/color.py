"""Colour control (Gatys, Bethge, Hertzmann and Shechtman, "Preserving Color in Neural Artistic Style Transfer",
2016): luminance-only transfer and colour histogram matching.

``luminance``: the network sees only luminance. The content image becomes its luma (as a grey RGB image), each style
image its luma with mean and standard deviation matched to the content's; the result's luma is then combined with
the content's chroma (:func:`preserve_colors`). ``histogram``: before stylization, each style image's RGB colours are
mapped linearly so that their mean and covariance equal the content's (:func:`match_color_histogram`).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "color_inputs",
    "luminance_image",
    "match_color_histogram",
    "match_luminance",
    "preserve_colors",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
]

# Eigenvalues of a style's colour covariance below this (in (0..255)^2 units) are raised to it, so that a flat or
# single-hue style image is mapped without dividing by zero.
_MIN_VARIANCE = 1e-6

# ITU-R BT.601 full range (the JPEG convention, also Pillow's "YCbCr" mode).
_RGB_TO_YCBCR = np.array(
    [
        [0.299, 0.587, 0.114],
        [-0.168736, -0.331264, 0.5],
        [0.5, -0.418688, -0.081312],
    ]
)
_CHROMA_OFFSET = np.array([0.0, 128.0, 128.0])


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """[..., 3] RGB in 0..255 -> [..., 3] Y, Cb, Cr in 0..255 (float64)."""
    return np.asarray(rgb, dtype=np.float64) @ _RGB_TO_YCBCR.T + _CHROMA_OFFSET


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr` (float64, not clipped)."""
    return (np.asarray(ycbcr, dtype=np.float64) - _CHROMA_OFFSET) @ np.linalg.inv(_RGB_TO_YCBCR).T


def preserve_colors(stylized: np.ndarray, content: np.ndarray) -> np.ndarray:
    """Y (Rec. 601 luma) from the stylized image, Cb and Cr from the content image.

    Args:
        stylized: [H, W, 3] RGB floats; clipped to 0..255 first.
        content: [H, W, 3] RGB floats of the same size; clipped to 0..255 first.

    Returns:
        [H, W, 3] float32 RGB in 0..255.
    """
    if stylized.shape != content.shape:
        raise ValueError(f"stylized image {stylized.shape} and content image {content.shape} differ in shape")
    luma = rgb_to_ycbcr(np.clip(stylized, 0, 255))[..., 0]
    combined = rgb_to_ycbcr(np.clip(content, 0, 255))
    combined[..., 0] = luma
    return np.clip(ycbcr_to_rgb(combined), 0, 255).astype(np.float32)


def luminance_image(image: np.ndarray) -> np.ndarray:
    """The Rec. 601 luma of [H, W, 3] RGB as a grey RGB image [H, W, 3] float32 (all three channels equal)."""
    luma = rgb_to_ycbcr(image)[..., :1]
    return np.repeat(luma, 3, axis=-1).astype(np.float32)


def match_luminance(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The style's luma, linearly mapped so its mean and standard deviation are the content's luma's.

    L' = (sigma_c / sigma_s) (L_s - mu_s) + mu_c, as in Gatys et al. 2016 (a flat style only gets the mean).

    Args:
        style: [H_s, W_s, 3] RGB.
        content: [H, W, 3] RGB.

    Returns:
        [H_s, W_s, 3] float32 grey RGB image (not clipped).
    """
    luma_s = rgb_to_ycbcr(style)[..., 0]
    luma_c = rgb_to_ycbcr(content)[..., 0]
    std_s, std_c = float(luma_s.std()), float(luma_c.std())
    scale = std_c / std_s if std_s > 0 else 0.0
    matched = (luma_s - luma_s.mean()) * scale + luma_c.mean()
    return np.repeat(matched[..., None], 3, axis=-1).astype(np.float32)


def _sqrt_and_inverse_sqrt(covariance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric square root of a 3x3 covariance and of its inverse (eigenvalues floored at _MIN_VARIANCE)."""
    values, vectors = np.linalg.eigh(covariance)
    values = np.maximum(values, _MIN_VARIANCE)
    root = (vectors * np.sqrt(values)) @ vectors.T
    inverse_root = (vectors / np.sqrt(values)) @ vectors.T
    return root, inverse_root


def match_color_histogram(style: np.ndarray, content: np.ndarray) -> np.ndarray:
    """The style image with its RGB mean and covariance made the content's: x' = A (x - mu_s) + mu_c.

    A = Sigma_c^(1/2) Sigma_s^(-1/2) with symmetric matrix square roots (from eigendecompositions): the "image
    analogies" variant of Gatys et al. 2016 (rather than the Cholesky one), so A Sigma_s A^T = Sigma_c.

    Args:
        style: [H_s, W_s, 3] RGB.
        content: [H, W, 3] RGB.

    Returns:
        [H_s, W_s, 3] float32, not clipped (clipping would change the matched statistics).
    """
    pixels_s = np.asarray(style, np.float64).reshape(-1, 3)
    pixels_c = np.asarray(content, np.float64).reshape(-1, 3)
    mean_s, mean_c = pixels_s.mean(axis=0), pixels_c.mean(axis=0)
    _, inverse_root_s = _sqrt_and_inverse_sqrt(np.cov(pixels_s, rowvar=False, bias=True))
    root_c, _ = _sqrt_and_inverse_sqrt(np.cov(pixels_c, rowvar=False, bias=True))
    matched = (pixels_s - mean_s) @ (root_c @ inverse_root_s).T + mean_c
    return matched.reshape(np.shape(style)).astype(np.float32)


def color_inputs(content: np.ndarray, styles: list[np.ndarray], mode: str) -> tuple[np.ndarray, list[np.ndarray]]:
    """The content and style images the network is given for a colour ``mode`` ("none", "luminance", "histogram").

    Args:
        content: [H, W, 3] RGB 0..255.
        styles: S images [H_s, W_s, 3] RGB 0..255.
        mode: see the module docstring.

    Returns:
        (content, styles): unchanged for "none"; luminance images for "luminance"; the styles' colours matched to
        the content's for "histogram".
    """
    if mode == "luminance":
        return luminance_image(content), [match_luminance(style, content) for style in styles]
    if mode == "histogram":
        return content, [match_color_histogram(style, content) for style in styles]
    return content, list(styles)
