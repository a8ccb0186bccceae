"""Tests of the plumbing every command shares (neural_style.cli.command): a library error about a setting told
with the command's flag, Ctrl-C / SIGTERM handling, and list flags parsed as numbers."""

from __future__ import annotations

import os
import signal

import pytest

from neural_style.cli import command
from neural_style.errors import NeuralStyleError


def test_setting_errors_name_the_commands_flag() -> None:
    """A library error about a setting is told with the flag that sets it; other errors are left as they are."""
    cmd = command.Command("prog", command.flags.FlagValues(), "usage", __name__, setting_flags={"epsilon": "eps"})
    assert cmd.message(NeuralStyleError("is 0; it must be at least 1", setting="iterations")) == (
        "--iterations is 0; it must be at least 1"
    )
    assert cmd.message(NeuralStyleError("must be positive", setting="epsilon")) == "--eps must be positive"
    assert cmd.message(NeuralStyleError("a.png does not exist")) == "a.png does not exist"


def test_interruptible_stops_at_the_first_signal_and_aborts_at_the_second() -> None:
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with command.interruptible() as interruption:
        assert not interruption and interruption.reason is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert interruption and interruption.reason == "terminated"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    with command.interruptible() as interruption:
        os.kill(os.getpid(), signal.SIGINT)
    assert interruption.reason == "interrupted"


def test_floats_names_the_flag() -> None:
    assert command.floats("style_scales", ["1", "0.5"]) == (1.0, 0.5)
    assert command.floats("style_scales", None) is None
    with pytest.raises(NeuralStyleError, match="^--style_scales must be comma-separated numbers, got '1,x'$"):
        command.floats("style_scales", ["1", "x"])
