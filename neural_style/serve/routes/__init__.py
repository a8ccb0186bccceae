"""The routers of the studio, one per resource: ``jobs`` (the API), ``settings`` (what a job takes) and ``page``
(the web page and its files)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from neural_style.serve.studio import Refusal, Studio

__all__ = ["StudioDep", "get_studio", "refused"]


def get_studio(request: Request) -> Studio:
    """The studio of the application serving ``request`` (a dependency of every route)."""
    studio: Studio = request.app.state.studio
    return studio


def refused(error: Refusal) -> HTTPException:
    """A refusal as the HTTP error FastAPI answers with (``{"detail": message}``)."""
    return HTTPException(error.status, error.message)


StudioDep = Annotated[Studio, Depends(get_studio)]  # a route's parameter: the studio serving it
