"""The README stays runnable: every command line it shows is run, in README order, on tiny inputs.

A command line is a line (with its continuation lines ending in ``\\``) of a ```` ```sh ```` block of README.md, or a
part of one between ``&&``, that starts with one of the commands of setup.cfg's ``console_scripts``. Each runs in
a fresh temporary directory, through the command's entry point called in this process (as its own process would
run it: its own working directory, environment and argv, stdout and stderr captured), after this substitution:

* Images the line reads that do not exist (``photo.jpg``, ``starry.jpg``, ``a.jpg``, ``cat.jpg``,
  ``examples/content.png``, ...: the values of ``--content``, ``--styles``, ``--style``, ``--initial`` and the
  images of ``neural-style-classify``) are written there as tiny images (24x20 content, 16x16 styles); masks
  (``--content_masks``, ``--style_masks``) as the left half of the content, or the whole style; folders
  (``photos/``, ``holiday/``) get two tiny photos. A file an earlier line wrote (the ``--model`` of
  ``neural-style-apply``, the images of ``neural-style-score``) is copied in from that line's directory.
* The network: ``--network`` is replaced by a tiny synthetic ``.mat`` (conftest's ``write_vgg_mat``, classifier
  included), which ``$NEURAL_STYLE_WEIGHTS`` also names for the lines that rely on the default path.
* Sizes shrink: ``neural-style`` runs at ``--width 24`` and ``--iterations 2`` (given or not), with
  ``--checkpoint_iterations 1``; ``--scales N`` stays, with the width and iterations raised to the least that make it
  valid (``32 * 2^(N-1)`` px, N iterations); ``--stage_iterations`` becomes 1 for each stage but the last, which
  takes the rest. ``neural-style-train`` runs one step (``--steps 1`` instead of
  ``--epochs``/``--steps``) on ``--image_size 16`` crops with a narrow transformer (``--base_filters 4
  --residual_blocks 1``).
* A video ``--content`` (``clip.mp4``) is written as a tiny clip (three 24x20 frames) when the video extra is
  installed (the line is skipped otherwise), and ``--frame_iterations`` becomes 1.
* ``neural-style-download`` runs with the network disabled: it must fail with exit status 1 and one stderr line,
  leaving no directory behind.
* ``neural-style-serve`` runs as a process of its own on a free port (``--port 0``): it must say where it serves,
  answer ``GET /jobs`` (with the line's ``--token``), and end with status 0, silent on stderr, on SIGTERM.

Every other line must exit 0 and write what it names: ``--output`` (or the contact sheet of a sweep, the checkpoint
images, ``progress.txt`` / ``progress.png``), ``--model_out`` and its checkpoints, ``--tensorboard_dir``,
``--output_dir``, an output folder with one image per input image, the ``--json`` of ``neural-style-score``;
``neural-style-classify`` prints ``--top_k`` lines per image, ``neural-style-score`` one line per image. A line
that needs more hardware than this machine has (``--precision bfloat16`` without AVX512-BF16) is skipped.
"""

from __future__ import annotations

import configparser
import dataclasses
import functools
import importlib
import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import (
    CHANNELS,
    Completed,
    content_array,
    he_scaled,
    photo_array,
    run_command,
    style_array,
    write_vgg_mat,
)
from PIL import Image

from neural_style.cli.options import checkpoint_path
from neural_style.cli.sweep import sheet_path
from neural_style.video import VIDEO_EXTENSIONS

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def console_scripts() -> dict[str, str]:
    """{command: module} of setup.cfg's console scripts: each is ``neural_style.cli:<command with underscores>``,
    which runs the ``main`` of ``neural_style.cli.MODULES[command]``."""
    from neural_style.cli import MODULES

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    scripts = {}
    for entry in config["options.entry_points"]["console_scripts"].strip().splitlines():
        name, target = (part.strip() for part in entry.split("="))
        assert target == f"neural_style.cli:{name.replace('-', '_')}", entry
        scripts[name] = MODULES[name]
    return scripts


COMMANDS = console_scripts()
CONTENT_FLAGS = {"content", "initial"}  # images the line reads, as content
STYLE_FLAGS = {"styles", "style"}  # and as styles (comma-separated)
MASK_FLAGS = {"content_masks": "content_mask", "style_masks": "style_mask"}  # masks (comma-separated), by kind
FOLDER_FLAGS = {"data"}  # folders of photos
WIDTH, ITERATIONS, IMAGE_SIZE, TOP_K = 24, 2, 16, 5
MIN_STAGE_WIDTH = 32


