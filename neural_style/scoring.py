"""The loss terms of finished images: what a run's objective says of an image as it was saved.

The loss an optimiser reports is that of the image it holds, which may never be written: Adam's image is not
clipped, and the file is clipped to 0..255 and rounded to 8 bits (and colour-preserved when asked). To judge a
result, or another program's, :func:`score_images` evaluates neural-style's objective (:func:`build_objective`: the
same network, targets and weights as a run with these settings) on RGB images as they are read from their files.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from neural_style.color import luminance_image
from neural_style.config import TERMS, StyleConfig
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import VggWeights
from neural_style.objective import Objective
from neural_style.regions import Regions
from neural_style.stylization import build_objective
from neural_style.tiling import TiledObjective, tiled_if_needed
from neural_style.vgg import preprocess

__all__ = ["score_images"]


def _as_batch(images: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """The images as a list of [H, W, 3] arrays (one [H, W, 3] array is one image, [N, H, W, 3] is N)."""
    if isinstance(images, np.ndarray):
        if images.ndim == 3:
            return [images]
        if images.ndim == 4:
            return list(images)
        raise NeuralStyleError(f"images must be [H, W, 3] or [N, H, W, 3], got an array of shape {images.shape}")
    return [np.asarray(image) for image in images]


def _score(
    objective: Objective | TiledObjective, mean_pixel: np.ndarray, batch: Sequence[np.ndarray]
) -> dict[str, np.ndarray]:
    """The objective's terms of each image [H, W, 3] (RGB 0..255), one network pass per image to bound memory."""
    terms: dict[str, list[np.ndarray]] = {key: [] for key in TERMS}
    for image in batch:
        values = objective(preprocess(np.asarray(image, np.float32), mean_pixel)[None])
        for key in TERMS:
            terms[key].append(np.asarray(values[key], np.float32).reshape(1))
    return {key: np.concatenate(parts) for key, parts in terms.items()}


def score_images(
    weights: VggWeights,
    content: np.ndarray,
    styles: Sequence[np.ndarray],
    images: np.ndarray | Sequence[np.ndarray],
    config: StyleConfig | None = None,
    regions: Regions | None = None,
) -> dict[str, np.ndarray]:
    """neural-style's loss terms of finished images, under the settings of a run.

    The objective is the one a run with ``config`` optimises (:func:`build_objective`: content layers and blend,
    style layers and their weights, blend of the styles, the three weights, pooling and precision); only the
    settings of the loss matter here, not those of the optimiser. Images are taken as they are, in 0..255: score a
    file's pixels to know the loss of what was saved.

    Args:
        weights: the VGG parameters.
        content: [H, W, 3] RGB 0..255, at the images' size (resize it first, as a run does for its output size).
        styles: S arrays [H_s, W_s, 3] RGB 0..255, at the scale a run of this output width uses
            (:func:`neural_style.image_io.resize_styles`).
        images: [N, H, W, 3], [H, W, 3] or a sequence of [H, W, 3]: RGB 0..255, each of the content's size.
        config: the run's settings; None: neural-style's defaults. With ``tile_size``, images larger than a tile
            are evaluated tile by tile (:mod:`neural_style.tiling`): the same terms, in bounded memory. With
            luminance transfer (``preserve_colors``) an image is judged by its luminance, as a run judges it.
        regions: the run's masks (:mod:`neural_style.regions`), or None.

    Returns:
        {"content", "style", "tv", "total"}: [N] float32 each, weighted as in the run; total = content + style + tv.

    Raises:
        NeuralStyleError: no images, an image of another size than the content, or settings out of range.
    """
    config = config or StyleConfig()
    config.validate(len(styles))
    batch = _as_batch(images)
    if not batch:
        raise NeuralStyleError("no images to score; give one or more")
    if content.ndim != 3 or content.shape[-1] != 3:
        raise NeuralStyleError(f"the content must be [H, W, 3] RGB, got shape {content.shape}")
    for index, image in enumerate(batch):
        if image.shape != content.shape:
            raise NeuralStyleError(
                f"image {index} is {_size(image.shape)} but the content is {_size(content.shape)}; resize the "
                "content to each image's size (or score each size separately)"
            )
    if config.color_mode == "luminance":  # what the run's objective judged: the saved image's luminance
        batch = [luminance_image(np.asarray(image, np.float32)) for image in batch]
    objective = build_objective(weights, content, styles, config, regions=regions)
    loss = tiled_if_needed(objective, config.tile_size, content.shape[0], content.shape[1])  # print sizes: tiled
    return _score(loss, weights.mean_pixel, batch)


def _size(shape: Sequence[int]) -> str:
    """``WxH`` of an image shape [H, W, ...], or the shape itself when it is not an image's."""
    if len(shape) != 3:
        return f"of shape {tuple(shape)}"
    return f"{shape[1]}x{shape[0]}"
