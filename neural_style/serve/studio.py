"""The studio's work behind the routes: accepting a job, describing it, finding its images and files, cancelling.

A new job is accepted only when the command would start it: its uploads are checked (:mod:`.uploads`) and stored
in a folder of their own under server-chosen names, its settings become the command's arguments, and the command's
own checks run up to its first step (:func:`neural_style.serve.settings.check`). Only then does the folder become
the job's and the record enter the queue; a refused job leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from neural_style.serve import settings
from neural_style.serve.events import Hub
from neural_style.serve.folders import DataDir
from neural_style.serve.runner import Runner, job_files
from neural_style.serve.store import Job, JobStore
from neural_style.serve.uploads import Limits, UploadError, image_extension

__all__ = ["FILE_FIELDS", "Refusal", "ServerConfig", "Studio"]

# The fields of a new job that are files; every other field is a setting.
FILE_FIELDS = ("content", "styles", "masks", "initial")


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """How the studio runs.

    Attributes:
        network: the network file of every job.
        data_dir: where the records, inputs and results live.
        token: what every request must carry, or None.
        limits: what one job may upload.
        preview_seconds: a new preview image at most this often (and at checkpoints and the end).
        save_seconds: a running job saves its state at least this often.
        allowed_hosts: the host names requests may address; None: any.
        nice: how much lower the jobs' priority is than the server's (Linux).
    """

    network: str
    data_dir: str
    token: str | None = None
    limits: Limits = Limits()
    preview_seconds: float = 1.0
    save_seconds: float = 15.0
    allowed_hosts: tuple[str, ...] | None = None
    nice: int = 10


class Refusal(Exception):
    """A request refused: ``status`` (HTTP) and the one-line ``message``."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Upload(Protocol):
    """An uploaded file as the form parser gives it."""

    file: BinaryIO


