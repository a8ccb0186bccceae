"""Finding, downloading and verifying the VGG-19 network file."""

from __future__ import annotations

import os
from pathlib import Path

from neural_style.errors import NeuralStyleError

__all__ = [
    "DEFAULT_NETWORK",
    "FILENAME",
    "MD5",
    "URL",
    "candidate_paths",
    "download",
    "find_network",
    "keras_cache_dir",
]

FILENAME = "imagenet-vgg-verydeep-19.mat"
URL = f"https://www.vlfeat.org/matconvnet/models/{FILENAME}"
MD5 = "106118b7cf60435e6d8e04f6a6dc3657"
DEFAULT_NETWORK = os.path.join("weights", FILENAME)


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded models: ``$KERAS_HOME/models``, by default ``~/.keras/models``."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def candidate_paths() -> list[Path]:
    """The places searched for the default network, in order."""
    paths = [Path(DEFAULT_NETWORK)]
    env = os.environ.get("NEURAL_STYLE_WEIGHTS")
    if env:
        paths.append(Path(env) / FILENAME if os.path.isdir(env) else Path(env))
    paths.append(keras_cache_dir() / FILENAME)
    return paths


def find_network(path: str | None) -> str:
    """The network file to use.

    Args:
        path: a file the user named, used as is; None searches ``weights/``, ``$NEURAL_STYLE_WEIGHTS`` (a file or a
            directory) and the Keras cache directory.

    Raises:
        NeuralStyleError: nothing found; the message says how to download the file or pass ``--network``.
    """
    if path is not None:
        return path
    for candidate in candidate_paths():
        if candidate.is_file():
            return str(candidate)
    searched = ", ".join(str(p) for p in candidate_paths())
    raise NeuralStyleError(
        f"network file {FILENAME} not found (looked in {searched}); run neural-style-download to fetch it from "
        f"{URL}, or pass --network FILE"
    )


def _missing_directories(target: Path) -> list[Path]:
    """The directories of ``target`` that do not exist, outermost first."""
    missing = []
    while not target.exists() and target != target.parent:
        missing.append(target)
        target = target.parent
    return missing[::-1]


def _remove_created(created: list[Path], file: Path | None) -> None:
    """After a failed download: removes ``file`` (when given) and the directories in ``created`` that are empty."""
    if file is not None:
        file.unlink(missing_ok=True)
    for directory in reversed(created):
        try:
            directory.rmdir()
        except OSError:
            return


def download(directory: str | os.PathLike[str] | None = None) -> str:
    """Downloads the current ``imagenet-vgg-verydeep-19.mat`` (about 510 MB) and verifies its MD5.

    A file already there with the right MD5 is not downloaded again. A failed download leaves nothing behind: no
    partial or unverified file, and none of the directories it created.

    Args:
        directory: where to put it (created with its parents when missing); None: the Keras cache directory.

    Returns:
        The path of the verified file.

    Raises:
        NeuralStyleError: the directory cannot be created or written (``usage``), or the download failed (e.g.
            offline) or the MD5 did not match.
    """
    import keras  # imported here: only downloads need it

    target = Path(directory) if directory is not None else keras_cache_dir()
    created = _missing_directories(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _remove_created(created, None)
        raise NeuralStyleError(
            f"cannot create the directory {target} ({e.strerror or e}); choose another directory"
        ) from None
    if not os.access(target, os.W_OK | os.X_OK):
        raise NeuralStyleError(f"the directory {target} is not writable; choose another directory")
    file = target / FILENAME
    ours = None if file.exists() else file  # a file there before the download is not this download's to remove
    try:
        return str(
            keras.utils.get_file(
                FILENAME, URL, file_hash=MD5, hash_algorithm="md5", cache_dir=str(target), cache_subdir=""
            )
        )
    except BaseException as e:
        _remove_created(created, ours)
        if not isinstance(e, Exception):
            raise
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise NeuralStyleError(
            f"could not download {FILENAME} from {URL} to {target} ({detail}); download it by hand "
            f"(MD5 {MD5}) and pass --network FILE",
            usage=False,
        ) from None
