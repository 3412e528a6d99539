"""Albums (the album contract): an artist's ordered collections of tracks, addressed by a
per-artist slug.

The album item holds the explicit track order (``track_ids``) and a ``revision`` that grows with
every change. Slugs are claimed by separate items (``AlbumSlugModel``) written in the same
transaction as the album, so two albums of one artist can never share a slug; a slug an album was
renamed away from keeps its claim (``current`` false) and answers with a redirect.
"""

from __future__ import annotations

import contextlib
import random
import re
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DeleteError, DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.condition import size
from pynamodb.expressions.operand import Value

from functions import ids
from functions.data import keys, storage, writes
from functions.data.models import (
    AlbumModel,
    AlbumSlugModel,
    TrackModel,
    condition_failed,
    utcnow,
)
from functions.domain.catalog import artists, listing, paging
from functions.errors import (
    AlbumChanged,
    AlbumFull,
    AlbumNotFound,
    AlbumSlugUnavailable,
    InvalidAlbum,
    TrackNotFound,
)

MAX_TITLE_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 5000
MAX_SLUG_LENGTH = 80
# Bounds the album item (DynamoDB items stop at 400 KB) and the reads of a public album page.
MAX_TRACKS = 1000
# Slugs an album keeps claims on, the current one included; a rename beyond that releases one.
MAX_SLUG_HISTORY = 20
# "-2" ... "-1000": past that an artist has a thousand albums with one title and gets an error.
MAX_SLUG_SUFFIX = 1000
# Candidate slugs read per BatchGetItem while looking for a free one.
SLUG_WINDOW = 25
# resolve() looks for an existing title among at most this many of the artist's albums.
TITLE_LOOKUP_LIMIT = 1000
# Optimistic writes (revision conditions, list index removals) retry this often before giving up.
MAX_ATTEMPTS = 5
MAX_PAGE_SIZE = paging.MAX_PAGE_SIZE
# The owner also sees what is on its way or broken; a draft (no audio yet) is never listed.
OWNER_STATUSES = frozenset({"ready", "processing", "failed"})
# Only what the album page shows and decides on: a track item also carries waveforms and vectors.
TRACK_FIELDS = ["pk", "sk", "owner_id", "title", "duration_ms", "status", "visibility", "support_gate"]

# Latin letters NFKD leaves whole; the ASCII fold would otherwise drop them from the slug.
_TRANSLITERATIONS = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "ø": "o", "Ø": "O", "œ": "oe", "Œ": "OE", "đ": "d", "Đ": "D"}
    | {"ł": "l", "Ł": "L", "þ": "th", "Þ": "TH", "ð": "d", "Ð": "D", "ı": "i"}
)
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


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


# --- slugs -----------------------------------------------------------------------------------


def slugify(title: str) -> str:
    """``"Café del Mar (Vol. 2)"`` -> ``"cafe-del-mar-vol-2"``: lowercase ASCII, runs of anything
    else become one hyphen, at most 80 characters, ``"album"`` when nothing is left."""
    folded = unicodedata.normalize("NFKD", title.translate(_TRANSLITERATIONS))
    ascii_only = folded.encode("ascii", "ignore").decode("ascii").lower()
    slug = _NOT_SLUG.sub("-", ascii_only).strip("-")[:MAX_SLUG_LENGTH].rstrip("-")
    return slug or "album"


def with_suffix(base: str, n: int) -> str:
    """The n-th candidate for ``base``: itself, then ``base-2``, ``base-3``… (still <= 80 chars)."""
    if n == 1:
        return base
    suffix = f"-{n}"
    return base[: MAX_SLUG_LENGTH - len(suffix)].rstrip("-") + suffix


@dataclass(frozen=True)
class _Candidate:
    slug: str
    holder: str | None  # the album holding its claim, None when free


def _candidates(owner_id: str, base: str) -> Iterator[_Candidate]:
    """Slug candidates in order with who holds each, read a window at a time. What they say is a
    hint for which candidate to try; the claim's condition in the write decides."""
    for start in range(1, MAX_SLUG_SUFFIX + 1, SLUG_WINDOW):
        window = [with_suffix(base, n) for n in range(start, min(start + SLUG_WINDOW, MAX_SLUG_SUFFIX + 1))]
        keys = [(AlbumSlugModel.key(owner_id, slug), AlbumSlugModel.SLUG_SK) for slug in window]
        holders = {claim.pk: claim.album_id for claim in AlbumSlugModel.batch_get(keys, consistent_read=True)}
        for slug in window:
            yield _Candidate(slug, holders.get(AlbumSlugModel.key(owner_id, slug)))
    raise AlbumSlugUnavailable(f"Every slug from '{base}' to '{base}-{MAX_SLUG_SUFFIX}' is taken.", slug=base)


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


