"""Tests of reading, resizing and writing images and of checking a .keras model file (no TensorFlow needed)."""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neural_style import image_io
from neural_style.errors import NeuralStyleError
from neural_style.image_io import check_model_file, read_image, resize, scaled_size, to_uint8, write_image


def _gradient(height: int = 16, width: int = 24) -> np.ndarray:
    """A smooth uint8 RGB image (JPEG keeps it nearly intact)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([60 + 5 * x, 80 + 6 * y, 200 - 3 * x - 2 * y], axis=-1).astype(np.uint8)


def _temp_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(".tmp-*"))


# ---------------------------------------------------------------------------------------------------- read_image


def test_read_png_round_trip(tmp_path: Path) -> None:
    """An RGB PNG is read back exactly, as [H, W, 3] float32."""
    pixels = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.dtype == np.float32
    assert image.shape == (7, 9, 3)
    np.testing.assert_array_equal(image, pixels)


def test_read_jpeg_round_trip(tmp_path: Path) -> None:
    """An RGB JPEG of a smooth image reads back close to what was saved."""
    pixels = _gradient()
    Image.fromarray(pixels).save(tmp_path / "a.jpg", quality=100)
    image = read_image(str(tmp_path / "a.jpg"))
    assert image.shape == pixels.shape
    assert np.abs(image - pixels).mean() < 2


def test_read_grayscale_gives_three_equal_channels(tmp_path: Path) -> None:
    """A mode 'L' image becomes three identical channels holding the gray values."""
    gray = np.arange(60, dtype=np.uint8).reshape(6, 10) * 4
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    image = read_image(tmp_path / "g.png")
    assert image.shape == (6, 10, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[..., channel], gray)


def _palette_image(tmp_path: Path, name: str, **save_options: object) -> tuple[Path, np.ndarray]:
    palette = np.array([[255, 0, 0], [0, 128, 0], [10, 20, 250], [200, 200, 30]], dtype=np.uint8)
    indices = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [1, 1, 3, 3]], dtype=np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette(palette.ravel().tolist())
    path = tmp_path / name
    image.save(path, **save_options)
    return path, palette[indices]


def test_read_palette_image(tmp_path: Path) -> None:
    """A palette ('P') image becomes the RGB values of its palette."""
    path, expected = _palette_image(tmp_path, "p.png")
    with Image.open(path) as opened:
        assert opened.mode == "P"
    np.testing.assert_array_equal(read_image(path), expected)


def test_read_palette_image_with_transparency(tmp_path: Path) -> None:
    """A palette image with a transparent entry still gives the palette's RGB values, without warnings."""
    path, expected = _palette_image(tmp_path, "pt.png", transparency=2)
    with Image.open(path) as opened:
        assert opened.mode == "P" and "transparency" in opened.info
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = read_image(path)
    np.testing.assert_array_equal(image, expected)


