"""Seed 001 against moto: PATCH /v1/tracks/{trackId} edits only what it is sent, and never fights
the workflow; DELETE /v1/tracks/{trackId} leaves nothing of the track behind -- no item, no
object, no album membership -- even while its workflow is still running.

Tests that go through albums (``albums.resolve`` / ``add_track`` / ``remove_track``, owned by the
albums work) say so in their name: ``..._album_...``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from functions import ids
from functions.data import keys, storage
from functions.data.models import LaneModel, TrackModel, UploadModel, ensure_bound
from functions.domain.catalog import album_membership, albums, artists, tracks
from functions.domain.processing import steps, verdict
from functions.errors import TrackDeleted
from functions.workflow.definition import LANES

from .conftest import Stack, as_user, error_of
from .test_lanes import lanes_by_name
from .test_tags_and_artwork import jpeg, tagged_mp3
from .test_workflow import processed, upload_and_finalize

# --- helpers -------------------------------------------------------------------------------------


def raw(prefixed: str) -> str:
    return prefixed.split("_", 1)[1]


def patch(stack: Stack, user: str | None, track_id: str, body: Any) -> Any:
    return stack.api.patch(f"/v1/tracks/{track_id}", json=body, headers=as_user(user) if user else {})


def get_track(stack: Stack, user: str, track_id: str) -> dict[str, Any]:
    response = stack.api.get(f"/v1/tracks/{track_id}", headers=as_user(user))
    assert response.status_code == 200, response.text
    return dict(response.json())


def objects_under(stack: Stack, prefix: str) -> list[str]:
    listed = stack.s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listed.get("Contents", []))


def partition(track_id: str) -> list[str]:
    """Every item left under the track's key (the track item and its lanes), by sort key."""
    page = TrackModel._get_connection().query(track_id, consistent_read=True)
    return sorted(item["sk"]["S"] for item in page.get("Items", []))


