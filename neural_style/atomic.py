"""Writing files atomically: a temporary file beside the target, renamed over it once it is complete.

A crash, a full disk or Ctrl-C while writing leaves the old file (or none) and no temporary file behind; a reader
never sees half a file. Every file the package writes (images, videos, models, the loss history, JSON reports, the
network cache) goes through :class:`AtomicFile`, directly or through :func:`atomic_file` / :func:`atomic_write`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator

from neural_style.errors import NeuralStyleError

__all__ = ["AtomicFile", "atomic_file", "atomic_write", "new_file_mode", "umask_mode"]


def umask_mode(mode: int) -> int:
    """``mode`` less the process's umask: what an ordinary new file (0o666) or directory (0o777) gets."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def new_file_mode(path: str | os.PathLike[str]) -> int:
    """An existing file keeps its permissions; a new one gets what the umask allows (mkstemp would give 0600)."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return umask_mode(0o666)


def _write_error(path: str, error: OSError) -> NeuralStyleError:
    return NeuralStyleError(f"could not write {path}: {error.strerror or error}", usage=False)


class AtomicFile:
    """An empty temporary file beside ``path`` (``tmp``) that :meth:`commit` renames over ``path``.

    For writers that need a file name of their own (a video encoder, ``keras.Model.save``) and write it over time;
    :meth:`discard` removes the temporary file when the write is abandoned.

    Args:
        path: the file to write.
        suffix: the temporary file's extension, for writers that choose the format by it.

    Raises:
        NeuralStyleError: the temporary file cannot be created (not a usage error).
    """

    def __init__(self, path: str | os.PathLike[str], *, suffix: str = "") -> None:
        self.path = os.fspath(path)
        self.mode = new_file_mode(self.path)
        try:
            directory = os.path.dirname(os.path.abspath(self.path))
            fd, self.tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
        except OSError as e:
            raise _write_error(self.path, e) from None
        os.close(fd)

    def commit(self) -> None:
        """Gives the written file the target's permissions and renames it over ``path``.

        Raises:
            OSError: the rename failed; call :meth:`discard` (``path`` is unchanged).
        """
        os.chmod(self.tmp, self.mode)
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        """Removes the temporary file, if it is still there."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, suffix: str = "") -> Iterator[str]:
    """The path of a temporary file to write in the block; it replaces ``path`` when the block ends normally.

    Raises:
        NeuralStyleError: the file system refused the write (``path`` is then unchanged, the temporary file gone).
    """
    target = AtomicFile(path, suffix=suffix)
    try:
        yield target.tmp
        target.commit()
    except OSError as e:
        target.discard()
        raise _write_error(target.path, e) from None
    except BaseException:
        target.discard()
        raise


def atomic_write(path: str | os.PathLike[str], data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically, flushed to the disk before the rename.

    Raises:
        NeuralStyleError: the file system refused the write; ``path`` is then unchanged.
    """
    with atomic_file(path) as tmp, os.fdopen(os.open(tmp, os.O_WRONLY), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
