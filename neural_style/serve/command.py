"""The ``neural-style-serve`` command: its flags, the checks before it binds, and the server run until Ctrl-C.

Every input is checked first (the address and the token, the limits, the data directory, the network file), each
refused in one line; then TensorFlow starts and the network is loaded, the socket is bound, and uvicorn serves the
application until Ctrl-C or SIGTERM, which stop the running job at its next step, its state saved: the next start
continues it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import sys
from collections.abc import Sequence
from types import FrameType

from absl import flags

from neural_style.errors import NeuralStyleError
from neural_style.serve.security import LOOPBACK_HOSTS
from neural_style.serve.settings import Command, check_data_dir, define_network, network_path
from neural_style.serve.studio import ServerConfig
from neural_style.serve.uploads import Limits

__all__ = ["TOKEN_ENV", "flag_values", "main"]

TOKEN_ENV = "NEURAL_STYLE_TOKEN"
_TOKEN = re.compile(r"[A-Za-z0-9._~-]{8,}")

_USAGE = """Usage: neural-style-serve --network FILE [--host 127.0.0.1] [--port 8000] [--data_dir DIR] [flags]

Serves the studio: an HTTP API and a web page at http://HOST:PORT/ that run neural-style jobs one at a time in this
process, with live progress. Any address other than this machine's needs --token.
"""


def flag_values() -> flags.FlagValues:
    """The flags of ``neural-style-serve`` on a fresh FlagValues."""
    fv = flags.FlagValues()
    define_network(fv, __name__)
    flags.DEFINE_string(
        "host",
        "127.0.0.1",
        "Address to listen on. Other than this machine's (127.0.0.1, ::1, localhost) needs --token.",
        flag_values=fv,
        module_name=__name__,
    )
    flags.DEFINE_integer(
        "port", 8000, "Port to listen on (0: any free port, printed).", flag_values=fv, module_name=__name__
    )
    flags.DEFINE_string(
        "data_dir",
        "studio",
        "Where the job records, inputs and results are kept.",
        flag_values=fv,
        module_name=__name__,
    )
    flags.DEFINE_string(
        "token",
        None,
        f"A secret every request must carry (Authorization: Bearer TOKEN, or open the page as /?token=TOKEN); at "
        f"least 8 of A-Z a-z 0-9 . _ ~ -. Default: ${TOKEN_ENV}.",
        flag_values=fv,
        module_name=__name__,
    )
    limits = Limits()
    flags.DEFINE_float(
        "max_file_mb", limits.file_bytes / 1e6, "Largest uploaded file, in MB.", flag_values=fv, module_name=__name__
    )
    flags.DEFINE_float(
        "max_megapixels",
        limits.megapixels,
        "Largest uploaded image, in megapixels.",
        flag_values=fv,
        module_name=__name__,
    )
    flags.DEFINE_integer(
        "max_files",
        limits.files,
        "Most files one job may upload (content, styles, masks, initial).",
        flag_values=fv,
        module_name=__name__,
    )
    flags.DEFINE_float(
        "preview_seconds",
        1.0,
        "A new preview image at most this often (and at checkpoints and the end).",
        flag_values=fv,
        module_name=__name__,
    )
    flags.DEFINE_float(
        "save_seconds",
        15.0,
        "A running job saves its state at least this often, so a crash loses no more.",
        flag_values=fv,
        module_name=__name__,
    )
    flags.DEFINE_integer(
        "nice",
        10,
        "Run the jobs this much lower in priority than the server's requests (Linux), so that status and previews "
        "are answered promptly while a job keeps the cores busy; 0: the same priority.",
        flag_values=fv,
        module_name=__name__,
    )
    return fv


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point of ``neural-style-serve``: exits 2 on bad input, 0 when stopped by Ctrl-C or SIGTERM."""
    fv = flag_values()
    command = Command("neural-style-serve", fv, _USAGE, __name__)
    command.run(argv, lambda _: _serve(fv))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _config(fv: flags.FlagValues) -> ServerConfig:
    """The server's settings from the flags, every one checked."""
    token = fv.token if fv.token is not None else os.environ.get(TOKEN_ENV) or None
    if token is not None and not _TOKEN.fullmatch(token):
        source = "--token" if fv.token is not None else f"${TOKEN_ENV}"
        raise NeuralStyleError(f"{source} must be at least 8 of A-Z a-z 0-9 . _ ~ - (e.g. from: openssl rand -hex 16)")
    loopback = _loopback(fv.host)
    if not loopback and token is None:
        raise NeuralStyleError(
            f"--host {fv.host} is reachable from other machines: give --token (or set ${TOKEN_ENV}), which every "
            "request must then carry"
        )
    if not 0 <= fv.port <= 65535:
        raise NeuralStyleError(f"--port is {fv.port}; give 1 to 65535 (or 0 for any free port)")
    for name in ("max_file_mb", "max_megapixels", "max_files"):
        if not (fv[name].value or 0) > 0:
            raise NeuralStyleError(f"--{name} is {fv[name].value}; it must be positive")
    if not 0 <= (fv.nice or 0) <= 19:
        raise NeuralStyleError(f"--nice is {fv.nice}; give 0 to 19")
    for name in ("preview_seconds", "save_seconds"):
        if (fv[name].value or 0) < 0:
            raise NeuralStyleError(f"--{name} is {fv[name].value}; it must be 0 or more")
    check_data_dir(fv.data_dir)
    return ServerConfig(
        network=os.path.abspath(network_path(fv)),
        data_dir=fv.data_dir,
        token=token,
        limits=Limits(int(fv.max_file_mb * 1e6), fv.max_megapixels, fv.max_files),
        preview_seconds=fv.preview_seconds,
        save_seconds=fv.save_seconds,
        allowed_hosts=LOOPBACK_HOSTS if loopback else None,
        nice=fv.nice,
    )


def _serve(fv: flags.FlagValues) -> None:
    import uvicorn

    from neural_style.matconvnet import default_cache_dir, load_vgg
    from neural_style.serve.app import create_app

    config = _config(fv)
    load_vgg(config.network, cache_dir=default_cache_dir())  # a bad network file is refused before binding
    host = fv.host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, fv.port))
    except OSError as e:
        sock.close()
        raise NeuralStyleError(
            f"cannot listen on {fv.host} port {fv.port}: {e.strerror or e}; choose another --port (0: any free one)"
        ) from None
    shown = f"[{host}]" if family == socket.AF_INET6 else host
    where = f"http://{shown}:{sock.getsockname()[1]}/"

    class Server(uvicorn.Server):
        """uvicorn's server, saying where it serves once the studio has started, and ending with status 0 on
        Ctrl-C or SIGTERM (uvicorn's own raises the signal again once it has shut down)."""

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if not self.should_exit:
                print(f"Serving the studio at {where} (data in {os.path.abspath(fv.data_dir)}); Ctrl-C stops it")
                sys.stdout.flush()

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            self.force_exit = self.should_exit  # a second signal: stop without waiting for the job's step
            self.should_exit = True

    settings = uvicorn.Config(
        create_app(config), log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=3
    )
    Server(settings).run(sockets=[sock])
