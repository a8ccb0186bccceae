"""A corpus of malformed and unusual inputs, each with its expected outcome, and property-based tests.

Every row of the tables below makes one input in a temporary directory and states what must happen: ``ok`` with a
check of the result, or ``error`` with words the one-line :class:`NeuralStyleError` message must contain. Never a
traceback, never a partial output. Most rows run against the loaders (``read_image``, ``read_matconvnet``,
``check_writable``, ``write_image``) to stay fast; a few representative ones run the whole command. Cases already
in test_image_io.py, test_matconvnet.py and test_cli_stylize.py are not repeated unless the issue's list names them.

Rows needing a file system of their own (read-only, full) mount a small tmpfs and are skipped without root. The
property-based tests feed random images to ``read_image`` and ``resize`` and random text to the commands' flag
parsing; those of ``check_blend_weights`` are in test_config.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import io
import os
import stat
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from absl import flags
from conftest import (
    CHANNELS,
    CONTENT_SIZE,
    ERROR_PREFIX,
    IMPORTS_MARKER,
    PROPERTIES,
    Workspace,
    content_array,
    he_scaled,
    make_workspace,
    run_in_process,
    run_neural_style,
    snapshot,
    style_array,
    stylize_flags,
    write_v73,
    write_vgg_mat,
)
from hypothesis import example, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from neural_style.cli import stylize as stylize_cli
from neural_style.cli import sweep as sweep_cli
from neural_style.cli.command import check_writable, floats
from neural_style.cli.options import checkpoint_path, style_config
from neural_style.config import StyleConfig, make_candidates
from neural_style.errors import NeuralStyleError
from neural_style.image_io import read_image, resize, scaled_size, write_image
from neural_style.matconvnet import read_matconvnet

_IS_ROOT = getattr(os, "geteuid", lambda: -1)() == 0


# --------------------------------------------------------------------------------------------- file makers


def _chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc & 0xFFFFFFFF)


def _png_bytes(width: int, height: int, rows: bytes | None, *, depth: int = 8, color: int = 2) -> bytes:
    """A PNG written by hand: IHDR as given, one IDAT of ``rows`` (filter bytes included) unless None, IEND."""
    header = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0))
    body = _chunk(b"IDAT", zlib.compress(rows)) if rows is not None else b""
    return b"\x89PNG\r\n\x1a\n" + header + body + _chunk(b"IEND", b"")


def _rgb16_png(pixels: np.ndarray) -> bytes:
    """A 16-bit-per-channel RGB (colour type 2, depth 16) or RGBA (type 6) PNG of uint16 [H, W, 3 or 4]."""
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in pixels)
    return _png_bytes(pixels.shape[1], pixels.shape[0], rows, depth=16, color=2 if pixels.shape[2] == 3 else 6)


def _small_png() -> bytes:
    return _png_bytes(2, 1, b"\x00" + bytes([10, 20, 30, 40, 50, 60]))


def _jpeg_bytes(image: Image.Image | None = None, **options: Any) -> bytes:
    if image is None:
        image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def _writer(name: str, data: Callable[[], bytes]) -> Callable[[Path], Path]:
    def make(directory: Path) -> Path:
        path = directory / name
        path.write_bytes(data())
        return path

    return make


def _saver(name: str, image: Callable[[], Image.Image], **options: Any) -> Callable[[Path], Path]:
    def make(directory: Path) -> Path:
        path = directory / name
        image().save(path, **options)
        return path

    return make


def _frames(size: tuple[int, int] = (8, 6)) -> list[Image.Image]:
    return [Image.new("RGB", size, colour) for colour in ("red", "lime", "blue")]


def _animated(name: str, **options: Any) -> Callable[[Path], Path]:
    def make(directory: Path) -> Path:
        frames = _frames()
        frames[0].save(directory / name, save_all=True, append_images=frames[1:], **options)
        return directory / name

    return make


def _patched(
    name: str, data: Callable[[], bytes], at: Callable[[bytes], int], new: bytes | Callable[[bytes], bytes]
) -> Callable[[Path], Path]:
    """Writes ``data()`` with the bytes at ``at(data)`` replaced by ``new`` (or by ``new(the bytes there)``)."""

    def make(directory: Path) -> Path:
        original = data()
        offset = at(original)
        size = 1 if callable(new) else len(new)
        replacement = new(original[offset : offset + size]) if callable(new) else new
        (directory / name).write_bytes(original[:offset] + replacement + original[offset + size :])
        return directory / name

    return make


def _directory(directory: Path) -> Path:
    (directory / "folder.png").mkdir()
    return directory / "folder.png"


def _dangling_symlink(directory: Path) -> Path:
    (directory / "link.png").symlink_to(directory / "gone.png")
    return directory / "link.png"


def _symlink_to_image(directory: Path) -> Path:
    Image.new("RGB", (3, 2), (9, 8, 7)).save(directory / "real.png")
    (directory / "link.png").symlink_to(directory / "real.png")
    return directory / "link.png"


def _unicode_path(directory: Path) -> Path:
    folder = directory / "ünïcødé dir" / "名前 with spaces"
    folder.mkdir(parents=True)
    Image.new("RGB", (3, 2), (9, 8, 7)).save(folder / "ïmage 1 ☃.png")
    return folder / "ïmage 1 ☃.png"


def _unreadable(directory: Path) -> Path:
    Image.new("RGB", (3, 2)).save(directory / "secret.png")
    (directory / "secret.png").chmod(0)
    return directory / "secret.png"


def _jpeg_corrupt_scan() -> bytes:
    data = bytearray(_jpeg_bytes())
    middle = len(data) // 2
    data[middle : middle + 50] = np.random.default_rng(1).integers(0, 256, 50, dtype=np.uint8).tobytes()
    return bytes(data)


def _progressive_jpeg() -> bytes:
    return _jpeg_bytes(progressive=True)


def _sof_offset(data: bytes) -> int:
    return data.index(b"\xff\xc0") + 5  # SOF0 marker, length (2), precision (1), then height and width


# ----------------------------------------------------------------------------------------------- the tables


@dataclasses.dataclass(frozen=True)
class Case:
    """One input: how to make it in a directory, and its expected outcome."""

    id: str
    make: Callable[[Path], Path]
    outcome: str  # "ok" or "error"
    check: Callable[[np.ndarray], None] | None = None  # "ok": checks the loaded array
    words: tuple[str, ...] = ()  # "error": the message contains each of these (and the path)
    marks: tuple = ()

    def param(self) -> object:
        return pytest.param(self, id=self.id, marks=self.marks)


def _rgb(expected: tuple[float, float, float], shape: tuple[int, int] | None = None, atol: float = 0.0):
    def check(image: np.ndarray) -> None:
        if shape is not None:
            assert image.shape == (*shape, 3)
        np.testing.assert_allclose(image.reshape(-1, 3)[0], expected, atol=atol)

    return check


def _shape(height: int, width: int) -> Callable[[np.ndarray], None]:
    def check(image: np.ndarray) -> None:
        assert image.shape == (height, width, 3)

    return check


def _first_frame(image: np.ndarray) -> None:
    assert image.shape == (6, 8, 3)
    np.testing.assert_array_equal(image.reshape(-1, 3), np.tile([255.0, 0.0, 0.0], (48, 1)))


def _values(*allowed: float) -> Callable[[np.ndarray], None]:
    def check(image: np.ndarray) -> None:
        assert set(np.unique(image).tolist()) <= set(allowed), np.unique(image)

    return check


def _clipped(image: np.ndarray) -> None:
    assert image.shape == (1, 4, 3)
    np.testing.assert_allclose(image[0, :, 0], [0, 0, 100, 255])


_MODE_I_VALUES = [0, 1000, 65535, 70000, -5]

IMAGE_CASES = [
    # Unusual but valid: read as RGB 0..255.
    Case("1x1 png", _saver("one.png", lambda: Image.new("RGB", (1, 1), (1, 2, 3))), "ok", _rgb((1, 2, 3), (1, 1))),
    Case("1x1 gray jpeg", _saver("one.jpg", lambda: Image.new("L", (1, 1), 77)), "ok", _rgb((77, 77, 77), (1, 1))),
    Case("1x5000 panorama", _saver("line.png", lambda: Image.new("RGB", (5000, 1), "white")), "ok", _shape(1, 5000)),
    Case("bilevel png", _saver("bw.png", lambda: Image.new("1", (4, 2), 1)), "ok", _values(255.0)),
    Case("gray+alpha png", _saver("la.png", lambda: Image.new("LA", (4, 2), (100, 0))), "ok", _rgb((100, 100, 100))),
    Case(
        "rgba fully transparent",
        _saver("clear.png", lambda: Image.new("RGBA", (4, 2), (10, 20, 30, 0))),
        "ok",
        _rgb((10, 20, 30), (2, 4)),
    ),
    Case(
        "16-bit rgb png",
        _writer("rgb48.png", lambda: _rgb16_png(np.array([[[65535, 0, 32768], [256, 512, 1024]]], np.uint16))),
        "ok",
        _rgb((255, 0, 128), (1, 2)),
    ),
    Case(
        "16-bit rgba png",
        _writer("rgba64.png", lambda: _rgb16_png(np.array([[[65535, 0, 32768, 0]]], np.uint16))),
        "ok",
        _rgb((255, 0, 128), (1, 1)),
    ),
    Case(
        "16-bit gray png, dark",
        _saver("dark16.png", lambda: Image.fromarray(np.full((2, 2), 200, np.uint16))),
        "ok",
        _rgb((200 * 255 / 65535,) * 3, (2, 2), atol=1e-4),
    ),
    Case("cmyk jpeg white", _saver("w.jpg", lambda: Image.new("CMYK", (4, 4), (0, 0, 0, 0))), "ok", _values(255.0)),
    Case("cmyk jpeg black", _saver("k.jpg", lambda: Image.new("CMYK", (4, 4), (0, 0, 0, 255))), "ok", _values(0.0)),
    Case("animated gif", _animated("anim.gif", duration=50, loop=0), "ok", _first_frame),
    Case("animated png", _animated("anim.png", duration=50), "ok", _first_frame),
    Case("multi-page tiff", _animated("pages.tif"), "ok", _first_frame),
    Case(
        "float tiff out of range",
        _saver("f.tif", lambda: Image.fromarray(np.array([[-50, 0, 100, 400]], np.float32), "F")),
        "ok",
        _clipped,
    ),
    Case(
        "32-bit int tiff in 16-bit range",
        _saver("i.tif", lambda: Image.fromarray(np.array([[0, 1000, 65535]], np.int32), "I")),
        "ok",
        lambda image: np.testing.assert_allclose(image[0, :, 0], [0, 1000 * 255 / 65535, 255], atol=1e-3),
    ),
    Case(
        "32-bit int tiff beyond 16 bits",
        _saver("big.tif", lambda: Image.fromarray(np.array([_MODE_I_VALUES], np.int32), "I")),
        "ok",
        lambda image: (image.min() >= 0 and image.max() <= 255) or pytest.fail(f"{image.min()}..{image.max()}"),
    ),
    Case("progressive jpeg", _writer("prog.jpg", _progressive_jpeg), "ok", _shape(32, 32)),
    Case("jpeg with garbage in its scan", _writer("garbled.jpg", _jpeg_corrupt_scan), "ok", _shape(32, 32)),
    Case("png without IEND", _writer("noiend.png", lambda: _small_png()[:-12]), "ok", _rgb((10, 20, 30), (1, 2))),
    Case("webp", _saver("x.webp", lambda: Image.new("RGB", (4, 4), (200, 100, 50))), "ok", _shape(4, 4)),
    Case("bmp 1x1", _saver("one.bmp", lambda: Image.new("RGB", (1, 1), (1, 2, 3))), "ok", _rgb((1, 2, 3), (1, 1))),
    Case("ico", _saver("x.ico", lambda: Image.new("RGB", (4, 4), (200, 100, 50))), "ok", _shape(4, 4)),
    Case("unicode and spaces in the path", _unicode_path, "ok", _rgb((9, 8, 7), (2, 3))),
    Case("symlink to an image", _symlink_to_image, "ok", _rgb((9, 8, 7), (2, 3))),
    # Malformed: one clear error naming the file.
    Case("zero-byte png", _writer("empty.png", lambda: b""), "error", words=("not an image",)),
    Case(
        "truncated jpeg",
        _writer("half.jpg", lambda: _jpeg_bytes()[: len(_jpeg_bytes()) // 2]),
        "error",
        words=("truncated",),
    ),
    Case("jpeg SOI marker only", _writer("soi.jpg", lambda: b"\xff\xd8"), "error", words=("not an image",)),
    Case("jpeg without EOI", _writer("noeoi.jpg", lambda: _jpeg_bytes()[:-2]), "error", words=("truncated",)),
    Case(
        "truncated progressive jpeg",
        _writer("prog-half.jpg", lambda: _progressive_jpeg()[: len(_progressive_jpeg()) * 2 // 3]),
        "error",
        words=("truncated",),
    ),
    Case("png signature only", _writer("sig.png", lambda: _small_png()[:8]), "error", words=("not an image",)),
    Case(
        "png with a bad IHDR checksum",
        _patched("ihdr.png", _small_png, lambda data: 29, b"\x00\x00\x00\x00"),
        "error",
        words=("not an image",),
    ),
    Case(  # Pillow does not check IDAT checksums; the pixels are intact, so reading them is right
        "png with a bad IDAT checksum",
        _patched("idat-crc.png", _small_png, lambda data: len(data) - 16, b"\xde\xad\xbe\xef"),
        "ok",
        _rgb((10, 20, 30), (1, 2)),
    ),
    Case(
        "png with a damaged zlib stream",
        _patched("idat.png", _small_png, lambda data: len(data) - 20, lambda old: bytes([old[0] ^ 0xFF])),
        "error",
        words=("corrupt",),
    ),
    Case(
        "png whose IDAT is not zlib",
        _writer("nozlib.png", lambda: _small_png()[:33] + _chunk(b"IDAT", b"not zlib data") + _chunk(b"IEND", b"")),
        "error",
        words=("corrupt",),
    ),
    Case(
        "png with fewer rows than its header",
        _writer("short.png", lambda: _png_bytes(4, 4, b"\x00" * 5)),
        "error",
        words=("truncated",),
    ),
    Case("png of 0x0 pixels", _writer("zero.png", lambda: _png_bytes(0, 0, None)), "error", words=("not an image",)),
    Case(
        "png bomb 50000x50000 (header only)",
        _writer("bomb.png", lambda: _png_bytes(50000, 50000, None)),
        "error",
        words=("pixels",),
    ),
    Case(
        "png bomb 17000x17000 (289 megapixels: over the limit, under twice it)",
        _writer("bomb2.png", lambda: _png_bytes(17000, 17000, None)),
        "error",
        words=("pixels",),
    ),
    Case(
        "jpeg bomb 60000x60000 in SOF",
        _patched("bomb.jpg", _jpeg_bytes, _sof_offset, struct.pack(">HH", 60000, 60000)),
        "error",
        words=("pixels",),
    ),
    Case(
        "gif header 60000x60000 without frames",
        _writer("bomb.gif", lambda: b"GIF89a" + struct.pack("<HH", 60000, 60000) + b"\x00\x00\x00;"),
        "error",
        words=("not an image",),
    ),
    Case("text named .jpg", _writer("text.jpg", lambda: b"hello\n" * 20), "error", words=("not an image",)),
    Case(
        "svg named .png",
        _writer("vector.png", lambda: b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>'),
        "error",
        words=("not an image",),
    ),
    Case(
        "html error page saved as .jpg",
        _writer("download.jpg", lambda: b"<html><body>404 Not Found</body></html>\n"),
        "error",
        words=("not an image",),
    ),
    Case("directory as a file", _directory, "error", words=("is a directory",)),
    Case("dangling symlink", _dangling_symlink, "error", words=("does not exist",)),
    Case(
        "unreadable file",
        _unreadable,
        "error",
        words=("permission denied",),
        marks=(pytest.mark.skipif(_IS_ROOT, reason="root reads any file"),),
    ),
]


@pytest.mark.parametrize("case", [c.param() for c in IMAGE_CASES])
def test_image_corpus(tmp_path: Path, case: Case) -> None:
    """read_image: each unusual image is read as [H, W, 3] float32 0..255; each malformed one is one clear error."""
    path = case.make(tmp_path)
    if case.outcome == "ok":
        image = read_image(path, what="--content image")
        assert image.dtype == np.float32 and image.ndim == 3 and image.shape[2] == 3
        assert case.check is not None
        case.check(image)
        assert image.min() >= 0 and image.max() <= 255
        return
    with pytest.raises(NeuralStyleError) as info:
        read_image(path, what="--content image")
    message = str(info.value)
    assert message.startswith(f"--content image {path} ")
    assert "\n" not in message
    for word in case.words:
        assert word in message, message
    assert info.value.usage is True


def _inf_network(directory: Path) -> Path:
    def tamper(name: str, kernel: np.ndarray) -> np.ndarray:
        if name == "conv1_1":
            kernel = kernel.copy()
            kernel[0, 0, 0, 0] = np.inf
        return kernel

    return write_vgg_mat(directory / "inf.mat", tamper=tamper).path


def _network_at_unicode_path(directory: Path) -> Path:
    folder = directory / "réseau with spaces"
    folder.mkdir()
    return write_vgg_mat(folder / "vgg 19 ☃.mat").path


def _v73_network(directory: Path) -> Path:
    write_v73(directory / "v73.mat")
    return directory / "v73.mat"


NETWORK_CASES = [
    Case("network at a unicode path", _network_at_unicode_path, "ok"),
    Case("infinite weight", _inf_network, "error", words=("conv1_1", "NaN or infinite")),
    Case("jpeg named .mat", _writer("photo.mat", lambda: _jpeg_bytes()), "error", words=("not a readable MATLAB",)),
    Case("matlab v7.3 (hdf5)", _v73_network, "error", words=("v7.3",)),
]


@pytest.mark.parametrize("case", [c.param() for c in NETWORK_CASES])
def test_network_corpus(tmp_path: Path, case: Case) -> None:
    path = case.make(tmp_path)
    if case.outcome == "ok":
        weights = read_matconvnet(path)
        assert weights.layer_names[-1] == "pool5"
        return
    with pytest.raises(NeuralStyleError) as info:
        read_matconvnet(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    for word in case.words:
        assert word in message, message


# ------------------------------------------------------------------------------------------------ outputs


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """Mounts small tmpfs file systems under tmp_path (skips without the right to mount); unmounts them after."""
    mounted: list[Path] = []

    def mount(name: str, size: str = "64k", *, read_only: bool = False) -> Path:
        target = tmp_path / name
        target.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        try:
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)],
                check=True,
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.SubprocessError):
            pytest.skip("cannot mount a tmpfs here (needs root)")
        mounted.append(target)
        return target

    yield mount
    for target in reversed(mounted):
        subprocess.run(["umount", str(target)], check=False, capture_output=True, timeout=30)


def _fill(directory: Path) -> None:
    """Fills the file system of ``directory`` until it reports ENOSPC."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    assert os.statvfs(directory).f_bavail == 0


