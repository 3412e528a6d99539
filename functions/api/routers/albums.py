"""The album contract's routes: public reads by artist handle and slug, owner-only writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import Field, StringConstraints

from functions import ids
from functions.api.auth import Principal, current_user
from functions.api.models import CamelModel, CamelResponse, iso
from functions.api.public import absolute_url, cacheable, viewer
from functions.api.track_views import ArtistRef, artist_ref
from functions.domain.catalog import albums, artists
from functions.domain.removal import deletion
from functions.errors import InvalidAlbum, TrackNotFound

if TYPE_CHECKING:
    # Records the domain returns, read here as views (never loaded or written by the API).
    from functions.data.models import AlbumModel, TrackModel


router = APIRouter(tags=["albums"])

Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=albums.MAX_TITLE_LENGTH)]
Description = Annotated[str, Field(max_length=albums.MAX_DESCRIPTION_LENGTH)]
Limit = Annotated[int, Query(ge=1, le=albums.MAX_PAGE_SIZE)]
Cursor = Annotated[str | None, Query(max_length=512, description="nextCursor of the previous page")]


class CreateAlbumRequest(CamelModel):
    title: Title
    description: Description | None = None


class UpdateAlbumRequest(CamelModel):
    """Fields left out stay as they are; ``description: ""`` (or null) removes the description."""

    title: Title | None = None
    description: Description | None = None


class AlbumResponse(CamelResponse):
    album_id: str
    title: str
    slug: str
    description: str | None
    artist: ArtistRef | None
    # Tracks in the album's order, those still processing included (the album page lists only
    # the ones its viewer may play).
    track_count: int
    created_at: str
    updated_at: str
    revision: int


class AlbumTrack(CamelResponse):
    track_id: str
    title: str
    duration_ms: int | None
    position: int
    status: str


class AlbumDetailResponse(AlbumResponse):
    tracks: list[AlbumTrack]


class AlbumListResponse(CamelResponse):
    albums: list[AlbumResponse]
    next_cursor: str | None


class ArtistAlbumsResponse(AlbumListResponse):
    artist: ArtistRef


class DeleteAlbumResponse(CamelResponse):
    album_id: str
    deleted: bool = True
    cascade: bool
    # Tracks orphaned (cascade=false) or deleted (cascade=true).
    tracks: int


def _album(album: AlbumModel, artist: artists.Artist | None) -> AlbumResponse:
    return AlbumResponse(
        album_id=ids.render("alb", album.album_id),
        title=album.title,
        slug=album.slug,
        description=album.description,
        artist=artist_ref(artist),
        track_count=albums.track_count(album),
        created_at=iso(album.created_at) or "",
        updated_at=iso(album.updated_at) or "",
        revision=int(album.revision),
    )


def _track(track: TrackModel, position: int) -> AlbumTrack:
    return AlbumTrack(
        track_id=ids.render("trk", track.track_id),
        title=track.title,
        duration_ms=int(track.duration_ms) if track.duration_ms is not None else None,
        position=position,
        status=track.status,
    )


@router.post("/v1/albums", status_code=201, response_model=AlbumResponse, response_model_by_alias=True)
def create_album(body: CreateAlbumRequest, user: Annotated[Principal, Depends(current_user)]) -> AlbumResponse:
    """A new album; its slug comes from the title (``-2``, ``-3``… when the artist has it already)."""
    created = albums.create(user.user_id, body.title, body.description)
    return _album(created.album, created.artist)


@router.get("/v1/albums", response_model=AlbumListResponse, response_model_by_alias=True)
def list_albums(request: Request, limit: Limit = 20, cursor: Cursor = None) -> Response:
    """Every album, newest first (public)."""
    page = albums.list_all(limit=limit, cursor=cursor)
    body = AlbumListResponse(
        albums=[_album(view.album, view.artist) for view in page.albums], next_cursor=page.next_cursor
    )
    return cacheable(request, body, private=False)


@router.get("/v1/artists/{handle}/albums", response_model=ArtistAlbumsResponse, response_model_by_alias=True)
def list_artist_albums(request: Request, handle: str, limit: Limit = 20, cursor: Cursor = None) -> Response:
    """One artist's albums, newest first (public)."""
    artist, page = albums.list_by_artist(handle, limit=limit, cursor=cursor)
    body = ArtistAlbumsResponse(
        artist=ArtistRef(handle=artist.handle, display_name=artist.display_name),
        albums=[_album(view.album, view.artist) for view in page.albums],
        next_cursor=page.next_cursor,
    )
    return cacheable(request, body, private=False)


