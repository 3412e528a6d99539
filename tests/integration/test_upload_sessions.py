"""Seed 003 upload sessions against moto: a session into the caller's album, track intents with a
presigned PUT (audio) and a presigned POST (cover), no finalize call (the S3 put events finalize),
tracks placed in the album in organization_index order however their uploads race, the cover
becoming the track's artwork, and the seed's own error shape."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.data.models import UploadSessionModel, ensure_bound, utcnow
from functions.domain.catalog import album_membership, albums
from functions.domain.intake import media_types, sessions

from .conftest import Stack, as_user
from .test_artwork_uploads import image_file
from .test_workflow import wait_for

UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


def new_album(stack: Stack, user: str, title: str = "Summer 2024") -> str:
    response = stack.api.post("/v1/albums", json={"title": title}, headers=as_user(user))
    assert response.status_code == 201, response.text
    return str(response.json()["albumId"])


def open_session(stack: Stack, user: str, album_id: str, **extra: Any) -> dict[str, Any]:
    body = {"collection_id": album_id, **extra}
    response = stack.api.post("/v1/upload_session", json=body, headers=as_user(user))
    assert response.status_code == 201, response.text
    return dict(response.json())


def add_track(stack: Stack, user: str, session_id: str, **body: Any) -> httpx.Response:
    return stack.api.post(f"/v1/upload/{session_id}/track", json=body, headers=as_user(user))


def post_cover(cover: dict[str, Any], path: Path, content_type: str) -> httpx.Response:
    """The browser-form POST a client makes: the signed fields, its Content-Type, the file last."""
    data = {**cover["fields"], "Content-Type": content_type}
    return httpx.post(cover["upload_url"], data=data, files={"file": (path.name, path.read_bytes(), content_type)})


def session_state(stack: Stack, user: str, session_id: str) -> dict[str, Any]:
    response = stack.api.get(f"/v1/upload_session/{session_id}", headers=as_user(user))
    assert response.status_code == 200, response.text
    return dict(response.json())


def posted_cover_upload_id(stack: Stack, intent: dict[str, Any]) -> str:
    """The cover intent's upload id, from the key its POST was signed for (uploads/<id>/artwork)."""
    return str(intent["track_cover_upload"]["fields"]["key"].split("/")[1])


def album_track_ids(album_id: str) -> list[str]:
    album = albums.find(album_id.removeprefix("alb_"))
    assert album is not None
    return album_membership.track_order(album)


