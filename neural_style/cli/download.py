"""The ``neural-style-download [DIRECTORY]`` command: fetches the VGG-19 network file and verifies its MD5.

The directory is checked before any network access (a file, or a place that cannot be written, is one line on stderr
and exit status 2); a failed download exits 1 and leaves neither a partial file nor a directory it created.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import flags

from neural_style import weights as weights_lib
from neural_style.cli.command import Command, check_directory_target, start_tensorflow
from neural_style.errors import NeuralStyleError

__all__ = ["flag_values", "main"]

_USAGE = f"""Usage: neural-style-download [DIRECTORY]

Downloads {weights_lib.FILENAME} (about 510 MB) from {weights_lib.URL},
verifies its MD5 and prints its path. DIRECTORY (created with its parents when missing) defaults to the
Keras cache (~/.keras/models); 'weights' puts it where --network looks by default.
"""


def flag_values() -> flags.FlagValues:
    """The flags of ``neural-style-download``: none (the directory is an argument)."""
    return flags.FlagValues()


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``neural-style-download [DIRECTORY]``: fetch and verify the VGG-19 file."""
    Command("neural-style-download", flag_values(), _USAGE, __name__).run(argv, _download, positional=True)


def _download(arguments: list[str]) -> None:
    if len(arguments) > 1:
        raise NeuralStyleError("give at most one DIRECTORY (see --help)")
    directory = arguments[0] if arguments else None
    if directory is None:
        check_directory_target(str(weights_lib.keras_cache_dir()), "", what="the Keras cache directory")
    else:
        check_directory_target(directory, "", what="DIRECTORY")
    start_tensorflow()  # the download uses Keras; its start-up log is held back
    path = weights_lib.download(directory)
    print(f"{path} (MD5 {weights_lib.MD5} verified)")
