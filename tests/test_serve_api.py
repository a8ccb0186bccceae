"""The studio's HTTP API (``neural_style.serve``), through FastAPI's test client on the tiny network: every endpoint,
every refusal (with the command's own message for a bad setting), cancel, a sweep job, a regions job, events, the
token and the other guards, a stop in the middle of a job and the resume, and the README's client example.

A job's result is compared with the ``neural-style`` command's on the same inputs and settings, run in this
process: the server drives the command's own run, so the images are the same.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra (fastapi, uvicorn, python-multipart) is not installed")
pytest.importorskip("httpx", reason="httpx (the test extra) is not installed")

with warnings.catch_warnings():  # Starlette's notice that its test client will move to httpx2
    warnings.filterwarnings("ignore", message=".*httpx2")
    from fastapi.testclient import TestClient  # noqa: E402
from serve_helpers import (  # noqa: E402
    ROOT,
    content_png,
    mask_png,
    png_bytes,
    style_png,
    tiny_network,
    upload,
    wait_for,
)

from neural_style.serve.app import create_app  # noqa: E402
from neural_style.serve.settings import SERVER_FLAGS  # noqa: E402
from neural_style.serve.studio import ServerConfig  # noqa: E402
from neural_style.serve.uploads import Limits  # noqa: E402

CONTENT = content_png(32, 24)
STYLES = [style_png(0), style_png(1)]


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_network(tmp_path_factory.mktemp("network") / "vgg.mat")


@contextlib.contextmanager
def studio(root: Path, network: Path, **options: Any) -> Iterator[TestClient]:
    """A running studio on ``network`` with its data in ``root`` (previews and state saves at every record; the jobs
    at the tests' priority, which the other test worker would otherwise starve)."""
    options = {"preview_seconds": 0.0, "save_seconds": 0.0, "nice": 0, **options}
    app = create_app(ServerConfig(network=str(network), data_dir=str(root), **options))
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, network: Path) -> Iterator[TestClient]:
    with studio(tmp_path_factory.mktemp("studio"), network) as running:
        yield running


def post(client: TestClient, files: Any = None, **settings: str) -> Any:
    return client.post("/jobs", files=upload(CONTENT, STYLES[:1]) if files is None else files, data=settings)


def run_job(client: TestClient, files: Any = None, **settings: str) -> dict[str, Any]:
    answer = post(client, files, **settings)
    assert answer.status_code == 201, answer.text
    return wait_for(client, answer.json()["id"])


def data_dir(client: TestClient) -> Path:
    return client.app.state.studio.data.root  # type: ignore[attr-defined]


def command(tmp_path: Path, network: Path, *flags: str, styles: int = 1, masks: list[bytes] | None = None) -> Any:
    """``neural-style`` on the same inputs, in this process: (exit status, stderr's last line, the output path)."""
    from neural_style.cli import stylize

    (tmp_path / "content.png").write_bytes(CONTENT)
    paths = []
    for i in range(styles):
        paths.append(tmp_path / f"style-{i + 1}.png")
        paths[-1].write_bytes(STYLES[i])
    argv = ["neural-style", f"--content={tmp_path / 'content.png'}", f"--styles={','.join(map(str, paths))}"]
    if masks:
        for i, mask in enumerate(masks):
            (tmp_path / f"mask-{i + 1}.png").write_bytes(mask)
        argv.append("--content_masks=" + ",".join(str(tmp_path / f"mask-{i + 1}.png") for i in range(len(masks))))
    output = tmp_path / "out.png"
    argv += [f"--network={network}", f"--output={output}", *flags]
    err = io.StringIO()
    status = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            stylize.main(argv)
        except SystemExit as e:
            status = int(e.code or 0)
    lines = err.getvalue().strip().splitlines()
    return status, lines[-1] if lines else "", output


def pixels(data: bytes | Path) -> np.ndarray:
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    return np.asarray(Image.open(source).convert("RGB"), np.int16)


