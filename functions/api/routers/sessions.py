"""The upload-session contract, a wire contract existing clients are written against:
``POST /v1/upload_session``, ``GET /v1/upload_session/{upload_session_id}`` and
``POST /v1/upload/{upload_session_id}/track``.

Unlike the rest of the API these routes speak snake_case, carry ``ok``, use bare UUIDs (an album is
also accepted as ``alb_<uuid>``) and answer errors as ``{"ok": false, "error": {"code",
"message"}}``. That shape is this router's alone: its routes are ``SessionContractRoute``s, which
answer a domain or validation error themselves instead of leaving it to the app-wide handlers
(``functions.api.errors``), so every other route keeps ``{"error": {...}}``. Errors raised before a
route runs (the body-size limit, an ``Idempotency-Key`` problem, an unknown path) keep the app's
shape.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from functions import ids
from functions.api.auth import Principal, current_user
from functions.api.models import RequestModel, iso
from functions.domain.intake import sessions
from functions.errors import DomainError
from functions.observability import logger


def session_contract_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"ok": False, "error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _validation_error(error: RequestValidationError) -> JSONResponse:
    problems = error.errors()
    if any(problem.get("type") == "json_invalid" for problem in problems):
        return session_contract_error(400, "invalid_json", "The request body is not valid JSON.")
    parts = []
    for problem in problems[:5]:
        where = ".".join(str(part) for part in problem.get("loc", ())[1:]) or "body"
        parts.append(f"{where}: {problem.get('msg', 'invalid')}")
    return session_contract_error(422, "validation_failed", "; ".join(parts))


class SessionContractRoute(APIRoute):
    """A route answering errors in the upload-session contract's shape (FastAPI has no per-router
    exception handlers)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except DomainError as error:
                headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
                return session_contract_error(error.status, error.code, error.message, headers)
            except RequestValidationError as error:
                return _validation_error(error)

        return route


router = APIRouter(tags=["upload sessions"], route_class=SessionContractRoute)


class SnakeModel(RequestModel):
    """The upload-session contract's wire names are the Python names; unknown fields and loose types
    are refused, as elsewhere."""


# JSON objects; their size is bounded in the domain (16 KB for a session, 2 KB for a track) and the
# whole body by the app's request-size limit.
Metadata = dict[str, Any]
OrganizationIndex = Annotated[str, Field(min_length=1, max_length=sessions.MAX_INDEX_LENGTH)]


class CreateSessionRequest(SnakeModel):
    collection_id: str = Field(min_length=1, max_length=64, description="An album of the caller's (uuid or alb_uuid)")
    creator_id: str | None = Field(
        default=None, pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )
    organization_index: OrganizationIndex | None = None
    metadata: Metadata | None = None


class SessionSummary(BaseModel):
    id: str
    collection_id: str
    expires_at: str


class CreateSessionResponse(BaseModel):
    ok: Literal[True] = True
    upload_session_id: str
    upload_session: SessionSummary
    expires_at: str


class TrackError(BaseModel):
    code: str | None
    message: str | None


class SessionTrackState(BaseModel):
    id: str
    index: str
    organization_index: str | None
    file_name: str
    title: str | None
    metadata: Metadata | None
    # pending (awaiting its upload) | processing | ready | failed | duplicate | expired | deleted
    status: str
    error: TrackError | None
    # For a duplicate: the caller's track that already has these bytes.
    duplicate_of: str | None
    # none | pending | processing | ready | failed | replaced | expired
    cover_status: str
    created_at: str


class SessionDetail(BaseModel):
    id: str
    creator_id: str | None
    collection_id: str
    organization_index: str | None
    metadata: Metadata | None
    expires_at: str
    # open | expired (an expired session takes no more tracks; its uploads still finish)
    status: Literal["open", "expired"]
    created_at: str
    tracks: list[SessionTrackState]


class GetSessionResponse(BaseModel):
    ok: Literal[True] = True
    upload_session_id: str
    upload_session: SessionDetail


class AddTrackRequest(SnakeModel):
    file_name: str = Field(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")
    organization_index: OrganizationIndex | None = None
    metadata: Metadata | None = None


class TrackRef(BaseModel):
    id: str
    index: str
    path: str


class TrackUpload(BaseModel):
    method: Literal["PUT"] = "PUT"
    upload_url: str
    ttl: int
    expires_at: str
    # The headers the PUT was signed with; send them (the contract's existing clients send the
    # file's own type).
    headers: dict[str, str]


class TrackCoverUpload(BaseModel):
    method: Literal["POST"] = "POST"
    upload_url: str
    ttl: int
    expires_at: str
    # The form fields to send, in order, before the file field; add a Content-Type field (image/*).
    fields: dict[str, str]


class AddTrackResponse(BaseModel):
    ok: Literal[True] = True
    api_request_id: str
    upload_session_id: str
    track_id: str
    track: TrackRef
    track_upload: TrackUpload
    track_cover_upload: TrackCoverUpload


_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "unauthorized"},
    422: {"description": "validation_failed"},
}


