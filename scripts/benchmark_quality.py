"""Quality per second, judged by the files written: neural-style's default run against this project's routes, on a
set of content/style pairs.

Example (the setting of the speed goal: 256 px, 2 CPU cores, every pair of the set)::

    pip install scikit-image  # the set's photos and textures; a benchmark-only dependency
    python scripts/benchmark_quality.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --images ../shared/images --width 256 --routes readme --out_dir /tmp/quality

(``--routes readme``: the README's route alone; the README's table also ran ``lbfgs_scales3_bf16_6``, the route it
gave before, which was tuned on the first pair.)

The set (``PAIRS``): ``grace_hopper.jpg`` with ``starry_night.jpg`` from ``--images`` (a portrait and a painting),
and five pairs of the sample images scikit-image ships (written as PNGs into ``--out_dir``): a colour portrait with
a grey brick wall, a still life with grey gravel, a cat with grey grass, a rocket launch with a deep-sky photograph,
and a grey photograph with a colour micrograph of stained tissue. ``--pairs`` picks some; ``--content`` and
``--style`` give one pair of your own instead.

Every method is a separate process, timed from its start (``subprocess`` spawn) to its exit, so the times include
starting Python, importing TensorFlow, loading the network, building and tracing, and writing the PNG. Rounds run
the methods interleaved, pair by pair (reference, routes, the next pair's reference, routes, ...), and the report
gives each method's median on each pair.

* ``reference``: neural-style's default run: 300 Adam iterations (lr 10) from the content image, its TF1 graph as
  ``scripts/reference_tf1.py`` re-states it, in a child process of this script; the image is saved as
  neural-style saves it (clipped to 0..255 and truncated to uint8). Its network comes from this project's loader
  (cached), so its start-up is if anything shorter than neural-style's own (which reads the .mat with scipy).
* the routes (``--routes``, ``ROUTES`` below; ``readme``: the README's fastest route, ``fast``: it and its
  alternatives): ``neural-style`` command lines from the same start (``--initial`` = the content image), seed 0,
  neural-style's loss weights. None knows the reference's result: a stop rule judges the route's own saved image.

Every PNG is scored the same way (:func:`neural_style.scoring.score_images` on the float32 network: content, style
and total variation loss of the image read back from the file, the yardstick ``neural-style-score`` prints). Next
to it the report gives the loss the optimiser printed last (Adam's is that of its unclipped iterate, which is never
written). With ``--curves`` the routes also write a checkpoint PNG every iteration (which costs a forward pass and a
PNG each); the report then gives time-to-quality curves from those files: their modification times since the
process started, and their losses scored like the final files.

The goal: on every pair, the route's file scores no worse than the reference's, in at most 1/25 of the reference's
time on that pair (the report's last lines: the worst pair's ratio).

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
flags.DEFINE_string("images", "../shared/images", "Folder of grace_hopper.jpg and starry_night.jpg (the first pair).")
flags.DEFINE_list("pairs", None, "Pairs of the set to run (default: all); see PAIRS in the script.")
flags.DEFINE_string("content", None, "Content image of a pair of your own (with --style; instead of the set).")
flags.DEFINE_string("style", None, "Style image of a pair of your own.")
flags.DEFINE_integer("width", 256, "Output width in pixels; the style is scaled to the same width (style scale 1).")
flags.DEFINE_integer("reference_iterations", 300, "Adam iterations of the reference (neural-style's default run).")
flags.DEFINE_list("routes", None, "Routes to run (default: all; 'readme', 'fast'); see ROUTES in the script.")
flags.DEFINE_boolean(
    "curves",
    False,
    "Routes also write a checkpoint PNG every iteration, for time-to-quality curves (their times then include it).",
)
flags.DEFINE_integer("rounds", 1, "Interleaved rounds of every method; the report gives medians.")
flags.DEFINE_string("out_dir", "benchmark_quality", "Directory for every method's PNGs, checkpoints and logs.")
flags.DEFINE_boolean("conv_microbench", False, "Time a 3x3 conv and a VGG-19 forward+backward in float32/bfloat16.")
flags.DEFINE_integer("repeats", 10, "Microbenchmark: timed runs of each case (after two warm-up runs).")
flags.DEFINE_string("child", None, "Internal: run the reference in this process and write this PNG.")

GOAL = 25  # a route must take at most 1/GOAL of the reference's time on every pair

# name: (content, style); "shared:NAME" is a file of --images, "skimage:NAME" a sample image of scikit-image.
PAIRS: dict[str, tuple[str, str]] = {
    "hopper_starry": ("shared:grace_hopper.jpg", "shared:starry_night.jpg"),
    "astronaut_brick": ("skimage:astronaut", "skimage:brick"),
    "coffee_gravel": ("skimage:coffee", "skimage:gravel"),
    "chelsea_grass": ("skimage:chelsea", "skimage:grass"),
    "rocket_hubble": ("skimage:rocket", "skimage:hubble_deep_field"),
    "camera_stain": ("skimage:camera", "skimage:immunohistochemistry"),
}

# name: neural-style flags (besides the inputs, --width, --initial = the content, --seed 0). The stage count of
# --scales shares the iterations equally, unless --stage_iterations gives each stage's.
ROUTES: dict[str, list[str]] = {
    "adam": ["--iterations=300"],
    "adam_clip": ["--iterations=300", "--clip"],
    "adam_average": ["--iterations=300", "--average_decay=0.9"],
    "lbfgs_10": ["--optimizer=lbfgs", "--iterations=10"],
    "lbfgs_bf16_10": ["--optimizer=lbfgs", "--iterations=10", "--precision=bfloat16"],
    "lbfgs_scales_bf16_8": ["--optimizer=lbfgs", "--iterations=8", "--scales=2", "--precision=bfloat16"],
    "lbfgs_scales3_bf16_6": ["--optimizer=lbfgs", "--iterations=6", "--scales=3", "--precision=bfloat16"],
    "lbfgs_stages_bf16_40_20_2": [
        "--optimizer=lbfgs",
        "--scales=3",
        "--stage_iterations=40,20,2",
        "--precision=bfloat16",
    ],
}
README_ROUTE = "lbfgs_stages_bf16_40_20_2"
FAST = ["lbfgs_10", "lbfgs_bf16_10", "lbfgs_scales_bf16_8", "lbfgs_scales3_bf16_6", "lbfgs_stages_bf16_40_20_2"]


def _weights():
    from neural_style.matconvnet import default_cache_dir, load_vgg

    return load_vgg(FLAGS.network, cache_dir=default_cache_dir())


def _content(path: str) -> np.ndarray:
    from neural_style.image_io import read_image, resize, scaled_size

    content = read_image(path, what="--content image")
    return resize(content, scaled_size(content.shape, FLAGS.width))


def _style(path: str, width: int) -> np.ndarray:
    from neural_style.image_io import read_image, resize_styles

    return resize_styles([read_image(path, what="--style image")], None, width)[0]


def _source(source: str, out_dir: Path) -> str:
    """The path of an image of the set: a file of --images, or a scikit-image sample written as a PNG."""
    kind, name = source.split(":", 1)
    if kind == "shared":
        path = Path(FLAGS.images) / name
        if not path.is_file():
            raise app.UsageError(f"{path} does not exist; give --images the folder of {name} (or --content, --style)")
        return str(path)
    path = out_dir / "images" / f"{name}.png"
    if not path.exists():
        try:
            import skimage.data
        except ImportError:
            raise app.UsageError(
                "the set's photos and textures come with scikit-image: pip install scikit-image "
                "(or give --content and --style)"
            ) from None
        from PIL import Image

        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(getattr(skimage.data, name)()).save(path)
    return str(path)


def _pairs(out_dir: Path) -> dict[str, tuple[str, str]]:
    """{pair name: (content path, style path)} of this run."""
    if FLAGS.content or FLAGS.style:
        if not (FLAGS.content and FLAGS.style):
            raise app.UsageError("give --content and --style together (a pair of your own), or neither (the set)")
        return {"custom": (FLAGS.content, FLAGS.style)}
    names = FLAGS.pairs or list(PAIRS)
    unknown = sorted(set(names) - set(PAIRS))
    if unknown:
        raise app.UsageError(f"--pairs: unknown {', '.join(unknown)}; choose from {', '.join(PAIRS)}")
    return {name: (_source(PAIRS[name][0], out_dir), _source(PAIRS[name][1], out_dir)) for name in names}


# ----------------------------------------------------------------------------------------------- the reference


def _reference_child(output: str) -> None:
    """neural-style's default run from the content image, written as neural-style writes it (clip, truncate)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from PIL import Image
    from reference_tf1 import ReferenceGraph

    from neural_style.config import StyleConfig

    weights, content = _weights(), _content(FLAGS.content)
    style = _style(FLAGS.style, content.shape[1])
    start = (content - weights.mean_pixel)[None].astype(np.float32)
    with ReferenceGraph(weights, content, [style], start, StyleConfig()) as graph:
        for _ in range(FLAGS.reference_iterations):
            graph.step()
        losses = graph.losses()
        image = graph.image()[0] + weights.mean_pixel
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(output)
    print(f"total loss: {losses['total']:g}")


