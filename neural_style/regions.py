"""Spatial control (Gatys, Ecker, Bethge, Hertzmann and Shechtman, "Controlling Perceptual Factors in Neural Style
Transfer", 2017): masks that say where each style applies, and which part of each style image it is taken from.

A :class:`Regions` holds the masks at the size they were given; :func:`neural_style.stylization.build_objective`
resizes them to the images of the run (or of each coarse-to-fine stage) and the objective brings them to each
style layer's resolution (:func:`neural_style.losses.layer_masks`) for the guided Gram matrices
(:func:`neural_style.losses.guided_gram_matrix`). Nothing here needs TensorFlow, so the commands check masks before
starting it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from neural_style.errors import NeuralStyleError
from neural_style.image_io import resize

__all__ = ["Regions", "mask_from_image", "resize_mask"]

# A mask whose height, brought to the image's width, is off by more than this share of the image's height (and by
# more than one pixel) has another aspect ratio.
_ASPECT_TOLERANCE = 0.01


def mask_from_image(image: np.ndarray) -> np.ndarray:
    """A mask from an image read as RGB 0..255: its grey level (Rec. 601 luma) in 0..1.

    Args:
        image: [H, W, 3] RGB in 0..255 (a grey image read as RGB has three equal channels).

    Returns:
        [H, W] float32 in 0..1.
    """
    luma = np.asarray(image, np.float64) @ np.array([0.299, 0.587, 0.114])
    return np.clip(luma / 255.0, 0.0, 1.0).astype(np.float32)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """[H, W] mask resized to ``size`` = (height, width) as images are, then clipped to 0..1 (Lanczos overshoots)."""
    resized = resize(np.asarray(mask, np.float32)[..., None], size)[..., 0]
    return np.clip(resized, 0.0, 1.0).astype(np.float32)


def _check_mask(mask: np.ndarray, shape: Sequence[int], name: str, what: str, setting: str) -> None:
    """One mask: 2-D, not all 0, of the aspect ratio of the image of ``shape`` it goes with."""
    if mask.ndim != 2 or min(mask.shape) < 1:
        raise NeuralStyleError(f"mask {name} has shape {mask.shape}; give a grey-level image", setting=setting)
    if not float(mask.max()) > 0:
        raise NeuralStyleError(
            f"mask {name} is all black (0): its style would apply nowhere; paint white where it applies",
            setting=setting,
        )
    height, width = int(shape[0]), int(shape[1])
    mask_height, mask_width = mask.shape
    off = abs(mask_height * width / mask_width - height)
    if off > max(1.0, _ASPECT_TOLERANCE * height):
        raise NeuralStyleError(
            f"mask {name} is {mask_width}x{mask_height}, but {what} is {width}x{height}: give a mask of the same "
            "aspect ratio (it is resized with the image)",
            setting=setting,
        )


@dataclasses.dataclass(frozen=True)
class Regions:
    """Where each style applies, and where in its image it is taken from.

    Attributes:
        content_masks: one [H, W] mask in 0..1 per style, of the content image's aspect ratio (any size: each is
            resized with the content image): how much that style applies at each place. Where masks overlap their
            values weigh the styles; where all are 0 only the content and tv terms apply. None: every style applies
            everywhere.
        style_masks: per style, None or an [H_s, W_s] mask in 0..1 of the style image's aspect ratio: the part of
            the style image whose Gram matrices are matched. None: whole style images.
    """

    content_masks: tuple[np.ndarray, ...] | None = None
    style_masks: tuple[np.ndarray | None, ...] | None = None

    def check(
        self,
        content_shape: Sequence[int],
        style_shapes: Sequence[Sequence[int]],
        *,
        content_names: Sequence[str] | None = None,
        style_names: Sequence[str] | None = None,
    ) -> None:
        """Raises NeuralStyleError (setting ``content_masks`` or ``style_masks``) for a count other than one mask
        per style, an all-zero mask or a mask of another aspect ratio than its image.

        Args:
            content_shape: the content image's shape [H, W, ...].
            style_shapes: each style image's shape.
            content_names, style_names: how to name the masks in messages (e.g. their files); default their index.
        """
        n = len(style_shapes)
        for setting, masks, names in (
            ("content_masks", self.content_masks, content_names),
            ("style_masks", self.style_masks, style_names),
        ):
            if masks is None:
                continue
            if len(masks) != n:
                raise NeuralStyleError(f"has {len(masks)} masks for {n} styles; give one per style", setting=setting)
            for i, mask in enumerate(masks):
                if mask is None:
                    continue
                name = names[i] if names is not None else str(i + 1)
                if setting == "content_masks":
                    _check_mask(np.asarray(mask), content_shape, name, "the content image", setting)
                else:
                    _check_mask(np.asarray(mask), style_shapes[i], name, f"style image {i + 1}", setting)

    def content_at(self, size: tuple[int, int]) -> np.ndarray | None:
        """The content masks resized to ``size`` = (height, width): [S, height, width] float32, or None."""
        if self.content_masks is None:
            return None
        return np.stack([resize_mask(mask, size) for mask in self.content_masks])

    def styles_at(self, shapes: Sequence[Sequence[int]]) -> list[np.ndarray | None] | None:
        """The style masks resized to the style images of ``shapes`` (as resized for the run), or None."""
        if self.style_masks is None:
            return None
        return [
            None if mask is None else resize_mask(mask, (int(shape[0]), int(shape[1])))
            for mask, shape in zip(self.style_masks, shapes, strict=True)
        ]
