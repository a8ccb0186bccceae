"""Tests of the directories a command owns, the same way in every command (neural_style.cli.command
``check_directory_target``).

A command creates the directories it owns (``--tensorboard_dir`` of ``neural-style`` and ``neural-style-train``,
``--checkpoint_dir`` of ``neural-style-train``, ``--output_dir`` of ``neural-style-export``, the ``--output`` folder of
``neural-style-apply``) with their missing parents; a path under a file is refused before TensorFlow is imported, with
one stderr line naming the flag and exit status 2, and nothing is created. The missing parent of an output *file*
(``--output``, ``--model_out``) is still refused. The commands run in subprocesses on conftest's tiny network and
tiny images (the runs that succeed in this process, with conftest's ``run_command``); the download command's
directory is tested in test_cli_download.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    CHANNELS,
    IMPORTS_MARKER,
    content_array,
    he_scaled,
    photo_array,
    probe_env,
    read_only_directory,
    run_command,
    style_array,
    write_vgg_mat,
)
from PIL import Image

from neural_style.cli.command import check_directory_target
from neural_style.errors import NeuralStyleError

MODULES = {
    "neural-style": "neural_style.cli.stylize",
    "neural-style-train": "neural_style.cli.train",
    "neural-style-apply": "neural_style.cli.apply",
    "neural-style-export": "neural_style.cli.export",
}
# The smallest training run: a narrow transformer, the shallow loss layers, 16 px crops, one step.
TINY_TRAIN = (
    "--base_filters=4",
    "--residual_blocks=1",
    "--image_size=16",
    "--batch_size=2",
    "--steps=1",
    "--seed=0",
    "--content_layers=relu2_2",
    "--style_layers=relu1_2,relu2_2",
)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny inputs every command reads: content and style images, a folder of photos, the network."""
    root = tmp_path_factory.mktemp("inputs")
    Image.fromarray(content_array()).save(root / "content.png")
    Image.fromarray(style_array()).save(root / "style.png")
    (root / "photos").mkdir()
    for seed in range(2):
        Image.fromarray(photo_array(20, 24, seed)).save(root / "photos" / f"p{seed}.png")
    write_vgg_mat(root / "vgg.mat", channels=CHANNELS, tamper=he_scaled)
    return root


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """An empty working directory (beside it: the home, cache and temporary directories of the commands)."""
    for name in ("work", "home", "cache", "tmp"):
        (tmp_path / name).mkdir()
    return tmp_path / "work"


def run(command: str, work: Path, args: Sequence[str], import_probe: Path | None = None) -> Any:
    """Runs ``command`` with ``args`` in ``work``: in its own process with the import probe recording TensorFlow
    imports, when given; else in this process (a CompletedProcess or conftest's Completed)."""
    root = work.parent
    env = {k: v for k, v in os.environ.items() if k not in ("NEURAL_STYLE_WEIGHTS", "KERAS_HOME", "XDG_CACHE_HOME")}
    env.update(HOME=str(root / "home"), NEURAL_STYLE_CACHE=str(root / "cache"), TMPDIR=str(root / "tmp"))
    if import_probe is None:
        return run_command(MODULES[command], [command, *args], work, env, no_network=False)
    if import_probe is not None:
        env = probe_env(env, import_probe, root / IMPORTS_MARKER)
    code = f"from {MODULES[command]} import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=work, env=env, capture_output=True, text=True, timeout=600
    )


def ok(result: Any) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.stderr == "", f"a successful run is silent on stderr:\n{result.stderr}"


