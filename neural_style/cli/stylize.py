"""The ``neural-style`` command: its flags (:mod:`neural_style.cli.options`) and its run
(:func:`neural_style.cli.run.stylize`: one output image, a sweep or a video)."""

from __future__ import annotations

from collections.abc import Sequence

from absl import flags

from neural_style.cli.command import Command
from neural_style.cli.options import SETTING_FLAGS, define_style_flags
from neural_style.cli.run import stylize

__all__ = ["flag_values", "main"]

_USAGE = """Usage: neural-style --content IMAGE --styles STYLE[,STYLE...] --output FILE [flags]

Blends the style of one or more images into a content image (Gatys et al.), as neural-style does.
"""


def flag_values() -> flags.FlagValues:
    """The flags of ``neural-style``, sweep and video flags included, on a fresh FlagValues."""
    fv = flags.FlagValues()
    define_style_flags(fv, __name__)
    return fv


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``neural-style``: exits 2 on bad input, 1 when the run fails, 130 on Ctrl-C."""
    fv = flag_values()
    command = Command("neural-style", fv, _USAGE, __name__, setting_flags=SETTING_FLAGS)
    command.run(argv, lambda _: stylize(fv))
