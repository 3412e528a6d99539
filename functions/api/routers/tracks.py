"""``/v1/tracks/{trackId}``: read, edit and delete a track, and its processing status (owner only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import Field, StringConstraints, field_validator

from functions import ids
from functions.api.auth import Principal, current_user
from functions.api.models import CamelModel, CamelResponse, iso
from functions.api.public import absolute_url, cacheable, viewer
from functions.api.routers.media_uploads import (
    PendingVersionResponse,
    VersionResponse,
    pending_version,
    version_history,
)
from functions.api.routers.uploads import FeatureHandles, SupportGate, TagNames, Visibility, json_list
from functions.api.track_views import PublicTrack, int_or_none, public_artwork, public_track, without_key
from functions.domain import lifecycle
from functions.domain.catalog import artists, downloads, listing, track_mutations, tracks, waveforms
from functions.domain.removal import deletion
from functions.errors import ArtworkNotFound, OriginalOwnerOnly, RenditionNotReady, TrackNotFound

if TYPE_CHECKING:
    # Records the domain returns, read here as views (never loaded or written by the API).
    from functions.data.models import LaneModel, TrackModel


router = APIRouter(prefix="/v1/tracks", tags=["tracks"])


class Failure(CamelResponse):
    code: str
    message: str


class TrackResponse(CamelResponse):
    track_id: str
    upload_id: str
    owner_id: str
    title: str
    # uploader | file_name | tags: where the title came from.
    title_source: str | None
    # The album's title, or (without an albumId) the album named in the file's tags.
    album: str | None
    album_id: str | None
    genre: str | None
    year: int | None
    track_number: int | None
    features: list[str]
    tags: list[str]
    support_gate: dict[str, Any] | None
    description: str | None
    auto_tag: bool
    visibility: str
    # Whether the track is in its artist's public tracks and under its tags right now (ready,
    # public, ungated).
    listed: bool
    status: str
    workflow_status: str
    duration_ms: int | None
    waveform: dict[str, Any] | None
    audio: dict[str, Any] | None
    renditions: dict[str, dict[str, Any]]
    loudness: dict[str, Any] | None
    # What the file's own tags say (whether or not it was applied to the fields above).
    embedded_tags: dict[str, Any] | None
    # {origin, width, height, variants: [{size, format, contentType, byteSize}]}; fetch a variant
    # through /artwork.
    artwork: dict[str, Any] | None
    failure: Failure | None
    # A new original being uploaded or processed, or one that failed (the track plays the live one).
    pending_version: PendingVersionResponse | None
    versions: list[VersionResponse]
    created_at: str
    updated_at: str


class LaneResponse(CamelResponse):
    name: str
    state: str
    attempts: int
    code: str | None
    message: str | None
    outputs: dict[str, Any] | None
    started_at: str | None
    finished_at: str | None
    updated_at: str | None


class ProcessingStatusResponse(CamelResponse):
    track_id: str
    upload_id: str
    status: str
    workflow_status: str
    failure: Failure | None
    # The lanes describe the latest run, a new version's included: this says which version it is.
    pending_version: PendingVersionResponse | None
    lanes: list[LaneResponse]
    updated_at: str


def _track_id(value: str) -> str:
    raw = ids.parse("trk", value)
    if raw is None:
        raise TrackNotFound("No such track.")
    return raw


def failure_of(track: TrackModel) -> Failure | None:
    if track.failure_code is None:
        return None
    return Failure(code=track.failure_code, message=track.failure_message or "")


def _presigned_redirect(key: str, content_type: str | None) -> RedirectResponse:
    url = downloads.signed_url(key, content_type)
    # The URL is personal and short-lived: never cache the redirect.
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "private, no-store"})


def lane_result_url(request: Request, track_id: str, lane: str) -> str:
    return absolute_url(request, f"/v1/tracks/{ids.render('trk', track_id)}/lanes/{lane}/result")


def _lane_outputs(request: Request, lane: LaneModel) -> dict[str, Any] | None:
    """A lane's outputs; a result stored in S3 (too large for the lane item) as its size and where
    to read it, never its key."""
    outputs: dict[str, Any] | None = lane.outputs
    stored = (outputs or {}).get(tracks.STORED_RESULT)
    if not isinstance(stored, dict):
        return outputs
    url = lane_result_url(request, lane.pk, lane.lane)
    return {tracks.STORED_RESULT: {"byteSize": stored.get("byteSize"), "url": url}}


def _lane(request: Request, lane: LaneModel) -> LaneResponse:
    return LaneResponse(
        name=lane.lane,
        state=lane.state,
        attempts=int(lane.attempts or 0),
        code=lane.code,
        message=lane.message,
        outputs=_lane_outputs(request, lane),
        started_at=iso(lane.started_at),
        finished_at=iso(lane.finished_at),
        updated_at=iso(lane.updated_at),
    )


def _track_response(track: TrackModel) -> TrackResponse:
    return TrackResponse(
        track_id=ids.render("trk", track.track_id),
        upload_id=ids.render("upl", track.upload_id),
        owner_id=track.owner_id,
        title=track.title,
        title_source=track.title_source,
        album=track.album,
        album_id=ids.render("alb", track.album_id) if track.album_id else None,
        genre=track.genre,
        year=int_or_none(track.year),
        track_number=int_or_none(track.track_number),
        features=[str(handle) for handle in track.features or []],
        tags=[str(tag) for tag in track.tags or []],
        support_gate=track.support_gate,
        description=track.description,
        auto_tag=bool(track.auto_tag),
        visibility=track.visibility,
        listed=listing.is_listed(track),
        status=track.status,
        workflow_status=track.workflow_status,
        duration_ms=int_or_none(track.duration_ms),
        waveform=waveforms.public(track),
        audio=track.audio,
        renditions={fmt: without_key(rendition) for fmt, rendition in track.rendition_map().items()},
        loudness=track.loudness,
        embedded_tags=track.embedded_tags,
        artwork=public_artwork(track.artwork),
        failure=failure_of(track),
        pending_version=pending_version(track),
        versions=version_history(track),
        created_at=iso(track.created_at) or "",
        updated_at=iso(track.updated_at) or "",
    )


def _readable(track_id: str, viewer_id: str | None) -> TrackModel:
    """The track if ``viewer_id`` may read it: its owner always, anyone else (signed in or not)
    only a ready public or unlisted track. Everything else is 'not found', so a private track's id
    reveals nothing."""
    track = tracks.find(_track_id(track_id))
    if track is None or not listing.may_read(track, viewer_id):
        raise TrackNotFound("No such track.")
    return track


@router.get(
    "/{track_id}",
    response_model=TrackResponse | PublicTrack,
    response_model_by_alias=True,
    responses={200: {"description": "The owner gets the whole track; anyone else its public view."}},
)
def get_track(
    track_id: str, request: Request, user: Annotated[Principal | None, Depends(viewer)]
) -> TrackResponse | Response:
    """The owner's track with everything processing found; for anyone else, signed in or not, a
    ready public or unlisted track's public view (with an ETag, ``If-None-Match`` -> 304)."""
    viewer_id = user.user_id if user else None
    track = _readable(track_id, viewer_id)
    if track.owner_id == viewer_id:
        return _track_response(track)
    return cacheable(request, public_track(track, artists.find(track.owner_id)), private=False)