@dataclasses.dataclass(frozen=True)
class ReadmeCommand:
    """One command line of the README."""

    line: int  # where it starts in README.md
    text: str  # as written (continuations joined)
    argv: tuple[str, ...]  # the command and its arguments, as the shell splits them

    @property
    def command(self) -> str:
        return self.argv[0]

    @property
    def id(self) -> str:
        return f"L{self.line}-{self.command}"


def readme_commands(text: str) -> list[ReadmeCommand]:
    """The command lines of the ```sh blocks of ``text`` that start with one of the commands."""
    found = []
    in_sh = False
    pending: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```"):
            in_sh = line.strip() == "```sh"
            continue
        if not in_sh:
            continue
        if not pending:
            start = number
        pending.append(line.rstrip().removesuffix("\\").strip())
        if line.rstrip().endswith("\\"):
            continue
        joined, pending = " ".join(pending), []
        tokens = shlex.split(joined, comments=True)
        parts: list[list[str]] = [[]]
        for token in tokens:
            if token == "&&":
                parts.append([])
            else:
                parts[-1].append(token)
        found += [ReadmeCommand(start, joined, tuple(part)) for part in parts if part and part[0] in COMMANDS]
    return found


COMMAND_LINES = readme_commands(README.read_text())


# ----------------------------------------------------------------------------------------------- the command line


@dataclasses.dataclass
class Parsed:
    """A command line as flags (in order, ``--name=value`` or boolean ``--name``/``--noname``) and positionals."""

    command: str
    flags: dict[str, str | bool]
    positional: list[str]

    def argv(self) -> list[str]:
        args = []
        for name, value in self.flags.items():
            if isinstance(value, bool):
                args.append(f"--{name}" if value else f"--no{name}")
            else:
                args.append(f"--{name}={value}")
        return [*args, *self.positional]


@functools.cache
def _flag_values(command: str) -> Any:
    return importlib.import_module(COMMANDS[command]).flag_values()


def parse(argv: tuple[str, ...]) -> Parsed:
    """Splits ``argv`` with the command's own flag definitions (which flags are boolean)."""
    fv = _flag_values(argv[0])
    parsed = Parsed(argv[0], {}, [])
    tokens = list(argv[1:])
    while tokens:
        token = tokens.pop(0)
        if not token.startswith("--"):
            parsed.positional.append(token)
            continue
        name, has_value, value = token[2:].partition("=")
        if name not in fv and name.startswith("no") and name[2:] in fv and fv[name[2:]].boolean:
            parsed.flags[name[2:]] = False
        elif name not in fv:
            raise AssertionError(f"README: {argv[0]} has no flag --{name}")
        elif fv[name].boolean and value.lower() not in ("", "true", "false", "1", "0"):
            parsed.flags[name] = value  # a flag that is also a mode by name (--preserve_colors=histogram)
        elif fv[name].boolean:
            parsed.flags[name] = value.lower() not in ("false", "0") if has_value else True
        else:
            parsed.flags[name] = value if has_value else tokens.pop(0)
    return parsed


def shrink(parsed: Parsed, network: Path) -> Parsed:
    """The module docstring's substitution of the network and the sizes."""
    flags = parsed.flags
    if "network" in flags:
        flags["network"] = str(network)
    if parsed.command == "neural-style":
        scales = int(flags["scales"]) if str(flags.get("scales", "x")).isdigit() else 1
        flags["width"] = str(max(WIDTH, MIN_STAGE_WIDTH * 2 ** (scales - 1) if scales > 1 else 0))
        flags["iterations"] = str(max(ITERATIONS, scales))
        if "stage_iterations" in flags:  # one per stage, summing to --iterations
            stages = len(flags["stage_iterations"].split(","))
            flags["stage_iterations"] = ",".join(["1"] * (stages - 1) + [str(int(flags["iterations"]) - stages + 1)])
        if "checkpoint_iterations" in flags:
            flags["checkpoint_iterations"] = "1"
        if "frame_iterations" in flags:
            flags["frame_iterations"] = "1"
    elif parsed.command == "neural-style-train":
        flags.pop("epochs", None)
        flags.update(steps="1", image_size=str(IMAGE_SIZE), base_filters="4", residual_blocks="1")
    return parsed


def inputs_of(parsed: Parsed) -> list[tuple[str, str]]:
    """(kind, path) of what the line reads: kind is content, style, folder or file."""
    flags = parsed.flags
    found: list[tuple[str, str]] = []
    for name, value in flags.items():
        if not isinstance(value, str):
            continue
        if name in CONTENT_FLAGS:
            kind = "folder" if parsed.command == "neural-style-apply" and value.endswith("/") else "content"
            found.append((kind, value))
        elif name in STYLE_FLAGS:
            found += [("style", path) for path in value.split(",")]
        elif name in MASK_FLAGS:
            found += [(MASK_FLAGS[name], path) for path in value.split(",")]
        elif name in FOLDER_FLAGS:
            found.append(("folder", value))
        elif name == "model":
            found.append(("file", value))
    if parsed.command == "neural-style-classify":
        found += [("content", path) for path in parsed.positional]
    if parsed.command == "neural-style-score":
        found += [("file", path) for path in parsed.positional]
    return found


