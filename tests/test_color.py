"""Tests of colour control (neural_style.color): luminance transfer (luma from the stylized image, chroma from the
content; the style's luma matched to the content's) and colour histogram matching (RGB mean and covariance)."""

from __future__ import annotations

import numpy as np

from neural_style.color import color_inputs, match_color_histogram, match_luminance, preserve_colors


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


def _coloured(height: int, width: int, seed: int, mix: list[list[float]]) -> np.ndarray:
    """Random pixels with correlated channels (``mix``), in about 0..255."""
    pixels = np.random.default_rng(seed).uniform(0, 255, (height, width, 3)) @ np.asarray(mix).T
    return pixels.astype(np.float32)


def test_histogram_matching_gives_the_content_mean_and_covariance() -> None:
    """After matching, the style's RGB mean and covariance are the content's to 1e-3 (of images of other sizes)."""
    style = _coloured(30, 20, 0, [[0.3, 0.0, 0.0], [0.2, 0.5, 0.1], [0.0, 0.1, 0.9]])
    content = _coloured(12, 16, 1, [[0.8, 0.2, 0.0], [0.0, 0.6, 0.3], [0.1, 0.0, 0.2]])
    matched = match_color_histogram(style, content).reshape(-1, 3).astype(np.float64)
    target = content.reshape(-1, 3).astype(np.float64)
    np.testing.assert_allclose(matched.mean(axis=0), target.mean(axis=0), atol=1e-3)
    np.testing.assert_allclose(np.cov(matched.T, bias=True), np.cov(target.T, bias=True), atol=1e-3)


def test_histogram_matching_of_a_flat_style_is_finite() -> None:
    """A one-colour style (zero covariance) moves to the content's mean colour."""
    flat = np.full((4, 4, 3), 50.0, np.float32)
    content = _coloured(6, 6, 2, [[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    np.testing.assert_allclose(
        match_color_histogram(flat, content), np.broadcast_to(content.mean((0, 1)), (4, 4, 3)), atol=1e-2
    )


def test_luminance_matching_and_the_luminance_inputs() -> None:
    """The style's luma gets the content's mean and standard deviation; in luminance mode the network sees grey
    images (three equal channels); histogram mode leaves the content alone."""
    style = _coloured(10, 10, 3, [[0.3, 0.0, 0.0], [0.2, 0.5, 0.1], [0.0, 0.1, 0.9]])
    content = _coloured(8, 12, 4, [[0.8, 0.2, 0.0], [0.0, 0.6, 0.3], [0.1, 0.0, 0.2]])
    luma = match_luminance(style, content)[..., 0].astype(np.float64)
    assert abs(luma.mean() - _luma(content.astype(np.float64)).mean()) < 1e-3
    assert abs(luma.std() - _luma(content.astype(np.float64)).std()) < 1e-3
    grey_content, (grey_style,) = color_inputs(content, [style], "luminance")
    for grey in (grey_content, grey_style):
        np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    np.testing.assert_allclose(grey_content[..., 0], _luma(content), rtol=1e-5)
    same, _ = color_inputs(content, [style], "histogram")
    assert same is content