class UpdateTrackRequest(CamelModel):
    """The track-edit contract's editable fields; each is optional and only those sent change.
    Unknown fields are refused (422), so a misspelled field never silently changes nothing."""

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)] | None = None
    album: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="an album title (a new one creates the album) or an alb_ id; null takes the track out of its album",
    )
    features: FeatureHandles | None = None
    tags: TagNames | None = None
    description: str | None = Field(default=None, max_length=5000, description='"" removes it')
    support_gate: SupportGate | None = Field(default=None, description="null removes it")
    visibility: Visibility | None = None
    remove_image: bool = Field(default=False, description="true removes the artwork (and its stored images)")

    _lists = field_validator("features", "tags", mode="before")(json_list)

    @field_validator("title", "visibility")
    @classmethod
    def _not_removable(cls, value: str | None) -> str | None:
        # Validators run only on fields that were sent: an explicit null is refused, an absent one is kept.
        if value is None:
            raise ValueError("cannot be removed")
        return value


@router.patch(
    "/{track_id}",
    response_model=TrackResponse,
    response_model_by_alias=True,
    responses={
        404: {"description": "track_not_found, album_not_found"},
        409: {"description": "concurrent_update, album_full"},
        422: {"description": "validation_failed, unknown_feature_handle"},
    },
)
def update_track(
    track_id: str, body: UpdateTrackRequest, user: Annotated[Principal, Depends(current_user)]
) -> TrackResponse:
    """Edits the track's metadata and answers the track as GET does. Only the fields sent are
    written, so processing running meanwhile keeps what it writes; a title set here is never
    replaced from the file's tags."""
    changes = track_mutations.TrackUpdate(**body.model_dump(exclude_unset=True))
    return _track_response(track_mutations.update(_track_id(track_id), user.user_id, changes))