@pytest.mark.slow
def test_a_session_uploads_three_tracks_in_order_with_a_cover(stack, artist, runner, distinct_wav, tmp_path):
    # Given a session into Alice's album (addressed by its bare id, as seed clients do)
    album_id = new_album(stack, artist)
    bare_album = album_id.removeprefix("alb_")
    created = open_session(stack, artist, bare_album, metadata={"batch_name": "Summer 2024 Collection"})
    session_id = created["upload_session_id"]
    assert created["ok"] is True
    assert created["upload_session"] == {
        "id": session_id,
        "collection_id": bare_album,
        "expires_at": created["expires_at"],
    }
    assert set(created) == {"ok", "upload_session_id", "upload_session", "expires_at"}

    # When three tracks are added (organization_index given out of creation order)
    intents = []
    for index, number, title in (("2", 2, "Second"), ("10", 3, "Third"), ("1", 1, "First")):
        response = add_track(
            stack, artist, session_id, file_name=f"{title.lower()}.wav", organization_index=index,
            metadata={"track_number": number, "title": title},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        intents.append(response.json())
    first = intents[0]
    assert set(first) == {
        "ok", "api_request_id", "upload_session_id", "track_id", "track", "track_upload", "track_cover_upload",
    }  # fmt: skip
    assert first["ok"] is True and first["upload_session_id"] == session_id
    assert first["track"]["id"] == first["track_id"] and first["track"]["index"] == "2"
    assert first["track"]["path"].startswith("uploads/") and first["track"]["path"].endswith("/original.wav")
    assert first["track_upload"]["method"] == "PUT" and first["track_upload"]["ttl"] == 900
    assert first["track_upload"]["headers"] == {"content-type": "audio/wav"}
    assert first["track_cover_upload"]["method"] == "POST" and "policy" in first["track_cover_upload"]["fields"]
    assert len({i["api_request_id"] for i in intents}) == 3

    # And a cover for "Second" is POSTed (a browser form) before any audio: it renders onto the
    # draft, and the artwork survives the track's own processing later
    cover = image_file(tmp_path / "cover.png", size=(300, 300))
    posted = post_cover(intents[0]["track_cover_upload"], cover, "image/png")
    assert posted.status_code in (200, 204), posted.text
    stack.drain_s3_events()
    # And their audio is PUT in reverse order of organization_index ("10", "2", "1"), each put
    # event finalizing its track (no finalize call)
    for intent in (intents[1], intents[0], intents[2]):
        assert stack.put(intent["track_upload"]["upload_url"], distinct_wav(), content_type="audio/wav") == 200
        stack.drain_s3_events()

    # Then all three are processed and listed in the album as 1, 2, 10
    def settled() -> dict[str, Any]:
        return session_state(stack, artist, session_id)

    state = wait_for(
        settled,
        until=lambda s: all(
            t["status"] == "ready" and (t["id"] != first["track_id"] or t["cover_status"] == "ready")
            for t in s["upload_session"]["tracks"]
        ),
        timeout_s=120,
    )
    tracks = state["upload_session"]["tracks"]
    assert [(t["id"], t["status"]) for t in tracks] == [(i["track_id"], "ready") for i in intents]
    assert [t["title"] for t in tracks] == ["Second", "Third", "First"]
    assert album_track_ids(album_id) == [intents[2]["track_id"], intents[0]["track_id"], intents[1]["track_id"]]
    page = stack.api.get("/v1/artists/alice/albums/summer-2024").json()
    assert [t["title"] for t in page["tracks"]] == ["First", "Second", "Third"]

    # And the session shows its own fields, and the cover became that track's artwork
    detail = state["upload_session"]
    assert (detail["collection_id"], detail["status"], detail["metadata"]) == (
        bare_album, "open", {"batch_name": "Summer 2024 Collection"},
    )  # fmt: skip
    assert [t["cover_status"] for t in tracks] == ["ready", "pending", "pending"]
    track = stack.api.get(f"/v1/tracks/{first['track_id']}", headers=as_user(artist)).json()
    assert track["artwork"]["origin"] == "upload"
    assert (track["title"], track["trackNumber"]) == ("Second", 2)
    artwork = stack.api.get(
        f"/v1/tracks/{first['track_id']}/artwork?size=300", headers=as_user(artist), follow_redirects=False
    )
    assert artwork.status_code == 302
    assert f"/{posted_cover_upload_id(stack, first)}/" in artwork.headers["location"]


def test_tracks_finalized_in_any_order_are_placed_by_their_keys(stack, artist):
    # Given an album holding a track added without a key
    album_id = new_album(stack, artist).removeprefix("alb_")
    album_membership.add_track(album_id, "loose")
    keys = {
        name: sessions.order_key(index, number, f"2024-01-01T00:00:0{n}", name)
        for n, (name, index, number) in enumerate(
            [("a", "1", None), ("b", "2", 1), ("c", "2", 2), ("d", "x", None), ("e", None, 1), ("f", None, None)]
        )
    }
    # When they are placed in reverse order
    revision = albums.find(album_id).revision
    for name in reversed(list(keys)):
        album_membership.place_track(album_id, name, keys[name])
    album_membership.place_track(album_id, "c", keys["c"])  # a repeated event changes nothing
    # Then the keyed tracks are in key order, the loose one kept its place, each once
    album = albums.find(album_id)
    assert album_track_ids(album_id) == ["loose", "a", "b", "c", "d", "e", "f"]
    assert album.revision == revision + 6  # every placement moved the ETag
    assert {m.track_id for m in album_membership.members(albums.find(album_id)) if m.order_key is not None} == set(keys)


def test_placements_racing_each_other_all_land_once_in_key_order(stack, artist):
    # Given eight session tracks finalized at the same moment (threads, as concurrent Lambdas)
    album_id = new_album(stack, artist).removeprefix("alb_")
    keys = {f"t{n}": sessions.order_key(str(n), None, "2024-01-01T00:00:00", f"t{n}") for n in range(8)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda name: album_membership.place_track(album_id, name, keys[name]), reversed(list(keys))))
    # Then the revision conditions made them take turns: each once, in order
    assert album_track_ids(album_id) == list(keys)
    assert albums.find(album_id).revision == 1 + len(keys)


