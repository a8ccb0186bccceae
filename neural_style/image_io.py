"""Reading images as RGB floats, resizing, and writing them atomically."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
import zipfile
from collections.abc import Iterator, Sequence

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from neural_style.atomic import atomic_write
from neural_style.errors import NeuralStyleError

__all__ = [
    "check_model_file",
    "image_format",
    "read_image",
    "resize",
    "resize_styles",
    "scaled_size",
    "style_size",
    "to_uint8",
    "write_image",
]

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
# Real photos go up to about 200 megapixels (medium-format cameras, stitched panoramas); a file claiming more is
# refused as a decompression bomb (Pillow's own limit, 89 megapixels, refuses a 102-megapixel camera's photos).
MAX_PIXELS = 250_000_000
# Above this, a JPEG that will be shrunk is decoded at a reduced scale (smaller photos are decoded in full, so that
# their working size does not depend on the decoder).
_DRAFT_PIXELS = 40_000_000


@contextlib.contextmanager
def _pixel_limit(pixels: int) -> Iterator[None]:
    saved = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _existing_file(path: str | os.PathLike[str], what: str, *, give: str, missing: str) -> str:
    """``path`` as a string, once it is known to name something that is not a directory: else NeuralStyleError
    ``WHAT PATH is a directory; give GIVE`` or ``WHAT PATH does not exist; MISSING``."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise NeuralStyleError(f"{what} {path} is a directory; give {give}")
    if not os.path.exists(path):
        raise NeuralStyleError(f"{what} {path} does not exist; {missing}")
    return path


def read_image(path: str | os.PathLike[str], *, what: str = "image", min_width: int | None = None) -> np.ndarray:
    """Reads an image file as RGB.

    EXIF orientation is applied; grayscale, palette, CMYK and RGBA (alpha dropped) images become RGB; 16-bit
    images are scaled to 0..255. Images of up to :data:`MAX_PIXELS` pixels are read; a file claiming more is refused.

    Args:
        path: the file.
        what: how to name the file in errors, e.g. ``"--content image"``.
        min_width: the caller will shrink the image to this width: a JPEG of over 40 megapixels is then decoded at
            a reduced scale (1/2, 1/4 or 1/8) that keeps it at least this wide (and as tall in proportion), which
            saves time and memory on camera-size photos. None: full size.

    Returns:
        [H, W, 3] float32 in 0..255.

    Raises:
        NeuralStyleError: the file is missing, a directory, unreadable, not an image or too large.
    """
    path = _existing_file(path, what, give="an image file", missing="check the path")
    try:
        with warnings.catch_warnings(), _pixel_limit(MAX_PIXELS):
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                shrunk = min_width is not None and opened.width > 2 * min_width
                if shrunk and opened.format == "JPEG" and opened.width * opened.height > _DRAFT_PIXELS:
                    # draft() keeps both sides at least the size asked; EXIF may swap them, so ask for the larger
                    assert min_width is not None
                    side = max(min_width, round(min_width * opened.height / opened.width))
                    opened.draft("RGB", (side, side))
                image = ImageOps.exif_transpose(opened)
                image.load()
    except PermissionError:
        raise NeuralStyleError(f"{what} {path} cannot be read (permission denied); fix its permissions") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        limit = MAX_PIXELS // 1_000_000
        raise NeuralStyleError(
            f"{what} {path} claims more than {limit} megapixels, too many for a real image; resize it first"
        ) from None
    except UnidentifiedImageError:
        raise NeuralStyleError(f"{what} {path} is not an image Pillow can read; convert it to PNG or JPEG") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise NeuralStyleError(f"{what} {path} is corrupt or truncated ({e}); use another copy") from None
    if image.width < 1 or image.height < 1:
        raise NeuralStyleError(f"{what} {path} is empty")
    if image.mode in _SIXTEEN_BIT_MODES:
        array = np.asarray(image, dtype=np.float32)
        scale = 255.0 / 65535.0 if array.max(initial=0) > 255 or image.mode.startswith("I;16") else 1.0
        return np.repeat(np.clip(array * scale, 0, 255)[..., None], 3, axis=2)
    if image.mode == "F":
        return np.repeat(np.clip(np.asarray(image, np.float32), 0, 255)[..., None], 3, axis=2)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # the direct palette -> RGB conversion warns about transparency
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.float32)


