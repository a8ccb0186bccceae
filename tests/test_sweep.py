"""Tests of blend sweeps: the pure helpers, batched runs against single runs, and the ``neural-style`` sweep flags.

The batched optimisation runs on a tiny synthetic VGG (see conftest.py); the CLI tests reuse test_cli.py's
workspace (inputs, cache and ``$HOME`` in the test's temporary directory) and cost several seconds per successful
run, so there are only two of those.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from conftest import write_vgg_mat
from PIL import Image
from test_cli import (
    _PROBE,
    CHANNELS,
    CONTENT_SIZE,
    ERROR_PREFIX,
    IMPORTS_MARKER,
    Workspace,
    _he_scaled,
    _ok,
    _run,
    _snapshot,
    _style_array,
    _temp_files,
    _workspace,
)

from neural_style.cli.sweep import candidate_label, candidate_path, parse_blends, sheet_path
from neural_style.config import Candidate, StyleConfig, even_blends, make_candidates
from neural_style.errors import NeuralStyleError
from neural_style.matconvnet import VggWeights, load_vgg
from neural_style.stylization import sweep

# ---------------------------------------------------------------------------------------------------- helpers


def test_even_blends_five() -> None:
    """Five blends of two styles: steps of 1/4 from pure first to pure second, both ends included."""
    assert even_blends(5) == [(1.0, 0.0), (0.75, 0.25), (0.5, 0.5), (0.25, 0.75), (0.0, 1.0)]


def test_even_blends_two_is_both_pure_styles() -> None:
    assert even_blends(2) == [(1.0, 0.0), (0.0, 1.0)]


@pytest.mark.parametrize("k", [1, 0, -3])
def test_even_blends_needs_two(k: int) -> None:
    with pytest.raises(NeuralStyleError, match="^blend_sweep"):
        even_blends(k)


def test_parse_blends() -> None:
    """Rows split on ';', weights on ','; spaces and empty rows (a trailing ';') are ignored; no normalisation."""
    assert parse_blends("1,0,0; 0.5, 0.5, 0 ;0,0,2;", 3) == [(1.0, 0.0, 0.0), (0.5, 0.5, 0.0), (0.0, 0.0, 2.0)]
    assert parse_blends("3", 1) == [(3.0,)]


@pytest.mark.parametrize(
    "text, mention",
    [
        ("1,0;0,1,0", "'1,0' with 2 weights for 3 styles"),
        ("1,0,0,0", "with 4 weights for 3 styles"),
        ("1,0,0;a,b,c", "'a,b,c', which is not comma-separated numbers"),
        ("1,,0", "not comma-separated numbers"),
        ("", "--blends is empty"),
        (" ; ;", "--blends is empty"),
    ],
)
def test_parse_blends_rejects(text: str, mention: str) -> None:
    with pytest.raises(NeuralStyleError, match="--blends") as info:
        parse_blends(text, 3)
    assert mention in str(info.value)


def test_make_candidates_is_the_product_blends_major() -> None:
    """Every blend with every style weight, blends varying slowest; blends are normalised to sum 1."""
    candidates = make_candidates(StyleConfig(), 2, [(1, 3), (2, 2)], [10.0, 100.0])
    assert candidates == [
        Candidate((0.25, 0.75), 10.0),
        Candidate((0.25, 0.75), 100.0),
        Candidate((0.5, 0.5), 10.0),
        Candidate((0.5, 0.5), 100.0),
    ]


def test_make_candidates_defaults_come_from_the_config() -> None:
    """Without blends the config's blend (or equal weights) is used; without style weights the config's."""
    assert make_candidates(StyleConfig(style_weight=7.0), 2, [(1, 0)]) == [Candidate((1.0, 0.0), 7.0)]
    config = StyleConfig(style_blend_weights=(1.0, 3.0))
    assert make_candidates(config, 2, style_weights=[1.0, 2.0]) == [
        Candidate((0.25, 0.75), 1.0),
        Candidate((0.25, 0.75), 2.0),
    ]
    assert make_candidates(StyleConfig(), 4, style_weights=[5.0]) == [Candidate((0.25,) * 4, 5.0)]


@pytest.mark.parametrize("blend, weight", [((1, -1), 1.0), ((0, 0), 1.0), ((1, 1), -1.0), ((1, 1), float("nan"))])
def test_candidate_rejects_bad_weights(blend: tuple[float, ...], weight: float) -> None:
    with pytest.raises(NeuralStyleError):
        Candidate.make(blend, weight)


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


# -------------------------------------------------------------------------------------- batched = single runs

CONTENT_SHAPE = (16, 20, 3)
CANDIDATES = [
    Candidate.make((1, 0), 500.0),
    Candidate.make((1, 1), 500.0),
    Candidate.make((0, 1), 100.0),  # its own style weight too
]
# Batched and single runs are bitwise equal on the CPUs we tried, but oneDNN may pick other convolution blocking
# and reduction orders for a batch of 3 than for 1, and Adam divides each gradient by its own running RMS, so
# rounding-level differences in gradients are not damped. Images (0..255) must agree to 0.05 of a grey level
# (candidates differ by tens of levels) and losses to 1e-4 relative.
IMAGE_ATOL = 0.05
LOSS_RTOL = 1e-4


@dataclasses.dataclass
class Tiny:
    weights: VggWeights
    content: np.ndarray
    styles: list[np.ndarray]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    """A tiny He-scaled VGG, a random 16x20 content image and two random styles of other sizes."""
    path = tmp_path_factory.mktemp("tiny") / "vgg.mat"
    write_vgg_mat(path, channels=CHANNELS, tamper=_he_scaled)
    rng = np.random.default_rng(1)
    content = rng.uniform(0, 255, CONTENT_SHAPE).astype(np.float32)
    styles = [rng.uniform(0, 255, shape).astype(np.float32) for shape in ((16, 16, 3), (12, 20, 3))]
    return Tiny(load_vgg(path), content, styles)


def _config(pooling: str, seed: int | None = 0) -> StyleConfig:
    return StyleConfig(iterations=5, seed=seed, checkpoint_iterations=None, pooling=pooling)


def _final(records) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The images and losses of the last record of a stylize run."""
    last = list(records)[-1]
    assert last.final
    return last.images, last.losses


