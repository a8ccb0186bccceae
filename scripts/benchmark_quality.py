"""Quality per second, judged by the files written: neural-style's default run against this project's routes.

Example (the setting of the speed goal: 256 px, 2 CPU cores)::

    python scripts/benchmark_quality.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg \\
        --width 256 --out_dir /tmp/quality --rounds 2

Every method is a separate process, timed from its start (``subprocess`` spawn) to its exit, so the times include
starting Python, importing TensorFlow, loading the network, building and tracing, and writing the PNG. Rounds run
the methods interleaved (reference, routes, reference, routes, ...) and the report gives each method's median.

* ``reference``: neural-style's default run: 300 Adam iterations (lr 10) from the content image, its TF1 graph as
  ``scripts/reference_tf1.py`` re-states it, in a child process of this script; the image is saved as
  neural-style saves it (clipped to 0..255 and truncated to uint8). Its network comes from this project's loader
  (cached), so its start-up is if anything shorter than neural-style's own (which reads the .mat with scipy).
* the routes (``--routes``, ``ROUTES`` below): ``neural-style`` command lines from the same start (``--initial`` =
  the content image), seed 0, neural-style's loss weights, each with a fixed number of iterations: Adam with and
  without ``--clip`` and ``--average_decay`` at the reference's 300 iterations (same work, compare the files), and
  the fast routes (L-BFGS, bfloat16, coarse to fine) with the fewest iterations found to reach the reference
  file's loss (see ``--curves``).

Every PNG is scored the same way (:func:`neural_style.scoring.score_images` on the float32 network: content, style
and total variation loss of the image read back from the file, the yardstick ``neural-style-score`` prints). Next
to it the report gives the loss the optimiser printed last (Adam's is that of its unclipped iterate, which is never
written). With ``--curves`` the routes also write a checkpoint PNG every iteration (which costs a forward pass and a
PNG each); the report then gives time-to-quality curves from those files: their modification times since the
process started, and their losses scored like the final files.

``--conv_microbench`` instead times a 3x3 convolution (1x128x128x256 -> 256 channels) and a VGG-19 forward and
backward pass at ``--width`` in float32 and bfloat16 (with and without XLA) and prints GFLOP/s and the ratios.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG-19 .mat file.")
flags.DEFINE_string("content", None, "Content image.")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_integer("width", 256, "Output width in pixels; the style is scaled to the same width (style scale 1).")
flags.DEFINE_integer("reference_iterations", 300, "Adam iterations of the reference (neural-style's default run).")
flags.DEFINE_list("routes", None, "Routes to run (default: all; 'fast': the fast ones); see ROUTES in the script.")
flags.DEFINE_boolean(
    "curves",
    False,
    "Routes also write a checkpoint PNG every iteration, for time-to-quality curves (their times then include it).",
)
flags.DEFINE_integer("rounds", 1, "Interleaved rounds of every method; the report gives medians.")
flags.DEFINE_string("out_dir", "benchmark_quality", "Directory for every method's PNGs, checkpoints and logs.")
flags.DEFINE_float("target", None, "The loss a route's file must reach (default: the reference file's).")
flags.DEFINE_boolean("conv_microbench", False, "Time a 3x3 conv and a VGG-19 forward+backward in float32/bfloat16.")
flags.DEFINE_integer("repeats", 10, "Microbenchmark: timed runs of each case (after two warm-up runs).")
flags.DEFINE_string("child", None, "Internal: run the reference in this process and write this PNG.")

# name: neural-style flags (besides the inputs, --width, --initial = the content, --seed 0). The stage count of
# --scales shares the iterations equally.
ROUTES: dict[str, list[str]] = {
    "adam": ["--iterations=300"],
    "adam_clip": ["--iterations=300", "--clip"],
    "adam_average": ["--iterations=300", "--average_decay=0.9"],
    "lbfgs_10": ["--optimizer=lbfgs", "--iterations=10"],
    "lbfgs_bf16_10": ["--optimizer=lbfgs", "--iterations=10", "--precision=bfloat16"],
    "lbfgs_scales_bf16_8": ["--optimizer=lbfgs", "--iterations=8", "--scales=2", "--precision=bfloat16"],
    "lbfgs_scales3_bf16_6": ["--optimizer=lbfgs", "--iterations=6", "--scales=3", "--precision=bfloat16"],
}
FAST = ["lbfgs_10", "lbfgs_bf16_10", "lbfgs_scales_bf16_8", "lbfgs_scales3_bf16_6"]


def _weights():
    from neural_style.matconvnet import default_cache_dir, load_vgg

    return load_vgg(FLAGS.network, cache_dir=default_cache_dir())


def _content() -> np.ndarray:
    from neural_style.image_io import read_image, resize, scaled_size

    content = read_image(FLAGS.content, what="--content image")
    return resize(content, scaled_size(content.shape, FLAGS.width))


def _style(width: int) -> np.ndarray:
    from neural_style.image_io import read_image, resize_styles

    return resize_styles([read_image(FLAGS.style, what="--style image")], None, width)[0]


# ----------------------------------------------------------------------------------------------- the reference


def _reference_child(output: str) -> None:
    """neural-style's default run from the content image, written as neural-style writes it (clip, truncate)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from PIL import Image
    from reference_tf1 import ReferenceGraph

    from neural_style.config import StyleConfig

    weights, content = _weights(), _content()
    style = _style(content.shape[1])
    start = (content - weights.mean_pixel)[None].astype(np.float32)
    with ReferenceGraph(weights, content, [style], start, StyleConfig()) as graph:
        for _ in range(FLAGS.reference_iterations):
            graph.step()
        losses = graph.losses()
        image = graph.image()[0] + weights.mean_pixel
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(output)
    print(f"total loss: {losses['total']:g}")


