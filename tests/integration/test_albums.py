"""Seed 002 albums against moto: slugs, explicit track order, public visibility, owner-only
mutations, deletion, pagination, and a DynamoDB call count that does not grow with the catalog."""

from __future__ import annotations

import base64
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from pynamodb.connection.base import Connection
from pynamodb.exceptions import DoesNotExist

from functions import ids
from functions.data.models import AlbumModel, AlbumSlugModel, TrackModel, utcnow
from functions.domain.catalog import album_membership, albums, artists, paging
from functions.errors import AlbumFull, AlbumNotFound

from .conftest import as_user

ALICE, BOB = "alice", "bob"


@pytest.fixture
def alice(stack):
    artists.upsert(ALICE, handle="alice", display_name="Alice")
    return ALICE


@pytest.fixture
def bob(stack):
    artists.upsert(BOB, handle="bob", display_name="Bob")
    return BOB


def create(stack, user, title, **extra):
    response = stack.api.post("/v1/albums", json={"title": title, **extra}, headers=as_user(user))
    assert response.status_code == 201, response.text
    return response.json()


def raw(album):
    return ids.parse("alb", album["albumId"])


def make_track(owner, title, *, status="ready", duration_ms=180_000):
    track_id = ids.new_id()
    TrackModel(
        track_id,
        TrackModel.TRACK_SK,
        owner_id=owner,
        upload_id=ids.new_id(),
        title=title,
        status=status,
        duration_ms=duration_ms,
    ).save()
    return track_id


def put_in_album(album_id, track_id):
    """What the track side does when a track joins an album: point the track at it, append it."""
    title = AlbumModel.get(album_id, AlbumModel.ALBUM_SK).title
    TrackModel(track_id, TrackModel.TRACK_SK).update(
        actions=[TrackModel.album_id.set(album_id), TrackModel.album.set(title)]
    )
    album_membership.add_track(album_id, track_id)


def page(stack, url, **params):
    response = stack.api.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_album_is_created_listed_and_read_publicly(stack, alice):
    # Given Alice's new album
    created = create(stack, alice, "  Night Drive ", description="Recorded at 3 am.")
    assert created["albumId"].startswith("alb_")
    assert {k: created[k] for k in ("title", "slug", "description", "trackCount", "revision")} == {
        "title": "Night Drive",
        "slug": "night-drive",
        "description": "Recorded at 3 am.",
        "trackCount": 0,
        "revision": 1,
    }
    assert created["artist"] == {"handle": "alice", "displayName": "Alice"}

    # Then anybody lists and reads it, with or without an Authorization header it cannot use
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        listed = stack.api.get("/v1/albums", headers=headers)
        assert listed.status_code == 200
        assert [a["albumId"] for a in listed.json()["albums"]] == [created["albumId"]]
        by_artist = stack.api.get("/v1/artists/ALICE/albums", headers=headers).json()
        assert by_artist["artist"] == {"handle": "alice", "displayName": "Alice"}
        assert [a["slug"] for a in by_artist["albums"]] == ["night-drive"]
        detail = stack.api.get("/v1/artists/alice/albums/night-drive", headers=headers)
        assert detail.status_code == 200
        assert detail.json() == {**created, "tracks": []}


def test_creating_needs_a_token_an_artist_profile_and_a_bounded_body(stack, alice):
    assert stack.api.post("/v1/albums", json={"title": "X"}).status_code == 401
    refused = stack.api.post("/v1/albums", json={"title": "X"}, headers=as_user("no-profile"))
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "artist_profile_required")
    for body in (
        {"title": "   "},
        {"title": "x" * 201},
        {"title": "ok", "description": "d" * 5001},
        {"title": "ok", "colour": "red"},
        {},
    ):
        response = stack.api.post("/v1/albums", json=body, headers=as_user(alice))
        assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_failed"), body
    assert create(stack, alice, "x" * 200, description="d" * 5000)["slug"] == "x" * 80


def test_slug_collisions_get_numbered_suffixes_per_artist(stack, alice, bob):
    slugs = [create(stack, alice, title)["slug"] for title in ("Night Drive", "night drive!", "NIGHT-DRIVE")]
    assert slugs == ["night-drive", "night-drive-2", "night-drive-3"]
    assert create(stack, bob, "Night Drive")["slug"] == "night-drive"  # slugs are unique per artist
    second = stack.api.get("/v1/artists/alice/albums/night-drive-2").json()
    assert second["title"] == "night drive!"


