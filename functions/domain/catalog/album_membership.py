"""Album membership: a track joining an album (appended, or placed by an order key), leaving it,
the album's track order, and an explicit reorder.

Each track of an album is one small item (``AlbumMemberModel``, keyed by the track) in the album's
partition. A join is one transaction of two writes whatever the album holds: the member item,
put only if it is not there (a repeated join is a no-op), and the album item, whose
``track_count`` must stay below ``MAX_TRACKS`` and whose ``revision`` (the ETag) moves. The order
is each member's ``position``: appends take one from the clock, so they need no read of the album;
placing by an order key reads the members to find the neighbours and takes a position between
theirs, conditional on the album's revision, so that placements racing each other take turns.

Albums written before the member items keep their order in ``track_ids`` until their first
membership change moves it into member items (``_migrate``); until then that list is their order.
"""

from __future__ import annotations

import contextlib
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

from pynamodb.expressions.condition import size

from functions.data import reads, writes
from functions.data.models import AlbumMemberModel, AlbumModel, TrackModel, utcnow
from functions.errors import AlbumChanged, AlbumFull, AlbumNotFound, InvalidAlbum

# Bounds what an album page reads (one Query of the members, one BatchGetItem per 100 tracks).
MAX_TRACKS = 1000
# Joins and removals retry this often (a concurrent transaction on the album item, a migration).
MAX_ATTEMPTS = 10
# Positions are microseconds scaled by SPACING: room for 24 halvings between two tracks appended
# one microsecond apart before a placement has to spread the album's positions out again.
SPACING = 2**24
# Backoff between attempts that lost a race (full jitter): up to 0.01, 0.02, 0.04 ... 0.5 s. Every
# join also writes the album item, so joins at the same moment conflict in DynamoDB (a transaction
# finds another in progress on the item) and take turns this way.
BACKOFF_S = 0.01
MAX_BACKOFF_S = 0.5


def _now_position() -> int:
    return time.time_ns() // 1000 * SPACING


def _find(album_id: str) -> AlbumModel | None:
    return reads.get_or_none(AlbumModel, album_id, AlbumModel.ALBUM_SK, consistent_read=True)


def _wait(attempt: int) -> None:
    time.sleep(random.uniform(0, min(MAX_BACKOFF_S, BACKOFF_S * 2**attempt)))  # noqa: S311 -- jitter, not a secret


def _is_legacy(album: AlbumModel) -> bool:
    """Written before member items: no count, its order in ``track_ids``."""
    return album.track_count is None


def _has_list(album: AlbumModel) -> bool:
    """A legacy album, or one that an older version of this code appended to after it moved to
    member items (while a deployment replaces the functions): either is migrated on its next
    membership change."""
    return album.track_ids is not None


@dataclass(frozen=True)
class Member:
    track_id: str
    position: int
    order_key: Any


def _member_items(album_id: str) -> list[AlbumMemberModel]:
    return list(
        AlbumMemberModel.query(album_id, AlbumMemberModel.sk.startswith(AlbumMemberModel.PREFIX), consistent_read=True)
    )


def members(album: AlbumModel) -> list[Member]:
    """The album's members in order (position, then track id). One Query: an album has at most
    MAX_TRACKS member items, about a hundred bytes each. A member's position is the one the
    album's last completed reorder gave it, if it was there then, else the one it joined with."""
    found = []
    for item in _member_items(album.pk):
        reordered = item.reorder_generation is not None and item.reorder_generation == album.order_generation
        position = item.reorder_position if reordered else item.position
        found.append(Member(item.track_id, int(position), item.order_key))
    return sorted(found, key=lambda member: (member.position, member.track_id))


def _listed(album: AlbumModel) -> list[str]:
    return list(dict.fromkeys(str(track_id) for track_id in album.track_ids or []))


