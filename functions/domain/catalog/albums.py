"""Albums (the album contract): an artist's ordered collections of tracks, addressed by a
per-artist slug.

The album item counts its tracks and holds a ``revision`` that grows with every change; each track
is a member item beside it (``album_membership``). Slugs are claimed by separate items
(``AlbumSlugModel``) written in the same transaction as the album, so two albums of one artist can
never share a slug; a slug an album was renamed away from keeps its claim (``current`` false) and
answers with a redirect.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions import ids
from functions.data import keys, reads, storage, writes
from functions.data.models import AlbumModel, AlbumSlugModel, TrackModel, utcnow
from functions.domain.catalog import album_membership, album_slugs, artists, listing, paging, usage
from functions.errors import (
    AlbumChanged,
    AlbumNotFound,
    InvalidAlbum,
    TrackNotFound,
)

MAX_TITLE_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 5000
# resolve() looks for an existing title among at most this many of the artist's albums.
TITLE_LOOKUP_LIMIT = 1000
# Optimistic writes (revision conditions, list index removals) retry this often before giving up.
MAX_ATTEMPTS = 5
MAX_PAGE_SIZE = paging.MAX_PAGE_SIZE
# The owner also sees what is on its way or broken; a draft (no audio yet) is never listed.
OWNER_STATUSES = frozenset({"ready", "processing", "failed"})
# Only what the album page shows and decides on: a track item also carries waveforms and vectors.
TRACK_FIELDS = ["pk", "sk", "owner_id", "title", "duration_ms", "status", "visibility", "support_gate"]


@dataclass(frozen=True)
class AlbumView:
    album: AlbumModel
    artist: artists.Artist | None


@dataclass(frozen=True)
class AlbumPage:
    albums: list[AlbumView]
    next_cursor: str | None


@dataclass(frozen=True)
class Deleted:
    album_id: str
    cascade: bool
    tracks: int


class _Unset:
    """``description`` left out of a PATCH (``None`` removes it)."""


UNSET = _Unset()


# --- validation --------------------------------------------------------------------------------


def clean_title(title: str) -> str:
    value = title.strip()
    if not value or len(value) > MAX_TITLE_LENGTH:
        raise InvalidAlbum(f"An album title has 1 to {MAX_TITLE_LENGTH} characters.", field="title")
    return value


def clean_description(description: str | None) -> str | None:
    """``""`` (or only whitespace) means no description."""
    value = (description or "").strip()
    if len(value) > MAX_DESCRIPTION_LENGTH:
        raise InvalidAlbum(
            f"An album description has at most {MAX_DESCRIPTION_LENGTH} characters.", field="description"
        )
    return value or None


def parse_id(value: str) -> str:
    raw = ids.parse("alb", value)
    if raw is None:
        raise AlbumNotFound("No such album.")
    return raw


# --- reads ---------------------------------------------------------------------------------------


def find(album_id: str) -> AlbumModel | None:
    return reads.get_or_none(AlbumModel, album_id, AlbumModel.ALBUM_SK, consistent_read=True)


def track_count(album: AlbumModel) -> int:
    """How many tracks the album holds, those still processing included."""
    return album_membership.track_count(album)


def get_owned(album_id: str, owner_id: str) -> AlbumModel:
    """The album if ``owner_id`` owns it; another owner's album is 'not found'."""
    album = find(album_id)
    if album is None or album.owner_id != owner_id:
        raise AlbumNotFound("No such album.")
    return album


def find_by_slug(handle: str, slug: str) -> tuple[artists.Artist, AlbumModel]:
    """The album that holds or held ``slug`` for this artist. When ``album.slug`` differs from
    ``slug``, the album was renamed and the caller redirects to its current slug."""
    artist = artists.by_handle(handle)
    slug = slug.lower()
    if len(slug) > album_slugs.MAX_SLUG_LENGTH:
        raise AlbumNotFound("No such album.")
    claim = reads.get_or_none(
        AlbumSlugModel, AlbumSlugModel.key(artist.user_id, slug), AlbumSlugModel.SLUG_SK, consistent_read=True
    )
    if claim is None:
        raise AlbumNotFound("No such album.")
    album = find(claim.album_id)
    if album is None or album.owner_id != artist.user_id:
        raise AlbumNotFound("No such album.")
    return artist, album


