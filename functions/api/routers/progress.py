"""``GET /v1/uploads/{uploadId}/progress`` (Server-Sent Events) and the tokens that let an
EventSource call it (``POST /v1/uploads/{uploadId}/progress-tokens``).

One handler, two ways of answering (``functions.domain.processing.progress`` decides what to say):
- streaming (the local stack under uvicorn, ``progress_stream``): poll the tables every
  ``progress_poll_interval_s``, send what is new, a ``: keep-alive`` comment when nothing was sent
  for ``progress_heartbeat_s``, and end at the terminal event (or at the duration/poll bounds);
- one answer (Lambda: API Gateway cannot stream through Mangum): the events the client has not
  seen yet, ``retry:``, and close. EventSource reconnects after ``retry`` ms with
  ``Last-Event-ID`` and gets only what happened since.
A client that has already seen the terminal event gets 204, which tells EventSource to stop.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

import anyio
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from functions import ids
from functions.api import access
from functions.api.auth import Principal, Unauthorized, current_user
from functions.api.models import CamelResponse, iso
from functions.api.public import viewer
from functions.api.routers.uploads import upload_action_url
from functions.domain.processing import progress
from functions.errors import UploadIntentNotFound
from functions.observability import logger
from functions.settings import settings

if TYPE_CHECKING:
    # Records the domain returns, read here as views (never loaded or written by the API).
    from functions.data.models import UploadModel


router = APIRouter(prefix="/v1/uploads", tags=["progress"])

EVENT_STREAM = "text/event-stream; charset=utf-8"
# No cache or proxy may hold the stream back or answer a reconnect from a stored copy.
STREAM_HEADERS = {"Cache-Control": "no-cache, no-store", "X-Accel-Buffering": "no"}


class ProgressTokenResponse(CamelResponse):
    token: str
    expires_at: str
    # The progress route with the token in its query: what to hand to ``new EventSource(...)``.
    progress_url: str


def _upload_id(value: str) -> str:
    raw = ids.parse("upl", value)
    if raw is None:
        raise UploadIntentNotFound("No such upload intent for this owner.")
    return raw


def _progress_url(request: Request, upload_id: str) -> str:
    return upload_action_url(request, upload_id, "progress")


@router.post(
    "/{upload_id}/progress-tokens",
    status_code=201,
    response_model=ProgressTokenResponse,
    response_model_by_alias=True,
    responses={404: {"description": "upload_intent_not_found"}},
)
def create_progress_token(
    upload_id: str, request: Request, user: Annotated[Principal, Depends(current_user)]
) -> ProgressTokenResponse:
    """A short-lived token (``progress_token_ttl_s``, default 5 minutes) that reads this upload's
    progress for its owner, for clients that cannot send an Authorization header (EventSource)."""
    raw_upload_id = _upload_id(upload_id)
    minted = progress.mint_token(raw_upload_id, user.user_id)
    return ProgressTokenResponse(
        token=minted.token,
        expires_at=iso(minted.expires_at) or "",
        progress_url=f"{_progress_url(request, raw_upload_id)}?token={minted.token}",
    )


def _caller(request: Request, upload_id: str, token: str | None) -> str:
    """A progress token when one is sent (the only way on AWS, where this route has no
    authorizer), else the normal bearer (which only the local stack can check here)."""
    if token is not None:
        return progress.verify_token(token, upload_id)
    principal = viewer(request)
    if principal is None:
        raise Unauthorized("Send a bearer token in the Authorization header or a progress token as ?token=.")
    return principal.user_id


def _format(batch: list[progress.Event], upload_id: str) -> str:
    return "".join(
        f"id: {event.id}\ndata: {json.dumps(_data(event, upload_id), separators=(',', ':'))}\n\n" for event in batch
    )


def _data(event: progress.Event, upload_id: str) -> dict[str, object]:
    data: dict[str, object] = {
        "uploadId": ids.render("upl", upload_id),
        "trackId": ids.render("trk", event.track_id),
        "phase": event.phase,
        "status": event.status,
        "message": event.message,
        "progressPct": event.progress_pct,
        "terminal": event.terminal,
    }
    if event.lane is not None:
        data["lane"] = event.lane
    if event.code is not None:
        data["code"] = event.code
    return data


def _streams(request: Request) -> bool:
    # Mangum puts the Lambda event in the scope; API Gateway would buffer a stream until the
    # Lambda's timeout and then drop it, so there the answer is always one response.
    return settings().progress_stream and "aws.event" not in request.scope


@router.get(
    "/{upload_id}/progress",
    # Its owner only, by a bearer token or (EventSource sends no headers) a progress token.
    openapi_extra=access.declare("owner"),
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "progress events (see docs/api.md, Live progress)"},
        204: {"description": "the client has already seen the terminal event: stop reconnecting"},
        401: {"description": "unauthorized, progress_token_invalid, progress_token_expired"},
        404: {"description": "upload_intent_not_found"},
    },
)
def upload_progress(
    upload_id: str,
    request: Request,
    token: Annotated[str | None, Query(max_length=progress.MAX_TOKEN_LENGTH)] = None,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
    resume_from: Annotated[
        str | None,
        Query(alias="lastEventId", max_length=64, description="Last-Event-ID for a new EventSource (a fresh token)"),
    ] = None,
) -> Response:
    """Server-Sent Events for one upload: ``validation`` → ``storage`` → ``transcoding`` (with one
    ``lane`` event per lane start and end) → ``ready`` | ``failed`` | ``duplicate``."""
    raw_upload_id = _upload_id(upload_id)
    owner_id = _caller(request, raw_upload_id, token)
    upload = progress.owned_upload(raw_upload_id, owner_id)
    seen = progress.Cursor.parse(last_event_id or resume_from)
    if seen.terminal:
        return Response(status_code=204, headers=STREAM_HEADERS)
    current = settings()
    retry = f"retry: {current.progress_retry_ms}\n\n"
    if not _streams(request):
        batch = progress.events(seen, progress.snapshot(upload))
        return Response(retry + _format(batch, raw_upload_id), media_type=EVENT_STREAM, headers=STREAM_HEADERS)
    return StreamingResponse(_stream(request, upload, seen, retry), media_type=EVENT_STREAM, headers=STREAM_HEADERS)


async def _stream(request: Request, upload: UploadModel, seen: progress.Cursor, retry: str) -> AsyncIterator[str]:
    current = settings()
    yield retry
    started = last_sent = time.monotonic()
    for _ in range(current.progress_max_polls):
        try:
            # pynamodb blocks: off the event loop, so one slow read never stalls other streams.
            batch = progress.events(seen, await run_in_threadpool(progress.snapshot, upload))
        except Exception:
            # The status line went out long ago: end the stream; EventSource reconnects and resumes.
            logger.exception("progress read failed", extra={"upload_id": upload.upload_id})
            return
        if batch:
            yield _format(batch, upload.upload_id)
            seen, last_sent = batch[-1].cursor, time.monotonic()
        if seen.terminal or time.monotonic() - started >= current.progress_max_stream_s:
            return
        if time.monotonic() - last_sent >= current.progress_heartbeat_s:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        if await request.is_disconnected():
            return
        await anyio.sleep(current.progress_poll_interval_s)
