"""Tests of finding the network file (neural_style.weights.find_network) and of its download failing offline."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import temp_files

from neural_style import weights
from neural_style.errors import NeuralStyleError


def test_download_offline_names_url_and_network_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A download that cannot connect raises NeuralStyleError naming the URL and --network, leaving no file."""
    url = "http://127.0.0.1:9/none.mat"
    monkeypatch.setattr(weights, "URL", url)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    target = tmp_path / "target"
    with pytest.raises(NeuralStyleError) as info:
        weights.download(target)
    message = str(info.value)
    assert url in message
    assert "--network" in message
    assert info.value.usage is False
    assert not (target / weights.FILENAME).exists()
    assert temp_files(tmp_path) == []


@pytest.fixture
def search_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """An empty working directory and empty $NEURAL_STYLE_WEIGHTS and $KERAS_HOME directories."""
    cwd, env_dir, keras_home = tmp_path / "cwd", tmp_path / "weights-env", tmp_path / "keras-home"
    for directory in (cwd, env_dir, keras_home):
        directory.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("NEURAL_STYLE_WEIGHTS", str(env_dir))
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    return env_dir, keras_home


def test_find_network_nothing_found(search_env: tuple[Path, Path]) -> None:
    """With no network anywhere, the error names the file and neural-style-download."""
    with pytest.raises(NeuralStyleError) as info:
        weights.find_network(None)
    message = str(info.value)
    assert weights.FILENAME in message
    assert "neural-style-download" in message
    assert "--network" in message


def test_find_network_in_env_directory(search_env: tuple[Path, Path]) -> None:
    """$NEURAL_STYLE_WEIGHTS naming a directory: the file in it is found."""
    env_dir, _ = search_env
    (env_dir / weights.FILENAME).write_bytes(b"x")
    assert Path(weights.find_network(None)) == env_dir / weights.FILENAME


def test_find_network_env_file(search_env: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$NEURAL_STYLE_WEIGHTS naming a file (of any name): that file is used."""
    path = tmp_path / "my-vgg.mat"
    path.write_bytes(b"x")
    monkeypatch.setenv("NEURAL_STYLE_WEIGHTS", str(path))
    assert Path(weights.find_network(None)) == path


def test_find_network_in_keras_cache(search_env: tuple[Path, Path]) -> None:
    """A file in $KERAS_HOME/models is found."""
    _, keras_home = search_env
    (keras_home / "models").mkdir()
    (keras_home / "models" / weights.FILENAME).write_bytes(b"x")
    assert Path(weights.find_network(None)) == keras_home / "models" / weights.FILENAME


def test_find_network_prefers_local_weights_directory(search_env: tuple[Path, Path]) -> None:
    """weights/ in the working directory comes before $NEURAL_STYLE_WEIGHTS and the Keras cache."""
    env_dir, _ = search_env
    (env_dir / weights.FILENAME).write_bytes(b"x")
    Path("weights").mkdir()
    Path(weights.DEFAULT_NETWORK).write_bytes(b"x")
    assert weights.find_network(None) == weights.DEFAULT_NETWORK


def test_find_network_explicit_path_is_used_as_is(search_env: tuple[Path, Path]) -> None:
    """A --network path is returned unchanged, even when it does not exist (the loader reports that)."""
    assert weights.find_network("somewhere/else.mat") == "somewhere/else.mat"
