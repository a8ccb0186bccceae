"""Seconds per Adam iteration of whole processes: the ``neural-style`` command against neural-style's TF1 graph.

Example::

    python scripts/benchmark_iteration.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg --width 256 --rounds 3

Each program runs as a fresh process twice, for ``--iterations`` A and B (default 10 and 40), with neural-style's
default settings in float32 from the same noise (``--seed``); its per-iteration time is the slope
(T_B - T_A) / (B - A) of the wall-clock time from spawn to exit, so start-up, tracing, the targets and writing the
result cancel out. The runs of all programs are interleaved (the order alternates between rounds), so a change in
the machine's load falls on all of them alike, and the slope of each program is taken from its fastest process of
each length over ``--rounds`` (best of N); every raw figure is printed as well. The children's CPU seconds (user +
system) are reported beside the wall-clock ones: on shared cores they show whether a difference
is work or waiting.

Programs (``--programs``):

* ``reference``: ``scripts/reference_tf1.py``'s graph (neural-style re-stated in TF1 style): its steps, then its
  losses and the image written to a PNG, as neural-style ends;
* ``command``: ``python -m neural_style --content ... --styles ... --output ... --width W --iterations N``;
* ``library``: :func:`neural_style.stylize` with the same settings, iterated in a child process (the command's
  loop without its reporting), to tell the library's cost from the command's.

The ratio printed is each program's slope over the reference's; the target is at most 1.0.

``--threads N`` runs every child with N intra-op and inter-op threads (``TF_NUM_INTRAOP_THREADS``,
``TF_NUM_INTEROP_THREADS``): with 1, CPU seconds measure the work alone, whatever the load of the machine.
``--in_process`` times the two steps side by side in this one process instead (the library's compiled Adam step,
``engines.AdamEngine``, against the reference graph's ``session.run``), ``--steps`` at a time, interleaved over
``--rounds``: it tells the step itself from the rest of a process.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG-19 .mat file.")
flags.DEFINE_string("content", None, "Content image.")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_integer("width", 256, "Output width in pixels; the style is scaled to the same width, as in neural-style.")
flags.DEFINE_list("iterations", ["10", "40"], "The two iteration counts A,B whose difference in time gives the slope.")
flags.DEFINE_integer("rounds", 3, "Interleaved rounds (best of N).")
flags.DEFINE_list("programs", ["reference", "command"], "Programs to time: reference, command, library.")
flags.DEFINE_integer("seed", 0, "Seed of the initial noise.")
flags.DEFINE_integer("threads", None, "Intra-op and inter-op threads of every TensorFlow (default: TensorFlow's).")
flags.DEFINE_boolean("in_process", False, "Time the two steps in this process, interleaved, instead of processes.")
flags.DEFINE_integer("steps", 5, "With --in_process: steps per round of each.")
flags.DEFINE_enum("mode", "main", ["main", "reference", "library"], "Internal: what a child process runs.")
flags.DEFINE_integer("child_iterations", 0, "Internal: a child's iterations.")
flags.DEFINE_string("output", None, "Internal: a child's output image.")

PROGRAMS = ("reference", "command", "library")


def _inputs():
    """The weights (cached), content and style sized as the command sizes them, the config and the start image."""
    from neural_style.config import StyleConfig
    from neural_style.image_io import read_image, resize, resize_styles, scaled_size
    from neural_style.matconvnet import default_cache_dir, load_vgg
    from neural_style.stylization import initial_image

    weights = load_vgg(FLAGS.network, cache_dir=default_cache_dir())
    content = read_image(FLAGS.content)
    content = resize(content, scaled_size(content.shape, FLAGS.width))
    styles = resize_styles([read_image(FLAGS.style)], None, content.shape[1])
    config = StyleConfig(iterations=FLAGS.child_iterations, seed=FLAGS.seed)
    start = initial_image(content, weights.mean_pixel, noiseblend=config.initial_noiseblend, seed=config.seed)
    return weights, content, styles, config, start


def _child_reference() -> None:
    import numpy as np

    from neural_style.image_io import to_uint8, write_image

    weights, content, styles, config, start = _inputs()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reference_tf1 import ReferenceGraph

    with ReferenceGraph(weights, content, styles, start, config) as graph:
        for _ in range(config.iterations):
            graph.step()
        graph.losses()  # neural-style evaluates the losses of its result before saving it
        image = graph.image()[0] + np.asarray(weights.mean_pixel, np.float32)
    write_image(FLAGS.output, to_uint8(image))


def _child_library() -> None:
    from neural_style.image_io import write_image
    from neural_style.stylization import stylize

    weights, content, styles, config, _ = _inputs()
    records = list(stylize(weights, content, styles, config))
    write_image(FLAGS.output, records[-1].image)


def _argv(program: str, iterations: int, output: str) -> list[str]:
    if program == "command":
        return [
            *(sys.executable, "-m", "neural_style", f"--network={FLAGS.network}", f"--content={FLAGS.content}"),
            *(f"--styles={FLAGS.style}", f"--output={output}", f"--width={FLAGS.width}"),
            *(f"--iterations={iterations}", f"--seed={FLAGS.seed}", "--overwrite"),
        ]
    return [
        *(sys.executable, str(Path(__file__).resolve()), f"--mode={program}", f"--network={FLAGS.network}"),
        *(f"--content={FLAGS.content}", f"--style={FLAGS.style}", f"--width={FLAGS.width}"),
        *(f"--child_iterations={iterations}", f"--seed={FLAGS.seed}", f"--output={output}"),
    ]


def _run(program: str, iterations: int, directory: str) -> float:
    """Wall seconds of one process, from spawn to exit."""
    output = os.path.join(directory, f"{program}_{iterations}.png")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **_thread_env())
    begin = time.perf_counter()
    process = subprocess.Popen(
        _argv(program, iterations, output), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - begin
    if process.returncode != 0 or not os.path.isfile(output):
        sys.stderr.write(stdout.decode(errors="replace") + stderr.decode(errors="replace"))
        raise SystemExit(f"{program} with {iterations} iterations failed with exit code {process.returncode}")
    return wall


def _thread_env() -> dict[str, str]:
    if FLAGS.threads is None:
        return {}
    return {"TF_NUM_INTRAOP_THREADS": str(FLAGS.threads), "TF_NUM_INTEROP_THREADS": str(FLAGS.threads)}


def _in_process() -> None:
    """Seconds per step of the library's Adam engine and of the reference graph, interleaved in this process."""
    os.environ.update(_thread_env())  # before TensorFlow starts its thread pools
    import numpy as np

    from neural_style.engines import AdamEngine
    from neural_style.stylization import build_objective

    FLAGS.child_iterations = 1
    weights, content, styles, config, start = _inputs()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from reference_tf1 import ReferenceGraph

    objective = build_objective(weights, content, styles, config)
    params = {"blend": np.ones((1, 1), np.float32), "style_weight": np.array([config.style_weight], np.float32)}
    settings = (config.learning_rate, config.beta1, config.beta2, config.epsilon)
    engine = AdamEngine(objective, start, params, settings)
    with ReferenceGraph(weights, content, styles, start, config) as graph:
        steps = {"reference": graph.step, "library": engine.step}
        for step in steps.values():
            step()
            step()
        wall: dict[str, list[float]] = {name: [] for name in steps}
        cpu: dict[str, list[float]] = {name: [] for name in steps}
        threads = FLAGS.threads or "default"
        print(f"{content.shape[1]} px, in one process, {FLAGS.steps} steps a round, threads {threads}")
        for round_ in range(FLAGS.rounds):
            order = list(steps.items()) if round_ % 2 == 0 else list(steps.items())[::-1]
            for name, step in order:
                begin, clock = time.perf_counter(), time.process_time()
                for _ in range(FLAGS.steps):
                    step()
                wall[name].append((time.perf_counter() - begin) / FLAGS.steps)
                cpu[name].append((time.process_time() - clock) / FLAGS.steps)
            figures = "  ".join(f"{n} {wall[n][-1]:.3f} s (cpu {cpu[n][-1]:.3f})" for n in steps)
            print(f"round {round_ + 1}: {figures}   load {os.getloadavg()[0]:.1f}", flush=True)
    best = {n: min(wall[n]) for n in steps}
    best_cpu = {n: min(cpu[n]) for n in steps}
    print(
        f"\nbest of {FLAGS.rounds}: reference {best['reference']:.3f} s/step (cpu {best_cpu['reference']:.3f}), "
        f"library {best['library']:.3f} s/step (cpu {best_cpu['library']:.3f}): ratio "
        f"{best['library'] / best['reference']:.2f} (cpu {best_cpu['library'] / best_cpu['reference']:.2f})"
    )