def outputs_of(parsed: Parsed, work: Path) -> list[Path]:
    """The files and directories the line names as what it writes (for a folder output: after its inputs)."""
    flags = parsed.flags
    command = parsed.command

    def get(name: str) -> str:
        value = flags[name]
        assert isinstance(value, str)
        return value

    paths: list[str] = []
    if command == "neural-style":
        output = get("output")
        if "blend_sweep" in flags or "blends" in flags or "sweep_style_weights" in flags:
            paths.append(sheet_path(output))
        else:
            paths.append(output)
        if "checkpoint_output" in flags:
            paths += [checkpoint_path(get("checkpoint_output"), k) for k in range(1, int(get("iterations")) + 1)]
        directory = os.path.dirname(output)
        if flags.get("progress_write"):
            paths.append(os.path.join(directory, "progress.txt"))
        if flags.get("progress_plot"):
            paths.append(os.path.join(directory, "progress.png"))
        if "tensorboard_dir" in flags:
            paths.append(get("tensorboard_dir"))
    elif command == "neural-style-train":
        model = get("model_out")
        paths += [
            model,
            get("checkpoint_dir") if "checkpoint_dir" in flags else model[: -len(".keras")] + "_checkpoints",
        ]
        if "tensorboard_dir" in flags:
            paths.append(get("tensorboard_dir"))
    elif command == "neural-style-apply":
        content, output = get("content"), get("output")
        if content.endswith("/"):
            paths += [os.path.join(output, name) for name in sorted(os.listdir(work / content))]
        else:
            paths.append(output)
    elif command == "neural-style-export":
        paths += [
            os.path.join(get("output_dir"), name) for name in ("saved_model", "vgg_features.keras", "export.json")
        ]
    elif command == "neural-style-score" and "json" in flags:
        paths.append(get("json"))
    elif command == "neural-style-serve":
        paths.append(get("data_dir") if "data_dir" in flags else "studio")
    return [work / path for path in paths]


# ------------------------------------------------------------------------------------------------------- running