def leftovers(client: TestClient) -> list[str]:
    """What refused jobs could have left: uploads in incoming/."""
    return sorted(p.name for p in (data_dir(client) / "incoming").iterdir())


# ------------------------------------------------------------------------------------------------ settings


def test_settings_are_the_command_flags(client: TestClient) -> None:
    from neural_style.cli.stylize import flag_values

    body = client.get("/settings").json()
    settings = {s["name"]: s for s in body["settings"]}
    fv = flag_values()
    assert set(settings) == set(fv) - set(SERVER_FLAGS)
    assert settings["iterations"]["default"] == 1000 and settings["iterations"]["kind"] == "integer"
    assert settings["optimizer"]["choices"] == ["adam", "lbfgs"]
    assert settings["preserve_colors"]["choices"] == ["none", "luminance", "histogram"]
    assert settings["content_layers"]["default"] == "relu4_2,relu5_2"
    assert settings["style_weight"]["help"] == fv["style_weight"].help
    assert body["presets"]["fastest"] == {
        "optimizer": "lbfgs",
        "scales": "3",
        "stage_iterations": "40,20,2",
        "iterations": "62",
        "precision": "bfloat16",
        "initial_noiseblend": "0",
    }
    assert body["files"] == ["content", "styles", "masks", "initial"]


# ------------------------------------------------------------------------------------------------ jobs


def test_a_job_writes_what_the_command_writes(client: TestClient, network: Path, tmp_path: Path) -> None:
    answer = post(client, iterations="6", seed="1", checkpoint_iterations="3")
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert answer.headers["location"] == f"/jobs/{created['id']}"
    assert created["state"] in ("queued", "running") and created["iterations"] == 6
    job = wait_for(client, created["id"])
    assert job["state"] == "done", job
    assert (job["iteration"], job["iterations"], job["error"]) == (6, 6, None)
    assert job["settings"] == {"iterations": "6", "seed": "1", "checkpoint_iterations": "3"}
    assert job["files"] == [
        "checkpoint_3.png",
        "checkpoint_6.png",
        "log.txt",
        "progress.png",
        "progress.txt",
        "result.png",
    ]
    assert set(job["links"]["files"]) == set(job["files"])
    checkpoints = f"--checkpoint_output={tmp_path / 'checkpoint_{}.png'}"
    status, err, output = command(
        tmp_path, network, "--iterations=6", "--seed=1", "--checkpoint_iterations=3", checkpoints
    )
    assert status == 0, err
    image = client.get(f"/jobs/{job['id']}/image")
    assert image.headers["content-type"] == "image/png"
    result = client.get(f"/jobs/{job['id']}/files/result.png")
    assert image.content == result.content
    assert np.array_equal(pixels(result.content), pixels(output))  # the command's image, to the grey level
    history = np.loadtxt(io.StringIO(client.get(f"/jobs/{job['id']}/files/progress.txt").text), ndmin=2)
    assert history[:, 0].tolist() == [0, 6]
    from neural_style.config import StyleConfig
    from neural_style.image_io import read_image, resize_styles
    from neural_style.matconvnet import read_matconvnet
    from neural_style.scoring import score_images

    styles = resize_styles([pixels(STYLES[0]).astype(np.float32)], None, 32)  # at the run's scale
    weights = read_matconvnet(network)
    scored = score_images(weights, pixels(CONTENT).astype(np.float32), styles, read_image(output)[None], StyleConfig())
    for term in ("content", "style", "tv", "total"):  # the losses of the saved image, as neural-style-score says
        assert job["losses"][term] == pytest.approx(float(scored[term][0]), rel=1e-4)
    assert client.get(f"/jobs/{job['id']}/files/log.txt").text.count("Wrote ") == 1


