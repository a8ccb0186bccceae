"""The commands: the only place with flags, printing and file writing.

Each command lives in its own module, which defines its flags on a fresh ``absl.flags.FlagValues`` in
``flag_values()`` and runs in ``main(argv=None)`` (the console script):

* ``neural-style``: :mod:`neural_style.cli.stylize` (its run in :mod:`neural_style.cli.run`, blend sweeps in
  :mod:`neural_style.cli.sweep`, videos in :mod:`neural_style.cli.video`);
* ``neural-style-train``: :mod:`neural_style.cli.train`;
* ``neural-style-apply``: :mod:`neural_style.cli.apply`;
* ``neural-style-export``: :mod:`neural_style.cli.export`;
* ``neural-style-classify``: :mod:`neural_style.cli.classify`;
* ``neural-style-score``: :mod:`neural_style.cli.score`;
* ``neural-style-download``: :mod:`neural_style.cli.download`;
* ``neural-style-serve``: :mod:`neural_style.serve.command` (the studio, with the ``serve`` extra).

What every command does the same way (help, errors, exit statuses, Ctrl-C) is in :mod:`neural_style.cli.command`;
progress lines, loss histories, TensorBoard records and contact sheets in :mod:`neural_style.cli.report`. What the
commands share beyond that has a module named for what it holds: :mod:`~neural_style.cli.options` (neural-style's
flags and settings, the loss flags of every command), :mod:`~neural_style.cli.plan` (stages, memory guard, tiles),
:mod:`~neural_style.cli.inputs` (reading a run's inputs), :mod:`~neural_style.cli.saved_run` (resuming),
:mod:`~neural_style.cli.distribute` (several machines). No command module imports another's. Importing
this package runs nothing and imports no command: the functions below, the console scripts, import theirs when
called and run it as the whole process (:func:`neural_style.cli.command.run_process`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
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


def _entry_point(command: str) -> Callable[[], NoReturn]:
    """The console script of ``command``: imports its module when called and runs its ``main`` as the process."""

    def run() -> NoReturn:
        from neural_style.cli.command import run_process

        run_process(importlib.import_module(MODULES[command]).main)

    run.__name__ = run.__qualname__ = command.replace("-", "_")
    run.__doc__ = f"``{command}``."
    return run


neural_style = _entry_point("neural-style")
neural_style_train = _entry_point("neural-style-train")
neural_style_apply = _entry_point("neural-style-apply")
neural_style_export = _entry_point("neural-style-export")
neural_style_classify = _entry_point("neural-style-classify")
neural_style_score = _entry_point("neural-style-score")
neural_style_download = _entry_point("neural-style-download")
neural_style_serve = _entry_point("neural-style-serve")
