"""The commands: the only place with flags, printing and file writing.

Each command lives in its own module, which defines its flags on a fresh ``absl.flags.FlagValues`` in
``flag_values()`` and runs in ``main(argv=None)`` (the console script):

* ``neural-style``: :mod:`neural_style.cli.stylize` (its blend sweeps in :mod:`neural_style.cli.sweep`);
* ``neural-style-train``: :mod:`neural_style.cli.train`;
* ``neural-style-apply``: :mod:`neural_style.cli.apply`;
* ``neural-style-export``: :mod:`neural_style.cli.export`;
* ``neural-style-classify``: :mod:`neural_style.cli.classify`;
* ``neural-style-score``: :mod:`neural_style.cli.score`;
* ``neural-style-download``: :mod:`neural_style.cli.download`.

What every command does the same way (help, errors, exit statuses, Ctrl-C) is in :mod:`neural_style.cli.command`;
progress lines, loss histories, TensorBoard records and contact sheets in :mod:`neural_style.cli.report`. Importing
this package runs nothing and imports no command.
"""
