"""Album membership as one item per (album, track) (issue 18 step 2), against moto: joins that
each land once and cost the same whatever the album holds, placement by session order keys,
removal, reorder, the bound, albums written before member items, and the sharded album listing."""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from functions import ids
from functions.data import writes
from functions.data.models import AlbumMemberModel, AlbumModel, shared_connection, utcnow
from functions.data.schema import table_specs
from functions.domain.catalog import album_membership, albums
from functions.domain.intake import sessions
from functions.errors import AlbumChanged, AlbumFull, InvalidAlbum
from local.write_cost import Bill, WriteMeter

from .conftest import Stack, _harness_client, as_user
from .test_albums import make_track


def new_album(owner: str, title: str) -> str:
    return str(albums.create(owner, title).album.album_id)


def order(album_id: str) -> list[str]:
    album = albums.find(album_id)
    assert album is not None
    return album_membership.track_order(album)


def stored(album_id: str) -> AlbumModel:
    album = albums.find(album_id)
    assert album is not None
    return album


def seed(album_id: str, track_ids: list[str]) -> None:
    """Members as that many joins would leave them, written in bulk (moto copies every table for
    each transaction, so hundreds of joins would take a minute): for tests about what follows."""
    start = album_membership._now_position()
    writes.put_all(
        [
            AlbumMemberModel(
                album_id, AlbumMemberModel.sort_key(track_id), position=start + n * album_membership.SPACING
            )
            for n, track_id in enumerate(track_ids)
        ]
    )
    AlbumModel(album_id, AlbumModel.ALBUM_SK).update(
        actions=[
            AlbumModel.track_count.add(len(track_ids)),
            AlbumModel.revision.add(1),
            AlbumModel.track_list_revision.add(1),
        ]
    )


def test_twenty_concurrent_joins_each_land_exactly_once(stack: Stack, artist: str) -> None:
    # Given an album, and twenty tracks joining it at once, each join sent twice (a retry)
    album_id = new_album(artist, "Crowded")
    joining = [ids.new_id() for _ in range(20)]

    def join(track_id: str) -> None:
        album_membership.add_track(album_id, track_id)
        album_membership.add_track(album_id, track_id)

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(join, joining))

    # Then each is there once, counted once, and each join moved the revision once
    assert sorted(order(album_id)) == sorted(joining)
    assert len(list(AlbumMemberModel.query(album_id, AlbumMemberModel.sk.startswith("member#")))) == 20
    album = stored(album_id)
    assert (album.track_count, album.revision) == (20, 21)


def test_session_tracks_placed_out_of_order_end_sorted_around_loose_ones(stack: Stack, artist: str) -> None:
    # Given an album with a track added without a key, then session tracks placed in shuffled order
    album_id = new_album(artist, "Session")
    album_membership.add_track(album_id, "loose")
    keys = {f"t{n}": sessions.order_key(str(n), None, "2024-01-01T00:00:00", f"t{n}") for n in range(1, 9)}
    for name in ["t5", "t2", "t8", "t1", "t7", "t3", "t6", "t4"]:
        album_membership.place_track(album_id, name, keys[name])
    album_membership.add_track(album_id, "late")
    album_membership.place_track(album_id, "t0", sessions.order_key("0", None, "2024-01-01T00:00:00", "t0"))

    # Then the keyed tracks are in key order, the loose one kept its place, the late one is last
    # but for t0, which sorts before every keyed track (and after the loose one, which is before)
    assert order(album_id) == ["loose", "t0", *keys, "late"]


def test_placing_into_a_gap_with_no_room_spreads_the_album_out(stack: Stack, artist: str, monkeypatch) -> None:
    # Given positions so close that a few placements between the same neighbours exhaust them
    # (a clock that moves four units a reading)
    monkeypatch.setattr(album_membership, "SPACING", 4)
    clock = itertools.count(0, 4)
    monkeypatch.setattr(album_membership, "_now_position", lambda: next(clock))
    album_id = new_album(artist, "Tight")
    album_membership.add_track(album_id, "first")
    album_membership.place_track(album_id, "last", sessions.order_key("99", None, "2024", "last"))
    revision = stored(album_id).revision
    names = [f"k{n:02d}" for n in range(1, 9)]
    # When each placement lands right after "first" (before every keyed track placed so far)
    for name in reversed(names):
        album_membership.place_track(album_id, name, sessions.order_key(name[1:], None, "2024", name))
    # Then the order is right, and spreading out moved no revision: only the 8 joins did
    assert order(album_id) == ["first", *names, "last"]
    assert stored(album_id).revision == revision + len(names)


