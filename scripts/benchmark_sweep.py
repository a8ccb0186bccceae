"""Wall time and memory of a blend sweep as one batch, against the same candidates run one CLI process each.

Example::

    python scripts/benchmark_sweep.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg \\
        --styles ../shared/images/starry_night.jpg,examples/style.png --width 256 --iterations 20

Both sides are whole ``neural-style`` processes (``python -m neural_style``), started exactly as a user would:

* sweep: one process with ``--blend_sweep N`` (and ``--batch_size`` if given);
* separate: N processes in turn, each with ``--style_blend_weights`` set to one of the sweep's blends (with
  ``--noseparate`` only the first, for its peak RSS, and the separate total is estimated as N times it).

Every process has the same seed, iterations and width and shares a conv-only cache that is filled before any timing
(``NEURAL_STYLE_CACHE`` in a temporary directory), so none of them reads the .mat file. Wall time is from spawning
to reaping each process (Python start, TensorFlow import, tracing and writing included). Peak RSS is the child's own
``ru_maxrss`` from ``os.wait4``. Memory per candidate is shown two ways: the sweep's extra peak over a single run
divided by N - 1 (what one more candidate costs), and the sweep's peak divided by N.

The sweep's images are also compared with the separate runs' (max difference in 8-bit levels): they should agree
up to float rounding in the batched convolutions.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np
from absl import app, flags
from PIL import Image

from neural_style.cli.sweep import candidate_label, candidate_path
from neural_style.config import Candidate, even_blends

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG .mat file.")
flags.DEFINE_string("content", None, "Content image.")
flags.DEFINE_list("styles", None, "The two style images, comma-separated.")
flags.DEFINE_integer("width", 256, "Content width in pixels (--width of neural-style).")
flags.DEFINE_integer("iterations", 20, "Iterations of every run.")
flags.DEFINE_integer("candidates", 5, "Blends in the sweep (--blend_sweep), each also run alone.")
flags.DEFINE_integer("batch_size", None, "Passed to the sweep as --batch_size (chunks of this many candidates).")
flags.DEFINE_integer("seed", 0, "Seed of the initial noise, the same for every run.")
flags.DEFINE_boolean(
    "separate", True, "Run all N separate processes; --noseparate runs one (for its peak RSS) and estimates N x it."
)
flags.DEFINE_integer("repeats", 1, "Run each side this many times and report the fastest (less noise from other jobs).")


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, float]:
    """Runs ``argv`` with stdout and stderr to ``log``; returns (wall seconds, peak RSS MiB) of that process alone."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    start = time.perf_counter()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=actions)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        sys.stderr.write(log.read_text())
        raise SystemExit(f"exit code {code}: {' '.join(argv)}")
    return seconds, usage.ru_maxrss / 1024.0  # Linux reports KiB


def _command(output: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "neural_style",
        f"--network={FLAGS.network}",
        f"--content={FLAGS.content}",
        f"--styles={','.join(FLAGS.styles)}",
        f"--output={output}",
        f"--width={FLAGS.width}",
        f"--iterations={FLAGS.iterations}",
        f"--seed={FLAGS.seed}",
        "--overwrite",
        *extra,
    ]


def _pixels(path: str | Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), np.int16)


