"""Track edits (the track-metadata contract's PATCH), owner only; deleting a track is
``functions.domain.removal.deletion``.

A PATCH races the processing workflow, which keeps writing to the track while its lanes run: it is
one UpdateItem of exactly the attributes it changes (never a whole-item save), so it cannot undo
what a lane wrote meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Literal, TypeAlias, TypeVar

from functions.data import keys, storage, writes
from functions.data.models import AlbumModel, TrackModel, utcnow
from functions.domain import lifecycle
from functions.domain.catalog import album_membership, albums, artists, listing, tracks, usage
from functions.domain.catalog import tags as tag_names
from functions.errors import (
    AlbumFull,
    AlbumNotFound,
    AlbumSlugUnavailable,
    ArtistProfileRequired,
    ConcurrentUpdate,
    InvalidAlbum,
    InvalidTrackUpdate,
    InvalidUpload,
)
from functions.observability import logger


class Keep(Enum):
    """A field the PATCH left out (``None`` means "remove it")."""

    KEEP = "keep"


KEEP = Keep.KEEP
T = TypeVar("T")
Patch: TypeAlias = T | Literal[Keep.KEEP]


@dataclass(frozen=True)
class TrackUpdate:
    """The fields a PATCH sent. ``title`` cannot be removed; ``album`` is a name or an id (``None``
    takes the track out of its album); ``description`` ``""``/``None`` and ``support_gate``
    ``None`` remove; empty ``features``/``tags`` remove them."""

    title: Patch[str] = KEEP
    album: Patch[str | None] = KEEP
    features: Patch[list[str] | None] = KEEP
    tags: Patch[list[str] | None] = KEEP
    description: Patch[str | None] = KEEP
    support_gate: Patch[dict[str, Any] | None] = KEEP
    visibility: Patch[str] = KEEP
    remove_image: bool = False


def update(track_id: str, owner_id: str, changes: TrackUpdate) -> TrackModel:
    """Applies ``changes`` and returns the track as stored afterwards. Another owner's track or an
    unknown one is 'not found'. Works on drafts (intent not finalized) as on processed tracks."""
    current = tracks.get_owned(track_id, owner_id)
    # Everything that can be refused is checked before the album is resolved: resolving by a new
    # title creates the album.
    actions = _field_actions(changes)
    move = _album_move(current, owner_id, changes.album) if changes.album is not KEEP else None
    if move is not None:
        actions += move.actions
    if not actions:
        return current
    # A draft (intent not finalized) joins its album's list at finalize, like one created with it.
    joins_now = move is not None and move.to is not None and current.status not in lifecycle.WITHOUT_AUDIO
    if move is not None and move.to is not None:
        if joins_now:
            # Joined first: a full album refuses the move before the track changes (and re-adding
            # the album the track is already in repairs a membership a crash left half done).
            album_membership.add_track(move.to.album_id, track_id)
        else:
            album_membership.check_room(move.to)
    try:
        updated = _apply(track_id, owner_id, actions, move.condition if move else None)
    except Exception:
        if joins_now and move is not None and move.to is not None and move.leaves != move.to.album_id:
            album_membership.remove_track(move.to.album_id, track_id)
        raise
    if move is not None and move.leaves and move.leaves != updated.album_id:
        album_membership.remove_track(move.leaves, track_id)
    # Visibility, the gate and tags decide where the track is listed.
    listing.sync(track_id)
    if changes.remove_image:
        # After the write, so a GET never shows artwork whose objects are gone.
        storage.delete_prefix(keys.artwork_prefix(track_id))
        image = current.image_source or {}
        if image.get("origin") == "upload" and image.get("key"):
            storage.delete(image["key"])
            if image.get("uploadId"):
                # The uploaded image (and its variants) no longer count in the owner's usage.
                usage.release_media_item(owner_id, track_id, image["uploadId"])
    return updated


def _field_actions(changes: TrackUpdate) -> list[Any]:
    actions: list[Any] = []
    if changes.title is not KEEP:
        # The uploader's choice from now on: the tags lane only replaces a title nobody chose.
        actions += [TrackModel.title.set(changes.title), TrackModel.title_source.set("uploader")]
    if changes.features is not KEEP:
        actions.append(_set_or_remove(TrackModel.features, _validated(artists.check_features, changes.features or [])))
    if changes.tags is not KEEP:
        actions.append(_set_or_remove(TrackModel.tags, _validated(tag_names.normalize_all, changes.tags or [])))
    if changes.description is not KEEP:
        actions.append(_set_or_remove(TrackModel.description, changes.description))
    if changes.support_gate is not KEEP:
        actions.append(_set_or_remove(TrackModel.support_gate, changes.support_gate))
    if changes.visibility is not KEEP:
        if changes.visibility not in listing.VISIBILITIES:
            raise InvalidTrackUpdate(f"visibility is one of {', '.join(listing.VISIBILITIES)}.", field="visibility")
        actions.append(TrackModel.visibility.set(changes.visibility))
    if changes.remove_image:
        actions += [TrackModel.image_source.remove(), TrackModel.artwork.remove()]
    return actions


def _set_or_remove(attribute: Any, value: Any) -> Any:
    """Empty values are not stored (as on the intent): ``""``, ``[]`` and ``None`` remove."""
    return attribute.set(value) if value else attribute.remove()


@dataclass(frozen=True)
class _AlbumMove:
    actions: list[Any]
    # The move is computed from the album read before it: it holds only if nobody moved it since.
    condition: Any
    to: AlbumModel | None
    leaves: str | None


def _album_move(current: TrackModel, owner_id: str, album: str | None) -> _AlbumMove:
    to = albums.resolve(owner_id, album) if album else None
    actions = (
        [TrackModel.album_id.set(to.album_id), TrackModel.album.set(to.title)]
        if to is not None
        else [TrackModel.album_id.remove(), TrackModel.album.remove()]
    )
    condition = TrackModel.album_id == current.album_id if current.album_id else TrackModel.album_id.does_not_exist()
    return _AlbumMove(actions, condition, to, current.album_id)


def join_tagged_album(track_id: str, title: str) -> AlbumModel | None:
    """The tags lane's album: a file's album tag names an album as an intent or a PATCH does (the
    owner's album with that title, created if there is none, which the track joins), but only for
    a track the artist named no album for: the artist's choice always wins over the file. Returns
    the album joined; None when the track has an album, or the tag names none it can join (an
    over-long title, a full album: the tag then stays visible in ``embeddedTags`` only).

    Safe to run twice (the lane may be retried): the membership is added before the track names
    the album, as a PATCH does, and adding a track twice is a no-op; once the track names an
    album, a second run leaves it."""
    track = tracks.find(track_id)
    if track is None or track.album_id or track.album:
        return None
    try:
        album = albums.find_or_create(track.owner_id, title)
        album_membership.add_track(album.album_id, track_id)
    # What cannot change on a retry; a busy album (AlbumChanged) fails the attempt and is retried.
    except (InvalidAlbum, AlbumFull, AlbumNotFound, AlbumSlugUnavailable, ArtistProfileRequired) as refused:
        logger.info("album tag not applied", extra={"track_id": track_id, "code": refused.code})
        return None
    if not writes.update_if(
        TrackModel(track_id, TrackModel.TRACK_SK),
        [
            TrackModel.album_id.set(album.album_id),
            TrackModel.album.set(album.title),
            TrackModel.updated_at.set(utcnow()),
        ],
        TrackModel.pk.exists() & TrackModel.album_id.does_not_exist() & TrackModel.album.does_not_exist(),
    ):
        # The artist named an album meanwhile, or deleted the track: the tag's album lets it go
        # unless the artist's choice is that very album.
        now = tracks.find(track_id)
        if now is None or now.album_id != album.album_id:
            album_membership.remove_track(album.album_id, track_id)
        return None
    return album


def _validated(check: Callable[[list[str]], list[str]], values: list[str]) -> list[str]:
    """The intent's own validation, answered in this route's terms (``invalid_track_update``)."""
    try:
        return check(values)
    except InvalidUpload as error:
        raise InvalidTrackUpdate(error.message, **error.details) from error


def _apply(track_id: str, owner_id: str, actions: list[Any], extra_condition: Any) -> TrackModel:
    """One UpdateItem of exactly these attributes, on the owner's existing track only."""
    condition = TrackModel.pk.exists() & (TrackModel.owner_id == owner_id)
    if extra_condition is not None:
        condition &= extra_condition
    item = TrackModel(track_id, TrackModel.TRACK_SK)
    if not writes.update_if(item, [*actions, TrackModel.updated_at.set(utcnow())], condition):
        tracks.get_owned(track_id, owner_id)  # deleted meanwhile: TrackNotFound
        raise ConcurrentUpdate("The track moved to another album while this request ran; try again.")
    return item