def tasks_in_flight(stack: Stack) -> int:
    """Workflow task messages the local runner has not finished with (queued or being run)."""
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=stack.resources.tasks_queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def eventually(check: Callable[[], Any], *, timeout_s: float = 120) -> Any:
    """``check()`` once it is falsy (nothing left), or its last value after ``timeout_s``. The wait is
    generous because it costs nothing when the check passes: on a loaded CI machine the lanes still
    queued when a workflow fails took over 30 s to drain (two runner threads, real ffmpeg)."""
    deadline = time.monotonic() + timeout_s
    while (value := check()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return value


@pytest.fixture
def bob(stack: Stack) -> str:
    artists.upsert("bob", handle="bob", display_name="Bob")
    return "bob"


@pytest.fixture
def draft(stack: Stack, artist: str, wav_3s) -> dict[str, Any]:
    """A draft track (intent created, nothing uploaded) with every editable field set."""
    artists.upsert("carol", handle="carol", display_name="Carol")
    return stack.create_upload(
        artist,
        wav_3s,
        title="First Title",
        features=["carol"],
        tags=["Ambient"],
        description="Liner notes",
        supportGate={"type": "any"},
    )


# --- PATCH -----------------------------------------------------------------------------------------


def test_patching_the_title_changes_only_the_title_and_makes_it_the_uploaders(stack, artist, draft):
    before = get_track(stack, artist, draft["trackId"])

    response = patch(stack, artist, draft["trackId"], {"title": "  Night Drive  "})

    assert response.status_code == 200, response.text
    after = response.json()
    assert (after["title"], after["titleSource"]) == ("Night Drive", "uploader")
    assert after["updatedAt"] > before["updatedAt"]
    unchanged = {k: v for k, v in before.items() if k not in {"title", "titleSource", "updatedAt"}}
    assert {k: after[k] for k in unchanged} == unchanged
    assert get_track(stack, artist, draft["trackId"]) == after  # what PATCH answers is what is stored


def test_a_title_set_by_patch_is_never_replaced_by_the_files_tags(stack, artist, tmp_path):
    path = tagged_mp3(tmp_path / "night-drive-final-v3.mp3")  # its tags say "Night Drive"
    edited, untouched = (stack.create_upload(artist, path, content_type="audio/mpeg") for _ in range(2))
    for upload in (edited, untouched):
        stack.put(upload["signedUrl"], path, content_type="audio/mpeg")
    assert patch(stack, artist, edited["trackId"], {"title": "My Title"}).status_code == 200

    # The real tags lane, on both tracks.
    for upload in (edited, untouched):
        key = f"uploads/{raw(upload['uploadId'])}/original.mp3"
        steps.run("tags", {"trackId": raw(upload["trackId"]), "objectKey": key})

    assert (get_track(stack, artist, untouched["trackId"])["title"]) == "Night Drive"  # the lane would
    track = get_track(stack, artist, edited["trackId"])
    assert (track["title"], track["titleSource"]) == ("My Title", "uploader")
    assert track["embeddedTags"]["title"] == "Night Drive"


def test_features_must_be_artists_and_are_normalized(stack, artist, bob, draft):
    unknown = patch(stack, artist, draft["trackId"], {"features": ["bob", "nobody-here"]})
    assert error_of(unknown) == (422, "unknown_feature_handle")
    assert unknown.json()["error"]["handle"] == "nobody-here"
    assert get_track(stack, artist, draft["trackId"])["features"] == ["carol"]  # nothing changed

    response = patch(stack, artist, draft["trackId"], {"features": [" @Bob ", "bob", "CAROL"]})
    assert response.json()["features"] == ["bob", "carol"]

    assert patch(stack, artist, draft["trackId"], {"features": []}).json()["features"] == []
    assert get_track(stack, artist, draft["trackId"])["tags"] == ["ambient"]  # other fields untouched


def test_tags_are_normalized_and_bounded_like_the_intents(stack, artist, draft):
    sent = ["  Lo-Fi   Hip HOP ", "lo-fi hip hop", "Ｊａｚｚ", " "]
    response = patch(stack, artist, draft["trackId"], {"tags": sent})
    assert response.json()["tags"] == ["lo-fi hip hop", "jazz"]

    too_many = patch(stack, artist, draft["trackId"], {"tags": [f"tag {n}" for n in range(11)]})
    too_long = patch(stack, artist, draft["trackId"], {"tags": ["x" * 41]})
    for refused in (too_many, too_long):
        assert error_of(refused) == (400, "invalid_track_update")
        assert refused.json()["error"]["field"] == "tags"
    assert get_track(stack, artist, draft["trackId"])["tags"] == ["lo-fi hip hop", "jazz"]

    # seed 000 sends lists as JSON strings; an empty list removes the tags
    assert patch(stack, artist, draft["trackId"], {"tags": '["Dub"]'}).json()["tags"] == ["dub"]
    assert patch(stack, artist, draft["trackId"], {"tags": []}).json()["tags"] == []


def test_an_empty_description_and_a_null_support_gate_remove_them(stack, artist, draft):
    response = patch(stack, artist, draft["trackId"], {"description": ""})
    assert (response.json()["description"], response.json()["supportGate"]) == (None, {"type": "any"})

    response = patch(stack, artist, draft["trackId"], {"supportGate": None})
    assert (response.json()["supportGate"], response.json()["title"]) == (None, "First Title")

    response = patch(stack, artist, draft["trackId"], {"description": "New notes", "supportGate": {"type": "any"}})
    assert (response.json()["description"], response.json()["supportGate"]) == ("New notes", {"type": "any"})
    item = TrackModel.get(raw(draft["trackId"]), TrackModel.TRACK_SK)
    assert (item.status, item.upload_id) == ("draft", raw(draft["uploadId"]))  # still a draft, still its intent


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"titel": "typo"}, "titel"),
        ({"title": None}, "title"),
        ({"title": "   "}, "title"),
        ({"supportGate": {"type": "gold"}}, "supportGate.type"),
        ({"removeImage": "please"}, "removeImage"),
        ({"tags": "not json"}, "tags"),
    ],
)
def test_unknown_fields_and_bad_values_are_refused_and_change_nothing(stack, artist, draft, body, field):
    before = get_track(stack, artist, draft["trackId"])

    response = patch(stack, artist, draft["trackId"], body)

    assert error_of(response) == (422, "validation_failed")
    assert field in {f["field"] for f in response.json()["error"]["fields"]}
    assert get_track(stack, artist, draft["trackId"]) == before


def test_remove_image_removes_the_artwork_and_its_stored_images(stack, artist, runner, tmp_path):
    path = tagged_mp3(tmp_path / "covered.mp3", cover=jpeg())
    upload = upload_and_finalize(stack, artist, path, content_type="audio/mpeg")
    assert lanes_by_name(processed(stack, artist, upload))["artwork"]["state"] == "succeeded"
    track_id = raw(upload["trackId"])
    # The cover and its 480 (own side), 300 and 96 px variants, each WebP and JPEG.
    assert len(objects_under(stack, keys.artwork_prefix(track_id))) == 7

    response = patch(stack, artist, upload["trackId"], {"removeImage": True})

    assert response.status_code == 200, response.text
    assert response.json()["artwork"] is None
    assert objects_under(stack, keys.artwork_prefix(track_id)) == []
    assert TrackModel.get(track_id, TrackModel.TRACK_SK).image_source is None
    assert len(objects_under(stack, f"tracks/{track_id}/renditions/")) == 3  # the audio is untouched
    artwork = stack.api.get(f"/v1/tracks/{upload['trackId']}/artwork", headers=as_user(artist), follow_redirects=False)
    assert error_of(artwork) == (404, "artwork_not_found")