def _old_file(directory: Path) -> tuple[Path, bytes]:
    path = directory / "out.png"
    Image.new("RGB", (3, 3), "white").save(path)
    return path, path.read_bytes()


def _assert_untouched(path: Path, old: bytes) -> None:
    assert path.read_bytes() == old
    assert sorted(path.parent.glob(".tmp-*")) == []


@pytest.mark.slow
def test_output_on_full_disk(tmpfs) -> None:
    """A real full file system: NeuralStyleError (not usage), the old file untouched, no temporary file left."""
    disk = tmpfs("disk")
    path, old = _old_file(disk)
    _fill(disk)
    with pytest.raises(NeuralStyleError) as info:
        write_image(path, np.random.default_rng(0).uniform(0, 255, (64, 64, 3)))
    assert "No space left on device" in str(info.value) and str(path) in str(info.value)
    assert info.value.usage is False
    _assert_untouched(path, old)
    (disk / "filler").unlink()


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_output_disk_full_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    """ENOSPC from the data write or from fsync (where delayed allocation reports it): same outcome."""
    path, old = _old_file(tmp_path)

    def no_space(*args: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    if where == "fsync":
        monkeypatch.setattr(os, "fsync", no_space)
    else:
        real_fdopen = os.fdopen

        class NoSpace:
            """The file os.fdopen gives, but every write fails as on a full disk."""

            def __init__(self, f: Any) -> None:
                self._f = f

            def __enter__(self) -> NoSpace:
                return self

            def __exit__(self, *exc: object) -> None:
                self._f.close()

            write = staticmethod(no_space)

            def __getattr__(self, name: str) -> object:
                return getattr(self._f, name)

        monkeypatch.setattr(os, "fdopen", lambda fd, *args, **kwargs: NoSpace(real_fdopen(fd, *args, **kwargs)))
    with pytest.raises(NeuralStyleError, match="No space left on device"):
        write_image(path, np.zeros((5, 5, 3)))
    _assert_untouched(path, old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


@pytest.mark.slow
def test_output_on_read_only_file_system(tmpfs) -> None:
    """A read-only mount (root cannot write there either): check_writable refuses, write_image leaves nothing."""
    disk = tmpfs("ro", read_only=True)
    with pytest.raises(NeuralStyleError, match="not writable") as info:
        check_writable(disk / "out.png", overwrite=False)
    assert str(disk) in str(info.value)
    with pytest.raises(NeuralStyleError, match="Read-only file system"):
        write_image(disk / "out.png", np.zeros((2, 2, 3)))
    assert list(disk.iterdir()) == []


def test_output_parent_is_a_file(tmp_path: Path) -> None:
    """The message names the file in the way, not a directory that "does not exist"."""
    (tmp_path / "out.png").write_bytes(b"x")
    with pytest.raises(NeuralStyleError, match=f"{tmp_path / 'out.png'} is a file, not a directory"):
        check_writable(tmp_path / "out.png" / "result.png", overwrite=True)


def test_output_unicode_path_and_odd_extensions(tmp_path: Path) -> None:
    """Unicode and spaces in the directory and name, an upper-case extension, a GIF: written and read back."""
    folder = tmp_path / "sortie ünï" / "名前 with spaces"
    folder.mkdir(parents=True)
    image = np.zeros((4, 6, 3))
    image[:, :3] = 255
    for name, fmt in (("résultat final ☃.png", "PNG"), ("OUT.PNG", "PNG"), ("out.gif", "GIF"), ("o u t.JPEG", "JPEG")):
        check_writable(folder / name, overwrite=False)
        write_image(folder / name, image)
        with Image.open(folder / name) as written:
            assert written.format == fmt and written.size == (6, 4)
        assert np.abs(read_image(folder / name) - image).max() <= 8
    assert sorted(folder.glob(".tmp-*")) == []


def test_output_read_only_file_is_replaced_keeping_its_mode(tmp_path: Path) -> None:
    """An existing read-only output (with --overwrite): replaced by rename in a writable directory, mode 0444 kept."""
    path, _ = _old_file(tmp_path)
    path.chmod(0o444)
    write_image(path, np.zeros((2, 2, 3)))
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert read_image(path).shape == (2, 2, 3)


# ------------------------------------------------------------------------------------- tiny images, end to end


@pytest.fixture(scope="module")
def tiny_network(tmp_path_factory: pytest.TempPathFactory):
    path = tmp_path_factory.mktemp("vgg") / "vgg.mat"
    write_vgg_mat(path, channels=CHANNELS, tamper=he_scaled)
    return read_matconvnet(path)


def _stylize(weights, content: np.ndarray, style: np.ndarray) -> np.ndarray:
    from neural_style.stylization import Stylization  # TensorFlow only for these tests

    records = list(Stylization(weights, content, [style], StyleConfig(iterations=2, seed=0)))
    assert records[-1].images is not None
    return records[-1].images


@pytest.mark.parametrize(
    ("content_shape", "style_shape"),
    [((2, 2), (16, 16)), ((16, 20), (1, 1))],
    ids=["2x2 content", "1x1 style"],
)
def test_tiny_images_stylize(tiny_network, content_shape: tuple[int, int], style_shape: tuple[int, int]) -> None:
    """VGG's pooling shrinks a 2x2 content and a 1x1 style to 1x1 and still works: finite images of the right size."""
    rng = np.random.default_rng(0)
    content = rng.uniform(0, 255, (*content_shape, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (*style_shape, 3)).astype(np.float32)
    images = _stylize(tiny_network, content, style)
    assert images.shape == (1, *content_shape, 3) and np.isfinite(images).all()


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 1)], ids=["1x1", "1x7", "5x1"])
def test_one_pixel_wide_content_is_an_error_or_an_image(tiny_network, shape: tuple[int, int]) -> None:
    """Never a crash: a NeuralStyleError with no image, or finite images of the content's size.

    Today it is the error: the TV loss of an image 1 pixel high or wide is a mean over nothing (NaN), so step 1
    raises NonFiniteLossError (see the xfail below for the message).
    """
    content = np.full((*shape, 3), 100, np.float32)
    try:
        images = _stylize(tiny_network, content, np.full((4, 4, 3), 50, np.float32))
    except NeuralStyleError as e:
        assert getattr(e, "best", None) is None and "\n" not in str(e)
    else:
        assert images.shape == (1, *shape, 3) and np.isfinite(images).all()


