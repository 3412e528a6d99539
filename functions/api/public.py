"""What the public (no token needed) reads share: an optional caller and cacheable answers."""

from __future__ import annotations

import hashlib
import json

from fastapi import Request, Response

from functions.api.auth import Authenticator, Principal
from functions.api.models import CamelResponse
from functions.settings import settings


def absolute_url(request: Request, path: str) -> str:
    """``path`` as clients reach it: under the configured public base URL (a custom domain, an API
    Gateway stage) when there is one, else under the request's own."""
    base = settings().public_api_url or str(request.base_url)
    return f"{base.rstrip('/')}{path}"


def viewer(request: Request) -> Principal | None:
    """The caller when it sent valid credentials, else None: public routes answer both."""
    authenticator: Authenticator = request.app.state.authenticator
    return authenticator.authenticate(request)


def cacheable(request: Request, body: CamelResponse, *, private: bool) -> Response:
    """JSON with an ETag over the exact bytes, so any change (a rename, a track turning ready)
    changes it at once and there is no cache to invalidate; ``If-None-Match`` gets a 304. What
    only one caller may see (the owner's view) is never stored by shared caches."""
    content = body.model_dump(by_alias=True, mode="json")
    encoded = json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()
    etag = f'"{hashlib.sha256(encoded).hexdigest()[:32]}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, no-cache" if private else "public, no-cache",
        "Vary": "Authorization",
    }
    presented = {tag.strip().removeprefix("W/") for tag in request.headers.get("if-none-match", "").split(",")}
    if etag in presented or "*" in presented:
        return Response(status_code=304, headers=headers)
    return Response(encoded, media_type="application/json", headers=headers)
