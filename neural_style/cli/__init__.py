"""The commands: the only place with flags, printing and file writing.

Each command lives in its own module, which defines its flags on a fresh ``absl.flags.FlagValues`` in
``flag_values()`` and runs in ``main(argv=None)`` (the console script):

* ``neural-style``: :mod:`neural_style.cli.stylize` (its blend sweeps in :mod:`neural_style.cli.sweep`);
* ``neural-style-train``: :mod:`neural_style.cli.train`;
* ``neural-style-apply``: :mod:`neural_style.cli.apply`;
* ``neural-style-export``: :mod:`neural_style.cli.export`;
* ``neural-style-classify``: :mod:`neural_style.cli.classify`;
* ``neural-style-score``: :mod:`neural_style.cli.score`;
* ``neural-style-download``: :mod:`neural_style.cli.download`;
* ``neural-style-serve``: :mod:`neural_style.serve.command` (the studio, with the ``serve`` extra).

What every command does the same way (help, errors, exit statuses, Ctrl-C) is in :mod:`neural_style.cli.command`;
progress lines, loss histories, TensorBoard records and contact sheets in :mod:`neural_style.cli.report`. Importing
this package runs nothing and imports no command: the functions below, the console scripts, import theirs when
called and run it as the whole process (:func:`neural_style.cli.command.run_process`).
"""

from __future__ import annotations

import importlib
from typing import NoReturn

# The module of each command (the console scripts below run their ``main``).
MODULES = {
    "neural-style": "neural_style.cli.stylize",
    "neural-style-train": "neural_style.cli.train",
    "neural-style-apply": "neural_style.cli.apply",
    "neural-style-export": "neural_style.cli.export",
    "neural-style-classify": "neural_style.cli.classify",
    "neural-style-score": "neural_style.cli.score",
    "neural-style-download": "neural_style.cli.download",
    "neural-style-serve": "neural_style.serve.command",
}


def _run(command: str) -> NoReturn:
    from neural_style.cli.command import run_process

    run_process(importlib.import_module(MODULES[command]).main)


def neural_style() -> NoReturn:
    """``neural-style``."""
    _run("neural-style")


def neural_style_train() -> NoReturn:
    """``neural-style-train``."""
    _run("neural-style-train")


def neural_style_apply() -> NoReturn:
    """``neural-style-apply``."""
    _run("neural-style-apply")


def neural_style_export() -> NoReturn:
    """``neural-style-export``."""
    _run("neural-style-export")


def neural_style_classify() -> NoReturn:
    """``neural-style-classify``."""
    _run("neural-style-classify")


def neural_style_score() -> NoReturn:
    """``neural-style-score``."""
    _run("neural-style-score")


def neural_style_download() -> NoReturn:
    """``neural-style-download``."""
    _run("neural-style-download")


def neural_style_serve() -> NoReturn:
    """``neural-style-serve``."""
    _run("neural-style-serve")