def test_one_pixel_content_is_handled(tiny_network) -> None:
    try:
        images = _stylize(tiny_network, np.full((1, 1, 3), 100, np.float32), np.full((4, 4, 3), 50, np.float32))
    except NeuralStyleError as e:
        assert "1x1" in str(e) or "pixel" in str(e), str(e)
    else:
        assert np.isfinite(images).all()


# ----------------------------------------------------------------------------------------- the command itself


@dataclasses.dataclass(frozen=True)
class CliCase:
    """A command line over a fresh workspace: ``make(ws)`` returns the flags; the error line must have ``words``."""

    id: str
    make: Callable[[Workspace], list[str]]
    status: int
    words: tuple[str, ...]
    marks: tuple = ()


def _replace(args: list[str], flag: str, value: object) -> list[str]:
    return [f"--{flag}={value}" if a.startswith(f"--{flag}=") else a for a in args]


def _cli_bomb(ws: Workspace) -> list[str]:
    (ws.work / "bomb.png").write_bytes(_png_bytes(50000, 50000, None))
    return _replace(ws.args(), "content", ws.work / "bomb.png")


def _cli_v73(ws: Workspace) -> list[str]:
    write_v73(ws.work / "v73.mat")
    return _replace(ws.args(), "network", ws.work / "v73.mat")