def test_numeric_indexes_sort_as_numbers_then_strings_then_none():
    keys = [sessions.order_key(i, None, "t", i or "") for i in ("10", "9", "b", None, "a")]
    assert [k[1] for k in sorted(keys, key=tuple)] == [9, 10, "a", "b", ""]


def test_the_cover_post_policy_bounds_size_and_type(stack, artist, tmp_path):
    # Given a track intent in a session
    session = open_session(stack, artist, new_album(stack, artist))
    intent = add_track(stack, artist, session["upload_session_id"], file_name="a.mp3").json()
    fields = intent["track_cover_upload"]["fields"]
    # Then the signed policy bounds the size to 20 MB and the type to image/*, for exactly its key
    policy = json.loads(base64.b64decode(fields["policy"]))
    conditions = policy["conditions"]
    assert ["content-length-range", 1, media_types.MAX_IMAGE_BYTES] in conditions
    assert ["starts-with", "$Content-Type", "image/"] in conditions
    assert {"key": fields["key"]} in conditions and fields["key"].startswith("uploads/")
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    # And the PUT is signed over the type the file name implies
    assert intent["track_upload"]["headers"] == {"content-type": "audio/mpeg"}


def test_a_cover_outside_the_bounds_is_refused_at_finalize(stack, artist, distinct_wav, tmp_path):
    # moto does not enforce a POST policy's conditions (checked here: it stores the PDF), so the
    # bounds are enforced again when the put event finalizes the cover intent.
    session = open_session(stack, artist, new_album(stack, artist))
    intent = add_track(stack, artist, session["upload_session_id"], file_name="a.wav").json()
    document = tmp_path / "notes.pdf"
    document.write_bytes(b"%PDF-1.4 not an image")
    stored = post_cover(intent["track_cover_upload"], document, "application/pdf")
    assert stored.status_code in (200, 204)
    stack.drain_s3_events()
    state = session_state(stack, artist, session["upload_session_id"])
    assert state["upload_session"]["tracks"][0]["cover_status"] == "failed"
    key = intent["track_cover_upload"]["fields"]["key"]
    assert "Contents" not in stack.s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix=key)


def test_audio_over_the_cap_is_refused_at_finalize(stack, artist, distinct_wav, monkeypatch):
    # The session's PUT carries no size (the seed's intent names only the file): the cap is applied
    # to what was stored. Lowered here so a small file is over it.
    monkeypatch.setenv("TRACKLANE_MAX_AUDIO_BYTES", "1000")
    from functions.settings import settings

    settings.cache_clear()
    session = open_session(stack, artist, new_album(stack, artist))
    intent = add_track(stack, artist, session["upload_session_id"], file_name="big.wav").json()
    assert stack.put(intent["track_upload"]["upload_url"], distinct_wav(), content_type="audio/wav") == 200
    stack.drain_s3_events()
    track = session_state(stack, artist, session["upload_session_id"])["upload_session"]["tracks"][0]
    assert (track["status"], track["error"]["code"]) == ("failed", "upload_asset_invalid")
    assert "at most 1000" in track["error"]["message"]
    settings.cache_clear()


def test_a_put_with_another_content_type_is_refused(stack, artist, distinct_wav):
    session = open_session(stack, artist, new_album(stack, artist))
    intent = add_track(stack, artist, session["upload_session_id"], file_name="a.wav").json()
    assert stack.put(intent["track_upload"]["upload_url"], distinct_wav(), content_type="audio/x-wav") == 200
    stack.drain_s3_events()
    track = session_state(stack, artist, session["upload_session_id"])["upload_session"]["tracks"][0]
    assert (track["status"], track["error"]["code"]) == ("failed", "upload_asset_invalid")


def seed_error(response: httpx.Response) -> tuple[int, str]:
    body = response.json()
    assert body["ok"] is False and set(body) == {"ok", "error"}
    assert set(body["error"]) == {"code", "message"} and body["error"]["message"]
    return response.status_code, body["error"]["code"]


