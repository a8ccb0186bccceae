"""The feed-forward network against its floor: GFLOP per frame, frames per second and GFLOP/s, beside VGG's rate.

Example (the setting of the speed goal: 640x360 frames, 2 CPU cores)::

    python scripts/benchmark_apply.py --network ../shared/weights/vgg19-layout-hed-edges.mat --rounds 5

It prints, all measured in this one process, the paths interleaved round by round (medians reported):

* the transformer's work per frame at ``--width`` x ``--height``, counted from its layers: the multiply-adds of
  every convolution (output pixels x kernel height x width x input x output channels) x 2, as the Keras layers
  define them, and as the inference graph of ``apply_transformer`` runs them (its upsampling convolutions take
  16 instead of 36 multiply-adds per channel pair for four output pixels);
* frames per second of ``apply_transformer`` one frame at a time, with wall and CPU seconds per frame, for:
  ``before``: the Keras layers as one graph function (what ``apply_transformer`` ran before the inference graph;
  still the path of models that ``build_transformer`` did not build), and the inference graph in float32 and in
  bfloat16 (when the CPU has AVX512-BF16 or AMX);
* the achieved GFLOP/s of each (the layers' count / seconds per frame), and the differences of the outputs from
  ``before`` (float32: the largest; bfloat16: mean and largest, in grey levels of 0..255);
* with ``--network``: VGG-19's convolutions in an Adam step of ``neural-style`` at ``--vgg_width`` (forward and
  backward to the image, up to relu5_1), float32 and bfloat16, in GFLOP/s: the rate this machine reaches on
  convolutions that suit it.

``--model`` takes a trained ``.keras`` network (speed does not depend on the weights, the bfloat16 differences do);
without it, an untrained network of the default size. The frames are ``--content`` resized (or random pixels).
"""

from __future__ import annotations

import os
import re
import statistics
import time
from collections.abc import Callable, Sequence

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "A trained transformer (.keras); default: an untrained one of the default size.")
flags.DEFINE_string("content", None, "Photo the frames are made from (default: random pixels).")
flags.DEFINE_integer("width", 640, "Frame width.")
flags.DEFINE_integer("height", 360, "Frame height.")
flags.DEFINE_integer("frames", 3, "Frames timed per path and round (after one warm-up frame).")
flags.DEFINE_integer("rounds", 3, "Interleaved rounds of every path; medians are reported.")
flags.DEFINE_string("network", None, "MatConvNet VGG-19 .mat file, for VGG's rate in an Adam step.")
flags.DEFINE_integer("vgg_width", 256, "Width of the Adam step (square image).")
flags.DEFINE_integer("vgg_steps", 5, "Adam steps timed per precision and round (after two warm-up steps).")


def conv_flops(model, height: int, width: int, *, inference: bool) -> float:
    """2 x the multiply-adds of every Conv2D of ``model`` on one ``height`` x ``width`` frame.

    The spatial size of each convolution's output is read from a run of the model's layers on a frame of that
    size; ``inference`` counts the inference graph's upsampling convolutions (after an UpSampling2D) as four 2x2
    convolutions of the small image (16/36 of the layers' count) and its last convolution to 3 channels as a
    1xK convolution to 3K channels plus the K-row sum.
    """
    import keras

    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    probe = keras.Model(model.inputs[0], [layer.output for layer in convs])
    outputs = probe(np.zeros((1, height, width, 3), np.float32))
    # an upsampling convolution's padding layer follows an UpSampling2D: "up1_conv_pad" pads for "up1_conv"
    names = [layer.name for layer in model.layers]
    upsampled = {name.removesuffix("_pad") for name in names if re.fullmatch(r"up\d+_conv_pad", name)}
    flops = 0.0
    for layer, output in zip(convs, outputs, strict=True):
        kh, kw, cin, cout = layer.kernel.shape
        pixels = float(output.shape[1] * output.shape[2])
        macs = pixels * kh * kw * cin * cout
        if inference and layer.name in upsampled and (kh, kw) == (3, 3):
            macs *= 16 / 36
        elif inference and cout == 3 and kh > 1:
            macs += pixels * kh * (kh * 3) * 3  # the sum of the rows: a Kx1 convolution of 0s and 1s, 3K to 3
        flops += 2.0 * macs
    return flops


def _frames() -> np.ndarray:
    from neural_style.image_io import read_image, resize

    if FLAGS.content:
        frame = resize(read_image(FLAGS.content), (FLAGS.height, FLAGS.width))
    else:
        frame = np.random.default_rng(0).uniform(0, 255, (FLAGS.height, FLAGS.width, 3)).astype(np.float32)
    return np.repeat(frame[None], FLAGS.frames, axis=0)


