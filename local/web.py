"""The upload page (``web/``, built into ``web/dist`` by ``make install``) on the local stack.

``make run`` serves it beside the API: ``/`` and ``/upload`` lead to ``/upload/``, the page, and
``/upload/assets/...`` are its bundle. ``GET /local/dev-token`` mints the page a dev token
(``local.devauth``) for a local user, with an artist profile, so the page on the stack's own origin
uploads with nothing to paste. None of this is in the Lambda app: the deployed API serves no page
and mints no tokens (docs/web.md says how the page is pointed at a deployed API instead).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from functions.domain.catalog import artists
from functions.errors import HandleTaken
from local.devauth import DevKeys, mint

DIST = Path(__file__).resolve().parents[1] / "web" / "dist"
DEV_USER = "web"
DEV_TOKEN_TTL_S = 12 * 3600
# What a browser says about where a request came from (Fetch Metadata). Only the stack's own page
# (same-origin) and tools that send no such header (curl) get a token: any other site open in the
# developer's browser could otherwise mint one and upload into the local stack.
_TOKEN_SITES = {None, "same-origin", "none"}
_NOT_HANDLE = re.compile(r"[^a-z0-9._-]+")


def with_upload_page(app: ASGIApp, dev_keys: DevKeys, *, dist: Path = DIST) -> ASGIApp:
    """``app`` plus the page's routes; every other request reaches ``app`` unchanged."""

    async def page(_: Request) -> Response:
        index = dist / "index.html"
        if not index.is_file():
            return PlainTextResponse(
                f"The upload page is not built ({index} is missing): `make install` builds it.", status_code=503
            )
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    async def to_page(_: Request) -> Response:
        return RedirectResponse("/upload/", status_code=307)

    async def dev_token(request: Request) -> Response:
        if request.headers.get("sec-fetch-site") not in _TOKEN_SITES:
            return _error(403, "dev_token_same_origin_only", "Only the local stack's own page gets a dev token.")
        user = request.query_params.get("user", DEV_USER)
        try:
            token = mint(user, dev_keys, ttl_s=DEV_TOKEN_TTL_S)
        except ValueError as refused:
            return _error(400, "invalid_user", str(refused))
        handle = await run_in_threadpool(ensure_artist, user)
        expires_at = datetime.now(UTC) + timedelta(seconds=DEV_TOKEN_TTL_S)
        return JSONResponse(
            {
                "token": token,
                "user": user,
                "handle": handle,
                "expiresAt": expires_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            },
            headers={"Cache-Control": "no-store"},
        )

    return Router(
        routes=[
            Route("/", to_page),
            Route("/upload", to_page),
            Route("/upload/", page),
            Route("/upload/index.html", page),
            Mount("/upload/assets", app=StaticFiles(directory=dist / "assets", check_dir=False)),
            Route("/local/dev-token", dev_token),
        ],
        # The API's own paths answer exactly as without the page: no slash redirects added.
        redirect_slashes=False,
        default=app,
    )


def ensure_artist(user: str) -> str:
    """The user's artist handle, creating the profile (uploads need one) when it has none."""
    existing = artists.find(user)
    if existing is not None:
        return existing.handle
    base = _NOT_HANDLE.sub("-", user.lower()).strip("-._")[:50] or "artist"
    base = base if len(base) >= 3 else f"{base}-dev"
    for suffix in ["", *(f"-{n}" for n in range(2, 10))]:
        try:
            return artists.upsert(user, handle=base + suffix, display_name=f"{user} (local)").handle
        except HandleTaken:
            continue
    raise RuntimeError(f"no free artist handle for {user!r}")


def _error(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)
