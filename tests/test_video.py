"""Tests of video reading and writing (neural_style.video) and of neural-style-apply on a video.

The clip (conftest's ``write_clip``): a red square moving 2 px a frame across a still colour gradient, twelve
64x48 frames at 12 frames/s, with a second of audio. Optical flow is tested in test_flow.py, the temporal term in
test_temporal.py and neural-style on a video in test_cli_video.py. Everything is skipped when the video extra (av,
opencv-python-headless) is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from conftest import (  # noqa: E402
    CLIP_FRAMES,
    CLIP_HEIGHT,
    CLIP_RATE,
    CLIP_WIDTH,
    randomized,
    square_frames,
    tiny_transformer,
    write_clip,
)

from neural_style import flow  # noqa: E402
from neural_style.errors import NeuralStyleError  # noqa: E402
from neural_style.video import VideoWriter, check_video_output, probe_video, read_frames  # noqa: E402

HEIGHT, WIDTH, FRAMES, RATE = CLIP_HEIGHT, CLIP_WIDTH, CLIP_FRAMES, CLIP_RATE


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "square.mp4", square_frames())


def audio_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        last = [p for p in container.demux(stream) if p.pts is not None][-1]
        return float((last.pts + last.duration) * stream.time_base)


# ------------------------------------------------------------------------------------------------ reading, writing


def test_probe_and_read_the_clip(clip: Path) -> None:
    info = probe_video(clip)
    assert (info.width, info.height, info.frames, info.rate, info.audio) == (WIDTH, HEIGHT, FRAMES, RATE, True)
    frames = list(read_frames(clip))
    assert len(frames) == FRAMES and frames[0].shape == (HEIGHT, WIDTH, 3) and frames[0].dtype == np.float32
    assert np.abs(frames[5] - square_frames()[5]).mean() < 2.0  # H.264 at CRF 10: within a couple of levels
    assert [f.shape for f in read_frames(clip, size=(24, 32), start=10)] == [(24, 32, 3)] * 2


@pytest.mark.parametrize("extension", [".mp4", ".webm", ".mkv"])
def test_writer_keeps_rate_size_count_and_audio_cut_to_the_frames(clip: Path, tmp_path: Path, extension: str) -> None:
    """Six frames of the clip: 0.5 s, so its one second of audio is cut to 0.5 s (AAC is copied into .mp4 and .mkv,
    re-encoded as Opus for .webm)."""
    out = tmp_path / f"out{extension}"
    frames = square_frames(6)
    with VideoWriter(out, WIDTH, HEIGHT, RATE, audio_from=clip) as writer:
        for frame in frames:
            writer.write(frame)
    info = probe_video(out)
    assert (info.width, info.height, info.frames, info.rate, info.audio) == (WIDTH, HEIGHT, 6, RATE, True)
    assert info.codec == {".mp4": "h264", ".webm": "vp9", ".mkv": "h264"}[extension]
    if extension != ".webm":  # Opus: its encoder pads the start
        assert audio_seconds(out) == pytest.approx(0.5, abs=0.05)  # whole AAC packets of 23 ms
    assert np.abs(next(read_frames(out)) - frames[0]).mean() < 3.0
    assert not list(tmp_path.glob(".tmp-*"))


def test_writer_is_atomic_and_odd_sizes_work(tmp_path: Path) -> None:
    out = tmp_path / "odd.mp4"
    out.write_bytes(b"old")
    with pytest.raises(RuntimeError), VideoWriter(out, 7, 5, 25) as writer:
        writer.write(np.full((5, 7, 3), 100.0))
        raise RuntimeError("stopped")
    assert out.read_bytes() == b"old" and not list(tmp_path.glob(".tmp-*"))
    with VideoWriter(out, 7, 5, 25) as writer:  # 4:4:4 chroma: odd sides are kept
        writer.write(np.full((5, 7, 3), 100.0))
    info = probe_video(out)
    assert (info.width, info.height, info.frames, info.rate) == (7, 5, 1, 25)


def _empty_video(path: Path) -> None:
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        container.start_encoding()  # the header, with its video stream, and no frame


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        silence = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), "fltp", "mono")
        silence.sample_rate, silence.pts = 8000, 0
        container.mux(stream.encode(silence))
        container.mux(stream.encode(None))


def _corrupt(clip: Path, path: Path) -> None:
    data = bytearray(clip.read_bytes())
    start = data.find(b"mdat") + 200
    data[start : start + 1500] = bytes((7 * b + 13) % 256 for b in data[start : start + 1500])
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda clip, p: p.write_text("not a video"), "is not a video FFmpeg can read"),
        (lambda clip, p: _empty_video(p), "has no frames"),
        (_corrupt, "is corrupt"),
        (lambda clip, p: _audio_only(p), "has no video stream"),
        (lambda clip, p: None, "does not exist"),
    ],
    ids=["text", "no-frames", "corrupt", "audio-only", "missing"],
)
def test_bad_videos_are_one_line(clip: Path, tmp_path: Path, make, words: str) -> None:
    path = tmp_path / "bad.mp4"
    make(clip, path)
    with pytest.raises(NeuralStyleError) as info:
        probe_video(path, what="--content video")
    message = str(info.value)
    assert message.startswith(f"--content video {path}") and words in message and "\n" not in message


def test_an_output_needs_a_video_extension() -> None:
    assert check_video_output("a.mp4") == ("mp4", "libx264")
    assert check_video_output("a.webm") == ("webm", "libvpx-vp9")
    with pytest.raises(NeuralStyleError, match=r"--output a\.gif: no video codec for '\.gif'; use \.mp4"):
        check_video_output("a.gif")


@pytest.fixture(scope="module")
def decoded(clip: Path) -> list[np.ndarray]:
    return list(read_frames(clip))


# ------------------------------------------------------------------------------------------------ the commands


def test_without_the_extra_a_video_is_one_line_naming_it(monkeypatch: pytest.MonkeyPatch, clip: Path) -> None:
    monkeypatch.setitem(__import__("sys").modules, "av", None)  # import av raises ImportError
    with pytest.raises(
        NeuralStyleError, match=r'is a video, which needs the video extra: pip install "neural_style\[video\]"'
    ):
        probe_video(clip, what="--content video")
    monkeypatch.setitem(__import__("sys").modules, "cv2", None)
    with pytest.raises(NeuralStyleError, match=r"optical flow needs OpenCV"):
        flow.warp(np.zeros((2, 2, 3)), np.zeros((2, 2, 2)))


@pytest.mark.slow
def test_apply_stylizes_every_frame_and_keeps_rate_size_and_audio(
    clip: Path, decoded: list[np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from neural_style.cli import apply as apply_cli
    from neural_style.transformer import apply_transformer, save_transformer

    model = randomized(tiny_transformer())
    save_transformer(model, tmp_path / "m.keras")
    out = tmp_path / "out.mp4"
    argv = ["neural-style-apply", f"--model={tmp_path / 'm.keras'}", f"--content={clip}", f"--output={out}"]
    apply_cli.main([*argv, "--batch_size=5"])  # batches of 5, 5 and 2
    info = probe_video(out)
    assert (info.width, info.height, info.frames, info.rate, info.audio) == (WIDTH, HEIGHT, FRAMES, RATE, True)
    printed = capsys.readouterr().out
    assert "Frame    10/12" in printed and "Frame    12/12" in printed and f"Wrote {out}" in printed
    expected = apply_transformer(model, np.stack(decoded[:2]))
    got = list(read_frames(out))
    luma = np.float32([0.299, 0.587, 0.114])  # 4:2:0 video keeps luma at full resolution, colour at half
    assert np.abs((got[1] - np.clip(expected[1], 0, 255)) @ luma).mean() < 4.0
    with pytest.raises(SystemExit) as exit_info:
        apply_cli.main([*argv[:-1], f"--output={tmp_path / 'out.gif'}"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == (
        f"neural-style-apply: error: --output {tmp_path / 'out.gif'}: no video codec for '.gif'; use .mp4 (H.264), "
        ".webm (VP9) or .mkv\n"
    )


@pytest.mark.parametrize("ext", ["mkv", "webm"])
def test_a_video_cut_short_is_refused_by_its_duration(tmp_path: Path, ext: str) -> None:
    """Matroska and WebM state no frame count, only a duration: 8 frames at 8 frames/s last 1 s. Cut to 85% of its
    bytes, the file used to be read as a shorter video without a word."""
    whole, cut = tmp_path / f"whole.{ext}", tmp_path / f"cut.{ext}"
    with VideoWriter(whole, 32, 24, 8) as writer:
        for i in range(8):
            writer.write(np.full((24, 32, 3), i * 30, np.float32))
    assert probe_video(whole).frames == 8
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) * 85 // 100])
    with pytest.raises(NeuralStyleError, match=rf"^video {cut} is cut short: \d of the 8 frames its duration promises"):
        probe_video(cut)
