"""Visibility, support gates, supporters and the public listings (issue 5).

Tracks are made ready by the workflow's own step (``verdict.mark_playable``) unless a test says it
runs the whole workflow: what is tested here is who sees and plays what, not the processing.
"""

from __future__ import annotations

import threading
from collections import Counter
from urllib.parse import quote

import pytest
from pynamodb.connection import Connection

from functions import ids
from functions.data.models import TagEntryModel, TrackModel
from functions.domain.catalog import artists, listing
from functions.domain.processing import verdict

from .conftest import Stack, as_user
from .test_workflow import processed


@pytest.fixture
def bob(stack: Stack) -> str:
    artists.upsert("bob", handle="bob", display_name="Bob")
    return "bob"


def finalized(stack: Stack, user: str, make_wav, **intent) -> str:
    """A finalized upload's track id (no runner: it stays ``processing``). ``make_wav`` gives a
    file of its own (the same owner's same bytes would be a duplicate)."""
    wav = make_wav()
    upload = stack.create_upload(user, wav, **intent)
    stack.put(upload["signedUrl"], wav, content_type="audio/wav")
    response = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(user))
    assert response.json()["status"] == "finalized", response.text
    return str(upload["trackId"])


def raw(track_id: str) -> str:
    value = ids.parse("trk", track_id)
    assert value is not None
    return value


def make_ready(track_id: str) -> None:
    """What the workflow does once probe and the AAC rendition succeeded."""
    tid = raw(track_id)
    TrackModel(tid, TrackModel.TRACK_SK).update(
        actions=[
            TrackModel.rendition_aac.set(
                {"key": f"tracks/{tid}/renditions/aac.m4a", "contentType": "audio/mp4", "codec": "aac"}
            )
        ]
    )
    verdict.mark_playable({"trackId": tid})


def ready_track(stack: Stack, user: str, make_wav, **intent) -> str:
    track_id = finalized(stack, user, make_wav, **intent)
    make_ready(track_id)
    return track_id


def artist_tracks(stack: Stack, handle: str = "alice", **params) -> list[str]:
    response = stack.api.get(f"/v1/artists/{handle}/tracks", params=params)
    assert response.status_code == 200, response.text
    return [t["trackId"] for t in response.json()["tracks"]]


def tag_tracks(stack: Stack, tag: str, **params) -> list[str]:
    response = stack.api.get(f"/v1/tags/{quote(tag, safe='')}/tracks", params=params)
    assert response.status_code == 200, response.text
    return [t["trackId"] for t in response.json()["tracks"]]


def tag_entries(tag: str) -> list[str]:
    """The tag's index items as stored (not as the API filters them)."""
    return sorted(entry.track_id for entry in TagEntryModel.query(TagEntryModel.key(tag)))


def patch(stack: Stack, user: str, track_id: str, body: dict) -> dict:
    response = stack.api.patch(f"/v1/tracks/{track_id}", json=body, headers=as_user(user))
    assert response.status_code == 200, response.text
    return dict(response.json())


def stream(stack: Stack, user: str | None, track_id: str, fmt: str = "aac"):
    headers = as_user(user) if user else {}
    return stack.api.get(f"/v1/tracks/{track_id}/stream?format={fmt}", headers=headers, follow_redirects=False)


# --- listing ------------------------------------------------------------------------------------


def test_a_processed_public_track_is_listed_under_its_artist_and_each_tag(stack, artist, runner, distinct_wav):
    wav = distinct_wav()
    upload = stack.create_upload(artist, wav, title="Night Drive", tags=["Lo-Fi  Hip HOP", "night"])
    stack.put(upload["signedUrl"], wav, content_type="audio/wav")
    stack.drain_s3_events()  # the put event finalizes it
    assert processed(stack, artist, upload)["status"] == "ready"

    track_id = upload["trackId"]
    assert artist_tracks(stack) == [track_id]
    assert tag_tracks(stack, "lo-fi hip hop") == [track_id]
    # Looked up the way tags are stored: case, width and spacing do not matter.
    body = stack.api.get(f"/v1/tags/{quote('  LO-FI hip   hop ')}/tracks").json()
    assert body["tag"] == "lo-fi hip hop"
    assert [t["trackId"] for t in body["tracks"]] == [track_id]
    listed = body["tracks"][0]
    assert listed["title"] == "Night Drive"
    assert listed["artist"] == {"handle": "alice", "displayName": "Alice"}
    assert listed["durationMs"] > 2900
    assert "key" not in str(listed) and "ownerId" not in listed
    assert stack.api.get(f"/v1/tracks/{track_id}", headers=as_user(artist)).json()["listed"] is True