def _cli_nan(ws: Workspace) -> list[str]:
    def nan(name: str, kernel: np.ndarray) -> np.ndarray:
        return np.full_like(kernel, np.nan) if name == "conv4_4" else kernel

    write_vgg_mat(ws.work / "nan.mat", channels=CHANNELS, tamper=nan)
    return _replace(ws.args(), "network", ws.work / "nan.mat")


def _cli_zero_byte_second_style(ws: Workspace) -> list[str]:
    (ws.work / "empty style.png").write_bytes(b"")
    return _replace(ws.args(), "styles", f"{ws.style},{ws.work / 'empty style.png'}")


def _cli_initial_is_directory(ws: Workspace) -> list[str]:
    (ws.work / "initial.png").mkdir()
    return ws.args(f"--initial={ws.work / 'initial.png'}")


def _cli_comma_in_style_path(ws: Workspace) -> list[str]:
    Image.fromarray(style_array()).save(ws.work / "a,b.png")
    return _replace(ws.args(), "styles", ws.work / "a,b.png")


def _cli_huge_width(ws: Workspace) -> list[str]:
    return ws.args("--width=2147483648")


def _cli_read_only_output(ws: Workspace) -> list[str]:
    directory = ws.work / "readonly"
    directory.mkdir()
    if _IS_ROOT:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(directory)], check=True)
    else:
        directory.chmod(0o555)
    return ws.args(output=directory / "out.png")


CLI_CASES = [
    CliCase("decompression bomb content", _cli_bomb, 2, ("--content image", "bomb.png", "pixels")),
    CliCase("matlab v7.3 network", _cli_v73, 2, ("v73.mat", "v7.3")),
    CliCase("NaN weights", _cli_nan, 2, ("nan.mat", "conv4_4", "NaN")),
    CliCase(
        "zero-byte second style",
        _cli_zero_byte_second_style,
        2,
        ("--styles image", "empty style.png", "not an image"),
    ),
    CliCase("directory as --initial", _cli_initial_is_directory, 2, ("--initial image", "is a directory")),
    CliCase("comma in a style path (split by the list flag)", _cli_comma_in_style_path, 2, ("commas separate",)),
    CliCase("read-only output directory", _cli_read_only_output, 2, ("readonly", "not writable")),
    CliCase(
        "width beyond any memory",
        _cli_huge_width,
        2,
        ("--width",),
    ),
]


def _unmount_all(root: Path) -> None:
    with open("/proc/mounts", encoding="utf-8") as f:
        targets = [line.split()[1] for line in f if line.split()[1].startswith(str(root))]
    for target in sorted(targets, reverse=True):
        subprocess.run(["umount", target], check=False, capture_output=True, timeout=30)


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CLI_CASES])
def test_cli_corpus(tmp_path: Path, import_probe: Path, case: CliCase) -> None:
    """Representative bad inputs through the command: exit 2, one error line, no file of the user's written or
    changed (the network cache may be), no TensorFlow imported."""
    ws = make_workspace(tmp_path)
    try:
        try:
            args = case.make(ws)
        except subprocess.CalledProcessError:
            pytest.skip("cannot mount a read-only tmpfs")
        before = snapshot(ws.work)
        env = ws.env
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(import_probe), env.get("PYTHONPATH")) if p)
        env["NEURAL_STYLE_TEST_IMPORTS"] = str(tmp_path / IMPORTS_MARKER)
        result = run_neural_style(ws, args, env=env)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == case.status, result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), result.stderr
        for word in case.words:
            assert word in lines[0], lines[0]
        assert result.stdout == ""
        assert snapshot(ws.work) == before, "a rejected command must not create or change any file"
        assert (tmp_path / IMPORTS_MARKER).read_text() == "", "rejected before TensorFlow is imported"
    finally:
        _unmount_all(tmp_path)
        for directory in ws.work.rglob("*"):
            if directory.is_dir():
                directory.chmod(0o755)