def test_read_rgba_drops_alpha(tmp_path: Path) -> None:
    """RGBA: the alpha channel is dropped and the RGB values are kept, even where alpha is 0."""
    rgba = np.random.default_rng(1).integers(0, 256, (5, 6, 4), dtype=np.uint8)
    rgba[0, :, 3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert image.shape == (5, 6, 3)
    np.testing.assert_array_equal(image, rgba[..., :3])


def test_read_16_bit_grayscale(tmp_path: Path) -> None:
    """A 16-bit grayscale PNG is scaled from 0..65535 to 0..255."""
    values = np.array([[0, 257, 32896, 65535], [1000, 20000, 40000, 60000]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    image = read_image(tmp_path / "g16.png")
    assert image.shape == (2, 4, 3)
    np.testing.assert_allclose(image[..., 0], values * 255.0 / 65535.0, atol=1e-3)
    np.testing.assert_allclose(image[0, :, 1], [0, 1, 128, 255], atol=1e-3)
    np.testing.assert_array_equal(image[..., 0], image[..., 2])


def test_read_cmyk_jpeg(tmp_path: Path) -> None:
    """A CMYK JPEG becomes RGB (pure yellow-magenta -> red, cyan -> green-blue)."""
    cmyk = Image.new("CMYK", (16, 8), (0, 255, 255, 0))
    cmyk.paste((255, 0, 0, 0), (8, 0, 16, 8))
    cmyk.save(tmp_path / "cmyk.jpg", quality=100)
    image = read_image(tmp_path / "cmyk.jpg")
    assert image.shape == (8, 16, 3)
    np.testing.assert_allclose(image[:, :4].mean(axis=(0, 1)), [255, 0, 0], atol=8)
    np.testing.assert_allclose(image[:, 12:].mean(axis=(0, 1)), [0, 255, 255], atol=8)


def test_read_applies_exif_orientation(tmp_path: Path) -> None:
    """EXIF orientation 6 (rotate 90 degrees clockwise) is applied: height and width swap, pixels rotate."""
    pixels = np.zeros((8, 16, 3), dtype=np.uint8)
    pixels[:, :8] = (250, 10, 10)  # left half red
    pixels[:, 8:] = (10, 10, 250)  # right half blue
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(tmp_path / "rotated.jpg", exif=exif.tobytes(), quality=100, subsampling=0)

    read = read_image(tmp_path / "rotated.jpg")
    assert read.shape == (16, 8, 3)
    expected = np.rot90(pixels, k=-1)  # clockwise: the left half ends up on top
    assert np.abs(read - expected).mean() < 4
    np.testing.assert_allclose(read[:6].mean(axis=(0, 1)), [250, 10, 10], atol=8)
    np.testing.assert_allclose(read[10:].mean(axis=(0, 1)), [10, 10, 250], atol=8)


def _write_broken(tmp_path: Path, case: str) -> Path:
    if case == "missing":
        return tmp_path / "missing.png"
    if case == "directory":
        path = tmp_path / "folder.png"
        path.mkdir()
        return path
    if case == "garbage":
        path = tmp_path / "garbage.jpg"
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
        return path
    if case == "truncated":
        whole = tmp_path / "whole.png"
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(whole)
        data = whole.read_bytes()
        path = tmp_path / "truncated.png"
        path.write_bytes(data[: len(data) // 2])
        return path
    assert case == "empty"
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize("case", ["missing", "directory", "garbage", "truncated", "empty"])
def test_read_errors(tmp_path: Path, case: str) -> None:
    """Missing, directory, garbage, truncated and empty files raise NeuralStyleError naming the file."""
    path = _write_broken(tmp_path, case)
    with pytest.raises(NeuralStyleError) as info:
        read_image(path, what="--content image")
    message = str(info.value)
    assert str(path) in message
    assert message.startswith("--content image")
    assert info.value.usage is True


@pytest.mark.parametrize("side", [13, 20], ids=["warning", "error"])
def test_read_decompression_bomb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, side: int) -> None:
    """An image over the pixel limit (Pillow's warning or error level) raises NeuralStyleError naming megapixels."""
    Image.new("RGB", (side, side), "gray").save(tmp_path / "bomb.png")
    monkeypatch.setattr(image_io, "MAX_PIXELS", 100)
    with pytest.raises(NeuralStyleError, match="pixels"):
        read_image(tmp_path / "bomb.png")


# -------------------------------------------------------------------------------------------------------- resize


def test_resize_same_size_returns_same_object() -> None:
    """Resizing to the current size returns the input itself, not a resampled copy."""
    image = np.random.default_rng(0).uniform(0, 255, (10, 12, 3)).astype(np.float32)
    assert resize(image, (10, 12)) is image


@pytest.mark.parametrize("size", [(5, 7), (23, 31), (10, 30)], ids=["down", "up", "mixed"])
def test_resize_to_size(size: tuple[int, int]) -> None:
    """The result has the requested (height, width) and three float32 channels."""
    image = np.random.default_rng(0).uniform(0, 255, (10, 12, 3)).astype(np.float32)
    resized = resize(image, size)
    assert resized.shape == (*size, 3)
    assert resized.dtype == np.float32


@pytest.mark.parametrize("size", [(4, 5), (30, 40)], ids=["down", "up"])
def test_resize_keeps_constant_image_constant(size: tuple[int, int]) -> None:
    """A constant image stays constant (no rounding, no ringing) up and down."""
    image = np.empty((11, 13, 3), dtype=np.float32)
    image[...] = (12.25, 128.5, 250.75)
    resized = resize(image, size)
    np.testing.assert_allclose(resized, np.broadcast_to([12.25, 128.5, 250.75], resized.shape), atol=1e-3)


def test_scaled_size_floors_height() -> None:
    """scaled_size keeps the aspect ratio and floors the height; it never returns a zero height."""
    assert scaled_size((507, 640), 256) == (202, 256)  # 507 * 256 / 640 = 202.8
    assert scaled_size((507, 640, 3), 256) == (202, 256)
    assert scaled_size((20, 24), 20) == (16, 20)
    assert scaled_size((1, 1000), 10) == (1, 10)


# --------------------------------------------------------------------------------------------------- write_image


def test_write_image_clips_and_rounds(tmp_path: Path) -> None:
    """Floats are clipped to 0..255 and rounded to the nearest integer."""
    values = np.array([-5.0, 0.4, 127.4, 127.6, 254.6, 300.0], dtype=np.float32)
    image = np.repeat(values[None, :, None], 3, axis=2)
    write_image(tmp_path / "out.png", image)
    with Image.open(tmp_path / "out.png") as read:
        assert read.mode == "RGB"
        pixels = np.asarray(read)
    np.testing.assert_array_equal(pixels[0, :, 0], [0, 0, 127, 128, 255, 255])
    assert _temp_files(tmp_path) == []


@pytest.mark.parametrize(
    ("name", "fmt"), [("out.png", "PNG"), ("out.jpg", "JPEG"), ("out.JPEG", "JPEG"), ("out.bmp", "BMP")]
)
def test_write_image_format_follows_extension(tmp_path: Path, name: str, fmt: str) -> None:
    """The file format follows the extension, case-insensitively."""
    pixels = _gradient()
    write_image(tmp_path / name, pixels.astype(np.float32))
    with Image.open(tmp_path / name) as read:
        assert read.format == fmt
        assert read.size == (pixels.shape[1], pixels.shape[0])
        assert np.abs(np.asarray(read.convert("RGB"), np.float32) - pixels).mean() < 3
    assert _temp_files(tmp_path) == []


def test_write_image_accepts_pillow_image(tmp_path: Path) -> None:
    """A Pillow image is written as is."""
    write_image(tmp_path / "p.png", Image.new("RGB", (3, 2), (1, 2, 3)))
    with Image.open(tmp_path / "p.png") as read:
        assert read.getpixel((2, 1)) == (1, 2, 3)


def test_write_image_replaces_existing_file(tmp_path: Path) -> None:
    """Writing over an existing file replaces it completely and leaves no temporary file."""
    path = tmp_path / "out.png"
    path.write_bytes(b"old contents" * 1000)
    write_image(path, np.full((4, 4, 3), 9.0))
    with Image.open(path) as read:
        assert read.size == (4, 4)
    assert _temp_files(tmp_path) == []


def test_write_image_unknown_extension_creates_nothing(tmp_path: Path) -> None:
    """An extension Pillow cannot write raises NeuralStyleError before any file is created."""
    with pytest.raises(NeuralStyleError, match="xyz"):
        write_image(tmp_path / "out.xyz", np.zeros((2, 2, 3)))
    with pytest.raises(NeuralStyleError, match="no extension"):
        write_image(tmp_path / "out", np.zeros((2, 2, 3)))
    assert list(tmp_path.iterdir()) == []


def test_write_image_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """When the final rename fails the old file is untouched, no temporary file is left, NeuralStyleError is raised."""
    path = tmp_path / "out.png"
    Image.new("RGB", (3, 3), "white").save(path)
    old = path.read_bytes()

    def refuse(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(NeuralStyleError) as info:
        write_image(path, np.zeros((5, 5, 3)))
    assert str(path) in str(info.value)
    assert "No space left on device" in str(info.value)
    assert info.value.usage is False
    assert path.read_bytes() == old
    assert _temp_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_write_image_respects_umask(tmp_path: Path) -> None:
    """A written image gets the usual permissions (0666 minus the umask), like any newly created file."""
    umask = os.umask(0o022)
    try:
        write_image(tmp_path / "out.png", np.zeros((2, 2, 3)))
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "out.png").stat().st_mode) == 0o644


def test_overwrite_keeps_existing_permissions(tmp_path: Path) -> None:
    """Replacing a file keeps the permissions it had."""
    target = tmp_path / "out.png"
    write_image(target, np.zeros((2, 2, 3)))
    target.chmod(0o640)
    write_image(target, np.full((2, 2, 3), 255.0))
    assert stat.S_IMODE(target.stat().st_mode) == 0o640


def test_check_model_file(tmp_path: Path) -> None:
    (tmp_path / "m.keras").write_bytes(b"PK not really")
    with pytest.raises(NeuralStyleError, match="not a .keras model file"):
        check_model_file(tmp_path / "m.keras")


def test_to_uint8_rounds_half_to_even_clips_and_blackens_what_is_not_a_number() -> None:
    values = np.array([-3.0, 0.5, 1.5, 2.4999, 254.5, 255.49, 300.0, np.nan, np.inf, -np.inf], np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value encountered in cast"
        levels = to_uint8(values)
    assert levels.dtype == np.uint8
    assert levels.tolist() == [0, 0, 2, 2, 254, 255, 255, 0, 255, 0]