def test_patch_writes_only_what_it_changes_so_processing_results_survive(stack, artist, draft):
    """A lane's write landing between the PATCH's read and its write is kept: the PATCH is an
    UpdateItem of its own attributes, never a save of the whole item it read."""
    real_get_owned = tracks.get_owned

    def read_then_a_lane_writes(track_id, owner_id):
        track = real_get_owned(track_id, owner_id)
        tracks.update(track_id, TrackModel.loudness.set({"integratedLufs": -9.5}))
        return track

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tracks, "get_owned", read_then_a_lane_writes)
        response = patch(stack, artist, draft["trackId"], {"description": "edited"})

    assert response.json()["loudness"] == {"integratedLufs": -9.5}
    assert response.json()["description"] == "edited"


# --- who may --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("caller", "expected"),
    [("alice", (200, 204)), ("bob", (404, 404)), (None, (401, 401))],
    ids=["owner", "another-artist", "anonymous"],
)
@pytest.mark.usefixtures("bob")
def test_only_the_owner_may_patch_or_delete(stack, artist, draft, caller, expected):
    patched = patch(stack, caller, draft["trackId"], {"title": "Mine now"})
    deleted = stack.api.delete(f"/v1/tracks/{draft['trackId']}", headers=as_user(caller) if caller else {})

    assert (patched.status_code, deleted.status_code) == expected
    if caller == "alice":
        assert patched.json()["title"] == "Mine now"
        assert deleted.content == b""
        assert partition(raw(draft["trackId"])) == []
        return
    for refused in (patched, deleted):
        assert refused.json()["error"]["code"] == ("track_not_found" if caller else "unauthorized")
    assert get_track(stack, artist, draft["trackId"])["title"] == "First Title"  # untouched


def test_unknown_malformed_and_already_deleted_ids_are_not_found(stack, artist, draft):
    assert stack.api.delete(f"/v1/tracks/{draft['trackId']}", headers=as_user(artist)).status_code == 204

    for track_id in (draft["trackId"], ids.render("trk", ids.new_id()), "trk_nonsense"):
        deleted = stack.api.delete(f"/v1/tracks/{track_id}", headers=as_user(artist))
        assert error_of(deleted) == (404, "track_not_found"), track_id
        assert error_of(patch(stack, artist, track_id, {"title": "x"})) == (404, "track_not_found"), track_id
    gone = stack.api.get(f"/v1/tracks/{draft['trackId']}", headers=as_user(artist))
    assert error_of(gone) == (404, "track_not_found")
    assert partition(raw(draft["trackId"])) == []  # the PATCH did not re-create it


# --- DELETE ---------------------------------------------------------------------------------------


def test_deleting_a_processed_track_removes_every_item_and_object(stack, artist, runner, tmp_path):
    path = tagged_mp3(tmp_path / "covered.mp3", cover=jpeg())
    upload = upload_and_finalize(stack, artist, path, content_type="audio/mpeg")
    assert processed(stack, artist, upload)["status"] == "ready"
    track_id = raw(upload["trackId"])
    original = keys.kept_upload(keys.track_prefix(track_id), raw(upload["uploadId"]), "original.mp3")
    stored = objects_under(stack, keys.track_prefix(track_id))
    assert {key.removeprefix(keys.track_prefix(track_id)).split("/")[0] for key in stored} == {
        "renditions", "waveform.json", "artwork", keys.KEPT_FOLDER.rstrip("/"),
    }  # fmt: skip
    assert original in stored
    assert "artwork/source-embedded.jpg" in {key.removeprefix(keys.track_prefix(track_id)) for key in stored}
    # The track, its lanes and its sound-profile vector (an item of its own).
    assert sorted(item.split("#")[0] for item in partition(track_id)) == sorted(
        ["track", "embedding", *(["lane"] * len(LANES))]
    )

    response = stack.api.delete(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist))

    assert response.status_code == 204
    assert objects_under(stack, keys.track_prefix(track_id)) == []
    assert objects_under(stack, original) == []
    assert partition(track_id) == []
    # The finalized intent stays: it is the record of what was uploaded.
    assert UploadModel.get(raw(upload["uploadId"])).status == "finalized"
    status = stack.api.get(f"/v1/tracks/{upload['trackId']}/processing-status", headers=as_user(artist))
    assert error_of(status) == (404, "track_not_found")