def test_drafts_and_tracks_still_processing_are_not_listed(stack, artist, distinct_wav):
    stack.create_upload(artist, distinct_wav(), tags=["demo"])  # a draft: the file never arrived
    processing = finalized(stack, artist, distinct_wav, tags=["demo"])
    assert artist_tracks(stack) == []
    assert tag_tracks(stack, "demo") == []
    assert tag_entries("demo") == []
    make_ready(processing)
    assert artist_tracks(stack) == [processing]
    assert tag_tracks(stack, "demo") == [processing]


def test_unlisted_private_and_gated_tracks_never_appear_in_any_public_list(stack, artist, distinct_wav):
    made = {
        seen_as: ready_track(stack, artist, distinct_wav, title=seen_as, visibility=seen_as, tags=["mix"], album="EP")
        for seen_as in ("public", "unlisted", "private")
    }
    made["gated"] = ready_track(
        stack, artist, distinct_wav, title="gated", tags=["mix"], album="EP", supportGate={"type": "any"}
    )

    assert artist_tracks(stack) == [made["public"]]
    assert tag_tracks(stack, "mix") == [made["public"]]
    assert tag_entries("mix") == [raw(made["public"])]
    album_page = stack.api.get("/v1/artists/alice/albums/ep").json()
    assert [t["trackId"] for t in album_page["tracks"]] == [made["public"]]
    # The owner's album page still shows all four.
    own_page = stack.api.get("/v1/artists/alice/albums/ep", headers=as_user(artist)).json()
    assert sorted(t["trackId"] for t in own_page["tracks"]) == sorted(made.values())
    mine = stack.api.get("/v1/me/tracks", headers=as_user(artist)).json()["tracks"]
    assert {t["title"]: (t["visibility"], t["listed"]) for t in mine} == {
        "public": ("public", True),
        "unlisted": ("unlisted", False),
        "private": ("private", False),
        "gated": ("public", False),
    }


def test_patching_tags_visibility_and_the_gate_moves_the_listing(stack, artist, distinct_wav):
    track_id = ready_track(stack, artist, distinct_wav, tags=["a", "b"])
    assert (tag_entries("a"), tag_entries("b")) == ([raw(track_id)], [raw(track_id)])

    patch(stack, artist, track_id, {"tags": ["b", "C"]})
    assert (tag_entries("a"), tag_entries("b"), tag_entries("c")) == ([], [raw(track_id)], [raw(track_id)])

    for body, listed in [
        ({"visibility": "unlisted"}, False),
        ({"visibility": "public"}, True),
        ({"supportGate": {"type": "any"}}, False),
        ({"supportGate": None}, True),
        ({"visibility": "private"}, False),
    ]:
        assert patch(stack, artist, track_id, body)["listed"] is listed, body
        expected = [track_id] if listed else []
        assert (artist_tracks(stack), tag_tracks(stack, "c")) == (expected, expected), body
        assert tag_entries("b") == ([raw(track_id)] if listed else []), body

    patch(stack, artist, track_id, {"visibility": "public", "tags": []})
    assert artist_tracks(stack) == [track_id]
    assert (tag_entries("b"), tag_entries("c")) == ([], [])


def test_visibility_cannot_be_removed_or_invented(stack, artist, distinct_wav):
    track_id = finalized(stack, artist, distinct_wav)
    for body in ({"visibility": None}, {"visibility": "friends"}):
        response = stack.api.patch(f"/v1/tracks/{track_id}", json=body, headers=as_user(artist))
        assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_failed"), body
    response = stack.api.post(
        "/v1/uploads",
        json={"fileName": "a.wav", "contentType": "audio/wav", "byteSize": 10, "visibility": "secret"},
        headers=as_user(artist),
    )
    assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_failed")


