"""The studio's one door to the ``neural-style`` command: its flags, its checks and its run, used as they are.

Every name the server takes from :mod:`neural_style.cli` is imported here and nowhere else in the package, so the
server holds no second copy of a rule. A job's settings are the command's flags: the form fields become
``--name=value`` arguments parsed by the command's own flag definitions on a fresh ``FlagValues``, and checked by
the command's own code up to the first step, so a bad value gets the command's one-line message. A job runs through
the command's own driver (coarse-to-fine stages, the resumable state in ``<output>.state`` that ``--resume``
continues, sweeps and their files), followed and stopped through :class:`RunHooks`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

from absl import flags

from neural_style.cli import report as _report
from neural_style.cli import run as _run
from neural_style.cli import stylize as _stylize
from neural_style.cli import sweep as _sweep
from neural_style.cli.command import (
    Command,
    RunHooks,
    check_directory_target,
    define_network,
    network_path,
    start_tensorflow,
)
from neural_style.cli.options import SETTING_FLAGS as _SETTING_FLAGS
from neural_style.cli.saved_run import state_dir as _state_dir
from neural_style.config import COLOR_MODES

__all__ = [
    "PRESETS",
    "PROGRAM",
    "RESULT",
    "SERVER_FLAGS",
    "Checked",
    "Command",
    "CommandError",
    "JobFiles",
    "RunHooks",
    "Stopped",
    "check",
    "check_data_dir",
    "contact_sheet",
    "define_network",
    "describe_settings",
    "discard_saved_state",
    "has_saved_state",
    "job_arguments",
    "network_path",
    "run",
    "setting_arguments",
    "start_tensorflow",
    "sweep_file",
    "sweep_sheet",
]

PROGRAM = "neural-style"  # whose flags, checks and messages a job's settings are

# The flags of neural-style that the server sets itself: {flag: the rest of the message refusing it as a field}.
SERVER_FLAGS = {
    "content": "is uploaded: send the image as the file field 'content'",
    "styles": "are uploaded: send each style image as a file field 'styles' (repeat the field)",
    "content_masks": "are uploaded: send one mask per style as a file field 'masks' (repeat the field)",
    "initial": "is uploaded: send the image as the file field 'initial'",
    "style_masks": "is not available in the studio; run the neural-style command for it",
    "output": "is chosen by the server; the result is the job's file result.png",
    "network": "is the server's (neural-style-serve --network)",
    "overwrite": "is the server's: a job writes only into its own folder",
    "resume": "is the server's: it resumes an interrupted job by itself",
    "restart": "is the server's: it resumes an interrupted job by itself",
    "checkpoint_output": "is chosen by the server: with checkpoint_iterations a single run writes checkpoint_N.png",
    "progress_write": "is the server's: a single run's loss history is always written (progress.txt)",
    "progress_plot": "is the server's: a single run's loss plot is always written (progress.png)",
    "tensorboard_dir": "is not available in the studio; run the neural-style command for it",
}
# Settings the page offers as one click. "fastest": the README's fastest route to the quality of neural-style's
# default run (L-BFGS over three sizes, most iterations at the small ones, with bfloat16 convolutions, from the
# content image: --initial_noiseblend 0 starts from the content exactly as --initial with the content image does).
# Its --iterations is the stages' sum, so that an iterations field set earlier cannot contradict them.
PRESETS = {
    "fastest": {
        "optimizer": "lbfgs",
        "scales": "3",
        "stage_iterations": "40,20,2",
        "iterations": "62",
        "precision": "bfloat16",
        "initial_noiseblend": "0",
    }
}
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
RESULT = "result.png"  # the output's name in a job's folder
CHECKPOINTS = "checkpoint_{}.png"  # and the checkpoint images' (--checkpoint_output)


class CommandError(Exception):
    """The command refused the settings or its run failed.

    Attributes:
        message: the one line ``neural-style`` prints after ``neural-style: error:``.
        status: its exit status: 2 for bad input, 1 for a failed run.
    """

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Stopped(Exception):
    """The run stopped at a step boundary because :attr:`RunHooks.interruption` was set; it wrote what it had."""


class _InProcess(Command):
    """The command's parsing, checks and error rules, with a failure raised instead of printed and exited."""

    def fail(self, message: str, status: int) -> NoReturn:
        raise CommandError(" ".join(str(message).split()), status)


