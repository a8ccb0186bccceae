"""Start-up: the seconds from process start to the first iteration, phase by phase, and of the command itself.

Example::

    python scripts/benchmark_startup.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg --width 256 --rounds 5

Two measurements, each in fresh processes, interleaved over ``--rounds`` (medians reported):

* phases: a child process marks the wall clock after each phase of a run as the command performs them: starting
  Python, importing TensorFlow, importing Keras, importing neural_style, loading the network from the cache, reading
  and resizing the images, building the network and computing the targets, building the engine, and the first
  iteration (tracing the step and running it); times are from the parent's ``subprocess`` spawn;
* command: ``neural-style ... --iterations 2`` (``python -m neural_style``), from spawn to the moment its
  ``Iteration 1/2`` progress line arrives on the pipe, and to its exit (which adds the second iteration, scoring the
  result and writing it).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG-19 .mat file.")
flags.DEFINE_string("content", None, "Content image.")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_integer("width", 256, "Output width in pixels.")
flags.DEFINE_integer("rounds", 3, "Interleaved rounds of both measurements.")
flags.DEFINE_enum("optimizer", "adam", ["adam", "lbfgs"], "Optimiser of the runs.")
flags.DEFINE_float("spawned", None, "Internal: the parent's time.time() at spawn; runs the phases child.")

PHASES = (
    "python",
    "import tensorflow",
    "import keras",
    "import neural_style",
    "load network (cache)",
    "read images",
    "network + targets",
    "engine",
    "first iteration",
)


def _child(spawned: float) -> None:
    marks = {"python": time.time() - spawned}
    import tensorflow  # noqa: F401

    marks["import tensorflow"] = time.time() - spawned
    import keras  # noqa: F401

    marks["import keras"] = time.time() - spawned
    from neural_style.config import StyleConfig
    from neural_style.image_io import read_image, resize, resize_styles, scaled_size
    from neural_style.matconvnet import default_cache_dir, load_vgg
    from neural_style.stylization import Stylization, build_objective

    marks["import neural_style"] = time.time() - spawned
    weights = load_vgg(FLAGS.network, cache_dir=default_cache_dir())
    marks["load network (cache)"] = time.time() - spawned
    content = read_image(FLAGS.content)
    content = resize(content, scaled_size(content.shape, FLAGS.width))
    styles = resize_styles([read_image(FLAGS.style)], None, FLAGS.width)
    marks["read images"] = time.time() - spawned
    config = StyleConfig(iterations=2, seed=0, optimizer=FLAGS.optimizer)
    objective = build_objective(weights, content, styles, config)
    marks["network + targets"] = time.time() - spawned
    run = Stylization(weights, content, styles, config, objective=objective)
    marks["engine"] = time.time() - spawned
    for record in run:
        if record.iteration == 1:
            marks["first iteration"] = time.time() - spawned
            break
    print(json.dumps(marks))


def _phases() -> dict[str, float]:
    argv = [sys.executable, __file__, f"--spawned={time.time()!r}"]
    argv += [f"--{name}={FLAGS[name].value}" for name in ("network", "content", "style", "width", "optimizer")]
    result = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _command() -> tuple[float, float]:
    argv = [sys.executable, "-m", "neural_style", f"--content={FLAGS.content}", f"--styles={FLAGS.style}"]
    argv += [f"--network={FLAGS.network}", f"--width={FLAGS.width}", "--iterations=2", "--seed=0"]
    output = f"{os.getcwd()}/.startup-{os.getpid()}.png"
    argv += [f"--optimizer={FLAGS.optimizer}", f"--output={output}"]
    start = time.time()
    first = None
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if first is None and line.startswith("Iteration") and " 1/" in line:
                first = time.time() - start
        process.wait()
    end = time.time() - start
    if os.path.exists(output):
        os.remove(output)
    if process.returncode != 0 or first is None:
        raise RuntimeError(
            f"the command failed ({process.returncode}): {process.stderr.read() if process.stderr else ''}"
        )
    return first, end


def main(argv: Sequence[str]) -> None:
    if FLAGS.spawned is not None:
        _child(FLAGS.spawned)
        return
    if not (FLAGS.network and FLAGS.content and FLAGS.style):
        raise app.UsageError("--network, --content and --style are required")
    phases: list[dict[str, float]] = []
    commands: list[tuple[float, float]] = []
    for _ in range(FLAGS.rounds):
        phases.append(_phases())
        commands.append(_command())
    print(f"{FLAGS.width} px, {FLAGS.optimizer}, {FLAGS.rounds} rounds, medians; seconds since process spawn")
    previous = 0.0
    for name in PHASES:
        at = statistics.median(p[name] for p in phases)
        print(f"  {name:22s} at {at:6.2f} s   (+{at - previous:.2f} s)")
        previous = at
    first = statistics.median(c[0] for c in commands)
    end = statistics.median(c[1] for c in commands)
    print(f"neural-style --iterations 2: 'Iteration 1/2' printed at {first:.2f} s, exit at {end:.2f} s")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