def test_deleting_a_pending_intents_track_means_the_file_can_no_longer_be_finalized(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    assert stack.api.delete(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).status_code == 204

    # The signed URL still works for a while; what it stores never becomes a track.
    assert stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav") == 200
    finalized = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))
    stack.drain_s3_events()  # the S3 trigger is refused the same way

    assert error_of(finalized) == (404, "upload_intent_not_found")
    assert finalized.json()["status"] == "upload_intent_not_found"
    assert stack.executions() == []
    assert partition(raw(upload["trackId"])) == []


def test_a_delete_while_the_workflow_runs_leaves_nothing_behind(stack, artist, runner, wav_3s, monkeypatch):
    """The MP3 lane is held until the track has been deleted, then stores its rendition and
    writes the track as the real lane does: the write is refused (it would re-create the item), the
    lane sweeps what it stored, the workflow ends, and nothing of the track is left."""
    started, release = threading.Event(), threading.Event()
    late: dict[str, Any] = {}

    def slow_mp3(payload: dict[str, Any]) -> dict[str, Any]:
        started.set()
        assert release.wait(120)
        key = keys.rendition(payload["trackId"], "mp3", "mp3")
        storage.put_bytes(key, b"ID3 late rendition", content_type="audio/mpeg")  # raises if not stored
        # (not a HEAD now: another lane that met the delete may sweep the prefix at any moment)
        late["stored"] = True
        try:
            tracks.update(payload["trackId"], TrackModel.rendition_mp3.set({"key": key}))
        except TrackDeleted:
            late["refused"] = True
            raise
        return {"rendition": {"key": key}}

    monkeypatch.setitem(steps.STEPS, "transcode_mp3", steps._lane("transcode_mp3", slow_mp3))
    upload = upload_and_finalize(stack, artist, wav_3s)
    track_id = raw(upload["trackId"])
    assert started.wait(120)

    response = stack.api.delete(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist))
    assert response.status_code == 204
    release.set()

    def running() -> bool:
        return any(e["status"] == "RUNNING" for e in stack.executions())

    assert not eventually(running), "the workflow must end"
    # Lanes that were under way when the Parallel state failed still finish (as in-flight Lambda
    # invocations do on AWS); a task message is deleted once its step has returned.
    assert not eventually(lambda: tasks_in_flight(stack)), "every started lane must end"
    (execution,) = stack.executions()
    # The MP3 lane's track_deleted ends its branch; MarkReady finds the track gone and sweeps.
    assert execution["status"] == "SUCCEEDED"
    assert late == {"stored": True, "refused": True}
    assert eventually(lambda: objects_under(stack, keys.track_prefix(track_id)) + partition(track_id)) == []
    assert objects_under(stack, f"uploads/{raw(upload['uploadId'])}/") == []


def test_the_verdict_of_a_deleted_track_sweeps_what_lanes_left(stack):
    """MarkReady/MarkFailed are the workflow's last steps: for a track deleted meanwhile they remove
    lane items and objects a lane left (one that crashed between storing and writing, say)."""
    ensure_bound()
    track_id = ids.new_id()
    leftover = keys.artwork_variant(track_id, 96, "webp")
    storage.put_bytes(leftover, b"RIFF", content_type="image/webp")
    LaneModel(track_id, LaneModel.sort_key("artwork"), lane="artwork", state="running").save()

    with pytest.raises(TrackDeleted):
        tracks.update(track_id, TrackModel.status.set("ready"))
    with pytest.raises(TrackDeleted):
        tracks.lane_finished(track_id, "waveform", state="succeeded")
    assert partition(track_id) == [LaneModel.sort_key("artwork")]  # neither write created an item

    for mark in (verdict.mark_failed, verdict.mark_ready):
        assert mark({"trackId": track_id, "ownerId": "alice", "failure": {"Error": "StepFailed"}}) == {
            "status": "deleted"
        }
        assert partition(track_id) == []
        assert objects_under(stack, keys.track_prefix(track_id)) == []


