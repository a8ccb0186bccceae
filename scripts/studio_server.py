"""The studio as a process for the studio scripts (benchmark_studio.py, load_studio.py): ``neural-style-serve`` on a
free port, its stderr in ``server.log``, returned once it says where it serves."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def start_studio(network: str, out_dir: Path, extra: Sequence[str] = ()) -> tuple[subprocess.Popen[str], str]:
    """Starts ``python -m neural_style.serve`` on ``network`` with its data in ``out_dir/studio`` and its stderr in
    ``out_dir/server.log``; returns the process and its URL (no trailing slash)."""
    argv = [sys.executable, "-m", "neural_style.serve", f"--network={network}", "--port=0"]
    argv += [f"--data_dir={out_dir / 'studio'}", *extra]
    log = open(out_dir / "server.log", "w")  # noqa: SIM115 - the server writes into it while it runs
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
    assert server.stdout is not None
    for line in server.stdout:
        found = re.search(r"Serving the studio at (http://\S+)/", line)
        if found:
            return server, found.group(1)
    raise RuntimeError(f"the server did not start: {(out_dir / 'server.log').read_text()[-2000:]}")
