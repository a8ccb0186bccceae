"""Time to quality: how soon L-BFGS, coarse-to-fine, bfloat16 and their combination reach default Adam's final loss.

Example (the issue's setting: 256 px, 2 CPU cores)::

    nice python scripts/benchmark_quality.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg \\
        --width 256 --iterations 200 --out_plot /tmp/quality.png --out_dir /tmp/quality

Every method optimises the same loss (neural-style's defaults unless overridden by flags) from the same seeded
noise start, through the library (:func:`neural_style.coarse.coarse_to_fine`, one stage without coarse-to-fine):

* ``adam``: default Adam, float32, N = ``--iterations`` steps: the baseline; its final total loss is the target;
* ``lbfgs``: L-BFGS-B, float32;
* ``adam_scales``: Adam, coarse to fine over ``--scales`` stages (N shared between them as ``--scales`` does);
* ``adam_bf16``: Adam with bfloat16 VGG convolutions;
* ``adam_scales_bf16``: Adam, coarse to fine, with bfloat16 convolutions;
* ``lbfgs_scales_bf16``: the three combined;
* ``adam_xla`` (only with ``--xla``): Adam with the step compiled by XLA.

The other methods get N iterations plus, at full size, up to ``--budget`` x N in all, so that one that is just short
of the target after N iterations shows how much longer it needs (``--stop_at_target`` ends each as soon as it gets
there). Their image after N iterations is kept (a checkpoint: one extra forward pass) for like-for-like comparisons.

Timing: seconds are wall time since the call that starts the method, so they include building the network,
computing the targets and tracing the step (for coarse-to-fine once per stage: that is the method's real cost);
weights and images are loaded once before, and a warm-up (``--warmup``, two iterations of every method on a small
image) first pays TensorFlow's one-time initialisation, which would otherwise land on the baseline. The loss at each
iteration is ``Progress.step_loss``, which the step computes anyway (no extra evaluation): for Adam the loss of the
image the step started from (Adam's curves lag by one step, against Adam), for L-BFGS the loss at the new iterate.
A method's last point is the loss of its result, evaluated at the end (one forward pass, part of its time). The CPU
time of the process is recorded too: on a machine shared with other work it varies less than wall time. Losses
of coarse stages belong to smaller images: they are drawn thin and never count as reaching the target.

For bfloat16 methods the losses come from the bfloat16 network; the image after N iterations is also evaluated
with the float32 network (outside the timing). The issue's quality check: the float32-evaluated loss of
``adam_bf16`` after N iterations is within 2% of the float32 run's (``adam``), and the images look the same
(``--out_dir``).

``--conv_microbench`` instead times a 3x3 convolution (1x128x128x256 -> 256 channels) and a VGG-19 forward and
backward pass at ``--width`` in float32 and bfloat16 (with and without XLA) and prints GFLOP/s and the ratios.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from absl import app, flags
from PIL import Image, ImageDraw

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG-19 .mat file.")
flags.DEFINE_string("content", None, "Content image.")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_integer("width", 256, "Content width in pixels; the style is scaled to the same width (style scale 1).")
flags.DEFINE_integer("iterations", 200, "Adam's N: iterations of the baseline; its final loss is the target.")
flags.DEFINE_float(
    "budget",
    1.5,
    "The other methods may run up to budget x N iterations (the extra ones at full size) to reach the target.",
)
flags.DEFINE_boolean("stop_at_target", False, "End each method as soon as it reaches the target (saves time).")
flags.DEFINE_integer("scales", 2, "Stages of the coarse-to-fine methods (widths doubling up to --width).")
flags.DEFINE_integer("lbfgs_memory", 10, "L-BFGS history size.")
flags.DEFINE_boolean("xla", False, "Also run Adam with the step compiled by XLA.")
flags.DEFINE_list("methods", None, "Run only these methods (the baseline 'adam' always runs).")
flags.DEFINE_boolean("warmup", True, "First run every method for 2 iterations on a small image (not timed).")
flags.DEFINE_integer("seed", 0, "Seed of the initial noise, the same for every method.")
flags.DEFINE_float("content_weight", 5e0, "Content weight (neural-style's default).")
flags.DEFINE_float("style_weight", 5e2, "Style weight (neural-style's default).")
flags.DEFINE_float("tv_weight", 1e2, "Total variation weight (neural-style's default).")
flags.DEFINE_float("learning_rate", 1e1, "Adam learning rate (neural-style's default).")
flags.DEFINE_string("out_plot", "benchmark_quality.png", "PNG plot of total loss (log scale) against seconds.")
flags.DEFINE_string("out_dir", None, "Directory for each method's images (<method>.png after N iterations).")
flags.DEFINE_boolean("conv_microbench", False, "Time a 3x3 conv and a VGG-19 forward+backward in float32/bfloat16.")
flags.DEFINE_integer("repeats", 10, "Microbenchmark: timed runs of each case (after two warm-up runs).")


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    optimizer: str = "adam"
    scales: int = 1
    precision: str = "float32"
    xla: bool = False


@dataclasses.dataclass(frozen=True)
class Point:
    seconds: float  # wall time since the method started
    cpu: float  # CPU time of the process (all threads) since the method started
    loss: float  # total loss, on the method's own network
    full: bool  # at the final size (false: a coarse stage's smaller image)
    iterate: int  # the iteration (counted over all stages) whose image has this loss; 0: the start image


@dataclasses.dataclass
class Trace:
    """What one method did: its (seconds, loss) points and its images."""

    method: Method
    points: list[Point]
    setup: float  # seconds to the first iteration's record (network, targets, tracing, the first step)
    seconds: float  # to the last record
    cpu: float  # CPU seconds to the last record
    iterations: int  # run, over all stages
    evaluations: int | None  # L-BFGS: loss and gradient evaluations over all stages
    image_at_n: np.ndarray  # [H, W, 3] RGB 0..255 after N iterations (or at the stop, if it stopped before)
    image: np.ndarray  # the result at the end of the run
    f32_at_n: float = math.nan  # total loss of image_at_n on the float32 network

    def reaching(self, target: float) -> Point | None:
        """The first full-size point whose loss is at or below ``target``, or None."""
        return next((p for p in self.points if p.full and p.loss <= target), None)

    def time_to(self, target: float) -> float | None:
        """The first (wall) time a full-size loss is at or below ``target``, or None."""
        point = self.reaching(target)
        return None if point is None else point.seconds

    def loss_of(self, iterate: int) -> float | None:
        """The method's own full-size loss of the image after ``iterate`` iterations, if recorded."""
        return next((p.loss for p in self.points if p.full and p.iterate == iterate), None)

    @property
    def final_loss(self) -> float:
        return self.points[-1].loss


