"""What every command does the same way: help, flag parsing, one-line errors, exit statuses, Ctrl-C / SIGTERM.

Also the input checks several commands share (a required flag, numbers in a list flag, a directory to write to,
the network file). The command modules define their flags and call :meth:`Command.run`; library modules never do.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from absl import flags
from absl import logging as absl_logging

from neural_style import weights as weights_lib
from neural_style.errors import NeuralStyleError
from neural_style.image_io import image_format

if TYPE_CHECKING:
    from neural_style.progress import Progress
    from neural_style.stylization import Stylization

__all__ = [
    "HELP_ARGS",
    "Command",
    "Interruption",
    "NETWORK_HELP",
    "RunHooks",
    "check_directory_target",
    "check_distinct",
    "check_flag_values",
    "check_target",
    "check_writable",
    "define_network",
    "flag_settings",
    "floats",
    "interruptible",
    "interrupted_by",
    "network_path",
    "require",
    "start_tensorflow",
]

# Set to 1 to see TensorFlow's own start-up log (held back by start_tensorflow otherwise).
TF_LOG_ENV = "NEURAL_STYLE_TF_LOG"

HELP_ARGS = ("-h", "-?", "--help", "--helpshort", "--helpfull")


class Command:
    """One command's name, flags and error reporting.

    Bad input (a :class:`NeuralStyleError` with ``usage``, or a flag parsing error) prints one stderr line
    ``PROG: error: ...`` and exits 2; a failed run exits 1; Ctrl-C that reaches here exits 130. A library error
    about a setting (``NeuralStyleError.setting``) is told with the command's flag for that setting.
    """

    def __init__(
        self,
        prog: str,
        flag_values: flags.FlagValues,
        usage: str,
        modules: str | Sequence[str],
        *,
        setting_flags: Mapping[str, str] | None = None,
    ) -> None:
        """Args:
        prog: the command's name, printed before its messages.
        flag_values: the command's flags.
        usage: text printed by ``--help`` above the flags.
        modules: the module(s) that defined the flags (their flags are the ones ``--help`` lists).
        setting_flags: {setting: flag name} where a flag is not named after the library setting it sets.
        """
        self.prog = prog
        self.flags = flag_values
        self.usage = usage
        self.modules = (modules,) if isinstance(modules, str) else tuple(modules)
        self.setting_flags = dict(setting_flags or {})

    def fail(self, message: str, status: int) -> NoReturn:
        """Prints ``PROG: error: message`` on one stderr line and exits with ``status``."""
        print(f"{self.prog}: error: {' '.join(str(message).split())}", file=sys.stderr)
        sys.exit(status)

    def warn(self, message: str) -> None:
        """Prints ``PROG: warning: message`` on one stderr line."""
        print(f"{self.prog}: warning: {' '.join(str(message).split())}", file=sys.stderr)

    def message(self, error: NeuralStyleError) -> str:
        """The error as the user sees it: a setting's name becomes ``--flag``."""
        setting = getattr(error, "setting", None)
        if setting is None:
            return str(error)
        return f"--{self.setting_flags.get(setting, setting)} {error.detail}"

    def run(self, argv: Sequence[str] | None, body: Callable[[list[str]], None], *, positional: bool = False) -> None:
        """Parses ``argv`` (default ``sys.argv``) and runs ``body(positional arguments)`` under the error rules.

        Args:
            argv: the command line, program name first.
            body: the command's work; receives the arguments that are not flags.
            positional: whether the command takes such arguments (otherwise any is an error).
        """
        argv = list(sys.argv if argv is None else argv)
        if any(arg in HELP_ARGS for arg in argv[1:]):
            try:
                print(self.usage)
                print("\n".join(self.flags.module_help(sys.modules[module]) for module in self.modules))
                sys.stdout.flush()
            except BrokenPipeError:  # e.g. --help | head: the reader has what it wanted
                _silence_stdout()
            sys.exit(0)
        try:
            rest = self.flags(argv)[1:]
        except flags.Error as e:
            self.fail(str(e), 2)
        if rest and not positional:
            self.fail(_unexpected(self.flags, argv, rest[0]), 2)
        try:
            check_flag_values(self.flags)
        except NeuralStyleError as e:
            self.fail(str(e), 2)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter is not for users
        absl_logging.set_verbosity(absl_logging.WARNING)  # nor are TensorFlow's INFO lines (checkpoints, assets)
        try:
            body(rest)
        except NeuralStyleError as e:
            self.fail(self.message(e), 2 if e.usage else 1)
        except KeyboardInterrupt:
            self.fail("interrupted", 130)
        except MemoryError:
            self.fail("out of memory; try smaller images (--width) or a smaller --batch_size", 1)
        except Exception as e:
            if type(e).__name__ != "ResourceExhaustedError":  # TensorFlow's out of memory, without importing it
                raise
            self.fail("out of memory; try smaller images (--width, --image_size) or a smaller --batch_size", 1)
        except BrokenPipeError:  # stdout was closed by its reader (e.g. | head): stop as a SIGPIPE would
            _silence_stdout()
            sys.exit(141)


