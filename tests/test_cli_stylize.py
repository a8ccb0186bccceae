"""End-to-end tests of the ``neural-style`` command (neural_style.cli.stylize, run as ``python -m neural_style``).

The command runs in a subprocess on tiny images and a tiny synthetic VGG (conftest's :class:`Workspace`), with its
cache and ``$HOME`` in the test's temporary directory. A successful run costs several seconds (TensorFlow is
imported), so there are only a few: a plain run with checkpoints and progress files, two styles, an initial image,
--preserve_colors, --overwrite, L-BFGS and coarse-to-fine (--scales). Every bad input, bad speed flag and a width
too large for the memory is rejected before TensorFlow is imported and costs a fraction of a second; the memory
check itself (``check_memory``) is also run in process. Resuming is in test_cli_resume.py, sweeps in
test_cli_sweep.py.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import tensorflow as tf
from conftest import (
    CONTENT_SIZE,
    ERROR_PREFIX,
    IMPORT_PROBE,
    IMPORTS_MARKER,
    Workspace,
    assert_ok,
    he_scaled,
    make_workspace,
    run_in_process,
    run_neural_style,
    snapshot,
    style_array,
    stylize_flags,
    temp_files,
    write_vgg_mat,
)
from PIL import Image

from neural_style import memory
from neural_style.cli.options import style_config
from neural_style.cli.plan import Stages, check_memory
from neural_style.cli.saved_run import fingerprint
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import VggWeights, read_matconvnet


def _pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


HAPPY_FLAGS = (
    "--iterations=6",
    "--print_iterations=2",
    "--checkpoint_output=ck_{}.png",
    "--checkpoint_iterations=3",
    "--progress_write",
    "--progress_plot",
    "--seed=0",
    "--tv_weight=1",
    "--width=20",
)


@pytest.fixture(scope="module")
def happy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, subprocess.CompletedProcess[str]]:
    """One full run with checkpoints and progress files, shared by the tests that inspect it."""
    ws = make_workspace(tmp_path_factory.mktemp("happy"))
    return ws, run_neural_style(ws, ws.args(*HAPPY_FLAGS))


# ------------------------------------------------------------------------------------------------ successful runs


@pytest.mark.slow
def test_happy_path(happy: tuple[Workspace, subprocess.CompletedProcess[str]]) -> None:
    """A short run writes the resized output, both checkpoints and a loss table and plot that show progress."""
    ws, result = happy
    assert_ok(result)
    assert "Wrote" in result.stdout

    width = 20
    expected_size = (width, CONTENT_SIZE[1] * width // CONTENT_SIZE[0])  # height floored: 20 * 20 / 24 -> 16
    with Image.open(ws.output) as image:
        assert image.size == expected_size
    assert sorted(p.name for p in ws.work.glob("ck_*.png")) == ["ck_3.png", "ck_6.png"]
    for name in ("ck_3.png", "ck_6.png"):
        with Image.open(ws.work / name) as image:
            assert image.size == expected_size

    progress = ws.work / "progress.txt"
    assert progress.read_text().splitlines()[0] == "# itr content style tv total"
    table = np.loadtxt(progress, ndmin=2)
    assert table.shape == (4, 5)
    np.testing.assert_array_equal(table[:, 0], [0, 2, 4, 6])
    assert np.isfinite(table).all()
    np.testing.assert_allclose(table[:, 4], table[:, 1] + table[:, 2] + table[:, 3], rtol=1e-5)
    assert table[-1, 4] < table[0, 4]

    with Image.open(ws.work / "progress.png") as plot:
        assert plot.format == "PNG"
        plot.verify()
    with Image.open(ws.work / "progress.png") as plot:
        plot.load()
        assert plot.width > 0 and plot.height > 0

    assert temp_files(ws.root) == []
    assert list((ws.root / "cache").glob("*.npz")), "the conv-only cache goes to $NEURAL_STYLE_CACHE"


@pytest.mark.slow
def test_progress_history_starts_before_the_first_iteration_without_print_iterations(ws: Workspace) -> None:
    """Without --print_iterations, progress.txt still has the row before the first iteration and the last one
    (the README's promise); the loss lines are printed once, after the last iteration, as before."""
    result = run_in_process(ws, ws.args("--iterations=3", "--progress_write", "--seed=0"))
    assert_ok(result)
    assert result.stdout.count("total loss:") == 1
    table = np.loadtxt(ws.work / "progress.txt", ndmin=2)
    np.testing.assert_array_equal(table[:, 0], [0, 3])
    np.testing.assert_allclose(table[:, 4], table[:, 1] + table[:, 2] + table[:, 3], rtol=1e-5)


@pytest.mark.slow
def test_same_seed_same_output(happy: tuple[Workspace, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    """Two runs with the same --seed and settings write identical images."""
    first, first_result = happy
    assert_ok(first_result)
    second = make_workspace(tmp_path)
    assert_ok(run_neural_style(second, second.args(*HAPPY_FLAGS)))
    np.testing.assert_array_equal(_pixels(first.output), _pixels(second.output))
    assert first.output.read_bytes() == second.output.read_bytes()


@pytest.mark.slow
def test_two_styles_with_blend_weights_and_scales(ws: Workspace) -> None:
    """Two style images with --style_blend_weights and --style_scales run to the end."""
    other = ws.work / "style2.png"
    Image.fromarray(style_array(seed=1)).resize((12, 20)).save(other)
    args = ws.args("--iterations=2", "--seed=1", "--style_blend_weights=1,3", "--style_scales=1,0.5")
    args[1] = f"--styles={ws.style},{other}"
    assert_ok(run_in_process(ws, args))
    with Image.open(ws.output) as image:
        assert image.size == CONTENT_SIZE


@pytest.mark.slow
def test_initial_image_is_resized(ws: Workspace) -> None:
    """An --initial image of another size is resized to the content's size."""
    initial = ws.work / "initial.jpg"
    Image.fromarray(style_array(seed=2)).resize((30, 12)).save(initial)
    assert_ok(run_in_process(ws, ws.args("--iterations=2", f"--initial={initial}")))
    with Image.open(ws.output) as image:
        assert image.size == CONTENT_SIZE


@pytest.mark.slow
def test_preserve_colors_keeps_content_chroma(ws: Workspace) -> None:
    """With --preserve_colors the output's Cb and Cr are the content's, up to rounding."""
    assert_ok(run_in_process(ws, ws.args("--iterations=3", "--seed=1", "--preserve_colors")))
    with Image.open(ws.output) as out, Image.open(ws.content) as content:
        assert out.size == content.size
        got = np.asarray(out.convert("YCbCr"), dtype=np.float64)
        want = np.asarray(content.convert("YCbCr"), dtype=np.float64)
    chroma_diff = np.abs(got[..., 1:] - want[..., 1:])
    assert chroma_diff.mean() < 3, chroma_diff.mean()


@pytest.mark.slow
def test_overwrite_replaces_existing_output(ws: Workspace) -> None:
    """--overwrite replaces an output that already exists."""
    Image.new("RGB", (5, 5), "black").save(ws.output)
    old = ws.output.read_bytes()
    assert_ok(run_in_process(ws, ws.args("--iterations=1", "--overwrite")))
    assert ws.output.read_bytes() != old
    with Image.open(ws.output) as image:
        assert image.size == CONTENT_SIZE
    assert temp_files(ws.root) == []


# ---------------------------------------------------------------------------------------------------- bad inputs


@dataclasses.dataclass
class BadCase:
    """A rejected command line: its flags, the text the error line must contain, the output to check."""

    args: list[str]
    mention: str
    output: Path


def _bad_content(ws: Workspace, path: Path) -> BadCase:
    args = ws.args()
    args[0] = f"--content={path}"
    return BadCase(args, str(path), ws.output)


def _bad_style(ws: Workspace, path: Path) -> BadCase:
    args = ws.args()
    args[1] = f"--styles={path}"
    return BadCase(args, str(path), ws.output)


def _bad_network(ws: Workspace, path: Path) -> BadCase:
    args = ws.args()
    args[2] = f"--network={path}"
    return BadCase(args, str(path), ws.output)


def _missing_content(ws: Workspace) -> BadCase:
    return _bad_content(ws, ws.work / "nope.png")


def _content_is_directory(ws: Workspace) -> BadCase:
    directory = ws.work / "folder.png"
    directory.mkdir()
    return _bad_content(ws, directory)


def _corrupt_image(ws: Workspace) -> BadCase:
    path = ws.work / "garbage.jpg"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 2000, dtype=np.uint8).tobytes())
    return _bad_content(ws, path)


def _truncated_png(ws: Workspace) -> BadCase:
    data = ws.content.read_bytes()
    path = ws.work / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    return _bad_content(ws, path)


def _zero_byte_image(ws: Workspace) -> BadCase:
    path = ws.work / "empty.png"
    path.write_bytes(b"")
    return _bad_content(ws, path)


def _missing_style(ws: Workspace) -> BadCase:
    return _bad_style(ws, ws.work / "no-style.png")


def _missing_network(ws: Workspace) -> BadCase:
    return _bad_network(ws, ws.work / "no-such-network.mat")


def _network_not_a_mat(ws: Workspace) -> BadCase:
    path = ws.work / "text.mat"
    path.write_text("this is a text file, not a MATLAB file\n" * 20)
    return _bad_network(ws, path)


def _truncated_mat(ws: Workspace) -> BadCase:
    data = ws.network.read_bytes()
    path = ws.work / "half.mat"
    path.write_bytes(data[: len(data) // 2])
    return _bad_network(ws, path)


def _mat_without_layers(ws: Workspace) -> BadCase:
    path = ws.work / "nolayers.mat"
    scipy.io.savemat(path, {"something": np.arange(3.0)})
    return _bad_network(ws, path)


def _blend_weights_count(ws: Workspace) -> BadCase:
    args = ws.args("--style_blend_weights=1,2")
    return BadCase(args, "--style_blend_weights", ws.output)


def _style_scales_count(ws: Workspace) -> BadCase:
    return BadCase(ws.args("--style_scales=1,2"), "--style_scales", ws.output)


def _zero_iterations(ws: Workspace) -> BadCase:
    return BadCase(ws.args("--iterations=0"), "--iterations", ws.output)


def _min_pooling(ws: Workspace) -> BadCase:
    return BadCase(ws.args("--pooling=min"), "--pooling", ws.output)


def _output_exists(ws: Workspace) -> BadCase:
    Image.new("RGB", (3, 3), "white").save(ws.output)
    os.utime(ws.output, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))  # an mtime a rewrite would change
    return BadCase(ws.args(), str(ws.output), ws.output)


def _output_directory_missing(ws: Workspace) -> BadCase:
    output = ws.work / "missing" / "out.png"
    return BadCase(ws.args(output=output), str(output.parent), output)


def _output_directory_not_writable(ws: Workspace) -> BadCase:
    directory = ws.work / "readonly"
    directory.mkdir()
    directory.chmod(0o555)
    output = directory / "out.png"
    return BadCase(ws.args(output=output), str(directory), output)


def _output_extension(ws: Workspace) -> BadCase:
    output = ws.work / "out.xyz"
    return BadCase(ws.args(output=output), str(output), output)


def _checkpoint_without_placeholder(ws: Workspace) -> BadCase:
    args = ws.args("--checkpoint_output=ck.png", "--checkpoint_iterations=1")
    return BadCase(args, "--checkpoint_output", ws.output)


def _checkpoint_without_iterations(ws: Workspace) -> BadCase:
    return BadCase(ws.args("--checkpoint_output=ck_{}.png"), "--checkpoint_output", ws.output)


def _non_numeric_blend_weights(ws: Workspace) -> BadCase:
    return BadCase(ws.args("--style_blend_weights=heavy"), "--style_blend_weights", ws.output)


def _positional_argument(ws: Workspace) -> BadCase:
    return BadCase([*ws.args(), "stray.png"], "stray.png", ws.output)


def _no_content_flag(ws: Workspace) -> BadCase:
    return BadCase(ws.args()[1:], "--content", ws.output)


_IS_ROOT = getattr(os, "geteuid", lambda: -1)() == 0

BAD_CASES: list = [
    _missing_content,
    _content_is_directory,
    _corrupt_image,
    _truncated_png,
    _zero_byte_image,
    _missing_style,
    _missing_network,
    _network_not_a_mat,
    _truncated_mat,
    _mat_without_layers,
    _blend_weights_count,
    _style_scales_count,
    _zero_iterations,
    _min_pooling,
    _output_exists,
    _output_directory_missing,
    pytest.param(
        _output_directory_not_writable,
        marks=pytest.mark.skipif(_IS_ROOT, reason="root can write to any directory"),
        id="output_directory_not_writable",
    ),
    _output_extension,
    _checkpoint_without_placeholder,
    _checkpoint_without_iterations,
    _non_numeric_blend_weights,
    _positional_argument,
    _no_content_flag,
]


@pytest.mark.slow
@pytest.mark.parametrize("make_case", BAD_CASES, ids=lambda f: f.__name__.lstrip("_") if callable(f) else None)
def test_bad_input_is_one_error_line(ws: Workspace, import_probe: Path, make_case) -> None:
    """Bad input: exit 2, one 'neural-style: error:' line naming the culprit, nothing written, no TensorFlow."""
    case = make_case(ws)
    existed = case.output.exists()
    before = snapshot(ws.root)
    marker = ws.root / IMPORTS_MARKER
    env = ws.env
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(import_probe), env.get("PYTHONPATH")) if p)
    env["NEURAL_STYLE_TEST_IMPORTS"] = str(marker)
    try:
        result = run_neural_style(ws, case.args, env=env)
    finally:
        for directory in ws.work.rglob("*"):
            if directory.is_dir():
                directory.chmod(0o755)

    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(ERROR_PREFIX), lines[0]
    assert case.mention in lines[0], lines[0]
    assert result.stdout == ""

    assert case.output.exists() == existed
    assert snapshot(ws.root) == before, "a rejected command must not create or change any file"
    assert marker.read_text() == "", "bad input must be rejected before TensorFlow is imported"


