"""Training throughput of ``neural-style-train`` on 1 and 2 local workers (TF_CONFIG, MultiWorkerMirroredStrategy),
and the data the workers exchange per step.

Example::

    python scripts/benchmark_multiworker.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --style ../shared/images/starry_night.jpg --photo ../shared/images/grace_hopper.jpg

Every run is a whole command, started as a user would: one process with ``--strategy none``, then two processes on
localhost ports with a TF_CONFIG each (``--strategy auto``). ``--batch_size`` is per replica, so two workers take
twice the images per step. The training photos are random crops of ``--photo`` in a temporary folder. Steps per
second come from the last progress line, which covers every step after the first (the first one traces and
compiles); images per second are that times the global batch.

Communication: each step all-reduces the gradient of every trainable variable (float32), the same size as the
transformer's weights; a ring all-reduce over R workers sends and receives 2 (R - 1) / R of that per worker, plus
the four loss terms. On one machine the workers share its cores, so no speed-up is expected: the figures are for the
record and the correctness of the setup, not a scaling claim.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from absl import app, flags
from PIL import Image

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG .mat file.")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_string("photo", None, "An image the training photos are cropped from.")
flags.DEFINE_integer("photos", 16, "Training photos (random crops of --photo).")
flags.DEFINE_integer("image_size", 64, "Training crops (--image_size).")
flags.DEFINE_integer("batch_size", 2, "Images per replica per step (--batch_size).")
flags.DEFINE_integer("steps", 20, "Steps of each run.")
flags.DEFINE_integer("base_filters", 32, "Transformer width (--base_filters).")
flags.DEFINE_integer("residual_blocks", 5, "Transformer depth (--residual_blocks).")

TRAIN = "import sys; from neural_style.cli import neural_style_train as m; sys.argv[0] = 'neural-style-train'; m()"


def _ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _run(root: Path, workers: int) -> tuple[float, str]:
    """Trains with ``workers`` processes in a fresh directory; returns (steps per second, the chief's output)."""
    work = root / f"workers{workers}"
    work.mkdir()
    argv = [sys.executable, "-c", TRAIN, f"--network={FLAGS.network}", f"--style={FLAGS.style}"]
    argv += [f"--data={root / 'photos'}", f"--model_out={work / 'm.keras'}", f"--steps={FLAGS.steps}"]
    argv += [f"--image_size={FLAGS.image_size}", f"--batch_size={FLAGS.batch_size}", "--seed=0"]
    argv += [f"--base_filters={FLAGS.base_filters}", f"--residual_blocks={FLAGS.residual_blocks}"]
    argv += [f"--print_every={FLAGS.steps}", f"--checkpoint_every={FLAGS.steps}", "--worker_timeout=600"]
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    if workers == 1:
        processes = [subprocess.Popen([*argv, "--strategy=none"], env=env, stdout=subprocess.PIPE, text=True)]
    else:
        ports = _ports(workers)
        cluster = {"worker": [f"localhost:{port}" for port in ports]}
        processes = [
            subprocess.Popen(
                argv,
                env={**env, "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})},
                stdout=subprocess.PIPE,
                text=True,
            )
            for i in range(workers)
        ]
    outputs = [process.communicate()[0] for process in processes]
    if any(process.returncode for process in processes):
        raise SystemExit(f"a run failed:\n{outputs}")
    rates = re.findall(rf"Step +{FLAGS.steps}/{FLAGS.steps} .*? ([0-9.e+]+) steps/s", outputs[0])
    return float(rates[-1]), outputs[0]


def _gradient_bytes() -> int:
    """Bytes of the transformer's trainable variables (float32): the gradient all-reduced every step."""
    from neural_style.transformer import build_transformer

    model = build_transformer(base_filters=FLAGS.base_filters, residual_blocks=FLAGS.residual_blocks, seed=0)
    return int(sum(np.prod(v.shape) for v in model.trainable_variables)) * 4


def main(argv: list[str]) -> None:
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # for the gradient's size, built here
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "photos").mkdir()
        with Image.open(FLAGS.photo) as photo:
            photo = photo.convert("RGB")
            side = min(photo.size) // 2
            for i in range(FLAGS.photos):
                left = int(rng.integers(0, photo.width - side + 1))
                top = int(rng.integers(0, photo.height - side + 1))
                photo.crop((left, top, left + side, top + side)).save(root / "photos" / f"{i:03d}.png")
        print(
            f"{FLAGS.steps} steps, {FLAGS.image_size} px crops, --batch_size {FLAGS.batch_size} per replica, "
            f"transformer {FLAGS.base_filters} filters x {FLAGS.residual_blocks} blocks, {os.cpu_count()} CPU cores"
        )
        gradient = _gradient_bytes()
        for workers in (1, 2):
            rate, _ = _run(root, workers)
            batch = FLAGS.batch_size * workers
            ring = 2 * (workers - 1) / workers * gradient
            exchange = "nothing exchanged"
            if workers > 1:
                exchange = (
                    f"all-reduced per step {gradient / 2**20:.2f} MiB of gradients, sent (and received) by each "
                    f"worker {ring / 2**20:.2f} MiB ({ring * rate / 2**20:.3g} MiB/s)"
                )
            print(
                f"{workers} worker(s): {rate:.3g} steps/s, {rate * batch:.3g} images/s (global batch {batch}); "
                f"{exchange}"
            )


if __name__ == "__main__":
    flags.mark_flags_as_required(["network", "style", "photo"])
    app.run(main)