# ------------------------------------------------------------------------------------------------ the methods


def _run(name: str, out_dir: Path) -> dict:
    """Runs one method as a process; returns its wall time, printed loss and output path."""
    output = out_dir / f"{name}.png"
    for old in [output, *out_dir.glob(f"{name}_ck_*.png")]:
        old.unlink(missing_ok=True)
    if name == "reference":
        argv = [sys.executable, __file__, f"--child={output}", *_shared_flags()]
        argv.append(f"--reference_iterations={FLAGS.reference_iterations}")
    else:
        argv = [sys.executable, "-m", "neural_style", f"--content={FLAGS.content}", f"--styles={FLAGS.style}"]
        argv += [f"--output={output}", f"--network={FLAGS.network}", f"--width={FLAGS.width}"]
        argv += [f"--initial={FLAGS.content}", "--seed=0", "--overwrite", "--nomemory_guard", *ROUTES[name]]
        if FLAGS.curves:
            argv += ["--checkpoint_iterations=1", f"--checkpoint_output={out_dir / (name + '_ck_{}.png')}"]
    start = time.time()
    result = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    seconds = time.time() - start
    (out_dir / f"{name}.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed ({result.returncode}): {result.stderr.strip()[-400:]}")
    printed = re.findall(r"^\s*total loss: (\S+)$", result.stdout, re.MULTILINE)
    iterations = re.findall(r"^Iteration +(\d+)/", result.stdout, re.MULTILINE)
    curve = [
        (path.stat().st_mtime - start, int(re.search(r"_ck_(\d+)", path.name).group(1)), path)
        for path in out_dir.glob(f"{name}_ck_*.png")
    ]
    return {
        "seconds": seconds,
        "printed": float(printed[-1]) if printed else math.nan,
        "iterations": int(iterations[-1]) if iterations else FLAGS.reference_iterations,
        "output": output,
        "curve": sorted(curve),
    }


def _shared_flags() -> list[str]:
    return [
        f"--network={FLAGS.network}",
        f"--content={FLAGS.content}",
        f"--style={FLAGS.style}",
        f"--width={FLAGS.width}",
    ]


def _scorer() -> Callable[[Sequence[Path]], list[float]]:
    """The total loss of PNG files, as ``neural-style-score`` computes it (float32 network)."""
    from neural_style.config import StyleConfig
    from neural_style.image_io import read_image
    from neural_style.scoring import score_images

    weights, content = _weights(), _content()
    style = _style(content.shape[1])

    def score(paths: Sequence[Path]) -> list[float]:
        """NaN for an image of another size (a coarse stage's checkpoint)."""
        images = [read_image(str(p)) for p in paths]
        full = [i for i, image in enumerate(images) if image.shape == content.shape]
        losses = [math.nan] * len(images)
        if full:
            totals = score_images(weights, content, [style], np.stack([images[i] for i in full]), StyleConfig())
            for i, value in zip(full, totals["total"], strict=True):
                losses[i] = float(value)
        return losses

    return score