def test_deleting_a_listed_track_removes_its_tag_entries(stack, artist, distinct_wav):
    track_id = ready_track(stack, artist, distinct_wav, tags=["gone", "soon"])
    assert stack.api.delete(f"/v1/tracks/{track_id}", headers=as_user(artist)).status_code == 204
    assert (tag_entries("gone"), tag_entries("soon")) == ([], [])
    assert (artist_tracks(stack), tag_tracks(stack, "gone")) == ([], [])


def test_the_listing_settles_on_the_last_state_however_writers_race(stack, artist, distinct_wav):
    track_id = finalized(stack, artist, distinct_wav, tags=["race"])
    tid = raw(track_id)
    barrier = threading.Barrier(9)
    errors: list[BaseException] = []

    def toggle(n: int) -> None:
        barrier.wait()
        try:
            for i in range(4):
                body = {"visibility": "public" if (n + i) % 2 else "unlisted", "tags": ["race", f"t{(n + i) % 3}"]}
                patch(stack, artist, track_id, body)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    def ready() -> None:
        barrier.wait()
        verdict.mark_playable({"trackId": tid})

    threads = [threading.Thread(target=toggle, args=(n,)) for n in range(8)] + [threading.Thread(target=ready)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    final = TrackModel.get(tid, TrackModel.TRACK_SK, consistent_read=True)
    listed = listing.is_listed(final)
    assert final.listed_owner == (artist if listed else None)
    expected_tags = sorted(final.tags or []) if listed else []
    assert sorted(final.listed_tags or []) == expected_tags
    for tag in ("race", "t0", "t1", "t2"):
        assert tag_entries(tag) == ([tid] if tag in expected_tags else []), tag


# --- reading and playing ------------------------------------------------------------------------


def test_who_may_stream_what(stack, artist, bob, distinct_wav):
    public = ready_track(stack, artist, distinct_wav)
    unlisted = ready_track(stack, artist, distinct_wav, visibility="unlisted")
    private = ready_track(stack, artist, distinct_wav, visibility="private")
    gated = ready_track(stack, artist, distinct_wav, supportGate={"type": "any"})
    processing = finalized(stack, artist, distinct_wav)

    for track_id in (public, unlisted, private, gated):
        assert stream(stack, artist, track_id).status_code == 302
    assert stream(stack, artist, public, "original").status_code == 302

    assert stream(stack, bob, public).status_code == 302
    assert stream(stack, bob, unlisted).status_code == 302
    for track_id in (private, processing):
        response = stream(stack, bob, track_id)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "track_not_found")
    response = stream(stack, bob, public, "original")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "original_owner_only")
    response = stream(stack, bob, gated)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "support_required")
    # Anonymous listeners (no token) may play what any signed-in stranger may, and no more.
    assert stream(stack, None, public).status_code == 302
    assert stream(stack, None, unlisted).status_code == 302
    for track_id in (private, processing):
        response = stream(stack, None, track_id)
        assert (response.status_code, response.json()["error"]["code"]) == (404, "track_not_found")
    response = stream(stack, None, public, "original")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "original_owner_only")
    response = stream(stack, None, gated)
    assert (response.status_code, response.json()["error"]["code"]) == (403, "support_required")

    # The artist grants bob support: the gated track plays for him, and stops when it is revoked.
    granted = stack.api.put("/v1/artists/me/supporters/bob", headers=as_user(artist))
    assert (granted.status_code, granted.json()["created"]) == (200, True)
    assert stream(stack, bob, gated).status_code == 302
    assert stack.api.delete("/v1/artists/me/supporters/bob", headers=as_user(artist)).status_code == 204
    assert stream(stack, bob, gated).status_code == 403
    # Support for one artist opens no other artist's gate.
    stack.api.put("/v1/artists/me/supporters/carol", headers=as_user("bob"))
    assert stream(stack, "carol", gated).status_code == 403


