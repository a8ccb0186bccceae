"""The studio's job records and queue (``neural_style.serve.store``), its data directory (``.folders``), its event
channels (``.events``) and its upload checks (``.uploads``): no TensorFlow, no server."""

from __future__ import annotations

import asyncio
import io
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neural_style.serve.events import Channel
from neural_style.serve.folders import DataDir
from neural_style.serve.store import Job, JobStore
from neural_style.serve.uploads import Limits, UploadError, image_extension


def _job(job_id: str, **fields: object) -> Job:
    values: dict = {"id": job_id, "state": "queued", "created": time.time(), "settings": [], "iterations": 5}
    values["inputs"] = {"content": "content.png", "styles": ["style-1.png"], "masks": [], "initial": None}
    return Job(**{**values, **fields})


@pytest.fixture
def store(tmp_path: Path) -> JobStore:
    opened = JobStore(tmp_path / "jobs.sqlite")
    yield opened
    opened.close()


def test_a_job_comes_back_as_it_was_stored(store: JobStore) -> None:
    job = store.add(_job("a", settings=[["width", "256"], ["clip", "true"]], labels=["1-0", "0-1"]))
    assert job.seq == 1
    back = store.get("a")
    assert back == job
    assert store.get("nothing") is None
    store.update("a", losses={"total": 1.5}, files=["result.png"], cancel=True, iteration=3)
    back = store.get("a")
    assert back is not None
    assert (back.losses, back.files, back.cancel, back.iteration) == ({"total": 1.5}, ["result.png"], True, 3)


def test_the_queue_is_first_in_first_out_and_newest_listed_first(store: JobStore) -> None:
    for name in "abc":
        store.add(_job(name))
    assert [job.id for job in store.newest()] == ["c", "b", "a"]
    assert [job.id for job in store.newest(limit=2)] == ["c", "b"]
    first = store.claim_next()
    assert first is not None and (first.id, first.state, first.attempts) == ("a", "running", 1)
    assert first.started is not None
    second = store.claim_next()
    assert second is not None and second.id == "b"
    assert store.cancel_queued("c") is True
    assert store.cancel_queued("c") is False  # not queued any more
    assert store.cancel_queued("a") is False  # running: the runner stops it
    assert store.claim_next() is None


def test_recover_queues_the_jobs_a_crash_left_running(store: JobStore) -> None:
    for name in "abc":
        store.add(_job(name))
    for _ in range(3):
        store.claim_next()
    store.update("b", cancel=True)
    store.update("c", state="done")
    assert store.recover() == ["a"]
    states = {job.id: (job.state, job.attempts) for job in store.newest()}
    assert states == {"a": ("queued", 1), "b": ("cancelled", 1), "c": ("done", 1)}
    again = store.claim_next()
    assert again is not None and (again.id, again.attempts) == ("a", 2)


def test_the_database_is_in_write_ahead_log_mode(store: JobStore, tmp_path: Path) -> None:
    store.add(_job("a"))
    with sqlite3.connect(tmp_path / "jobs.sqlite") as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("SELECT id, state FROM jobs").fetchall() == [("a", "queued")]


def test_bad_fields_are_refused(store: JobStore) -> None:
    store.add(_job("a"))
    with pytest.raises(ValueError, match="not fields of a job: colour"):
        store.update("a", colour="red")
    with pytest.raises(ValueError, match="not a state: paused"):
        store.update("a", state="paused")


def test_reads_from_many_threads_beside_the_writer(store: JobStore) -> None:
    store.add(_job("a"))
    seen: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(50):
                job = store.get("a")
                assert job is not None
                seen.append(job.iteration)
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for k in range(50):
        store.update("a", iteration=k)
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(seen) == 200 and set(seen) <= set(range(50))


def test_the_data_directory_removes_what_a_crash_left(tmp_path: Path) -> None:
    data = DataDir(tmp_path / "data")
    staging = data.staging()
    assert sorted(p.name for p in staging.iterdir()) == ["inputs", "out"]
    (data.jobs / "kept" / "out").mkdir(parents=True)
    (data.jobs / "kept" / "out" / "result.png").write_bytes(b"x")
    (data.jobs / "kept" / "out" / ".tmp-123").write_bytes(b"x")
    (data.jobs / "kept" / "out" / "result.png.state").mkdir()
    (data.jobs / "orphan").mkdir()
    data.clean({"kept"})
    assert sorted(p.name for p in data.jobs.iterdir()) == ["kept"]
    assert list(data.incoming.iterdir()) == []
    assert data.results("kept") == ["result.png"]  # no folders, no temporary files
    assert data.results("nothing") == []
    assert len(DataDir.new_id()) == 12 and DataDir.new_id() != DataDir.new_id()


def test_a_channel_keeps_its_events_and_wakes_its_streams() -> None:
    channel = Channel()
    channel.publish("progress", {"iteration": 1})
    assert [(e.seq, e.kind, e.data) for e in channel.since(0)] == [(1, "progress", {"iteration": 1})]
    assert channel.since(1) == []
    assert channel.since(0)[0].encode() == b'id: 1\nevent: progress\ndata: {"iteration": 1}\n\n'

    async def follow() -> list[int]:
        waiting = asyncio.ensure_future(channel.wait(1, timeout=30))
        await asyncio.sleep(0.05)
        threading.Thread(target=channel.publish, args=("preview", {"version": 1})).start()  # from another thread
        events = await waiting
        empty = await channel.wait(2, timeout=0.05)  # nothing new: the timeout
        return [e.seq for e in events] + [len(empty)]

    start = time.monotonic()
    assert asyncio.run(follow()) == [2, 0]
    assert time.monotonic() - start < 25  # woken by the event, not by the timeout


NOISE = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)


def _encoded(image: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "extension"), [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"), ("BMP", ".bmp")])
def test_an_upload_is_typed_by_decoding(fmt: str, extension: str) -> None:
    data = _encoded(np.full((10, 20, 3), 128, np.uint8), fmt)
    assert image_extension(data, "content", Limits()) == extension


@pytest.mark.parametrize(
    ("data", "limits", "status", "message"),
    [
        (b"", Limits(), 422, "content: the file is empty"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", Limits(), 422, "content: the file is not an image"),
        (_encoded(NOISE, "PNG")[:1000], Limits(), 422, "content: the image is damaged or truncated"),
        (_encoded(np.zeros((8, 8, 3), np.uint8), "PNG"), Limits(file_bytes=50), 413, "content: the file has"),
        (
            _encoded(np.zeros((30, 40, 3), np.uint8), "PNG"),
            Limits(megapixels=0.001),
            413,
            "content: the image has 40x30",
        ),
        (_encoded(np.zeros((8, 8, 3), np.uint8), "ICO"), Limits(), 422, "content: ICO images are not taken"),
    ],
    ids=["empty", "svg", "truncated", "bytes", "megapixels", "ico"],
)
def test_a_bad_upload_is_refused(data: bytes, limits: Limits, status: int, message: str) -> None:
    with pytest.raises(UploadError) as refused:
        image_extension(data, "content", limits)
    assert refused.value.status == status
    assert refused.value.message.startswith(message)