# ---------------------------------------------------------------------------------------------- speed options


@pytest.mark.slow
def test_cli_lbfgs_prints_evaluations(ws: Workspace) -> None:
    result = run_in_process(ws, ws.args("--optimizer=lbfgs", "--iterations=3", "--seed=0", "--tv_weight=1"))
    assert_ok(result)
    counts = [int(n) for n in re.findall(r"^Iteration +\d+/ +3 \[(\d+) evaluations\]", result.stdout, re.MULTILINE)]
    assert len(counts) == 3, result.stdout
    assert all(b > a for a, b in zip(counts, counts[1:], strict=False)) and counts[0] >= 2, counts
    with Image.open(ws.output) as image:
        assert image.size == CONTENT_SIZE


@pytest.mark.slow
def test_cli_scales_writes_the_output_size(ws: Workspace) -> None:
    result = run_in_process(ws, ws.args("--scales=2", "--width=64", "--iterations=3", "--seed=0", "--tv_weight=1"))
    assert_ok(result)
    assert "Coarse to fine: 1 at 32 px, 2 at 64 px" in result.stdout
    assert "(scale 2/2)" in result.stdout
    with Image.open(ws.output) as image:
        assert image.size == (64, CONTENT_SIZE[1] * 64 // CONTENT_SIZE[0])


@pytest.mark.slow
def test_cli_stage_iterations_run_each_stage_its_count(ws: Workspace) -> None:
    """--stage_iterations 3,1: three iterations at 32 px, then one at 64 px; four in all (--iterations left out)."""
    result = run_in_process(ws, ws.args("--scales=2", "--width=64", "--stage_iterations=3,1", "--seed=0"))
    assert_ok(result)
    assert "Coarse to fine: 3 at 32 px, 1 at 64 px" in result.stdout
    stages = re.findall(r"^Iteration +(\d+)/ +(\d+) \(scale (\d)/2\)", result.stdout, re.MULTILINE)
    assert stages == [("1", "4", "1"), ("2", "4", "1"), ("3", "4", "1"), ("4", "4", "2")]
    with Image.open(ws.output) as image:
        assert image.size == (64, CONTENT_SIZE[1] * 64 // CONTENT_SIZE[0])


BAD_FLAGS = {
    "scales_zero": (["--scales=0"], "--scales must be a count or increasing widths"),
    "scales_text": (["--scales=abc"], "--scales must be a count or increasing widths"),
    "scales_decreasing": (["--width=64", "--scales=64,32"], "--scales widths 64,32 must increase"),
    "scales_wrong_end": (["--width=64", "--scales=32,48"], "to the output width 64"),
    "scales_too_many": (["--width=64", "--scales=3"], "--scales 3 makes the first stage 16 px wide"),
    "iterations_per_scale": (["--width=64", "--scales=2", "--iterations=1"], "--iterations 1 cannot be shared"),
    "lbfgs_sweep": (["--optimizer=lbfgs", "--blend_sweep=2"], "--batch_size 1"),
    "float16_on_cpu": (["--precision=float16"], "--precision float16 is for GPUs"),
    "scales_empty": (["--scales="], "--scales must be a count or increasing widths"),
    "scales_superscript": (["--scales=\u00b2"], "--scales must be a count or increasing widths"),
    "average_decay_one": (["--average_decay=1"], "--average_decay is 1.0; it must be in (0, 1)"),
    "average_decay_zero": (["--average_decay=0"], "--average_decay is 0.0; it must be in (0, 1)"),
    "stage_iterations_alone": (["--stage_iterations=2,1"], "--stage_iterations needs --scales"),
    "stage_iterations_count": (
        ["--width=64", "--scales=2", "--stage_iterations=2,1,1"],
        "--stage_iterations has 3 counts for the 2 stages of --scales (32,64 px)",
    ),
    "stage_iterations_zero": (["--width=64", "--scales=2", "--stage_iterations=2,0"], "at least 1, one per stage"),
    "stage_iterations_sum": (
        ["--width=64", "--scales=2", "--stage_iterations=2,1", "--iterations=4"],
        "--iterations is 4 but --stage_iterations add up to 3",
    ),
}
# Stages.plan (neural_style.cli.stylize): min([]) raises ValueError for an empty list; '²'.isdigit() is true but
# int('²') raises ValueError.
BAD_FLAG_CASES = [pytest.param(case, id=case) for case in BAD_FLAGS]


@pytest.mark.slow
@pytest.mark.parametrize("case", BAD_FLAG_CASES)
def test_bad_speed_flags_are_one_error_line(ws: Workspace, import_probe: Path, case: str) -> None:
    """Exit 2 and a last stderr line 'neural-style: error: ...'; before TensorFlow is imported when possible.

    The float16 check needs TensorFlow (is there a GPU?), whose start-up may log lines of its own before ours.
    """
    if case == "float16_on_cpu" and tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is visible")
    extra, mention = BAD_FLAGS[case]
    args = ws.args(*extra)
    if case == "lbfgs_sweep":  # a blend sweep needs two styles
        style2 = ws.work / "style2.png"
        Image.fromarray(style_array(seed=1)).save(style2)
        args[1] = f"--styles={ws.style},{style2}"
    marker = ws.root / IMPORTS_MARKER
    env = ws.env
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(import_probe), env.get("PYTHONPATH")) if p)
    env["NEURAL_STYLE_TEST_IMPORTS"] = str(marker)

    result = run_neural_style(ws, args, env=env)

    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert lines and lines[-1].startswith(ERROR_PREFIX), result.stderr
    assert mention in lines[-1], lines[-1]
    assert sum(line.startswith(ERROR_PREFIX) for line in lines) == 1
    assert result.stdout == ""
    assert not ws.output.exists()
    if case == "float16_on_cpu":
        assert "tensorflow" in marker.read_text()
    else:
        assert len(lines) == 1, result.stderr
        assert marker.read_text() == "", "bad flags must be rejected before TensorFlow is imported"


