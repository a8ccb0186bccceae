"""Tests of video reading and writing (neural_style.video), optical flow (neural_style.flow), the temporal term
(neural_style.temporal) and both commands on a video (neural-style-apply, neural-style).

The clip is made here with PyAV: a red square moving 2 px a frame across a still colour gradient with a faint
ripple (DIS flow, like any patch-based flow, cannot tell a shifted linear ramp from a brighter one, so a background
with no texture at all gets the square's motion smeared over it), twelve 64x48 frames at 12 frames/s, with a
second of audio. Everything is skipped when the video extra (av, opencv-python-headless) is absent.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

av = pytest.importorskip("av")
pytest.importorskip("cv2")

from conftest import CHANNELS, he_scaled, randomized, style_array, tiny_transformer, write_vgg_mat  # noqa: E402

from neural_style import flow  # noqa: E402
from neural_style.errors import NeuralStyleError  # noqa: E402
from neural_style.video import VideoWriter, check_video_output, probe_video, read_frames  # noqa: E402

HEIGHT, WIDTH, FRAMES, RATE = 48, 64, 12, Fraction(12)
SQUARE, TOP, LEFT, STEP = 12, 16, 8, 2  # side, top row, first left column and motion (px / frame) of the square
RED = (230.0, 40.0, 40.0)


def background() -> np.ndarray:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    ramp = np.stack([60 + 2 * x, 80 + 2 * y, 150 - x - y], axis=-1)
    return np.clip(ramp + (20 * np.sin(0.7 * x) * np.sin(0.6 * y))[..., None], 0, 255)


def square_frames(count: int = FRAMES) -> list[np.ndarray]:
    """[H, W, 3] float32 frames with whole values: the square at column LEFT + STEP t in frame t."""
    frames = []
    for t in range(count):
        frame = np.rint(background())
        left = LEFT + STEP * t
        frame[TOP : TOP + SQUARE, left : left + SQUARE] = RED
        frames.append(frame)
    return frames


def write_clip(path: Path, frames: list[np.ndarray], *, audio_seconds: float = 1.0) -> Path:
    """The frames as H.264 at RATE with a 440 Hz AAC tone, written with PyAV directly."""
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=RATE)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"crf": "10"}
        audio = container.add_stream("aac", rate=44100)
        for t, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image.astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = t, 1 / RATE
            container.mux(video.encode(frame))
        container.mux(video.encode(None))
        samples = int(44100 * audio_seconds)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 44100)).astype(np.float32)[None]
        for start in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start : start + 1024]), "fltp", "mono")
            chunk.sample_rate, chunk.pts = 44100, start
            container.mux(audio.encode(chunk))
        container.mux(audio.encode(None))
    return path


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


# ------------------------------------------------------------------------------------------------ flow


def test_warp_by_a_hand_made_flow() -> None:
    """A flow of +1 in x samples one pixel to the right; at the right edge the edge pixel is repeated."""
    image = np.arange(12, dtype=np.float32).reshape(3, 4, 1).repeat(3, axis=2)
    shifted = flow.warp(image, np.tile(np.float32([1.0, 0.0]), (3, 4, 1)))
    assert shifted[..., 0].tolist() == [[1, 2, 3, 3], [5, 6, 7, 7], [9, 10, 11, 11]]
    half = flow.warp(image, np.tile(np.float32([0.0, 0.5]), (3, 4, 1)))  # bilinear between rows
    assert half[0, :, 0].tolist() == [2, 3, 4, 5]


def test_consistency_mask_of_hand_made_flows() -> None:
    """A 2-px square moving right by 2 on a still background: backward flow -2 on the square's new place, forward
    +2 on its old one. The background it uncovered (columns 2-3) leads back onto the square, whose forward flow
    does not come back: |w + b|^2 = 4 > 0.01 (4 + 0) + 0.5. Elsewhere the round trip is exact."""
    forward = np.zeros((6, 8, 2), np.float32)
    forward[2:4, 2:4, 0] = 2.0
    backward = np.zeros((6, 8, 2), np.float32)
    backward[2:4, 4:6, 0] = -2.0
    mask = flow.consistency_mask(forward, backward)
    assert mask[2:4, 2:4].sum() == 0  # uncovered
    assert mask[0].all() and mask[5].all() and mask[:, 0].all() and mask[:, 7].all()  # still, away from the motion
    assert mask[2:4, 4:6].sum() == 0  # and the flow's sharp edge is a motion boundary (|grad b|^2 = 1 > 0.01 4)


@pytest.fixture(scope="module")
def decoded(clip: Path) -> list[np.ndarray]:
    return list(read_frames(clip))


def test_flow_warps_each_frame_onto_the_next_and_masks_the_trailing_edge(decoded: list[np.ndarray]) -> None:
    for t in (0, 4, 9):
        before, after = decoded[t], decoded[t + 1]
        warped, mask = flow.temporal_guide(before, after, before)
        trusted = mask > 0
        error = np.abs(warped - after).mean(axis=-1)
        assert error[trusted].mean() < 0.5  # levels of 255
        assert error[trusted].max() <= flow.PHOTOMETRIC_TOLERANCE
        assert trusted[TOP + SQUARE + 4 :].mean() > 0.95  # the still background below the square
        left = LEFT + STEP * (t + 1)  # the square's left column in frame t + 1: it uncovered the two before it
        assert not trusted[TOP : TOP + SQUARE, left - STEP : left].any()
        assert trusted[TOP + 2 : TOP + SQUARE - 2, left + 3 : left + SQUARE - 3].all()  # the square's inside


# ------------------------------------------------------------------------------------------------ the temporal term


def test_temporal_loss_by_hand() -> None:
    from neural_style.losses import temporal_loss

    images = np.zeros((2, 1, 2, 3), np.float32)
    images[1] = 3.0
    warped = np.ones((1, 1, 2, 3), np.float32)
    mask = np.float32([1.0, 0.0]).reshape(1, 1, 2, 1)
    # image 0: (0 - 1)^2 on the 3 values of the trusted pixel, over 6 values; image 1: (3 - 1)^2 x 3 / 6
    assert np.asarray(temporal_loss(images, warped, mask)).tolist() == [0.5, 2.0]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory: pytest.TempPathFactory):
    from neural_style.matconvnet import load_vgg

    path = tmp_path_factory.mktemp("vgg") / "vgg.mat"
    write_vgg_mat(path, channels=CHANNELS, tamper=he_scaled)
    return load_vgg(path)


def _results(weights, frames, config, **options) -> list[np.ndarray]:
    from neural_style.temporal import stylize_frames

    results = [
        r.image
        for _, r in stylize_frames(weights, frames, [style_array().astype(np.float32)], config, **options)
        if r.final
    ]
    return [np.clip(np.rint(image), 0, 255) for image in results]


@dataclasses.dataclass
class FrameRuns:
    weights: object
    config: object
    frames: list[np.ndarray]
    independent: list[np.ndarray]
    consistent: list[np.ndarray]


# The tiny network's content and style terms are about 1e7 on these frames, far more per pixel than VGG-19's, so the
# temporal term gets a weight that gives it a share of the loss like the default's with VGG-19.
TINY_TEMPORAL_WEIGHT = 1e5


@pytest.fixture(scope="module")
def frame_runs(tiny_weights) -> FrameRuns:
    """Three frames of the square optimised as independent runs and with the temporal term, same seed and
    iterations."""
    from neural_style.config import StyleConfig

    frames = square_frames(3)
    config = StyleConfig(iterations=20, seed=0, tv_weight=1.0)
    independent = _results(tiny_weights, frames, config, temporal_weight=0.0)
    consistent = _results(tiny_weights, frames, config, temporal_weight=TINY_TEMPORAL_WEIGHT, frame_iterations=20)
    return FrameRuns(tiny_weights, config, frames, independent, consistent)


def test_the_temporal_term_halves_the_flicker_on_the_still_background(frame_runs: FrameRuns) -> None:
    """Mean absolute change between consecutive results below the square."""
    still = (slice(TOP + SQUARE + 4, None), slice(None))

    def flicker(results: list[np.ndarray]) -> float:
        return float(np.mean([np.abs(b[still] - a[still]).mean() for a, b in zip(results, results[1:], strict=False)]))

    independent, consistent = flicker(frame_runs.independent), flicker(frame_runs.consistent)
    print(f"flicker: {consistent:.2f} with the temporal term, {independent:.2f} without")
    assert consistent <= 0.5 * independent, (consistent, independent)


def test_a_run_resumed_at_a_frame_gives_the_same_frames(frame_runs: FrameRuns) -> None:
    whole, frames = frame_runs.consistent, frame_runs.frames
    rest = _results(
        frame_runs.weights,
        frames[2:],
        frame_runs.config,
        temporal_weight=TINY_TEMPORAL_WEIGHT,
        frame_iterations=20,
        first=2,
        previous=(frames[1], whole[1]),
    )
    assert len(rest) == 1 and np.array_equal(rest[0], whole[2])


def _frame_records(weights, frames, config, **options) -> dict[int, list]:
    from neural_style.temporal import stylize_frames

    records: dict[int, list] = {}
    for index, record in stylize_frames(weights, frames, [style_array().astype(np.float32)], config, **options):
        records.setdefault(index, []).append(record)
    return records


def test_every_frame_is_a_run_with_every_setting(frame_runs: FrameRuns, monkeypatch: pytest.MonkeyPatch) -> None:
    """The frames after the first honour the run's settings as the first does: a stop_at_loss every saved image
    reaches ends each frame after its first iteration, and each frame's result is its best image judged as saved,
    with that image's losses. One run serves all the later frames (two runs are built for four frames)."""
    from neural_style import stylization

    built = []
    original = stylization.Stylization.__init__

    def counting(self, *args, **kwargs):
        built.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(stylization.Stylization, "__init__", counting)
    config = dataclasses.replace(frame_runs.config, stop_at_loss=1e30, average_decay=0.9)
    records = _frame_records(
        frame_runs.weights, square_frames(4), config, temporal_weight=TINY_TEMPORAL_WEIGHT, frame_iterations=20
    )
    assert len(built) == 2
    for index in range(4):
        final = records[index][-1]
        assert final.final and final.iteration == 1, (index, final.iteration)
        assert final.image_losses is not None and final.images is not None
        assert np.array_equal(final.image, np.rint(final.image))
        assert set(final.image_losses) >= {"content", "style", "tv", "total"}


