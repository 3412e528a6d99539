"""The FastAPI application: one factory for Lambda (via Mangum) and the local stack (uvicorn)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import FastAPI

from functions.api import access, errors
from functions.api.auth import Authenticator
from functions.api.idempotency import Idempotency
from functions.api.limits import BodySizeLimit
from functions.api.routers import albums, artists, browse, health, media_uploads, progress, sessions, tracks, uploads
from functions.settings import settings

HealthCheck = Callable[[], bool]
ROUTERS = (
    health.router,
    artists.router,
    uploads.router,
    tracks.router,
    albums.router,
    browse.router,
    media_uploads.router,
    progress.router,
    sessions.router,
)
# Each route's access (public / optional / owner) into the OpenAPI document, once per process.
access.publish(ROUTERS)


def create_app(authenticator: Authenticator, *, health_checks: Mapping[str, HealthCheck] | None = None) -> FastAPI:
    app = FastAPI(
        title="tracklane",
        version="0.1.0",
        description="Upload and process music: intents, presigned PUTs, finalize, processing status.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.authenticator = authenticator
    app.state.health_checks = dict(health_checks or {})
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    # Added first, so it runs inside BodySizeLimit: the body it buffers is already bounded.
    app.add_middleware(Idempotency)
    app.add_middleware(BodySizeLimit, max_bytes=lambda: settings().max_request_body_bytes)
    return app