class Studio:
    """The data directory, the records, the events and the runner of one server."""

    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.data = DataDir(config.data_dir)
        self.store = JobStore(self.data.database)
        self.hub = Hub()
        self.runner = Runner(
            self.store,
            self.hub,
            self.data,
            config.network,
            preview_seconds=config.preview_seconds,
            save_seconds=config.save_seconds,
            nice=config.nice,
        )

    def start(self) -> None:
        self.runner.start()

    def stop(self) -> None:
        self.runner.stop()
        self.store.close()

    # ------------------------------------------------------------------------------------------------ new jobs

    def create(self, items: Sequence[tuple[str, str | Upload]]) -> Job:
        """Accepts a job from the fields of its form (in order; a file is anything that is not a string).

        Raises:
            Refusal: a missing, extra or bad file (422), too many or too large files (413), a setting the command
                refuses (422, its message), or a run the command could not start (500, its message).
        """
        limits = self.config.limits
        uploads: dict[str, list[Upload]] = {name: [] for name in FILE_FIELDS}
        fields: list[tuple[str, str]] = []
        for name, value in items:
            if isinstance(value, str):
                if name in FILE_FIELDS:
                    raise Refusal(f"{name} is a file: upload it as a file (multipart/form-data), not as text", 422)
                fields.append((name, value))
            elif name in FILE_FIELDS:
                uploads[name].append(value)
            else:
                files = ", ".join(FILE_FIELDS)
                raise Refusal(f"{name} is sent as a file, but only {files} are files; a setting is text", 422)
        count = sum(len(files) for files in uploads.values())
        if count > limits.files:
            raise Refusal(f"{count} files, more than the {limits.files} a job may upload; send fewer", 413)
        if len(uploads["content"]) != 1:
            raise Refusal("content: send exactly one content image, as the file field 'content'", 422)
        if not uploads["styles"]:
            raise Refusal("styles: send one or more style images, each as a file field 'styles'", 422)
        if len(uploads["initial"]) > 1:
            raise Refusal("initial: send at most one initial image", 422)
        try:
            arguments = settings.setting_arguments(fields)
        except settings.CommandError as e:
            raise Refusal(e.message, 422) from None
        staging = self.data.staging()
        try:
            inputs = self._store_uploads(uploads, staging / "inputs", limits)
            job = Job(
                id=self.data.new_id(),
                state="queued",
                created=time.time(),
                settings=[[name, value] for name, value in fields],
                inputs=inputs,
                iterations=0,
            )
            paths = job_files(staging, inputs)
            command, job.labels = settings.job_arguments(arguments, paths, self.config.network)
            with self.runner.prepare:
                checked = settings.check(command, hide=(str(staging / "inputs"), str(staging)))
            job.iterations = checked.iterations
            os.rename(staging, self.data.job(job.id))
        except settings.CommandError as e:
            shutil.rmtree(staging, ignore_errors=True)
            raise Refusal(e.message, 422 if e.status == 2 else 500) from None
        except UploadError as e:
            shutil.rmtree(staging, ignore_errors=True)
            raise Refusal(e.message, e.status) from None
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.store.add(job)
        self.hub.publish(job.id, "state", {"state": "queued"})
        self.runner.wake()
        return job

    @staticmethod
    def _store_uploads(uploads: dict[str, list[Upload]], folder: Path, limits: Limits) -> dict[str, Any]:
        """Checks each upload by decoding it and writes it under the server's name: {field: name(s)}."""

        def keep(upload: Upload, field: str, stem: str) -> str:
            data = upload.file.read(limits.file_bytes + 1)
            name = stem + image_extension(data, field, limits)
            (folder / name).write_bytes(data)
            return name

        def numbered(field: str, stem: str) -> list[str]:
            files = uploads[field]
            return [
                keep(upload, field if len(files) == 1 else f"{field} ({i})", f"{stem}-{i}")
                for i, upload in enumerate(files, start=1)
            ]

        return {
            "content": keep(uploads["content"][0], "content", "content"),
            "styles": numbered("styles", "style"),
            "masks": numbered("masks", "mask"),
            "initial": keep(uploads["initial"][0], "initial", "initial") if uploads["initial"] else None,
        }

    # ------------------------------------------------------------------------------------------------ the jobs

    def job(self, job_id: str) -> Job:
        """The job ``job_id``; Refusal 404 when there is none."""
        job = self.store.get(job_id)
        if job is None:
            raise Refusal(f"there is no job {job_id}; GET /jobs lists them", 404)
        return job

    def describe(self, job: Job) -> dict[str, Any]:
        """The job as the API gives it (its record, with the live progress of a running job)."""
        live = self.runner.live(job.id) if job.state == "running" else None
        files = self.data.results(job.id) if job.state == "running" else job.files
        losses = job.losses if live is None or live.losses is None else live.losses
        base = f"/jobs/{job.id}"
        described: dict[str, Any] = {
            "id": job.id,
            "state": job.state,
            "kind": "single" if job.labels is None else "sweep",
            "iteration": job.iteration if live is None else live.iteration,
            "iterations": job.iterations if live is None or not live.iterations else live.iterations,
            "losses": losses,
            "current_losses": None if live is None else live.current,
            "time_left": None if live is None else live.time_left,
            "error": job.error,
            "files": files,
            "settings": dict(job.settings),
            "inputs": job.inputs,
            "created": job.created,
            "started": job.started,
            "finished": job.finished,
            "attempts": job.attempts,
            "cancel_requested": job.cancel,
            "preview": 0 if live is None else live.preview_version,
            "links": {
                "self": base,
                "image": f"{base}/image",
                "events": f"{base}/events",
                "files": {name: f"{base}/files/{name}" for name in files},
            },
        }
        if job.labels is not None:
            described["candidates"] = [
                {
                    "label": label,
                    "file": settings.sweep_file(label) if settings.sweep_file(label) in files else None,
                    "losses": (losses or {}).get(label),
                }
                for label in job.labels
            ]
        return described

    def image(self, job: Job) -> bytes | Path | None:
        """The job's best image so far: the live preview of a running job, the result (a sweep's sheet) of a
        finished one, else the last preview written; None before the first."""
        live = self.runner.live(job.id)
        if live is not None and live.preview is not None:
            return live.preview
        if job.final:
            result = self.data.out(job.id) / (settings.RESULT if job.labels is None else settings.sweep_sheet())
            if result.is_file():
                return result
        preview = self.data.preview(job.id)
        return preview if preview.is_file() else None

    def file(self, job: Job, name: str) -> Path | None:
        """The result file ``name`` of the job, if it has one of that name."""
        return self.data.out(job.id) / name if name in self.data.results(job.id) else None

    def cancel(self, job: Job) -> None:
        """Cancels a queued or running job (Refusal 409 for a finished one)."""
        if job.final or not self.runner.cancel(job.id):
            current = self.job(job.id)
            raise Refusal(f"job {job.id} is {current.state}; only a queued or running job can be cancelled", 409)