def tree(root: Path) -> set[str]:
    """Every file and directory under ``root``."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def command_args(command: str, inputs: Path, model: Path | None = None) -> list[str]:
    """The flags of a minimal valid run of ``command`` (writing into the working directory)."""
    network = f"--network={inputs / 'vgg.mat'}"
    if command == "neural-style":
        return [f"--content={inputs / 'content.png'}", f"--styles={inputs / 'style.png'}", network, "--output=out.png"]
    if command == "neural-style-train":
        return [f"--style={inputs / 'style.png'}", f"--data={inputs / 'photos'}", network, "--model_out=m.keras"]
    if command == "neural-style-apply":
        return [f"--model={model or inputs / 'm.keras'}", f"--content={inputs / 'photos'}"]
    return [network]


# ------------------------------------------------------------------------------------------ missing parents are made


@pytest.mark.slow
def test_stylize_creates_the_parents_of_tensorboard_dir(inputs: Path, work: Path) -> None:
    result = run(
        "neural-style", work, [*command_args("neural-style", inputs), "--iterations=1", "--tensorboard_dir=a/b/c"]
    )
    ok(result)
    assert (work / "out.png").is_file()
    assert list((work / "a" / "b" / "c").glob("events.out.tfevents.*"))


@pytest.fixture(scope="module")
def trained(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One training run whose --checkpoint_dir and --tensorboard_dir are nested in directories that do not exist."""
    work = tmp_path_factory.mktemp("train") / "work"
    for directory in (work, work.parent / "home", work.parent / "cache", work.parent / "tmp"):
        directory.mkdir()
    args = [
        *command_args("neural-style-train", inputs),
        *TINY_TRAIN,
        "--checkpoint_dir=ck/a/b",
        "--tensorboard_dir=tb/c/d",
    ]
    return work, run("neural-style-train", work, args)