def test_the_next_job_of_the_same_settings_restarts_the_last_run(
    client: TestClient, network: Path, tmp_path: Path
) -> None:
    """Jobs of the same settings at other sizes and seeds restart the run the last one left (its step traced once)
    and write the command's image."""
    runner = client.app.state.studio.runner  # type: ignore[attr-defined]
    first = run_job(client, iterations="3", optimizer="lbfgs", width="24", seed="2")
    assert first["state"] == "done", first
    kept = runner._kept_run
    assert kept is not None
    job = run_job(client, iterations="4", optimizer="lbfgs", width="32", seed="5")
    assert job["state"] == "done", job
    assert runner._kept_run is kept and kept._engine._iterate.experimental_get_tracing_count() == 1
    status, err, output = command(tmp_path, network, "--iterations=4", "--optimizer=lbfgs", "--width=32", "--seed=5")
    assert status == 0, err
    result = pixels(client.get(f"/jobs/{job['id']}/files/result.png").content)
    assert np.abs(result - pixels(output)).max() <= 1  # the command's image, to round-off
    other = run_job(client, iterations="2", optimizer="lbfgs", width="32", tv_weight="3")
    assert other["state"] == "done" and runner._kept_run is not kept  # other settings: a run of their own


@pytest.mark.parametrize(
    "settings",
    [
        {"iterations": "0"},
        {"widht": "32"},
        {"optimizer": "sgd"},
        {"learning_rate": "nan"},
        {"style_blend_weights": "1,2"},
        {"content_layers": "relu9_9"},
        {"preserve_colors": "purple"},
        {"blend_sweep": "3"},
        {"width": "0"},
        {"scales": "3"},
        {"style_layers": "relu1_1,"},
        {"checkpoint_iterations": "0"},
        {"clip": "maybe"},
        {"max_memory": "lots"},
    ],
    ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()),
)
def test_a_bad_setting_gets_the_command_message(
    client: TestClient, network: Path, tmp_path: Path, settings: dict[str, str]
) -> None:
    before = client.get("/jobs").json()
    answer = post(client, **settings)
    flags = [f"--{name}={value}" for name, value in settings.items()]
    if "checkpoint_iterations" in settings:  # as the server gives it
        flags.append(f"--checkpoint_output={tmp_path / 'checkpoint_{}.png'}")
    status, err, _ = command(tmp_path, network, *flags)
    assert status == 2 and err.startswith("neural-style: error: ")
    assert answer.status_code == 422
    assert answer.json() == {"detail": err.removeprefix("neural-style: error: ")}
    assert client.get("/jobs").json() == before  # no job recorded
    assert leftovers(client) == []  # and no upload left behind


@pytest.mark.parametrize("name", sorted(set(SERVER_FLAGS) - {"content", "styles", "initial"}))
def test_a_setting_the_server_sets_is_refused(client: TestClient, name: str) -> None:
    answer = post(client, **{name: "x"})
    assert answer.status_code == 422
    assert answer.json()["detail"] == f"--{name} {SERVER_FLAGS[name]}"


