"""The studio's web application: the routers, the guard in front of them, and the runner started and stopped with
it (FastAPI's lifespan)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from neural_style.serve.routes import jobs, page
from neural_style.serve.routes import settings as settings_routes
from neural_style.serve.security import Guard
from neural_style.serve.studio import ServerConfig, Studio

__all__ = ["create_app"]


def create_app(config: ServerConfig) -> FastAPI:
    """The application serving ``config``'s studio; its runner starts (TensorFlow, the network, interrupted jobs
    queued again) when the application does and stops, saving the running job's state, when it stops."""
    studio = Studio(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(studio.start)
        try:
            yield
        finally:
            await run_in_threadpool(studio.stop)

    app = FastAPI(
        title="neural-style studio",
        summary="Stylize images (Gatys et al.) with neural-style's settings, live.",
        version="1",
        lifespan=lifespan,
        redoc_url=None,
    )
    app.state.studio = studio
    app.include_router(jobs.router)
    app.include_router(settings_routes.router)
    app.include_router(page.router)
    app.add_middleware(
        Guard,
        token=config.token,
        allowed_hosts=config.allowed_hosts,
        request_bytes=config.limits.request_bytes,
    )
    return app