def test_validation_errors_answer_in_the_seed_shape(stack, artist):
    album_id = new_album(stack, artist)
    post = stack.api.post
    assert seed_error(post("/v1/upload_session", json={}, headers=as_user(artist))) == (422, "validation_failed")
    assert seed_error(
        post("/v1/upload_session", json={"collection_id": album_id, "creator_id": "alice"}, headers=as_user(artist))
    ) == (422, "validation_failed")
    big = {"blob": "x" * (sessions.MAX_SESSION_METADATA_BYTES + 1)}
    assert seed_error(
        post("/v1/upload_session", json={"collection_id": album_id, "metadata": big}, headers=as_user(artist))
    ) == (413, "metadata_too_large")
    assert seed_error(
        post("/v1/upload_session", content=b"{nope", headers={**as_user(artist), "content-type": "application/json"})
    ) == (400, "invalid_json")
    assert seed_error(post("/v1/upload_session", json={"collection_id": "nope"}, headers=as_user(artist))) == (
        404, "collection_not_found",
    )  # fmt: skip
    assert seed_error(post("/v1/upload_session", json={"collection_id": album_id})) == (401, "unauthorized")

    session_id = open_session(stack, artist, album_id)["upload_session_id"]
    assert seed_error(add_track(stack, artist, session_id)) == (422, "validation_failed")
    assert seed_error(add_track(stack, artist, session_id, file_name="cover.png")) == (400, "unsupported_media_type")
    assert seed_error(add_track(stack, artist, session_id, file_name="a.wav", metadata={"track_number": "one"})) == (
        400, "invalid_upload",
    )  # fmt: skip
    assert seed_error(add_track(stack, artist, session_id, file_name="a.wav", surprise=1)) == (422, "validation_failed")
    # Other routes keep the API's own shape
    other = stack.api.post("/v1/albums", json={}, headers=as_user(artist))
    assert (
        other.status_code == 422 and "ok" not in other.json() and other.json()["error"]["code"] == "validation_failed"
    )


def test_another_users_session_is_not_found(stack, artist):
    from functions.domain.catalog import artists

    artists.upsert("mallory", handle="mallory", display_name="Mallory")
    album_id = new_album(stack, artist)
    session_id = open_session(stack, artist, album_id)["upload_session_id"]
    get = stack.api.get(f"/v1/upload_session/{session_id}", headers=as_user("mallory"))
    assert seed_error(get) == (404, "upload_session_not_found")
    assert seed_error(add_track(stack, "mallory", session_id, file_name="a.wav")) == (404, "upload_session_not_found")
    assert seed_error(stack.api.get("/v1/upload_session/not-a-uuid", headers=as_user(artist))) == (
        404, "upload_session_not_found",
    )  # fmt: skip
    # Nor can Mallory open a session into Alice's album
    stolen = stack.api.post("/v1/upload_session", json={"collection_id": album_id}, headers=as_user("mallory"))
    assert seed_error(stolen) == (404, "collection_not_found")


def test_an_expired_session_takes_no_more_tracks(stack, artist):
    session_id = open_session(stack, artist, new_album(stack, artist))["upload_session_id"]
    ensure_bound()
    item = UploadSessionModel.get(UploadSessionModel.key(session_id))
    item.update(actions=[UploadSessionModel.expires_at.set(utcnow() - timedelta(seconds=1))])
    assert seed_error(add_track(stack, artist, session_id, file_name="a.wav")) == (410, "upload_session_expired")
    assert session_state(stack, artist, session_id)["upload_session"]["status"] == "expired"


def test_a_session_holds_a_bounded_number_of_tracks(stack, artist, monkeypatch):
    monkeypatch.setattr(sessions, "MAX_TRACKS", 2)
    session_id = open_session(stack, artist, new_album(stack, artist))["upload_session_id"]
    for name in ("a.wav", "b.wav"):
        assert add_track(stack, artist, session_id, file_name=name).status_code == 201
    assert seed_error(add_track(stack, artist, session_id, file_name="c.wav")) == (409, "upload_session_full")


@pytest.mark.parametrize("extension", sorted(sessions.AUDIO_CONTENT_TYPES))
def test_every_signed_content_type_is_one_the_intent_accepts(extension):
    assert sessions.AUDIO_CONTENT_TYPES[extension] in media_types.AUDIO_TYPES[extension]
    assert set(sessions.AUDIO_CONTENT_TYPES) == set(media_types.AUDIO_TYPES)
