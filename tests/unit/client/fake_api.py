"""An in-memory tracklane API for the upload client's unit tests, behind httpx.MockTransport: the
routes the client calls, with the shapes docs/api.md gives them, and storage URLs that keep the
bytes they are sent. It records every request, so a test can say what was (not) sent."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from client.api import Api

API = "https://api.test"
STORAGE = "https://storage.test"


def error(status: int, code: str, message: str = "refused", **extra: Any) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message, **extra}})


def sse(events: list[dict[str, Any]], *, first_id: int = 1) -> str:
    body = "retry: 10\n\n"
    for n, data in enumerate(events, start=first_id):
        body += f"id: {n}\ndata: {json.dumps(data)}\n\n"
    return body


@dataclass
class Upload:
    upload_id: str
    track_id: str
    file_name: str
    byte_size: int
    body: dict[str, Any]
    part_size: int | None = None
    part_count: int | None = None
    status: str = "pending"
    parts: dict[int, bytes] = field(default_factory=dict)
    stored: bytes | None = None
    # What the progress route ends with: ready, failed or duplicate.
    verdict: dict[str, Any] = field(default_factory=lambda: {"phase": "ready", "status": "ready"})


class FakeApi:
    def __init__(self, *, part_size: int = 10, config: bool = True) -> None:
        self.part_size = part_size
        self.config = config
        self.uploads: dict[str, Upload] = {}
        self.requests: list[tuple[str, str]] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.sessions: dict[str, dict[str, Any]] = {}
        self.albums: dict[str, dict[str, Any]] = {}
        self.patches: dict[str, dict[str, Any]] = {}
        # Hooks a test sets to misbehave: storage answers for a URL, an expiry for part URLs.
        self.storage_hook: Callable[[httpx.Request], httpx.Response | None] | None = None
        self.parts_expire_at = "2999-01-01T00:00:00Z"
        self.progress_hook: Callable[[Upload, httpx.Request], httpx.Response | None] | None = None

    def api(self) -> Api:
        return Api(API, "header.eyJzdWIiOiJhcnRpc3QifQ.sig", transport=httpx.MockTransport(self), sleep=lambda _: None)

    # -- what tests look at --------------------------------------------------------------------

    def calls(self, method: str, pattern: str) -> list[str]:
        return [path for m, path in self.requests if m == method and re.fullmatch(pattern, path)]

    def part_puts(self) -> list[str]:
        return self.calls("PUT", r"/parts/.+")

    # -- the transport -------------------------------------------------------------------------

    def __call__(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append((request.method, request.url.path))
            self.headers.append(dict(request.headers))
        if request.url.host == "storage.test":
            return self._storage(request)
        return self._route(request)

    def _route(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        body = json.loads(request.content) if request.content else None
        routes: list[tuple[str, str, Callable[..., httpx.Response]]] = [
            ("GET", r"/v1/uploads/config", self._config),
            ("POST", r"/v1/uploads", self._create),
            ("GET", r"/v1/uploads/([^/]+)/parts", self._parts),
            ("GET", r"/v1/uploads/([^/]+)/parts/urls", self._part_urls),
            ("POST", r"/v1/uploads/([^/]+)/complete", self._complete),
            ("POST", r"/v1/uploads/([^/]+)/finalize", self._finalize),
            ("DELETE", r"/v1/uploads/([^/]+)", self._cancel),
            ("GET", r"/v1/uploads/([^/]+)/progress", self._progress),
            ("GET", r"/v1/tracks/([^/]+)", self._track),
            ("PATCH", r"/v1/tracks/([^/]+)", self._patch),
            ("GET", r"/v1/artists/me", lambda *_: httpx.Response(200, json={"handle": "artist"})),
            ("GET", r"/v1/artists/artist/albums", self._albums),
            ("POST", r"/v1/albums", self._create_album),
            ("POST", r"/v1/upload_session", self._create_session),
            ("GET", r"/v1/upload_session/([^/]+)", self._session),
            ("POST", r"/v1/upload/([^/]+)/track", self._session_track),
        ]
        for route_method, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if match and route_method == method:
                return handler(request, body, *match.groups())
        return error(404, "not_found", f"{method} {path}")

    def _config(self, *_: Any) -> httpx.Response:
        if not self.config:
            return error(405, "method_not_allowed")
        limits = {"thresholdBytes": None, "defaultPartSize": self.part_size, "minPartSize": 1, "maxPartSize": 10**9}
        return httpx.Response(200, json={"maxAudioBytes": 10**9, "acceptedTypes": [], "multipart": limits})

    def _urls(self, upload: Upload, first: int, count: int) -> list[dict[str, Any]]:
        assert upload.part_size is not None and upload.part_count is not None
        last = min(upload.part_count, first + count - 1)
        return [
            {
                "partNumber": n,
                "size": min(upload.part_size, upload.byte_size - (n - 1) * upload.part_size),
                "url": f"{STORAGE}/parts/{upload.upload_id}/{n}",
            }
            for n in range(first, last + 1)
        ]

    def _create(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        if not body["fileName"].endswith(".wav"):
            return error(400, "unsupported_media_type", f"{body['fileName']!r} is not a supported audio file")
        if "partSize" in body and not self.config:
            return error(422, "validation_failed", "partSize: extra", fields=[{"field": "partSize"}])
        upload = Upload(f"upl_{uuid.uuid4()}", f"trk_{uuid.uuid4()}", body["fileName"], body["byteSize"], body)
        self.uploads[upload.upload_id] = upload
        answer: dict[str, Any] = {
            "uploadId": upload.upload_id,
            "trackId": upload.track_id,
            "assetId": "ast_x",
            "expiresAt": "2999-01-01T00:00:00Z",
            "requiredHeaders": {"Content-Type": "audio/wav"},
            "finalizeUrl": f"{API}/v1/uploads/{upload.upload_id}/finalize",
        }
        if body.get("multipart"):
            upload.part_size = int(body.get("partSize") or self.part_size)
            upload.part_count = -(-upload.byte_size // upload.part_size)
            answer["method"] = "MULTIPART"
            answer["multipart"] = {
                "partSize": upload.part_size,
                "partCount": upload.part_count,
                "parts": self._urls(upload, 1, 100),
                "partsExpireAt": self.parts_expire_at,
            }
        else:
            answer["method"] = "PUT"
            answer["signedUrl"] = f"{STORAGE}/whole/{upload.upload_id}"
        return httpx.Response(201, json=answer)

    def _upload(self, upload_id: str) -> Upload | None:
        return self.uploads.get(upload_id)

    def _parts(self, _: httpx.Request, __: Any, upload_id: str) -> httpx.Response:
        upload = self._upload(upload_id)
        if upload is None:
            return error(404, "upload_intent_not_found")
        if upload.status == "expired":
            return error(410, "upload_intent_expired")
        assert upload.part_count is not None
        stored = [{"partNumber": n, "size": len(b), "etag": f"e{n}"} for n, b in sorted(upload.parts.items())]
        return httpx.Response(
            200,
            json={
                "uploadId": upload_id,
                "status": upload.status,
                "byteSize": upload.byte_size,
                "partSize": upload.part_size,
                "partCount": upload.part_count,
                "parts": stored,
                "missingParts": [n for n in range(1, upload.part_count + 1) if n not in upload.parts],
                "expiresAt": "2999-01-01T00:00:00Z",
            },
        )

    def _part_urls(self, request: httpx.Request, _: Any, upload_id: str) -> httpx.Response:
        upload = self.uploads[upload_id]
        first, count = int(request.url.params["from"]), int(request.url.params["count"])
        return httpx.Response(
            200,
            json={"uploadId": upload_id, "parts": self._urls(upload, first, count), "expiresAt": self.parts_expire_at},
        )

    def _finalized(self, upload: Upload) -> httpx.Response:
        upload.status = "finalized"
        status = "duplicate" if upload.verdict.get("phase") == "duplicate" else "finalized"
        track = upload.verdict.get("trackId", upload.track_id)
        return httpx.Response(200, json={"status": status, "trackId": track, "uploadId": upload.upload_id})

    def _complete(self, _: httpx.Request, __: Any, upload_id: str) -> httpx.Response:
        upload = self.uploads[upload_id]
        if upload.status != "pending":
            return self._finalized(upload)
        assert upload.part_count is not None
        missing = [n for n in range(1, upload.part_count + 1) if n not in upload.parts]
        if missing:
            return error(409, "upload_parts_incomplete", missing=missing)
        upload.stored = b"".join(upload.parts[n] for n in sorted(upload.parts))
        return self._finalized(upload)

    def _finalize(self, _: httpx.Request, __: Any, upload_id: str) -> httpx.Response:
        upload = self.uploads[upload_id]
        if upload.stored is None:
            return httpx.Response(
                409, json={"status": "upload_asset_missing", "error": {"code": "upload_asset_missing", "message": "x"}}
            )
        return self._finalized(upload)

    def _cancel(self, _: httpx.Request, __: Any, upload_id: str) -> httpx.Response:
        upload = self.uploads.get(upload_id)
        if upload is not None:
            upload.status = "cancelled"
        return httpx.Response(204)

    def _progress(self, request: httpx.Request, _: Any, upload_id: str) -> httpx.Response:
        upload = self.uploads[upload_id]
        if self.progress_hook is not None:
            hooked = self.progress_hook(upload, request)
            if hooked is not None:
                return hooked
        base = {"uploadId": upload_id, "trackId": upload.track_id, "terminal": False, "progressPct": None}
        verdict = {**base, "message": "done", "terminal": True, **upload.verdict}
        events = [{**base, "phase": "storage", "status": "done", "message": "stored"}, verdict]
        return httpx.Response(200, text=sse(events), headers={"content-type": "text/event-stream"})

    def _track(self, _: httpx.Request, __: Any, track_id: str) -> httpx.Response:
        for upload in self.uploads.values():
            if upload.track_id == track_id:
                status = "draft" if upload.stored is None else "processing"
                return httpx.Response(200, json={"trackId": track_id, "uploadId": upload.upload_id, "status": status})
        return error(404, "track_not_found")

    def _patch(self, _: httpx.Request, body: dict[str, Any], track_id: str) -> httpx.Response:
        self.patches[track_id] = body
        return httpx.Response(200, json={"trackId": track_id, **body})

    # -- albums and upload sessions --------------------------------------------------------------

    def _albums(self, *_: Any) -> httpx.Response:
        return httpx.Response(200, json={"albums": list(self.albums.values()), "nextCursor": None})

    def _create_album(self, _: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        album = {"albumId": f"alb_{uuid.uuid4()}", "title": body["title"], "slug": body["title"].lower()}
        self.albums[album["albumId"]] = album
        return httpx.Response(201, json=album)

    def _create_session(self, _: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        session_id = str(uuid.uuid4())
        self.sessions[session_id] = {"collection_id": body["collection_id"], "tracks": [], "status": "open"}
        return httpx.Response(201, json={"ok": True, "upload_session_id": session_id})

    def _session(self, _: httpx.Request, __: Any, session_id: str) -> httpx.Response:
        session = self.sessions[session_id]
        tracks = []
        for track in session["tracks"]:
            upload = self.uploads[track["upload_id"]]
            status = {"pending": "pending", "finalized": "ready", "cancelled": "deleted"}[upload.status]
            tracks.append({"id": track["id"], "organization_index": track["index"], "status": status})
        detail = {"id": session_id, "status": session["status"], "tracks": tracks}
        return httpx.Response(200, json={"ok": True, "upload_session_id": session_id, "upload_session": detail})

    def _session_track(self, _: httpx.Request, body: dict[str, Any], session_id: str) -> httpx.Response:
        if not body["file_name"].endswith(".wav"):
            return httpx.Response(400, json={"ok": False, "error": {"code": "unsupported_media_type", "message": "no"}})
        bare = str(uuid.uuid4())
        upload = Upload(f"upl_{uuid.uuid4()}", f"trk_{bare}", body["file_name"], 0, body)
        self.uploads[upload.upload_id] = upload
        self.sessions[session_id]["tracks"].append(
            {"id": bare, "index": body["organization_index"], "upload_id": upload.upload_id}
        )
        put = {"method": "PUT", "upload_url": f"{STORAGE}/whole/{upload.upload_id}", "headers": {"x": "y"}}
        return httpx.Response(201, json={"ok": True, "track_id": bare, "track_upload": put})

    def album_order(self, session_id: str) -> list[str]:
        """File names in the order the API places session tracks: by organization_index, numerically."""
        tracks = sorted(self.sessions[session_id]["tracks"], key=lambda t: int(t["index"]))
        return [self.uploads[t["upload_id"]].file_name for t in tracks]

    # -- storage ---------------------------------------------------------------------------------

    def _storage(self, request: httpx.Request) -> httpx.Response:
        if self.storage_hook is not None:
            hooked = self.storage_hook(request)
            if hooked is not None:
                return hooked
        content = request.read()
        assert request.headers["content-length"] == str(len(content)), "the signed length is the sent length"
        assert "authorization" not in request.headers, "no bearer token goes to storage"
        kind, upload_id, *rest = request.url.path.strip("/").split("/")
        upload = self.uploads[upload_id]
        if kind == "whole":
            upload.stored = content
        else:
            number = int(rest[0])
            assert len(content) == self._urls(upload, number, 1)[0]["size"]
            upload.parts[number] = content
        return httpx.Response(200, headers={"ETag": '"etag"'})
