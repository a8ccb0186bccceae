"""The ``neural-style-serve`` command (``neural_style.serve.command``): each bad input refused in one line before it
binds, and, as a process, a server on every address guarded by its token that ends with status 0 on SIGTERM."""

from __future__ import annotations

import contextlib
import io
import socket
from pathlib import Path

import pytest
from serve_helpers import server_process, tiny_network

pytest.importorskip("uvicorn", reason="the serve extra (fastapi, uvicorn, python-multipart) is not installed")

from neural_style.serve.command import main  # noqa: E402


def _refused(argv: list[str], monkeypatch: pytest.MonkeyPatch, env: dict[str, str] | None = None) -> str:
    """The one stderr line of ``neural-style-serve`` refusing ``argv`` (exit status 2)."""
    monkeypatch.delenv("NEURAL_STYLE_TOKEN", raising=False)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as end:
        main(["neural-style-serve", *argv])
    assert end.value.code == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1, lines
    return lines[0].removeprefix("neural-style-serve: error: ")


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_network(tmp_path_factory.mktemp("network") / "vgg.mat")


@pytest.mark.parametrize(
    ("flags", "env", "message"),
    [
        (
            ["--host=0.0.0.0"],
            {},
            "--host 0.0.0.0 is reachable from other machines: give --token (or set $NEURAL_STYLE_TOKEN), which every "
            "request must then carry",
        ),
        (["--host=192.168.1.20"], {}, "--host 192.168.1.20 is reachable from other machines"),
        (["--token=short"], {}, "--token must be at least 8 of A-Z a-z 0-9 . _ ~ - (e.g. from: openssl rand -hex 16)"),
        (["--token=has space in it"], {}, "--token must be at least 8 of"),
        ([], {"NEURAL_STYLE_TOKEN": "x;y=z;abc"}, "$NEURAL_STYLE_TOKEN must be at least 8 of"),
        (["--port=70000"], {}, "--port is 70000; give 1 to 65535 (or 0 for any free port)"),
        (["--max_files=0"], {}, "--max_files is 0; it must be positive"),
        (["--max_file_mb=-1"], {}, "--max_file_mb is -1.0; it must be positive"),
        (["--save_seconds=-1"], {}, "--save_seconds is -1.0; it must be 0 or more"),
        (["--preview_seconds=nan"], {}, "--preview_seconds is nan; give a finite number"),
        (["--nice=20"], {}, "--nice is 20; give 0 to 19"),
        (["--colour=red"], {}, "Unknown command line flag 'colour'"),
    ],
)
def test_a_bad_flag_is_refused_before_binding(
    flags: list[str], env: dict[str, str], message: str, network: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = _refused([f"--network={network}", f"--data_dir={tmp_path / 'data'}", *flags], monkeypatch, env)
    assert line.startswith(message), line
    assert not (tmp_path / "data").exists()  # nothing created


def test_a_data_dir_under_a_file_is_refused(network: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "file").write_text("x")
    line = _refused([f"--network={network}", f"--data_dir={tmp_path / 'file' / 'data'}"], monkeypatch)
    where = tmp_path / "file"
    assert line == f"--data_dir {where / 'data'} cannot be created: {where} is a file; choose another location"


def test_a_missing_network_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    line = _refused([f"--network={tmp_path / 'none.mat'}", f"--data_dir={tmp_path / 'data'}"], monkeypatch)
    assert str(tmp_path / "none.mat") in line


def test_a_port_in_use_is_refused(network: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = _refused([f"--network={network}", f"--data_dir={tmp_path / 'data'}", f"--port={port}"], monkeypatch)
    assert line.startswith(f"cannot listen on 127.0.0.1 port {port}: ")
    assert line.endswith("; choose another --port (0: any free one)")


@pytest.mark.slow
def test_every_address_with_a_token(network: Path, tmp_path: Path) -> None:
    httpx = pytest.importorskip("httpx", reason="httpx (the test extra) is not installed")
    extra = ["--host=0.0.0.0", "--token=a-secret-token"]
    with server_process(tmp_path, network, tmp_path / "data", extra) as server:
        url = server.url.replace("0.0.0.0", "127.0.0.1")
        assert httpx.get(f"{url}/jobs").status_code == 401
        assert httpx.get(f"{url}/jobs", headers={"Authorization": "Bearer a-secret-token"}).json() == []
        assert (
            httpx.get(
                f"{url}/jobs", headers={"Host": "elsewhere.example", "Authorization": "Bearer a-secret-token"}
            ).status_code
            == 200
        )
        assert server.stop() == 0
    assert (tmp_path / "server.log").read_text() == ""  # silent on stderr
