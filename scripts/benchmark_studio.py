"""The warm studio against neural-style's default run: seconds to a finished file, each file judged by its loss.

Example (the setting of the speed goal: 256 px, 2 CPU cores)::

    python scripts/benchmark_studio.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg --width 256 --jobs 3

Starts ``neural-style-serve`` as a process of its own (``--port 0``, ``--nice 0``: its jobs at the reference's
priority) and waits until it serves (TensorFlow started,
the network loaded). Then, in each of ``--rounds`` rounds, interleaved:

* the reference: neural-style's default run, 300 Adam iterations from the content image, as ``scripts/reference_tf1.py``
  re-states its TF1 graph (``scripts/benchmark_quality.py --child``), a process timed from its start to its exit,
  its image saved as neural-style saves it;
* the studio: the README's fastest route (the page's preset, ``PRESETS["fastest"]``: ``optimizer=lbfgs scales=3
  stage_iterations=40,20,2 precision=bfloat16``; the content image uploaded as ``initial`` too, ``seed=0``) posted
  ``--jobs`` times to the
  warm server, each timed from the POST to the moment its result file has been downloaded; also the time to the
  job's first progress event (its inputs read and checked, the targets computed, the step traced and run once). The
  first job the server runs is reported apart (it is the one that warms the server's caches).

Every file is scored as ``neural-style-score`` scores it (the float32 network, neural-style's default weights): the
loss of the image on disk, read back. The ratio is the studio's median time over the reference's.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from absl import app, flags
from studio_server import start_studio

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG-19 .mat file.")
flags.DEFINE_string("content", None, "Content image.")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_integer("width", 256, "Output width in pixels.")
flags.DEFINE_integer("jobs", 3, "Warm jobs timed per round.")
flags.DEFINE_integer("rounds", 1, "Rounds of the reference and the warm jobs, interleaved.")
flags.DEFINE_string("out_dir", None, "Where to keep the files (default: a temporary directory).")

SCRIPTS = Path(__file__).resolve().parent


def _job(client, out_dir: Path, name: str) -> dict:
    """Posts the route, follows its events, downloads the result; returns its times and file."""
    content = Path(FLAGS.content).read_bytes()
    files = [
        ("content", ("content", content)),
        ("styles", ("style", Path(FLAGS.style).read_bytes())),
        ("initial", ("initial", content)),
    ]
    from neural_style.serve.settings import PRESETS

    route = {**PRESETS["fastest"], "seed": "0", "width": str(FLAGS.width)}  # the page's "Fastest route"
    start = time.perf_counter()
    answer = client.post("/jobs", files=files, data=route)
    answer.raise_for_status()
    posted = time.perf_counter()
    job_id = answer.json()["id"]
    first_progress = None
    with client.stream("GET", f"/jobs/{job_id}/events") as events:
        kind = None
        for line in events.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: ") and kind == "progress" and first_progress is None:
                first_progress = time.perf_counter()
            elif line.startswith("data: ") and kind == "job" and json.loads(line[6:])["state"] != "running":
                state = json.loads(line[6:])["state"]
                if state in ("done", "failed", "cancelled"):
                    break
    job = client.get(f"/jobs/{job_id}").json()
    if job["state"] != "done":
        raise RuntimeError(f"job {job_id} ended {job['state']}: {job['error']}")
    result = client.get(f"/jobs/{job_id}/files/result.png")
    output = out_dir / f"{name}.png"
    output.write_bytes(result.content)
    end = time.perf_counter()
    return {
        "seconds": end - start,
        "post": posted - start,
        "first_progress": (first_progress or end) - start,
        "output": output,
        "reported": job["losses"]["total"],
    }


def _reference(out_dir: Path, name: str) -> dict:
    output = out_dir / f"{name}.png"
    argv = [sys.executable, str(SCRIPTS / "benchmark_quality.py"), f"--child={output}"]
    argv += [f"--network={FLAGS.network}", f"--content={FLAGS.content}", f"--style={FLAGS.style}"]
    argv += [f"--width={FLAGS.width}", "--reference_iterations=300"]
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"the reference failed: {result.stderr[-1000:]}")
    return {"seconds": seconds, "output": output}


def _scorer():
    """The total loss of PNG files as ``neural-style-score`` computes it (float32 network, default weights)."""
    from neural_style.config import StyleConfig
    from neural_style.image_io import read_image, resize, resize_styles, scaled_size
    from neural_style.matconvnet import default_cache_dir, load_vgg
    from neural_style.scoring import score_images

    weights = load_vgg(FLAGS.network, cache_dir=default_cache_dir())
    content = read_image(FLAGS.content)
    content = resize(content, scaled_size(content.shape, FLAGS.width))
    styles = resize_styles([read_image(FLAGS.style)], None, FLAGS.width)

    def score(path: Path) -> float:
        return float(score_images(weights, content, styles, read_image(str(path))[None], StyleConfig())["total"][0])

    return score


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected argument {argv[1]!r}")
    if not (FLAGS.network and FLAGS.content and FLAGS.style):
        raise app.UsageError("--network, --content and --style are required")
    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    out_dir = Path(FLAGS.out_dir or tempfile.mkdtemp(prefix="benchmark_studio-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    score = _scorer()
    started = time.perf_counter()
    server, url = start_studio(FLAGS.network, out_dir, ["--nice=0"])  # the reference's priority
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"server serving after {time.perf_counter() - started:.1f} s at {url}; files in {out_dir}", flush=True)
    references: list[dict] = []
    warm: list[dict] = []
    try:
        with httpx.Client(base_url=url, timeout=600) as client:
            first = _job(client, out_dir, "studio_first")
            first["saved"] = score(first["output"])
            print(
                f"first job    {first['seconds']:6.2f} s (first progress {first['first_progress']:.2f} s), "
                f"saved file {first['saved']:.6g}",
                flush=True,
            )
            for round_ in range(FLAGS.rounds):
                reference = _reference(out_dir, f"reference_{round_}")
                reference["saved"] = score(reference["output"])
                references.append(reference)
                print(f"reference    {reference['seconds']:6.1f} s, saved file {reference['saved']:.6g}", flush=True)
                for k in range(FLAGS.jobs):
                    job = _job(client, out_dir, f"studio_{round_}_{k}")
                    job["saved"] = score(job["output"])
                    warm.append(job)
                    print(
                        f"warm job     {job['seconds']:6.2f} s (POST answered {job['post']:.2f} s, first progress "
                        f"{job['first_progress']:.2f} s), saved file {job['saved']:.6g}",
                        flush=True,
                    )
    finally:
        server.terminate()
        server.wait(120)
    reference_seconds = statistics.median(r["seconds"] for r in references)
    warm_seconds = statistics.median(j["seconds"] for j in warm)
    print()
    print(f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(f"{'method':34s} {'seconds':>8s} {'ratio':>7s} {'saved file loss':>16s}")
    print(
        f"{'neural-style default (reference)':34s} {reference_seconds:8.1f} {1.0:7.3f} "
        f"{statistics.median(r['saved'] for r in references):16.6g}"
    )
    print(
        f"{'studio, first job':34s} {first['seconds']:8.2f} {first['seconds'] / reference_seconds:7.4f} "
        f"{first['saved']:16.6g}"
    )
    print(
        f"{'studio, warm (median)':34s} {warm_seconds:8.2f} {warm_seconds / reference_seconds:7.4f} "
        f"{statistics.median(j['saved'] for j in warm):16.6g}"
    )
    ratio = warm_seconds / reference_seconds
    verdict = "met" if ratio <= 1 / 40 else "not met"
    print(
        f"goal (warm <= 1/40 of the reference's time, i.e. <= {reference_seconds / 40:.2f} s): {verdict} "
        f"(1/{1 / ratio:.1f}); first progress after {statistics.median(j['first_progress'] for j in warm):.2f} s"
    )
    summary = {
        "reference": [{k: v for k, v in r.items() if k != "output"} for r in references],
        "first": {k: v for k, v in first.items() if k != "output"},
        "warm": [{k: v for k, v in j.items() if k != "output"} for j in warm],
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    np.set_printoptions(precision=4)
    app.run(main)
