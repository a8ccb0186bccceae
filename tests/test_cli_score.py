"""Tests of the ``neural-style-score`` command (neural_style.cli.score), run in process on conftest's tiny workspace:
the printed and JSON numbers are the library's, with the content and styles sized as neural-style sizes them. Bad
command lines are in test_corpus.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import CONTENT_SIZE, make_workspace
from PIL import Image

from neural_style.cli import score as score_cli
from neural_style.config import TERMS, StyleConfig
from neural_style.image_io import read_image, resize, resize_styles
from neural_style.matconvnet import load_vgg
from neural_style.scoring import score_images


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory):
    """The tiny workspace, with two images to score: 24x20 (the content's size) and 12x10, as PNG files."""
    ws = make_workspace(tmp_path_factory.mktemp("score"))
    rng = np.random.default_rng(0)
    width, height = CONTENT_SIZE
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(ws.work / "full.png")
    Image.fromarray(rng.integers(0, 256, (height // 2, width // 2, 3), dtype=np.uint8)).save(ws.work / "half.png")
    return ws


def _run(ws, monkeypatch, capsys, *args: str) -> list[str]:
    monkeypatch.setenv("NEURAL_STYLE_CACHE", str(ws.root / "cache"))
    score_cli.main(["neural-style-score", f"--network={ws.network}", f"--content={ws.content}", *args])
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out.splitlines()


def _expected(ws, image: Path, config: StyleConfig, scales=None) -> dict[str, float]:
    """The library's score of ``image``: the content resized to its size, the style as neural-style sizes it."""
    picture = read_image(image)
    height, width = picture.shape[:2]
    content = resize(read_image(ws.content), (height, width))
    styles = resize_styles([read_image(ws.style)], scales, width)
    scores = score_images(load_vgg(ws.network), content, styles, picture, config)
    return {key: float(scores[key][0]) for key in TERMS}


def test_prints_one_line_per_image_equal_to_the_library(ws, monkeypatch, capsys):
    """Two sizes in one call, non-default settings: each line is IMAGE, WxH and the four terms (%.6g) of the
    library's score at that size; the JSON holds the same numbers unrounded."""
    settings = ["--style_weight=100", "--tv_weight=2", "--pooling=avg", "--content_weight_blend=0.5"]
    report = ws.work / "scores.json"
    full, half = ws.work / "full.png", ws.work / "half.png"
    lines = _run(ws, monkeypatch, capsys, f"--styles={ws.style}", *settings, str(full), str(half), f"--json={report}")
    assert lines[-1] == f"Wrote {report}"
    config = StyleConfig(style_weight=100, tv_weight=2, pooling="avg", content_weight_blend=0.5)
    written = json.loads(report.read_text())
    assert written["settings"]["pooling"] == "avg" and written["settings"]["style_weight"] == 100
    assert written["styles"] == [str(ws.style)] and written["network"] == str(ws.network)
    for line, row, path, size in zip(lines[:2], written["images"], (full, half), ("24x20", "12x10"), strict=True):
        expected = _expected(ws, path, config)
        fields = line.split("\t")
        assert fields[:2] == [str(path), size]
        assert [field.split(" ")[0] for field in fields[2:]] == list(TERMS)
        printed = {key: float(field.split(" ")[1]) for key, field in zip(TERMS, fields[2:], strict=True)}
        for key in TERMS:
            assert printed[key] == pytest.approx(expected[key], rel=5e-6), key
            assert row[key] == expected[key], key  # the JSON keeps float32's value
        assert row["image"] == str(path) and f"{row['width']}x{row['height']}" == size
    assert len(lines) == 3


def test_style_scales_and_two_styles_size_the_styles_as_neural_style(ws, monkeypatch, capsys):
    """--style_scales 0.5 halves the style against the image's width; two styles blend with --style_blend_weights."""
    half = ws.work / "half.png"
    styles = f"--styles={ws.style},{ws.style}"
    lines = _run(ws, monkeypatch, capsys, styles, "--style_scales=0.5,1", "--style_blend_weights=1,0", str(half))
    expected = _expected(ws, half, StyleConfig(), scales=(0.5,))
    total = float(lines[0].split("\t")[-1].split(" ")[1])
    assert total == pytest.approx(expected["total"], rel=5e-6)
    unscaled = _expected(ws, half, StyleConfig())
    assert unscaled["style"] != pytest.approx(expected["style"], rel=1e-3)  # the scale matters


def test_help_lists_the_score_flags_only(capsys):
    """neural-style's settings flags, --width with its own meaning, --json; none of a run's (--iterations, ...)."""
    with pytest.raises(SystemExit) as info:
        score_cli.main(["neural-style-score", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for name in ("--content", "--styles", "--network", "--tv_weight", "--style_scales", "--precision", "--json"):
        assert name in text, name
    assert "every IMAGE must be this many pixels wide" in text
    for name in ("--iterations", "--output", "--learning_rate", "--initial"):
        assert name not in text, name


def test_float16_is_for_gpus_as_in_neural_style(ws, monkeypatch, capsys):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible: float16 is allowed")
    with pytest.raises(SystemExit) as info:
        _run(ws, monkeypatch, capsys, f"--styles={ws.style}", "--precision=float16", str(ws.content))
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "neural-style-score: error: --precision float16 is for GPUs (none is visible); score with float32 or bfloat16"
    ]


@pytest.mark.parametrize("colors", ["luminance", "histogram"])
def test_a_run_scored_under_its_own_settings_gives_its_saved_image_loss(tmp_path, monkeypatch, capsys, colors):
    """Colour control and regions change the loss: scored with the run's own --preserve_colors, --content_masks
    and --style_masks, the saved file's total is the 'saved image' total the run printed."""
    from neural_style.cli import stylize as stylize_cli

    ws = make_workspace(tmp_path)
    monkeypatch.chdir(ws.work)
    width, height = CONTENT_SIZE
    left = np.zeros((height, width), np.uint8)
    left[:, : width // 2] = 255
    Image.fromarray(left).save(ws.work / "left.png")
    Image.fromarray(255 - left).save(ws.work / "right.png")
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(ws.work / "whole.png")
    settings = [
        f"--styles={ws.style},{ws.style}",
        f"--preserve_colors={colors}",
        "--content_masks=left.png,right.png",
        "--style_masks=whole.png,whole.png",
        "--style_weight=50",
    ]
    stylize_cli.main(
        [
            "neural-style",
            f"--content={ws.content}",
            f"--network={ws.network}",
            f"--output={ws.output}",
            "--iterations=3",
        ]
        + settings
    )
    out = capsys.readouterr().out
    saved = [line for line in out.splitlines() if line.strip().startswith("saved image:")]
    assert len(saved) == 1, out
    run_total = float(saved[0].split("total loss ")[1].split(" ")[0])
    lines = _run(ws, monkeypatch, capsys, *settings, str(ws.output))
    scored = float(lines[0].split("\t")[-1].split(" ")[1])
    assert scored == pytest.approx(run_total, rel=1e-5)
    plain = _run(ws, monkeypatch, capsys, f"--styles={ws.style},{ws.style}", "--style_weight=50", str(ws.output))
    assert float(plain[0].split("\t")[-1].split(" ")[1]) != pytest.approx(run_total, rel=1e-3)  # the settings matter
