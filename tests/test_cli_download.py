"""Tests of ``neural-style-download [DIRECTORY]`` (neural_style.cli.download) without the internet.

The command runs in a subprocess whose sockets are disabled: each attempt to resolve or connect is recorded in a
marker file and fails, so a download always fails (exit 1) and a test can tell whether the command tried the network
at all. A directory the command cannot use (a file, a path under a file, a place that is not writable) is refused with
one stderr line and exit status 2 before any network access and before TensorFlow is imported; a failed download
leaves no directory it created.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import IMPORTS_MARKER, probe_env, read_only_directory

from neural_style import weights

PROG = "neural-style-download: error: "
NETWORK_MARKER = "network.txt"

# Disables the network (recording each attempt), then runs the command.
_RUNNER = textwrap.dedent(
    """
    import os, socket, sys

    def _refuse(*args, **kwargs):
        with open(os.environ["NETWORK_MARKER"], "a") as f:
            f.write("attempt\\n")
        raise OSError("network disabled by the test")

    socket.getaddrinfo = _refuse
    socket.socket.connect = _refuse
    from neural_style.cli.download import main

    main()
    """
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """``tmp_path`` with ``work`` (the working directory), ``home`` and ``tmp``."""
    for name in ("work", "home", "tmp"):
        (tmp_path / name).mkdir()
    return tmp_path


def download(root: Path, import_probe: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], bool, bool]:
    """Runs the command in ``root/work``; returns its result, whether it tried the network and imported TensorFlow."""
    env = {k: v for k, v in os.environ.items() if k not in ("NEURAL_STYLE_WEIGHTS", "KERAS_HOME", "XDG_CACHE_HOME")}
    env.update(HOME=str(root / "home"), TMPDIR=str(root / "tmp"), NETWORK_MARKER=str(root / NETWORK_MARKER))
    env = probe_env(env, import_probe, root / IMPORTS_MARKER)
    for marker in (NETWORK_MARKER, IMPORTS_MARKER):
        (root / marker).unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, *args], cwd=root / "work", env=env, capture_output=True, text=True, timeout=300
    )
    tensorflow = "tensorflow" in (root / IMPORTS_MARKER).read_text()
    return result, (root / NETWORK_MARKER).exists(), tensorflow


def tree(directory: Path) -> set[str]:
    return {str(p.relative_to(directory)) for p in directory.rglob("*")}


def one_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    """The one stderr line of a command that exited with ``status``, without the program's prefix."""
    assert result.returncode == status, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(PROG)
    return lines[0][len(PROG) :]


@pytest.fixture
def read_only(root: Path) -> Iterator[Path]:
    """A directory nobody may write in (see conftest.read_only_directory)."""
    with read_only_directory(root / "work" / "ro") as target:
        yield target


# ------------------------------------------------------------------------------------- refused before the network


@pytest.mark.slow
@pytest.mark.parametrize(
    ("make", "directory", "expected"),
    [
        (lambda w: (w / "weights").write_text("x"), "weights", "DIRECTORY weights is a file; give a directory"),
        (
            lambda w: (w / "weights").write_text("x"),
            "weights/vgg/files",
            "DIRECTORY weights/vgg/files cannot be created: weights is a file; choose another location",
        ),
    ],
    ids=["file", "under-a-file"],
)
def test_directory_that_is_a_file_is_refused_before_the_network(
    root: Path, import_probe: Path, make: object, directory: str, expected: str
) -> None:
    make(root / "work")  # type: ignore[operator]
    before = tree(root / "work")
    result, network, tensorflow = download(root, import_probe, directory)
    assert one_error(result, 2) == expected
    assert not network and not tensorflow
    assert tree(root / "work") == before


@pytest.mark.slow
@pytest.mark.parametrize("below", ["", "new/deeper"], ids=["directory", "missing-under-it"])
def test_directory_that_cannot_be_written_is_refused_before_the_network(
    root: Path, import_probe: Path, read_only: Path, below: str
) -> None:
    directory = os.path.join("ro", below) if below else "ro"
    result, network, tensorflow = download(root, import_probe, directory)
    message = one_error(result, 2)
    assert message.startswith(f"DIRECTORY {directory}")
    assert "ro is not writable; choose another location" in message
    assert not network and not tensorflow


@pytest.mark.slow
def test_keras_cache_that_is_a_file_is_refused_before_the_network(root: Path, import_probe: Path) -> None:
    """Without DIRECTORY the file goes to ~/.keras/models; a file there is named as the Keras cache directory."""
    (root / "home" / ".keras").mkdir()
    (root / "home" / ".keras" / "models").write_text("x")
    result, network, tensorflow = download(root, import_probe)
    message = one_error(result, 2)
    assert message == f"the Keras cache directory {root / 'home' / '.keras' / 'models'} is a file; give a directory"
    assert not network and not tensorflow


@pytest.mark.slow
def test_more_than_one_directory_is_refused(root: Path, import_probe: Path) -> None:
    result, network, _ = download(root, import_probe, "a", "b")
    assert one_error(result, 2) == "give at most one DIRECTORY (see --help)"
    assert not network and tree(root / "work") == set()


# ------------------------------------------------------------------------------------------------ failed downloads


@pytest.mark.slow
def test_failed_download_removes_the_directories_it_created(root: Path, import_probe: Path) -> None:
    result, network, _ = download(root, import_probe, "weights/vgg/files")
    message = one_error(result, 1)
    assert network
    assert message.startswith(f"could not download {weights.FILENAME} from {weights.URL} to weights/vgg/files")
    assert "network disabled by the test" in message and "--network FILE" in message
    assert tree(root / "work") == set()


@pytest.mark.slow
def test_failed_download_keeps_a_directory_that_was_there(root: Path, import_probe: Path) -> None:
    (root / "work" / "weights" / "vgg").mkdir(parents=True)
    (root / "work" / "weights" / "README.md").write_text("kept")
    result, network, _ = download(root, import_probe, "weights/vgg/files")
    one_error(result, 1)
    assert network
    assert tree(root / "work") == {"weights", "weights/vgg", "weights/README.md"}


@pytest.mark.slow
def test_failed_download_into_the_keras_cache_leaves_no_models_directory(root: Path, import_probe: Path) -> None:
    result, network, _ = download(root, import_probe)
    assert f"to {root / 'home' / '.keras' / 'models'} (" in one_error(result, 1)
    assert network
    assert not (root / "home" / ".keras" / "models").exists()
    assert tree(root / "work") == set()