def _unexpected(fv: flags.FlagValues, argv: Sequence[str], arg: str) -> str:
    """The message for a stray argument ``arg``: when it follows a flag that takes a value but may be given bare
    (``--preserve_colors histogram``), how to write the two as one, else that every setting is a flag."""
    index = argv.index(arg, 1)
    previous = argv[index - 1] if index > 1 else ""
    name = previous.lstrip("-")
    if (
        previous.startswith("-")
        and "=" not in previous
        and name in fv
        and not isinstance(fv[name].parser, flags.BooleanParser)
    ):
        return f"unexpected argument '{arg}' after {previous}; write {previous}={arg}"
    return f"unexpected argument '{arg}'; every setting is a --flag (see --help)"


def check_flag_values(fv: flags.FlagValues) -> None:
    """Refuses what no flag of any command may hold: NaN or an infinity in a float flag, an empty entry in a list.

    Raises:
        NeuralStyleError: naming the flag (a usage error).
    """
    for name in fv:
        flag = fv[name]
        if isinstance(flag.parser, flags.FloatParser) and flag.value is not None and not math.isfinite(flag.value):
            raise NeuralStyleError(f"--{name} is {flag.value}; give a finite number")
        if isinstance(flag.parser, flags.ListParser) and flag.value and not all(v.strip() for v in flag.value):
            given = ",".join(flag.value)
            raise NeuralStyleError(
                f"--{name} '{given}' has an empty entry; separate values by single commas, none at the end"
            )


def run_process(main: Callable[[], None]) -> NoReturn:
    """Runs a command's ``main`` as the whole process and ends it, without TensorFlow's teardown when it was loaded.

    Once TensorFlow is imported, the interpreter's own shutdown (finalising modules, TensorFlow's C++ destructors)
    takes most of a second after the work is done. Everything a command writes is complete by then (files are
    written atomically and closed, summaries flushed), so the process flushes its output, runs the ``atexit``
    handlers (e.g. a coverage tool's) and ends at once with the command's exit status. Without TensorFlow it exits
    the ordinary way. Used by the console scripts and ``python -m neural_style``; ``main(argv)`` called in a
    program of one's own returns (or raises ``SystemExit``) as usual.
    """
    try:
        main()
        status = 0
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            status = e.code or 0
        else:  # a message: Python would print it and exit 1
            print(e.code, file=sys.stderr)
            status = 1
    if "tensorflow" not in sys.modules:
        sys.exit(status)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BrokenPipeError, ValueError):  # a reader that went away, or a closed stream
            stream.flush()
    atexit._run_exitfuncs()  # noqa: SLF001 - what the interpreter would run at exit, without its teardown
    os._exit(status)


def _silence_stdout() -> None:
    """Points stdout at /dev/null, so that flushing it at exit does not raise again on a closed pipe."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


class Interruption:
    """Whether Ctrl-C or SIGTERM arrived: ``reason`` is None, ``"interrupted"`` or ``"terminated"``."""

    def __init__(self) -> None:
        self.reason: str | None = None

    def __bool__(self) -> bool:
        return self.reason is not None


class RunHooks:
    """How a program that runs a command's work in its own process (the studio's runner) follows and steers it.

    The run calls :meth:`ready` once every input is read and checked (before the first step), :meth:`record` after
    each record, saves its resumable state whenever :meth:`save_due` says so (besides its checkpoints), and stops at
    the next step boundary once :attr:`interruption` is set, as on Ctrl-C, writing what it has. No signal handler is
    installed: the program's thread may not be the main one. The base class only watches.

    :attr:`kept_run` carries a single run from one run of the program to the next: a run restarts it when it can
    (the same network object, the same settings but for iterations, stopping rules, start and reporting; see
    :meth:`neural_style.Stylization.can_restart`) instead of building the network and tracing its steps again, and
    leaves its own there when it ends.
    """

    def __init__(self, kept_run: Stylization | None = None) -> None:
        self.interruption = Interruption()
        self.kept_run = kept_run

    def ready(self) -> None:
        """Every input is read and checked; the first step comes next."""

    def record(
        self, done: int, total: int, record: Progress, run: Stylization | None, *, first: int = 0, remaining: float
    ) -> None:
        """A record of ``run``, ``done`` of ``total`` iterations into the whole run; ``first``: in a sweep, the index
        of the batch's first candidate; ``remaining``: the estimated seconds left (those of the progress line)."""

    def save_due(self) -> bool:
        """Whether a resumable run should save its state now."""
        return False