def _main() -> None:
    if not (FLAGS.network and FLAGS.content and FLAGS.styles):
        raise app.UsageError("--network, --content and --styles are required")
    if len(FLAGS.styles) != 2:
        raise app.UsageError("--styles takes exactly two images (a --blend_sweep blends two styles)")
    if FLAGS.candidates < 2 or FLAGS.repeats < 1:
        raise app.UsageError("--candidates must be at least 2 and --repeats at least 1")
    n = FLAGS.candidates
    blends = even_blends(n)
    labels = [candidate_label(Candidate.make(blend, 1.0)) for blend in blends]

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="neural-style-sweep-bench-") as tmp:
        root = Path(tmp)
        for name in ("cache", "home", "tmp", "out"):
            (root / name).mkdir()
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
        env.update(NEURAL_STYLE_CACHE=str(root / "cache"), HOME=str(root / "home"), TMPDIR=str(root / "tmp"))
        out = root / "out"

        warm = [
            sys.executable,
            "-c",
            "import sys; from neural_style.matconvnet import load_vgg; load_vgg(sys.argv[1], cache_dir=sys.argv[2])",
            FLAGS.network,
            str(root / "cache"),
        ]
        _spawn(warm, env, root / "warm.log")
        if not list((root / "cache").glob("*.npz")):
            raise SystemExit(f"no conv-only cache was written for {FLAGS.network}")

        sweep_flags = [f"--blend_sweep={n}"]
        if FLAGS.batch_size is not None:
            sweep_flags.append(f"--batch_size={FLAGS.batch_size}")
        sweep_cmd = _command(out / "sweep.png", *sweep_flags)
        single_cmds = [
            _command(out / f"single_{label}.png", f"--style_blend_weights={a!r},{b!r}")
            for label, (a, b) in zip(labels, blends, strict=True)
        ]

        sweep_runs, single_runs = [], []
        for _ in range(FLAGS.repeats):
            chosen = single_cmds if FLAGS.separate else single_cmds[:1]
            single_runs.append([_spawn(cmd, env, root / f"single_{i}.log") for i, cmd in enumerate(chosen)])
            sweep_runs.append(_spawn(sweep_cmd, env, root / "sweep.log"))
        sweep_log = (root / "sweep.log").read_text()

        diffs = [
            np.abs(_pixels(candidate_path(str(out / "sweep.png"), label)) - _pixels(out / f"single_{label}.png")).max()
            for label in labels[: len(single_runs[0])]
        ]

    sweep_seconds = min(seconds for seconds, _ in sweep_runs)
    sweep_peak = max(peak for _, peak in sweep_runs)
    separate_seconds = min(sum(seconds for seconds, _ in runs) for runs in single_runs)
    if not FLAGS.separate:
        separate_seconds *= n  # an estimate: N times the one run
    single_each = [seconds for runs in single_runs for seconds, _ in runs]
    single_peak = max(peak for runs in single_runs for _, peak in runs)

    extra_per_candidate = (sweep_peak - single_peak) / (n - 1)
    chunks = "one batch" if FLAGS.batch_size is None else f"--batch_size {FLAGS.batch_size}"
    load_after = os.getloadavg()[0]
    print(f"network {FLAGS.network} ({os.path.getsize(FLAGS.network) / 2**20:.1f} MiB)")
    print(f"content {FLAGS.content} at width {FLAGS.width}; styles {', '.join(FLAGS.styles)}")
    print(f"{n} candidates ({', '.join(labels)}), {FLAGS.iterations} iterations, seed {FLAGS.seed}, sweep as {chunks}")
    print(
        f"TensorFlow {metadata.version('tensorflow')}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"1-min load average {load_before:.2f} before, {load_after:.2f} after, repeats {FLAGS.repeats} (fastest kept)"
    )
    print(f"sweep command: {' '.join(sweep_cmd)}")
    for line in sweep_log.splitlines():
        if line.startswith(("Sweeping", "Wrote")):
            print(f"sweep says: {line}")
    print()
    rows = [
        (f"sweep: 1 process, --blend_sweep {n}", f"{sweep_seconds:8.2f} s"),
        (
            f"separate: {n} processes, total" + ("" if FLAGS.separate else f" (estimated: {n} x one run)"),
            f"{separate_seconds:8.2f} s",
        ),
        (
            "  (one separate run: mean / min / max)",
            f"{statistics.fmean(single_each):8.2f} s / {min(single_each):.2f} / {max(single_each):.2f}",
        ),
        ("ratio sweep / separate (target <= 0.5)", f"{sweep_seconds / separate_seconds:8.3f}"),
        ("peak RSS, sweep", f"{sweep_peak:8.0f} MiB"),
        ("peak RSS, single run (max of the separate runs)", f"{single_peak:8.0f} MiB"),
        (f"peak RSS per extra candidate: (sweep - single) / {n - 1}", f"{extra_per_candidate:8.0f} MiB"),
        (f"peak RSS per candidate: sweep / {n}", f"{sweep_peak / n:8.0f} MiB"),
        ("max |sweep - separate| per candidate, 8-bit levels", " ".join(str(int(d)) for d in diffs)),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}   {value}")


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    _main()


if __name__ == "__main__":
    app.run(main)