def _meter(stack: Stack, moto_endpoint: str) -> WriteMeter:
    settings = stack.resources.settings
    names = {getattr(settings, spec.settings_field): spec.logical_name for spec in table_specs()}
    return WriteMeter(shared_connection().client, _harness_client("dynamodb", moto_endpoint), names)


def _join_bill(stack: Stack, moto_endpoint: str, album_id: str) -> Bill:
    with _meter(stack, moto_endpoint) as meter:
        album_membership.add_track(album_id, ids.new_id())
    return meter.bill


def test_a_join_costs_the_same_whatever_the_album_holds(stack: Stack, artist: str, moto_endpoint: str) -> None:
    # Given an album of one track and one of 200
    small, large = new_album(artist, "Small"), new_album(artist, "Large")
    album_membership.add_track(small, ids.new_id())
    album_membership.add_track(large, ids.new_id())
    seed(large, [ids.new_id() for _ in range(199)])

    # When a track joins each
    into_small, into_large = _join_bill(stack, moto_endpoint, small), _join_bill(stack, moto_endpoint, large)

    # Then both are one transaction of two small items: the same requests and the same WCU
    assert into_small.writes() == into_large.writes() == Counter({"TransactWriteItems": 2})
    assert into_small.total == into_large.total
    assert into_large.by_table() == into_small.by_table()
    # Twice (a transaction) one KB for the member and one for the album item, and one KB on
    # by_owner, which projects every album attribute until a later release narrows it
    # (docs/migrations.md); the keys-only listing index is not written.
    assert into_large.base == 4
    assert into_large.by_index() == Counter({"by_owner": 1})
    assert into_large.total == 5


def test_a_removed_track_leaves_and_the_rest_keep_their_order(stack: Stack, artist: str) -> None:
    album_id = new_album(artist, "Leaving")
    tracks = [f"t{n}" for n in range(5)]
    for track_id in tracks:
        album_membership.add_track(album_id, track_id)
    revision = stored(album_id).revision

    assert album_membership.remove_track(album_id, "t2") is True
    assert album_membership.remove_track(album_id, "t2") is False  # idempotent

    assert order(album_id) == ["t0", "t1", "t3", "t4"]
    album = stored(album_id)
    assert (album.track_count, album.revision) == (4, revision + 1)


def test_reorder_puts_the_tracks_in_the_given_order_once(stack: Stack, artist: str) -> None:
    album_id = new_album(artist, "Reordered")
    tracks = [f"t{n}" for n in range(5)]
    for track_id in tracks:
        album_membership.add_track(album_id, track_id)
    revision = int(stored(album_id).revision)
    wanted = ["t3", "t0", "t4", "t1", "t2"]

    # A stale revision (the caller's ETag) is refused; a list that is not the album's too
    with pytest.raises(AlbumChanged):
        album_membership.reorder(album_id, wanted, expected_revision=revision - 1)
    with pytest.raises(InvalidAlbum):
        album_membership.reorder(album_id, [*wanted[:4], "stranger"])
    with pytest.raises(InvalidAlbum):
        album_membership.reorder(album_id, [*wanted, "t0"])
    album_membership.reorder(album_id, wanted, expected_revision=revision)

    assert order(album_id) == wanted
    assert stored(album_id).revision == revision + 1
    # Appended afterwards: after the reordered ones
    album_membership.add_track(album_id, "t5")
    assert order(album_id) == [*wanted, "t5"]


def test_reordering_an_album_bigger_than_one_transaction(stack: Stack, artist: str) -> None:
    album_id = new_album(artist, "Long")
    seed(album_id, [f"t{n:03d}" for n in range(150)])
    revision = int(stored(album_id).revision)

    wanted = list(reversed(order(album_id)))
    album_membership.reorder(album_id, wanted)

    assert order(album_id) == wanted
    assert stored(album_id).revision == revision + 1