def _methods() -> list[Method]:
    methods = [
        Method("adam"),
        Method("lbfgs", optimizer="lbfgs"),
        Method("adam_scales", scales=FLAGS.scales),
        Method("adam_bf16", precision="bfloat16"),
        Method("adam_scales_bf16", scales=FLAGS.scales, precision="bfloat16"),
        Method("lbfgs_scales_bf16", optimizer="lbfgs", scales=FLAGS.scales, precision="bfloat16"),
    ]
    if FLAGS.xla:
        methods.append(Method("adam_xla", xla=True))
    if FLAGS.methods:
        known = {m.name for m in methods}
        unknown = sorted(set(FLAGS.methods) - known)
        if unknown:
            raise app.UsageError(f"--methods: unknown {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
        methods = [m for m in methods if m.name == "adam" or m.name in FLAGS.methods]
    return methods


def _inputs():
    """The VGG weights, the content at --width and the style image as read (each stage resizes it)."""
    from neural_style.image_io import read_image, resize, scaled_size
    from neural_style.matconvnet import default_cache_dir, load_vgg

    weights = load_vgg(FLAGS.network, cache_dir=default_cache_dir())
    content = read_image(FLAGS.content, what="--content image")
    content = resize(content, scaled_size(content.shape, FLAGS.width))
    style = read_image(FLAGS.style, what="--style image")
    return weights, content, style


def _base_config():
    from neural_style.config import StyleConfig

    return StyleConfig(
        content_weight=FLAGS.content_weight,
        style_weight=FLAGS.style_weight,
        tv_weight=FLAGS.tv_weight,
        learning_rate=FLAGS.learning_rate,
        lbfgs_memory=FLAGS.lbfgs_memory,
        seed=FLAGS.seed,
    )


def _run(
    method: Method,
    weights,
    content: np.ndarray,
    style: np.ndarray,
    base,
    iterations: int,
    *,
    target: float | None = None,
    budget: float = 1.0,
) -> Trace:
    """Runs one method for ``iterations`` (as --iterations with --scales shares them) plus the budget's extra ones."""
    from neural_style.coarse import coarse_to_fine, split_iterations, stage_widths

    lbfgs = method.optimizer == "lbfgs"
    widths = stage_widths(content.shape[1], method.scales)
    counts = split_iterations(iterations, len(widths))
    at_n = counts[-1]  # the last stage's iteration at which the method has done ``iterations`` in all
    counts[-1] += round((budget - 1.0) * iterations)
    config = dataclasses.replace(
        base,
        optimizer=method.optimizer,
        precision=method.precision,
        xla=method.xla,
        stop_at_loss=target if FLAGS.stop_at_target else None,
        # The image after N iterations is kept (at the cost of one evaluation) when the run goes on beyond N.
        checkpoint_iterations=at_n if counts[-1] > at_n else None,
    )
    last_stage = len(widths) - 1
    points: list[Point] = []
    evaluations: dict[int, int] = {}
    image_at_n = image = None
    done = 0
    start, start_cpu = time.perf_counter(), time.process_time()
    for stage, record in coarse_to_fine(weights, content, [style], config, widths=widths, iterations=counts):
        now, cpu = time.perf_counter() - start, time.process_time() - start_cpu
        full = stage == last_stage
        k = sum(counts[:stage]) + record.iteration
        if record.step_loss is not None:  # Adam: the loss of the image the step started from; L-BFGS: of the new one
            points.append(Point(now, cpu, float(record.step_loss[0]), full, k if lbfgs else k - 1))
        if record.evaluations is not None:
            evaluations[stage] = record.evaluations
        if full and record.image is not None and (record.iteration == at_n or image_at_n is None and record.final):
            image_at_n = record.image
        if full and record.final:
            assert record.losses is not None and record.image is not None
            points.append(Point(now, cpu, float(record.losses["total"][0]), True, k))
            image, done = record.image, k
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    assert image is not None and image_at_n is not None
    return Trace(
        method,
        points,
        setup=points[0].seconds,
        seconds=seconds,
        cpu=cpu,
        iterations=done,
        evaluations=sum(evaluations.values()) if lbfgs else None,
        image_at_n=image_at_n,
        image=image,
    )


def _warm_up(methods: Sequence[Method], weights, content: np.ndarray, style: np.ndarray, base) -> float:
    """Two iterations of every method on a small image, so one-time costs (TensorFlow's and oneDNN's
    initialisation) do not land on whichever method runs first."""
    from neural_style.image_io import resize, scaled_size

    start = time.perf_counter()
    width = 32 * 2 ** (max(m.scales for m in methods) - 1)
    small = resize(content, scaled_size(content.shape, max(width, 64)))
    for method in methods:
        _run(method, weights, small, style, base, max(2, method.scales))
    return time.perf_counter() - start


def _float32_losses(traces: Sequence[Trace], weights, content: np.ndarray, style: np.ndarray, base) -> None:
    """Sets each trace's ``f32_at_n``: its image after N iterations evaluated with the float32 network (not timed)."""
    import tensorflow as tf

    from neural_style.image_io import resize, style_size
    from neural_style.stylization import build_objective
    from neural_style.vgg import preprocess

    styles = [resize(style, style_size(style.shape, 1.0, content.shape[1]))]
    objective = build_objective(weights, content, styles, dataclasses.replace(base, precision="float32"))
    for trace in traces:
        image = preprocess(np.asarray(trace.image_at_n, np.float32), weights.mean_pixel)[None].astype(np.float32)
        trace.f32_at_n = float(objective(tf.constant(image))["total"][0])


# ---------------------------------------------------------------------------------------------------- plot

_COLORS = [(0, 0, 0), (31, 119, 180), (44, 160, 44), (214, 39, 40), (148, 103, 189), (255, 127, 14)]


def _nice_step(span: float, ticks: int = 8) -> float:
    raw = span / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    return next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)


