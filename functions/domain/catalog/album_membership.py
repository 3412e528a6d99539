"""Album membership: a track joining an album (appended, or placed by an order key), leaving it,
and the album's track order. Each write is one conditional UpdateItem on the album item, retried
when a concurrent change moved what it was conditional on.
"""

from __future__ import annotations

import random
import time
from typing import Any

from pynamodb.expressions.condition import size
from pynamodb.expressions.operand import Value

from functions.data import reads, writes
from functions.data.models import AlbumModel, TrackModel, utcnow
from functions.errors import AlbumChanged, AlbumFull, AlbumNotFound

# Bounds the album item (DynamoDB items stop at 400 KB) and the reads of a public album page.
MAX_TRACKS = 1000
# Single-attribute writes retry this often before giving up.
MAX_ATTEMPTS = 5


def track_order(album: AlbumModel) -> list[str]:
    """The album's track ids in order (stored as a list of strings)."""
    return [str(track_id) for track_id in album.track_ids or []]


def _find(album_id: str) -> AlbumModel | None:
    return reads.get_or_none(AlbumModel, album_id, AlbumModel.ALBUM_SK, consistent_read=True)


def check_room(album: AlbumModel) -> None:
    """Refuses early (AlbumFull) what ``add_track`` would refuse later: an intent names its album
    long before its track joins it at finalize."""
    if len(track_order(album)) >= MAX_TRACKS:
        raise AlbumFull(f"An album holds at most {MAX_TRACKS} tracks.", limit=MAX_TRACKS)


def add_track(album_id: str, track_id: str) -> None:
    """Appends ``track_id`` to the album's order (atomic list_append, a no-op if it is there).
    Concurrent appends are applied one after another by DynamoDB, so the order is the order in
    which they landed. Raises AlbumNotFound when the album is gone, AlbumFull at MAX_TRACKS."""
    item = AlbumModel(album_id, AlbumModel.ALBUM_SK)
    for _ in range(MAX_ATTEMPTS):
        if writes.update_if(
            item,
            [
                AlbumModel.track_ids.set((AlbumModel.track_ids | []).append([track_id])),
                AlbumModel.revision.add(1),
                AlbumModel.updated_at.set(utcnow()),
            ],
            AlbumModel.pk.exists()
            & ~AlbumModel.track_ids.contains(Value(track_id))
            & (AlbumModel.track_ids.does_not_exist() | (size(AlbumModel.track_ids) < MAX_TRACKS)),  # type: ignore[no-untyped-call]
        ):
            return
        # Which part of the condition failed decides the answer; the write itself stays atomic.
        album = _find(album_id)
        if album is None:
            raise AlbumNotFound("No such album.")
        if track_id in track_order(album):
            return
        if len(track_order(album)) >= MAX_TRACKS:
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
        album = _find(album_id)
        if album is None:
            raise AlbumNotFound("No such album.")
        order = track_order(album)
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
        if writes.update_if(
            AlbumModel(album_id, AlbumModel.ALBUM_SK),
            [
                AlbumModel.track_ids.set(placed),  # type: ignore[arg-type]  # stubs want attributes
                AlbumModel.track_order_keys.set(keys_kept),
                AlbumModel.revision.add(1),
                AlbumModel.updated_at.set(utcnow()),
            ],
            AlbumModel.revision == album.revision,
        ):
            return
        time.sleep(random.uniform(0, PLACE_BACKOFF_S * (attempt + 1)))  # noqa: S311 -- jitter, not a secret
    raise AlbumChanged("The album kept changing while the track was placed; try again.")


def remove_track(album_id: str, track_id: str) -> bool:
    """Takes ``track_id`` out of the album's order; False when it was not in it. Idempotent.
    DynamoDB removes list elements by index only, so the removal is conditional on the element at
    that index still being this track (a concurrent removal may have shifted it)."""
    for _ in range(MAX_ATTEMPTS):
        album = _find(album_id)
        order = track_order(album) if album else []
        if track_id not in order:
            return False
        index = order.index(track_id)
        if writes.update_if(
            AlbumModel(album_id, AlbumModel.ALBUM_SK),
            [AlbumModel.track_ids[index].remove(), AlbumModel.revision.add(1), AlbumModel.updated_at.set(utcnow())],
            AlbumModel.track_ids[index] == track_id,
        ):
            return True
    raise AlbumChanged("The album kept changing while the track was removed; try again.")


def clear_album(track_id: str, album_id: str) -> bool:
    """Clears the track's album (the id and the title mirrored beside it, as a track move does)
    unless it has moved to another album meanwhile."""
    return writes.update_if(
        TrackModel(track_id, TrackModel.TRACK_SK),
        [TrackModel.album_id.remove(), TrackModel.album.remove(), TrackModel.updated_at.set(utcnow())],
        TrackModel.album_id == album_id,
    )