def _command(fv: flags.FlagValues) -> _InProcess:
    return _InProcess(PROGRAM, fv, "", _stylize.__name__, setting_flags=_SETTING_FLAGS)


# ------------------------------------------------------------------------------------------------ the settings


def describe_settings() -> list[dict[str, Any]]:
    """The settings a job takes: every flag of neural-style but :data:`SERVER_FLAGS`, with its default and help:
    ``{"name", "kind" (boolean, integer, number, choice, list, text), "default", "choices", "help"}``."""
    fv = _stylize.flag_values()
    kinds = {
        flags.BooleanParser: "boolean",
        flags.IntegerParser: "integer",
        flags.FloatParser: "number",
        flags.EnumParser: "choice",
        flags.ListParser: "list",
    }
    described = []
    for name in sorted(fv):
        if name in SERVER_FLAGS:
            continue
        flag = fv[name]
        kind = kinds.get(type(flag.parser), "text")
        default = flag.default
        if isinstance(default, list):
            default = ",".join(default)
        choices = list(flag.parser.enum_values) if isinstance(flag.parser, flags.EnumParser) else None
        if flag.boolean and kind != "boolean":  # a flag that is also a mode by name: --preserve_colors
            kind, choices = "choice", list(COLOR_MODES)
        text = re.sub(r"^<[^>]*>: ", "", flag.help)  # absl's list of an enum's values, which "choices" has
        described.append({"name": name, "kind": kind, "default": default, "choices": choices, "help": text})
    return described


def setting_arguments(fields: Sequence[tuple[str, str]]) -> list[str]:
    """The form fields of a job's settings as the command's arguments, ``--name=value`` in the order given.

    Raises:
        CommandError: a field the server sets itself (:data:`SERVER_FLAGS`) or a name no flag could have (status 2).
            An unknown name is left to the flags' parser, which refuses it as the command does.
    """
    fv = _stylize.flag_values()
    arguments = []
    for name, value in fields:
        if not _FIELD_NAME.fullmatch(name):
            raise CommandError(f"'{name}' is not a setting; settings are named as neural-style's flags, without --", 2)
        flag = name[2:] if name not in fv and name.startswith("no") and name[2:] in fv else name
        if flag in SERVER_FLAGS:
            raise CommandError(f"--{flag} {SERVER_FLAGS[flag]}", 2)
        arguments.append(f"--{name}={value}")
    return arguments


@dataclasses.dataclass(frozen=True)
class JobFiles:
    """Where a job's inputs are (paths the server chose) and where it writes (its output folder)."""

    content: str
    styles: tuple[str, ...]
    masks: tuple[str, ...]
    initial: str | None
    out_dir: str

    @property
    def output(self) -> str:
        return os.path.join(self.out_dir, RESULT)


def job_arguments(settings: Sequence[str], files: JobFiles, network: str) -> tuple[list[str], list[str] | None]:
    """The whole command line of a job, and its sweep's candidate labels (None for a single image).

    A single run also writes its loss history, and its checkpoint images when it has checkpoints; a job whose
    state an interrupted run saved continues it (``--resume``).
    """
    arguments = [PROGRAM, *settings, f"--content={files.content}", f"--styles={','.join(files.styles)}"]
    if files.masks:
        arguments.append(f"--content_masks={','.join(files.masks)}")
    if files.initial is not None:
        arguments.append(f"--initial={files.initial}")
    arguments += [f"--output={files.output}", f"--network={network}", "--overwrite"]
    single, labels = _plan(arguments)
    if single:
        arguments += ["--progress_write", "--progress_plot"]
        if any(argument.startswith("--checkpoint_iterations=") for argument in settings):
            arguments.append(f"--checkpoint_output={os.path.join(files.out_dir, CHECKPOINTS)}")
        if has_saved_state(files.output):
            arguments.append("--resume")
    return arguments, labels