def test_another_users_read_is_the_public_view_of_a_shareable_track_only(stack, artist, bob, distinct_wav):
    public = ready_track(stack, artist, distinct_wav, title="Shared", tags=["x"])
    private = ready_track(stack, artist, distinct_wav, visibility="private")

    response = stack.api.get(f"/v1/tracks/{public}", headers=as_user(bob))
    assert response.status_code == 200
    view = response.json()
    assert view["title"] == "Shared" and view["artist"]["handle"] == "alice"
    # Processing internals, storage and the uploader's identity stay with the owner.
    for internal in ("ownerId", "uploadId", "renditions", "embeddedTags", "failure", "status", "waveform"):
        assert internal not in view
    again = stack.api.get(f"/v1/tracks/{public}", headers={**as_user(bob), "If-None-Match": response.headers["etag"]})
    assert again.status_code == 304

    response = stack.api.get(f"/v1/tracks/{private}", headers=as_user(bob))
    assert (response.status_code, response.json()["error"]["code"]) == (404, "track_not_found")
    assert stack.api.get(f"/v1/tracks/{private}", headers=as_user(artist)).json()["visibility"] == "private"
    # Without a token: the same public view, and the same 404.
    assert stack.api.get(f"/v1/tracks/{public}").json() == view
    anonymous = stack.api.get(f"/v1/tracks/{private}")
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (404, "track_not_found")


def test_no_route_leaks_another_owners_private_or_gated_track(stack, artist, bob, distinct_wav):
    private = ready_track(stack, artist, distinct_wav, visibility="private", tags=["leak"], album="Hidden")
    gated = ready_track(stack, artist, distinct_wav, supportGate={"type": "any"}, tags=["leak"], album="Hidden")
    private_raw, gated_raw = raw(private), raw(gated)
    anonymous_pages = [
        "/v1/albums",
        "/v1/artists/alice",
        "/v1/artists/alice/tracks",
        "/v1/artists/alice/albums",
        "/v1/artists/alice/albums/hidden",
        "/v1/tags/leak/tracks",
    ]
    for url in anonymous_pages:
        for headers in ({}, as_user(bob)):
            response = stack.api.get(url, headers=headers)
            assert response.status_code == 200, url
            assert private not in response.text and private_raw not in response.text, url
            assert gated not in response.text and gated_raw not in response.text, url
    for url in ("/v1/me/tracks",):
        text = stack.api.get(url, headers=as_user(bob)).text
        assert private not in text and gated not in text
    for suffix in ("", "/processing-status", "/stream", "/artwork", "/similar"):
        response = stack.api.get(f"/v1/tracks/{private}{suffix}", headers=as_user(bob), follow_redirects=False)
        assert response.status_code == 404, suffix


# --- supporters ---------------------------------------------------------------------------------


def test_supporters_are_granted_once_listed_and_revoked(stack, artist):
    first = stack.api.put("/v1/artists/me/supporters/user-1", headers=as_user(artist)).json()
    again = stack.api.put("/v1/artists/me/supporters/user-1", headers=as_user(artist)).json()
    assert (first["created"], again["created"]) == (True, False)
    assert first["since"] == again["since"]
    for n in range(2, 6):
        stack.api.put(f"/v1/artists/me/supporters/user-{n}", headers=as_user(artist))

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = stack.api.get("/v1/artists/me/supporters", params=params, headers=as_user(artist)).json()
        seen += [s["userId"] for s in body["supporters"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == [f"user-{n}" for n in range(1, 6)]

    for _ in range(2):
        assert stack.api.delete("/v1/artists/me/supporters/user-3", headers=as_user(artist)).status_code == 204
    body = stack.api.get("/v1/artists/me/supporters", headers=as_user(artist)).json()
    assert [s["userId"] for s in body["supporters"]] == ["user-1", "user-2", "user-4", "user-5"]


def test_supporter_grants_need_an_artist_profile_and_a_plausible_user_id(stack, artist):
    response = stack.api.put("/v1/artists/me/supporters/user-1", headers=as_user("listener"))
    assert (response.status_code, response.json()["error"]["code"]) == (403, "artist_profile_required")
    for bad in ("a" * 129, "semi;colon", "sp%20ace"):
        response = stack.api.put(f"/v1/artists/me/supporters/{bad}", headers=as_user(artist))
        assert (response.status_code, response.json()["error"]["code"]) == (422, "validation_failed"), bad


# --- browse -------------------------------------------------------------------------------------


def test_an_artists_public_profile_is_cacheable(stack, artist):
    response = stack.api.get("/v1/artists/ALICE")
    assert response.status_code == 200
    assert response.json() == {"handle": "alice", "displayName": "Alice", "createdAt": response.json()["createdAt"]}
    assert stack.api.get("/v1/artists/alice", headers={"If-None-Match": response.headers["etag"]}).status_code == 304
    artists.upsert(artist, handle="alice", display_name="Alice B.")
    assert stack.api.get("/v1/artists/alice", headers={"If-None-Match": response.headers["etag"]}).status_code == 200
    missing = stack.api.get("/v1/artists/nobody")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "artist_not_found")


def test_my_tracks_lists_every_state_newest_first_and_only_mine(stack, artist, bob, distinct_wav):
    made = [finalized(stack, artist, distinct_wav, title=f"t{n}") for n in range(3)]
    made.append(stack.create_upload(artist, distinct_wav(), title="draft")["trackId"])
    finalized(stack, bob, distinct_wav, title="bob's")

    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = stack.api.get("/v1/me/tracks", params=params, headers=as_user(artist)).json()
        seen += [t["trackId"] for t in body["tracks"]]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))


