"""Browsing beyond one artist: tracks by tag (public), the caller's own tracks and storage usage."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from functions import ids
from functions.api.auth import Principal, current_user
from functions.api.models import CamelResponse, iso
from functions.api.public import cacheable
from functions.api.routers.artists import Cursor, Limit
from functions.api.routers.tracks import Failure, failure_of
from functions.api.track_views import PublicTrack, int_or_none, public_track
from functions.domain.catalog import listing, tags, usage
from functions.domain.intake import run_queue

router = APIRouter(tags=["browse"])


class TagTracksResponse(CamelResponse):
    # The tag as tracks carry it (normalized: "Lo-Fi  HIP hop" -> "lo-fi hip hop").
    tag: str
    tracks: list[PublicTrack]
    next_cursor: str | None


@router.get(
    "/v1/tags/{tag}/tracks",
    response_model=TagTracksResponse,
    response_model_by_alias=True,
    responses={400: {"description": "invalid_tag, invalid_cursor"}},
)
def list_tag_tracks(
    request: Request,
    tag: Annotated[str, Path(min_length=1, max_length=4 * tags.MAX_TAG_LENGTH)],
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """Listed tracks (ready, public, not support-gated) under ``tag``, newest first, with their
    artists (public). A page may hold fewer than ``limit`` tracks when some stopped being listed a
    moment ago; follow ``nextCursor`` until it is null."""
    normalized, page = listing.tag_tracks(tag, limit=limit, cursor=cursor)
    body = TagTracksResponse(
        tag=normalized,
        tracks=[public_track(track, page.artists.get(track.owner_id)) for track in page.tracks],
        next_cursor=page.next_cursor,
    )
    return cacheable(request, body, private=False)


class MyTrack(CamelResponse):
    track_id: str
    upload_id: str
    title: str
    album_id: str | None
    album: str | None
    status: str
    visibility: str
    listed: bool
    support_gate: dict[str, object] | None
    duration_ms: int | None
    tags: list[str]
    # Why a failed track failed, or why a rejected track's upload was refused.
    failure: Failure | None
    created_at: str


class MyTracksResponse(CamelResponse):
    tracks: list[MyTrack]
    next_cursor: str | None


@router.get("/v1/me/tracks", response_model=MyTracksResponse, response_model_by_alias=True)
def list_my_tracks(
    user: Annotated[Principal, Depends(current_user)], limit: Limit = 20, cursor: Cursor = None
) -> MyTracksResponse:
    """Every track of the caller, newest first: drafts (intent not finalized yet), rejected
    (the upload's file was refused), processing, ready and failed, whatever their visibility."""
    page = listing.owner_tracks(user.user_id, limit=limit, cursor=cursor)
    return MyTracksResponse(
        tracks=[
            MyTrack(
                track_id=ids.render("trk", track.track_id),
                upload_id=ids.render("upl", track.upload_id),
                title=track.title,
                album_id=ids.render("alb", track.album_id) if track.album_id else None,
                album=track.album,
                status=track.status,
                visibility=track.visibility,
                listed=listing.is_listed(track),
                support_gate=track.support_gate,
                duration_ms=int_or_none(track.duration_ms),
                tags=[str(tag) for tag in track.tags or []],
                failure=failure_of(track),
                created_at=iso(track.created_at) or "",
            )
            for track in page.items
        ],
        next_cursor=page.next_cursor,
    )


class UsageResponse(CamelResponse):
    # Bytes the caller's tracks hold: originals (and a version being processed) and renditions.
    used_bytes: int
    # Bytes the caller's pending upload intents hold until they are finalized, cancelled or expire.
    reserved_bytes: int
    quota_bytes: int
    # "default" (the configured quota) or "override" (set for this artist by an admin).
    quota_source: str
    available_bytes: int
    track_count: int
    pending_intents: int
    # The most pending intents the caller may have at once (409 too_many_pending_uploads past it).
    max_pending_intents: int
    # The caller's track workflows running now, those waiting for one of them to end, and the most
    # that run at once (functions.domain.intake.run_queue).
    running_workflows: int
    queued_workflows: int
    max_running_workflows: int


@router.get("/v1/me/usage", response_model=UsageResponse, response_model_by_alias=True)
def my_usage(user: Annotated[Principal, Depends(current_user)]) -> UsageResponse:
    """The caller's storage quota and what counts against it (docs/limits.md). Reservations of
    intents that expired are released first, so they never show here."""
    current = usage.of(user.user_id)
    return UsageResponse(
        used_bytes=current.used_bytes,
        reserved_bytes=current.reserved_bytes,
        quota_bytes=current.quota_bytes,
        quota_source=current.quota_source,
        available_bytes=current.available_bytes,
        track_count=current.track_count,
        pending_intents=current.pending_intents,
        max_pending_intents=current.max_pending_intents,
        running_workflows=run_queue.running(user.user_id),
        queued_workflows=run_queue.waiting(user.user_id),
        max_running_workflows=run_queue.cap(),
    )