def track_order(album: AlbumModel) -> list[str]:
    """The album's track ids in order: its members, or the list of a legacy album (and after the
    members, what an older version appended to the list)."""
    if _is_legacy(album):
        return _listed(album)
    order = [member.track_id for member in members(album)]
    joined = set(order)
    return order + [track_id for track_id in _listed(album) if track_id not in joined]


def track_count(album: AlbumModel) -> int:
    """How many tracks the album holds (counted by the album item: no read of its members)."""
    if _is_legacy(album):
        return len(_listed(album))
    return int(album.track_count) + len(_listed(album))


def check_room(album: AlbumModel) -> None:
    """Refuses early (AlbumFull) what ``add_track`` would refuse later: an intent names its album
    long before its track joins it at finalize."""
    if track_count(album) >= MAX_TRACKS:
        raise _full()


def _full() -> AlbumFull:
    return AlbumFull(f"An album holds at most {MAX_TRACKS} tracks.", limit=MAX_TRACKS)


def _member_key(album_id: str, track_id: str) -> AlbumMemberModel:
    return AlbumMemberModel(album_id, AlbumMemberModel.sort_key(track_id))


def _is_member(album_id: str, track_id: str) -> bool:
    return (
        reads.get_or_none(AlbumMemberModel, album_id, AlbumMemberModel.sort_key(track_id), consistent_read=True)
        is not None
    )


def _track_list_changed() -> list[Any]:
    return [AlbumModel.revision.add(1), AlbumModel.track_list_revision.add(1), AlbumModel.updated_at.set(utcnow())]


def _join(
    album_id: str, track_id: str, position: int, order_key: Any, condition: Any = None, *, migrating: bool = False
) -> bool:
    """One attempt: the member item and the album's count in one transaction. True when the track
    joined now; False when it was refused or lost a race (the caller finds out which)."""
    member = AlbumMemberModel(album_id, AlbumMemberModel.sort_key(track_id), position=position, order_key=order_key)
    # The count is absent on a legacy album: refused, then migrated.
    room = AlbumModel.pk.exists() & (AlbumModel.track_count < MAX_TRACKS)
    if not migrating:
        room &= AlbumModel.track_ids.does_not_exist()
    with writes.conditional_transaction(conflicts=True) as tx:
        tx.save(member, condition=AlbumMemberModel.pk.does_not_exist())
        tx.update(
            AlbumModel(album_id, AlbumModel.ALBUM_SK),
            actions=[AlbumModel.track_count.add(1), *_track_list_changed()],
            condition=room & condition if condition is not None else room,
        )
    return tx.committed


def _after_refusal(album_id: str, track_id: str) -> AlbumModel | None:
    """Why a join was refused, answered: the album is gone (AlbumNotFound) or full (AlbumFull);
    it is a legacy album (migrated here: the caller tries again); None when the track is already
    a member; otherwise the album as it is now (a race: the caller tries again)."""
    album = _find(album_id)
    if album is None:
        raise AlbumNotFound("No such album.")
    if _has_list(album):
        if track_id in track_order(album):
            return None
        _migrate(album_id)
        return album
    if _is_member(album_id, track_id):
        return None
    if track_count(album) >= MAX_TRACKS:
        raise _full()
    return album


def add_track(album_id: str, track_id: str) -> None:
    """Appends ``track_id`` to the album (a no-op if it is there). Concurrent appends each land
    once, ordered by the moment they were made. Raises AlbumNotFound when the album is gone,
    AlbumFull at MAX_TRACKS."""
    for attempt in range(MAX_ATTEMPTS):
        if _join(album_id, track_id, _now_position(), None):
            return
        if _after_refusal(album_id, track_id) is None:
            return
        _wait(attempt)
    raise AlbumChanged("The album kept changing while the track was added; try again.")


# Placements are conditional on the album's revision, so placements at the same moment retry each
# other out: more attempts than a join.
MAX_PLACE_ATTEMPTS = 25


def _order_tuple(key: Any) -> tuple[Any, ...]:
    return tuple(key)