def _timed(function: Callable[[], object], count: int) -> tuple[float, float]:
    """(wall, CPU) seconds per call of ``count`` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(count):
        function()
    return (time.perf_counter() - wall) / count, (time.process_time() - cpu) / count


def _bf16_cpu() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return False
    return "avx512_bf16" in text or "amx_bf16" in text


def _vgg_steps() -> Callable[[str], Callable[[], object]]:
    """precision -> one Adam step of neural-style's loop (default settings) at ``--vgg_width``, warmed up."""
    from neural_style.config import StyleConfig
    from neural_style.matconvnet import default_cache_dir, load_vgg
    from neural_style.stylization import Stylization

    weights = load_vgg(FLAGS.network, cache_dir=default_cache_dir())
    rng = np.random.default_rng(1)
    side = FLAGS.vgg_width
    content = rng.uniform(0, 255, (side, side, 3)).astype(np.float32)
    style = rng.uniform(0, 255, (side, side, 3)).astype(np.float32)
    steps = {}
    for precision in ("float32", "bfloat16") if _bf16_cpu() else ("float32",):
        config = StyleConfig(iterations=10**6, seed=0, precision=precision)
        records = iter(Stylization(weights, content, [style], config))
        for _ in range(2):
            next(records)
        steps[precision] = lambda records=records: next(records)
    return steps.__getitem__


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected argument {argv[1]!r}")
    import tensorflow as tf

    from neural_style.transformer import _compiled, apply_transformer, build_transformer, load_transformer

    model = load_transformer(FLAGS.model) if FLAGS.model else build_transformer(seed=0)
    frames = _frames()
    height, width = FLAGS.height, FLAGS.width
    layers_flops = conv_flops(model, height, width, inference=False)
    graph_flops = conv_flops(model, height, width, inference=True)
    print(
        f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"{'trained network ' + FLAGS.model if FLAGS.model else 'untrained network (default size)'}, "
        f"{model.count_params():,} parameters"
    )
    print(
        f"work per {width}x{height} frame: {layers_flops / 1e9:.1f} GFLOP as the layers define it, "
        f"{graph_flops / 1e9:.1f} GFLOP as the inference graph runs it"
    )
    before = _compiled(model)
    paths: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "before (Keras layers)": lambda x: np.asarray(before(tf.convert_to_tensor(x[None])))[0],
        "float32": lambda x: apply_transformer(model, x),
    }
    if _bf16_cpu():
        paths["bfloat16"] = lambda x: apply_transformer(model, x, precision="bfloat16")
    outputs = {name: np.stack([path(frame) for frame in frames]) for name, path in paths.items()}  # warm-up
    reference = outputs["before (Keras layers)"]
    steps = _vgg_steps() if FLAGS.network else None
    vgg_precisions = ("float32", "bfloat16") if _bf16_cpu() else ("float32",)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    vgg_times: dict[str, list[tuple[float, float]]] = {p: [] for p in vgg_precisions}
    for _ in range(FLAGS.rounds):
        for name, path in paths.items():
            times[name].append(_timed(lambda path=path: [path(frame) for frame in frames], 1))
        if steps is not None:
            for precision in vgg_precisions:
                vgg_times[precision].append(_timed(steps(precision), FLAGS.vgg_steps))
    print(f"\nmedian of {FLAGS.rounds} interleaved rounds of {FLAGS.frames} frames each, one frame at a time")
    header = f"{'path':22s} {'frames/s':>8s} {'wall s':>7s} {'CPU s':>6s} {'GFLOP/s':>8s} {'vs before':>9s}  output"
    print(header)
    print("-" * len(header))
    base = statistics.median(w for w, _ in times["before (Keras layers)"]) / FLAGS.frames
    for name in paths:
        wall = statistics.median(w for w, _ in times[name]) / FLAGS.frames
        cpu = statistics.median(c for _, c in times[name]) / FLAGS.frames
        difference = np.abs(outputs[name] - reference)
        if name.startswith("before"):
            note = "the reference"
        elif name == "float32":
            note = f"largest difference {difference.max():.2g} levels"
        else:
            note = f"difference mean {difference.mean():.2f}, largest {difference.max():.1f} levels"
        print(
            f"{name:22s} {1 / wall:8.2f} {wall:7.3f} {cpu:6.3f} {layers_flops / wall / 1e9:8.1f} "
            f"{base / wall:8.2f}x  {note}"
        )
    if steps is not None:
        from neural_style.config import CONTENT_LAYERS, STYLE_LAYERS
        from neural_style.matconvnet import default_cache_dir, load_vgg

        weights = load_vgg(FLAGS.network, cache_dir=default_cache_dir())
        deepest = max(weights.layer_names.index(name) for name in (*STYLE_LAYERS, CONTENT_LAYERS[0]))
        flops, side = 0.0, [FLAGS.vgg_width, FLAGS.vgg_width]
        for layer in weights.layers[: deepest + 1]:
            if layer.kind == "conv":
                kh, kw, cin, cout = layer.kernel.shape
                flops += 2.0 * side[0] * side[1] * kh * kw * cin * cout
            elif layer.kind == "pool":
                side = [-(-s // 2) for s in side]
        flops *= 2  # forward, and backward to the image (the weights are frozen)
        print(
            f"\nVGG-19 in an Adam step of neural-style at {FLAGS.vgg_width}x{FLAGS.vgg_width} (forward and backward to "
            f"the image, up to {weights.layer_names[deepest]}): {flops / 1e9:.1f} GFLOP a step"
        )
        for precision in vgg_precisions:
            wall = statistics.median(w for w, _ in vgg_times[precision])
            cpu = statistics.median(c for _, c in vgg_times[precision])
            print(f"  {precision:9s} {wall:6.3f} s a step (CPU {cpu:.3f} s)  {flops / wall / 1e9:7.1f} GFLOP/s")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
