"""Uploaded images: limited in bytes, megapixels and count, their type decided by decoding them, and stored under
names the server chooses (nothing a client sends becomes a path)."""

from __future__ import annotations

import dataclasses
import io
import warnings

from PIL import Image, UnidentifiedImageError

__all__ = ["FORMATS", "Limits", "UploadError", "image_extension"]

# The image formats the studio takes, decoded by Pillow, and the extension a stored file gets.
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "GIF": ".gif"}
_MB = 1_000_000


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one job may upload.

    Attributes:
        file_bytes: the largest file.
        megapixels: the largest image, in millions of pixels.
        files: the most files (content, styles, masks and initial together).
    """

    file_bytes: int = 30 * _MB
    megapixels: float = 40.0
    files: int = 12

    @property
    def request_bytes(self) -> int:
        """The largest request: every file at its largest, and room for the settings."""
        return self.files * self.file_bytes + _MB

    def describe(self) -> str:
        return f"{self.files} files of up to {self.file_bytes / _MB:g} MB and {self.megapixels:g} megapixels each"


class UploadError(Exception):
    """An upload refused: ``status`` the HTTP status (413 too large or too many, 422 not a usable image)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def image_extension(data: bytes, field: str, limits: Limits) -> str:
    """The extension to store an uploaded image under, after decoding it whole.

    Args:
        data: the file's bytes.
        field: its form field, for the messages.
        limits: the sizes allowed.

    Raises:
        UploadError: too large in bytes or pixels (413), or not an image of :data:`FORMATS` that decodes (422).
    """
    if len(data) > limits.file_bytes:
        raise UploadError(
            f"{field}: the file has {len(data) / _MB:.1f} MB, more than the {limits.file_bytes / _MB:g} MB allowed; "
            "send a smaller file",
            413,
        )
    if not data:
        raise UploadError(f"{field}: the file is empty; send an image (PNG, JPEG, WebP, BMP, TIFF or GIF)")
    kinds = ", ".join(FORMATS)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                kind = image.format
                pixels = image.width * image.height
                if pixels > limits.megapixels * 1e6:
                    raise UploadError(
                        f"{field}: the image has {image.width}x{image.height} pixels, more than the "
                        f"{limits.megapixels:g} megapixels allowed; resize it first",
                        413,
                    )
                if kind not in FORMATS:
                    raise UploadError(f"{field}: {kind} images are not taken; send one of {kinds}")
                image.load()  # the whole image decodes: a truncated or damaged file is refused now
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UploadError(
            f"{field}: the image claims more than {limits.megapixels:g} megapixels; resize it first", 413
        ) from None
    except UnidentifiedImageError:
        raise UploadError(f"{field}: the file is not an image; send one of {kinds}") from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        detail = " ".join(str(e).split())
        raise UploadError(f"{field}: the image is damaged or truncated ({detail}); send another copy") from None
    assert kind is not None
    return FORMATS[kind]