def test_cursors_are_bound_to_their_listing(stack, artist, bob, distinct_wav):
    for n in range(3):
        ready_track(stack, artist, distinct_wav, tags=["x"], title=f"{n}")
        finalized(stack, bob, distinct_wav)
    mine = stack.api.get("/v1/me/tracks", params={"limit": 1}, headers=as_user(artist)).json()["nextCursor"]
    listed = stack.api.get("/v1/artists/alice/tracks", params={"limit": 1}).json()["nextCursor"]
    tagged = stack.api.get("/v1/tags/x/tracks", params={"limit": 1}).json()["nextCursor"]
    assert mine and listed and tagged
    refused = [
        ("/v1/artists/alice/tracks", mine, {}),
        ("/v1/tags/x/tracks", listed, {}),
        ("/v1/me/tracks", tagged, as_user(artist)),
        # Alice's own cursor replayed by Bob would start inside Alice's partition.
        ("/v1/me/tracks", mine, as_user(bob)),
        ("/v1/artists/alice/tracks", "bm90LWpzb24", {}),
    ]
    for url, cursor, headers in refused:
        response = stack.api.get(url, params={"cursor": cursor}, headers=headers)
        assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid_cursor"), url
    assert stack.api.get("/v1/tags/%20%20/tracks").json()["error"]["code"] == "invalid_tag"


def test_an_artist_tracks_page_costs_the_same_dynamodb_calls_whatever_the_catalog_size(
    stack, artist, bob, distinct_wav, monkeypatch
):
    calls: list[str] = []
    original = Connection._make_api_call

    def counting(self, operation_name, operation_kwargs):
        calls.append(operation_name)
        return original(self, operation_name, operation_kwargs)

    def page_calls(url: str) -> Counter:
        calls.clear()
        response = stack.api.get(url, params={"limit": 5})
        assert response.status_code == 200
        assert len(response.json()["tracks"]) == 5
        return Counter(calls)

    for n in range(6):
        ready_track(stack, artist, distinct_wav, tags=["counted"], title=f"{n}")
    monkeypatch.setattr(Connection, "_make_api_call", counting)
    small = page_calls("/v1/artists/alice/tracks"), page_calls("/v1/tags/counted/tracks")

    # The catalog grows: 300 more listed tracks, all of them Bob's and under the same tag.
    bob_item = TrackModel.get(raw(ready_track(stack, bob, distinct_wav, tags=["counted"])), TrackModel.TRACK_SK)
    copies = [TrackModel.from_raw_data({**bob_item.serialize(), "pk": {"S": ids.new_id()}}) for _ in range(300)]
    with TrackModel.batch_write() as batch:
        for copy in copies:
            batch.save(copy)
    with TagEntryModel.batch_write() as batch:
        for copy in copies:
            key = TagEntryModel.sort_key(copy.created_at, copy.pk)
            batch.save(TagEntryModel(TagEntryModel.key("counted"), key, track_id=copy.pk, artist_id=bob))
    assert len(tag_entries("counted")) == 307
    large = page_calls("/v1/artists/alice/tracks"), page_calls("/v1/tags/counted/tracks")

    assert large == small
    assert small[0] == Counter({"GetItem": 2, "Query": 1, "BatchGetItem": 1})
    assert small[1] == Counter({"Query": 1, "BatchGetItem": 2})