# ------------------------------------------------------------------------------------------------ the methods


def _run(name: str, content: str, style: str, out_dir: Path) -> dict:
    """Runs one method as a process; returns its wall time, printed loss and output path."""
    output = out_dir / f"{name}.png"
    for old in [output, *out_dir.glob(f"{name}_ck_*.png")]:
        old.unlink(missing_ok=True)
    shared = [f"--network={FLAGS.network}", f"--content={content}", f"--width={FLAGS.width}"]
    if name == "reference":
        argv = [sys.executable, __file__, f"--child={output}", *shared, f"--style={style}"]
        argv.append(f"--reference_iterations={FLAGS.reference_iterations}")
    else:
        argv = [sys.executable, "-m", "neural_style", *shared, f"--styles={style}", f"--output={output}"]
        argv += [f"--initial={content}", "--seed=0", "--overwrite", "--nomemory_guard", *ROUTES[name]]
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
    evaluations = re.findall(r"\[(\d+) evaluations\]", result.stdout)
    curve = [
        (path.stat().st_mtime - start, int(re.search(r"_ck_(\d+)", path.name).group(1)), path)
        for path in out_dir.glob(f"{name}_ck_*.png")
    ]
    return {
        "seconds": seconds,
        "printed": float(printed[-1]) if printed else math.nan,
        "iterations": int(iterations[-1]) if iterations else FLAGS.reference_iterations,
        "evaluations": int(evaluations[-1]) if evaluations else None,  # counted over all stages
        "output": output,
        "curve": sorted(curve),
    }


