"""``/``: the web page, and its script and style sheet (package data, read once; nothing is fetched from elsewhere)."""

from __future__ import annotations

import functools
from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

# What the page may load: its own files, its own images and event streams, and images made in the browser.
POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}


@functools.cache
def _static(name: str) -> bytes | None:
    folder = resources.files("neural_style.serve").joinpath("static")
    names = {entry.name for entry in folder.iterdir()}
    return folder.joinpath(name).read_bytes() if name in names else None


def _file(name: str) -> Response:
    data = _static(name)
    kind = _TYPES.get(name[name.rfind(".") :]) if "." in name else None
    if data is None or kind is None:
        raise HTTPException(404, f"the page has no file '{name}'")
    headers = {"Content-Security-Policy": POLICY, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    return Response(data, media_type=kind, headers=headers)


@router.get("/")
async def page() -> Response:
    return _file("index.html")


@router.get("/static/{name}")
async def static(name: str) -> Response:
    return _file(name)
