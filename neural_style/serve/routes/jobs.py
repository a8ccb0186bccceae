"""``/jobs``: create a job, list them, a job's status, best image, files and events, cancel."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from neural_style.serve.routes import StudioDep, refused
from neural_style.serve.studio import FILE_FIELDS, Refusal

__all__ = ["router"]

router = APIRouter(prefix="/jobs", tags=["jobs"])

KEEP_ALIVE_SECONDS = 15.0  # an event stream with nothing to say sends a comment this often
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such job"}}
_FORM = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["content", "styles"],
                    "properties": {
                        "content": {"type": "string", "format": "binary", "description": "The content image."},
                        "styles": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One or more style images (repeat the field).",
                        },
                        "masks": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "One grey-level mask per style, as --content_masks takes them.",
                        },
                        "initial": {"type": "string", "format": "binary", "description": "The initial image."},
                    },
                    "additionalProperties": {
                        "type": "string",
                        "description": "A setting named as neural-style's flag, without dashes (GET /settings).",
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=201,
    openapi_extra=_FORM,
    responses={
        413: {"description": "Too many or too large files"},
        422: {"description": "A bad file, or a setting neural-style refuses (its one-line message)"},
    },
)
async def create_job(request: Request, studio: StudioDep) -> JSONResponse:
    """Creates a job from uploaded images and settings (multipart/form-data): ``content``, ``styles`` (repeated),
    optional ``masks`` (one per style) and ``initial``; every other field is a setting named as neural-style's
    flag without dashes (``width=256``, ``optimizer=lbfgs``, ...), checked as the command checks it."""
    limits = studio.config.limits
    form = await request.form(max_files=4 * limits.files + len(FILE_FIELDS), max_fields=1000, max_part_size=1 << 16)
    try:
        job = await run_in_threadpool(studio.create, list(form.multi_items()))
    except Refusal as e:
        raise refused(e) from None
    finally:
        await form.close()
    return JSONResponse(studio.describe(job), status_code=201, headers={"Location": f"/jobs/{job.id}"})


# The answers are made JSON directly (JSONResponse): polled often, they skip FastAPI's encoding of the return value.


@router.get("", response_class=JSONResponse)
async def list_jobs(studio: StudioDep) -> JSONResponse:
    """Every job, newest first."""
    return JSONResponse([studio.describe(job) for job in studio.store.newest()])


@router.get("/{job_id}", response_class=JSONResponse, responses=_NOT_FOUND)
async def get_job(job_id: str, studio: StudioDep) -> JSONResponse:
    """A job's state, progress, losses of its saved image, error and result files."""
    try:
        return JSONResponse(studio.describe(studio.job(job_id)))
    except Refusal as e:
        raise refused(e) from None


@router.delete("/{job_id}", status_code=202, responses={**_NOT_FOUND, 409: {"description": "Already finished"}})
async def cancel_job(job_id: str, studio: StudioDep) -> JSONResponse:
    """Cancels a job: a queued job at once; a running one at its next step, keeping its best image so far."""
    try:
        job = studio.job(job_id)
        studio.cancel(job)
        return JSONResponse(studio.describe(studio.job(job_id)), status_code=202)
    except Refusal as e:
        raise refused(e) from None


@router.get(
    "/{job_id}/image",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, 404: {"description": "No such job, or no image yet"}},
)
async def get_image(job_id: str, studio: StudioDep) -> Response:
    """The job's best image so far as PNG: the live preview while it runs, the result (a sweep's sheet) when it
    has ended."""
    try:
        job = studio.job(job_id)
    except Refusal as e:
        raise refused(e) from None
    image = studio.image(job)
    if image is None:
        raise refused(Refusal(f"job {job_id} has no image yet; wait for its first preview", 404))
    headers = {"Cache-Control": "no-store"}
    if isinstance(image, bytes):
        return Response(image, media_type="image/png", headers=headers)
    return FileResponse(image, media_type="image/png", headers=headers)


@router.get("/{job_id}/files/{name}", responses={404: {"description": "No such job or file"}})
async def get_file(job_id: str, name: str, studio: StudioDep) -> FileResponse:
    """A result file of the job, by one of the names its ``files`` lists."""
    try:
        job = studio.job(job_id)
    except Refusal as e:
        raise refused(e) from None
    path = studio.file(job, name)
    if path is None:
        raise refused(Refusal(f"job {job_id} has no file '{name}'; its 'files' lists those it has", 404))
    return FileResponse(path, filename=name, content_disposition_type="inline", headers={"Cache-Control": "no-store"})


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **_NOT_FOUND},
)
async def get_events(job_id: str, request: Request, studio: StudioDep) -> StreamingResponse:
    """Server-sent events: ``job`` (the job as GET /jobs/{id} gives it, first and last), ``progress`` (iteration,
    iterations, time_left, and the loss terms when reported), ``preview`` (a new image at /jobs/{id}/image) and
    ``state``. The stream ends when the job does; ``Last-Event-ID`` resumes it."""
    try:
        job = studio.job(job_id)
    except Refusal as e:
        raise refused(e) from None
    after = request.headers.get("last-event-id", "")
    seq = int(after) if after.isdigit() else 0
    channel = studio.hub.channel(job_id)

    async def stream() -> AsyncIterator[bytes]:
        nonlocal seq
        yield _event("job", studio.describe(job))
        if job.final:
            for event in channel.since(seq):
                yield event.encode()
            return
        while True:
            events = await channel.wait(seq, KEEP_ALIVE_SECONDS)
            for event in events:
                yield event.encode()
                seq = event.seq
            current = studio.store.get(job_id)
            if current is None or current.final:
                if current is not None:
                    yield _event("job", studio.describe(current))
                return
            if not events:
                yield b": keep-alive\n\n"
            if await request.is_disconnected():
                return

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()