def _order(album: AlbumModel) -> list[str]:
    """The album's track ids in order (stored as a list of strings)."""
    return [str(track_id) for track_id in album.track_ids or []]


def parse_id(value: str) -> str:
    raw = ids.parse("alb", value)
    if raw is None:
        raise AlbumNotFound("No such album.")
    return raw


# --- reads ---------------------------------------------------------------------------------------


def find(album_id: str) -> AlbumModel | None:
    try:
        return AlbumModel.get(album_id, AlbumModel.ALBUM_SK, consistent_read=True)
    except DoesNotExist:
        return None


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
    if len(slug) > MAX_SLUG_LENGTH:
        raise AlbumNotFound("No such album.")
    try:
        claim = AlbumSlugModel.get(
            AlbumSlugModel.key(artist.user_id, slug), AlbumSlugModel.SLUG_SK, consistent_read=True
        )
    except DoesNotExist:
        raise AlbumNotFound("No such album.") from None
    album = find(claim.album_id)
    if album is None or album.owner_id != artist.user_id:
        raise AlbumNotFound("No such album.")
    return artist, album


def visible_tracks(album: AlbumModel, viewer_id: str | None) -> list[TrackModel]:
    """The album's tracks in its explicit order that ``viewer_id`` may see: publicly listed ones
    (ready, public, ungated) for everybody; the owner sees every track past its draft. One BatchGetItem per 100 tracks
    of the album, however big the catalog is; ids whose track is gone are skipped."""
    order = list(dict.fromkeys(_order(album)))
    if not order:
        return []
    found: dict[str, TrackModel] = {
        str(track.pk): track
        for track in TrackModel.batch_get([(tid, TrackModel.TRACK_SK) for tid in order], attributes_to_get=TRACK_FIELDS)
    }
    shown = (lambda t: t.status in OWNER_STATUSES) if viewer_id == album.owner_id else listing.is_listed
    return [found[tid] for tid in order if tid in found and found[tid].owner_id == album.owner_id and shown(found[tid])]


def _page(kind: str, index: Any, hash_key: str, *, limit: int, cursor: str | None) -> AlbumPage:
    """Newest first, with each album's artist (one BatchGetItem for the page)."""
    page = paging.query(kind, index, AlbumModel, hash_key, limit=limit, cursor=cursor)
    owners = list(dict.fromkeys(album.owner_id for album in page.items))
    profiles = {artist.user_id: artist for artist in artists.find_many(owners)}
    return AlbumPage([AlbumView(album, profiles.get(album.owner_id)) for album in page.items], page.next_cursor)


def list_all(*, limit: int, cursor: str | None) -> AlbumPage:
    """Every album, newest first (one Query on ``by_listing`` plus one BatchGetItem for artists)."""
    return _page("albums", AlbumModel.by_listing, AlbumModel.LISTED, limit=limit, cursor=cursor)


def list_by_artist(handle: str, *, limit: int, cursor: str | None) -> tuple[artists.Artist, AlbumPage]:
    artist = artists.by_handle(handle)
    return artist, _page("artist-albums", AlbumModel.by_owner, artist.user_id, limit=limit, cursor=cursor)


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
    for candidate in _candidates(owner_id, slugify(title)):
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
            track_ids=[],
            revision=1,
            created_at=now,
            updated_at=now,
        )
        try:
            with writes.transaction() as tx:
                tx.save(album, condition=AlbumModel.pk.does_not_exist())
                tx.save(_claim(owner_id, candidate.slug, album_id), condition=AlbumSlugModel.pk.does_not_exist())
        except TransactWriteError as error:
            reasons = writes.cancellation_reasons(error)
            if len(reasons) < 2 or reasons[1] not in ("ConditionalCheckFailed", "TransactionConflict"):
                raise
            if converge and (winner := _titled(owner_id, _holder(owner_id, candidate.slug), title)) is not None:
                return winner
            continue  # someone took this slug since we looked: the next one
        return album
    raise AssertionError("unreachable: _candidates raises when it runs out")