def test_unicode_titles_are_transliterated_into_ascii_slugs(stack, alice):
    cases = {
        "Café del Mar (Vol. 2)": "cafe-del-mar-vol-2",
        "Ærø Straße": "aero-strasse",
        "Ｆｕｌｌ　Ｗｉｄｔｈ": "full-width",
        "東京": "album",
        "Łódź — Kraków": "lodz-krakow",
    }
    for title, slug in cases.items():
        assert create(stack, alice, title)["slug"] == slug
    # Two titles with nothing transliterable share the fallback and get numbered.
    assert create(stack, alice, "大阪")["slug"] == "album-2"
    assert stack.api.get("/v1/artists/alice/albums/album").json()["title"] == "東京"


def test_a_rename_moves_the_slug_and_the_old_one_answers_301(stack, alice):
    album = create(stack, alice, "First Name")
    renamed = stack.api.patch(f"/v1/albums/{album['albumId']}", json={"title": "Second Name"}, headers=as_user(alice))
    assert renamed.status_code == 200
    assert (renamed.json()["slug"], renamed.json()["revision"]) == ("second-name", 2)

    old = stack.api.get("/v1/artists/alice/albums/first-name", follow_redirects=False)
    assert old.status_code == 301
    assert old.headers["location"].endswith("/v1/artists/alice/albums/second-name")
    assert old.headers["cache-control"] == "no-cache"  # a rename back must not loop in browsers
    assert stack.api.get("/v1/artists/alice/albums/second-name").json()["title"] == "Second Name"
    assert stack.api.get("/v1/artists/alice/albums/first-name").json()["title"] == "Second Name"  # followed

    # Renaming back takes the old slug again (it is this album's), and the other slug redirects.
    back = stack.api.patch(f"/v1/albums/{album['albumId']}", json={"title": "First Name"}, headers=as_user(alice))
    assert (back.json()["slug"], back.json()["revision"]) == ("first-name", 3)
    assert stack.api.get("/v1/artists/alice/albums/first-name").status_code == 200
    moved = stack.api.get("/v1/artists/alice/albums/second-name", follow_redirects=False)
    assert moved.headers["location"].endswith("/albums/first-name")
    # Another album of the artist cannot take a slug the renamed album still holds.
    assert create(stack, alice, "Second Name")["slug"] == "second-name-2"


def test_a_rename_racing_another_edit_retries_and_keeps_the_slug_of_its_title(stack, alice, monkeypatch):
    """The album changed between the rename's read and its write: the rename reads again and
    takes the new title's own slug -- not the next numbered one, as if the slug had been taken."""
    album = create(stack, alice, "First Name")
    raw_id = album["albumId"].removeprefix("alb_")
    real_get_owned = albums.get_owned
    raced = []

    def read_then_another_edit_lands(album_id, owner_id):
        current = real_get_owned(album_id, owner_id)
        if not raced:
            raced.append(True)
            AlbumModel(raw_id, AlbumModel.ALBUM_SK).update(actions=[AlbumModel.revision.add(1)])
        return current

    monkeypatch.setattr(albums, "get_owned", read_then_another_edit_lands)
    renamed = stack.api.patch(f"/v1/albums/{album['albumId']}", json={"title": "Second Name"}, headers=as_user(alice))

    assert renamed.status_code == 200, renamed.text
    assert raced and renamed.json()["slug"] == "second-name"
    assert stack.api.get("/v1/artists/alice/albums/second-name").json()["title"] == "Second Name"


def test_patch_edits_the_description_and_a_same_slug_title_keeps_the_slug(stack, alice):
    album = create(stack, alice, "Late Hours", description="first")
    url, headers = f"/v1/albums/{album['albumId']}", as_user(alice)
    assert stack.api.patch(url, json={"description": "second"}, headers=headers).json()["description"] == "second"
    removed = stack.api.patch(url, json={"description": ""}, headers=headers).json()
    assert (removed["description"], removed["revision"]) == (None, 3)
    recased = stack.api.patch(url, json={"title": "LATE HOURS!"}, headers=headers).json()
    assert (recased["title"], recased["slug"], recased["revision"]) == ("LATE HOURS!", "late-hours", 4)
    # Nothing to change is not a mutation.
    assert stack.api.patch(url, json={}, headers=headers).json()["revision"] == 4
    assert stack.api.patch(url, json={"title": None}, headers=headers).json()["error"]["code"] == "invalid_album"


