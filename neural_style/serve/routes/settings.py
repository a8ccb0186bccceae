"""``/settings``: what a job takes: every setting with its default and help (neural-style's flags), the presets,
the file fields and the upload limits."""

from __future__ import annotations

import functools
from typing import Any

from fastapi import APIRouter

from neural_style.serve import settings
from neural_style.serve.routes import StudioDep
from neural_style.serve.studio import FILE_FIELDS

__all__ = ["router"]

router = APIRouter(tags=["settings"])


@functools.cache
def _described() -> list[dict[str, Any]]:
    return settings.describe_settings()


@router.get("/settings")
async def get_settings(studio: StudioDep) -> dict[str, Any]:
    """The settings of a job (named, defaulted and checked as neural-style's flags), the presets, the file fields and
    the upload limits."""
    limits = studio.config.limits
    return {
        "settings": _described(),
        "presets": settings.PRESETS,
        "files": list(FILE_FIELDS),
        "limits": {"file_bytes": limits.file_bytes, "megapixels": limits.megapixels, "files": limits.files},
    }
