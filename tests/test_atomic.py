"""Tests of writing files atomically (neural_style.atomic): the target replaced in one rename or left as it was,
no temporary file left behind, the permissions of a new or replaced file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from neural_style.atomic import AtomicFile, atomic_file, atomic_write
from neural_style.errors import NeuralStyleError


def test_atomic_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "progress.txt"
    target.write_bytes(b"old")
    atomic_write(target, b"new")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["progress.txt"]


def test_atomic_write_cleans_up_on_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A KeyboardInterrupt during the write leaves no temporary file and propagates unchanged."""

    def interrupt(src: object, dst: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "progress.txt", b"data")
    assert list(tmp_path.iterdir()) == []


def test_a_writer_that_fails_leaves_the_old_file(tmp_path: Path) -> None:
    """A writer given the temporary path (as a video encoder or keras is) fails half-way: the old file stays, the
    temporary file goes, an OSError becomes one NeuralStyleError naming the target (not a usage error)."""
    target = tmp_path / "model.keras"
    target.write_bytes(b"old model")
    with pytest.raises(NeuralStyleError) as info, atomic_file(target, suffix=".keras") as tmp:
        assert tmp.endswith(".keras") and os.path.dirname(tmp) == str(tmp_path)
        Path(tmp).write_bytes(b"half")
        raise OSError(28, "No space left on device")
    assert str(info.value) == f"could not write {target}: No space left on device" and info.value.usage is False
    assert target.read_bytes() == b"old model" and sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_a_file_written_over_time_appears_on_commit(tmp_path: Path) -> None:
    """AtomicFile: the target does not exist until commit; discard after commit removes nothing."""
    target = tmp_path / "clip.mp4"
    pending = AtomicFile(target, suffix=".mp4")
    Path(pending.tmp).write_bytes(b"frames")
    assert not target.exists()
    pending.commit()
    pending.discard()
    assert target.read_bytes() == b"frames" and sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_permissions_of_new_and_replaced_files(tmp_path: Path) -> None:
    """A new file gets 0666 minus the umask (not mkstemp's 0600); a replaced one keeps its own."""
    umask = os.umask(0o027)
    try:
        atomic_write(tmp_path / "new.txt", b"x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640
    (tmp_path / "old.txt").write_bytes(b"x")
    os.chmod(tmp_path / "old.txt", 0o604)
    atomic_write(tmp_path / "old.txt", b"y")
    assert stat.S_IMODE((tmp_path / "old.txt").stat().st_mode) == 0o604


def test_a_directory_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing" / "out.txt"
    with pytest.raises(NeuralStyleError, match=f"could not write {missing}: No such file or directory"):
        atomic_write(missing, b"x")