@pytest.mark.slow
def test_cli_unusual_valid_inputs(tmp_path: Path) -> None:
    """Unicode and spaces in every path; a 16-bit RGB PNG content, an animated GIF and a CMYK JPEG as styles, an
    RGBA initial image: the run finishes and writes a valid output of the content's size, and nothing else."""
    ws = make_workspace(tmp_path)
    folder = ws.work / "dössier with spaces" / "写真"
    folder.mkdir(parents=True)
    content = folder / "cöntent 16-bit.png"
    content.write_bytes(_rgb16_png(content_array().astype(np.uint16) * 257))
    gif = folder / "style anim ☃.gif"
    frames = [Image.fromarray(style_array(seed)) for seed in range(3)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=40, loop=0)
    cmyk = folder / "style cmyk.jpg"
    Image.fromarray(style_array(5)).convert("CMYK").save(cmyk, quality=95)
    initial = folder / "initial rgba.png"
    Image.fromarray(np.dstack([content_array(), np.full(content_array().shape[:2], 128, np.uint8)])).save(initial)
    network = folder / "vgg 19 ünï.mat"
    ws.network.rename(network)
    output = folder / "résultat final ☃.png"
    args = [
        f"--content={content}",
        f"--styles={gif},{cmyk}",
        f"--network={network}",
        f"--output={output}",
        f"--initial={initial}",
        "--iterations=2",
        "--seed=0",
    ]
    result = run_in_process(ws, args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    with Image.open(output) as image:
        image.verify()
    with Image.open(output) as image:
        assert image.format == "PNG" and image.size == CONTENT_SIZE
    leftovers = sorted(p.name for p in folder.iterdir())
    assert leftovers == sorted([content.name, gif.name, cmyk.name, initial.name, network.name, output.name])


# --------------------------------------------------------------------------------------------- properties

_SIDES = st.integers(1, 9)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A directory the property tests overwrite (hypothesis runs many examples per test function)."""
    with tempfile.TemporaryDirectory() as directory:
        yield Path(directory)


def _arrays(dtype: type, channels: int | None) -> st.SearchStrategy[np.ndarray]:
    shape = st.tuples(_SIDES, _SIDES) if channels is None else st.tuples(_SIDES, _SIDES, st.just(channels))
    return hnp.arrays(dtype, shape)


@PROPERTIES
@given(data=st.data(), mode=st.sampled_from(["L", "RGB", "RGBA", "P", "I;16"]))
def test_read_image_round_trips_png(scratch: Path, data: st.DataObject, mode: str) -> None:
    """Random PNGs of every common mode read back as [H, W, 3] float32 in 0..255 with the pixels expected."""
    channels = {"L": None, "RGB": 3, "RGBA": 4, "P": None, "I;16": None}[mode]
    pixels = data.draw(_arrays(np.uint16 if mode == "I;16" else np.uint8, channels))
    image = Image.fromarray(pixels)
    if mode == "P":
        image = Image.fromarray(pixels, "L").convert("P")
        image.putpalette(data.draw(st.binary(min_size=768, max_size=768)))
    assert image.mode == mode
    path = scratch / "random.png"
    image.save(path)
    read = read_image(path)
    assert read.shape == (*pixels.shape[:2], 3) and read.dtype == np.float32
    assert read.min() >= 0 and read.max() <= 255
    if mode in ("L", "I;16"):
        scale = 255 / 65535 if mode == "I;16" else 1
        for c in range(3):
            np.testing.assert_allclose(read[..., c], pixels * scale, rtol=1e-6)
    elif mode == "P":
        np.testing.assert_array_equal(read, np.asarray(image.convert("RGB"), np.float32))
    else:
        np.testing.assert_array_equal(read, pixels[..., :3])


@PROPERTIES
@given(
    image=hnp.arrays(np.float32, st.tuples(_SIDES, _SIDES, st.just(3)), elements=st.floats(0, 255, width=32)),
    height=st.integers(1, 24),
    width=st.integers(1, 24),
)
def test_resize_gives_exactly_the_size(image: np.ndarray, height: int, width: int) -> None:
    resized = resize(image, (height, width))
    assert resized.shape == (height, width, 3) and resized.dtype == np.float32
    assert np.isfinite(resized).all()


@PROPERTIES
@given(
    value=st.floats(0, 255, width=32),
    shape=st.tuples(_SIDES, _SIDES),
    size=st.tuples(st.integers(1, 24), st.integers(1, 24)),
)
def test_resize_keeps_a_constant_image_constant(value: float, shape: tuple[int, int], size: tuple[int, int]) -> None:
    resized = resize(np.full((*shape, 3), value, np.float32), size)
    np.testing.assert_allclose(resized, value, atol=1e-3 * max(1.0, value))


@PROPERTIES
@given(height=st.integers(1, 10**5), width=st.integers(1, 10**5), target=st.integers(1, 10**5))
def test_scaled_size_floors_the_height(height: int, width: int, target: int) -> None:
    """height x target / width, floored (exact integer arithmetic), at least 1; the width is the target."""
    new_height, new_width = scaled_size((height, width, 3), target)
    assert new_width == target
    assert new_height == max(1, height * target // width)
    if new_height > 1:
        assert new_height * width <= height * target < (new_height + 1) * width


# Text a user might type into a list or pattern flag: numbers, separators, placeholders and junk.
_NUMBERS = st.floats(allow_nan=True, allow_infinity=True).map(repr) | st.integers(-(10**4), 10**4).map(str)
_TOKENS = _NUMBERS | st.sampled_from([",", ";", " ", "", "-", "e", "nan", "inf", "1e308", "%", "{}", "%d", "x"])
_FLAG_TEXT = st.lists(_TOKENS, max_size=8).map("".join) | st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20
)


@PROPERTIES
@given(text=_FLAG_TEXT, n_styles=st.integers(1, 4))
@example(text="1e308,1e308", n_styles=2)
@example(text=";;", n_styles=1)
@example(text="0\n", n_styles=2)
def test_parse_blends_only_raises_neural_style_error(text: str, n_styles: int) -> None:
    try:
        blends = sweep_cli.parse_blends(text, n_styles)
        candidates = make_candidates(StyleConfig(), n_styles, blends)
    except NeuralStyleError:
        return  # (the message may quote the text, newlines and all: the CLI folds it onto one line)
    assert all(len(c.blend) == n_styles for c in candidates)


@PROPERTIES
@given(values=st.lists(_FLAG_TEXT, max_size=4))
def test_floats_only_raises_neural_style_error(values: list[str]) -> None:
    try:
        parsed = floats("style_blend_weights", values)
    except NeuralStyleError as e:
        assert "--style_blend_weights" in str(e)
        return
    assert parsed is not None and len(parsed) == len(values)


_PATTERN_TOKENS = st.sampled_from(
    ["out", "_", ".png", ".jpg", "{}", "{", "}", "%d", "%s", "%", "%%", "%(x)d", "%5d", "%.2f", "%c", "%*d", " ", "é"]
)


@PROPERTIES
@given(pattern=st.lists(_PATTERN_TOKENS, max_size=6).map("".join))
@example(pattern="out_%s%s.png")
@example(pattern="out_%.png")
def test_checkpoint_output_pattern_is_checked(pattern: str) -> None:
    """Any --checkpoint_output pattern is refused with NeuralStyleError or names distinct files per iteration."""
    fv = stylize_flags("--content=c.png", "--styles=s.png", "--output=o.png", "--checkpoint_iterations=1")
    fv["checkpoint_output"].value = pattern
    try:
        style_config(fv)
    except NeuralStyleError as e:
        assert "--checkpoint_output" in str(e)
        return
    assert checkpoint_path(pattern, 1) != checkpoint_path(pattern, 2)


_LIST_AND_NUMBER_FLAGS = [
    "style_blend_weights",
    "style_scales",
    "blends",
    "sweep_style_weights",
    "blend_sweep",
    "width",
    "style_weight",
    "content_weight_blend",
    "initial_noiseblend",
    "tolerance",
    "average_decay",
    "batch_size",
]


@PROPERTIES
@given(flag=st.sampled_from(_LIST_AND_NUMBER_FLAGS), text=_FLAG_TEXT)
@example(flag="blends", text="1e308,1e308")
@example(flag="width", text="2147483648")
@example(flag="blend_sweep", text="50009999")  # once built 50 million candidates and ran out of memory
def test_flag_values_parse_or_fail_cleanly(flag: str, text: str) -> None:
    """Any value of a numeric or list flag: absl rejects it, or the settings checks raise only NeuralStyleError, in
    one line."""
    try:
        fv = stylize_flags("--content=c.png", "--styles=a.png,b.png", "--output=o.png", f"--{flag}={text}")
    except flags.Error:
        return
    try:
        style_config(fv)
        sweep_cli.plan(fv)
    except NeuralStyleError as e:
        assert str(e) and "\n" not in str(e), repr(str(e))


# ========================================================================== classes of the reliability issue
# Each class below is tested across its whole extent (every spelling, every input and output kind, every number
# flag of every command), not by one example.

# ----------------------------------------------------------------- an output never replaces an input, nor another


def _spelled(ws: Workspace, target: Path, spelling: str) -> str:
    """Another name for ``target`` (a file in ``ws.work``, the command's working directory)."""
    if spelling == "relative":
        return target.name
    if spelling == "dot":
        return f"./{target.name}"
    if spelling == "absolute":
        return str(target)
    if spelling == "parent":
        (ws.work / "sub").mkdir(exist_ok=True)
        return f"sub/../{target.name}"
    link = ws.work / f"{spelling}_{target.stem}.png"
    if spelling == "symlink":
        link.symlink_to(target)
    else:
        os.link(target, link)  # a hard link: another name for the very same file
    return link.name


SPELLINGS = ("relative", "dot", "absolute", "parent", "symlink", "hardlink")
INPUTS = ("content", "styles", "initial", "network")


def _input_path(ws: Workspace, kind: str) -> Path:
    if kind == "initial":
        path = ws.work / "initial.png"
        Image.fromarray(255 - content_array()).save(path)
        return path
    return {"content": ws.content, "styles": ws.style, "network": ws.network}[kind]


def _output_is_input(kind: str, spelling: str) -> Callable[[Workspace], list[str]]:
    def make(ws: Workspace) -> list[str]:
        source = _input_path(ws, kind)
        extra = [f"--initial={source.name}"] if kind == "initial" else []
        return [*ws.args(*extra, output=Path(_spelled(ws, source, spelling))), "--overwrite"]

    return make


def _as_content(name: str, *extra: str) -> Callable[[Workspace], list[str]]:
    """The content image copied to ``name`` (what another output of the run would be called) and used as input."""

    def make(ws: Workspace) -> list[str]:
        Image.fromarray(content_array()).save(ws.work / name)
        other = ws.work / "style2.png"
        Image.fromarray(style_array(seed=3)).save(other)
        args = _replace(ws.args(*extra), "content", name)
        return _replace(args, "styles", f"{ws.style},{other}") if "--blend_sweep=2" in extra else args

    return make


OUTPUT_IS_INPUT_CASES = [
    *(
        CliCase(f"--output is the {kind} image ({spelling})", _output_is_input(kind, spelling), 2, ("is the --",))
        for kind in INPUTS
        for spelling in SPELLINGS
    ),
    CliCase(
        "a checkpoint image is the content",
        _as_content("c_2.png", "--checkpoint_output=c_{}.png", "--checkpoint_iterations=2", "--iterations=2"),
        2,
        ("--checkpoint_output (iteration 2)", "is the --content image"),
    ),
    CliCase("the loss plot is the content", _as_content("progress.png", "--progress_plot"), 2, ("is the --content",)),
    CliCase(
        "the checkpoint sheet is the content",
        _as_content(
            "out_checkpoints.png", "--checkpoint_sheet", "--checkpoint_output=k_{}.png", "--checkpoint_iterations=1"
        ),
        2,
        ("--checkpoint_sheet", "is the --content image"),
    ),
    CliCase("a sweep candidate is the content", _as_content("out_1-0.png", "--blend_sweep=2"), 2, ("sweep 1-0",)),
    CliCase("the sweep sheet is the content", _as_content("out_sheet.png", "--blend_sweep=2"), 2, ("sweep sheet",)),
    CliCase(
        "--output is a checkpoint image",
        lambda ws: ws.args(
            "--checkpoint_output=o_{}.png", "--checkpoint_iterations=2", "--iterations=4", output=Path("o_4.png")
        ),
        2,
        ("is also the --output", "give them different names"),
    ),
    CliCase(
        "--output is the loss plot",
        lambda ws: ws.args("--progress_plot", output=Path("progress.png")),
        2,
        ("is also the --output",),
    ),
]


# ------------------------------------------------------------------- a saved state is never discarded silently


def _with_state(*extra: str) -> Callable[[Workspace], list[str]]:
    def make(ws: Workspace) -> list[str]:
        state = ws.work / "out.png.state"
        state.mkdir()
        (state / "checkpoint").write_text('model_checkpoint_path: "state-1"\n')
        return ws.args(*extra)

    return make


STATE_CASES = [
    CliCase("a saved state, no --resume", _with_state(), 2, ("--resume", "--restart", "out.png.state")),
    CliCase("a saved state, --overwrite", _with_state("--overwrite"), 2, ("--resume", "--restart")),
    CliCase("a saved state, L-BFGS", _with_state("--optimizer=lbfgs"), 2, ("--resume", "--restart")),
    CliCase("--resume with --restart", _with_state("--resume", "--restart"), 2, ("give one of them",)),
    CliCase("--restart in a sweep", lambda ws: ws.args("--sweep_style_weights=1,2", "--restart"), 2, ("--restart",)),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id, marks=c.marks) for c in [*OUTPUT_IS_INPUT_CASES, *STATE_CASES]]
)
def test_cli_classes_of_the_reliability_issue(tmp_path: Path, import_probe: Path, case: CliCase) -> None:
    """Outputs that are inputs or each other, and states that would be lost: refused like every bad input."""
    test_cli_corpus(tmp_path, import_probe, case)