def test_tracks_are_shown_in_the_order_they_were_added(stack, alice):
    album = create(stack, alice, "Ordered")
    made = [make_track(alice, f"Track {n}") for n in range(5)]
    added = [made[3], made[0], made[4], made[1], made[2]]  # not creation order
    for track_id in added:
        put_in_album(raw(album), track_id)
    album_membership.add_track(raw(album), made[3])  # a repeat is a no-op

    detail = stack.api.get("/v1/artists/alice/albums/ordered").json()
    assert [t["trackId"] for t in detail["tracks"]] == [ids.render("trk", t) for t in added]
    assert [t["position"] for t in detail["tracks"]] == [1, 2, 3, 4, 5]
    assert detail["tracks"][0] == {
        "trackId": ids.render("trk", made[3]),
        "title": "Track 3",
        "durationMs": 180_000,
        "position": 1,
        "status": "ready",
    }
    assert (detail["trackCount"], detail["revision"]) == (5, 6)

    # Removing one keeps the others' order; removing it again reports it absent.
    assert album_membership.remove_track(raw(album), made[4]) is True
    assert album_membership.remove_track(raw(album), made[4]) is False
    after = stack.api.get("/v1/artists/alice/albums/ordered").json()
    assert [t["trackId"] for t in after["tracks"]] == [ids.render("trk", t) for t in added if t != made[4]]


def test_concurrent_appends_each_land_once_in_a_stable_order(stack, alice):
    album_id = raw(create(stack, alice, "Crowded"))
    made = [make_track(alice, f"T{n}") for n in range(20)]

    def add(track_id):
        album_membership.add_track(album_id, track_id)
        album_membership.add_track(album_id, track_id)  # a retried request

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(add, made))

    order = album_membership.track_order(AlbumModel.get(album_id, AlbumModel.ALBUM_SK, consistent_read=True))
    assert sorted(order) == sorted(made)
    assert len(order) == 20  # exactly once each
    # The order is the one DynamoDB applied, stored once: every later read agrees with it.
    reads = {tuple(t["trackId"] for t in stack.api.get("/v1/artists/alice/albums/crowded").json()["tracks"])}
    reads |= {tuple(t["trackId"] for t in stack.api.get("/v1/artists/alice/albums/crowded").json()["tracks"])}
    assert reads == {tuple(ids.render("trk", t) for t in order)}
    assert AlbumModel.get(album_id, AlbumModel.ALBUM_SK).revision == 21


def test_the_public_sees_ready_tracks_and_the_owner_also_unfinished_ones(stack, alice, bob):
    album = create(stack, alice, "Mixed")
    by_status = {
        status: make_track(alice, status, status=status) for status in ("ready", "processing", "failed", "draft")
    }
    for track_id in by_status.values():
        put_in_album(raw(album), track_id)
    url = "/v1/artists/alice/albums/mixed"

    def seen(headers):
        return [t["status"] for t in stack.api.get(url, headers=headers).json()["tracks"]]

    assert seen({}) == ["ready"]
    assert seen(as_user(bob)) == ["ready"]
    assert seen(as_user(alice)) == ["ready", "processing", "failed"]  # never the draft
    # A track turning ready shows up at once.
    TrackModel(by_status["processing"], TrackModel.TRACK_SK).update(actions=[TrackModel.status.set("ready")])
    assert seen({}) == ["ready", "ready"]


def test_public_reads_carry_an_etag_that_changes_with_the_album(stack, alice):
    album = create(stack, alice, "Cached")
    url = "/v1/artists/alice/albums/cached"
    first = stack.api.get(url)
    etag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, no-cache"
    assert stack.api.get(url, headers={"If-None-Match": etag}).status_code == 304

    stack.api.patch(f"/v1/albums/{album['albumId']}", json={"description": "new"}, headers=as_user(alice))
    changed = stack.api.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    # The owner's view differs from the public one, so shared caches must not keep it.
    assert stack.api.get(url, headers=as_user(alice)).headers["cache-control"] == "private, no-cache"


def test_only_the_owner_mutates_an_album(stack, alice, bob):
    album = create(stack, alice, "Mine")
    track_id = make_track(alice, "Song")
    put_in_album(raw(album), track_id)
    base = f"/v1/albums/{album['albumId']}"
    attempts = [
        ("patch", base, {"json": {"title": "Stolen"}}),
        ("delete", base, {}),
        ("delete", f"{base}/tracks/{ids.render('trk', track_id)}", {}),
    ]
    for method, url, kwargs in attempts:
        anonymous = stack.api.request(method, url, **kwargs)
        assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthorized")
        other = stack.api.request(method, url, headers=as_user(bob), **kwargs)
        assert (other.status_code, other.json()["error"]["code"]) == (404, "album_not_found")
    for bad_id in ("alb_nope", "trk_" + raw(album)):
        assert stack.api.patch(f"/v1/albums/{bad_id}", json={"title": "x"}, headers=as_user(alice)).status_code == 404
    # Nothing changed: same title, same track, same revision.
    detail = stack.api.get("/v1/artists/alice/albums/mine").json()
    assert (detail["title"], detail["trackCount"], detail["revision"]) == ("Mine", 1, 2)


