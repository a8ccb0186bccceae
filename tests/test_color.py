"""Tests of colour preservation (neural_style.color.preserve_colors): luma from the stylized image, chroma from
the content."""

from __future__ import annotations

import numpy as np

from neural_style.color import preserve_colors


def _luma(rgb: np.ndarray) -> np.ndarray:
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """Cb and Cr, ITU-R BT.601 full range (JPEG)."""
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return np.stack([cb, cr], axis=-1)


def test_preserve_colors_takes_luma_from_stylized_and_chroma_from_content():
    """Output luma is the stylized image's, output Cb/Cr are the content's (values chosen so nothing clips)."""
    rng = np.random.default_rng(11)
    stylized = rng.uniform(60, 190, (6, 7, 3))
    content = rng.uniform(100, 150, (6, 7, 3))  # weakly saturated: chroma within about +-25 of 128
    result = preserve_colors(stylized, content)
    assert result.shape == (6, 7, 3) and result.dtype == np.float32
    assert result.min() > 0 and result.max() < 255  # no clipping happened
    np.testing.assert_allclose(_luma(result), _luma(stylized), atol=1e-3)
    np.testing.assert_allclose(_chroma(result), _chroma(content), atol=1e-3)


def test_preserve_colors_gray_on_gray_returns_the_stylized_image():
    """A gray stylized image on a gray content (chroma 128) comes back unchanged."""
    rng = np.random.default_rng(12)
    stylized = np.repeat(rng.uniform(0, 255, (5, 4, 1)), 3, axis=-1)
    content = np.repeat(rng.uniform(0, 255, (5, 4, 1)), 3, axis=-1)
    np.testing.assert_allclose(preserve_colors(stylized, content), stylized, atol=1e-3)