@pytest.mark.slow
def test_restart_discards_the_state_and_runs(tmp_path: Path) -> None:
    """--restart is the one way to give up a saved state: the run starts afresh and, complete, leaves no state."""
    ws = make_workspace(tmp_path)
    _with_state()(ws)
    result = run_in_process(ws, ws.args("--iterations=2", "--restart"))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert ws.output.exists() and not (ws.work / "out.png.state").exists()


# ------------------------------------------------------------------------------- the scoring command


def _score_args(ws: Workspace, *extra: str, image: Path | None = None) -> list[str]:
    """A valid neural-style-score command line (the content scored as its own result), then ``extra``."""
    return [
        f"--content={ws.content}",
        f"--styles={ws.style}",
        f"--network={ws.network}",
        *extra,
        str(image or ws.content),
    ]


def _score_with(make: Callable[[Path], Path], *extra: str) -> Callable[[Workspace], list[str]]:
    """Scores the file ``make(ws.work)`` writes."""
    return lambda ws: _score_args(ws, *extra, image=make(ws.work))


def _score_json_exists(ws: Workspace) -> list[str]:
    (ws.work / "scores.json").write_text("{}")
    return _score_args(ws, f"--json={ws.work / 'scores.json'}")


def _score_json_is_image(ws: Workspace) -> list[str]:
    Image.fromarray(content_array()).save(ws.work / "x.png")
    return _score_args(ws, "--json=x.png", image=Path("x.png"))


def _score_tiny_image(directory: Path) -> Path:
    Image.new("RGB", (1, 5)).save(directory / "line.png")
    return directory / "line.png"


SCORE_CASES = [
    CliCase("no IMAGE", lambda ws: _score_args(ws)[:-1], 2, ("give one or more images to score",)),
    CliCase("missing IMAGE", lambda ws: _score_args(ws, image=ws.work / "gone.png"), 2, ("IMAGE", "gone.png", "exist")),
    CliCase(
        "IMAGE not an image",
        _score_with(_writer("notes.png", lambda: b"not an image")),
        2,
        ("IMAGE", "notes.png", "not an image"),
    ),
    CliCase("IMAGE a directory", _score_with(_directory), 2, ("IMAGE", "is a directory")),
    CliCase("IMAGE truncated", _score_with(_writer("cut.png", lambda: _small_png()[:40])), 2, ("IMAGE", "cut.png")),
    CliCase("IMAGE 1x5", _score_with(_score_tiny_image), 2, ("IMAGE", "line.png", "1x5", "at least 2x2")),
    CliCase("IMAGE of another --width", lambda ws: _score_args(ws, "--width=30"), 2, ("24 pixels wide", "--width 30")),
    CliCase("no --content", lambda ws: _score_args(ws)[1:], 2, ("--content is required",)),
    CliCase("no --styles", lambda ws: [_score_args(ws)[0], *_score_args(ws)[2:]], 2, ("--styles is required",)),
    CliCase("missing style", lambda ws: _replace(_score_args(ws), "styles", "none.png"), 2, ("--styles image",)),
    CliCase("missing network", lambda ws: _replace(_score_args(ws), "network", "none.mat"), 2, ("none.mat",)),
    CliCase("negative weight", lambda ws: _score_args(ws, "--tv_weight=-1"), 2, ("--tv_weight",)),
    CliCase("blend above 1", lambda ws: _score_args(ws, "--content_weight_blend=2"), 2, ("--content_weight_blend is",)),
    CliCase("blend weights count", lambda ws: _score_args(ws, "--style_blend_weights=1,2"), 2, ("2 values for 1",)),
    CliCase("style scales count", lambda ws: _score_args(ws, "--style_scales=1,2"), 2, ("--style_scales has 2",)),
    CliCase("unknown pooling", lambda ws: _score_args(ws, "--pooling=min"), 2, ("--pooling",)),
    CliCase("a flag of runs only", lambda ws: _score_args(ws, "--iterations=5"), 2, ("iterations",)),
    CliCase("--json exists", _score_json_exists, 2, ("--json", "already exists", "--overwrite")),
    CliCase("--json is the content", lambda ws: _score_args(ws, f"--json={ws.content}"), 2, ("--content image",)),
    CliCase("--json is the IMAGE", _score_json_is_image, 2, ("--json x.png is the IMAGE x.png",)),
    CliCase("--json in a missing folder", lambda ws: _score_args(ws, "--json=no/s.json"), 2, ("does not exist",)),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in SCORE_CASES])
def test_score_corpus(tmp_path: Path, import_probe: Path, case: CliCase) -> None:
    """neural-style-score's bad command lines: exit 2, one error line, nothing written, no TensorFlow imported."""
    ws = make_workspace(tmp_path)
    args = case.make(ws)
    before = snapshot(ws.work)
    env = ws.env
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(import_probe), env.get("PYTHONPATH")) if p)
    env["NEURAL_STYLE_TEST_IMPORTS"] = str(tmp_path / IMPORTS_MARKER)
    runner = "from neural_style.cli.score import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", runner, *args], cwd=ws.work, env=env, capture_output=True, text=True, timeout=600
    )
    lines = result.stderr.splitlines()
    assert result.returncode == case.status, result.stderr
    assert len(lines) == 1 and lines[0].startswith("neural-style-score: error: "), result.stderr
    for word in case.words:
        assert word in lines[0], lines[0]
    assert result.stdout == ""
    assert snapshot(ws.work) == before, "a rejected command must not create or change any file"
    assert (tmp_path / IMPORTS_MARKER).read_text() == "", "rejected before TensorFlow is imported"


# ---------------------------------------------------------------------- no number flag is NaN or infinite


def _commands() -> dict[str, Any]:
    """{command: its cli module} of the commands whose flags the classes below run through."""
    from neural_style.cli import export as export_cli
    from neural_style.cli import score as score_cli
    from neural_style.cli import train as train_cli

    return {
        "neural-style": stylize_cli,
        "neural-style-train": train_cli,
        "neural-style-export": export_cli,
        "neural-style-score": score_cli,
    }


def _flags_of(command: str, parser: type) -> list[str]:
    """The flags of ``command`` parsed by ``parser`` (e.g. every float flag), found by type, so new ones count."""
    fv = _commands()[command].flag_values()
    return sorted(name for name in fv if isinstance(fv[name].parser, parser))


def _flag_cases(parser: type, values: tuple[str, ...]) -> list[Any]:
    """(command, flag, value) for every flag of that parser in every command, with each of ``values``."""
    return [
        pytest.param(command, name, value, id=f"{command} --{name}={value}")
        for command in _commands()
        for name in _flags_of(command, parser)
        for value in values
    ]


