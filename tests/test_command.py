"""Tests of the plumbing every command shares (neural_style.cli.command): a library error about a setting told
with the command's flag, Ctrl-C / SIGTERM handling, list flags parsed as numbers, and TensorFlow's start-up log
held back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

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


def _fake_tensorflow(root: Path) -> Path:
    """A ``tensorflow`` package that logs on file descriptor 2, as TensorFlow's C++ code does, then fails."""
    package = root / "fake" / "tensorflow"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "import os\n"
        "os.write(2, b'E0000 fake_start.cc:1] could not load libcudart.so.12\\n')\n"
        "raise ImportError('libcudart.so.12: cannot open shared object file')\n"
    )
    return package.parent


@pytest.mark.slow
def test_tensorflow_failing_to_start_shows_its_log_then_one_error_line(tmp_path: Path) -> None:
    """The held-back log is replayed when TensorFlow cannot start, and the error is the last line (exit 1)."""
    env = {**os.environ, "PYTHONPATH": str(_fake_tensorflow(tmp_path))}
    code = "from neural_style.cli.command import Command, start_tensorflow; import absl.flags as f\n"
    code += "Command('prog', f.FlagValues(), 'usage', '__main__').run(['prog'], lambda _: start_tensorflow())"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    lines = result.stderr.splitlines()
    assert result.returncode == 1, result.stderr
    assert lines[0] == "E0000 fake_start.cc:1] could not load libcudart.so.12"
    assert lines[-1] == ("prog: error: TensorFlow failed to start: libcudart.so.12: cannot open shared object file"), (
        result.stderr
    )


@pytest.mark.slow
def test_tensorflow_start_up_log_is_held_back_unless_asked_for(tmp_path: Path) -> None:
    """The real TensorFlow prints its start-up lines on stderr; held back by default, shown with the variable."""
    code = "from neural_style.cli.command import start_tensorflow; start_tensorflow(); print('started')"
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert quiet.returncode == 0 and quiet.stdout == "started\n" and quiet.stderr == "", quiet.stderr
    env = {**os.environ, command.TF_LOG_ENV: "1", "TF_CPP_MIN_LOG_LEVEL": "0"}
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0 and shown.stdout == "started\n"
    assert shown.stderr.strip(), "with NEURAL_STYLE_TF_LOG=1, TensorFlow's own log reaches stderr"


# ------------------------------------------------------------------------------------ check_writable (outputs)


def test_check_writable_accepts_new_file(tmp_path: Path) -> None:
    """A new file in an existing directory passes, and nothing is created by the check."""
    command.check_writable(tmp_path / "new.png", overwrite=False)
    assert list(tmp_path.iterdir()) == []


def test_check_writable_existing_file(tmp_path: Path) -> None:
    """An existing file is refused without overwrite (naming --overwrite) and accepted with it."""
    path = tmp_path / "out.png"
    path.write_bytes(b"x")
    with pytest.raises(NeuralStyleError, match="--overwrite"):
        command.check_writable(path, overwrite=False)
    command.check_writable(path, overwrite=True)


def test_check_writable_directory_path(tmp_path: Path) -> None:
    """A directory where the file should go is refused, even with overwrite."""
    path = tmp_path / "out.png"
    path.mkdir()
    with pytest.raises(NeuralStyleError, match="is a directory"):
        command.check_writable(path, overwrite=True)


def test_check_writable_missing_directory(tmp_path: Path) -> None:
    """A file in a directory that does not exist is refused, naming the directory."""
    with pytest.raises(NeuralStyleError) as info:
        command.check_writable(tmp_path / "missing" / "out.png", overwrite=False, what="--checkpoint 3")
    assert str(tmp_path / "missing") in str(info.value)
    assert str(info.value).startswith("--checkpoint 3")


def test_check_writable_unknown_extension(tmp_path: Path) -> None:
    """An extension Pillow cannot write is refused."""
    with pytest.raises(NeuralStyleError, match="xyz"):
        command.check_writable(tmp_path / "out.xyz", overwrite=False)


@pytest.mark.skipif(getattr(os, "geteuid", lambda: -1)() == 0, reason="root can write to any directory")
def test_check_writable_read_only_directory(tmp_path: Path) -> None:
    """A directory without write permission is refused."""
    directory = tmp_path / "ro"
    directory.mkdir()
    directory.chmod(0o555)
    try:
        with pytest.raises(NeuralStyleError, match="not writable"):
            command.check_writable(directory / "out.png", overwrite=False)
    finally:
        directory.chmod(0o755)


@pytest.mark.slow
def test_a_reader_that_stops_reading_is_no_traceback() -> None:
    """``neural-style --help | head -1``: the help meets a closed pipe; no traceback, exit 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "neural_style", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before the help is written (Python starts in ~50 ms, not less)
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0, stderr
    assert "Traceback" not in stderr and stderr == "", stderr


_RUN_PROCESS = """
import atexit, sys
{imports}
from neural_style.cli.command import run_process
atexit.register(lambda: print("atexit handler ran", flush=True))

def main():
    print("work done", flush=True)
    {end}

run_process(main)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("imports", "end", "status"),
    [
        ("import tensorflow", "", 0),
        ("import tensorflow", "sys.exit(3)", 3),
        ("import tensorflow", "sys.exit('a message')", 1),
        ("", "sys.exit(4)", 4),
    ],
    ids=["tensorflow-ok", "tensorflow-status", "tensorflow-message", "no-tensorflow"],
)
def test_run_process_keeps_the_status_and_runs_atexit_handlers(imports: str, end: str, status: int) -> None:
    """The console scripts' end: the command's exit status, its output flushed and the atexit handlers run (a
    coverage tool's among them), with or without TensorFlow loaded (with it, the process skips the teardown)."""
    code = _RUN_PROCESS.format(imports=imports, end=end or "pass")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == status, result.stderr
    assert result.stdout.splitlines() == ["work done", "atexit handler ran"]
    if end.startswith("sys.exit('"):
        assert result.stderr.strip().splitlines()[-1] == "a message"
