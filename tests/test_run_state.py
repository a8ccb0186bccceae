"""RunState: checkpoints of a run's objects with a settings fingerprint, restored only into the same settings."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from neural_style.errors import NeuralStyleError
from neural_style.run_state import RunState, file_sha256

SETTINGS = {"--content": "abc", "--style_weight": 500.0, "--blend": (0.5, 0.5)}


def _state(directory: Path, value: float = 0.0, settings=SETTINGS, **kwargs) -> tuple[RunState, tf.Variable]:
    variable = tf.Variable(np.full(3, value, np.float32))
    return RunState(directory, {"x": variable}, settings, **kwargs), variable


def test_nothing_saved_restores_nothing(tmp_path: Path) -> None:
    state, variable = _state(tmp_path / "run.state", 7.0)
    assert not state.exists() and state.latest is None
    assert state.restore() is None
    np.testing.assert_array_equal(variable.numpy(), [7.0, 7.0, 7.0])


def test_a_new_object_restores_the_saved_values(tmp_path: Path) -> None:
    directory = tmp_path / "run.state"
    saved, variable = _state(directory)
    variable.assign([1.0, 2.0, 3.0])
    saved.save()
    assert saved.exists()
    variable.assign([9.0, 9.0, 9.0])  # changed after the save: not what a restore brings back

    fresh, other = _state(directory)
    path = fresh.restore()
    assert path == saved.latest
    np.testing.assert_array_equal(other.numpy(), [1.0, 2.0, 3.0])


def test_the_newest_of_several_states_is_restored_and_two_are_kept(tmp_path: Path) -> None:
    directory = tmp_path / "run.state"
    state, variable = _state(directory)
    for value in (1.0, 2.0, 3.0):
        variable.assign([value] * 3)
        state.save()
    assert len(list(directory.glob("state-*.index"))) == 2  # max_to_keep=2: the previous survives the newest
    fresh, other = _state(directory)
    fresh.restore()
    np.testing.assert_array_equal(other.numpy(), [3.0, 3.0, 3.0])


def test_numbered_checkpoints_and_a_prefix(tmp_path: Path) -> None:
    state, _ = _state(tmp_path / "ckpts", settings=None, checkpoint_name="ckpt", max_to_keep=3)
    state.save(40)
    assert state.latest == str(tmp_path / "ckpts" / "ckpt-40")


def test_other_settings_are_refused_naming_the_setting_and_both_values(tmp_path: Path) -> None:
    directory = tmp_path / "run.state"
    state, _ = _state(directory)
    state.save()
    changed = {**SETTINGS, "--style_weight": 100.0}
    fresh, variable = _state(directory, 5.0, settings=changed)
    with pytest.raises(NeuralStyleError, match=r"--style_weight 500\.0 and this run has 100\.0"):
        fresh.restore()
    np.testing.assert_array_equal(variable.numpy(), [5.0, 5.0, 5.0])  # nothing was restored


def test_a_setting_only_one_side_has_is_a_difference(tmp_path: Path) -> None:
    directory = tmp_path / "run.state"
    _state(directory)[0].save()
    fresh, _ = _state(directory, settings={**SETTINGS, "--new": 1})
    with pytest.raises(NeuralStyleError, match="--new None and this run has 1"):
        fresh.restore()


def test_tuples_and_lists_are_the_same_setting(tmp_path: Path) -> None:
    """Settings come back from JSON with lists for tuples; that is not a difference."""
    directory = tmp_path / "run.state"
    _state(directory)[0].save()
    fresh, _ = _state(directory, settings={**SETTINGS, "--blend": [0.5, 0.5]})
    assert fresh.restore() is not None


def test_objects_of_another_shape_are_refused(tmp_path: Path) -> None:
    directory = tmp_path / "run.state"
    _state(directory, settings=None)[0].save()
    other = RunState(directory, {"x": tf.Variable(np.zeros(4, np.float32))})
    with pytest.raises(NeuralStyleError, match="does not match this run"):
        other.restore()


def test_a_save_that_cannot_be_written_is_one_runtime_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    state, _ = _state(blocker / "run.state")
    with pytest.raises(NeuralStyleError, match="could not save the run's state in") as info:
        state.save()
    assert not info.value.usage


def test_remove_deletes_the_directory(tmp_path: Path) -> None:
    directory = tmp_path / "run.state"
    state, _ = _state(directory)
    state.save()
    state.remove()
    assert not directory.exists()
    state.remove()  # nothing left: not an error


def test_file_sha256_is_the_digest_of_the_bytes(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    data = bytes(range(256)) * 5000  # more than one read block
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