def test_readers_see_the_old_order_until_a_long_reorder_is_complete(stack: Stack, artist: str, monkeypatch) -> None:
    # Given an album of 150 tracks (a reorder of two transactions of positions), reordered once
    # already (so the second reorder also settles the first one's places)
    album_id = new_album(artist, "Very long")
    seed(album_id, [f"t{n:03d}" for n in range(150)])
    first = list(reversed(order(album_id)))
    album_membership.reorder(album_id, first)
    assert order(album_id) == first
    # When it is reordered again while a reader reads after every transaction
    seen: list[list[str]] = []
    real = writes.conditional_transaction

    @contextlib.contextmanager
    def observed(**options: Any) -> Iterator[writes.ConditionalTransaction]:
        with real(**options) as tx:
            yield tx
        seen.append(order(album_id))

    monkeypatch.setattr(writes, "conditional_transaction", observed)
    second = sorted(first)
    album_membership.reorder(album_id, second)
    monkeypatch.undo()

    # Then every read before the last write saw the first order whole, and after it the second
    assert len(seen) == 2
    assert all(reading == first for reading in seen)
    assert order(album_id) == second


def test_placing_waits_for_a_reorder_and_a_stale_hold_expires(stack: Stack, artist: str, monkeypatch) -> None:
    monkeypatch.setattr(album_membership, "MAX_PLACE_ATTEMPTS", 2)
    monkeypatch.setattr(album_membership, "BACKOFF_S", 0)
    album_id = new_album(artist, "Held")
    for track_id in ("a", "b"):
        album_membership.add_track(album_id, track_id)
    # Given a reorder holding the album (one that crashed halfway, say)
    hold = AlbumModel(album_id, AlbumModel.ALBUM_SK)
    hold.update(actions=[AlbumModel.reordering.set("x"), AlbumModel.reordering_until.set(int(time.time()) + 60)])

    # Then a placement, which needs the neighbours' places, gives up; an append does not wait
    with pytest.raises(AlbumChanged):
        album_membership.place_track(album_id, "keyed", sessions.order_key("1", None, "2024", "keyed"))
    album_membership.add_track(album_id, "c")
    with pytest.raises(AlbumChanged):
        album_membership.reorder(album_id, ["c", "b", "a"])

    # And once the hold has expired, both go ahead
    hold.update(actions=[AlbumModel.reordering_until.set(int(time.time()) - 1)])
    album_membership.reorder(album_id, ["c", "b", "a"])
    album_membership.place_track(album_id, "keyed", sessions.order_key("1", None, "2024", "keyed"))
    assert order(album_id) == ["c", "b", "a", "keyed"]
    assert stored(album_id).reordering is None


def test_a_full_album_refuses_joins_racing_for_its_last_places(stack: Stack, artist: str, monkeypatch) -> None:
    monkeypatch.setattr(album_membership, "MAX_TRACKS", 3)
    album_id = new_album(artist, "Nearly full")
    album_membership.add_track(album_id, "first")
    outcomes: list[str] = []

    def join(track_id: str) -> None:
        try:
            album_membership.add_track(album_id, track_id)
            outcomes.append("joined")
        except AlbumFull as full:
            outcomes.append(full.code)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(join, [f"t{n}" for n in range(6)]))

    assert Counter(outcomes) == Counter({"joined": 2, "album_full": 4})
    assert len(order(album_id)) == stored(album_id).track_count == 3
    album_membership.add_track(album_id, "first")  # already in: a no-op, not "full"
    with pytest.raises(AlbumFull):
        album_membership.check_room(stored(album_id))


def test_deleting_an_album_deletes_its_member_items(stack: Stack, artist: str) -> None:
    album = albums.create(artist, "Gone").album
    for n in range(3):
        track_id = make_track(artist, f"T{n}")
        album_membership.add_track(album.album_id, track_id)

    deleted = stack.api.delete(f"/v1/albums/{ids.render('alb', album.album_id)}", headers=as_user(artist))

    assert deleted.status_code == 200, deleted.text
    assert album_membership.members(album) == []


# --- albums written before member items -------------------------------------------------------


def legacy_album(owner: str, title: str, track_ids: list[str], order_keys: dict[str, Any] | None = None) -> str:
    """An album as the code before member items left it: its order in ``track_ids``, no count,
    in the one listing partition."""
    album_id = new_album(owner, title)
    AlbumModel(album_id, AlbumModel.ALBUM_SK).update(
        actions=[
            AlbumModel.track_ids.set(track_ids),  # type: ignore[arg-type]
            AlbumModel.track_order_keys.set(order_keys) if order_keys else AlbumModel.track_order_keys.remove(),
            AlbumModel.track_count.remove(),
            AlbumModel.track_list_revision.remove(),
            AlbumModel.listed.set(AlbumModel.LISTED),
            AlbumModel.revision.set(1 + len(track_ids)),
        ]
    )
    return album_id