def _sweep_results(
    tiny: Tiny, config: StyleConfig, candidates: Sequence[Candidate], batch_size: int | None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """All candidates' final images [N, H, W, 3] and losses {term: [N]}, put together from the chunks."""
    images: dict[int, np.ndarray] = {}
    losses: dict[int, dict[str, float]] = {}
    for first, record in sweep(tiny.weights, tiny.content, tiny.styles, config, candidates, batch_size=batch_size):
        if record.final:
            for i, image in enumerate(record.images):
                images[first + i] = image
                losses[first + i] = {key: value[i] for key, value in record.losses.items()}
    assert sorted(images) == list(range(len(candidates)))
    keys = losses[0].keys()
    return np.stack([images[i] for i in range(len(candidates))]), {
        key: np.array([losses[i][key] for i in range(len(candidates))]) for key in keys
    }


@pytest.fixture(scope="module", params=["max", "avg"])
def singles(request: pytest.FixtureRequest, tiny: Tiny) -> tuple[str, np.ndarray, dict[str, np.ndarray]]:
    """Each candidate run alone (``stylize(candidates=[c])``): pooling, images [3, H, W, 3], losses {term: [3]}."""
    from neural_style.stylization import stylize

    pooling = request.param
    runs = [
        _final(stylize(tiny.weights, tiny.content, tiny.styles, _config(pooling), candidates=[c])) for c in CANDIDATES
    ]
    images = np.concatenate([images for images, _ in runs])
    losses = {key: np.concatenate([run_losses[key] for _, run_losses in runs]) for key in runs[0][1]}
    return pooling, images, losses


def _assert_same(got: tuple[np.ndarray, dict], want: tuple[np.ndarray, dict]) -> None:
    np.testing.assert_allclose(got[0], want[0], rtol=0, atol=IMAGE_ATOL)
    for key in ("content", "style", "tv", "total"):
        np.testing.assert_allclose(got[1][key], want[1][key], rtol=LOSS_RTOL, err_msg=key)


@pytest.mark.parametrize("batch_size", [None, 2], ids=["one-batch", "chunks-2+1"])
def test_sweep_candidate_equals_single_run(tiny: Tiny, singles, batch_size: int | None) -> None:
    """Candidate i of a sweep (one batch of 3, or chunks of 2 + 1) equals a run of candidate i alone."""
    pooling, images, losses = singles
    got = _sweep_results(tiny, _config(pooling), CANDIDATES, batch_size)
    assert got[0].shape == (3, *CONTENT_SHAPE)
    _assert_same(got, (images, losses))
    # The candidates really differ, by far more than the tolerances above.
    assert np.abs(images[0] - images[2]).max() > 100 * IMAGE_ATOL
    assert not np.allclose(losses["style"][0], losses["style"][1], rtol=10 * LOSS_RTOL)


def test_single_candidate_equals_config_run(tiny: Tiny) -> None:
    """``candidates=[c]`` is the same run as a config with c's blend and style weight (what the CLI does)."""
    from neural_style.stylization import stylize

    candidate = Candidate.make((1, 3), 200.0)
    config = _config("max")
    alone = _final(stylize(tiny.weights, tiny.content, tiny.styles, config, candidates=[candidate]))
    blended = dataclasses.replace(config, style_blend_weights=(1.0, 3.0), style_weight=200.0)
    _assert_same(alone, _final(stylize(tiny.weights, tiny.content, tiny.styles, blended)))


def test_targets_are_computed_once_for_a_chunked_sweep(tiny: Tiny, monkeypatch: pytest.MonkeyPatch) -> None:
    """One objective (one set of Gram targets) serves all chunks; chunks are batch_size candidates at once."""
    import tensorflow as tf

    from neural_style import losses
    from neural_style import stylization as stylization_module

    objectives: list[object] = []
    original_build = stylization_module.build_objective

    def counting_build(*args, **kwargs):
        objectives.append(original_build(*args, **kwargs))
        return objectives[-1]

    eager_grams: list[int] = []
    original_gram = losses.gram_matrix

    def counting_gram(features):
        if tf.executing_eagerly():  # target computation; the step's Gram matrices are traced, not eager
            eager_grams.append(int(features.shape[0]))
        return original_gram(features)

    chunks: list[tuple[int, object]] = []
    original_stylize = stylization_module.stylize

    def recording_stylize(*args, candidates=None, objective=None, **kwargs):
        chunks.append((len(candidates), objective))
        return original_stylize(*args, candidates=candidates, objective=objective, **kwargs)

    monkeypatch.setattr(stylization_module, "build_objective", counting_build)
    monkeypatch.setattr(losses, "gram_matrix", counting_gram)
    monkeypatch.setattr(stylization_module, "stylize", recording_stylize)

    config = dataclasses.replace(_config("max"), iterations=2)
    images, _ = _sweep_results(tiny, config, CANDIDATES, batch_size=2)
    assert images.shape == (3, *CONTENT_SHAPE)
    assert len(objectives) == 1
    assert [size for size, _ in chunks] == [2, 1]
    assert all(objective is objectives[0] for _, objective in chunks)
    assert eager_grams == [1] * 2 * 5, "one Gram matrix per style (2) and style layer (5), each of one image"


def test_sweep_rejects_bad_batch_size(tiny: Tiny) -> None:
    with pytest.raises(NeuralStyleError, match="^batch_size"):
        next(sweep(tiny.weights, tiny.content, tiny.styles, _config("max"), CANDIDATES, batch_size=0))


def test_chunks_share_the_start_image_without_a_seed(tiny: Tiny) -> None:
    """Without --seed, one batch starts all candidates from one noise image; chunks of 1 should too."""
    config = dataclasses.replace(_config("max", seed=None), iterations=1)
    same = [CANDIDATES[0], CANDIDATES[0]]
    images, _ = _sweep_results(tiny, config, same, batch_size=1)
    np.testing.assert_allclose(images[0], images[1], rtol=0, atol=IMAGE_ATOL)


# ---------------------------------------------------------------------------------------------------- the CLI


def _sweep_workspace(root: Path, n_styles: int = 2) -> tuple[Workspace, str]:
    """test_cli's workspace plus more style images; returns it and the --styles value listing ``n_styles``."""
    ws = _workspace(root)
    styles = [ws.style]
    for seed in range(1, n_styles):
        path = ws.work / f"style{seed + 1}.png"
        Image.fromarray(_style_array(seed=seed)).resize((12 + 4 * seed, 16)).save(path)
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


def test_cli_blend_sweep(tmp_path: Path) -> None:
    """--blend_sweep 3 writes the three blends and a captioned sheet beside --output, but not --output itself."""
    ws, styles = _sweep_workspace(tmp_path)
    result = _run(ws, _sweep_args(ws, styles, "--blend_sweep=3", "--iterations=3", "--seed=0", "--print_iterations=3"))
    _ok(result)
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
    assert _temp_files(ws.root) == []


def test_cli_blends_and_style_weights_in_chunks(tmp_path: Path) -> None:
    """3 styles x --blends (2) x --sweep_style_weights (2) = 4 candidates, run as chunks of 3 + 1."""
    ws, styles = _sweep_workspace(tmp_path, n_styles=3)
    args = _sweep_args(
        ws, styles, "--blends=1,0,0;0,1,0", "--sweep_style_weights=10,100", "--batch_size=3", "--iterations=2"
    )
    result = _run(ws, args)
    _ok(result)
    names = ["out_1-0-0_sw10.png", "out_1-0-0_sw100.png", "out_0-1-0_sw10.png", "out_0-1-0_sw100.png"]
    assert sorted(p.name for p in ws.work.glob("out*")) == sorted([*names, "out_sheet.png"])
    for name in names:
        assert _size(ws.work / name) == CONTENT_SIZE
    assert _size(ws.work / "out_sheet.png") == _sheet_size(4) == (1054, 243)
    assert "Sweeping 4 candidates in 2 batch(es) of up to 3" in result.stdout
    assert "(batch 2/2)" in result.stdout
    assert _temp_files(ws.root) == []


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


@pytest.fixture(scope="module")
def import_probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding test_cli's ``sitecustomize`` that records whether TensorFlow or Keras was imported."""
    directory = tmp_path_factory.mktemp("probe")
    (directory / "sitecustomize.py").write_text(_PROBE)
    return directory


@pytest.mark.parametrize(
    "case",
    [pytest.param(case, id=name) for name, case in BAD_SWEEPS.items()],
)
def test_bad_sweep_is_one_error_line(tmp_path: Path, import_probe: Path, case: BadSweep) -> None:
    """Bad sweep flags: exit 2, one error line naming the flag (or file), nothing written, no TensorFlow."""
    ws, styles = _sweep_workspace(tmp_path, n_styles=case.n_styles)
    if case.existing:
        Image.new("RGB", (3, 3), "white").save(ws.work / case.existing)
    before = _snapshot(ws.root)
    marker = ws.root / IMPORTS_MARKER
    env = ws.env
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(import_probe), env.get("PYTHONPATH")) if p)
    env["NEURAL_STYLE_TEST_IMPORTS"] = str(marker)
    result: subprocess.CompletedProcess[str] = _run(ws, _sweep_args(ws, styles, *case.flags), env=env)

    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(ERROR_PREFIX), lines[0]
    assert case.mention in lines[0], lines[0]
    assert result.stdout == ""
    assert _snapshot(ws.root) == before, "a rejected command must not create or change any file"
    assert marker.read_text() == "", "bad input must be rejected before TensorFlow is imported"
