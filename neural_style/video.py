"""Reading and writing video files with PyAV (FFmpeg's libraries), an optional extra.

PyAV is imported inside the functions that need it, so importing this module (or the package) never does; a video
given without it installed gets one :class:`~neural_style.errors.NeuralStyleError` naming the extra to install.
Frames are RGB float32 arrays in 0..255, as images are everywhere else. The writer follows the output's extension
(``.mp4`` and ``.mkv`` H.264, ``.webm`` VP9), keeps the frame rate it is given, copies the audio of a source file
when asked, and replaces its output atomically, as :func:`neural_style.image_io.write_image` does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from fractions import Fraction
from types import ModuleType
from typing import Any

import numpy as np

from neural_style.atomic import AtomicFile
from neural_style.errors import NeuralStyleError
from neural_style.image_io import resize, to_uint8

__all__ = [
    "INSTALL_HINT",
    "VIDEO_EXTENSIONS",
    "VideoInfo",
    "VideoWriter",
    "check_video_output",
    "is_video",
    "probe_video",
    "read_frames",
]

INSTALL_HINT = 'pip install "neural_style[video]" (or pip install av opencv-python-headless)'
# Extensions taken for video: inputs with these are read as video, outputs written as video.
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi")
# {output extension: (container format, video encoder)}
_OUTPUT_FORMATS = {
    ".mp4": ("mp4", "libx264"),
    ".m4v": ("mp4", "libx264"),
    ".mov": ("mov", "libx264"),
    ".mkv": ("matroska", "libx264"),
    ".webm": ("webm", "libvpx-vp9"),
}
# Audio codecs each container takes as they are (others are re-encoded with the container's own).
_AUDIO_COPIED = {
    "mp4": {"aac", "mp3", "alac", "ac3"},
    "mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le"},
    "webm": {"opus", "vorbis"},
}
# {container: (audio encoder, its sample format, sample rate or None for the source's)} for audio that is re-encoded
_AUDIO_ENCODER = {"mp4": ("aac", "fltp", None), "mov": ("aac", "fltp", None), "webm": ("libopus", "flt", 48000)}
# Constant quality of the encoders (x264's CRF 18 is about visually lossless; VP9's scale is similar).
_QUALITY = {"libx264": {"crf": "18", "preset": "medium"}, "libvpx-vp9": {"crf": "24", "b": "0"}}


def _av(path: str, what: str) -> ModuleType:
    """PyAV, or a NeuralStyleError naming ``what`` and the extra to install."""
    try:
        import av
    except ImportError:
        raise NeuralStyleError(f"{what} {path} is a video, which needs the video extra: {INSTALL_HINT}") from None
    return av


def is_video(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a video by its extension (:data:`VIDEO_EXTENSIONS`)."""
    return os.path.splitext(os.fspath(path))[1].lower() in VIDEO_EXTENSIONS


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What a video file holds, as :func:`probe_video` found by decoding it.

    Attributes:
        path: the file.
        width, height: frame size in pixels.
        frames: number of frames decoded.
        rate: frames per second (the stream's average rate).
        audio: whether it has an audio stream.
        codec: the video codec's name.
    """

    path: str
    width: int
    height: int
    frames: int
    rate: Fraction
    audio: bool
    codec: str

    @property
    def seconds(self) -> float:
        """The duration the frames make at :attr:`rate`."""
        return float(self.frames / self.rate)


def probe_video(path: str | os.PathLike[str], *, what: str = "video") -> VideoInfo:
    """Opens a video and decodes every frame of its first video stream, so that a bad file is found before work.

    Args:
        path: the file.
        what: how to name the file in errors, e.g. ``"--content video"``.

    Raises:
        NeuralStyleError: PyAV is missing; the file is missing, not a video, has no video stream or no frames, or
            its stream is corrupt.
    """
    path = os.fspath(path)
    av = _av(path, what)
    if os.path.isdir(path):
        raise NeuralStyleError(f"{what} {path} is a directory; give a video file")
    if not os.path.exists(path):
        raise NeuralStyleError(f"{what} {path} does not exist; check the path")
    try:
        container = av.open(path)
    except PermissionError:
        raise NeuralStyleError(f"{what} {path} cannot be read (permission denied); fix its permissions") from None
    except av.error.EOFError:  # a header and nothing after it
        raise NeuralStyleError(f"{what} {path} has no frames (the file ends before any)") from None
    except (av.FFmpegError, OSError, ValueError) as e:
        raise NeuralStyleError(f"{what} {path} is not a video FFmpeg can read ({_reason(e)})") from None
    with container:
        if not container.streams.video:
            raise NeuralStyleError(f"{what} {path} has no video stream")
        stream = container.streams.video[0]
        frames, size = 0, None
        try:
            for frame in container.decode(stream):
                frames += 1
                size = size or (frame.width, frame.height)
        except (av.FFmpegError, OSError, ValueError) as e:
            raise NeuralStyleError(
                f"{what} {path} is corrupt at frame {frames + 1} ({_reason(e)}); use another copy"
            ) from None
        if frames == 0 or size is None:
            raise NeuralStyleError(f"{what} {path} has no frames")
        if stream.frames and frames < stream.frames:
            raise NeuralStyleError(
                f"{what} {path} is corrupt: {frames} of its {stream.frames} frames decode; use another copy"
            )
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or rate <= 0:
            raise NeuralStyleError(f"{what} {path} has no frame rate; re-encode it (e.g. with ffmpeg -r 25)")
        # Containers without a frame count (Matroska, WebM) still state a duration: a file cut short decodes fewer
        # frames than it lasts. One frame of slack for the rounding of durations.
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        else:
            seconds = (container.duration or 0) / 1e6  # av.time_base: microseconds
        promised = round(seconds * float(rate))
        if frames + 1 < promised:
            raise NeuralStyleError(
                f"{what} {path} is cut short: {frames} of the {promised} frames its duration promises decode; "
                "use another copy"
            )
        return VideoInfo(
            path, size[0], size[1], frames, Fraction(rate), bool(container.streams.audio), stream.codec_context.name
        )


def _reason(error: BaseException) -> str:
    return " ".join(str(getattr(error, "strerror", None) or error).split())[:120]


def read_frames(
    path: str | os.PathLike[str], *, size: tuple[int, int] | None = None, start: int = 0
) -> Iterator[np.ndarray]:
    """The frames of a video, in order.

    Args:
        path: the file (checked with :func:`probe_video` first).
        size: (height, width) to resize every frame to, or None for their own size.
        start: frames to skip first.

    Yields:
        [H, W, 3] float32 RGB in 0..255.
    """
    path = os.fspath(path)
    av = _av(path, "video")
    with av.open(path) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index >= start:
                rgb = frame.to_ndarray(format="rgb24").astype(np.float32)
                yield rgb if size is None else resize(rgb, size)


def check_video_output(path: str | os.PathLike[str], *, what: str = "--output") -> tuple[str, str]:
    """The (container format, video encoder) an output at ``path`` is written with.

    Raises:
        NeuralStyleError: no video codec goes with the extension, or this FFmpeg build lacks the encoder.
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in _OUTPUT_FORMATS:
        raise NeuralStyleError(
            f"{what} {path}: no video codec for '{ext or 'no extension'}'; use .mp4 (H.264), .webm (VP9) or .mkv"
        )
    av = _av(path, what)
    container_format, encoder = _OUTPUT_FORMATS[ext]
    try:
        av.codec.Codec(encoder, "w")
    except Exception:  # noqa: BLE001 - PyAV raises several kinds for an unknown codec
        raise NeuralStyleError(f"{what} {path}: this FFmpeg has no {encoder} encoder; use another extension") from None
    return container_format, encoder


class VideoWriter:
    """Writes frames to a video file atomically: into a temporary file beside it, renamed over it on :meth:`close`.

    Use it as a context manager: leaving the block normally closes (writes) the video; an exception aborts it,
    leaving any earlier file at the path unchanged. Frames must all have the size given.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        width: int,
        height: int,
        rate: Fraction | float,
        *,
        audio_from: str | os.PathLike[str] | None = None,
    ) -> None:
        """Args:
        path: the output; its extension chooses container and codec (see :func:`check_video_output`).
        width, height: frame size in pixels.
        rate: frames per second.
        audio_from: a video whose first audio stream is copied (cut to the frames written), or None.
        """
        self.path = os.fspath(path)
        self.width, self.height = int(width), int(height)
        self.rate = Fraction(rate).limit_denominator(1_000_000)
        self.frames = 0
        container_format, encoder = check_video_output(self.path)
        self._av = _av(self.path, "--output")
        self._target = AtomicFile(self.path, suffix=os.path.splitext(self.path)[1])
        self._tmp = self._target.tmp
        self._audio_source = os.fspath(audio_from) if audio_from is not None else None
        try:
            self._container = self._av.open(self._tmp, "w", format=container_format)
            self._stream = self._container.add_stream(encoder, rate=self.rate)
            self._stream.width, self._stream.height = self.width, self.height
            # 4:2:0 chroma needs even sides; odd-sized frames keep full chroma instead of being cropped
            even = self.width % 2 == 0 and self.height % 2 == 0
            self._stream.pix_fmt = "yuv420p" if even else "yuv444p"
            self._stream.options = dict(_QUALITY.get(encoder, {}))
            self._audio = self._add_audio(container_format)
        except BaseException:
            self._discard()
            raise

    def _add_audio(self, container_format: str) -> tuple[Any, Any, Any] | None:
        """(source stream, output stream, resampler or None when copied as is) of the audio, or None."""
        if self._audio_source is None:
            return None
        self._source = self._av.open(self._audio_source)
        if not self._source.streams.audio:
            self._source.close()
            return None
        source = self._source.streams.audio[0]
        name = source.codec_context.name
        copied = container_format == "matroska" or name in _AUDIO_COPIED.get(container_format, set())
        if copied:
            return source, self._container.add_stream_from_template(source), None
        encoder, sample_format, rate = _AUDIO_ENCODER[container_format]
        rate = rate or source.codec_context.sample_rate
        output = self._container.add_stream(encoder, rate=rate)
        output.codec_context.layout = source.codec_context.layout
        output.codec_context.format = sample_format
        return (
            source,
            output,
            self._av.AudioResampler(format=sample_format, layout=source.codec_context.layout, rate=rate),
        )

    def write(self, image: np.ndarray) -> None:
        """Encodes one frame, [H, W, 3] RGB floats in 0..255 (clipped and rounded) or uint8."""
        pixels = image if image.dtype == np.uint8 else to_uint8(image)
        if pixels.shape != (self.height, self.width, 3):
            raise NeuralStyleError(f"frame of shape {pixels.shape} for a {self.width}x{self.height} video")
        frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
        frame.pts = self.frames
        frame.time_base = 1 / self.rate
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def _copy_audio(self) -> None:
        assert self._audio is not None
        source, output, resampler = self._audio
        end = self.frames / self.rate  # seconds of video written: the audio stops there too
        if resampler is None:
            for packet in self._source.demux(source):
                if packet.dts is None:
                    continue
                if packet.pts is not None and packet.time_base is not None and packet.pts * packet.time_base >= end:
                    break
                packet.stream = output
                self._container.mux(packet)
            return
        for frame in self._source.decode(source):
            if frame.time is not None and frame.time >= end:
                break
            frame.pts = None
            for resampled in resampler.resample(frame):
                self._container.mux(output.encode(resampled))
        for resampled in resampler.resample(None):
            self._container.mux(output.encode(resampled))
        self._container.mux(output.encode(None))

    def close(self) -> None:
        """Flushes the encoder, copies the audio and renames the file into place.

        Raises:
            NeuralStyleError: no frame was written, or the file system refused the write (the path is unchanged).
        """
        try:
            if self.frames == 0:
                raise NeuralStyleError(f"no frames to write to {self.path}", usage=False)
            self._container.mux(self._stream.encode(None))
            if self._audio is not None:
                self._copy_audio()
            self._container.close()
            if self._audio is not None:
                self._source.close()
            self._target.commit()
        except OSError as e:
            self._discard()
            raise NeuralStyleError(f"could not write {self.path}: {e.strerror or e}", usage=False) from None
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        """Closes what is open and removes the temporary file."""
        for name in ("_container", "_source"):
            handle = getattr(self, name, None)
            if handle is not None:
                with contextlib.suppress(Exception):  # the file is being thrown away
                    handle.close()
        self._target.discard()

    def abort(self) -> None:
        """Throws the video away: the path keeps what it held before."""
        self._discard()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()
