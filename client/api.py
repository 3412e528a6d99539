"""The tracklane API over HTTP (httpx): its routes as methods, its error envelope as ``ApiError``.

Every error the API answers is ``{"error": {"code", "message", ...}}`` (the upload-session routes add
``"ok": false``; the finalize union adds ``status``); ``ApiError`` carries that stable ``code`` so a
caller tells a refusal (``unsupported_media_type``) from a transient failure. Requests that are safe
to repeat are repeated on a dropped connection or a 5xx: every GET and DELETE, and every POST, which
carries an ``Idempotency-Key`` (the API answers a repeat with the first answer instead of doing the
work twice). Signed storage URLs get a client of their own, without the bearer token: S3 refuses a
request that carries two kinds of authentication.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

# What a repeatable request may meet that is worth repeating: the server or a proxy in between
# failing, or a keyed POST whose first attempt is still running (``Retry-After: 1``).
RETRIABLE_STATUS = {500, 502, 503, 504}
RETRY_DELAYS_S = (0.5, 1.0, 2.0, 4.0)
API_TIMEOUT = httpx.Timeout(30.0)
# A part is 5 MiB to 5 GiB: the write may take long on a slow link, but a silent peer is dead.
STORAGE_TIMEOUT = httpx.Timeout(60.0, write=300.0)


class ApiError(Exception):
    """The API refused a request: ``code`` is its stable error code, ``message`` its sentence."""

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


class Unreachable(Exception):
    """The API or storage could not be reached (repeated network failures): nothing was refused,
    so the same command can be run again later."""

    code = "network_error"


def error_from(response: httpx.Response) -> ApiError:
    """The error envelope of a non-2xx answer, or a code made from the status for one without it
    (a proxy's HTML page, S3's XML)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("code"), str):
        details = {k: v for k, v in error.items() if k not in {"code", "message"}}
        return ApiError(response.status_code, error["code"], str(error.get("message", "")), details)
    text = response.text.strip().replace("\n", " ")[:200]
    return ApiError(response.status_code, f"http_{response.status_code}", text or response.reason_phrase)


def token_subject(token: str) -> str:
    """The ``sub`` of a JWT, read without verifying it (only to keep one user's resume state apart
    from another's; the API does the verifying). An opaque token: a digest of it."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        subject = claims.get("sub") if isinstance(claims, dict) else None
        if isinstance(subject, str) and subject:
            return subject
    except (IndexError, ValueError):
        pass
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:16]


class Api:
    """One API base URL and bearer token. ``transport`` lets tests answer with httpx.MockTransport."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        retry_delays_s: tuple[float, ...] = RETRY_DELAYS_S,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.sleep = sleep
        self.retry_delays_s = retry_delays_s
        self.http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "tracklane-cli"},
            timeout=API_TIMEOUT,
            transport=transport,
        )
        self.storage = httpx.Client(timeout=STORAGE_TIMEOUT, transport=transport)

    def close(self) -> None:
        self.http.close()
        self.storage.close()

    # -- the plumbing ---------------------------------------------------------------------------

    def request(self, method: str, path: str, *, json_body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """The answer's JSON (None for 204); ApiError for a refusal, Unreachable when repeated
        attempts could not get an answer."""
        headers = {"Idempotency-Key": str(uuid.uuid4())} if method == "POST" else {}
        last: Exception | None = None
        for delay in (*self.retry_delays_s, None):
            try:
                response = self.http.request(method, path, json=json_body, params=params, headers=headers)
            except httpx.TransportError as error:
                last = error
            else:
                in_progress = response.status_code == 409 and _code(response) == "idempotency_key_in_progress"
                if response.status_code not in RETRIABLE_STATUS and not in_progress:
                    if response.is_success:
                        return response.json() if response.content else None
                    raise error_from(response)
                last = error_from(response)
            if delay is None:
                break
            self.sleep(delay)
        if isinstance(last, ApiError):
            raise last
        raise Unreachable(f"{method} {self.base_url}{path}: {last}")

    @contextmanager
    def stream(self, path: str, *, headers: dict[str, str]) -> Iterator[httpx.Response]:
        """A streamed GET (Server-Sent Events); the caller reads ``iter_lines()``. A refusal is
        ApiError, a dropped connection httpx's own TransportError (the caller reconnects)."""
        timeout = httpx.Timeout(30.0, read=90.0)  # the server sends a keep-alive every 15 s
        with self.http.stream("GET", path, headers=headers, timeout=timeout) as response:
            if response.status_code >= 400:
                response.read()
                raise error_from(response)
            yield response

    # -- uploads --------------------------------------------------------------------------------

    def upload_config(self) -> dict[str, Any] | None:
        """``GET /v1/uploads/config`` (limits and part sizes), or None from an API without it."""
        try:
            config = self.request("GET", "/v1/uploads/config")
        except ApiError as error:
            if error.status in {404, 405, 422}:
                return None
            raise
        return config if isinstance(config, dict) else None

    def create_upload(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/uploads", json_body=body))

    def finalize(self, upload_id: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/v1/uploads/{upload_id}/finalize"))

    def parts(self, upload_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/v1/uploads/{upload_id}/parts"))

    def part_urls(self, upload_id: str, first: int, count: int) -> dict[str, Any]:
        params = {"from": first, "count": count}
        return dict(self.request("GET", f"/v1/uploads/{upload_id}/parts/urls", params=params))

    def complete(self, upload_id: str) -> dict[str, Any]:
        return dict(self.request("POST", f"/v1/uploads/{upload_id}/complete"))

    def cancel(self, upload_id: str) -> None:
        self.request("DELETE", f"/v1/uploads/{upload_id}")

    # -- tracks, artists, albums ------------------------------------------------------------------

    def track(self, track_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/v1/tracks/{track_id}"))

    def update_track(self, track_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        return dict(self.request("PATCH", f"/v1/tracks/{track_id}", json_body=changes))

    def my_artist(self) -> dict[str, Any]:
        return dict(self.request("GET", "/v1/artists/me"))

    def albums_of(self, handle: str) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = self.request("GET", f"/v1/artists/{handle}/albums", params=params)
            yield from page.get("albums", [])
            cursor = page.get("nextCursor")
            if not cursor:
                return

    def create_album(self, title: str) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/albums", json_body={"title": title}))

    def album_page(self, handle: str, slug: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/v1/artists/{handle}/albums/{slug}"))

    # -- upload sessions (snake_case: the upload-session contract) --------------------------------

    def create_session(self, album_id: str) -> dict[str, Any]:
        return dict(self.request("POST", "/v1/upload_session", json_body={"collection_id": album_id}))

    def add_session_track(
        self, session_id: str, file_name: str, *, index: str, metadata: dict[str, Any]
    ) -> dict[str, Any]:
        body = {"file_name": file_name, "organization_index": index, "metadata": metadata}
        return dict(self.request("POST", f"/v1/upload/{session_id}/track", json_body=body))

    def session(self, session_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/v1/upload_session/{session_id}"))


def _code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    return error.get("code") if isinstance(error, dict) else None