def test_delete_prefix_deletes_page_by_page_and_only_that_folder(stack, monkeypatch):
    track_id = ids.new_id()
    for n in range(5):
        storage.put_bytes(f"{keys.track_prefix(track_id)}renditions/{n}.m4a", b"x", content_type="audio/mp4")
    neighbour = keys.waveform(track_id + "0")  # shares the id as a string prefix, not the folder
    storage.put_bytes(neighbour, b"{}", content_type="application/json")
    batches: list[int] = []

    def count(params, **_):
        batches.append(len(params["Delete"]["Objects"]))

    monkeypatch.setattr(storage, "DELETE_BATCH", 2)
    events = storage.s3().meta.events
    events.register("provide-client-params.s3.DeleteObjects", count)
    try:
        assert storage.delete_prefix(keys.track_prefix(track_id)) == 5
    finally:
        events.unregister("provide-client-params.s3.DeleteObjects", count)

    assert batches == [2, 2, 1]
    assert objects_under(stack, keys.track_prefix(track_id)) == []
    assert objects_under(stack, neighbour) == [neighbour]


# --- albums (these go through functions.domain.catalog.albums) ------------------------------------------------


def album_order(album_id: str) -> list[str]:
    album = albums.find(raw(album_id))
    assert album is not None
    return album_membership.track_order(album)


def finalized(stack: Stack, user: str, path, **extra: Any) -> dict[str, Any]:
    """An upload PUT and finalized (no runner: it stays processing), with intent fields ``extra``."""
    upload = stack.create_upload(user, path, **extra)
    stack.put(upload["signedUrl"], path, content_type="audio/wav")
    response = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(user))
    assert response.json()["status"] == "finalized"
    return upload


def test_an_album_named_on_the_intent_holds_the_track_once_it_is_finalized(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s, album="Coastlines")

    track = get_track(stack, artist, upload["trackId"])
    assert track["album"] == "Coastlines"
    assert track["albumId"].startswith("alb_")
    # An intent that may never be used is not listed in the album yet.
    assert album_order(track["albumId"]) == []

    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))

    assert album_order(track["albumId"]) == [raw(upload["trackId"])]


def test_a_drafts_album_set_by_patch_lists_it_only_after_finalize(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    album_id = patch(stack, artist, upload["trackId"], {"album": "Later"}).json()["albumId"]
    assert album_order(album_id) == []

    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))

    assert album_order(album_id) == [raw(upload["trackId"])]


def test_an_album_deleted_before_finalize_leaves_a_standalone_track(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s, album="Gone Soon")
    album_id = get_track(stack, artist, upload["trackId"])["albumId"]
    assert stack.api.delete(f"/v1/albums/{album_id}", headers=as_user(artist)).status_code == 200

    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    response = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))

    assert response.json()["status"] == "finalized"
    track = get_track(stack, artist, upload["trackId"])
    assert (track["albumId"], track["album"]) == (None, None)


def test_patching_the_album_moves_the_track_and_null_takes_it_out(stack, artist, wav_3s):
    upload = finalized(stack, artist, wav_3s, album="First")
    first = get_track(stack, artist, upload["trackId"])["albumId"]
    track_id = raw(upload["trackId"])

    moved = patch(stack, artist, upload["trackId"], {"album": "Second"}).json()

    assert moved["album"] == "Second"
    assert (album_order(first), album_order(moved["albumId"])) == ([], [track_id])
    by_id = patch(stack, artist, upload["trackId"], {"album": first}).json()  # an album id works too
    assert (by_id["albumId"], by_id["album"]) == (first, "First")
    assert (album_order(first), album_order(moved["albumId"])) == ([track_id], [])

    out = patch(stack, artist, upload["trackId"], {"album": None}).json()

    assert (out["albumId"], out["album"]) == (None, None)
    assert album_order(first) == []
    assert out["title"] == "tone-3s"  # the rest is as it was


def test_another_owners_album_id_is_not_found_and_changes_nothing(stack, artist, bob, wav_3s):
    bobs = finalized(stack, bob, wav_3s, album="Bob's")
    bobs_album = get_track(stack, bob, bobs["trackId"])["albumId"]
    mine = finalized(stack, artist, wav_3s, album="Mine")

    response = patch(stack, artist, mine["trackId"], {"album": bobs_album, "title": "Changed?"})

    assert error_of(response) == (404, "album_not_found")
    track = get_track(stack, artist, mine["trackId"])
    assert (track["album"], track["title"]) == ("Mine", "tone-3s")
    assert album_order(bobs_album) == [raw(bobs["trackId"])]


def test_deleting_a_track_takes_it_out_of_its_album(stack, artist, distinct_wav):
    kept, deleted = (finalized(stack, artist, distinct_wav(), album="Both") for _ in range(2))
    album_id = get_track(stack, artist, kept["trackId"])["albumId"]
    assert album_order(album_id) == [raw(kept["trackId"]), raw(deleted["trackId"])]

    assert stack.api.delete(f"/v1/tracks/{deleted['trackId']}", headers=as_user(artist)).status_code == 204

    assert album_order(album_id) == [raw(kept["trackId"])]