@router.get(
    "/v1/artists/{handle}/albums/{slug}",
    response_model=AlbumDetailResponse,
    response_model_by_alias=True,
    responses={301: {"description": "An old slug of a renamed album: Location is the current one"}},
)
def get_album(
    request: Request, handle: str, slug: str, caller: Annotated[Principal | None, Depends(viewer)]
) -> Response:
    """The album with its tracks in the album's order (public: listed tracks -- ready, public,
    ungated; the owner also sees the rest past their draft)."""
    artist, album = albums.find_by_slug(handle, slug)
    if album.slug != slug:
        location = absolute_url(request, f"/v1/artists/{artist.handle}/albums/{album.slug}")
        # Not cached: renaming the album back would otherwise leave browsers in a redirect loop.
        return RedirectResponse(location, status_code=301, headers={"Cache-Control": "no-cache"})
    viewer_id = caller.user_id if caller else None
    tracks = albums.visible_tracks(album, viewer_id)
    body = AlbumDetailResponse.model_validate(
        {
            **_album(album, artist).model_dump(),
            "track_count": len(tracks),
            "tracks": [_track(track, position) for position, track in enumerate(tracks, start=1)],
        }
    )
    return cacheable(request, body, private=viewer_id == album.owner_id)


@router.patch("/v1/albums/{album_id}", response_model=AlbumResponse, response_model_by_alias=True)
def update_album(
    album_id: str, body: UpdateAlbumRequest, user: Annotated[Principal, Depends(current_user)]
) -> AlbumResponse:
    """Title and description (owner only). A new title moves the slug; the old one redirects."""
    changes: dict[str, Any] = {}
    if "title" in body.model_fields_set:
        if body.title is None:
            raise InvalidAlbum("An album needs a title; it cannot be removed.", field="title")
        changes["title"] = body.title
    if "description" in body.model_fields_set:
        changes["description"] = body.description or None
    updated = albums.update(user.user_id, albums.parse_id(album_id), **changes)
    return _album(updated.album, updated.artist)


@router.delete("/v1/albums/{album_id}/tracks/{track_id}", status_code=204, response_class=Response)
def remove_album_track(album_id: str, track_id: str, user: Annotated[Principal, Depends(current_user)]) -> Response:
    """Orphans the track: it leaves the album and stays a standalone track (owner only; 204 again
    when it is no longer in the album)."""
    raw_track_id = ids.parse("trk", track_id)
    if raw_track_id is None:
        raise TrackNotFound("No such track.")
    albums.orphan_track(user.user_id, albums.parse_id(album_id), raw_track_id)
    return Response(status_code=204)


@router.delete("/v1/albums/{album_id}", response_model=DeleteAlbumResponse, response_model_by_alias=True)
def delete_album(
    album_id: str,
    user: Annotated[Principal, Depends(current_user)],
    cascade: Annotated[bool, Query(description="true: delete the album's tracks too; false: orphan them")] = False,
) -> DeleteAlbumResponse:
    """Deletes the album and its slugs (owner only); a second delete is 404 ``album_not_found``."""
    deleted = deletion.delete_album(user.user_id, albums.parse_id(album_id), cascade=cascade)
    return DeleteAlbumResponse(
        album_id=ids.render("alb", deleted.album_id), cascade=deleted.cascade, tracks=deleted.tracks
    )
