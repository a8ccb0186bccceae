"""Tests of neural-style on a video --content (neural_style.cli.video): the checks before work, the frames written
as a video with the content's rate and audio, Ctrl-C and --resume.

The runs are in process (the command's ``main``) on conftest's clip (three frames of a red square moving 2 px a frame
across a still background, 64x48 at 12 frames/s) and tiny network. Skipped without the video extra.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")

from conftest import (  # noqa: E402
    CHANNELS,
    CLIP_HEIGHT,
    CLIP_RATE,
    CLIP_WIDTH,
    he_scaled,
    square_frames,
    style_array,
    stylize_flags,
    write_clip,
    write_vgg_mat,
)

from neural_style.cli import video as video_cli  # noqa: E402
from neural_style.errors import NeuralStyleError  # noqa: E402
from neural_style.video import probe_video, read_frames  # noqa: E402

HEIGHT, WIDTH, RATE = CLIP_HEIGHT, CLIP_WIDTH, CLIP_RATE


def test_frame_path_numbers_frames_from_0_in_six_digits() -> None:
    assert video_cli.frame_path("out.mp4.state", 12) == os.path.join("out.mp4.state", "frames", "frame_000012.png")


def test_a_video_content_is_known_by_its_extension(tmp_path: Path) -> None:
    assert video_cli.is_video_run(stylize_flags("--content=a.mp4"))
    assert video_cli.is_video_run(stylize_flags("--content=a.WEBM"))
    assert not video_cli.is_video_run(stylize_flags("--content=a.png"))
    (tmp_path / "frames.mkv").mkdir()  # a folder of images, whatever its name
    assert not video_cli.is_video_run(stylize_flags(f"--content={tmp_path / 'frames.mkv'}"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--content=c.png", "--styles=s.png,s.webm"],
            "--styles s.webm is a video; style images are still images (save one of its frames as PNG)",
        ),
        (["--content=c.png", "--styles=s.png", "--temporal_weight=1"], "--temporal_weight is for a video --content"),
        (["--content=c.png", "--styles=s.png", "--frame_iterations=2"], "--frame_iterations is for a video --content"),
        (
            ["--content=c.mp4", "--styles=s.png", "--tile_size=64"],
            "--tile_size tiles still images; a video's frames are optimised whole (use --width)",
        ),
    ],
    ids=["video-style", "temporal-weight", "frame-iterations", "tiles"],
)
def test_check_styles_refuses(argv: list[str], message: str) -> None:
    with pytest.raises(NeuralStyleError) as info:
        video_cli.check_styles(stylize_flags(*argv))
    assert str(info.value).startswith(message), str(info.value)


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


@pytest.mark.slow
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
        (["--output=o.mp4", "--temporal_offsets=2,5"], "--temporal_offsets is '2,5'; give increasing offsets starting"),
        (["--output=o.mp4", "--temporal_offsets=1,x"], "--temporal_offsets is '1,x'; give whole numbers of frames"),
        (["--output=o.mp4", "--passes=0"], "--passes is 0; it must be at least 1"),
        (["--output=o.mp4", "--frame_learning_rate=2", "--optimizer=lbfgs"], "--frame_learning_rate is Adam's step"),
        (["--output=o.mp4", "--print_iterations=2"], "--print_iterations is for images; it does not work with a video"),
        (["--output=o.mp4", "--content_masks=style.png"], "--content_masks is for images; it does not work with a"),
        (["--output=o.mp4", "--frame_iterations=0"], "--frame_iterations is 0; it must be at least 1"),
        (["--content=style.png", "--output=o.png"], "--frame_iterations is for a video --content"),
        (["--content=vgg.mat", "--output=o.mp4"], None),  # not a video by its name: an image that is not one
    ],
    ids=[
        *("video-style", "image-output", "scales", "negative-weight", "offsets-from-2", "offsets-not-numbers"),
        *("no-passes", "frame-rate-lbfgs", "print-iterations", "masks", "zero-iterations", "image-content", "mat"),
    ],
)
def test_neural_style_bad_video_input_is_one_line(
    video_ws: Path, capsys: pytest.CaptureFixture[str], extra: list[str], words: str | None
) -> None:
    assert _neural_style(*VIDEO_RUN, *extra) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("neural-style: error: "), err
    assert words is None or words in err[0], err
    assert sorted(p.name for p in video_ws.iterdir()) == ["clip.mkv", "style.png", "vgg.mat"]


@pytest.mark.slow
def test_frames_run_half_the_iterations_by_default_at_the_width_asked(
    video_ws: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--iterations 4 without --frame_iterations: 2 for the frames after the first; --width 32 halves the 64x48
    frames; the video has the three frames, the clip's rate and its audio, and no state is left."""
    run = [arg for arg in VIDEO_RUN if not arg.startswith(("--iterations", "--frame_iterations"))]
    assert _neural_style(*run, "--iterations=4", "--width=32", "--output=small.mp4") == 0
    out = capsys.readouterr().out
    assert "Stylizing 3 frames of 32x24 at 12 frames/s with 1 style(s): 4 iterations for the first, 2 for the " in out
    assert [line.split(":")[0] for line in out.splitlines() if line.startswith("Frame")] == [
        "Frame    1/3",
        "Frame    2/3",
        "Frame    3/3",
    ]
    info = probe_video(video_ws / "small.mp4")
    assert (info.width, info.height, info.frames, info.rate, info.audio) == (32, 24, 3, RATE, True)
    assert sorted(p.name for p in video_ws.iterdir() if p.name != "cache") == [
        "clip.mkv",
        "small.mp4",
        "style.png",
        "vgg.mat",
    ]


