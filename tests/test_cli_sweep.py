"""Tests of the ``neural-style`` sweep flags (neural_style.cli.sweep): parsing --blends, candidate labels and
output paths, two sweeps through the command and bad sweep flags rejected before TensorFlow is imported.

The command runs in a subprocess in conftest's workspace (inputs, cache and ``$HOME`` in the test's temporary
directory) and costs several seconds per successful run, so there are only two of those. Sweeps in batches against
single runs are tested in test_stylization.py.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import (
    CONTENT_SIZE,
    ERROR_PREFIX,
    IMPORTS_MARKER,
    Workspace,
    assert_ok,
    make_workspace,
    run_in_process,
    run_neural_style,
    snapshot,
    style_array,
    temp_files,
)
from PIL import Image

from neural_style.cli.sweep import candidate_label, candidate_path, parse_blends, sheet_path
from neural_style.config import Candidate, even_blends
from neural_style.errors import NeuralStyleError

# ---------------------------------------------------------------------------------------------------- helpers


def test_parse_blends() -> None:
    """Rows split on ';', weights on ','; spaces are ignored; no normalisation."""
    assert parse_blends("1,0,0; 0.5, 0.5, 0 ;0,0,2", 3) == [(1.0, 0.0, 0.0), (0.5, 0.5, 0.0), (0.0, 0.0, 2.0)]
    assert parse_blends("3", 1) == [(3.0,)]


@pytest.mark.parametrize(
    "text, mention",
    [
        ("1,0;0,1,0", "'1,0' with 2 weights for 3 styles"),
        ("1,0,0,0", "with 4 weights for 3 styles"),
        ("1,0,0;a,b,c", "'a,b,c', which is not comma-separated numbers"),
        ("1,,0", "not comma-separated numbers"),
        ("", "--blends is empty"),
        (" ; ;", "--blends ' ; ;' has an empty entry"),
        ("1,0,0;", "--blends '1,0,0;' has an empty entry; separate blend vectors by single semicolons"),
        (";1,0,0", "empty entry"),
        ("1,0,0;;0,1,0", "empty entry"),
    ],
)
def test_parse_blends_rejects(text: str, mention: str) -> None:
    with pytest.raises(NeuralStyleError, match="--blends") as info:
        parse_blends(text, 3)
    assert mention in str(info.value)


def test_candidate_label() -> None:
    """Blend weights with 3 significant digits joined by '-', style weights as 'sw' + %g, parts joined by '_'."""
    candidate = Candidate.make((1, 3), 500.0)
    assert candidate_label(candidate) == "0.25-0.75"
    assert candidate_label(candidate, blend=False, style_weight=True) == "sw500"
    assert candidate_label(candidate, style_weight=True) == "0.25-0.75_sw500"
    assert candidate_label(Candidate.make((1, 0, 0), 10.0), style_weight=True) == "1-0-0_sw10"
    assert candidate_label(Candidate.make((1, 2), 1e-3)) == "0.333-0.667"
    assert candidate_label(Candidate.make((1,), 2.5e4), blend=False, style_weight=True) == "sw25000"
    assert candidate_label(Candidate.make((1,), 1e6), blend=False, style_weight=True) == "sw1e+06"
    assert [candidate_label(Candidate.make(b, 1.0)) for b in even_blends(3)] == ["1-0", "0.5-0.5", "0-1"]


def test_candidate_and_sheet_paths() -> None:
    assert candidate_path("out.png", "0.25-0.75") == "out_0.25-0.75.png"
    assert candidate_path("dir/out.v2.jpg", "sw500") == "dir/out.v2_sw500.jpg"
    assert candidate_path("out", "1-0") == "out_1-0"
    assert sheet_path("out.png") == "out_sheet.png"
    assert sheet_path("/tmp/a/b.jpeg") == "/tmp/a/b_sheet.jpeg"


# ---------------------------------------------------------------------------------------------------- the CLI


def _sweep_workspace(root: Path, n_styles: int = 2) -> tuple[Workspace, str]:
    """conftest's workspace plus more style images; returns it and the --styles value listing ``n_styles``."""
    ws = make_workspace(root)
    styles = [ws.style]
    for seed in range(1, n_styles):
        path = ws.work / f"style{seed + 1}.png"
        Image.fromarray(style_array(seed=seed)).resize((12 + 4 * seed, 16)).save(path)
        styles.append(path)
    return ws, ",".join(map(str, styles))


def _sweep_args(ws: Workspace, styles: str, *extra: str) -> list[str]:
    args = ws.args(*extra)
    args[1] = f"--styles={styles}"
    return args


def _size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        return image.size


