"""Tests of the ``neural-style-classify`` command (neural_style.cli.classify), in subprocesses on conftest's
planted network: five lines per image equal to the library's answer, and bad input refused before TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import BLUE_CLASS, N_CLASSES, RED_CLASS, uniform_colour, write_vgg_mat
from PIL import Image

_RUNNER = (
    "import atexit, os, sys\n"
    "atexit.register(lambda: open(os.environ['IMPORTS_MARKER'], 'w').write(str('tensorflow' in sys.modules)))\n"
    "from neural_style.cli.classify import main\n"
    "sys.argv[0] = 'neural-style-classify'\n"
    "main()\n"
)


def _classify(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    """Runs the command; returns its result and whether it imported TensorFlow."""
    for name in ("home", "cache", "tmp"):
        (tmp_path / name).mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("NEURAL_STYLE_WEIGHTS", "KERAS_HOME", "XDG_CACHE_HOME")}
    marker = tmp_path / "imports.txt"
    env.update(
        HOME=str(tmp_path / "home"),
        NEURAL_STYLE_CACHE=str(tmp_path / "cache"),
        TMPDIR=str(tmp_path / "tmp"),
        IMPORTS_MARKER=str(marker),
    )
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    return result, marker.read_text() == "True"


@pytest.mark.slow
def test_command_prints_five_lines_per_image(planted, tmp_path):
    """IMAGE<TAB>RANK<TAB>PROBABILITY<TAB>DESCRIPTION, five per image, in order, equal to the library's answer."""
    mat, weights, classifier = planted
    red, blue = tmp_path / "red.png", tmp_path / "blue image.jpg"
    Image.fromarray(uniform_colour((255, 0, 0), 120, 160).astype(np.uint8)).save(red)
    Image.fromarray(uniform_colour((0, 0, 255), 90, 60).astype(np.uint8)).save(blue, quality=100)
    result, imported_tf = _classify(tmp_path, f"--network={mat.path}", str(red), str(blue))
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "a successful run is silent on stderr"
    lines = result.stdout.splitlines()
    assert len(lines) == 10
    rows = [line.split("\t") for line in lines]
    assert all(len(row) == 4 for row in rows)
    assert [row[0] for row in rows] == [str(red)] * 5 + [str(blue)] * 5
    assert [int(row[1]) for row in rows] == [1, 2, 3, 4, 5] * 2
    assert rows[0][3] == f"class {RED_CLASS} description"
    assert rows[5][3] == f"class {BLUE_CLASS} description"
    for path, block in ((red, rows[:5]), (blue, rows[5:])):
        expected = classifier.top_k(np.asarray(Image.open(path).convert("RGB"), np.float32))
        assert [row[3] for row in block] == [name for name, _ in expected]
        np.testing.assert_allclose([float(row[2]) for row in block], [p for _, p in expected], atol=2e-6)
    assert imported_tf


@pytest.mark.slow
def test_command_rejects_bad_input_before_importing_tensorflow(planted, tmp_path):
    mat, _, _ = planted
    no_classifier = write_vgg_mat(tmp_path / "small.mat").path  # fc6 2x2: does not fit 224
    image = tmp_path / "red.png"
    Image.fromarray(uniform_colour((255, 0, 0), 8, 8).astype(np.uint8)).save(image)
    cases = [
        ([f"--network={mat.path}"], "give one or more image files"),
        ([f"--network={mat.path}", str(tmp_path / "missing.png")], "missing.png does not exist"),
        ([f"--network={no_classifier}", str(image)], "fc6 has a 2x2 kernel"),
        ([f"--network={mat.path}", "--top_k=0", str(image)], "--top_k is 0"),
        ([f"--network={mat.path}", f"--top_k={N_CLASSES + 1}", str(image)], f"has only {N_CLASSES} classes"),
        ([f"--network={tmp_path / 'none.mat'}", str(image)], "none.mat does not exist"),
        (["--bogus", str(image)], "Unknown command line flag 'bogus'"),
    ]
    for args, message in cases:
        result, imported_tf = _classify(tmp_path, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stdout == ""
        assert result.stderr.startswith("neural-style-classify: error: ") and message in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert not imported_tf, args


@pytest.mark.slow
def test_help_lists_only_the_classify_flags(tmp_path):
    result, imported_tf = _classify(tmp_path, "--help")
    assert result.returncode == 0
    assert "--top_k" in result.stdout and "--network" in result.stdout
    assert "--output_dir" not in result.stdout and "--content" not in result.stdout
    assert not imported_tf
