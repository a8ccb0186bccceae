"""Tests of ``neural-style-export`` (neural_style.cli.export): the SavedModel and the .keras file load without the
.mat (in a fresh process) and give the in-memory model's activations; bad inputs are refused before TensorFlow; the
directory is replaced whole or not at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from conftest import he_scaled, write_vgg_mat

from neural_style.cli import export as export_cli
from neural_style.errors import NeuralStyleError

LAYERS = ("relu1_1", "pool3", "relu4_2", "relu5_1")

_RUNNER = (
    "import atexit, os, sys\n"
    "atexit.register(lambda: open(os.environ['IMPORTS_MARKER'], 'w').write(str('tensorflow' in sys.modules)))\n"
    "from neural_style.cli.export import main\n"
    "sys.argv[0] = 'neural-style-export'\n"
    "main()\n"
)

# Loads both exports in a fresh process (only TensorFlow, Keras and the registered classes) and saves activations.
_LOADER = textwrap.dedent(
    """
    import sys
    import keras
    import numpy as np
    import tensorflow as tf
    import neural_style.perceptual  # registers VggFeatures with Keras

    export_dir, out = sys.argv[1], sys.argv[2]
    images = np.load(f"{out}.in.npy")
    saved = tf.saved_model.load(f"{export_dir}/saved_model")
    served = saved.signatures["serving_default"](image=tf.constant(images))
    model = keras.models.load_model(f"{export_dir}/vgg_features.keras")
    keras_out = model(images)
    arrays = {f"saved/{k}": v.numpy() for k, v in served.items()}
    arrays.update({f"keras/{k}": v.numpy() for k, v in keras_out.items()})
    np.savez(out, **arrays)
    """
)


def _env(tmp_path: Path) -> dict[str, str]:
    for name in ("home", "cache", "tmp"):
        (tmp_path / name).mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("NEURAL_STYLE_WEIGHTS", "KERAS_HOME", "XDG_CACHE_HOME")}
    env.update(
        HOME=str(tmp_path / "home"),
        NEURAL_STYLE_CACHE=str(tmp_path / "cache"),
        TMPDIR=str(tmp_path / "tmp"),
        IMPORTS_MARKER=str(tmp_path / "imports.txt"),
    )
    return env


def _export(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    """Runs the command in ``tmp_path``; returns its result and whether it imported TensorFlow."""
    marker = tmp_path / "imports.txt"
    marker.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, *args],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    return result, marker.read_text() == "True"


@pytest.mark.slow
def test_export_round_trip_without_the_mat(tmp_path):
    """Export, delete the .mat, load both formats in a fresh process: the activations are the in-memory model's."""
    from neural_style.vgg import feature_extractor

    mat = write_vgg_mat(tmp_path / "vgg.mat", channels=(4, 6, 8, 8, 8), tamper=he_scaled)
    images = np.random.default_rng(0).uniform(0, 255, (2, 27, 21, 3)).astype(np.float32)
    model = feature_extractor(mat.path, LAYERS, pooling="avg")
    expected = model(images)

    result, _ = _export(
        tmp_path, f"--network={mat.path}", "--output_dir=out", f"--layers={','.join(LAYERS)}", "--pooling=avg"
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "a successful export is silent on stderr"
    assert "Wrote out/saved_model and out/vgg_features.keras" in result.stdout
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["export.json", "saved_model", "vgg_features.keras"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary directory left
    metadata = json.loads((out / "export.json").read_text())
    assert metadata["layers"] == list(LAYERS) and metadata["pooling"] == "avg" and metadata["md5"]
    np.testing.assert_allclose(metadata["mean_pixel"], mat.mean_pixel, rtol=1e-6)

    # Each weight is stored once (Keras' own model.export stores it twice: keras-team/keras#23553).
    weight_bytes = sum(w.numpy().nbytes for w in model.weights)
    assert (out / "saved_model/variables/variables.data-00000-of-00001").stat().st_size < 1.5 * weight_bytes

    mat.path.unlink()
    np.save(tmp_path / "acts.in.npy", images)
    loaded = subprocess.run(
        [sys.executable, "-c", _LOADER, str(out), str(tmp_path / "acts")],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert loaded.returncode == 0, loaded.stderr
    with np.load(tmp_path / "acts.npz") as acts:
        assert sorted(acts.files) == sorted(f"{kind}/{layer}" for kind in ("saved", "keras") for layer in LAYERS)
        for layer in LAYERS:
            # Same operations on the same machine: identical, not merely close.
            np.testing.assert_array_equal(acts[f"saved/{layer}"], expected[layer].numpy())
            np.testing.assert_array_equal(acts[f"keras/{layer}"], expected[layer].numpy())


@pytest.mark.slow
def test_bad_input_is_refused_before_tensorflow(tmp_path):
    mat = write_vgg_mat(tmp_path / "vgg.mat")
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("keep me")
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / export_cli.METADATA_FILE).write_text("{}")
    network = f"--network={mat.path}"
    cases = [
        ([network], "--output_dir is required"),
        ([network, "--output_dir=a_file"], "a_file is a file"),
        ([network, "--output_dir=foreign", "--overwrite"], "not empty and holds no earlier export"),
        ([network, "--output_dir=earlier"], "already holds an export; pass --overwrite"),
        ([network, "--output_dir=a_file/out"], "a_file is a file"),
        ([network, "--output_dir=out", "--layers=relu1_1,relu9_9"], "--layers: relu9_9 not in"),
        ([network, "--output_dir=out", "--pooling=median"], "--pooling"),
        ([f"--network={tmp_path / 'none.mat'}", "--output_dir=out"], "none.mat does not exist"),
        ([network, "--output_dir=out", "extra"], "unexpected argument 'extra'"),
    ]
    for args, message in cases:
        result, imported_tf = _export(tmp_path, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("neural-style-export: error: ") and message in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert not imported_tf, args
    assert (tmp_path / "foreign" / "notes.txt").read_text() == "keep me"
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_help_lists_only_the_export_flags(tmp_path):
    result, imported_tf = _export(tmp_path, "--help")
    assert result.returncode == 0
    assert "--output_dir" in result.stdout and "--layers" in result.stdout and "overwrite" in result.stdout
    assert "--top_k" not in result.stdout and "--content" not in result.stdout
    assert not imported_tf


# --------------------------------------------------------------------------------- the directory swap, in-process


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("existing", ["missing", "empty", "earlier export"])
def test_install_dir_replaces_whole(tmp_path, existing):
    new = tmp_path / ".tmp-export-x"
    (new / "saved_model").mkdir(parents=True)
    (new / export_cli.METADATA_FILE).write_text("new")
    (new / "saved_model" / "saved_model.pb").write_text("new model")
    target = tmp_path / "out"
    if existing != "missing":
        target.mkdir()
    if existing == "earlier export":
        (target / export_cli.METADATA_FILE).write_text("old")
        (target / "stale.txt").write_text("old")
        export_cli.check_output_dir(str(target), overwrite=True)
        with pytest.raises(NeuralStyleError, match="pass --overwrite"):
            export_cli.check_output_dir(str(target), overwrite=False)
    export_cli.install_dir(str(new), str(target))
    assert _tree(target) == {export_cli.METADATA_FILE: "new", "saved_model/saved_model.pb": "new model"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_default_layers_are_neural_styles():
    from neural_style.config import CONTENT_LAYERS, EXPORT_LAYERS, STYLE_LAYERS

    assert set(EXPORT_LAYERS) == set(STYLE_LAYERS) | set(CONTENT_LAYERS)
    assert export_cli.flag_values()["layers"].default == list(EXPORT_LAYERS)


@pytest.mark.slow
def test_importing_the_package_and_commands_does_not_import_tensorflow(tmp_path):
    code = (
        "import sys, neural_style, neural_style.cli.export, neural_style.cli.classify; "
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