def test_removing_a_track_orphans_it_and_repeats_are_204(stack, alice):
    album = create(stack, alice, "Shrinking")
    keep, leave = make_track(alice, "Keep"), make_track(alice, "Leave")
    put_in_album(raw(album), keep)
    put_in_album(raw(album), leave)
    url = f"/v1/albums/{album['albumId']}/tracks/{ids.render('trk', leave)}"

    assert stack.api.delete(url, headers=as_user(alice)).status_code == 204
    assert stack.api.delete(url, headers=as_user(alice)).status_code == 204
    left = TrackModel.get(leave, TrackModel.TRACK_SK)  # standalone, not deleted
    assert (left.album_id, left.album) == (None, None)
    assert TrackModel.get(keep, TrackModel.TRACK_SK).album_id == raw(album)
    tracks = stack.api.get("/v1/artists/alice/albums/shrinking").json()["tracks"]
    assert [t["title"] for t in tracks] == ["Keep"]
    missing = stack.api.delete(f"/v1/albums/{album['albumId']}/tracks/not-an-id", headers=as_user(alice))
    assert missing.json()["error"]["code"] == "track_not_found"


def test_deleting_an_album_orphans_its_tracks_and_releases_every_slug(stack, alice):
    album = create(stack, alice, "Old Title")
    stack.api.patch(f"/v1/albums/{album['albumId']}", json={"title": "New Title"}, headers=as_user(alice))
    made = [make_track(alice, f"T{n}") for n in range(3)]
    for track_id in made:
        put_in_album(raw(album), track_id)

    deleted = stack.api.delete(f"/v1/albums/{album['albumId']}?cascade=false", headers=as_user(alice))
    assert deleted.status_code == 200
    assert deleted.json() == {"albumId": album["albumId"], "deleted": True, "cascade": False, "tracks": 3}

    assert all(TrackModel.get(t, TrackModel.TRACK_SK).album_id is None for t in made)
    for slug in ("old-title", "new-title"):
        with pytest.raises(DoesNotExist):
            AlbumSlugModel.get(AlbumSlugModel.key(alice, slug), AlbumSlugModel.SLUG_SK)
        response = stack.api.get(f"/v1/artists/alice/albums/{slug}")
        assert (response.status_code, response.json()["error"]["code"]) == (404, "album_not_found")
    again = stack.api.delete(f"/v1/albums/{album['albumId']}", headers=as_user(alice))
    assert (again.status_code, again.json()["error"]["code"]) == (404, "album_not_found")
    assert create(stack, alice, "Old Title")["slug"] == "old-title"  # the slug is free again
    with pytest.raises(AlbumNotFound):
        album_membership.add_track(raw(album), made[0])


def test_deleting_an_album_with_cascade_deletes_its_tracks(stack, alice):
    album = create(stack, alice, "Doomed")
    made = [make_track(alice, f"T{n}") for n in range(2)]
    for track_id in made:
        put_in_album(raw(album), track_id)

    deleted = stack.api.delete(f"/v1/albums/{album['albumId']}?cascade=true", headers=as_user(alice))
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["tracks"] == 2
    for track_id in made:
        with pytest.raises(DoesNotExist):
            TrackModel.get(track_id, TrackModel.TRACK_SK)
    assert stack.api.get("/v1/artists/alice/albums/doomed").status_code == 404


def test_an_album_refuses_tracks_beyond_its_bound(stack, alice, monkeypatch):
    monkeypatch.setattr(album_membership, "MAX_TRACKS", 3)
    album_id = raw(create(stack, alice, "Small"))
    made = [make_track(alice, f"T{n}") for n in range(4)]
    for track_id in made[:3]:
        album_membership.add_track(album_id, track_id)
    with pytest.raises(AlbumFull) as full:
        album_membership.add_track(album_id, made[3])
    assert (full.value.code, full.value.status) == ("album_full", 409)
    album_membership.add_track(album_id, made[0])  # already in: still a no-op, not "full"
    assert album_membership.track_order(AlbumModel.get(album_id, AlbumModel.ALBUM_SK)) == made[:3]