@router.post(
    "/v1/upload_session",
    status_code=201,
    response_model=CreateSessionResponse,
    responses={
        **_ERRORS,
        403: {"description": "entitlement_required"},
        404: {"description": "collection_not_found"},
        413: {"description": "metadata_too_large"},
    },
)
def create_session(
    body: CreateSessionRequest, user: Annotated[Principal, Depends(current_user)]
) -> CreateSessionResponse:
    """Open a session for uploading tracks into one of the caller's albums (``collection_id``).
    It takes tracks until ``expires_at``."""
    session = sessions.create(
        user.user_id,
        body.collection_id,
        # The contract's creator: recorded and echoed; the owner is always the authenticated caller.
        creator_id=body.creator_id or user.user_id,
        organization_index=body.organization_index,
        metadata=body.metadata,
    )
    session_id = sessions.session_id(session)
    expires_at = iso(session.expires_at) or ""
    return CreateSessionResponse(
        upload_session_id=session_id,
        upload_session=SessionSummary(id=session_id, collection_id=session.collection_id, expires_at=expires_at),
        expires_at=expires_at,
    )


@router.get(
    "/v1/upload_session/{upload_session_id}",
    response_model=GetSessionResponse,
    responses={**_ERRORS, 404: {"description": "upload_session_not_found"}},
)
def get_session(upload_session_id: str, user: Annotated[Principal, Depends(current_user)]) -> GetSessionResponse:
    """The session and the upload and processing state of each of its tracks, in the order they
    were added."""
    found = sessions.state(user.user_id, upload_session_id)
    session = found.session
    session_id = sessions.session_id(session)
    return GetSessionResponse(
        upload_session_id=session_id,
        upload_session=SessionDetail(
            id=session_id,
            creator_id=session.creator_id,
            collection_id=session.collection_id,
            organization_index=session.organization_index,
            metadata=session.metadata,
            expires_at=iso(session.expires_at) or "",
            status="expired" if found.expired else "open",
            created_at=iso(session.created_at) or "",
            tracks=[
                SessionTrackState(
                    id=s.track.track_id,
                    index=s.track.index,
                    organization_index=s.track.organization_index,
                    file_name=s.track.file_name,
                    title=s.title,
                    metadata=s.track.metadata,
                    status=s.status,
                    error=TrackError(code=s.error_code, message=s.error_message) if s.error_code else None,
                    duplicate_of=s.duplicate_of,
                    cover_status=s.cover_status,
                    created_at=s.track.created_at,
                )
                for s in found.tracks
            ],
        ),
    )


@router.post(
    "/v1/upload/{upload_session_id}/track",
    status_code=201,
    response_model=AddTrackResponse,
    responses={
        **_ERRORS,
        400: {"description": "unsupported_media_type, invalid_upload"},
        403: {"description": "entitlement_required, artist_profile_required"},
        404: {"description": "upload_session_not_found"},
        409: {"description": "upload_session_full, album_full"},
        410: {"description": "upload_session_expired"},
        413: {"description": "metadata_too_large"},
    },
)
def add_track(
    upload_session_id: str, body: AddTrackRequest, user: Annotated[Principal, Depends(current_user)]
) -> AddTrackResponse:
    """A track in the session: PUT the audio to ``track_upload.upload_url`` (with its
    ``headers``), optionally POST a cover image to ``track_cover_upload.upload_url`` (a form with
    ``fields``, a ``Content-Type`` field of ``image/...`` and the ``file`` last). There is no
    finalize call: each upload is processed when it is stored, and the track joins the session's
    album in ``organization_index`` order (then ``metadata.track_number``, then creation)."""
    api_request_id = ids.new_id()
    added = sessions.add_track(
        user.user_id,
        upload_session_id,
        file_name=body.file_name,
        organization_index=body.organization_index,
        metadata=body.metadata,
    )
    logger.info("session track added", extra={"api_request_id": api_request_id, "track_id": added.track.track_id})
    put, cover = added.track_upload, added.cover_upload
    return AddTrackResponse(
        api_request_id=api_request_id,
        upload_session_id=sessions.session_id(added.session),
        track_id=added.track.track_id,
        track=TrackRef(id=added.track.track_id, index=added.track.index, path=added.path),
        track_upload=TrackUpload(
            upload_url=put.url, ttl=put.ttl_s, expires_at=iso(put.expires_at) or "", headers=put.headers or {}
        ),
        track_cover_upload=TrackCoverUpload(
            upload_url=cover.url, ttl=cover.ttl_s, expires_at=iso(cover.expires_at) or "", fields=cover.fields or {}
        ),
    )
