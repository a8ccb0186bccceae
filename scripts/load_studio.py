"""The studio under load: many clients polling a job's status and fetching its previews while jobs run.

Example (the setting of the latency goal: 50 clients, 2 CPU cores, a 256 px job running)::

    python scripts/load_studio.py --network ../shared/weights/vgg19-layout-hed-edges.mat \\
        --content ../shared/images/grace_hopper.jpg --style ../shared/images/starry_night.jpg --width 256 \\
        --clients 50 --seconds 60

Starts ``neural-style-serve`` as a process of its own and runs a one-iteration job. First, as a baseline, the clients
below poll that finished job on the idle server; then ``--jobs`` Adam jobs are queued (the first runs while the
others wait) and, once the first is running, ``--clients`` clients, all in this process (asyncio, one
connection each), each poll ``GET /jobs/{id}`` of a job and fetch ``GET /jobs/{id}/image`` in turn every
``--interval`` seconds for ``--seconds``, over a connection each keeps open (made before the timing starts, the
clients starting at random within the first interval). Every request's latency (from sending to the whole answer)
is recorded. At
the end: the count of requests and of errors (any status but 200, or a preview other than a PNG), whether every job
queued is still listed and each ended done or is still queued or running (no job lost), and the percentiles of the
latencies of status requests and of previews. The job runs on the same cores as the clients and the server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from absl import app, flags
from studio_server import start_studio

FLAGS = flags.FLAGS
flags.DEFINE_string("network", None, "MatConvNet VGG-19 .mat file.")
flags.DEFINE_string("content", None, "Content image.")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_integer("width", 256, "Width of the jobs.")
flags.DEFINE_integer("iterations", 300, "Adam iterations of each job.")
flags.DEFINE_integer("jobs", 3, "Jobs queued (the first runs during the load, unless it ends first).")
flags.DEFINE_integer("clients", 50, "Concurrent clients.")
flags.DEFINE_float("interval", 0.5, "Each client's pause between one request and the next.")
flags.DEFINE_float("seconds", 60.0, "How long the clients poll.")
flags.DEFINE_string("out_dir", None, "Where the server keeps its data (default: a temporary directory).")


def _percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e3

    return (
        f"p50 {at(0.50):.1f} ms, p90 {at(0.90):.1f} ms, p99 {at(0.99):.1f} ms, max {ordered[-1] * 1e3:.1f} ms, "
        f"mean {statistics.mean(ordered) * 1e3:.1f} ms"
    )


async def _client(url: str, job_ids: list[str], index: int, stop: float, results: dict) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        job_id = job_ids[index % len(job_ids)] if index % 5 == 4 else job_ids[0]
        await asyncio.sleep(random.uniform(0, FLAGS.interval))  # clients do not all start at once
        await client.get("/settings")  # the connection made, untimed: a polling client keeps it open
        while time.perf_counter() < stop:
            for kind, path in (("status", f"/jobs/{job_id}"), ("preview", f"/jobs/{job_id}/image")):
                start = time.perf_counter()
                try:
                    answer = await client.get(path)
                    ok = answer.status_code == 200 or (kind == "preview" and answer.status_code == 404)
                    if kind == "preview" and answer.status_code == 200:
                        ok = answer.content[:8] == b"\x89PNG\r\n\x1a\n"
                except httpx.HTTPError as e:
                    ok, answer = False, e
                results[kind].append(time.perf_counter() - start)
                if not ok:
                    results["errors"].append(f"{path}: {answer}")
                await asyncio.sleep(FLAGS.interval)


async def _load(url: str, job_ids: list[str]) -> dict:
    results: dict = {"status": [], "preview": [], "errors": []}
    stop = time.perf_counter() + FLAGS.seconds
    await asyncio.gather(*(_client(url, job_ids, i, stop, results) for i in range(FLAGS.clients)))
    return results


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected argument {argv[1]!r}")
    if not (FLAGS.network and FLAGS.content and FLAGS.style):
        raise app.UsageError("--network, --content and --style are required")
    import httpx

    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request

    out_dir = Path(FLAGS.out_dir or tempfile.mkdtemp(prefix="load_studio-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    server, url = start_studio(FLAGS.network, out_dir)  # the jobs at the default --nice, as a user runs it
    try:
        files = [
            ("content", ("content", Path(FLAGS.content).read_bytes())),
            ("styles", ("style", Path(FLAGS.style).read_bytes())),
        ]
        settings = {"width": str(FLAGS.width), "iterations": str(FLAGS.iterations)}
        with httpx.Client(base_url=url, timeout=600) as client:
            idle = client.post("/jobs", files=files, data={"width": "64", "iterations": "1"})
            idle.raise_for_status()
            while client.get(f"/jobs/{idle.json()['id']}").json()["state"] != "done":
                time.sleep(0.2)
            print(
                f"{FLAGS.clients} clients for {FLAGS.seconds:g} s on the idle server, then while a job runs", flush=True
            )
            baseline = asyncio.run(_load(url, [idle.json()["id"]]))
            job_ids = []
            for _ in range(FLAGS.jobs):
                answer = client.post("/jobs", files=files, data=settings)
                answer.raise_for_status()
                job_ids.append(answer.json()["id"])
            while client.get(f"/jobs/{job_ids[0]}").json()["iteration"] < 1:
                time.sleep(0.2)
            start = client.get(f"/jobs/{job_ids[0]}").json()["iteration"]
            results = asyncio.run(_load(url, job_ids))
            jobs = {job["id"]: job for job in client.get("/jobs").json()}
        lost = [job_id for job_id in job_ids if job_id not in jobs]
        states = [jobs[job_id]["state"] for job_id in job_ids if job_id in jobs]
        failed = [s for s in states if s not in ("done", "running", "queued")]
        done = jobs[job_ids[0]]["iteration"] - start
        print(f"idle server:  status {_percentiles(baseline['status'])}")
        print(f"              preview {_percentiles(baseline['preview'])}; errors {len(baseline['errors'])}")
        print(
            f"job running:  {len(results['status'])} status and {len(results['preview'])} preview requests; "
            f"errors: {len(results['errors'])}; jobs lost: {len(lost)}; jobs failed: {len(failed)} "
            f"(states {', '.join(states)})"
        )
        print(f"              the job advanced {done} iterations meanwhile ({done / FLAGS.seconds:.2f} per second)")
        print(f"              status {_percentiles(results['status'])}")
        print(f"              preview {_percentiles(results['preview'])}")
        ordered = sorted(results["status"])
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1e3 if ordered else float("nan")
        verdict = "met" if p99 < 100 and not results["errors"] and not lost and not failed else "not met"
        print(f"load average at the end {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"goal (no error, no lost job, status p99 < 100 ms while the job runs): {verdict}")
        for error in (baseline["errors"] + results["errors"])[:10]:
            print(f"  error: {error}")
    finally:
        server.terminate()
        server.wait(120)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    app.run(main)