def plot(traces: Sequence[Trace], target: float, size: tuple[int, int] = (960, 600)) -> Image.Image:
    """Total loss (log scale) against seconds, one line per method, a dot where each first reaches ``target``.

    Thin lines are coarse stages (smaller images); the dashed line is the target.
    """
    width, height = size
    left, right, top, bottom = 70, 20, 30, 50
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    values = [p.loss for trace in traces for p in trace.points if p.loss > 0 and math.isfinite(p.loss)] + [target]
    lo, hi = math.log10(min(values)) - 0.05, math.log10(max(values)) + 0.05
    t_max = max(trace.seconds for trace in traces)
    step = _nice_step(t_max)
    t_max = math.ceil(t_max / step) * step

    def xy(seconds: float, loss: float) -> tuple[float, float]:
        x = left + (width - left - right) * seconds / t_max
        y = top + (height - top - bottom) * (hi - math.log10(loss)) / (hi - lo)
        return x, y

    for decade in range(math.floor(lo), math.ceil(hi) + 1):
        for mantissa in range(1, 10):
            value = mantissa * 10.0**decade
            if not lo <= math.log10(value) <= hi:
                continue
            _, y = xy(0, value)
            draw.line((left, y, width - right, y), fill=(215, 215, 215) if mantissa == 1 else (238, 238, 238))
            if mantissa in (1, 2, 5) or hi - lo < 0.6:
                draw.text((8, y - 6), f"{value:g}", fill="black")
    for i in range(int(round(t_max / step)) + 1):
        x, _ = xy(i * step, 10.0**hi)
        draw.line((x, height - bottom, x, height - bottom + 4), fill="black")
        draw.text((x - 8, height - bottom + 8), f"{i * step:g}", fill="black")
    draw.text((width // 2 - 40, height - 20), "seconds (wall)", fill="black")
    draw.text(
        (left, 8),
        "total loss (log scale) against time; dashed: Adam's final loss, dots: where each method first reaches it; "
        "thin: coarse stages",
        fill="black",
    )
    draw.rectangle((left, top, width - right, height - bottom), outline="black")
    _, y = xy(0, target)
    for x in range(left, width - right, 12):
        draw.line((x, y, x + 6, y), fill=(110, 110, 110))
    for index, trace in enumerate(traces):
        color = _COLORS[index % len(_COLORS)]
        for full in (False, True):
            points = [
                xy(p.seconds, p.loss) for p in trace.points if p.full == full and p.loss > 0 and math.isfinite(p.loss)
            ]
            if len(points) > 1:
                draw.line(points, fill=color, width=3 if full else 1, joint="curve")
        reached = trace.time_to(target)
        if reached is not None:
            x, y = xy(reached, target)
            draw.ellipse((x - 5, y - 5, x + 5, y + 5), fill=color, outline="white")
        legend_y = top + 10 + 16 * index
        draw.line((width - right - 200, legend_y + 6, width - right - 175, legend_y + 6), fill=color, width=3)
        label = trace.method.name if reached is None else f"{trace.method.name}: {reached:.1f} s"
        draw.text((width - right - 168, legend_y), label, fill="black")
    return image


# ------------------------------------------------------------------------------------------------ report


def _report(traces: Sequence[Trace], target: float, n: int) -> None:
    baseline = traces[0]
    print()
    print(f"target: Adam's loss after N = {n} iterations, {target:.6g}, reached in {baseline.seconds:.1f} s")
    print(
        "seconds: wall time from the start of each method, including building the network and targets and tracing "
        "(per stage for coarse-to-fine); 'first s' is the time to the first iteration's record"
    )
    print("loss@N: the method's own loss after N iterations; f32@N: that image's loss on the float32 network")
    print("cpu s: CPU time of the process (all threads), less sensitive than wall time to other work on the machine")
    header = (
        f"{'method':18s} {'iters':>5s} {'evals':>5s} {'first s':>7s} {'total s':>7s} {'loss@N':>8s} {'f32@N':>8s} "
        f"{'end loss':>8s} {'to target s':>11s} {'ratio':>5s} {'(cpu s':>7s} {'ratio)':>6s}"
    )
    print(header)
    print("-" * len(header))
    for trace in traces:
        point = trace.reaching(target)
        own = trace.loss_of(n)
        reached = "never" if point is None else f"{point.seconds:.1f}"
        ratio = "" if point is None else f"{point.seconds / baseline.seconds:.2f}"
        cpu = "" if point is None else f"{point.cpu:.1f}"
        cpu_ratio = "" if point is None else f"{point.cpu / baseline.cpu:.2f}"
        print(
            f"{trace.method.name:18s} {trace.iterations:5d} "
            f"{'' if trace.evaluations is None else trace.evaluations:>5} {trace.setup:7.1f} {trace.seconds:7.1f} "
            f"{'' if own is None else f'{own:.5g}':>8s} {trace.f32_at_n:8.5g} {trace.final_loss:8.5g} "
            f"{reached:>11s} {ratio:>5s} {cpu:>7s} {cpu_ratio:>6s}"
        )
    for clock, total in (("wall", baseline.seconds), ("CPU", baseline.cpu)):
        winners = [
            t.method.name
            for t in traces[1:]
            if (p := t.reaching(target)) is not None and (p.seconds if clock == "wall" else p.cpu) <= total / 3
        ]
        print(
            f"goal (Adam's final loss in <= 1/3 of its {clock} time): "
            f"{'met by ' + ', '.join(winners) if winners else 'not met'}"
        )
    by_name = {trace.method.name: trace for trace in traces}
    if "adam_bf16" in by_name:
        bf16 = by_name["adam_bf16"]
        change = bf16.f32_at_n / baseline.f32_at_n - 1
        pixels = np.abs(bf16.image_at_n.astype(np.float64) - baseline.image_at_n).mean()
        verdict = "within" if abs(change) <= 0.02 else "NOT within"
        print(
            f"bfloat16 quality: after {n} Adam iterations the float32-evaluated loss is {bf16.f32_at_n:.6g} vs "
            f"{baseline.f32_at_n:.6g} for float32 ({change:+.2%}, {verdict} 2%); mean |pixel difference| "
            f"{pixels:.2f} grey levels (compare the images)"
        )
    for trace in traces:
        own = trace.loss_of(n)
        if trace.method.precision != "float32" and own is not None:
            print(
                f"{trace.method.name}: its own (bfloat16) loss after N is {own:.6g}, on the float32 network "
                f"{trace.f32_at_n:.6g} ({trace.f32_at_n / own - 1:+.2%}); its time to target uses its own losses"
            )


def _quality() -> None:
    if not (FLAGS.network and FLAGS.content and FLAGS.style):
        raise app.UsageError("--network, --content and --style are required")
    if FLAGS.iterations < FLAGS.scales or FLAGS.budget < 1.0:
        raise app.UsageError("--iterations must be at least --scales and --budget at least 1")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # each stage traces its own functions; TensorFlow warns about retracing
    methods = _methods()
    weights, content, style = _inputs()
    base = _base_config()
    n = FLAGS.iterations
    print(
        f"content {content.shape[1]}x{content.shape[0]}, style {os.path.basename(FLAGS.style)}, N = {n} "
        f"(others up to {FLAGS.budget:g} N), seed {FLAGS.seed}, tv_weight {FLAGS.tv_weight:g}, "
        f"{os.cpu_count()} CPUs, TensorFlow {tf.__version__}"
    )
    if FLAGS.warmup:
        print(f"warm-up (not timed): {_warm_up(methods, weights, content, style, base):.1f} s", flush=True)
    traces: list[Trace] = []
    target = math.nan
    for method in methods:
        if not traces:
            trace = _run(method, weights, content, style, base, n)
            target = trace.final_loss
        else:
            trace = _run(method, weights, content, style, base, n, target=target, budget=FLAGS.budget)
        traces.append(trace)
        reached = trace.time_to(target)
        when = "never reached" if reached is None else f"reached at {reached:.1f} s"
        print(
            f"{method.name}: {trace.iterations} iterations in {trace.seconds:.1f} s, "
            f"final loss {trace.final_loss:.6g}, target {when}",
            flush=True,
        )
    _float32_losses(traces, weights, content, style, base)
    _report(traces, target, n)

    from neural_style.image_io import write_image

    write_image(FLAGS.out_plot, plot(traces, target))
    print(f"plot: {FLAGS.out_plot}")
    if FLAGS.out_dir:
        os.makedirs(FLAGS.out_dir, exist_ok=True)
        for trace in traces:
            write_image(Path(FLAGS.out_dir) / f"{trace.method.name}.png", trace.image_at_n)
            if trace.iterations > n:
                write_image(Path(FLAGS.out_dir) / f"{trace.method.name}_end.png", trace.image)
        print(f"images: {FLAGS.out_dir}/<method>.png after N iterations, <method>_end.png at the end of longer runs")


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
    if FLAGS.content and FLAGS.style:
        weights, content, _ = _inputs()
        height, width = content.shape[:2]
    else:
        weights, height, width = _weights_only(), FLAGS.width, FLAGS.width
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


def _weights_only():
    from neural_style.matconvnet import default_cache_dir, load_vgg

    return load_vgg(FLAGS.network, cache_dir=default_cache_dir())


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected argument {argv[1]!r}")
    if FLAGS.conv_microbench:
        _microbench()
    else:
        _quality()


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