def _timed(program: str, iterations: int, directory: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one process."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = _run(program, iterations, directory)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _slope(times: dict[int, float], low: int, high: int) -> float:
    return (times[high] - times[low]) / (high - low)


def _main() -> None:
    if not (FLAGS.network and FLAGS.content and FLAGS.style):
        raise app.UsageError("--network, --content and --style are required")
    try:
        low, high = (int(n) for n in FLAGS.iterations)
    except ValueError:
        raise app.UsageError("--iterations takes two counts, e.g. 10,40") from None
    if not 1 <= low < high:
        raise app.UsageError("--iterations takes two increasing counts, e.g. 10,40")
    programs = list(FLAGS.programs)
    unknown = sorted(set(programs) - set(PROGRAMS))
    if unknown or "reference" not in programs:
        raise app.UsageError(f"--programs takes reference and any of {', '.join(PROGRAMS[1:])}")
    import multiprocessing

    print(
        f"{FLAGS.width} px, float32 Adam, iterations {low} and {high}, {FLAGS.rounds} rounds, "
        f"{multiprocessing.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start",
        flush=True,
    )
    wall: dict[str, dict[int, list[float]]] = {p: {low: [], high: []} for p in programs}
    cpu: dict[str, dict[int, list[float]]] = {p: {low: [], high: []} for p in programs}
    runs = [(p, n) for n in (low, high) for p in programs]
    with tempfile.TemporaryDirectory(prefix="neural-style-iteration-") as directory:
        _run("reference", 1, directory)  # warms the network cache and the file system for every program
        for round_ in range(FLAGS.rounds):
            order = runs if round_ % 2 == 0 else runs[::-1]
            for program, n in order:
                seconds, cpu_seconds = _timed(program, n, directory)
                wall[program][n].append(seconds)
                cpu[program][n].append(cpu_seconds)
            slopes = {p: _slope({n: wall[p][n][-1] for n in (low, high)}, low, high) for p in programs}
            cpu_slopes = {p: _slope({n: cpu[p][n][-1] for n in (low, high)}, low, high) for p in programs}
            figures = "  ".join(
                f"{p} {wall[p][low][-1]:.1f}/{wall[p][high][-1]:.1f} s -> {slopes[p]:.3f} s/it "
                f"(cpu {cpu_slopes[p]:.3f})"
                for p in programs
            )
            ratios = "  ".join(f"{p} {slopes[p] / slopes['reference']:.2f}" for p in programs if p != "reference")
            print(f"round {round_ + 1}: {figures}   ratio {ratios}   load {os.getloadavg()[0]:.1f}", flush=True)
    best = {p: _slope({n: min(wall[p][n]) for n in (low, high)}, low, high) for p in programs}
    best_cpu = {p: _slope({n: min(cpu[p][n]) for n in (low, high)}, low, high) for p in programs}
    print(f"\nbest of {FLAGS.rounds} (fastest process of each length): seconds per iteration")
    for p in programs:
        per_round = [_slope({n: wall[p][n][r] for n in (low, high)}, low, high) for r in range(FLAGS.rounds)]
        print(
            f"  {p:9s} {best[p]:.3f} s/it (cpu {best_cpu[p]:.3f})   ratio {best[p] / best['reference']:.2f} "
            f"(cpu {best_cpu[p] / best_cpu['reference']:.2f})   median of rounds {statistics.median(per_round):.3f}"
        )


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.mode == "reference":
        _child_reference()
    elif FLAGS.mode == "library":
        _child_library()
    elif FLAGS.in_process:
        if not (FLAGS.network and FLAGS.content and FLAGS.style):
            raise app.UsageError("--network, --content and --style are required")
        _in_process()
    else:
        _main()


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
