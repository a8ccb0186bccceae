"""The exceptions a user of the library or the commands can cause."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

__all__ = ["NeuralStyleError", "NonFiniteLossError"]


class NeuralStyleError(Exception):
    """A problem with the user's inputs or settings, described in one line.

    The message names the file or setting at fault and what to do about it. The commands print it on one stderr
    line and exit with status 2 when ``usage`` is true (bad input or flag), 1 otherwise (the run itself failed).

    A message about one setting is given as ``setting`` (its Python name, e.g. ``"iterations"``) and ``detail``
    (the rest of the sentence): ``str(error)`` is ``"iterations is 0; it must be at least 1"``, and a command
    names its own flag instead (``"--iterations is 0; ..."``).

    Attributes:
        usage: whether the input was at fault (rather than the run).
        setting: the setting the message is about, or None.
        detail: the message without the setting's name.
    """

    def __init__(self, message: str, *, usage: bool = True, setting: str | None = None) -> None:
        super().__init__(message if setting is None else f"{setting} {message}")
        self.usage = usage
        self.setting = setting
        self.detail = message


class NonFiniteLossError(NeuralStyleError):
    """The loss became NaN or infinite; ``best`` holds the best images seen before, or None."""

    def __init__(self, message: str, best: np.ndarray | None) -> None:
        super().__init__(message, usage=False)
        self.best = best
