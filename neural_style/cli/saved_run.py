"""The saved run of the commands: where it lives, the settings it must share, how it is resumed or given up.

``neural-style`` keeps an interrupted run in ``<output>.state/`` (:func:`state_dir`): a single run or its
coarse-to-fine stage (:class:`SavedState`), or a video's frames done (:class:`SavedRun`), each a
:class:`neural_style.run_state.RunState` with the fingerprint of the settings that decide its result
(:func:`fingerprint`). ``--resume`` continues it and ``--restart`` discards it (:func:`check_saved_state`,
:func:`discard_on_restart`); a run stopped by Ctrl-C names the command that resumes it (:func:`resume_hint`).
``neural-style-train`` resumes from its checkpoints by itself, with the fingerprint :func:`train_fingerprint`; a sweep
split across workers compares the settings of :func:`config_settings` between them. The refusal of a saved run made
with other settings, naming the first that differs, is :meth:`neural_style.run_state.RunState.restore`'s.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import sys
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from absl import flags

from neural_style.errors import NeuralStyleError

if TYPE_CHECKING:
    from neural_style.cli.plan import Stages
    from neural_style.config import StyleConfig, TrainConfig
    from neural_style.matconvnet import VggWeights
    from neural_style.run_state import RunState
    from neural_style.stylization import Stylization

__all__ = [
    "SavedRun",
    "SavedState",
    "check_saved_state",
    "config_settings",
    "discard_on_restart",
    "fingerprint",
    "resume_hint",
    "state_dir",
    "train_fingerprint",
]

# The flags a resumed command line leaves out (the hint adds --resume itself).
_RESUME_FLAGS = ("--resume", "--noresume", "--restart", "--norestart")


def state_dir(output: str) -> str:
    """Where the resumable state of ``output`` lives: ``<output>.state/``."""
    return f"{output}.state"


def check_saved_state(fv: flags.FlagValues) -> bool:
    """--resume and --restart against ``<output>.state``: a saved run is never discarded silently, nor resumed
    when there is none. Returns whether there is a saved run (then --resume or --restart was given: either may
    replace that run's own files). Checked before whether the output exists, so the saved run is named first."""
    saved = os.path.isfile(os.path.join(state_dir(fv.output), "checkpoint"))
    if fv.resume and fv.restart:
        raise NeuralStyleError("--resume continues the saved run and --restart discards it; give one of them")
    if saved and not (fv.resume or fv.restart):
        raise NeuralStyleError(
            f"{state_dir(fv.output)} holds an interrupted run of --output {fv.output}: continue it with --resume, "
            "or pass --restart to discard it and start afresh"
        )
    if fv.resume and not saved:
        raise NeuralStyleError(f"--resume: no saved state in {state_dir(fv.output)}; run without --resume")
    return saved


def discard_on_restart(fv: flags.FlagValues) -> None:
    """With --restart, removes ``<output>.state``: asked for, the interrupted run is given up."""
    if fv.restart and os.path.isdir(state_dir(fv.output)):
        shutil.rmtree(state_dir(fv.output))


def resume_hint(prog: str = "neural-style") -> str:
    """``resume with: <this command line> --resume``, for the line that says a run was stopped."""
    again = shlex.join([prog, *(a for a in sys.argv[1:] if a not in _RESUME_FLAGS)])
    return f"resume with: {again} --resume"


# ------------------------------------------------------------------------------------------------ fingerprints


def config_settings(config: StyleConfig | TrainConfig, skip: Collection[str] = ()) -> dict[str, object]:
    """{--setting: value} of every field of ``config`` but those in ``skip``: settings named as a user gives them."""
    return {f"--{key}": value for key, value in dataclasses.asdict(config).items() if key not in skip}


def fingerprint(fv: flags.FlagValues, config: StyleConfig, vgg: VggWeights, stages: Stages) -> dict[str, object]:
    """The settings a saved state must share with this neural-style run to be resumed by it.

    The iterations may grow for a single stage (to continue a finished run further); with --scales they decide
    every stage's share, so the whole plan must be the same.
    """
    from neural_style.run_state import file_sha256, saved_form

    # Tiling changes the memory a run takes, not its result: a run may resume with other tiles.
    settings = config_settings(config, skip={"iterations", "print_iterations", "checkpoint_iterations", "tile_size"})
    settings["--content"] = file_sha256(fv.content)
    settings["--styles"] = [file_sha256(path) for path in fv.styles]
    settings["--initial"] = file_sha256(fv.initial) if fv.initial else None
    settings["--width"] = fv.width
    settings["--style_scales"] = fv.style_scales
    settings["--network"] = vgg.md5
    plan = {"widths": stages.widths, "iterations": stages.iterations}
    settings["--scales"] = None if len(stages.widths) == 1 else plan
    for name in ("content_masks", "style_masks"):
        paths: list[str] | None = fv[name].value
        if paths is not None:  # absent from the fingerprints of runs without masks, which stay resumable
            settings[f"--{name}"] = [file_sha256(path) for path in paths]
    return saved_form(settings)


def train_fingerprint(config: TrainConfig, style_path: str, network_md5: str) -> dict[str, object]:
    """The settings a training checkpoint must share with this run to be resumed by it (the length of training may
    grow)."""
    from neural_style.run_state import file_sha256, saved_form

    settings = config_settings(config, skip={"steps", "epochs"})
    settings["--style"] = file_sha256(style_path)
    settings["--network"] = network_md5
    return saved_form(settings)


# ------------------------------------------------------------------------------------------------ saved runs


class SavedRun:
    """The resumable state of a neural-style run in ``<output>.state``: ``objects`` and the ``settings`` they were
    made with, saved at checkpoints and on Ctrl-C, the newest two kept (a kill -9 mid-write leaves the one before);
    the finished run deletes it."""

    def __init__(self, output: str, objects: Mapping[str, Any], settings: Mapping[str, object]) -> None:
        from neural_style.run_state import RunState

        self.directory = state_dir(output)
        self.state: RunState = RunState(self.directory, objects, settings, max_to_keep=2, checkpoint_name="state")

    def restore(self) -> str:
        """Restores the newest saved state into the objects (--resume); returns its path.

        Raises:
            NeuralStyleError: there is none, or it was made with other settings (naming the first that differs) or
                other objects.
        """
        try:
            restored = self.state.restore()
        except NeuralStyleError as e:
            raise NeuralStyleError(f"--resume: {e}", usage=e.usage) from None
        if restored is None:
            raise NeuralStyleError(f"--resume: no saved state in {self.directory}; run without --resume")
        return restored

    def save(self) -> None:
        """Saves the objects now."""
        self.state.save()

    def remove(self) -> None:
        """Deletes the saved state: the run is complete, nothing is left to resume."""
        self.state.remove()


class SavedState(SavedRun):
    """The saved state of a single run: a RunState of the current stage's Stylization, its stage number and the
    settings fingerprint.

    Each stage saves into the same directory as the one before it, so the newest state is always the furthest stage
    reached; the older ones go as newer ones are complete.
    """

    def __init__(self, fv: flags.FlagValues, run: Stylization, stage: int, settings: dict[str, object]) -> None:
        import tensorflow as tf

        self.stage = stage
        super().__init__(
            fv.output, {"run": run.state, "stage": tf.Variable(stage, dtype=tf.int64, trainable=False)}, settings
        )

    @staticmethod
    def saved_stage(fv: flags.FlagValues) -> int:
        """The stage of the newest saved state in ``<output>.state`` (to build that stage's run before restoring)."""
        import tensorflow as tf

        latest = tf.train.latest_checkpoint(state_dir(fv.output))
        if latest is None:
            raise NeuralStyleError(f"--resume: no saved state in {state_dir(fv.output)}; run without --resume")
        try:
            return int(tf.train.load_variable(latest, "stage/.ATTRIBUTES/VARIABLE_VALUE"))
        except (tf.errors.OpError, ValueError):
            raise NeuralStyleError(
                f"--resume: {latest} is not a saved neural-style run; pass --restart to start afresh"
            ) from None

    def resume(self, run: Stylization, stages: Stages) -> None:
        """Restores the saved state into ``run`` (the saved stage's) and says where the run continues, once."""
        self.restore()
        done = run.iteration
        if done >= stages.iterations[self.stage]:
            total = stages.offsets[self.stage] + done
            raise NeuralStyleError(
                f"--resume: the saved run is at iteration {total}; give --iterations above {total} to continue it"
            )
        where = f"Resumed at iteration {stages.offsets[self.stage] + done}/{sum(stages.iterations)}"
        if len(stages.widths) > 1:
            where += f", scale {self.stage + 1}/{len(stages.widths)} ({stages.widths[self.stage]} px)"
        print(where)