def test_resolve_finds_by_id_or_title_and_creates_once(stack, alice, bob):
    album = create(stack, alice, "Late Hours")
    assert albums.resolve(alice, album["albumId"]).pk == raw(album)
    assert albums.resolve(alice, raw(album)).pk == raw(album)  # the bare uuid
    assert albums.resolve(alice, "  late HOURS ").pk == raw(album)
    with pytest.raises(AlbumNotFound):
        albums.resolve(bob, album["albumId"])  # another owner's id
    with pytest.raises(AlbumNotFound):
        albums.resolve(alice, "alb_" + ids.new_id())

    # Parallel uploads naming one new album end up in one album.
    with ThreadPoolExecutor(max_workers=8) as pool:
        resolved = {a.pk for a in pool.map(lambda _: albums.resolve(alice, "Early Hours"), range(8))}
    assert len(resolved) == 1
    titles = Counter(a["title"] for a in page(stack, "/v1/artists/alice/albums", limit=100)["albums"])
    assert titles == {"Late Hours": 1, "Early Hours": 1}


def test_listings_paginate_newest_first_with_an_opaque_cursor(stack, alice, bob):
    made = [create(stack, user, f"Album {n}")["albumId"] for n, user in enumerate([alice, bob] * 3)]
    newest_first = list(reversed(made))

    seen, cursor, pages = [], None, 0
    while True:
        body = page(stack, "/v1/albums", limit=4, **({"cursor": cursor} if cursor else {}))
        seen += [a["albumId"] for a in body["albums"]]
        pages += 1
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert (seen, pages) == (newest_first, 2)

    first = page(stack, "/v1/artists/bob/albums", limit=2)
    second = page(stack, "/v1/artists/bob/albums", limit=2, cursor=first["nextCursor"])
    assert [a["title"] for a in first["albums"] + second["albums"]] == ["Album 5", "Album 3", "Album 1"]
    assert second["nextCursor"] is None
    assert {a["artist"]["handle"] for a in first["albums"]} == {"bob"}


def test_a_cursor_this_listing_did_not_issue_is_400(stack, alice):
    for n in range(2):
        create(stack, alice, f"A{n}")
    from_all = page(stack, "/v1/albums", limit=1)["nextCursor"]
    forged = base64.urlsafe_b64encode(json.dumps({"k": "all", "id": "x", "at": "y"}).encode()).decode()
    for url, cursor in [
        ("/v1/albums", "not base64 at all!"),
        ("/v1/albums", forged),
        ("/v1/albums", base64.urlsafe_b64encode(b"[1, 2]").decode()),
        ("/v1/albums", paging.encode("albums", {"created_at": "yesterday", "pk": "x"})),  # well formed, bad time
        ("/v1/artists/alice/albums", from_all),  # another listing's cursor
    ]:
        response = stack.api.get(url, params={"cursor": cursor})
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_cursor"), cursor
    for limit in (0, 101):
        assert stack.api.get("/v1/albums", params={"limit": limit}).status_code == 422


def test_unknown_artists_and_slugs_are_404(stack, alice):
    for url, code in [
        ("/v1/artists/nobody/albums", "artist_not_found"),
        ("/v1/artists/nobody/albums/x", "artist_not_found"),
        ("/v1/artists/alice/albums/missing", "album_not_found"),
        (f"/v1/artists/alice/albums/{'x' * 300}", "album_not_found"),
    ]:
        response = stack.api.get(url)
        assert (response.status_code, response.json()["error"]["code"]) == (404, code), url


@pytest.mark.slow
def test_an_album_page_costs_the_same_dynamodb_calls_whatever_the_catalog_size(stack, alice, monkeypatch):
    calls: list[str] = []
    original = Connection._make_api_call

    def counting(self, operation_name, operation_kwargs):
        calls.append(operation_name)
        return original(self, operation_name, operation_kwargs)

    monkeypatch.setattr(Connection, "_make_api_call", counting)

    def album_page_calls():
        calls.clear()
        response = stack.api.get("/v1/artists/alice/albums/measured")
        assert response.status_code == 200
        assert len(response.json()["tracks"]) == 10
        return Counter(calls)

    # Given an album of 10 tracks, and nothing else in the catalog
    album_id = raw(create(stack, alice, "Measured"))
    for n in range(10):
        put_in_album(album_id, make_track(alice, f"In {n}"))
    small = album_page_calls()

    # When the catalog grows by 10,000 tracks of the same artist (the figure the catalog issue names)
    with TrackModel.batch_write() as batch:
        for n in range(10_000):
            batch.save(
                TrackModel(
                    ids.new_id(),
                    TrackModel.TRACK_SK,
                    owner_id=alice,
                    upload_id=ids.new_id(),
                    title=f"Other {n}",
                    status="ready",
                    created_at=utcnow(),
                )
            )
    large = album_page_calls()

    # Then the album page makes exactly the same requests
    assert large == small
    assert small == Counter({"GetItem": 4, "Query": 1, "BatchGetItem": 1})  # the Query: its member items