def _holder(owner_id: str, slug: str) -> str | None:
    try:
        claim = AlbumSlugModel.get(AlbumSlugModel.key(owner_id, slug), AlbumSlugModel.SLUG_SK, consistent_read=True)
    except DoesNotExist:
        return None
    return str(claim.album_id)


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
    base = slugify(title)
    if base == slugify(album.title):
        # Same slug base ("Foo" -> "FOO!"): the album keeps its slug, suffix included.
        return writes.update_if(AlbumModel(album.pk, AlbumModel.ALBUM_SK), actions, unchanged)
    for candidate in _candidates(album.owner_id, base):
        if candidate.slug == album.slug:
            return writes.update_if(AlbumModel(album.pk, AlbumModel.ALBUM_SK), actions, unchanged)
        if candidate.holder is not None and candidate.holder != album.pk:
            continue
        held = set(album.slugs or {album.slug}) | {candidate.slug}
        released = sorted(held - {candidate.slug, album.slug})[: max(0, len(held) - MAX_SLUG_HISTORY)]
        try:
            with writes.transaction() as tx:
                tx.update(
                    album,
                    actions=[*actions, AlbumModel.slug.set(candidate.slug), AlbumModel.slugs.set(held - set(released))],
                    condition=unchanged,
                )
                # Free, or a slug this album held before (renaming back takes it again).
                tx.save(
                    _claim(album.owner_id, candidate.slug, album.pk),
                    condition=AlbumSlugModel.pk.does_not_exist() | (AlbumSlugModel.album_id == album.pk),
                )
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
        except TransactWriteError as error:
            reasons = writes.cancellation_reasons(error)
            if reasons and reasons[0] in ("ConditionalCheckFailed", "TransactionConflict"):
                return False
            if len(reasons) > 1 and reasons[1] in ("ConditionalCheckFailed", "TransactionConflict"):
                continue
            raise
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


def check_room(album: AlbumModel) -> None:
    """Refuses early (AlbumFull) what ``add_track`` would refuse later: an intent names its album
    long before its track joins it at finalize."""
    if len(_order(album)) >= MAX_TRACKS:
        raise AlbumFull(f"An album holds at most {MAX_TRACKS} tracks.", limit=MAX_TRACKS)


def add_track(album_id: str, track_id: str) -> None:
    """Appends ``track_id`` to the album's order (atomic list_append, a no-op if it is there).
    Concurrent appends are applied one after another by DynamoDB, so the order is the order in
    which they landed. Raises AlbumNotFound when the album is gone, AlbumFull at MAX_TRACKS."""
    item = AlbumModel(album_id, AlbumModel.ALBUM_SK)
    for _ in range(MAX_ATTEMPTS):
        try:
            item.update(
                actions=[
                    AlbumModel.track_ids.set((AlbumModel.track_ids | []).append([track_id])),
                    AlbumModel.revision.add(1),
                    AlbumModel.updated_at.set(utcnow()),
                ],
                condition=AlbumModel.pk.exists()
                & ~AlbumModel.track_ids.contains(Value(track_id))
                & (AlbumModel.track_ids.does_not_exist() | (size(AlbumModel.track_ids) < MAX_TRACKS)),  # type: ignore[no-untyped-call]
            )
            return
        except UpdateError as error:
            if not condition_failed(error):
                raise
        # Which part of the condition failed decides the answer; the write itself stays atomic.
        album = find(album_id)
        if album is None:
            raise AlbumNotFound("No such album.")
        if track_id in _order(album):
            return
        if len(_order(album)) >= MAX_TRACKS:
            raise AlbumFull(f"An album holds at most {MAX_TRACKS} tracks.", limit=MAX_TRACKS)
    raise AlbumChanged("The album kept changing while the track was added; try again.")


# Placing a track rewrites the whole list conditional on the revision read: tracks of one session
# finalized at the same moment retry each other out, so it gets more attempts (with a jittered wait)
# than the single-attribute writes above.
MAX_PLACE_ATTEMPTS = 25
PLACE_BACKOFF_S = 0.01


def _order_tuple(key: Any) -> tuple[Any, ...]:
    return tuple(key)


def place_track(album_id: str, track_id: str, order_key: list[Any]) -> None:
    """Inserts ``track_id`` before the first track of the album whose order key is greater than
    ``order_key`` (appends when there is none): tracks placed this way stay sorted by their keys
    whatever order they are placed in, and tracks added without a key keep their places. DynamoDB
    cannot insert into a list, so the new list (and the keys beside it) is written whole,
    conditional on the album's revision being the one read, and retried. A no-op if the track is
    there already. Raises AlbumNotFound, AlbumFull, or AlbumChanged when the retries run out."""
    wanted = _order_tuple(order_key)
    for attempt in range(MAX_PLACE_ATTEMPTS):
        album = find(album_id)
        if album is None:
            raise AlbumNotFound("No such album.")
        order = _order(album)
        if track_id in order:
            return
        if len(order) >= MAX_TRACKS:
            raise AlbumFull(f"An album holds at most {MAX_TRACKS} tracks.", limit=MAX_TRACKS)
        known: dict[str, Any] = dict(album.track_order_keys or {})
        position = next(
            (i for i, tid in enumerate(order) if tid in known and _order_tuple(known[tid]) > wanted), len(order)
        )
        placed = [*order[:position], track_id, *order[position:]]
        # Keys of tracks that left the album are dropped here, so the map stays bounded by the list.
        keys_kept = {tid: known[tid] for tid in placed if tid in known} | {track_id: order_key}
        try:
            AlbumModel(album_id, AlbumModel.ALBUM_SK).update(
                actions=[
                    AlbumModel.track_ids.set(placed),  # type: ignore[arg-type]  # stubs want attributes
                    AlbumModel.track_order_keys.set(keys_kept),
                    AlbumModel.revision.add(1),
                    AlbumModel.updated_at.set(utcnow()),
                ],
                condition=AlbumModel.revision == album.revision,
            )
            return
        except UpdateError as error:
            if not condition_failed(error):
                raise
        time.sleep(random.uniform(0, PLACE_BACKOFF_S * (attempt + 1)))  # noqa: S311 -- jitter, not a secret
    raise AlbumChanged("The album kept changing while the track was placed; try again.")


