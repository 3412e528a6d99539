"""How a track reads to someone other than its owner (public lists, shared links): what it is,
who made it and how to play it -- never storage keys, processing internals or failure details."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from functions import ids
from functions.api.models import CamelResponse, iso
from functions.domain.catalog import artists

if TYPE_CHECKING:
    # Records the domain returns, read here as views (never loaded or written by the API).
    from functions.data.models import TrackModel


def without_key(document: dict[str, Any]) -> dict[str, Any]:
    """Storage keys stay internal: clients fetch media through the redirecting routes."""
    return {k: v for k, v in document.items() if k != "key"}


def public_artwork(artwork: dict[str, Any] | None) -> dict[str, Any] | None:
    if not artwork:
        return None
    return {**artwork, "variants": [without_key(variant) for variant in artwork.get("variants", [])]}


def int_or_none(value: float | None) -> int | None:
    return int(value) if value is not None else None


class ArtistRef(CamelResponse):
    handle: str
    display_name: str | None


class AlbumRef(CamelResponse):
    album_id: str
    title: str


class PublicTrack(CamelResponse):
    track_id: str
    title: str
    artist: ArtistRef | None
    album: AlbumRef | None
    duration_ms: int | None
    tags: list[str]
    features: list[str]
    visibility: str
    # {"type": "any"}: it streams only to the artist's supporters.
    support_gate: dict[str, Any] | None
    # {origin, width, height, variants: [{size, format, contentType, byteSize}]}; fetch a variant
    # through /artwork.
    artwork: dict[str, Any] | None
    created_at: str


def artist_ref(artist: artists.Artist | None) -> ArtistRef | None:
    return ArtistRef(handle=artist.handle, display_name=artist.display_name) if artist else None


def public_track(track: TrackModel, artist: artists.Artist | None) -> PublicTrack:
    return PublicTrack(
        track_id=ids.render("trk", track.track_id),
        title=track.title,
        artist=artist_ref(artist),
        album=AlbumRef(album_id=ids.render("alb", track.album_id), title=track.album or "") if track.album_id else None,
        duration_ms=int_or_none(track.duration_ms),
        tags=[str(tag) for tag in track.tags or []],
        features=[str(handle) for handle in track.features or []],
        visibility=track.visibility,
        support_gate=track.support_gate,
        artwork=public_artwork(track.artwork),
        created_at=iso(track.created_at) or "",
    )