def _scorer(content_path: str, style_path: str) -> Callable[[Sequence[Path]], list[float]]:
    """The total loss of PNG files, as ``neural-style-score`` computes it (float32 network)."""
    from neural_style.config import StyleConfig
    from neural_style.image_io import read_image
    from neural_style.scoring import score_images

    weights, content = _weights(), _content(content_path)
    style = _style(style_path, content.shape[1])

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
    if not FLAGS.network:
        raise app.UsageError("--network is required")
    if FLAGS.routes == ["readme"]:
        routes = [README_ROUTE]
    elif FLAGS.routes == ["fast"]:
        routes = FAST
    else:
        routes = FLAGS.routes or list(ROUTES)
    unknown = sorted(set(routes) - set(ROUTES))
    if unknown:
        raise app.UsageError(f"--routes: unknown {', '.join(unknown)}; choose from {', '.join(ROUTES)}")
    out_dir = Path(FLAGS.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = _pairs(out_dir)
    import tensorflow as tf

    scorers = {pair: _scorer(*paths) for pair, paths in pairs.items()}
    print(
        f"{len(pairs)} pair(s) at {FLAGS.width} px wide (styles scaled to the same width); reference: "
        f"{FLAGS.reference_iterations} Adam iterations from the content; {FLAGS.rounds} round(s), "
        f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    for pair, (content, style) in pairs.items():
        print(f"  {pair}: {content} with {style}")
    runs: dict[str, dict[str, list[dict]]] = {pair: {n: [] for n in ["reference", *routes]} for pair in pairs}
    for round_ in range(FLAGS.rounds):
        for pair, (content, style) in pairs.items():
            pair_dir = out_dir / pair
            pair_dir.mkdir(exist_ok=True)
            for name in runs[pair]:
                run = _run(name, content, style, pair_dir)
                run["saved"] = scorers[pair]([run["output"]])[0]
                if run["curve"]:
                    losses = scorers[pair]([path for _, _, path in run["curve"]])
                    run["curve"] = [
                        (t, k, loss)
                        for (t, k, _), loss in zip(run["curve"], losses, strict=True)
                        if not math.isnan(loss)
                    ]
                runs[pair][name].append(run)
                evaluations = "" if run["evaluations"] is None else f" ({run['evaluations']} evaluations)"
                print(
                    f"round {round_ + 1} {pair:16s} {name:26s} {run['seconds']:7.1f} s  {run['iterations']:4d} "
                    f"iterations{evaluations}  printed {run['printed']:10.6g}  saved file {run['saved']:10.6g}  "
                    f"load {os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    summary = {pair: _report(pair, pair_runs) for pair, pair_runs in runs.items()}
    _overall(summary, routes)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))


def _report(pair: str, runs: dict[str, list[dict]]) -> dict:
    """Prints one pair's table; returns its summary (seconds, losses, the reference's)."""
    reference = statistics.median(r["seconds"] for r in runs["reference"])
    target = runs["reference"][-1]["saved"]
    print()
    print(f"{pair}: seconds from process start to exit (median of the rounds); printed: the loss the optimiser")
    print("printed last; saved: the loss of the PNG written, read back (the yardstick); ratio: seconds / the")
    print(f"reference's {reference:.1f} s; target: the reference file's loss {target:.6g}")
    header = (
        f"{'method':26s} {'iters':>5s} {'evals':>5s} {'seconds':>8s} {'ratio':>7s} {'printed':>10s} {'saved':>10s} "
        f"{'<= target':>9s}"
    )
    print(header)
    print("-" * len(header))
    summary = {"target": target, "methods": {}}
    for name, results in runs.items():
        seconds = statistics.median(r["seconds"] for r in results)
        last = results[-1]
        reached = all(r["saved"] <= target for r in results)
        evaluations = "" if last["evaluations"] is None else str(last["evaluations"])
        print(
            f"{name:26s} {last['iterations']:5d} {evaluations:>5s} {seconds:8.1f} {seconds / reference:7.3f} "
            f"{last['printed']:10.6g} {last['saved']:10.6g} {'yes' if reached else 'no':>9s}"
        )
        summary["methods"][name] = {
            "seconds": [r["seconds"] for r in results],
            "ratio": seconds / reference,
            "printed": last["printed"],
            "saved": [r["saved"] for r in results],
            "reached": reached,
            "iterations": last["iterations"],
            "evaluations": last["evaluations"],
        }
        curve = last["curve"]
        if curve:
            first = next(((t, k) for t, k, loss in curve if loss <= target), None)
            points = ", ".join(f"{t:.1f}s:{loss:.4g}" for t, _, loss in curve[:: max(1, len(curve) // 8)])
            when = "never" if first is None else f"{first[0]:.1f} s (iteration {first[1]}, {first[0] / reference:.3f})"
            print(f"    time to the target (checkpoint PNGs): {when}; curve {points}")
    return summary


def _overall(summary: dict[str, dict], routes: Sequence[str]) -> None:
    """Every route over the pairs: its worst ratio, and whether it reached the reference's file on every pair."""
    print()
    print(f"over the {len(summary)} pair(s): a route's worst ratio (its slowest pair against that pair's reference)")
    print("and the pairs where its file scored no worse than the reference's (every round)")
    for name in routes:
        ratios = {pair: s["methods"][name]["ratio"] for pair, s in summary.items()}
        reached = [pair for pair, s in summary.items() if s["methods"][name]["reached"]]
        worst = max(ratios, key=ratios.__getitem__)
        goal = len(reached) == len(summary) and ratios[worst] <= 1 / GOAL
        print(
            f"  {name:26s} worst ratio {ratios[worst]:.3f} (1/{1 / ratios[worst]:.1f}, {worst}); reached on "
            f"{len(reached)}/{len(summary)}; goal (every pair, <= 1/{GOAL}): {'met' if goal else 'not met'}"
        )


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
        height, width = _content(FLAGS.content).shape[:2]
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
