"""A killed studio loses nothing: ``neural-style-serve`` killed with SIGKILL in the middle of a job, twice, and started
again each time, finishes the job from its saved state (the command's ``--resume``), keeps the jobs it had finished,
and the result equals an uninterrupted run of the same job to within one grey level."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from serve_helpers import content_png, server_process, style_png, tiny_network, upload, wait_for

httpx = pytest.importorskip("httpx", reason="httpx (the test extra) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (fastapi, uvicorn, python-multipart) is not installed")

pytestmark = pytest.mark.slow

SETTINGS = {"iterations": "240", "seed": "7", "checkpoint_iterations": "80"}
FILES = upload(content_png(32, 24), [style_png(3)])


def _image(client: httpx.Client, job_id: str) -> np.ndarray:
    answer = client.get(f"/jobs/{job_id}/files/result.png")
    assert answer.status_code == 200
    from io import BytesIO

    return np.asarray(Image.open(BytesIO(answer.content)), np.int16)


def test_a_killed_server_finishes_the_job_as_if_uninterrupted(tmp_path: Path) -> None:
    network = tiny_network(tmp_path / "vgg.mat")
    data = tmp_path / "data"
    extra = ["--save_seconds=0", "--preview_seconds=0.5"]
    kills = []
    with server_process(tmp_path, network, data, extra) as server:
        client = httpx.Client(base_url=server.url, timeout=60)
        finished = client.post("/jobs", files=FILES, data={"iterations": "2"}).json()["id"]
        wait_for(client, finished, states=("done",))
        job_id = client.post("/jobs", files=FILES, data=SETTINGS).json()["id"]
        kills.append(wait_for(client, job_id, states=("running",), iteration=40)["iteration"])
        server.kill()
    with server_process(tmp_path, network, data, extra) as server:
        client = httpx.Client(base_url=server.url, timeout=60)
        kills.append(wait_for(client, job_id, states=("running",), iteration=kills[0] + 60)["iteration"])
        server.kill()
    with server_process(tmp_path, network, data, extra) as server:
        client = httpx.Client(base_url=server.url, timeout=60)
        job = wait_for(client, job_id)
        assert client.get(f"/jobs/{finished}").json()["state"] == "done"  # the finished job is kept
        assert _image(client, finished).shape == (24, 32, 3)
        reference = client.post("/jobs", files=FILES, data=SETTINGS).json()["id"]
        wait_for(client, reference)
        interrupted, uninterrupted = _image(client, job_id), _image(client, reference)
        log = client.get(f"/jobs/{job_id}/files/log.txt").text
        assert server.stop() == 0
    assert job["state"] == "done" and job["attempts"] == 3 and job["iteration"] == 240, job
    resumed = [int(k) for k in re.findall(r"Resumed at iteration (\d+)/240", log)]
    assert len(resumed) == 2 and 0 < resumed[0] <= kills[0] + 1 and resumed[0] < resumed[1] <= kills[1] + 1, (
        resumed,
        kills,
    )
    assert np.abs(interrupted - uninterrupted).max() <= 1
