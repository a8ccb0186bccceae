"""Speed and memory of neural_style's loader and optimisation loop, optionally next to neural-style's TF1 graph.

Example::

    python scripts/benchmark.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg \\
        --width 256 --iterations 20 --reference

Every measurement runs in a child process of its own (this script in a hidden ``--mode``), so that each peak RSS
(``ru_maxrss``) belongs to one thing only:

* load from .mat: ``load_vgg`` with an empty temporary cache directory (reads the .mat, writes the cache);
* load from cache: ``load_vgg`` again, now served by the cache;
* baseline: the same child importing numpy and the loader but loading nothing;
* TensorFlow baseline: a child that imports TensorFlow and Keras and does nothing else;
* ours: ``stylize`` with neural-style's default settings (noise start, no printing or checkpoints);
* reference (``--reference``): ``scripts/reference_tf1.py``, the TF1 graph, on the same inputs and start image.

"first iteration" is from the call (stylize / building the reference graph) to the end of step 1, so it includes
building the network, computing the targets and tracing or optimising the graph; "from process start" adds starting
Python, importing TensorFlow and the cached load. Seconds per iteration are over steps 2 .. N-1: the first step
includes tracing and our last one also evaluates all losses and builds the result image (shown separately).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG .mat file.")
flags.DEFINE_string("content", None, "Content image.")
flags.DEFINE_multi_string("style", None, "Style image; repeat for several.")
flags.DEFINE_integer("width", 256, "Content width in pixels; styles are scaled to the same width, as in neural-style.")
flags.DEFINE_integer("iterations", 20, "Optimisation steps per run (at least 3).")
flags.DEFINE_boolean("reference", False, "Also time the TF1 reference graph (scripts/reference_tf1.py).")
flags.DEFINE_integer("seed", 0, "Seed of the initial noise.")
flags.DEFINE_enum(
    "mode",
    "main",
    ["main", "load_baseline", "load_mat", "load_cache", "import_tf", "ours", "reference"],
    "Internal: what a child process measures.",
)
flags.DEFINE_string("cache_dir", None, "Internal: the cache directory the children share.")

SCRIPTS = Path(__file__).resolve().parent


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _emit(result: dict) -> None:
    result["peak_rss_mb"] = _peak_rss_mb()
    print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------------- children


def _child_load(mode: str) -> None:
    from neural_style.matconvnet import load_vgg

    if mode == "load_baseline":
        _emit({"seconds": 0.0})
        return
    start = time.perf_counter()
    load_vgg(FLAGS.network, cache_dir=FLAGS.cache_dir)
    _emit({"seconds": time.perf_counter() - start})


def _child_import_tf() -> None:
    # imported only to measure what importing them costs
    import keras  # noqa: F401
    import tensorflow  # noqa: F401

    _emit({})


def _inputs():
    """Weights (from the cache), content and styles as neural-style sizes them, the config and the start image."""
    from neural_style.config import StyleConfig
    from neural_style.image_io import read_image, resize, scaled_size
    from neural_style.matconvnet import load_vgg
    from neural_style.stylization import initial_image

    weights = load_vgg(FLAGS.network, cache_dir=FLAGS.cache_dir)
    content = read_image(FLAGS.content, what="--content image")
    content = resize(content, scaled_size(content.shape, FLAGS.width))
    styles = []
    for path in FLAGS.style:
        style = read_image(path, what="--style image")
        styles.append(resize(style, scaled_size(style.shape, content.shape[1])))
    config = StyleConfig(iterations=FLAGS.iterations, seed=FLAGS.seed)
    start = initial_image(content, weights.mean_pixel, noiseblend=config.initial_noiseblend, seed=config.seed)
    return weights, content, styles, config, start


def _child_ours() -> None:
    weights, content, styles, config, _ = _inputs()
    import tensorflow as tf

    from neural_style.stylization import stylize

    times = []
    last = time.perf_counter()
    first_end = None
    for record in stylize(weights, content, styles, config):
        if record.iteration == 0:  # the start's losses: the timing is of the steps
            continue
        now = time.perf_counter()
        times.append(now - last)
        last = now
        if first_end is None:
            first_end = time.time()
    _emit(
        {
            "first": times[0],
            "steps": times[1:],
            "first_end": first_end,
            "tensorflow": tf.__version__,
            "content_shape": list(content.shape),
            "style_shapes": [list(s.shape) for s in styles],
        }
    )


def _child_reference() -> None:
    weights, content, styles, config, start = _inputs()
    sys.path.insert(0, str(SCRIPTS))
    from reference_tf1 import reference_timing

    timing = reference_timing(weights, content, styles, start, config, config.iterations)
    _emit({"first": timing.first_iteration, "setup": timing.setup, "steps": list(timing.steps[1:])})


# ------------------------------------------------------------------------------------------------- main


def _run_child(mode: str, cache_dir: str) -> dict:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        f"--mode={mode}",
        f"--cache_dir={cache_dir}",
        f"--network={FLAGS.network}",
        f"--width={FLAGS.width}",
        f"--iterations={FLAGS.iterations}",
        f"--seed={FLAGS.seed}",
    ]
    if FLAGS.content:
        argv.append(f"--content={FLAGS.content}")
    argv += [f"--style={path}" for path in FLAGS.style or ()]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    spawned = time.time()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"benchmark child --mode={mode} failed with exit code {done.returncode}")
    result = json.loads(lines[-1][len("RESULT ") :])
    result["spawned"] = spawned
    return result


def _per_step(steps: list[float]) -> str:
    """Mean, median and minimum over steps 2 .. N-1 (the list holds steps 2 .. N)."""
    window = steps[:-1] if len(steps) > 1 else steps
    return (
        f"mean {statistics.fmean(window):.3f}   median {statistics.median(window):.3f}   "
        f"min {min(window):.3f}   (n={len(window)})"
    )


def _load_figures(result: dict) -> str:
    return f"{result['seconds']:.2f} s   peak RSS {result['peak_rss_mb']:.0f} MiB"


def _main() -> None:
    if not (FLAGS.network and FLAGS.content and FLAGS.style):
        raise app.UsageError("--network, --content and --style are required")
    if FLAGS.iterations < 3:
        raise app.UsageError("--iterations must be at least 3")

    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="neural-style-bench-") as cache_dir:
        baseline = _run_child("load_baseline", cache_dir)
        from_mat = _run_child("load_mat", cache_dir)  # the cache directory is empty: reads the .mat, writes the cache
        from_cache = _run_child("load_cache", cache_dir)
        tf_only = _run_child("import_tf", cache_dir)
        ours = _run_child("ours", cache_dir)
        reference = _run_child("reference", cache_dir) if FLAGS.reference else None

    height, width = ours["content_shape"][:2]
    styles = ", ".join(f"{s[1]}x{s[0]}" for s in ours["style_shapes"])
    print(f"network {FLAGS.network} ({os.path.getsize(FLAGS.network) / 2**20:.1f} MiB)")
    print(f"content {width}x{height}, style(s) {styles}, {FLAGS.iterations} iterations, seed {FLAGS.seed}")
    print(f"TensorFlow {ours['tensorflow']}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print()
    rows += [
        ("load from .mat (empty cache; writes it)", _load_figures(from_mat)),
        ("load from cache", _load_figures(from_cache)),
        ("  (same child, loading nothing)", f"           peak RSS {baseline['peak_rss_mb']:.0f} MiB"),
        ("ours: first iteration (from stylize call)", f"{ours['first']:.2f} s"),
        ("ours: first iteration (from process start)", f"{ours['first_end'] - ours['spawned']:.2f} s"),
        (f"ours: s/iteration, steps 2..{FLAGS.iterations - 1}", _per_step(ours["steps"])),
        ("ours: last iteration (+ losses, result)", f"{ours['steps'][-1]:.3f} s"),
        ("ours: peak RSS", f"{ours['peak_rss_mb']:.0f} MiB"),
        ("  (a child importing TensorFlow only)", f"{tf_only['peak_rss_mb']:.0f} MiB"),
    ]
    if reference is not None:
        ours_steps, reference_steps = ours["steps"][:-1], reference["steps"][:-1]
        ratio = (
            f"median {statistics.median(ours_steps) / statistics.median(reference_steps):.2f}   "
            f"min {min(ours_steps) / min(reference_steps):.2f}"
        )
        rows += [
            ("reference: first iteration (from set-up)", f"{reference['first']:.2f} s"),
            ("reference: of which set-up (targets, graph)", f"{reference['setup']:.2f} s"),
            (f"reference: s/iteration, steps 2..{FLAGS.iterations - 1}", _per_step(reference["steps"])),
            ("reference: peak RSS", f"{reference['peak_rss_mb']:.0f} MiB"),
            ("ours / reference, s/iteration", ratio),
        ]
    size = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{size}}   {value}")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.mode == "main":
        _main()
    elif FLAGS.mode.startswith("load_"):
        _child_load(FLAGS.mode)
    elif FLAGS.mode == "import_tf":
        _child_import_tf()
    elif FLAGS.mode == "ours":
        _child_ours()
    else:
        _child_reference()


if __name__ == "__main__":
    app.run(main)