def place_track(album_id: str, track_id: str, order_key: list[Any]) -> None:
    """Inserts ``track_id`` before the first track of the album whose order key is greater than
    ``order_key`` (appends when there is none): tracks placed this way stay sorted by their keys
    whatever order they are placed in, and tracks added without a key keep their places. Only the
    new member item and the album's count are written, conditional on the album's revision being
    the one read with the neighbours. A no-op if the track is there already. Raises AlbumNotFound,
    AlbumFull, or AlbumChanged when the retries run out."""
    wanted = _order_tuple(order_key)
    for attempt in range(MAX_PLACE_ATTEMPTS):
        album = _find(album_id)
        if album is None:
            raise AlbumNotFound("No such album.")
        if _has_list(album):
            if track_id in track_order(album):
                return
            _migrate(album_id)
            continue
        current = members(album)
        if any(member.track_id == track_id for member in current):
            return
        if track_count(album) >= MAX_TRACKS:
            raise _full()
        if _reordering(album):
            # Its positions are about to change: wait for the reorder to finish.
            _wait(attempt)
            continue
        index = next(
            (
                i
                for i, member in enumerate(current)
                if member.order_key is not None and _order_tuple(member.order_key) > wanted
            ),
            len(current),
        )
        position = _between(current, index)
        if position is None:
            # No integer left between the neighbours: spread the album out, then place again.
            with contextlib.suppress(AlbumChanged):
                _spread_out(album, current)
            continue
        # A reorder that started (or a spreading out that ended) since the read gives the
        # neighbours other places.
        unchanged = (AlbumModel.revision == album.revision) & _not_reordering() & _same_generation(album)
        if _join(album_id, track_id, position, order_key, unchanged):
            return
        if _after_refusal(album_id, track_id) is None:
            return
        _wait(attempt)
    raise AlbumChanged("The album kept changing while the track was placed; try again.")


def _between(current: list[Member], index: int) -> int | None:
    """A position after ``current[index - 1]`` and before ``current[index]``; None when there is
    no room between them."""
    before = current[index - 1].position if index > 0 else None
    after = current[index].position if index < len(current) else None
    if after is None:
        return max(_now_position(), before + SPACING) if before is not None else _now_position()
    if before is None:
        return after - SPACING
    return (before + after) // 2 if after - before >= 2 else None


def _spread_out(album: AlbumModel, current: list[Member]) -> None:
    """Gives the members evenly spaced positions in their current order (the visible order does
    not change, so neither does the revision)."""
    _write_positions(album, dict(zip((m.track_id for m in current), _spaced(len(current)), strict=True)), bump=False)


def _spaced(count: int) -> list[int]:
    """``count`` positions SPACING apart, the last one now: tracks appended later come after."""
    last = _now_position()
    return [last - (count - 1 - i) * SPACING for i in range(count)]


def remove_track(album_id: str, track_id: str) -> bool:
    """Takes ``track_id`` out of the album; False when it was not in it. Idempotent."""
    member = _member_key(album_id, track_id)
    for attempt in range(MAX_ATTEMPTS):
        with writes.conditional_transaction(conflicts=True) as tx:
            tx.delete(member, condition=AlbumMemberModel.pk.exists())
            tx.update(
                AlbumModel(album_id, AlbumModel.ALBUM_SK),
                actions=[AlbumModel.track_count.add(-1), *_track_list_changed()],
                condition=AlbumModel.pk.exists() & AlbumModel.track_ids.does_not_exist(),
            )
        if tx.committed:
            return True
        album = _find(album_id)
        if album is None:
            # A member left behind by an album deleted meanwhile is nobody's: it goes too.
            writes.delete_if(member, AlbumMemberModel.pk.exists())
            return False
        if _has_list(album):
            if track_id not in track_order(album):
                return False
            _migrate(album_id)
            continue
        if not _is_member(album_id, track_id):
            return False
        _wait(attempt)
    raise AlbumChanged("The album kept changing while the track was removed; try again.")