@pytest.mark.parametrize(
    ("files", "status", "detail"),
    [
        (upload(None, STYLES[:1]), 422, "content: send exactly one content image, as the file field 'content'"),
        (upload(CONTENT, []), 422, "styles: send one or more style images, each as a file field 'styles'"),
        (upload(CONTENT, STYLES[:1]) + upload(CONTENT), 422, "content: send exactly one content image"),
        (upload(b"hello, not an image", STYLES[:1]), 422, "content: the file is not an image"),
        (upload(CONTENT[: len(CONTENT) // 2], STYLES[:1]), 422, "content: the image is damaged or truncated"),
        (upload(CONTENT, [STYLES[0], b""]), 422, "styles (2): the file is empty"),
        (upload(CONTENT, STYLES[:1], masks=[b"GIF89a"]), 422, "masks: the file is not an image"),
        (
            upload(CONTENT, STYLES, masks=[mask_png(32, 24, True)]),
            422,
            "--content_masks has 1 masks for 2 styles; give one per style",
        ),
        (
            upload(CONTENT, STYLES[:1], masks=[mask_png(24, 24, True)]),
            422,
            "--content_masks mask mask-1.png is 24x24, but the content image is 32x24",
        ),
        (
            upload(CONTENT, STYLES[:1], masks=[png_bytes(np.zeros((24, 32), np.uint8))]),
            422,
            "--content_masks mask mask-1.png is all black (0)",
        ),
        (upload(CONTENT, STYLES[:1], initial=b"plain text, not an image"), 422, "initial: the file is not an image"),
        ([("width", ("w.txt", b"32", "text/plain"))] + upload(CONTENT, STYLES[:1]), 422, "width is sent as a file"),
    ],
    ids=[
        "no-content",
        "no-style",
        "two-contents",
        "text-file",
        "truncated",
        "empty-style",
        "bad-mask",
        "masks-count",
        "mask-aspect",
        "black-mask",
        "bad-initial",
        "file-setting",
    ],
)
def test_a_bad_upload_is_refused(client: TestClient, files: Any, status: int, detail: str) -> None:
    before = client.get("/jobs").json()
    answer = client.post("/jobs", files=files, data={"iterations": "2"})
    assert answer.status_code == status, answer.text
    assert answer.json()["detail"].startswith(detail), answer.json()
    assert "\n" not in answer.json()["detail"]
    assert client.get("/jobs").json() == before
    assert leftovers(client) == []


@pytest.mark.parametrize("name", ["content", "styles", "masks", "initial"])
def test_a_file_sent_as_text_is_refused(client: TestClient, name: str) -> None:
    answer = client.post("/jobs", files=upload(CONTENT, STYLES[:1]), data={name: "photo.png"})
    assert answer.status_code == 422
    assert answer.json()["detail"] == f"{name} is a file: upload it as a file (multipart/form-data), not as text"


def test_uploads_are_limited(tmp_path: Path, network: Path) -> None:
    limits = Limits(file_bytes=4000, megapixels=0.001, files=3)  # 1000 pixels
    with studio(tmp_path, network, limits=limits) as limited:
        big = png_bytes(np.random.default_rng(0).integers(0, 256, (40, 40, 3), np.uint8))
        answer = limited.post("/jobs", files=upload(big, STYLES[:1]))
        assert answer.status_code == 413
        assert answer.json()["detail"].startswith("content: the file has 0.0 MB, more than the 0.004 MB allowed")
        answer = limited.post("/jobs", files=upload(content_png(40, 30), STYLES[:1]))
        assert answer.status_code == 413
        assert answer.json()["detail"].startswith("content: the image has 40x30 pixels, more than the 0.001 megapixels")
        answer = limited.post("/jobs", files=upload(content_png(20, 15), STYLES[:1] * 3))
        assert answer.status_code == 413
        assert answer.json()["detail"] == "4 files, more than the 3 a job may upload; send fewer"
        too_long = {"content-type": "multipart/form-data; boundary=x", "content-length": str(limits.request_bytes + 1)}
        answer = limited.post("/jobs", content=b"--x--\r\n", headers=too_long)
        assert answer.status_code == 413
        # a body that says nothing of its length and sends more than the limit
        answer = limited.post(
            "/jobs",
            content=iter([b"--x\r\n", b"a" * (limits.request_bytes + 10)]),
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        assert answer.status_code == 413
        assert limited.get("/jobs").json() == []
        assert sorted(p.name for p in (tmp_path / "incoming").iterdir()) == []


def test_a_stored_file_is_named_by_the_server_and_typed_by_decoding(client: TestClient) -> None:
    files = [("content", ("../../etc/passwd.png", png_bytes(pixels(CONTENT).astype(np.uint8), "JPEG"), "x/y"))]
    files += [("styles", ("style.exe", STYLES[0], "application/octet-stream"))]
    job = run_job(client, files, iterations="2")
    assert job["inputs"] == {"content": "content.jpg", "styles": ["style-1.png"], "masks": [], "initial": None}
    folder = data_dir(client) / "jobs" / job["id"] / "inputs"
    assert sorted(p.name for p in folder.iterdir()) == ["content.jpg", "style-1.png"]


def test_unknown_jobs_and_files_are_404(client: TestClient) -> None:
    job = run_job(client, iterations="2")
    for method, path in [
        ("GET", "/jobs/nosuchjob"),
        ("GET", "/jobs/nosuchjob/image"),
        ("GET", "/jobs/nosuchjob/files/result.png"),
        ("GET", "/jobs/nosuchjob/events"),
        ("DELETE", "/jobs/nosuchjob"),
    ]:
        answer = client.request(method, path)
        assert answer.status_code == 404, path
        assert answer.json()["detail"] == "there is no job nosuchjob; GET /jobs lists them"
    for name in ("inputs", "..%2Fjobs.sqlite", "result.png.state", "nothing.png"):
        answer = client.get(f"/jobs/{job['id']}/files/{name}")
        assert answer.status_code == 404, name
    assert client.get(f"/jobs/{job['id']}/files/..%2F..%2Fjobs.sqlite").status_code == 404
    assert client.delete(f"/jobs/{job['id']}").status_code == 409


def test_jobs_are_listed_newest_first(client: TestClient) -> None:
    first = post(client, iterations="1").json()["id"]
    second = post(client, iterations="1").json()["id"]
    wait_for(client, second)
    ids = [job["id"] for job in client.get("/jobs").json()]
    assert ids.index(second) < ids.index(first)


def test_events_follow_a_job(client: TestClient) -> None:
    job_id = post(client, iterations="5", checkpoint_iterations="2").json()["id"]
    events = _events(client, f"/jobs/{job_id}/events")
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "job" and kinds[-1] == "job"
    assert events[-1][1]["state"] == "done"
    progress = [data for kind, data in events if kind == "progress"]
    assert [p["iteration"] for p in progress] == [0, 1, 2, 3, 4, 5]
    assert all(p["iterations"] == 5 for p in progress)
    assert set(progress[0]["losses"]) == {"content", "style", "tv", "total"}  # the start's, at iteration 0
    assert [p["iteration"] for p in progress if "image_losses" in p] == [2, 4, 5]  # checkpoints and the end
    assert progress[-1]["image_losses"] == events[-1][1]["losses"]
    previews = [data["version"] for kind, data in events if kind == "preview"]
    assert previews == list(range(1, 7))  # one per record, the start's included
    replay = _events(client, f"/jobs/{job_id}/events", headers={"Last-Event-ID": "3"})
    assert [kind for kind, _ in replay][1:] == kinds[4:-1] and replay[0][0] == "job"


def _events(client: TestClient, path: str, **options: Any) -> list[tuple[str, dict[str, Any]]]:
    events = []
    with client.stream("GET", path, **options) as answer:
        assert answer.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in answer.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    return events


def test_cancel_keeps_the_best_image_so_far(client: TestClient) -> None:
    job_id = post(client, iterations="100000").json()["id"]
    wait_for(client, job_id, states=("running",), iteration=3)
    answer = client.delete(f"/jobs/{job_id}")
    assert answer.status_code == 202
    assert answer.json()["cancel_requested"] is True
    job = wait_for(client, job_id)
    assert job["state"] == "cancelled" and 3 <= job["iteration"] < 100000
    assert "result.png" in job["files"]
    image = client.get(f"/jobs/{job_id}/image")
    assert image.status_code == 200
    assert pixels(image.content).shape == (24, 32, 3)
    assert not (data_dir(client) / "jobs" / job_id / "out" / "result.png.state").exists()  # nothing to resume
    assert "cancelled at iteration" in client.get(f"/jobs/{job_id}/files/log.txt").text
    assert client.delete(f"/jobs/{job_id}").status_code == 409


def test_a_queued_job_is_cancelled_at_once_and_has_no_image(tmp_path: Path, network: Path) -> None:
    app = create_app(ServerConfig(network=str(network), data_dir=str(tmp_path)))
    queued = TestClient(app)  # without its lifespan: the runner never starts, so the job stays queued
    job_id = post(queued, iterations="2").json()["id"]
    assert queued.get(f"/jobs/{job_id}").json()["state"] == "queued"
    answer = queued.get(f"/jobs/{job_id}/image")
    assert answer.status_code == 404
    assert answer.json()["detail"] == f"job {job_id} has no image yet; wait for its first preview"
    assert queued.delete(f"/jobs/{job_id}").status_code == 202
    assert queued.get(f"/jobs/{job_id}").json()["state"] == "cancelled"
    assert queued.delete(f"/jobs/{job_id}").status_code == 409
    app.state.studio.store.close()


def test_a_sweep_job(client: TestClient, network: Path, tmp_path: Path) -> None:
    job = run_job(client, upload(CONTENT, STYLES), blend_sweep="3", iterations="3", seed="2")
    assert job["state"] == "done" and job["kind"] == "sweep", job
    names = ["result_1-0.png", "result_0.5-0.5.png", "result_0-1.png"]
    assert job["files"] == sorted(["log.txt", "result_sheet.png", *names])
    assert [c["file"] for c in job["candidates"]] == names
    assert [c["label"] for c in job["candidates"]] == ["1-0", "0.5-0.5", "0-1"]
    assert all(c["losses"]["total"] > 0 for c in job["candidates"])
    sheet = client.get(f"/jobs/{job['id']}/image")
    assert sheet.content == client.get(f"/jobs/{job['id']}/files/result_sheet.png").content
    status, err, output = command(tmp_path, network, "--blend_sweep=3", "--iterations=3", "--seed=2", styles=2)
    assert status == 0, err
    for name in names:
        mine = pixels(client.get(f"/jobs/{job['id']}/files/{name}").content)
        assert np.array_equal(mine, pixels(output.with_name(name.replace("result", "out"))))


def test_a_regions_job(client: TestClient, network: Path, tmp_path: Path) -> None:
    masks = [mask_png(32, 24, True), mask_png(32, 24, False)]
    job = run_job(client, upload(CONTENT, STYLES, masks=masks), iterations="4", seed="5")
    assert job["state"] == "done", job
    assert job["inputs"]["masks"] == ["mask-1.png", "mask-2.png"]
    status, err, output = command(tmp_path, network, "--iterations=4", "--seed=5", styles=2, masks=masks)
    assert status == 0, err
    result = pixels(client.get(f"/jobs/{job['id']}/files/result.png").content)
    assert np.array_equal(result, pixels(output))
    (tmp_path / "plain").mkdir()
    _, _, plain = command(tmp_path / "plain", network, "--iterations=4", "--seed=5", styles=2)
    assert not np.array_equal(result, pixels(plain))  # the masks changed the result


def test_a_failed_job_has_the_command_message_and_the_server_goes_on(client: TestClient) -> None:
    job = run_job(client, iterations="3", learning_rate="1e38", style_weight="1e38")
    assert job["state"] == "failed"
    assert re.fullmatch(r"the loss became \[\S+\] at iteration 1; .*no image was written", job["error"]), job["error"]
    assert run_job(client, iterations="1")["state"] == "done"


@pytest.mark.slow
def test_a_stopped_server_resumes_the_job(tmp_path: Path, network: Path) -> None:
    """A stop in the middle of a job (the server's Ctrl-C) saves its state; the next start continues it, and the
    result is the uninterrupted run's."""
    with studio(tmp_path / "a", network) as first:
        job_id = post(first, iterations="40", seed="4").json()["id"]
        wait_for(first, job_id, states=("running",), iteration=10)
    with studio(tmp_path / "a", network) as second:
        assert second.get(f"/jobs/{job_id}").json()["state"] in ("queued", "running")
        job = wait_for(second, job_id)
        reference = run_job(second, iterations="40", seed="4")
        log = second.get(f"/jobs/{job_id}/files/log.txt").text
        interrupted = pixels(second.get(f"/jobs/{job_id}/image").content)
        uninterrupted = pixels(second.get(f"/jobs/{reference['id']}/image").content)
    assert job["state"] == "done" and job["attempts"] == 2
    assert re.search(r"Resumed at iteration ([1-9]\d*)/40", log)
    assert np.abs(interrupted - uninterrupted).max() <= 1


# ------------------------------------------------------------------------------------------------ guards


def test_a_token_is_required_when_set(tmp_path: Path, network: Path) -> None:
    with studio(tmp_path, network, token="s3cret-token") as guarded:
        for path in ("/", "/jobs", "/settings", "/docs"):
            answer = guarded.get(path)
            assert answer.status_code == 401, path
            assert answer.headers["www-authenticate"] == "Bearer"
        assert guarded.get("/jobs", headers={"Authorization": "Bearer wrong-token"}).status_code == 401
        assert guarded.get("/jobs", headers={"Authorization": "Bearer s3cret-token"}).json() == []
        assert guarded.get("/jobs?token=s3cret-token").status_code == 200
        page = guarded.get("/?token=s3cret-token")
        assert page.status_code == 200 and "neural_style_token=s3cret-token" in page.headers["set-cookie"]
        assert guarded.get("/jobs").status_code == 200  # the cookie the page got


def test_requests_must_name_this_host_and_changes_come_from_this_site(tmp_path: Path, network: Path) -> None:
    with studio(tmp_path, network, allowed_hosts=("localhost", "127.0.0.1", "::1")) as local:
        local.base_url = "http://127.0.0.1:8000"  # type: ignore[assignment]
        assert local.get("/jobs").status_code == 200
        assert local.get("/jobs", headers={"Host": "[::1]:8000"}).status_code == 200
        answer = local.get("/jobs", headers={"Host": "attacker.example"})
        assert answer.status_code == 400
        answer = local.post("/jobs", files=upload(CONTENT, STYLES[:1]), headers={"Origin": "http://evil.example"})
        assert answer.status_code == 403
        assert answer.json()["detail"] == "a request from the page of another site (http://evil.example) is refused"
        answer = local.delete("/jobs/x", headers={"Origin": "http://127.0.0.1:8000"})
        assert answer.status_code == 404  # same site: let through


def test_the_page_and_its_files(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    sources = [s for s in re.findall(r'(?:src|href)="([^"]+)"', page.text) if s != "#"]
    assert sources == ["data:,", "/static/style.css", "/static/app.js"]  # nothing from elsewhere
    for path in sources[1:]:
        assert client.get(path).status_code == 200
    assert client.get("/static/nothing.js").status_code == 404
    labelled = set(re.findall(r'<label for="([^"]+)"', page.text))
    controls = set(re.findall(r'<(?:input|select|textarea)[^>]* id="([^"]+)"', page.text))
    assert controls - {"brush-erase"} <= labelled  # the eraser's label wraps it
    assert "http" not in client.get("/static/app.js").text.replace("http.", "")


def test_the_readme_client_example(client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's Python example, run against this studio (its base URL replaced by the test client)."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## The studio") :]
    code = section[section.index("```python\n") + 10 :]
    code = code[: code.index("```")]
    for given, tiny in [
        ('httpx.Client(base_url="http://127.0.0.1:8000")', "studio_client"),
        ('{"width": "256", "iterations": "300"}', '{"width": "32", "iterations": "3"}'),
        ("time.sleep(1)", "time.sleep(0.05)"),
    ]:
        assert given in code
        code = code.replace(given, tiny)
    (tmp_path / "photo.jpg").write_bytes(png_bytes(pixels(CONTENT).astype(np.uint8), "JPEG"))
    (tmp_path / "starry.jpg").write_bytes(png_bytes(pixels(STYLES[0]).astype(np.uint8), "JPEG"))
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {"studio_client": client, "__name__": "__readme__"})  # noqa: S102
    assert (tmp_path / "styled.png").is_file()
    assert Image.open(tmp_path / "styled.png").size == (32, 24)
    assert "done" in out.getvalue()


if __name__ == "__main__":
    sys.exit(pytest.main([__file__]))