def _quality() -> None:
    if not (FLAGS.network and FLAGS.content and FLAGS.style):
        raise app.UsageError("--network, --content and --style are required")
    routes = FAST if FLAGS.routes == ["fast"] else FLAGS.routes or list(ROUTES)
    unknown = sorted(set(routes) - set(ROUTES))
    if unknown:
        raise app.UsageError(f"--routes: unknown {', '.join(unknown)}; choose from {', '.join(ROUTES)}")
    out_dir = Path(FLAGS.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    import tensorflow as tf

    score = _scorer()
    print(
        f"content {FLAGS.width} px wide, style {os.path.basename(FLAGS.style)}, reference: "
        f"{FLAGS.reference_iterations} Adam iterations from the content; {FLAGS.rounds} round(s), "
        f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}",
        flush=True,
    )
    runs: dict[str, list[dict]] = {name: [] for name in ["reference", *routes]}
    target = FLAGS.target
    for round_ in range(FLAGS.rounds):
        for name in runs:
            run = _run(name, out_dir)
            run["saved"] = score([run["output"]])[0]
            if name == "reference" and FLAGS.target is None:
                target = run["saved"]
            if run["curve"]:
                losses = score([path for _, _, path in run["curve"]])
                run["curve"] = [
                    (t, k, loss) for (t, k, _), loss in zip(run["curve"], losses, strict=True) if not math.isnan(loss)
                ]
            runs[name].append(run)
            print(
                f"round {round_ + 1} {name:18s} {run['seconds']:7.1f} s  {run['iterations']:4d} iterations  "
                f"printed {run['printed']:10.6g}  saved file {run['saved']:10.6g}",
                flush=True,
            )
    _report(runs, target)


