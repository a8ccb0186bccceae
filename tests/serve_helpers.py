"""What the studio's tests share: tiny images as upload bytes, a studio on the tiny network in this process
(``TestClient``), and ``neural-style-serve`` started as a process of its own.

The API tests skip when the ``serve`` extra (fastapi, uvicorn, python-multipart, httpx) is not installed.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from conftest import CHANNELS, content_array, he_scaled, style_array, write_vgg_mat
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SERVING = re.compile(r"Serving the studio at (http://\S+/)")


def png_bytes(image: np.ndarray, fmt: str = "PNG") -> bytes:
    """An image array (uint8) as the bytes of a file of ``fmt``."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).save(buffer, format=fmt)
    return buffer.getvalue()


def content_png(width: int = 32, height: int = 24) -> bytes:
    """A smooth content image of ``width`` x ``height`` (the conftest's, resized)."""
    return png_bytes(np.asarray(Image.fromarray(content_array()).resize((width, height), Image.Resampling.BILINEAR)))


def style_png(seed: int = 0) -> bytes:
    return png_bytes(style_array(seed))


def mask_png(width: int, height: int, left: bool) -> bytes:
    """White on the left (or right) half, black elsewhere."""
    mask = np.zeros((height, width), np.uint8)
    if left:
        mask[:, : width // 2] = 255
    else:
        mask[:, width // 2 :] = 255
    return png_bytes(mask)


def upload(
    content: bytes | None = None,
    styles: Sequence[bytes] = (),
    masks: Sequence[bytes] = (),
    initial: bytes | None = None,
) -> list[tuple[str, tuple[str, bytes, str]]]:
    """The file fields of a job, for httpx's ``files=``."""
    files = []
    if content is not None:
        files.append(("content", ("photo.png", content, "image/png")))
    files += [("styles", (f"style{i}.png", data, "image/png")) for i, data in enumerate(styles)]
    files += [("masks", (f"mask{i}.png", data, "image/png")) for i, data in enumerate(masks)]
    if initial is not None:
        files.append(("initial", ("initial.png", initial, "image/png")))
    return files


def tiny_network(path: Path) -> Path:
    """The tiny He-scaled network of the command tests, written to ``path``."""
    write_vgg_mat(path, channels=CHANNELS, tamper=he_scaled)
    return path


def environment(root: Path) -> dict[str, str]:
    """A server process's environment: the cache, home and temporary folder inside ``root``."""
    env = {k: v for k, v in os.environ.items() if k not in ("NEURAL_STYLE_WEIGHTS", "NEURAL_STYLE_TOKEN")}
    for name, var in (("cache", "NEURAL_STYLE_CACHE"), ("home", "HOME"), ("tmp", "TMPDIR")):
        (root / name).mkdir(parents=True, exist_ok=True)
        env[var] = str(root / name)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


class ServerProcess:
    """``neural-style-serve`` as a process (``python -m neural_style.serve``) on a free port."""

    def __init__(self, root: Path, network: Path, data_dir: Path, extra: Sequence[str] = ()) -> None:
        self.root, self.network, self.data_dir, self.extra = root, network, data_dir, list(extra)
        self.process: subprocess.Popen[str] | None = None
        self.url = ""
        self.log = root / "server.log"

    def start(self, timeout: float = 180.0) -> str:
        # --nice=0: the jobs at the tests' priority, which the other test worker would otherwise starve
        argv = [sys.executable, "-m", "neural_style.serve", f"--network={self.network}", "--port=0", "--nice=0"]
        argv += [f"--data_dir={self.data_dir}", *self.extra]
        log = open(self.log, "a")  # noqa: SIM115 - the process writes into it until it ends
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=log, text=True, env=environment(self.root), cwd=self.root
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                raise AssertionError(f"the server ended ({self.process.wait()}): {self.log.read_text()[-2000:]}")
            found = SERVING.search(line)
            if found:
                self.url = found.group(1).rstrip("/")
                return self.url
        raise AssertionError("the server did not start")

    def kill(self) -> None:
        """SIGKILL, as a crash."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(60)

    def stop(self) -> int:
        """SIGTERM, and the exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(120)


@contextlib.contextmanager
def server_process(root: Path, network: Path, data_dir: Path, extra: Sequence[str] = ()) -> Iterator[ServerProcess]:
    server = ServerProcess(root, network, data_dir, extra)
    server.start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()


def wait_for(
    client: Any,
    job_id: str,
    states: Sequence[str] = ("done", "failed", "cancelled"),
    timeout: float = 300.0,
    **conditions: Any,
) -> dict[str, Any]:
    """Polls GET /jobs/{id} until its state is one of ``states`` (and each ``conditions`` key is at least that
    value), returning the job."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["state"] in states and all(job[key] >= value for key, value in conditions.items()):
            return job
        if job["state"] in ("done", "failed", "cancelled"):
            raise AssertionError(f"job {job_id} ended before reaching {states} {conditions}: {job}")
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} did not reach {states} {conditions}: {job}")
        time.sleep(0.05)