def visible_tracks(album: AlbumModel, viewer_id: str | None) -> list[TrackModel]:
    """The album's tracks in its explicit order that ``viewer_id`` may see: publicly listed ones
    (ready, public, ungated) for everybody; the owner sees every track past its draft. One BatchGetItem per 100 tracks
    of the album, however big the catalog is; ids whose track is gone are skipped."""
    order = list(dict.fromkeys(album_membership.track_order(album)))
    if not order:
        return []
    found: dict[str, TrackModel] = {
        str(track.pk): track
        for track in TrackModel.batch_get([(tid, TrackModel.TRACK_SK) for tid in order], attributes_to_get=TRACK_FIELDS)
    }
    shown = (lambda t: t.status in OWNER_STATUSES) if viewer_id == album.owner_id else listing.is_listed
    return [found[tid] for tid in order if tid in found and found[tid].owner_id == album.owner_id and shown(found[tid])]


def _albums_of(entries: list[AlbumModel], next_cursor: str | None) -> AlbumPage:
    """The albums an index page named, as stored (one BatchGetItem), with their artists (one
    more): the indexes carry keys, not what the page shows. An album deleted since the index
    answered is left out."""
    found = reads.get_many(*((AlbumModel, entry.pk, entry.sk) for entry in entries))
    albums = [album for album in found if isinstance(album, AlbumModel)]
    owners = list(dict.fromkeys(album.owner_id for album in albums))
    profiles = {artist.user_id: artist for artist in artists.find_many(owners)}
    return AlbumPage([AlbumView(album, profiles.get(album.owner_id)) for album in albums], next_cursor)


_OWNER_INDEX_KEYS = ["pk", "sk", "owner_id", "created_at"]


def list_all(*, limit: int, cursor: str | None) -> AlbumPage:
    """Every album, newest first: the listing's shards merged (one Query each, keys only), then
    the page's albums and their artists."""
    page = paging.query_merged(
        "albums", AlbumModel.by_listing, AlbumModel, AlbumModel.listing_partitions(), limit=limit, cursor=cursor
    )
    return _albums_of(page.items, page.next_cursor)


def list_by_artist(handle: str, *, limit: int, cursor: str | None) -> tuple[artists.Artist, AlbumPage]:
    """One artist's albums, newest first (one Query on ``by_owner``, keys only), then the page's
    albums and their artist."""
    artist = artists.by_handle(handle)
    page = paging.query(
        "artist-albums",
        AlbumModel.by_owner,
        AlbumModel,
        artist.user_id,
        limit=limit,
        cursor=cursor,
        attributes_to_get=_OWNER_INDEX_KEYS,
    )
    return artist, _albums_of(page.items, page.next_cursor)


# --- writes --------------------------------------------------------------------------------------


def _claim(owner_id: str, slug: str, album_id: str) -> AlbumSlugModel:
    return AlbumSlugModel(AlbumSlugModel.key(owner_id, slug), AlbumSlugModel.SLUG_SK, album_id=album_id, current=True)


def create(owner_id: str, title: str, description: str | None = None) -> AlbumView:
    """A new album for the caller (who needs an artist profile), with the first free slug."""
    artist = artists.require(owner_id)
    return AlbumView(_create(owner_id, clean_title(title), clean_description(description), converge=False), artist)


def _create(owner_id: str, title: str, description: str | None, *, converge: bool) -> AlbumModel:
    """Writes the album and its slug claim in one transaction. With ``converge`` (resolve by
    title), a slug held by an album of the same title returns that album instead: a concurrent
    call just created it, so parallel uploads naming one new album end up in one album."""
    album_id = ids.new_id()
    for candidate in album_slugs.candidates(owner_id, album_slugs.slugify(title)):
        if candidate.holder is not None:
            if converge and (existing := _titled(owner_id, candidate.holder, title)) is not None:
                return existing
            continue
        now = utcnow()
        album = AlbumModel(
            album_id,
            AlbumModel.ALBUM_SK,
            owner_id=owner_id,
            title=title,
            slug=candidate.slug,
            slugs={candidate.slug},
            description=description,
            track_count=0,
            listed=AlbumModel.listing_shard(album_id),
            revision=1,
            created_at=now,
            updated_at=now,
        )
        claim = _claim(owner_id, candidate.slug, album_id)
        with writes.conditional_transaction(conflicts=True) as tx:
            tx.save(album, condition=AlbumModel.pk.does_not_exist())
            tx.save(claim, condition=AlbumSlugModel.pk.does_not_exist())
        if not tx.committed:
            if not tx.refused(claim):
                tx.raise_refusal()
            if converge and (winner := _titled(owner_id, _holder(owner_id, candidate.slug), title)) is not None:
                return winner
            continue  # someone took this slug since we looked: the next one
        return album
    raise AssertionError("unreachable: _candidates raises when it runs out")


