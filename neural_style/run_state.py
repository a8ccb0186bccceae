"""Resumable runs: a ``tf.train.Checkpoint`` of a run's objects and the settings they belong to.

Every resumable command (``neural-style``, ``neural-style-train``) keeps its state in one :class:`RunState`: the
objects (a stylization's images, optimiser moments and best images; a trainer's model, optimiser and step) are saved
by a ``tf.train.CheckpointManager`` together with a fingerprint of the settings, and a restore refuses a state made
with other settings, naming the first that differs. Saving errors become one :class:`NeuralStyleError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from neural_style.errors import NeuralStyleError

__all__ = ["RunState", "file_sha256", "saved_form"]

_SETTINGS_KEY = "settings/.ATTRIBUTES/VARIABLE_VALUE"


def saved_form(settings: Mapping[str, object]) -> dict[str, object]:
    """``settings`` as a saved state gives them back (a JSON round trip: tuples become lists, keys sorted), so that a
    fingerprint compares equal to the one it was saved as."""
    return json.loads(json.dumps(dict(settings), sort_keys=True))


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's bytes, hex: a setting that says "this very image" whatever its path."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class RunState:
    """The saved state of a run in ``directory``: its objects and a fingerprint of its settings.

    Args:
        directory: where the checkpoints are kept.
        objects: ``{name: trackable}`` (variables, ``tf.Module``, ``tf.train.Checkpoint``, Keras objects).
        settings: JSON-serialisable settings that a restored state must share with this run; None: no check.
        max_to_keep: checkpoints kept; 2 or more means the previous one survives until the new one is complete.
        checkpoint_name: the file name prefix of the checkpoints.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        objects: Mapping[str, Any],
        settings: Mapping[str, object] | None = None,
        *,
        max_to_keep: int = 2,
        checkpoint_name: str = "state",
    ) -> None:
        self.directory = os.fspath(directory)
        self.settings = None if settings is None else saved_form(settings)
        tracked = dict(objects)
        if self.settings is not None:
            tracked["settings"] = tf.Variable(json.dumps(self.settings, sort_keys=True), name="settings")
        self._checkpoint = tf.train.Checkpoint(**tracked)
        self._manager = tf.train.CheckpointManager(
            self._checkpoint, self.directory, max_to_keep=max_to_keep, checkpoint_name=checkpoint_name
        )

    @property
    def latest(self) -> str | None:
        """The path prefix of the newest saved state, or None."""
        return self._manager.latest_checkpoint

    def exists(self) -> bool:
        """Whether a state has been saved in the directory."""
        return self.latest is not None

    def save(self, number: int | None = None) -> None:
        """Saves the objects (as checkpoint ``number`` when given, else the next one).

        Raises:
            NeuralStyleError: the directory cannot be written (not a usage error).
        """
        try:
            self._manager.save(checkpoint_number=number)
        except (OSError, tf.errors.OpError) as e:
            detail = getattr(e, "strerror", None) or getattr(e, "message", None) or e
            raise NeuralStyleError(
                f"could not save the run's state in {self.directory}: {detail}", usage=False
            ) from None

    def restore(self) -> str | None:
        """Restores the newest saved state into the objects.

        Returns:
            The path prefix restored, or None when nothing was saved.

        Raises:
            NeuralStyleError: the state was saved with other settings (the message names the first that differs
                and both values), or its objects do not match these (e.g. another network size).
        """
        path = self.latest
        if path is None:
            return None
        if self.settings is not None:
            try:
                saved = json.loads(tf.train.load_variable(path, _SETTINGS_KEY).decode())
            except (tf.errors.OpError, ValueError, json.JSONDecodeError):
                saved = {}
            for key in sorted(set(saved) | set(self.settings)):
                if saved.get(key) != self.settings.get(key):
                    raise NeuralStyleError(
                        f"the state in {self.directory} was saved with {key} {saved.get(key)!r} and this run has "
                        f"{self.settings.get(key)!r}; use the same settings or start afresh"
                    )
        try:
            self._checkpoint.restore(path).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as e:
            tf.get_logger().setLevel("ERROR")  # else TensorFlow lists the unrestored values when the process exits
            detail = " ".join(str(e).split())[:160]
            raise NeuralStyleError(f"the state {path} does not match this run ({detail})") from None
        return path

    def remove(self) -> None:
        """Deletes the directory: a finished run leaves nothing to resume."""
        if os.path.isdir(self.directory):
            shutil.rmtree(self.directory, ignore_errors=True)