def interrupted_by(hooks: RunHooks | None) -> contextlib.AbstractContextManager[Interruption]:
    """:func:`interruptible` for a command's own process, or the ``hooks``' interruption when a program drives it."""
    return interruptible() if hooks is None else contextlib.nullcontext(hooks.interruption)


@contextlib.contextmanager
def interruptible() -> Iterator[Interruption]:
    """Turns the first SIGINT or SIGTERM into a request to stop at the next step boundary.

    The work checks the yielded :class:`Interruption` between steps, saves what it can and stops. A second signal
    raises KeyboardInterrupt at once (stop now, without saving). The previous handlers are restored on exit.
    """
    interruption = Interruption()

    def on_signal(signum: int, frame: object) -> None:
        if interruption.reason is not None:  # a second Ctrl-C: stop now, without saving
            raise KeyboardInterrupt
        interruption.reason = "interrupted" if signum == signal.SIGINT else "terminated"

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield interruption
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Captured:
    """What was written on file descriptor 2 while it was captured."""

    text = ""


@contextlib.contextmanager
def _captured_stderr() -> Iterator[_Captured]:
    """Sends file descriptor 2 (C and Python writes to stderr alike) to a temporary file for the duration."""
    captured = _Captured()
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            log.seek(0)
            captured.text = log.read().decode(errors="replace")


def start_tensorflow() -> None:
    """Imports TensorFlow and Keras and finds the devices, with TensorFlow's C++ start-up log held back.

    TensorFlow prints several lines on stderr when it starts, whatever ``TF_CPP_MIN_LOG_LEVEL`` says, among them a
    CUDA error on every machine without a GPU, which reads like a failure. They are replayed only when TensorFlow
    fails to start, or shown as they come with ``NEURAL_STYLE_TF_LOG=1``. A GPU that TensorFlow found is named in
    one line on stdout. The commands call this once, after every input has been checked.

    Raises:
        NeuralStyleError: TensorFlow could not be imported (its log is printed first).
    """
    show = os.environ.get(TF_LOG_ENV, "") not in ("", "0")
    failure: Exception | None = None
    with contextlib.nullcontext(_Captured()) if show else _captured_stderr() as log:
        try:
            import keras  # noqa: F401 - its start-up log belongs to the same capture
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
        except Exception as e:  # noqa: BLE001 - any failure to start is reported the same way
            failure = e
    if failure is not None:
        sys.stderr.write(log.text)
        raise NeuralStyleError(f"TensorFlow failed to start: {' '.join(str(failure).split())}", usage=False)
    tf.get_logger().setLevel("ERROR")  # its Python warnings (retracing, ...) are not for users either
    if gpus:
        print(f"Using {len(gpus)} GPU(s): {', '.join(gpu.name for gpu in gpus)}")


def require(fv: flags.FlagValues, name: str, what: str) -> str:
    """The value of the flag ``name``; NeuralStyleError ``--NAME is required: WHAT`` when it is not given."""
    value = fv[name].value
    if not value:
        raise NeuralStyleError(f"--{name} is required: {what}")
    return value


def flag_settings(fv: flags.FlagValues, names: Sequence[str]) -> dict[str, Any]:
    """{name: value} of the flags ``names``: the settings of a config that have a flag of their own name."""
    return {name: fv[name].value for name in names}


def floats(name: str, values: Sequence[str] | None) -> tuple[float, ...] | None:
    """The numbers of the list flag ``name`` (None when it is not given)."""
    if values is None:
        return None
    try:
        numbers = tuple(float(v) for v in values)
    except ValueError:
        raise NeuralStyleError(f"--{name} must be comma-separated numbers, got '{','.join(values)}'") from None
    if not all(math.isfinite(v) for v in numbers):
        raise NeuralStyleError(f"--{name} has {','.join(values)}; give finite numbers")
    return numbers


def _identity(path: str) -> tuple[object, ...]:
    """What makes two paths one file: device and inode when it exists (symlinks, hard links, ``./``), else the
    resolved absolute path."""
    try:
        stat = os.stat(path)
    except OSError:
        return ("path", os.path.normcase(os.path.realpath(path)))
    return ("inode", stat.st_dev, stat.st_ino)