# ---------------------------------------------------------------------------------------------- the memory guard


# The memory estimate of the tiny network, worked out by hand in test_memory.py: a fixed part (runtime and kernels)
# and 28.59375 floats per pixel, so 100 x 100 pixels need 1,429,687.5 bytes more.
RUNTIME_BYTES = 700 * 2**20
TINY_WEIGHT_BYTES = 7560 * 4


@pytest.fixture(scope="module")
def tiny_weights(small_problem) -> VggWeights:
    """The tiny network (channels (4, 6, 8, 8, 8), He-scaled kernels)."""
    return small_problem[0]


def test_check_memory_in_process(tiny_weights: VggWeights, monkeypatch: pytest.MonkeyPatch) -> None:
    """Too large for the available memory: NeuralStyleError naming --width and the width that fits."""
    available = RUNTIME_BYTES + TINY_WEIGHT_BYTES + 1_429_688  # 100 x 100 fits (see above)
    monkeypatch.setattr(memory, "available_bytes", lambda *args, **kwargs: available)
    fv = stylize_flags()
    check_memory(fv, tiny_weights, 100, 100, 1)
    with pytest.raises(NeuralStyleError, match=r"use --width 100 or less") as info:
        check_memory(fv, tiny_weights, 200, 200, 1)
    assert "--nomemory_guard" in str(info.value)
    with pytest.raises(NeuralStyleError, match=r"--batch_size"):
        check_memory(fv, tiny_weights, 100, 100, 2)
    check_memory(stylize_flags("--nomemory_guard"), tiny_weights, 20000, 20000, 8)  # not checked
    monkeypatch.setattr(memory, "available_bytes", lambda *args, **kwargs: None)
    check_memory(fv, tiny_weights, 20000, 20000, 8)  # unknown memory: not refused