def _holder(owner_id: str, slug: str) -> str | None:
    claim = reads.get_or_none(
        AlbumSlugModel, AlbumSlugModel.key(owner_id, slug), AlbumSlugModel.SLUG_SK, consistent_read=True
    )
    return str(claim.album_id) if claim is not None else None


def _titled(owner_id: str, album_id: str | None, title: str) -> AlbumModel | None:
    """The owner's album ``album_id`` if it has this title (case-insensitive)."""
    album = find(album_id) if album_id else None
    if album is not None and album.owner_id == owner_id and album.title.casefold() == title.casefold():
        return album
    return None


def update(
    owner_id: str, album_id: str, *, title: str | None = None, description: str | _Unset | None = UNSET
) -> AlbumView:
    """PATCH: a new title takes the first free slug for it (or keeps the current one when the
    title still slugifies to it); the old slug's claim stays, ``current`` false, for redirects.
    Album, new claim and old claim change in one transaction conditional on the revision read."""
    new_title = clean_title(title) if title is not None else None
    new_description = clean_description(description) if not isinstance(description, _Unset) else UNSET
    for _ in range(MAX_ATTEMPTS):
        album = get_owned(album_id, owner_id)
        wanted_title = new_title if new_title is not None else album.title
        wanted_description = album.description if isinstance(new_description, _Unset) else new_description
        if wanted_title == album.title and wanted_description == album.description:
            return AlbumView(album, artists.find(owner_id))
        if _apply_update(album, wanted_title, wanted_description):
            return AlbumView(find(album_id) or album, artists.find(owner_id))
    raise AlbumChanged("The album kept changing while this request ran; try again.")


def _apply_update(album: AlbumModel, title: str, description: str | None) -> bool:
    """One attempt; False when the album's revision moved (the caller re-reads and retries)."""
    now = utcnow()
    actions: list[Any] = [
        AlbumModel.title.set(title),
        AlbumModel.description.set(description) if description else AlbumModel.description.remove(),
        AlbumModel.revision.add(1),
        AlbumModel.updated_at.set(now),
    ]
    unchanged = AlbumModel.revision == album.revision
    base = album_slugs.slugify(title)
    if base == album_slugs.slugify(album.title):
        # Same slug base ("Foo" -> "FOO!"): the album keeps its slug, suffix included.
        return writes.update_if(AlbumModel(album.pk, AlbumModel.ALBUM_SK), actions, unchanged)
    for candidate in album_slugs.candidates(album.owner_id, base):
        if candidate.slug == album.slug:
            return writes.update_if(AlbumModel(album.pk, AlbumModel.ALBUM_SK), actions, unchanged)
        if candidate.holder is not None and candidate.holder != album.pk:
            continue
        held = set(album.slugs or {album.slug}) | {candidate.slug}
        released = sorted(held - {candidate.slug, album.slug})[: max(0, len(held) - album_slugs.MAX_SLUG_HISTORY)]
        claim = _claim(album.owner_id, candidate.slug, album.pk)
        with writes.conditional_transaction(conflicts=True) as tx:
            tx.update(
                album,
                actions=[*actions, AlbumModel.slug.set(candidate.slug), AlbumModel.slugs.set(held - set(released))],
                condition=unchanged,
            )
            # Free, or a slug this album held before (renaming back takes it again).
            tx.save(claim, condition=AlbumSlugModel.pk.does_not_exist() | (AlbumSlugModel.album_id == album.pk))
            tx.update(
                AlbumSlugModel(AlbumSlugModel.key(album.owner_id, album.slug), AlbumSlugModel.SLUG_SK),
                actions=[AlbumSlugModel.current.set(False)],
                condition=AlbumSlugModel.album_id == album.pk,
            )
            for slug in released:
                tx.delete(
                    AlbumSlugModel(AlbumSlugModel.key(album.owner_id, slug), AlbumSlugModel.SLUG_SK),
                    condition=AlbumSlugModel.album_id == album.pk,
                )
        if not tx.committed:
            if tx.refused(album):
                return False  # the album changed since it was read: the caller re-reads and retries
            if tx.refused(claim):
                continue  # someone took this slug since we looked: the next one
            tx.raise_refusal()
        return True
    raise AssertionError("unreachable: _candidates raises when it runs out")