def check_distinct(inputs: Iterable[tuple[str, str | None]], outputs: Iterable[tuple[str, str]]) -> None:
    """Refuses an output that is one of the inputs, or another output, however the paths are spelled.

    Args:
        inputs: (how to name it, e.g. "--content image"; path or None) of each file the command reads.
        outputs: (how to name it, e.g. "--output"; path) of each file it writes.

    Raises:
        NeuralStyleError: naming both and what to do.
    """
    read = {_identity(path): name for name, path in inputs if path}
    written: dict[tuple[object, ...], str] = {}
    for name, path in outputs:
        key = _identity(path)
        if key in read:
            raise NeuralStyleError(f"{name} {path} is the {read[key]}; write the result to another file")
        if key in written:
            raise NeuralStyleError(f"{name} {path} is also the {written[key]}; give them different names")
        written[key] = name


def check_writable(path: str | os.PathLike[str], *, overwrite: bool, what: str = "output") -> None:
    """Checks before any work is done that an image can be written at ``path``.

    Raises:
        NeuralStyleError: unknown extension, an existing file without ``overwrite``, a directory in the way, or a
            directory that is missing or not writable.
    """
    path = os.fspath(path)
    if os.path.isdir(path):  # before the extension, which a directory's name seldom has
        check_target(path, overwrite=overwrite, what=what)
    image_format(path)
    check_target(path, overwrite=overwrite, what=what)


def check_target(
    path: str | os.PathLike[str], *, overwrite: bool, what: str = "output", example: str = "out.png"
) -> None:
    """Checks that a file (of any kind) can be created or replaced at ``path``; ``example`` names one in errors.

    Raises:
        NeuralStyleError: an existing file without ``overwrite``, a directory in the way, or a directory that is
            missing or not writable.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise NeuralStyleError(f"{what} {path} is a directory; give a file name such as {os.path.join(path, example)}")
    if os.path.exists(path) and not overwrite:
        raise NeuralStyleError(f"{what} {path} already exists; pass --overwrite or choose another name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        ancestor = directory
        while not os.path.exists(ancestor):
            ancestor = os.path.dirname(ancestor)
        if not os.path.isdir(ancestor):
            raise NeuralStyleError(f"{what} {path}: {ancestor} is a file, not a directory; choose another location")
        raise NeuralStyleError(f"{what} directory {directory} does not exist; create it first")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise NeuralStyleError(f"{what} directory {directory} is not writable; choose another location")


def check_directory_target(path: str, flag: str, *, what: str | None = None) -> list[str]:
    """Checks that the command can write into the directory ``path``, creating nothing.

    ``path`` is a writable directory, or it is missing and its nearest existing ancestor is a writable directory (the
    command creates the missing parents too, as ``os.makedirs`` does).

    Args:
        path: the directory the command owns (writes into, creating it when missing).
        flag: the flag that names it, without ``--``.
        what: how the messages name it instead of ``--FLAG`` (e.g. ``"DIRECTORY"`` for an argument).

    Returns:
        The directories missing from ``path`` downward, outermost first (empty when ``path`` exists): those the
        command creates, and may remove again when its run fails.

    Raises:
        NeuralStyleError: ``path`` or an ancestor is a file (or a dangling link), or the directory it would be
            written or created in is not writable.
    """
    name = what or f"--{flag}"
    missing: list[str] = []
    current = path.rstrip(os.sep) or os.sep
    while not os.path.exists(current):  # walk up the path as given, as os.makedirs does
        if os.path.islink(current):
            raise NeuralStyleError(f"{name} {path}: {current} is a dangling symbolic link; remove it or choose another")
        missing.append(current)
        current = os.path.dirname(current) or os.curdir
    if not os.path.isdir(current):
        if not missing:
            raise NeuralStyleError(f"{name} {path} is a file; give a directory")
        raise NeuralStyleError(f"{name} {path} cannot be created: {current} is a file; choose another location")
    if not os.access(current, os.W_OK | os.X_OK):
        if not missing:
            raise NeuralStyleError(f"{name} {path} is not writable; choose another location")
        raise NeuralStyleError(f"{name} {path} cannot be created: {current} is not writable; choose another location")
    return missing[::-1]


NETWORK_HELP = (
    "MatConvNet VGG-19 (or VGG-16) .mat file{}. When the default is absent, $NEURAL_STYLE_WEIGHTS and the Keras "
    "cache (~/.keras/models) are searched."
)


def define_network(fv: flags.FlagValues, module: str, purpose: str = "") -> None:
    """Defines ``--network`` on ``fv`` for the command module ``module`` (``purpose`` follows the file kind)."""
    flags.DEFINE_string(
        "network", weights_lib.DEFAULT_NETWORK, NETWORK_HELP.format(purpose), flag_values=fv, module_name=module
    )


def network_path(fv: flags.FlagValues) -> str:
    """The network file: ``--network`` when given, else the default one found (NeuralStyleError when none is)."""
    return weights_lib.find_network(fv.network if fv["network"].present else None)