def test_an_album_written_before_member_items_reads_in_its_order(stack: Stack, artist: str) -> None:
    made = [make_track(artist, f"Old {n}") for n in range(3)]
    album_id = legacy_album(artist, "Old Times", [made[2], made[0], made[1]])

    page = stack.api.get("/v1/artists/alice/albums/old-times").json()
    assert [t["trackId"] for t in page["tracks"]] == [ids.render("trk", t) for t in (made[2], made[0], made[1])]
    assert (page["trackCount"], page["revision"]) == (3, 4)
    listed = stack.api.get("/v1/albums").json()["albums"]
    assert [(a["albumId"], a["trackCount"]) for a in listed] == [(ids.render("alb", album_id), 3)]


def test_the_first_change_of_an_old_album_moves_its_list_into_member_items(stack: Stack, artist: str) -> None:
    # Given an album of the old shape with two session tracks and a loose one
    keys = {name: sessions.order_key(str(n), None, "2024-01-01T00:00:00", name) for n, name in [(0, "a"), (2, "c")]}
    album_id = legacy_album(artist, "Old Session", ["a", "loose", "c"], {"a": keys["a"], "c": keys["c"]})

    # When a session track is placed between them, and one is appended
    album_membership.place_track(album_id, "b", sessions.order_key("1", None, "2024-01-01T00:00:00", "b"))
    album_membership.add_track(album_id, "new")

    # Then the old order holds, the order keys still place, and the list is gone from the album
    assert order(album_id) == ["a", "loose", "b", "c", "new"]
    album = stored(album_id)
    assert (album.track_ids, album.track_order_keys, album.track_count) == (None, None, 5)
    assert album.revision == 4 + 2  # the migration itself moved nothing
    assert album_membership.remove_track(album_id, "loose") is True
    assert order(album_id) == ["a", "b", "c", "new"]


def test_what_an_older_version_appends_during_a_deployment_is_kept(stack: Stack, artist: str) -> None:
    # Given an album of member items to which a function not yet replaced appends the old way
    album_id = new_album(artist, "Mixed versions")
    album_membership.add_track(album_id, "a")
    AlbumModel(album_id, AlbumModel.ALBUM_SK).update(
        actions=[
            AlbumModel.track_ids.set((AlbumModel.track_ids | []).append(["old"])),
            AlbumModel.revision.add(1),
        ]
    )
    # Then reads show it after the members, and the next change makes it a member
    assert order(album_id) == ["a", "old"]
    assert albums.track_count(stored(album_id)) == 2
    album_membership.add_track(album_id, "b")
    assert order(album_id) == ["a", "old", "b"]
    album = stored(album_id)
    assert (album.track_ids, album.track_count) == (None, 3)


# --- the album listing --------------------------------------------------------------------------


def test_the_album_listing_merges_its_shards_newest_first_across_pages(stack: Stack, artist: str) -> None:
    # Given albums in every shard, two old ones in the partition before the shards, and five
    # albums created at the very same moment (ties on the index's sort key; five albums in four
    # shards: at least two tie within one partition)
    created = [new_album(artist, f"Album {n}") for n in range(9)]
    old = [legacy_album(artist, f"Old {n}", []) for n in range(2)]
    base = utcnow() - timedelta(days=1)
    moments = {album_id: base + timedelta(seconds=n) for n, album_id in enumerate([*created, *old])}
    for album_id in created[:5]:
        moments[album_id] = base + timedelta(seconds=100)
    for album_id, moment in moments.items():
        AlbumModel(album_id, AlbumModel.ALBUM_SK).update(actions=[AlbumModel.created_at.set(moment)])
    assert len({AlbumModel.listing_shard(album_id) for album_id in created}) > 1

    # When the listing is read two albums a page
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = stack.api.get("/v1/albums", params=params).json()
        seen += [ids.parse("alb", album["albumId"]) or "" for album in page["albums"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break

    # Then every album comes once, newest first (ties by id)
    expected = sorted(moments, key=lambda album_id: (moments[album_id], album_id), reverse=True)
    assert seen == expected