def reorder(album_id: str, track_ids: list[str], *, expected_revision: int | None = None) -> None:
    """Puts the album's tracks in the order ``track_ids`` (each of the album's tracks exactly once;
    InvalidAlbum otherwise). With ``expected_revision`` (the ETag the caller read), an album that
    changed since is refused with AlbumChanged. Readers see the old order until the new one is
    complete, then the new one (``_write_positions``)."""
    album = _find(album_id)
    if album is None:
        raise AlbumNotFound("No such album.")
    if expected_revision is not None and int(album.revision) != expected_revision:
        raise AlbumChanged("The album changed since it was read; read it again.")
    if _has_list(album):
        _migrate(album_id)
        album = _find(album_id)
        if album is None:
            raise AlbumNotFound("No such album.")
    current = [member.track_id for member in members(album)]
    if len(set(track_ids)) != len(track_ids) or set(track_ids) != set(current):
        raise InvalidAlbum("A new order names each of the album's tracks exactly once.", field="trackIds")
    if track_ids == current:
        return
    _write_positions(album, dict(zip(track_ids, _spaced(len(track_ids)), strict=True)), bump=True)


# How long a reorder holds its album; one that stopped halfway (a crash, a timeout) holds it no
# longer than this. A thousand positions take ten transactions.
REORDER_LEASE_S = 60


def _reordering(album: AlbumModel) -> bool:
    return album.reordering is not None and float(album.reordering_until or 0) > time.time()


def _not_reordering() -> Any:
    return AlbumModel.reordering.does_not_exist() | (AlbumModel.reordering_until < int(time.time()))


def _same_generation(album: AlbumModel) -> Any:
    if album.order_generation is None:
        return AlbumModel.order_generation.does_not_exist()
    return AlbumModel.order_generation == album.order_generation


def _write_positions(album: AlbumModel, positions: dict[str, int], *, bump: bool) -> None:
    """Gives members new places without a reader ever seeing half of them. Holding the album
    (conditional on it being unchanged since ``album`` was read, and not held by another reorder;
    AlbumChanged otherwise), it writes each member's new place beside its current one under a new
    token, in transactions of 99 that each check the hold is still this one's, and finally makes
    that token the album's ``order_generation`` in one write (moving the revision with ``bump``).
    The places of the previous reorder are first copied into ``position``, so that a member's
    ``position`` is its place until the switch. Members that leave meanwhile are skipped; tracks
    that join meanwhile are appended after the new places."""
    token = uuid.uuid4().hex
    item = AlbumModel(album.pk, AlbumModel.ALBUM_SK)
    if not writes.update_if(
        item,
        [AlbumModel.reordering.set(token), AlbumModel.reordering_until.set(int(time.time()) + REORDER_LEASE_S)],
        # The generation too: spreading positions out switches it without moving the revision.
        (AlbumModel.revision == album.revision) & _not_reordering() & _same_generation(album),
    ):
        raise AlbumChanged("The album changed, or is being reordered, since it was read; try again.")
    updates: dict[str, list[Any]] = {}
    for member in _member_items(album.pk):
        if (
            member.reorder_generation is not None
            and member.reorder_generation == album.order_generation
            and member.reorder_position != member.position
        ):
            updates[member.track_id] = [AlbumMemberModel.position.set(member.reorder_position)]
    for track_id, position in positions.items():
        updates.setdefault(track_id, []).extend(
            [AlbumMemberModel.reorder_position.set(position), AlbumMemberModel.reorder_generation.set(token)]
        )
    _update_members(album.pk, list(updates.items()), token)
    held = AlbumModel.reordering == token
    switch = [
        AlbumModel.order_generation.set(token),
        AlbumModel.reordering.remove(),
        AlbumModel.reordering_until.remove(),
    ]
    if not writes.update_if(item, [*switch, *(_track_list_changed() if bump else [])], held):
        raise AlbumChanged("The album was taken over while its tracks were reordered; try again.")