def run_server(parsed: Parsed, work: Path, env: dict[str, str]) -> Completed:
    """``neural-style-serve`` as its own process (``python -m neural_style.serve``) on a free port: it must say where
    it serves, answer ``GET /jobs`` (with the line's ``--token``), and end with status 0 on SIGTERM."""
    import json
    import signal
    import subprocess
    import urllib.request

    flags = {**parsed.flags, "port": "0"}
    args = [
        f"--{name}={value}" if not isinstance(value, bool) else f"--{'' if value else 'no'}{name}"
        for name, value in flags.items()
    ]
    env = {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))}
    process = subprocess.Popen(
        [__import__("sys").executable, "-m", "neural_style.serve", *args],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    found = re.search(r"Serving the studio at http://[^:]+:(\d+)/", first)
    answered = ""
    if found:
        request = urllib.request.Request(f"http://127.0.0.1:{found.group(1)}/jobs")
        if "token" in flags:
            request.add_header("Authorization", f"Bearer {flags['token']}")
        with urllib.request.urlopen(request, timeout=60) as answer:
            answered = f"GET /jobs: {answer.status} {json.load(answer)}"
        process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    return Completed(process.returncode, first + stdout + (answered and f"\n{answered}\n"), stderr)


def write_inputs(kind: str, path: Path) -> None:
    """A tiny image (or a folder of two photos) at ``path``, in the format its extension names."""
    if kind == "folder":
        path.mkdir(parents=True)
        for seed, name in enumerate(("p0.jpg", "p1.png")):
            Image.fromarray(photo_array(20 + 4 * seed, 24, seed)).save(path / name)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind in ("content_mask", "style_mask"):  # the left half of a content image, or a whole style image
        height, width = content_array().shape[:2] if kind == "content_mask" else style_array().shape[:2]
        mask = np.zeros((height, width), np.uint8)
        mask[:, : width // 2 if kind == "content_mask" else width] = 255
        Image.fromarray(mask).save(path)
        return
    if kind == "content" and path.suffix.lower() in VIDEO_EXTENSIONS:
        pytest.importorskip("av", reason="the video extra is not installed")
        from neural_style.video import VideoWriter

        frames = content_array().astype(np.float32)
        with VideoWriter(path, frames.shape[1], frames.shape[0], 12) as writer:
            for shift in range(3):
                writer.write(np.roll(frames, shift, axis=1))
        return
    Image.fromarray(content_array() if kind == "content" else style_array(len(path.name))).save(path)


@dataclasses.dataclass
class Run:
    command: ReadmeCommand
    parsed: Parsed
    work: Path
    result: Completed


class Readme:
    """Runs the README's command lines, each once, in fresh directories; a line whose input an earlier line writes
    runs that line first."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.network = root / "vgg.mat"
        write_vgg_mat(self.network, channels=CHANNELS, fc_kernel=(7, 7), n_classes=10, tamper=he_scaled)
        for name in ("home", "cache", "tmp"):
            (root / name).mkdir()
        self.runs: dict[int, Run] = {}

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("KERAS_HOME", "XDG_CACHE_HOME")}
        env.update(
            NEURAL_STYLE_WEIGHTS=str(self.network),
            HOME=str(self.root / "home"),
            NEURAL_STYLE_CACHE=str(self.root / "cache"),
            TMPDIR=str(self.root / "tmp"),
        )
        return env

    def producer(self, index: int, path: str) -> Run | None:
        """The run of the earliest line before ``index`` that writes ``path``, run now if it has not been."""
        for earlier in range(index):
            probe = shrink(parse(COMMAND_LINES[earlier].argv), self.network)
            if probe.command != "neural-style-apply" and Path("/w", path) in outputs_of(probe, Path("/w")):
                return self.run(earlier)
        return None

    def run(self, index: int) -> Run:
        if index in self.runs:
            return self.runs[index]
        command = COMMAND_LINES[index]
        parsed = shrink(parse(command.argv), self.network)
        work = self.root / f"{index:02d}-{command.command}"
        work.mkdir()
        for kind, path in inputs_of(parsed):
            if (work / path).exists():
                continue
            source = self.producer(index, path)
            if source is not None:
                (work / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source.work / path, work / path)
            elif kind == "file":
                raise AssertionError(f"README line {command.line}: nothing writes {path} before it")
            else:
                write_inputs(kind, work / path)
        no_network = command.command == "neural-style-download"
        argv = [command.command, *parsed.argv()]
        if command.command == "neural-style-serve":
            result = run_server(parsed, work, self.env())
        else:
            result = run_command(COMMANDS[command.command], argv, work, self.env(), no_network)
        self.runs[index] = Run(command, parsed, work, result)
        return self.runs[index]


@pytest.fixture(scope="module")
def readme(tmp_path_factory: pytest.TempPathFactory) -> Readme:
    return Readme(tmp_path_factory.mktemp("readme"))


def test_readme_has_the_command_lines() -> None:
    """The extraction finds every command: each of them, and continuation lines joined."""
    assert {c.command for c in COMMAND_LINES} == set(COMMANDS)
    assert all("\\" not in c.text for c in COMMAND_LINES)
    assert len(COMMAND_LINES) >= 12


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(COMMAND_LINES)), ids=[c.id for c in COMMAND_LINES])
def test_readme_command_runs(readme: Readme, index: int) -> None:
    run = readme.run(index)
    result = run.result
    where = f"README line {run.command.line}: {run.command.text}\nran: {' '.join(run.parsed.argv())}"
    report = f"{where}\nexit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    if run.command.command == "neural-style-download":
        assert result.returncode == 1, report
        assert len(result.stderr.splitlines()) == 1, report
        assert "network disabled by the test" in result.stderr, report
        assert sorted(p.name for p in run.work.iterdir()) == [], report  # the directory it made is gone
        return
    if result.returncode == 2 and re.search(r"--precision \w+ needs", result.stderr):
        pytest.skip(f"this machine cannot run {where}: {result.stderr.strip()}")
    assert result.returncode == 0, report
    assert result.stderr == "", f"a successful run is silent on stderr\n{report}"
    for path in outputs_of(run.parsed, run.work):
        assert path.exists(), f"{path.relative_to(run.work)} was not written\n{report}"
        if path.is_dir():
            assert any(path.iterdir()), f"{path.relative_to(run.work)} is empty\n{report}"
    if run.command.command == "neural-style-classify":
        lines = result.stdout.splitlines()
        images = run.parsed.positional
        top_k = int(str(run.parsed.flags.get("top_k", TOP_K)))
        assert [line.split("\t")[:2] for line in lines] == [
            [image, str(rank)] for image in images for rank in range(1, top_k + 1)
        ], report
    if run.command.command == "neural-style-serve":
        assert "GET /jobs: 200 []" in result.stdout, report
    if run.command.command == "neural-style-score":
        rows = [line.split("\t") for line in result.stdout.splitlines() if "\t" in line]
        assert [row[0] for row in rows] == run.parsed.positional, report
        assert all(len(row) == 6 and row[-1].startswith("total ") for row in rows), report
