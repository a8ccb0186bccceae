"""A print-size run within a memory budget: a 24-megapixel content, 2 iterations, ``--max_memory 8G``.

Example::

    python scripts/benchmark_large.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg \\
        --size 4000x6000 --max_memory 8G --iterations 2 --out_dir /tmp/large

The content is resized (stretched if need be) to ``--size`` and written as a PNG; then ``neural-style`` runs on it
as a separate process with ``--max_memory``, which chooses the tiles. Printed: the tile plan the command chose, the
process's peak resident memory (``ru_maxrss`` of the child), the wall time of each phase (start-up with the targets,
each iteration, the final scoring and writing) from the time stamps of its output lines, and the whole run's.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG-19 .mat file.")
flags.DEFINE_string("content", None, "Content image.")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_string("size", "4000x6000", "WIDTHxHEIGHT of the content.")
flags.DEFINE_string("max_memory", "8G", "--max_memory of the run.")
flags.DEFINE_integer("iterations", 2, "Iterations.")
flags.DEFINE_float("style_scale", 1.0, "--style_scales of the run.")
flags.DEFINE_string("out_dir", "/tmp/neural_style_large", "Where the content and the result are written.")
flags.DEFINE_list("extra", [], "More flags for neural-style, e.g. --precision=bfloat16.")


def main(argv: Sequence[str]) -> None:
    if not (FLAGS.network and FLAGS.content and FLAGS.style):
        raise app.UsageError("--network, --content and --style are required")
    from PIL import Image

    width, height = (int(v) for v in FLAGS.size.lower().split("x"))
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    content = os.path.join(FLAGS.out_dir, f"content_{width}x{height}.png")
    if not os.path.exists(content):
        with Image.open(FLAGS.content) as image:
            image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS).save(content)
    output = os.path.join(FLAGS.out_dir, f"result_{width}x{height}.png")
    command = [
        *(sys.executable, "-m", "neural_style", "--network", FLAGS.network, "--content", content),
        *("--styles", FLAGS.style, "--output", output, "--overwrite", "--iterations", str(FLAGS.iterations)),
        *("--max_memory", FLAGS.max_memory, "--style_scales", str(FLAGS.style_scale), "--seed", "0"),
        *FLAGS.extra,
    ]
    print(" ".join(command), flush=True)
    start = time.perf_counter()
    stamps: list[tuple[float, str]] = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip()
            if not line.startswith(("I0000", "W0000", "E0000", "WARNING: All log")):
                stamps.append((time.perf_counter() - start, line))
                print(f"[{stamps[-1][0]:8.1f} s] {line}", flush=True)
    total = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # kilobytes on Linux
    if process.returncode != 0:
        raise SystemExit(f"neural-style exited {process.returncode}")
    finished = [line.split() for _, line in stamps if " tiles in " in line]
    print()
    print(f"content {width}x{height} ({width * height / 1e6:.1f} MP), --max_memory {FLAGS.max_memory}")
    for _, line in stamps:
        if line.startswith("Tiles of"):
            print(f"plan: {line}")
    print(f"peak resident memory: {peak / 2**30:.2f} GiB ({peak / 1e9:.2f} GB)")
    # "  N/N tiles in 1 min 40 sec": one line per pass over the tiles that took 10 s or more; the passes with the
    # most tiles are the loss-and-gradient evaluations (2 per tile), the others the targets and loss evaluations.
    most = max((int(w[0].split("/")[0]) for w in finished), default=0)
    for words in finished:
        count = int(words[0].split("/")[0])
        kind = "loss and gradient (an iteration)" if count == most else "targets or a loss"
        print(f"{count} tiles, {kind}: {' '.join(words[3:])}")
    print(f"whole run: {total:.0f} s")


if __name__ == "__main__":
    app.run(main)