def resolve(owner_id: str, name_or_id: str) -> AlbumModel:
    """The caller's album named by id, or by title (created when the caller has no album with that
    title). An id of another owner's album is 'not found' (AlbumNotFound)."""
    value = name_or_id.strip()
    raw = ids.parse("alb", value)
    if raw is not None:
        return get_owned(raw, owner_id)
    if value.startswith("alb_"):
        raise AlbumNotFound("No such album.")
    return find_or_create(owner_id, value)


def find_or_create(owner_id: str, title: str) -> AlbumModel:
    """The owner's album with this title (case-insensitive), created when there is none. A title
    only, never an id: a file's album tag that happens to read ``alb_…`` is a title."""
    title = clean_title(title)
    wanted = title.casefold()
    # Oldest first, so the same title always resolves to the same album.
    for match in AlbumModel.by_owner.query(
        owner_id, limit=TITLE_LOOKUP_LIMIT, attributes_to_get=["pk", "sk", "owner_id", "created_at", "title"]
    ):
        if match.title.casefold() == wanted and (album := find(match.pk)) is not None:
            return album
    artists.require(owner_id)
    return _create(owner_id, title, None, converge=True)


def orphan_track(owner_id: str, album_id: str, track_id: str) -> None:
    """Takes the track out of the album and leaves it standalone. Idempotent: both steps are
    no-ops once done, and repeating the call finishes a half-done one."""
    get_owned(album_id, owner_id)
    album_membership.remove_track(album_id, track_id)
    album_membership.clear_album(track_id, album_id)


def delete(owner_id: str, album_id: str, *, delete_track: Callable[[str], object] | None) -> Deleted:
    """Deletes the album and every slug claim it holds. Its tracks are orphaned, or, given
    ``delete_track`` (the cascade, ``functions.domain.removal.deletion``), deleted with it. The
    album goes last, conditional on the revision read after the tracks were handled, so a track
    added meanwhile is never left pointing at a deleted album: the loop handles it first."""
    handled: set[str] = set()
    for _ in range(MAX_ATTEMPTS):
        album = get_owned(album_id, owner_id)
        pending = [tid for tid in dict.fromkeys(album_membership.track_order(album)) if tid not in handled]
        if pending:
            for track_id in pending:
                if delete_track is not None:
                    # Already deleted, or never the owner's: nothing of it to delete.
                    with contextlib.suppress(TrackNotFound):
                        delete_track(track_id)
                else:
                    album_membership.clear_album(track_id, album_id)
                handled.add(track_id)
            continue  # re-read: handling tracks may have changed the album (and its revision)
        for slug in (album.slugs or set()) - {album.slug}:
            # Refused when the claim is already gone or someone else's: either way not this album's.
            writes.delete_if(
                AlbumSlugModel(AlbumSlugModel.key(owner_id, slug), AlbumSlugModel.SLUG_SK),
                AlbumSlugModel.album_id == album_id,
            )
        # Its cover's bytes leave the owner's usage while the album is still there, as a track's
        # do (``functions.domain.removal.deletion``).
        usage.release_target_media(owner_id, AlbumModel, album_id, AlbumModel.ALBUM_SK, while_exists=True)
        with writes.conditional_transaction(conflicts=True) as tx:
            tx.delete(album, condition=AlbumModel.revision == album.revision)
            tx.delete(
                AlbumSlugModel(AlbumSlugModel.key(owner_id, album.slug), AlbumSlugModel.SLUG_SK),
                condition=AlbumSlugModel.pk.does_not_exist() | (AlbumSlugModel.album_id == album_id),
            )
        if not tx.committed:
            continue
        # A cover claimed between the release and the delete.
        usage.release_target_media(owner_id, AlbumModel, album_id, AlbumModel.ALBUM_SK, while_exists=False)
        # The album is gone, so no track can join it any more: its member items go after it (one
        # left behind by a crash here is never read, and removing its track deletes it).
        album_membership.drop_members(album_id)
        # Its cover: the rendered variants and the uploaded image.
        storage.delete_prefix(keys.album_prefix(album_id))
        cover = album.image_source or {}
        if cover.get("origin") == "upload" and cover.get("key"):
            storage.delete(cover["key"])
        return Deleted(album_id, delete_track is not None, len(handled))
    raise AlbumChanged("The album kept changing while it was being deleted; try again.")
