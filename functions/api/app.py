"""The FastAPI application: one factory for Lambda (via Mangum) and the local stack (uvicorn).

Routers are imported when a request first needs one. Building a router's routes (FastAPI analyses
every endpoint's signature, pydantic builds every model) and importing the domain code behind it was
most of the API function's import: a cold start that serves ``GET /v1/tracks/{id}`` now builds the
routers under ``/v1/tracks`` only. Each router module is declared with the path prefixes its routes
live under; a stand-in route holds its place in the app's route list and, on the first request under
one of those prefixes, is replaced by the router itself, so routes are matched in the same order as
if every router had been included up front. The OpenAPI document includes every router.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from functions.api import access, errors
from functions.api.auth import Authenticator
from functions.api.idempotency import Idempotency
from functions.api.limits import BodySizeLimit
from functions.settings import settings

HealthCheck = Callable[[], bool]
# Router module (under functions.api.routers) -> the path prefixes all its routes live under, in the
# order the routers are matched. A test checks every route against its module's prefixes.
ROUTER_PREFIXES: Mapping[str, tuple[str, ...]] = {
    "health": ("/health",),
    "artists": ("/v1/artists",),
    "uploads": ("/v1/uploads",),
    "tracks": ("/v1/tracks",),
    "albums": ("/v1/albums", "/v1/artists"),
    "browse": ("/v1/me", "/v1/tags"),
    "media_uploads": ("/v1/albums", "/v1/artists", "/v1/tracks"),
    "progress": ("/v1/uploads",),
    "sessions": ("/v1/upload", "/v1/upload_session"),
}
_published: set[str] = set()
_publishing = threading.Lock()


def router(name: str) -> APIRouter:
    """The router of ``functions.api.routers.<name>``, imported on first use, with each route's
    access written into its OpenAPI operation (``functions.api.access``), once per process."""
    module = importlib.import_module(f"functions.api.routers.{name}")
    with _publishing:
        if name not in _published:
            access.publish([module.router])
            _published.add(name)
    return module.router  # type: ignore[no-any-return]


def routers() -> tuple[APIRouter, ...]:
    """Every router, in matching order (imports all of them)."""
    return tuple(router(name) for name in ROUTER_PREFIXES)


def under(path: str, prefixes: tuple[str, ...]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


class _RouterStandIn(BaseRoute):
    """Holds a router's place in the app's route list until a request under its prefixes comes."""

    def __init__(self, app: _App, name: str) -> None:
        self.owner = app
        self.name = name
        self.prefixes = ROUTER_PREFIXES[name]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and under(get_route_path(scope), self.prefixes):
            return Match.FULL, {}
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.owner.include_in_place(self)
        await self.owner.router.app(scope, receive, send)  # matched again, against the router itself


class _App(FastAPI):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._including = threading.Lock()

    def include_in_place(self, stand_in: _RouterStandIn) -> None:
        real = router(stand_in.name)
        with self._including:
            routes = self.router.routes
            if stand_in not in routes:
                return  # another request got there first
            before = len(routes)
            self.include_router(real)  # appended last (one entry or, in older FastAPI, a copy of each route)
            added = routes[before:]
            del routes[before:]
            at = routes.index(stand_in)
            routes[at : at + 1] = added  # where the stand-in was

    def include_every_router(self) -> None:
        for route in list(self.router.routes):
            if isinstance(route, _RouterStandIn):
                self.include_in_place(route)

    def openapi(self) -> dict[str, Any]:
        self.include_every_router()
        return super().openapi()


def create_app(authenticator: Authenticator, *, health_checks: Mapping[str, HealthCheck] | None = None) -> FastAPI:
    app = _App(
        title="tracklane",
        version="0.1.0",
        description="Upload and process music: intents, presigned PUTs, finalize, processing status.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.authenticator = authenticator
    app.state.health_checks = dict(health_checks or {})
    errors.install(app)
    app.router.routes.extend(_RouterStandIn(app, name) for name in ROUTER_PREFIXES)
    # Added first, so it runs inside BodySizeLimit: the body it buffers is already bounded.
    app.add_middleware(Idempotency)
    app.add_middleware(BodySizeLimit, max_bytes=lambda: settings().max_request_body_bytes)
    return app