@router.delete(
    "/{track_id}", status_code=204, response_class=Response, responses={404: {"description": "track_not_found"}}
)
def delete_track(track_id: str, user: Annotated[Principal, Depends(current_user)]) -> Response:
    """Deletes the track, its lanes, every stored file (original, renditions, waveform, artwork) and
    its album membership. A track that is already deleted is 'not found' too: either way nothing of
    it is left."""
    if not deletion.delete_track(_track_id(track_id), user.user_id):
        raise TrackNotFound("No such track.")
    return Response(status_code=204)


@router.get("/{track_id}/processing-status", response_model=ProcessingStatusResponse, response_model_by_alias=True)
def get_processing_status(
    track_id: str, request: Request, user: Annotated[Principal, Depends(current_user)]
) -> ProcessingStatusResponse:
    """Per-lane state (queued | running | succeeded | failed | skipped) with attempts, message,
    timestamps and outputs, plus the track's overall status and the workflow's."""
    status = tracks.processing_status(_track_id(track_id), user.user_id)
    track = status.track
    return ProcessingStatusResponse(
        track_id=ids.render("trk", track.track_id),
        upload_id=ids.render("upl", track.upload_id),
        status=track.status,
        workflow_status=track.workflow_status,
        failure=failure_of(track),
        pending_version=pending_version(track),
        lanes=[_lane(request, lane) for lane in status.lanes],
        updated_at=iso(track.updated_at) or "",
    )


LaneName = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,32}$")]


@router.get(
    "/{track_id}/lanes/{lane}/result",
    responses={
        200: {"description": "The lane's outputs, when they were kept on the lane"},
        302: {"description": "Redirect to a short-lived presigned GET of a result stored in S3"},
        404: {"description": "track_not_found, lane_result_not_found"},
    },
)
def get_lane_result(track_id: str, lane: LaneName, user: Annotated[Principal, Depends(current_user)]) -> Response:
    """Owner only: what a succeeded lane produced. An external processor's answer too large to keep
    on the lane (over 4 KB) is stored in S3: this redirects to it."""
    result = tracks.lane_result(_track_id(track_id), user.user_id, lane)
    if result.stored_key is not None:
        return _presigned_redirect(result.stored_key, "application/json")
    return JSONResponse(result.outputs, headers={"Cache-Control": "private, no-store"})


StreamFormat = Literal["aac", "opus", "mp3", "original"]
# Without ``format``: the first of these the track has. AAC plays nearly everywhere; MP3 everywhere
# else (Opus is the one some Apple players lack).
STREAM_PREFERENCE = ("aac", "mp3", "opus")