@pytest.mark.slow
def test_train_creates_the_parents_of_checkpoint_dir(trained: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    work, result = trained
    ok(result)
    assert (work / "m.keras").is_file()
    assert [p.name for p in (work / "ck" / "a" / "b").glob("*.index")] == ["ckpt-1.index"]


@pytest.mark.slow
def test_train_creates_the_parents_of_tensorboard_dir(trained: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    work, result = trained
    ok(result)
    assert list((work / "tb" / "c" / "d").glob("events.out.tfevents.*"))


@pytest.mark.slow
def test_apply_creates_the_parents_of_its_output_folder(
    inputs: Path, work: Path, trained: tuple[Path, subprocess.CompletedProcess[str]]
) -> None:
    model = trained[0] / "m.keras"
    ok(trained[1])
    ok(run("neural-style-apply", work, [*command_args("neural-style-apply", inputs, model), "--output=x/y/styled"]))
    assert sorted(p.name for p in (work / "x" / "y" / "styled").iterdir()) == ["p0.png", "p1.png"]


@pytest.mark.slow
def test_export_creates_the_parents_of_output_dir(inputs: Path, work: Path) -> None:
    ok(run("neural-style-export", work, [*command_args("neural-style-export", inputs), "--output_dir=e/f/vgg"]))
    assert sorted(p.name for p in (work / "e" / "f" / "vgg").iterdir()) == [
        "export.json",
        "saved_model",
        "vgg_features.keras",
    ]
    assert sorted(p.name for p in (work / "e" / "f").iterdir()) == ["vgg"]  # no temporary directory left


# ------------------------------------------------------------------------------- a path under a file is refused

UNDER_A_FILE = [
    pytest.param("neural-style", "tensorboard_dir", id="neural-style--tensorboard_dir"),
    pytest.param("neural-style-train", "tensorboard_dir", id="train--tensorboard_dir"),
    pytest.param("neural-style-train", "checkpoint_dir", id="train--checkpoint_dir"),
    pytest.param("neural-style-apply", "output", id="apply--output-folder"),
    pytest.param("neural-style-export", "output_dir", id="export--output_dir"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("command", "flag"), UNDER_A_FILE)
@pytest.mark.parametrize("depth", ["parent", "grandparent"])
def test_directory_under_a_file_is_refused_before_tensorflow(
    inputs: Path, work: Path, import_probe: Path, command: str, flag: str, depth: str
) -> None:
    (work / "blocker").write_text("a file, not a directory")
    path = "blocker/new" if depth == "parent" else "blocker/new/deeper"
    # apply's model is only checked to be a .keras archive before TensorFlow: any zip file named so will do
    model = work.parent / "m.keras"
    _write_fake_keras(model)
    before = tree(work)
    result = run(command, work, [*command_args(command, inputs, model), f"--{flag}={path}"], import_probe)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{command}: error: --{flag} {path}")
    assert "blocker is a file" in lines[0]
    assert tree(work) == before  # nothing created
    assert (work.parent / IMPORTS_MARKER).read_text() == ""  # TensorFlow was never imported


def _write_fake_keras(path: Path) -> None:
    """A zip archive holding what check_model_file looks for in a .keras file (the model is never loaded)."""
    import zipfile

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", "{}")
        archive.writestr("config.json", "{}")
        archive.writestr("model.weights.h5", b"")


# ---------------------------------------------------------------------- an output file's missing parent is refused

OUTPUT_FILES = [
    pytest.param("neural-style", "output", "missing/out.png", id="neural-style--output"),
    pytest.param("neural-style-train", "model_out", "missing/m.keras", id="train--model_out"),
    pytest.param("neural-style-apply", "output", "missing/styled.png", id="apply--output-file"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("command", "flag", "path"), OUTPUT_FILES)
def test_output_file_in_a_missing_directory_is_refused(
    inputs: Path, work: Path, import_probe: Path, command: str, flag: str, path: str
) -> None:
    model = work.parent / "m.keras"
    _write_fake_keras(model)
    args = command_args(command, inputs, model)
    if command == "neural-style-apply":
        args = [args[0], f"--content={inputs / 'content.png'}"]
    args = [a for a in args if not a.startswith(f"--{flag}=")]
    result = run(command, work, [*args, f"--{flag}={path}"], import_probe)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{command}: error: --{flag}")
    assert "missing does not exist" in lines[0]
    assert tree(work) == set()
    assert (work.parent / IMPORTS_MARKER).read_text() == ""


# ------------------------------------------------------------------------------------------- check_directory_target


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody may write in (see conftest.read_only_directory)."""
    with read_only_directory(tmp_path / "ro") as target:
        yield target


def test_check_directory_target_lists_what_to_create(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "have").mkdir()
    assert check_directory_target("have", "x") == []
    assert check_directory_target("have/", "x") == []
    assert check_directory_target("have/a/b", "x") == ["have/a", "have/a/b"]
    assert check_directory_target("new", "x") == ["new"]
    assert check_directory_target(str(tmp_path / "n" / "m"), "x") == [str(tmp_path / "n"), str(tmp_path / "n" / "m")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["have"]  # nothing created


@pytest.mark.parametrize(
    ("make", "path", "message"),
    [
        (lambda d: (d / "f").write_text("x"), "f", "--flag f is a file; give a directory"),
        (lambda d: (d / "f").write_text("x"), "f/a/b", "--flag f/a/b cannot be created: f is a file"),
        (lambda d: (d / "f").write_text("x"), "f/../a", "--flag f/../a cannot be created: f is a file"),
        (lambda d: (d / "link").symlink_to(d / "nowhere"), "link/a", "link is a dangling symbolic link"),
    ],
    ids=["file", "under-a-file", "dot-dot-under-a-file", "dangling-link"],
)
def test_check_directory_target_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make: object, path: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    make(tmp_path)  # type: ignore[operator]
    with pytest.raises(NeuralStyleError, match=message.replace(".", r"\.")) as info:
        check_directory_target(path, "flag")
    assert info.value.usage


@pytest.mark.slow
def test_check_directory_target_refuses_what_cannot_be_written(read_only_dir: Path) -> None:
    with pytest.raises(NeuralStyleError, match=f"--flag {read_only_dir} is not writable; choose another location"):
        check_directory_target(str(read_only_dir), "flag")
    with pytest.raises(NeuralStyleError, match=f"cannot be created: {read_only_dir} is not writable"):
        check_directory_target(str(read_only_dir / "a" / "b"), "flag")
    with pytest.raises(NeuralStyleError, match=r"^DIRECTORY .* is not writable"):
        check_directory_target(str(read_only_dir), "", what="DIRECTORY")