def remove_track(album_id: str, track_id: str) -> bool:
    """Takes ``track_id`` out of the album's order; False when it was not in it. Idempotent.
    DynamoDB removes list elements by index only, so the removal is conditional on the element at
    that index still being this track (a concurrent removal may have shifted it)."""
    for _ in range(MAX_ATTEMPTS):
        album = find(album_id)
        order = _order(album) if album else []
        if track_id not in order:
            return False
        index = order.index(track_id)
        try:
            AlbumModel(album_id, AlbumModel.ALBUM_SK).update(
                actions=[
                    AlbumModel.track_ids[index].remove(),
                    AlbumModel.revision.add(1),
                    AlbumModel.updated_at.set(utcnow()),
                ],
                condition=AlbumModel.track_ids[index] == track_id,
            )
            return True
        except UpdateError as error:
            if not condition_failed(error):
                raise
    raise AlbumChanged("The album kept changing while the track was removed; try again.")


def _orphan(track_id: str, album_id: str) -> bool:
    """Clears the track's album (the id and the title mirrored beside it, as a track move does)
    unless it has moved to another album meanwhile."""
    try:
        TrackModel(track_id, TrackModel.TRACK_SK).update(
            actions=[TrackModel.album_id.remove(), TrackModel.album.remove(), TrackModel.updated_at.set(utcnow())],
            condition=TrackModel.album_id == album_id,
        )
    except UpdateError as error:
        if condition_failed(error):
            return False
        raise
    return True


def orphan_track(owner_id: str, album_id: str, track_id: str) -> None:
    """Takes the track out of the album and leaves it standalone. Idempotent: both steps are
    no-ops once done, and repeating the call finishes a half-done one."""
    get_owned(album_id, owner_id)
    remove_track(album_id, track_id)
    _orphan(track_id, album_id)


def delete(owner_id: str, album_id: str, *, delete_track: Callable[[str], object] | None) -> Deleted:
    """Deletes the album and every slug claim it holds. Its tracks are orphaned, or, given
    ``delete_track`` (the cascade, ``functions.domain.removal.deletion``), deleted with it. The
    album goes last, conditional on the revision read after the tracks were handled, so a track
    added meanwhile is never left pointing at a deleted album: the loop handles it first."""
    handled: set[str] = set()
    for _ in range(MAX_ATTEMPTS):
        album = get_owned(album_id, owner_id)
        pending = [tid for tid in dict.fromkeys(_order(album)) if tid not in handled]
        if pending:
            for track_id in pending:
                if delete_track is not None:
                    # Already deleted, or never the owner's: nothing of it to delete.
                    with contextlib.suppress(TrackNotFound):
                        delete_track(track_id)
                else:
                    _orphan(track_id, album_id)
                handled.add(track_id)
            continue  # re-read: handling tracks may have changed the album (and its revision)
        for slug in (album.slugs or set()) - {album.slug}:
            try:
                AlbumSlugModel(AlbumSlugModel.key(owner_id, slug), AlbumSlugModel.SLUG_SK).delete(
                    condition=AlbumSlugModel.album_id == album_id
                )
            except DeleteError as error:
                if not condition_failed(error):  # the claim is already gone or someone else's
                    raise
        try:
            with writes.transaction() as tx:
                tx.delete(album, condition=AlbumModel.revision == album.revision)
                tx.delete(
                    AlbumSlugModel(AlbumSlugModel.key(owner_id, album.slug), AlbumSlugModel.SLUG_SK),
                    condition=AlbumSlugModel.pk.does_not_exist() | (AlbumSlugModel.album_id == album_id),
                )
        except TransactWriteError as error:
            if {"ConditionalCheckFailed", "TransactionConflict"} & set(writes.cancellation_reasons(error)):
                continue
            raise
        # Its cover: the rendered variants and the uploaded image.
        storage.delete_prefix(keys.album_prefix(album_id))
        cover = album.image_source or {}
        if cover.get("origin") == "upload" and cover.get("key"):
            storage.delete(cover["key"])
        return Deleted(album_id, delete_track is not None, len(handled))
    raise AlbumChanged("The album kept changing while it was being deleted; try again.")