def scaled_size(shape: Sequence[int], width: int) -> tuple[int, int]:
    """(height, width) of an image of ``shape`` resized to ``width`` keeping its aspect ratio (height floored)."""
    height = int(shape[0] * width // shape[1])
    return max(height, 1), width


def style_size(shape: Sequence[int], scale: float, width: int) -> tuple[int, int]:
    """(height, width) of a style image of ``shape`` resized to ``scale`` x ``width`` wide, keeping its aspect."""
    factor = scale * width / shape[1]
    return max(1, round(shape[0] * factor)), max(1, round(shape[1] * factor))


def resize_styles(styles: Sequence[np.ndarray], scales: Sequence[float] | None, width: int) -> list[np.ndarray]:
    """neural-style's rule for style images: each is resized to its scale x the output ``width``, keeping its aspect.

    Args:
        styles: S images [H_s, W_s, 3].
        scales: one per style; None: 1.0 each.
        width: the output (or stage) width.
    """
    scales = scales or (1.0,) * len(styles)
    return [resize(s, style_size(s.shape, scale, width)) for s, scale in zip(styles, scales, strict=True)]


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resizes [H, W, 3] floats to ``size`` = (height, width); an image already that size is returned as is.

    Downscaling uses Lanczos filtering, upscaling bicubic; channels are resampled as 32-bit floats so nothing
    is rounded.
    """
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    resample = Image.Resampling.LANCZOS if width < image.shape[1] else Image.Resampling.BICUBIC
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[..., c], np.float32), "F").resize((width, height), resample)
        )
        for c in range(image.shape[2])
    ]
    return np.stack(channels, axis=-1)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """The 8-bit levels an image is saved as: values rounded to the nearest whole level (halves to even, as
    ``np.rint``), clipped to 0..255, as uint8. The one clip-and-round of the package: every written image, frame and
    sheet, and every loss of an image "as saved", goes through it. A value that is not a number (a run whose loss
    stopped being finite) becomes 0."""
    return np.clip(np.nan_to_num(np.rint(image), copy=False, nan=0.0), 0, 255).astype(np.uint8)


def image_format(path: str) -> str:
    """The Pillow format an image written at ``path`` gets from its extension; NeuralStyleError if none can."""
    ext = os.path.splitext(path)[1].lower()
    Image.init()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        raise NeuralStyleError(f"{path}: Pillow cannot write '{ext or 'no extension'}' files; use .png or .jpg")
    return fmt


def check_model_file(path: str | os.PathLike[str], *, what: str = "model") -> None:
    """Checks that ``path`` looks like a ``.keras`` archive (a zip holding ``config.json``), without TensorFlow.

    It lives here, not in :mod:`neural_style.transformer`, so that a command checks its model file before it
    imports TensorFlow.

    Raises:
        NeuralStyleError: the file is missing, a directory, unreadable or not a ``.keras`` archive.
    """
    path = _existing_file(path, what, give="a .keras file", missing="train one with neural-style-train")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except PermissionError:
        raise NeuralStyleError(f"{what} {path} cannot be read (permission denied); fix its permissions") from None
    except (OSError, zipfile.BadZipFile):
        raise NeuralStyleError(f"{what} {path} is not a .keras model file; train one with neural-style-train") from None
    if "config.json" not in names:
        raise NeuralStyleError(f"{what} {path} is not a .keras model file; train one with neural-style-train")


def write_image(path: str | os.PathLike[str], image: np.ndarray | Image.Image, *, quality: int = 95) -> None:
    """Writes an RGB image atomically: a crash leaves either the old file or the complete new one.

    Args:
        path: destination; the format follows the extension.
        image: [H, W, 3] floats in 0..255 (clipped and rounded) or a Pillow image.
        quality: JPEG/WebP quality.

    Raises:
        NeuralStyleError: the extension cannot be written or the file system refused the write.
    """
    path = os.fspath(path)
    fmt = image_format(path)
    picture = image if isinstance(image, Image.Image) else Image.fromarray(to_uint8(image), "RGB")
    buffer = io.BytesIO()
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    picture.save(buffer, format=fmt, **options)
    atomic_write(path, buffer.getvalue())