def _sheet_size(n: int, width: int = CONTENT_SIZE[0], height: int = CONTENT_SIZE[1]) -> tuple[int, int]:
    """The contact sheet of n content-sized images with the CLI's 256-pixel tiles (see test_report.py)."""
    margin, caption = 6, 18  # the margins and the caption strip of neural_style.cli.report.contact_sheet
    columns, rows = min(n, 4), -(-n // 4)
    tile_height = round(height * 256 / width)  # 20 * 256 / 24 = 213.3 -> 213
    return columns * (256 + margin) + margin, rows * (tile_height + caption + margin) + margin


@pytest.mark.slow
def test_cli_blend_sweep(tmp_path: Path) -> None:
    """--blend_sweep 3 writes the three blends and a captioned sheet beside --output, but not --output itself."""
    ws, styles = _sweep_workspace(tmp_path)
    result = run_in_process(
        ws, _sweep_args(ws, styles, "--blend_sweep=3", "--iterations=3", "--seed=0", "--print_iterations=3")
    )
    assert_ok(result)
    names = ["out_1-0.png", "out_0.5-0.5.png", "out_0-1.png"]
    assert sorted(p.name for p in ws.work.glob("out*")) == sorted([*names, "out_sheet.png"])
    for name in names:
        assert _size(ws.work / name) == CONTENT_SIZE
    assert _size(ws.work / "out_sheet.png") == _sheet_size(3) == (792, 243)
    pure_first, pure_second = (np.asarray(Image.open(ws.work / n), np.float64) for n in (names[0], names[2]))
    assert np.abs(pure_first - pure_second).mean() > 1, "the two pure styles give different images"
    assert "Sweeping 3 candidates in 1 batch(es)" in result.stdout
    for label in ("1-0", "0.5-0.5", "0-1"):
        assert f"[{label}] content" in result.stdout
    assert temp_files(ws.root) == []


@pytest.mark.slow
def test_cli_blends_and_style_weights_in_chunks(tmp_path: Path) -> None:
    """3 styles x --blends (2) x --sweep_style_weights (2) = 4 candidates, run as chunks of 3 + 1."""
    ws, styles = _sweep_workspace(tmp_path, n_styles=3)
    args = _sweep_args(
        ws, styles, "--blends=1,0,0;0,1,0", "--sweep_style_weights=10,100", "--batch_size=3", "--iterations=2"
    )
    result = run_in_process(ws, args)
    assert_ok(result)
    names = ["out_1-0-0_sw10.png", "out_1-0-0_sw100.png", "out_0-1-0_sw10.png", "out_0-1-0_sw100.png"]
    assert sorted(p.name for p in ws.work.glob("out*")) == sorted([*names, "out_sheet.png"])
    for name in names:
        assert _size(ws.work / name) == CONTENT_SIZE
    assert _size(ws.work / "out_sheet.png") == _sheet_size(4) == (1054, 243)
    assert "Sweeping 4 candidates in 2 batch(es) of up to 3" in result.stdout
    assert "(batch 2/2)" in result.stdout
    assert temp_files(ws.root) == []


@dataclasses.dataclass
class BadSweep:
    """A rejected sweep: its extra flags, the number of styles, the text the error line must contain."""

    flags: list[str]
    mention: str
    n_styles: int = 2
    existing: str | None = None  # a file made before the run, relative to the work directory


BAD_SWEEPS = {
    "blend_sweep_three_styles": BadSweep(["--blend_sweep=3"], "--blend_sweep", n_styles=3),
    "blend_sweep_one": BadSweep(["--blend_sweep=1"], "--blend_sweep"),
    "blend_sweep_and_blends": BadSweep(["--blend_sweep=3", "--blends=1,0;0,1"], "--blends"),
    "blends_count": BadSweep(["--blends=1,0;0.5,0.5,0"], "--blends"),
    "blends_not_numbers": BadSweep(["--blends=1,0;half,half"], "--blends"),
    "blend_weights_in_sweep": BadSweep(["--blend_sweep=3", "--style_blend_weights=1,2"], "--style_blend_weights"),
    "sweep_style_weights_not_numbers": BadSweep(["--sweep_style_weights=1e2,lots"], "--sweep_style_weights"),
    "batch_size_without_sweep": BadSweep(["--batch_size=2"], "--batch_size"),
    "checkpoint_output_in_sweep": BadSweep(
        ["--blend_sweep=2", "--checkpoint_output=ck_{}.png", "--checkpoint_iterations=1"], "--checkpoint_output"
    ),
    "progress_write_in_sweep": BadSweep(["--blend_sweep=2", "--progress_write"], "--progress_write"),
    "candidate_output_exists": BadSweep(["--blend_sweep=3"], "out_0-1.png", existing="out_0-1.png"),
    "sheet_exists": BadSweep(["--sweep_style_weights=1,2"], "out_sheet.png", existing="out_sheet.png"),
    "same_weights_twice": BadSweep(["--sweep_style_weights=10,1e1"], "same weights twice"),
}
# Each names the flag at fault and is caught before TensorFlow is imported.
BAD_SWEEPS.update(
    {
        "batch_size_zero": BadSweep(["--blend_sweep=2", "--batch_size=0"], "--batch_size"),
        "blends_negative": BadSweep(["--blends=1,-1;0,1"], "--blends"),
        "sweep_style_weights_negative": BadSweep(["--sweep_style_weights=-1,2"], "--sweep_style_weights"),
    }
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=name) for name, case in BAD_SWEEPS.items()],
)
def test_bad_sweep_is_one_error_line(tmp_path: Path, import_probe: Path, case: BadSweep) -> None:
    """Bad sweep flags: exit 2, one error line naming the flag (or file), nothing written, no TensorFlow."""
    ws, styles = _sweep_workspace(tmp_path, n_styles=case.n_styles)
    if case.existing:
        Image.new("RGB", (3, 3), "white").save(ws.work / case.existing)
    before = snapshot(ws.root)
    marker = ws.root / IMPORTS_MARKER
    env = ws.env
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(import_probe), env.get("PYTHONPATH")) if p)
    env["NEURAL_STYLE_TEST_IMPORTS"] = str(marker)
    result: subprocess.CompletedProcess[str] = run_neural_style(ws, _sweep_args(ws, styles, *case.flags), env=env)

    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(ERROR_PREFIX), lines[0]
    assert case.mention in lines[0], lines[0]
    assert result.stdout == ""
    assert snapshot(ws.root) == before, "a rejected command must not create or change any file"
    assert marker.read_text() == "", "bad input must be rejected before TensorFlow is imported"