@pytest.mark.parametrize(("command", "name", "value"), _flag_cases(flags.FloatParser, ("nan", "inf", "-inf")))
def test_every_float_flag_refuses_nan_and_infinity(
    command: str, name: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every float flag of every command (found by its parser, so new flags are covered): exit 2, one line."""
    with pytest.raises(SystemExit) as info:
        _commands()[command].main([command, f"--{name}={value}"])
    assert info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"{command}: error: --{name} is {float(value)}; give a finite number"], lines


def test_the_commands_have_float_flags() -> None:
    """The test above covers something: neural-style has 16 float flags, neural-style-train 6 (both with
    --worker_timeout), export none, score 5 (neural-style's loss weights)."""
    counts = {command: len(_flags_of(command, flags.FloatParser)) for command in _commands()}
    assert counts == {"neural-style": 16, "neural-style-train": 6, "neural-style-export": 0, "neural-style-score": 5}


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999"])
@pytest.mark.parametrize(
    ("flag", "template", "styles"),
    [
        ("style_scales", "1,{}", 2),
        ("style_blend_weights", "{},1", 2),
        ("sweep_style_weights", "10,{}", 1),
        ("blends", "1,0;{},1", 2),
    ],
)
def test_number_lists_refuse_nan_and_infinity(
    flag: str, template: str, styles: int, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The number lists (--style_scales, --style_blend_weights, --sweep_style_weights, --blends): one line saying
    finite numbers are wanted, whatever the non-finite value (1e999 overflows to inf)."""
    argv = ["neural-style", "--content=c.png", f"--styles={','.join(['s.png'] * styles)}", "--output=o.png"]
    with pytest.raises(SystemExit) as info:
        stylize_cli.main([*argv, f"--{flag}={template.format(value)}"])
    assert info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and f"--{flag}" in lines[0] and "finite numbers" in lines[0], lines


@pytest.mark.parametrize(("size", "refused"), [(0, True), (1, True), (2, False)])
def test_train_image_size_names_the_smallest_that_works(size: int, refused: bool) -> None:
    """A crop of 1 pixel has no neighbours for the total variation term (its loss would be NaN): the smallest
    size that works, 2, is named."""
    from neural_style.config import MIN_IMAGE_SIZE, TrainConfig

    assert MIN_IMAGE_SIZE == 2
    if not refused:
        TrainConfig(image_size=size).validate()
        return
    with pytest.raises(NeuralStyleError, match="the smallest size that works is 2") as info:
        TrainConfig(image_size=size).validate()
    assert info.value.setting == "image_size"


# ------------------------------------------------------------------------ messages that used to mislead


def _output_is_a_directory(ws: Workspace) -> list[str]:
    (ws.work / "results").mkdir()
    return ws.args(output=Path("results"))


def _output_under_a_file(ws: Workspace) -> list[str]:
    (ws.work / "notes.txt").write_text("a file")
    return ws.args(output=Path("notes.txt/sub/out.png"))


MESSAGE_CASES = [
    CliCase("--output under a file", _output_under_a_file, 2, ("notes.txt is a file, not a directory",)),
    CliCase("--output is a directory", _output_is_a_directory, 2, ("--output results is a directory", "results/")),
    CliCase("a trailing comma in --styles", lambda ws: _replace(ws.args(), "styles", f"{ws.style},"), 2, ("empty",)),
    CliCase("a double comma in --styles", lambda ws: _replace(ws.args(), "styles", f"{ws.style},,x"), 2, ("empty",)),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in MESSAGE_CASES])
def test_cli_messages_say_what_is_wrong(tmp_path: Path, import_probe: Path, case: CliCase) -> None:
    test_cli_corpus(tmp_path, import_probe, case)


# --------------------------------------------------------------------- regions, colour control and chosen layers


def _mask(ws: Workspace, name: str, size: tuple[int, int], value: int = 255) -> Path:
    """A grey-level mask file of ``size`` (width, height), all ``value``, in the workspace."""
    Image.new("L", size, value).save(ws.work / name)
    return ws.work / name


def _two_styles(ws: Workspace, *extra: str) -> list[str]:
    return _replace(ws.args(*extra), "styles", f"{ws.style},{ws.style}")


def _content_size(ws: Workspace) -> tuple[int, int]:
    with Image.open(ws.content) as image:
        return image.size


def _masks_not_images(ws: Workspace) -> list[str]:
    (ws.work / "left.png").write_text("not a picture")
    return _two_styles(ws, f"--content_masks={ws.work / 'left.png'},{_mask(ws, 'right.png', _content_size(ws))}")


def _masks_count(ws: Workspace) -> list[str]:
    return _two_styles(ws, f"--content_masks={_mask(ws, 'left.png', _content_size(ws))}")


def _masks_all_black(ws: Workspace) -> list[str]:
    size = _content_size(ws)
    return _two_styles(ws, f"--content_masks={_mask(ws, 'left.png', size)},{_mask(ws, 'black.png', size, 0)}")


def _masks_aspect(ws: Workspace) -> list[str]:
    width, height = _content_size(ws)
    wide = _mask(ws, "wide.png", (width * 2, height))
    return _two_styles(ws, f"--content_masks={_mask(ws, 'left.png', (width, height))},{wide}")


def _style_masks_aspect(ws: Workspace) -> list[str]:
    return ws.args(f"--style_masks={_mask(ws, 'tall.png', (8, 30))}")


REGION_CASES = [
    CliCase("a content mask that is not an image", _masks_not_images, 2, ("--content_masks mask", "left.png")),
    CliCase("one content mask for two styles", _masks_count, 2, ("--content_masks has 1 masks for 2 styles",)),
    CliCase("an all-black content mask", _masks_all_black, 2, ("--content_masks mask", "black.png", "all black")),
    CliCase("a content mask of another shape", _masks_aspect, 2, ("--content_masks mask", "wide.png", "aspect")),
    CliCase("a style mask of another shape", _style_masks_aspect, 2, ("--style_masks mask", "tall.png", "style image")),
    CliCase(
        "a content weight blend with custom content layers",
        lambda ws: ws.args("--content_layers=relu3_1", "--content_weight_blend=0.5"),
        2,
        ("--content_weight_blend is 0.5", "relu4_2,relu5_2", "relu3_1"),
    ),
    CliCase(
        "a style layer the network lacks",
        lambda ws: ws.args("--style_layers=relu1_1,relu9_9"),
        2,
        ("--style_layers names relu9_9, not a conv or ReLU layer of the network; give some of conv1_1, relu1_1",),
    ),
    CliCase("an unknown colour mode", lambda ws: ws.args("--preserve_colors=sepia"), 2, ("preserve_colors", "sepia")),
]


@pytest.mark.slow
@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in REGION_CASES])
def test_cli_regions_colours_and_layers(tmp_path: Path, import_probe: Path, case: CliCase) -> None:
    test_cli_corpus(tmp_path, import_probe, case)


# --------------------------------------------------------------------- camera-size photos, not decompression bombs


def test_a_100_megapixel_header_is_not_a_bomb(tmp_path: Path) -> None:
    """An 11648x8736 PNG (a 102-megapixel camera's size) passes the pixel check: this one is refused only because
    its data is missing, while 17000x17000 (289 megapixels) is refused for its size."""
    (tmp_path / "camera.png").write_bytes(_png_bytes(11648, 8736, None))
    with pytest.raises(NeuralStyleError, match="corrupt or truncated"):
        read_image(tmp_path / "camera.png")
    (tmp_path / "bomb.png").write_bytes(_png_bytes(17000, 17000, None))
    with pytest.raises(NeuralStyleError, match="more than 250 megapixels"):
        read_image(tmp_path / "bomb.png")


@pytest.fixture(scope="module")
def camera_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 102-megapixel JPEG (11648x8736): a horizontal ramp, so that a reduced decode can be checked by value."""
    path = tmp_path_factory.mktemp("camera") / "camera.jpg"
    ramp = np.linspace(0, 255, 11648).astype(np.uint8)
    Image.fromarray(np.broadcast_to(ramp[None, :, None], (8736, 11648, 3)).copy()).save(path, quality=90)
    return path


@pytest.mark.slow
def test_a_102_megapixel_jpeg_is_read_at_a_reduced_scale(camera_jpeg: Path) -> None:
    """Shrunk to 64 px wide by the caller, it is decoded at 1/8 scale (1456x1092, the smallest at least 64 wide),
    and its values are the ramp's."""
    image = read_image(camera_jpeg, min_width=64)
    assert image.shape == (1092, 1456, 3) and image.dtype == np.float32
    expected = np.linspace(0, 255, 1456)
    assert np.abs(image[546, :, 0] - expected).max() < 4  # JPEG and 8x8 block averaging, within a few levels


@pytest.mark.slow
def test_neural_style_stylizes_a_102_megapixel_photo(tmp_path: Path, camera_jpeg: Path) -> None:
    """The whole command, --width 32: the output has the photo's aspect ratio (8736 / 11648 x 32 = 24)."""
    ws = make_workspace(tmp_path)
    result = run_in_process(ws, _replace(ws.args("--width=32", "--iterations=1"), "content", camera_jpeg))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    with Image.open(ws.output) as output:
        assert output.size == (32, 24)


@pytest.mark.parametrize("command", ["neural-style", "neural-style-train"])
@pytest.mark.parametrize(
    ("seed", "refused"), [(-1, True), (2**32, True), (10**20, True), (0, False), (2**32 - 1, False)]
)
def test_seeds_out_of_range_are_refused(command: str, seed: int, refused: bool) -> None:
    """A seed NumPy or TensorFlow would reject (negative, or beyond 32 bits) is refused by name before any work;
    the largest and smallest seeds are valid settings."""
    from neural_style.config import MAX_SEED, StyleConfig, TrainConfig

    assert MAX_SEED == 4294967295
    config = StyleConfig(seed=seed) if command == "neural-style" else TrainConfig(seed=seed)
    if not refused:
        config.validate()
        return
    with pytest.raises(NeuralStyleError, match=f"is {seed}; give a whole number from 0 to 4294967295") as info:
        config.validate()
    assert info.value.setting == "seed"


@pytest.mark.slow
def test_a_negative_seed_on_the_command_line_is_one_line(tmp_path: Path, import_probe: Path) -> None:
    """It used to end in NumPy's traceback after TensorFlow had started."""
    test_cli_corpus(tmp_path, import_probe, CliCase("--seed -1", lambda ws: ws.args("--seed=-1"), 2, ("--seed is -1",)))


@pytest.mark.parametrize(("command", "name", "value"), _flag_cases(flags.ListParser, ("a,", ",a", "a,,b", " , ")))
def test_every_list_flag_refuses_an_empty_entry(
    command: str, name: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trailing, leading or double comma in any list flag of any command (found by its parser): one line saying
    so, instead of an empty path or layer name further on."""
    with pytest.raises(SystemExit) as info:
        _commands()[command].main([command, f"--{name}={value}"])
    assert info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{command}: error: --{name} '") and "empty entry" in lines[0]


def test_the_commands_have_list_flags() -> None:
    """The test above covers something: 11 list flags of neural-style, 2 of train, 1 of export, 7 of score (with the
    masks)."""
    counts = {command: len(_flags_of(command, flags.ListParser)) for command in _commands()}
    assert counts == {"neural-style": 11, "neural-style-train": 2, "neural-style-export": 1, "neural-style-score": 7}


# ------------------------------------------------------------------ advice that works, checks that come first


def _refusal(ws: Workspace, args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """Runs ``neural-style args`` in process in ``ws.work``: exit 2, one error line (returned), no file changed."""
    monkeypatch.chdir(ws.work)
    before = snapshot(ws.work)
    with pytest.raises(SystemExit) as info:
        stylize_cli.main(["neural-style", *args])
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert info.value.code == 2, captured.err
    assert len(lines) == 1 and lines[0].startswith(ERROR_PREFIX), captured.err
    assert snapshot(ws.work) == before, "a refused command must not create or change any file"
    return lines[0]


@pytest.mark.parametrize("blends", ["1,0;", ";1,0", "1,0;;0,1"])
def test_blends_with_an_empty_entry_are_refused(
    ws: Workspace, blends: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Like every list flag's: an empty blend used to be skipped, running fewer candidates than listed."""
    args = _replace(ws.args(), "styles", f"{ws.style},{ws.style}") + [f"--blends={blends}"]
    line = _refusal(ws, args, monkeypatch, capsys)
    assert f"--blends '{blends}' has an empty entry" in line


@pytest.mark.parametrize(
    ("extra", "advice"),
    [
        (["--preserve_colors", "histogram"], "write --preserve_colors=histogram"),
        (["--overwrite", "stray"], "every setting is a --flag"),
    ],
)
def test_a_flag_value_after_a_space_is_told_how_to_write_it(
    ws: Workspace, extra: list[str], advice: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """absl takes '--flag value' only for some flags; the stray value names the spelling that works."""
    line = _refusal(ws, ws.args(*extra), monkeypatch, capsys)
    assert f"unexpected argument '{extra[1]}'" in line and advice in line, line


@pytest.mark.parametrize("spelling", ["results", "results/"])
def test_an_output_directory_suggests_a_file_inside_it(
    ws: Workspace, spelling: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """'--output results/' used to suggest 'results//out.png'."""
    (ws.work / "results").mkdir()
    line = _refusal(ws, ws.args(output=Path(spelling)), monkeypatch, capsys)
    assert line.endswith("is a directory; give a file name such as results/out.png"), line


def test_counts_of_one_are_singular() -> None:
    """'(1 frame)', not '(1 frames)'; the one way every command says where it stopped."""
    from neural_style.cli.report import plural, stopped_after

    assert [plural(n, "frame") for n in (0, 1, 2)] == ["0 frames", "1 frame", "2 frames"]
    assert stopped_after("interrupted", 2, 8) == "interrupted after frame 2/8"


_TWO_WORKERS = '{"cluster": {"worker": ["localhost:1", "localhost:2"]}, "task": {"type": "worker", "index": 0}}'


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--optimizer=lbfgs"], "TF_CONFIG lists 2 workers, but --optimizer lbfgs optimises one image on one device"),
        (["--optimizer=lbfgs", "--batch_size=1"], "sweep with adam"),
        (["--tile_size=32"], "tiles (--tile_size) are evaluated on one device and do not combine with a split sweep"),
    ],
)
def test_a_two_worker_sweep_gives_the_advice_that_works_before_joining(
    ws: Workspace, extra: list[str], words: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """L-BFGS: the advice that works comes first (no --batch_size helps it across workers); --tile_size: refused up
    front, where the worker used to wait for its peer for --worker_timeout and then fail."""
    monkeypatch.setenv("TF_CONFIG", _TWO_WORKERS)
    args = _replace(ws.args(*extra, "--blend_sweep=4"), "styles", f"{ws.style},{ws.style}")
    line = _refusal(ws, args, monkeypatch, capsys)
    assert words in line, line


def test_a_two_worker_sweep_that_max_memory_tiles_is_refused_before_joining(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tiles chosen by --max_memory (known once the network is read) are refused before the workers join, as
    --tile_size is: the worker used to wait for its peer and fail after --worker_timeout. The test's image is too
    small to need tiles, so the plan is made to choose 64 px ones."""
    from neural_style.cli import inputs

    monkeypatch.setattr(inputs, "check_memory", lambda *args: 64)
    monkeypatch.setenv("TF_CONFIG", _TWO_WORKERS)
    args = _replace(ws.args("--blend_sweep=4", "--max_memory=2G"), "styles", f"{ws.style},{ws.style}")
    line = _refusal(ws, args, monkeypatch, capsys)
    assert line == (
        f"{ERROR_PREFIX}TF_CONFIG lists 2 workers, but --max_memory 2G needs this image in 64 px tiles, and tiles are "
        "evaluated on one device and do not combine with a split sweep: raise --max_memory, use a smaller --width, "
        "or unset TF_CONFIG (or pass --devices none) to run this process alone"
    ), line


@pytest.mark.parametrize("extra", [[], ["--overwrite"]])
def test_an_interrupted_run_is_named_before_its_output(
    ws: Workspace, extra: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The interrupted run wrote its output: the first refusal names the saved state (--resume / --restart), not
    --overwrite, which would only lead to a second refusal."""
    args = _with_state(*extra)(ws)
    Image.fromarray(content_array()).save(ws.output)
    line = _refusal(ws, args, monkeypatch, capsys)
    assert "holds an interrupted run" in line and "--resume" in line and "--restart" in line, line


@pytest.mark.slow
def test_restart_replaces_the_interrupted_runs_own_output(tmp_path: Path) -> None:
    """--restart means "start this run again": the image its interrupted run wrote is replaced without --overwrite."""
    ws = make_workspace(tmp_path)
    _with_state()(ws)
    Image.fromarray(content_array()).save(ws.output)
    before = ws.output.read_bytes()
    result = run_neural_style(ws, ws.args("--iterations=2", "--restart"))
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert ws.output.read_bytes() != before and not (ws.work / "out.png.state").exists()


@pytest.mark.parametrize("tile", [1, 15])
def test_a_tile_below_the_smallest_is_refused_with_the_reason(
    ws: Workspace, tile: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to become 16 px tiles silently (88 tiles a pass on a 128 px image); --nomemory_guard: checked even
    without a budget."""
    line = _refusal(ws, ws.args(f"--tile_size={tile}", "--nomemory_guard"), monkeypatch, capsys)
    assert f"--tile_size is {tile}, smaller than the smallest tile, 16 px: tiles are cut on the 16 px grid" in line
    assert "give at least 16, better 64 or more, as each tile is evaluated with" in line, line


@pytest.mark.parametrize("devices", ["bogus", "/gpu:7", "/cpu:0,/gpu:7"])
def test_a_device_the_machine_lacks_is_refused_for_a_single_image_too(
    ws: Workspace, devices: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A single image used to run on the default device, ignoring --devices; a sweep refused it: one check."""
    line = _refusal(ws, ws.args(f"--devices={devices}"), monkeypatch, capsys)
    missing = devices.split(",")[-1]
    assert f"--devices '{devices}' names {missing}, which this machine does not have; it has " in line, line
    assert "/device:CPU:0" in line and line.endswith("(or pass --devices auto)")