@pytest.mark.slow
def test_neural_style_resumed_in_a_backward_pass_gives_the_uninterrupted_frames(
    video_ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two passes with long-term offsets, stopped after the first frame of the backward pass: the video written
    then holds every frame's newest result, and the resumed run gives the frames of an uninterrupted one."""
    from neural_style.cli import video as video_cli

    run = [*VIDEO_RUN, "--passes=2", "--temporal_offsets=1,2"]
    assert _neural_style(*run, "--output=whole.mp4") == 0
    printed = capsys.readouterr().out
    assert "Frame    3/3 of pass 1/2: total loss" in printed and "Frame    1/3 of pass 2/2: total loss" in printed
    line = video_cli._frame_line

    def interrupt_in_the_second_pass(index: int, *args: object) -> None:
        line(index, *args)  # type: ignore[arg-type]
        if args[3] == " of pass 2/2":  # the backward pass has made its first frame, the last
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(video_cli, "_frame_line", interrupt_in_the_second_pass)
    assert _neural_style(*run, "--output=cut.mp4") == 130
    monkeypatch.setattr(video_cli, "_frame_line", line)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(
        "neural-style: interrupted after frame 1/3 of pass 2/2: wrote the newest result of all 3 frames to cut.mp4"
    ), err
    state = video_ws / "cut.mp4.state"
    assert sorted(p.name for p in (state / "frames").iterdir()) == [f"frame_00000{i}.png" for i in range(3)]
    assert [p.name for p in (state / "frames_backward").iterdir()] == ["frame_000002.png"]
    assert probe_video(video_ws / "cut.mp4").frames == 3
    assert _neural_style(*run, "--output=cut.mp4", "--resume") == 0
    assert "Resumed at frame 2/3 of pass 2/2" in capsys.readouterr().out
    resumed, whole = list(read_frames(video_ws / "cut.mp4")), list(read_frames(video_ws / "whole.mp4"))
    assert len(resumed) == 3 and all(np.array_equal(a, b) for a, b in zip(resumed, whole, strict=True))
    assert _neural_style(*VIDEO_RUN, "--output=single.mp4") == 0  # one pass gives other frames
    assert not np.array_equal(list(read_frames(video_ws / "single.mp4"))[0], whole[0])