@router.get(
    "/{track_id}/stream",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: {"description": "Redirect to a short-lived presigned GET"},
        403: {"description": "support_required, original_owner_only"},
        404: {"description": "track_not_found"},
        409: {"description": "rendition_not_ready"},
    },
)
def stream_track(
    track_id: str,
    user: Annotated[Principal | None, Depends(viewer)],
    format: Annotated[
        StreamFormat | None,
        Query(description="aac, opus, mp3 or the original upload; absent: the first of aac, mp3, opus made"),
    ] = None,
) -> RedirectResponse:
    """302 to a presigned GET that expires in minutes. The owner plays every track it has; anyone
    else, signed in or not, a ready public or unlisted one, and a support-gated one only as the
    artist's supporter (403 ``support_required``). Private tracks are 'not found' to everyone but
    their owner. A track is playable once its first rendition is stored, while the others are still
    being made: a named format that does not exist yet is ``409 rendition_not_ready`` with
    ``availableFormats``; without ``format`` the first available of aac, mp3, opus is served."""
    viewer_id = user.user_id if user else None
    track = _readable(track_id, viewer_id)
    listing.check_playable(track, viewer_id)
    if format == "original":
        if track.owner_id != viewer_id:
            raise OriginalOwnerOnly("Only the track's owner can fetch its original; use aac, opus or mp3.")
        if track.status in lifecycle.WITHOUT_AUDIO or not track.original_key:
            raise RenditionNotReady("The original is not stored yet: finalize the upload first.", format=format)
        key, content_type = track.original_key, track.original_content_type
    else:
        made = track.rendition_map()
        available = [fmt for fmt in STREAM_PREFERENCE if fmt in made]
        chosen: str = format or (available[0] if available else "aac")
        rendition = made.get(chosen)
        if rendition is None:
            raise RenditionNotReady(
                f"This track has no {chosen} rendition yet (status: {track.status}).",
                format=chosen,
                availableFormats=available,
            )
        key, content_type = rendition["key"], rendition["contentType"]
    return _presigned_redirect(key, content_type)


ArtworkFormat = Literal["webp", "jpeg"]


@router.get(
    "/{track_id}/artwork",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: {"description": "Redirect to a short-lived presigned GET of the variant"},
        404: {"description": "artwork_not_found"},
    },
)
def track_artwork(
    track_id: str,
    user: Annotated[Principal | None, Depends(viewer)],
    size: Annotated[
        int, Query(ge=1, le=4096, description="wanted side in px: the smallest variant at least this big")
    ] = 600,
    format: Annotated[ArtworkFormat, Query(description="webp (default) or jpeg")] = "webp",
) -> RedirectResponse:
    """302 to the square variant that best fits ``size`` (the smallest at least that big, else the
    largest there is). Readable by whoever may read the track, signed in or not."""
    track = _readable(track_id, user.user_id if user else None)
    variants = [v for v in (track.artwork or {}).get("variants", []) if v["format"] == format]
    if not variants:
        raise ArtworkNotFound("This track has no artwork (yet).")
    fitting = [v for v in variants if v["size"] >= size]
    chosen = min(fitting, key=lambda v: v["size"]) if fitting else max(variants, key=lambda v: v["size"])
    return _presigned_redirect(chosen["key"], chosen["contentType"])


class SimilarTrack(CamelResponse):
    track_id: str
    title: str
    duration_ms: int | None
    # Cosine similarity of the two embeddings, -1..1 (1: the same sound).
    score: float


class SimilarResponse(CamelResponse):
    track_id: str
    embedding_version: str
    compared: int
    items: list[SimilarTrack]


@router.get(
    "/{track_id}/similar",
    response_model=SimilarResponse,
    response_model_by_alias=True,
    responses={409: {"description": "embedding_not_ready"}},
)
def similar_tracks(
    track_id: str,
    user: Annotated[Principal, Depends(current_user)],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> SimilarResponse:
    """The caller's ready tracks that sound most like this one (embeddings lane), best first."""
    track, ranked, compared = tracks.similar(_track_id(track_id), user.user_id, limit=limit)
    return SimilarResponse(
        track_id=ids.render("trk", track.track_id),
        embedding_version=(track.embedding or {}).get("version", ""),
        compared=compared,
        items=[
            SimilarTrack(
                track_id=ids.render("trk", hit.track.track_id),
                title=hit.track.title,
                duration_ms=int_or_none(hit.track.duration_ms),
                score=hit.score,
            )
            for hit in ranked
        ],
    )