def test_tiles_with_the_temporal_term_are_refused_before_work(frame_runs: FrameRuns) -> None:
    config = dataclasses.replace(frame_runs.config, tile_size=32)
    with pytest.raises(NeuralStyleError, match="tile_size.*video frames are optimised whole"):
        _frame_records(frame_runs.weights, square_frames(2), config, temporal_weight=1.0)


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


@pytest.fixture
def video_ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 3-frame clip, a style image and the tiny network in ``tmp_path``, which is the working directory."""
    write_clip(tmp_path / "clip.mkv", square_frames(3), audio_seconds=0.3)
    from PIL import Image

    Image.fromarray(style_array()).save(tmp_path / "style.png")
    write_vgg_mat(tmp_path / "vgg.mat", channels=CHANNELS, tamper=he_scaled)
    monkeypatch.setenv("NEURAL_STYLE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


VIDEO_RUN = [
    "neural-style",
    "--content=clip.mkv",
    "--styles=style.png",
    "--network=vgg.mat",
    "--iterations=6",
    "--frame_iterations=3",
    "--tv_weight=1",
    "--seed=0",
]


def _neural_style(*argv: str) -> int:
    from neural_style.cli import stylize as stylize_cli

    try:
        stylize_cli.main(list(argv))
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_neural_style_on_a_video_interrupted_and_resumed_gives_the_uninterrupted_frames(
    video_ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from neural_style.cli import video as video_cli

    assert _neural_style(*VIDEO_RUN, "--output=whole.mp4") == 0
    info = probe_video(video_ws / "whole.mp4")
    assert (info.width, info.height, info.frames, info.rate, info.audio) == (WIDTH, HEIGHT, 3, RATE, True)
    assert not (video_ws / "whole.mp4.state").exists()
    assert "Frame    3/3: total loss" in capsys.readouterr().out

    line = video_cli._frame_line

    def interrupt_after_the_first(index: int, *args: object) -> None:
        line(index, *args)  # type: ignore[arg-type]
        if index == 0:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while frame 1 is written: stop before frame 2

    monkeypatch.setattr(video_cli, "_frame_line", interrupt_after_the_first)
    assert _neural_style(*VIDEO_RUN, "--output=cut.mp4") == 130
    monkeypatch.setattr(video_cli, "_frame_line", line)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        "neural-style: interrupted after frame 1/3: wrote the 1 frame done to"
    ), err
    assert probe_video(video_ws / "cut.mp4").frames == 1
    assert _neural_style(*VIDEO_RUN, "--output=cut.mp4") == 2  # a saved state is neither resumed nor discarded
    assert "--resume" in capsys.readouterr().err
    assert _neural_style(*VIDEO_RUN, "--output=cut.mp4", "--resume") == 0
    assert "Resumed at frame 2/3" in capsys.readouterr().out
    resumed, whole = list(read_frames(video_ws / "cut.mp4")), list(read_frames(video_ws / "whole.mp4"))
    assert len(resumed) == 3 and all(np.array_equal(a, b) for a, b in zip(resumed, whole, strict=True))


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--styles=clip.mkv", "--output=o.mp4"], "--styles clip.mkv is a video; style images are still images"),
        (["--output=o.png"], "--output o.png: no video codec for '.png'"),
        (["--output=o.mp4", "--scales=2"], "--scales is for images; it does not work with a video --content"),
        (["--output=o.mp4", "--temporal_weight=-1"], "--temporal_weight is -1.0; it must be 0 or more"),
        (["--output=o.mp4", "--frame_iterations=0"], "--frame_iterations is 0; it must be at least 1"),
        (["--content=style.png", "--output=o.png"], "--frame_iterations is for a video --content"),
        (["--content=vgg.mat", "--output=o.mp4"], None),  # not a video by its name: an image that is not one
    ],
    ids=["video-style", "image-output", "scales", "negative-weight", "zero-iterations", "image-content", "mat"],
)
def test_neural_style_bad_video_input_is_one_line(
    video_ws: Path, capsys: pytest.CaptureFixture[str], extra: list[str], words: str | None
) -> None:
    assert _neural_style(*VIDEO_RUN, *extra) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("neural-style: error: "), err
    assert words is None or words in err[0], err
    assert sorted(p.name for p in video_ws.iterdir()) == ["clip.mkv", "style.png", "vgg.mat"]


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