def _report(runs: dict[str, list[dict]], target: float | None) -> None:
    reference = statistics.median(r["seconds"] for r in runs["reference"])
    print()
    print("seconds: wall time from process start to exit (median of the rounds); printed: the total loss the")
    print("optimiser printed last; saved: the loss of the PNG it wrote, read back (the yardstick); ratio: seconds")
    print(f"against the reference's {reference:.1f} s; target: the reference file's loss {target:.6g}")
    header = (
        f"{'method':18s} {'iters':>5s} {'seconds':>8s} {'ratio':>7s} {'printed':>10s} {'saved':>10s} {'<= target':>9s}"
    )
    print(header)
    print("-" * len(header))
    for name, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        last = results[-1]
        reached = "yes" if target is not None and last["saved"] <= target else "no"
        print(
            f"{name:18s} {last['iterations']:5d} {seconds:8.1f} {seconds / reference:7.3f} {last['printed']:10.6g} "
            f"{last['saved']:10.6g} {reached:>9s}"
        )
    print()
    print(
        "time to quality (saved files): seconds from process start to the first checkpoint PNG at or below the target"
    )
    for name, results in runs.items():
        curve = results[-1]["curve"]
        if not curve:
            continue
        first = next(((t, k) for t, k, loss in curve if target is not None and loss <= target), None)
        points = ", ".join(f"{t:.1f}s:{loss:.4g}" for t, _, loss in curve[:: max(1, len(curve) // 8)])
        when = (
            "never" if first is None else f"{first[0]:.1f} s (iteration {first[1]}, ratio {first[0] / reference:.3f})"
        )
        print(f"  {name:18s} {when}; curve {points}")
    winners = [
        name
        for name, results in runs.items()
        if name != "reference"
        and results[-1]["saved"] <= (target or math.inf)
        and statistics.median(r["seconds"] for r in results) <= reference / 20
    ]
    print(f"goal (a saved PNG no worse than the reference's in <= 1/20 of its time): {', '.join(winners) or 'not met'}")
    summary = {
        name: {
            "seconds": [r["seconds"] for r in results],
            "printed": results[-1]["printed"],
            "saved": results[-1]["saved"],
            "iterations": results[-1]["iterations"],
        }
        for name, results in runs.items()
    }
    (Path(FLAGS.out_dir) / "summary.json").write_text(json.dumps({"target": target, "methods": summary}, indent=1))


# ---------------------------------------------------------------------------------------------- microbench


def _numpy(function: Callable, *args: object) -> np.ndarray:
    return function(*args).numpy()  # waits for the result


def _time(function: Callable[[], object], repeats: int) -> float:
    """Median seconds of ``repeats`` calls after two warm-up calls (tracing, oneDNN primitive creation)."""
    for _ in range(2):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _vgg_forward_flops(weights, layers: Sequence[str], height: int, width: int) -> float:
    """Multiply-adds x 2 of the convolutions up to the deepest of ``layers`` (SAME padding, 2x2 pools)."""
    flops = 0.0
    deepest = max(weights.layer_names.index(name) for name in layers)
    for layer in weights.layers[: deepest + 1]:
        if layer.kind == "conv":
            kh, kw, cin, cout = layer.kernel.shape
            flops += 2.0 * height * width * kh * kw * cin * cout
        elif layer.kind == "pool":
            height, width = -(-height // 2), -(-width // 2)
    return flops


def _microbench() -> None:
    import tensorflow as tf

    from neural_style.config import CONTENT_LAYERS, STYLE_LAYERS
    from neural_style.vgg import feature_extractor

    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
        cpu = f.read()
    features = [flag for flag in ("avx512_bf16", "amx_bf16") if flag in cpu]
    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, bfloat16 support: {', '.join(features) or 'none'}")
    print(f"median of {FLAGS.repeats} runs after 2 warm-up runs")

    rng = np.random.default_rng(0)
    x32 = tf.constant(rng.standard_normal((1, 128, 128, 256), np.float32))
    k32 = tf.constant(rng.standard_normal((3, 3, 256, 256), np.float32) * 0.03)
    conv_flops = 2.0 * 128 * 128 * 3 * 3 * 256 * 256
    conv = tf.function(lambda x, k: tf.nn.conv2d(x, k, 1, "SAME"))
    results: dict[str, float] = {}
    for dtype in (tf.float32, tf.bfloat16):
        x, k = tf.cast(x32, dtype), tf.cast(k32, dtype)
        results[dtype.name] = _time(functools.partial(_numpy, conv, x, k), FLAGS.repeats)
    print("\n3x3 conv 1x128x128x256 -> 256 channels:")
    for name, seconds in results.items():
        print(f"  {name:9s} {seconds * 1e3:8.2f} ms  {conv_flops / seconds / 1e9:7.1f} GFLOP/s")
    print(f"  bfloat16 speed-up: {results['float32'] / results['bfloat16']:.2f}x")

    if not FLAGS.network:
        print("\n(no --network: VGG-19 forward+backward skipped)")
        return
    weights = _weights()
    if FLAGS.content:
        height, width = _content().shape[:2]
    else:
        height, width = FLAGS.width, FLAGS.width
    layers = [*STYLE_LAYERS, CONTENT_LAYERS[0]]
    flops = 2.0 * _vgg_forward_flops(weights, layers, height, width)  # input gradients only: weights are frozen
    image = tf.constant(rng.standard_normal((1, height, width, 3), np.float32) * 50.0)
    print(f"\nVGG-19 forward + backward (to the input) at {width}x{height}, up to relu5_1; {flops / 1e9:.1f} GFLOP:")
    vgg: dict[str, float] = {}
    for precision in ("float32", "bfloat16"):
        model = feature_extractor(weights, layers, precision=precision, preprocessed=True)
        for xla in (False, True):

            @tf.function(jit_compile=xla)
            def step(images, model=model):
                with tf.GradientTape() as tape:
                    tape.watch(images)
                    outputs = model(images)
                    total = tf.add_n([tf.reduce_sum(tf.cast(v, tf.float32) ** 2) for v in outputs.values()])
                return tape.gradient(total, images)

            label = f"{precision}{' + XLA' if xla else ''}"
            try:
                vgg[label] = _time(functools.partial(_numpy, step, image), FLAGS.repeats)
            except Exception as e:  # noqa: BLE001 - XLA may not compile a case; report and go on
                print(f"  {label:16s} failed: {str(e).splitlines()[0][:100]}")
                continue
            print(f"  {label:16s} {vgg[label] * 1e3:8.1f} ms  {flops / vgg[label] / 1e9:7.1f} GFLOP/s")
    if "float32" in vgg:
        for label, seconds in vgg.items():
            if label != "float32":
                print(f"  {label} vs float32: {vgg['float32'] / seconds:.2f}x")


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected argument {argv[1]!r}")
    if FLAGS.child:
        _reference_child(FLAGS.child)
    elif FLAGS.conv_microbench:
        _microbench()
    else:
        _quality()


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
