"""Artists: the caller's own profile (``/v1/artists/me``, required before uploading) and its
supporters, and every artist's public profile and listed tracks by handle."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field

from functions.api.auth import Principal, current_user
from functions.api.models import CamelModel, CamelResponse, iso
from functions.api.public import cacheable
from functions.api.track_views import PublicTrack, public_track
from functions.domain.catalog import artists, listing, paging, supporters
from functions.errors import ArtistProfileNotFound

router = APIRouter(prefix="/v1/artists", tags=["artists"])


class ArtistProfileRequest(CamelModel):
    handle: str = Field(min_length=3, max_length=63, pattern=artists.HANDLE_PATTERN.pattern.replace("a-z", "a-zA-Z"))
    display_name: str | None = Field(default=None, min_length=1, max_length=100)


class ArtistProfileResponse(CamelResponse):
    user_id: str
    handle: str
    display_name: str | None
    created_at: str
    updated_at: str


def _response(artist: artists.Artist) -> ArtistProfileResponse:
    return ArtistProfileResponse(
        user_id=artist.user_id,
        handle=artist.handle,
        display_name=artist.display_name,
        created_at=iso(artist.created_at) or "",
        updated_at=iso(artist.updated_at) or "",
    )


@router.put("/me", response_model=ArtistProfileResponse, response_model_by_alias=True)
def put_my_profile(
    body: ArtistProfileRequest, user: Annotated[Principal, Depends(current_user)]
) -> ArtistProfileResponse:
    """Create or update the caller's profile. Handles are unique (case-insensitive)."""
    return _response(artists.upsert(user.user_id, handle=body.handle, display_name=body.display_name))


@router.get("/me", response_model=ArtistProfileResponse, response_model_by_alias=True)
def get_my_profile(user: Annotated[Principal, Depends(current_user)]) -> ArtistProfileResponse:
    artist = artists.find(user.user_id)
    if artist is None:
        raise ArtistProfileNotFound("You have no artist profile yet; create one with PUT /v1/artists/me.")
    return _response(artist)


Limit = Annotated[int, Query(ge=1, le=paging.MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=1024, description="nextCursor of the previous page")]
# Identity providers' subject ids: Cognito's are UUIDs, others look like "auth0|abc123".
UserId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:@|+-]+$")]


class SupporterResponse(CamelResponse):
    user_id: str
    since: str


class GrantResponse(SupporterResponse):
    # False when the user already was a supporter (the grant is unchanged).
    created: bool


class SupportersResponse(CamelResponse):
    supporters: list[SupporterResponse]
    next_cursor: str | None


@router.put("/me/supporters/{user_id}", response_model=GrantResponse, response_model_by_alias=True)
def grant_support(user_id: UserId, user: Annotated[Principal, Depends(current_user)]) -> GrantResponse:
    """Makes ``userId`` a supporter of the caller: your support-gated tracks stream to them.
    Idempotent (``created`` says whether it is new)."""
    granted = supporters.grant(user.user_id, user_id)
    return GrantResponse(
        user_id=granted.supporter.user_id, since=iso(granted.supporter.since) or "", created=granted.created
    )


@router.delete("/me/supporters/{user_id}", status_code=204, response_class=Response)
def revoke_support(user_id: UserId, user: Annotated[Principal, Depends(current_user)]) -> Response:
    """Ends the grant; gated tracks stop streaming to them at once. 204 whether or not it existed."""
    supporters.revoke(user.user_id, user_id)
    return Response(status_code=204)


@router.get("/me/supporters", response_model=SupportersResponse, response_model_by_alias=True)
def list_supporters(
    user: Annotated[Principal, Depends(current_user)], limit: Limit = 50, cursor: Cursor = None
) -> SupportersResponse:
    found, next_cursor = supporters.list_for(user.user_id, limit=limit, cursor=cursor)
    return SupportersResponse(
        supporters=[SupporterResponse(user_id=s.user_id, since=iso(s.since) or "") for s in found],
        next_cursor=next_cursor,
    )


class PublicArtistResponse(CamelResponse):
    handle: str
    display_name: str | None
    created_at: str


class ArtistTracksResponse(CamelResponse):
    artist: PublicArtistResponse
    tracks: list[PublicTrack]
    next_cursor: str | None


def _public_artist(artist: artists.Artist) -> PublicArtistResponse:
    return PublicArtistResponse(
        handle=artist.handle, display_name=artist.display_name, created_at=iso(artist.created_at) or ""
    )


@router.get("/{handle}", response_model=PublicArtistResponse, response_model_by_alias=True)
def get_artist(request: Request, handle: str) -> Response:
    """An artist's public profile (public)."""
    return cacheable(request, _public_artist(artists.by_handle(handle)), private=False)


@router.get("/{handle}/tracks", response_model=ArtistTracksResponse, response_model_by_alias=True)
def list_artist_tracks(request: Request, handle: str, limit: Limit = 20, cursor: Cursor = None) -> Response:
    """The artist's listed tracks -- ready, public, not support-gated -- newest first (public).
    A page may hold fewer than ``limit`` tracks when some stopped being listed a moment ago;
    follow ``nextCursor`` until it is null."""
    artist = artists.by_handle(handle)
    page = listing.artist_tracks(artist, limit=limit, cursor=cursor)
    body = ArtistTracksResponse(
        artist=_public_artist(artist),
        tracks=[public_track(track, artist) for track in page.tracks],
        next_cursor=page.next_cursor,
    )
    return cacheable(request, body, private=False)