def _update_members(album_id: str, updates: list[tuple[str, list[Any]]], token: str) -> None:
    """Applies each member's actions, in transactions that also check the album is still held
    under ``token``: AlbumChanged when it is not. A member that left the album meanwhile is left
    out."""
    step = writes.MAX_TRANSACTION_ITEMS - 1
    for start in range(0, len(updates), step):
        chunk = updates[start : start + step]
        for attempt in range(MAX_ATTEMPTS):
            with writes.conditional_transaction(conflicts=True) as tx:
                tx.condition_check(AlbumModel, album_id, AlbumModel.ALBUM_SK, condition=AlbumModel.reordering == token)
                for track_id, actions in chunk:
                    tx.update(_member_key(album_id, track_id), actions=actions, condition=AlbumMemberModel.pk.exists())
            if tx.committed:
                break
            now = _find(album_id)
            if now is None or now.reordering != token:
                raise AlbumChanged("The album was taken over while its tracks were reordered; try again.")
            still = {member.track_id for member in _member_items(album_id)}
            chunk = [(track_id, actions) for track_id, actions in chunk if track_id in still]
            _wait(attempt)
        else:
            raise AlbumChanged("The album kept changing while its tracks were reordered; try again.")


def _migrate(album_id: str) -> None:
    """Moves an album's ``track_ids`` into member items. A legacy album's list (and the order keys
    beside it) becomes member items in the same order, then the list goes and the count is set,
    conditional on the album not having changed since it was read; the revision does not move
    (its tracks and their order stay what they were). Safe to repeat and to race: member puts are
    idempotent, members of tracks no longer in the list are deleted, and only one of racing
    migrations drops the list. On an album already of member items, what an older version
    appended to the list joins it as appends (a full album leaves them out)."""
    for attempt in range(MAX_ATTEMPTS):
        album = _find(album_id)
        if album is None or not _has_list(album):
            return
        listed = _listed(album)
        keys: dict[str, Any] = dict(album.track_order_keys or {})
        drop_list = [AlbumModel.track_ids.remove(), AlbumModel.track_order_keys.remove()]
        if _is_legacy(album):
            writes.put_all(
                [
                    AlbumMemberModel(
                        album_id,
                        AlbumMemberModel.sort_key(track_id),
                        position=(n + 1) * SPACING,
                        order_key=keys.get(track_id),
                    )
                    for n, track_id in enumerate(listed)
                ]
            )
            writes.delete_all([member for member in _member_items(album_id) if member.track_id not in set(listed)])
            done = writes.update_if(
                AlbumModel(album_id, AlbumModel.ALBUM_SK),
                [*drop_list, AlbumModel.track_count.set(len(listed))],
                (AlbumModel.revision == album.revision) & AlbumModel.track_count.does_not_exist(),
            )
        else:
            for track_id in listed:
                if not _is_member(album_id, track_id):
                    _join(album_id, track_id, _now_position(), keys.get(track_id), migrating=True)
            # An older version only appends, inserts or removes one at a time: the same length is
            # the same list.
            done = writes.update_if(
                AlbumModel(album_id, AlbumModel.ALBUM_SK),
                drop_list,
                size(AlbumModel.track_ids) == len(album.track_ids or []),  # type: ignore[no-untyped-call]
            )
        if done:
            return
        _wait(attempt)
    raise AlbumChanged("The album kept changing while its track list was migrated; try again.")


def clear_album(track_id: str, album_id: str) -> bool:
    """Clears the track's album (the id and the title mirrored beside it, as a track move does)
    unless it has moved to another album meanwhile."""
    return writes.update_if(
        TrackModel(track_id, TrackModel.TRACK_SK),
        [TrackModel.album_id.remove(), TrackModel.album.remove(), TrackModel.updated_at.set(utcnow())],
        TrackModel.album_id == album_id,
    )


def drop_members(album_id: str) -> None:
    """Deletes the member items of a deleted album."""
    writes.delete_all(list(_member_items(album_id)))