def _plan(arguments: list[str]) -> tuple[bool, list[str] | None]:
    """Whether ``arguments`` ask for a single image, and the labels of the sweep they ask for (None for a single
    image, or when the command refuses its flags: its own check then gives the message)."""
    fv = _stylize.flag_values()
    try:
        fv(arguments)
        plan = _sweep.plan(fv)
    except Exception:  # noqa: BLE001 - whatever it is, the command's own check reports it
        return False, None
    return plan is None, None if plan is None else list(plan.labels)


def has_saved_state(output: str) -> bool:
    """Whether an interrupted run of ``output`` saved a state that ``--resume`` continues."""
    return os.path.isfile(os.path.join(_state_dir(output), "checkpoint"))


def check_data_dir(path: str) -> None:
    """Refuses a --data_dir the server could not create or write into (the command's rule for a directory)."""
    check_directory_target(path, "data_dir")


def discard_saved_state(output: str) -> None:
    """Removes the saved state of ``output``'s run (a cancelled job is not resumed)."""
    shutil.rmtree(_state_dir(output), ignore_errors=True)


def sweep_file(label: str) -> str:
    """The name of a sweep candidate's file in the job's folder."""
    return os.path.basename(_sweep.candidate_path(RESULT, label))


def sweep_sheet() -> str:
    """The name of a sweep's contact sheet in the job's folder."""
    return os.path.basename(_sweep.sheet_path(RESULT))


# ------------------------------------------------------------------------------------------------ checks and runs


class _Ready(Exception):
    """Raised by the checking hooks where the first step would come."""


class _Checking(RunHooks):
    def ready(self) -> None:
        raise _Ready

    def record(self, *args: Any, **kwargs: Any) -> None:  # a run that skipped ready() must not go on
        raise _Ready


@contextlib.contextmanager
def _quiet_paths(folders: Sequence[str]) -> Iterator[None]:
    """The command's messages name files by the server's paths: within ``folders`` (the innermost first) they become
    the names alone."""
    try:
        yield
    except CommandError as e:
        for folder in folders:
            e.message = e.message.replace(os.path.join(os.path.abspath(folder), ""), "")
        e.args = (e.message,)
        raise


@dataclasses.dataclass(frozen=True)
class Checked:
    """What the command's checks found: the iterations of the run."""

    iterations: int


def check(arguments: Sequence[str], hide: Sequence[str] = ()) -> Checked:
    """Runs the command on ``arguments`` up to its first step: every flag, file, size and memory check it makes.

    Args:
        arguments: the command line, the program first.
        hide: folders whose paths the messages leave out (the innermost first).

    Raises:
        CommandError: the command's refusal (status 2) or failure (1), its one-line message.
    """
    fv = _stylize.flag_values()
    with _quiet_paths(hide):
        try:
            _command(fv).run(list(arguments), lambda _: _run.stylize(fv, hooks=_Checking()))
        except _Ready:
            return Checked(iterations=int(fv.iterations))
    raise CommandError("the run ended before its first step", 1)


def run(arguments: Sequence[str], hooks: RunHooks, hide: Sequence[str] = ()) -> None:
    """Runs the command on ``arguments`` in this process, reporting to ``hooks``.

    Raises:
        CommandError: the command's refusal (status 2) or failure (1), its one-line message.
        Stopped: ``hooks.interruption`` was set; the run wrote what it had (as on Ctrl-C).
    """
    fv = _stylize.flag_values()
    with _quiet_paths(hide):
        try:
            _command(fv).run(list(arguments), lambda _: _run.stylize(fv, hooks=hooks))
        except SystemExit as e:
            if hooks.interruption:
                raise Stopped(str(hooks.interruption.reason)) from None
            raise CommandError(f"the run exited with status {e.code}", 1) from None


def contact_sheet(images: Sequence[Any], captions: Sequence[str]) -> Any:
    """A captioned grid of images (a PIL image), as a sweep's sheet is drawn."""
    return _report.contact_sheet(images, captions)