GUARD_CHANNELS = (128, 128, 64, 64, 64)  # ~3.6 kB per pixel: the guard refuses a few thousand pixels wide


@pytest.mark.slow
def test_memory_guard_refuses_too_large_width_before_tensorflow(tmp_path: Path) -> None:
    """A width needing more than the available memory: exit 2 within seconds, one line naming a --width that
    fits, nothing written, TensorFlow never imported."""
    ws = make_workspace(tmp_path)
    write_vgg_mat(ws.network, channels=GUARD_CHANNELS, tamper=he_scaled)
    vgg = read_matconvnet(ws.network)
    available = memory.available_bytes()
    if available is None:
        pytest.skip("available memory unknown on this system")
    aspect = CONTENT_SIZE[1] / CONTENT_SIZE[0]
    fits = memory.largest_width(vgg, aspect, available)
    width = int(fits * 1.4) + 10
    if width > 8000:
        pytest.skip(f"{available / 2**30:.0f} GiB available: the refused width {width} would take long to resize")
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(IMPORT_PROBE)
    env = ws.env
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(probe), env.get("PYTHONPATH")) if p)
    env["NEURAL_STYLE_TEST_IMPORTS"] = str(tmp_path / IMPORTS_MARKER)
    before = sorted(p.name for p in ws.work.iterdir())

    result = run_neural_style(ws, ws.args(f"--width={width}", "--iterations=5"), env=env)

    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()], result.stderr
    line = result.stderr.strip()
    assert line.startswith(ERROR_PREFIX) and "GiB" in line, line
    suggested = re.search(r"use --width (\d+) or less", line)
    assert suggested, line
    assert 0 < int(suggested.group(1)) < width
    assert abs(int(suggested.group(1)) - fits) <= max(10, fits // 20)  # the memory available moved a little
    assert (tmp_path / IMPORTS_MARKER).read_text() == "", "refused before TensorFlow is imported"
    assert sorted(p.name for p in ws.work.iterdir()) == before


@pytest.mark.slow
def test_nomemory_guard_flag_is_accepted(tmp_path: Path) -> None:
    """--nomemory_guard parses; the run goes on to the next check (here: --iterations 0 is refused)."""
    ws = make_workspace(tmp_path)
    result = run_neural_style(ws, ws.args("--nomemory_guard", "--iterations=0"))
    assert result.returncode == 2
    assert result.stderr.strip().startswith(ERROR_PREFIX + "--iterations is 0"), result.stderr
    result = run_neural_style(ws, ws.args("--memory_guard=maybe"))
    assert result.returncode == 2 and "memory_guard" in result.stderr


# ---------------------------------------------------------------------------------- tiles and --max_memory


@pytest.fixture(scope="module")
def wide_weights(tmp_path_factory: pytest.TempPathFactory) -> VggWeights:
    """Activations of about 3.6 kB a pixel (GUARD_CHANNELS), so tiles save memory as they do for VGG-19."""
    path = tmp_path_factory.mktemp("wide") / "wide.mat"
    write_vgg_mat(path, channels=GUARD_CHANNELS, tamper=he_scaled)
    return read_matconvnet(path)


def test_max_memory_chooses_the_tile_and_refuses_what_cannot_fit(
    wide_weights: VggWeights, monkeypatch: pytest.MonkeyPatch
) -> None:
    from neural_style.config import StyleConfig

    monkeypatch.setattr(memory, "available_bytes", lambda *args, **kwargs: 64 * 2**30)
    height, width = 1000, 1500
    budget = memory.estimate_tiled_bytes(wide_weights, height, width, 400) + 1
    config = StyleConfig()
    fv = stylize_flags(f"--max_memory={budget}")
    assert check_memory(fv, wide_weights, height, width, 1, config) == 400
    # Untiled when the whole image fits the budget; --tile_size as given.
    assert check_memory(stylize_flags("--max_memory=60G"), wide_weights, height, width, 1, config) is None
    chosen = StyleConfig(tile_size=128)
    assert check_memory(stylize_flags(), wide_weights, height, width, 1, chosen) == 128
    # Not even 64 px tiles fit: the budget is named, with what the smallest tiles need.
    smallest = memory.estimate_tiled_bytes(wide_weights, height, width, 64)
    tight = stylize_flags(f"--max_memory={smallest - 2**20}")
    with pytest.raises(NeuralStyleError, match=r"even in the smallest tiles \(64 px\).*raise --max_memory") as info:
        check_memory(tight, wide_weights, height, width, 1, config)
    assert f"needs about {smallest / 2**30:.1f} GiB" in str(info.value)
    # Tiles given by hand that do not fit: the largest width that would, in those tiles.
    fits = memory.largest_tiled_width(wide_weights, height / width, budget, 1024)
    with pytest.raises(
        NeuralStyleError, match=rf"in 1024 px tiles .* is the budget \(--max_memory\); use --width {fits} "
    ):
        check_memory(fv, wide_weights, height, width, 1, StyleConfig(tile_size=1024))
    # Tiles given by hand and a budget too small for any width: the budget that would do, never "--width 0".
    needed = memory.estimate_tiled_bytes(wide_weights, height, width, 64)
    with pytest.raises(NeuralStyleError) as info:
        check_memory(stylize_flags("--max_memory=20M"), wide_weights, height, width, 1, StyleConfig(tile_size=64))
    assert str(info.value).endswith(f"too little for any width; give --max_memory {-(-needed // 2**20)}M or more")
    assert (
        check_memory(
            stylize_flags(f"--max_memory={-(-needed // 2**20)}M"),
            wide_weights,
            height,
            width,
            1,
            StyleConfig(tile_size=64),
        )
        == 64
    )
    # L-BFGS's history counts: the tile shrinks.
    lbfgs = StyleConfig(optimizer="lbfgs", lbfgs_memory=3)
    tile = check_memory(
        stylize_flags(f"--max_memory={budget + memory.lbfgs_bytes(height, width, 3)}"),
        wide_weights,
        height,
        width,
        1,
        lbfgs,
    )
    assert tile == 400


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--max_memory=lots", "--max_memory 'lots' is not a size; give e.g. 8G, 1.5G or 500M"),
        ("--max_memory=0", "--max_memory '0' is not a size"),
        ("--tile_size=0", "--tile_size is 0; it must be at least 1"),
        ("--max_memory=1M", "needs about"),
    ],
)
def test_bad_tiling_flags(tmp_path: Path, flag: str, message: str) -> None:
    ws = make_workspace(tmp_path)
    before = sorted(p.name for p in ws.work.iterdir())
    result = run_neural_style(ws, ws.args(flag, "--iterations=2"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()] and message in result.stderr, result.stderr
    assert sorted(p.name for p in ws.work.iterdir()) == before


def test_tiles_are_not_for_video() -> None:
    from neural_style.cli import video as video_cli

    for flag in ("--tile_size=64", "--max_memory=8G"):
        fv = stylize_flags("--content=clip.mp4", "--styles=style.png", "--output=out.mp4", flag)
        with pytest.raises(NeuralStyleError, match="a video's frames are optimised whole"):
            video_cli.check_styles(fv)


@pytest.mark.slow
def test_a_tiled_run_writes_the_untiled_image(tmp_path: Path) -> None:
    ws = make_workspace(tmp_path)
    common = ("--iterations=3", "--seed=3", "--width=40")
    plain = run_in_process(ws, ws.args(*common, output=ws.work / "plain.png"))
    tiled = run_in_process(ws, ws.args(*common, "--tile_size=16", output=ws.work / "tiled.png"))
    assert_ok(plain)
    assert_ok(tiled)
    assert "Tiles of 16 px (+80 px halo on each side): 9 per pass" in tiled.stdout  # 40 x 33: 3 x 3 of 16
    assert "Tiles of" not in plain.stdout
    a = np.asarray(Image.open(ws.work / "plain.png"), np.int16)
    b = np.asarray(Image.open(ws.work / "tiled.png"), np.int16)
    assert a.shape == b.shape and np.abs(a - b).max() <= 1


def test_tiles_are_not_part_of_a_saved_runs_settings(tmp_path: Path) -> None:
    """Tiles change the memory a run takes, not its result: a run saved in tiles may resume whole, or in others."""
    ws = make_workspace(tmp_path)
    weights = read_matconvnet(ws.network)
    stages = Stages([24], [4])
    prints = []
    for extra in ((), ("--tile_size=16",), ("--max_memory=8G",), ("--style_weight=1",)):
        fv = stylize_flags(*ws.args(*extra))
        prints.append(fingerprint(fv, style_config(fv), weights, stages))
    assert prints[0] == prints[1] == prints[2] != prints[3]


# ---------------------------------------------------------------------------------- regions, colours and layers


def test_preserve_colors_flag_takes_a_mode() -> None:
    """Bare --preserve_colors is luminance transfer, =histogram and =none name the others, --nopreserve_colors is
    none, and the custom layer lists reach the settings."""
    modes = [
        stylize_flags(*argv).preserve_colors
        for argv in ([], ["--preserve_colors"], ["--preserve_colors=histogram"], ["--nopreserve_colors"])
    ]
    assert modes == ["none", "luminance", "histogram", "none"]
    fv = stylize_flags(
        "--content=c.png", "--styles=s.png", "--output=o.png", "--content_layers=relu3_1", "--style_layers=relu1_1"
    )
    config = style_config(fv)
    assert (config.content_layers, config.style_layers, config.color_mode) == (("relu3_1",), ("relu1_1",), "none")


@pytest.mark.slow
def test_regions_colours_and_layers_end_to_end(ws: Workspace) -> None:
    """Two styles kept to two halves (soft-edged masks), a style mask, histogram matching, custom layers, with
    checkpoints (the resumable state's fingerprint holds the masks): the output is written, the state removed."""
    width, height = CONTENT_SIZE
    ramp = np.clip((np.arange(width) - width / 2) / 4 + 0.5, 0, 1)
    right = np.broadcast_to(255 * ramp, (height, width)).astype(np.uint8)
    Image.fromarray(255 - right).save(ws.work / "left.png")
    Image.fromarray(right).save(ws.work / "right.png")
    Image.fromarray(np.full((16, 16), 255, np.uint8)).save(ws.work / "whole.png")
    Image.fromarray(style_array(1)).save(ws.work / "style2.png")
    args = [
        f"--styles={ws.style},{ws.work / 'style2.png'}",
        f"--content_masks={ws.work / 'left.png'},{ws.work / 'right.png'}",
        f"--style_masks={ws.work / 'whole.png'},{ws.work / 'whole.png'}",
        "--preserve_colors=histogram",
        "--content_layers=relu3_1",
        "--style_layers=relu1_1,relu2_1,relu3_1",
        "--iterations=4",
        "--checkpoint_iterations=2",
        "--checkpoint_output=ck_{}.png",
        "--seed=0",
        "--tv_weight=1",
    ]
    result = run_in_process(ws, [a for a in ws.args() if not a.startswith("--styles=")] + args)
    assert_ok(result)
    with Image.open(ws.output) as out:
        assert out.size == (width, height)
    assert not (ws.work / "out.png.state").exists()
    fv = stylize_flags(*[a for a in ws.args() if not a.startswith("--styles=")], *args)
    stages = Stages([width], [4])
    before = fingerprint(fv, style_config(fv), read_matconvnet(ws.network), stages)
    Image.fromarray(right[:, ::-1].copy()).save(ws.work / "right.png")
    after = fingerprint(fv, style_config(fv), read_matconvnet(ws.network), stages)
    assert before["--content_masks"] != after["--content_masks"] and before["--preserve_colors"] == "histogram"
