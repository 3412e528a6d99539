"""Track versions against moto: a new original is processed beside the live one (which listeners
keep streaming), then swapped in at once, and the old version's files are deleted; a version that
fails leaves the track as it was and says why; repeats start no second run; a version racing a
track delete leaves nothing behind."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions.data import keys
from functions.data.models import EmbeddingModel, LaneModel, TrackModel, utcnow
from functions.domain.catalog import artists, entitlements
from functions.domain.intake import finalize, versions
from functions.domain.processing import steps

from .conftest import Stack, as_user
from .test_artwork_uploads import objects_under
from .test_workflow import processed, upload_and_finalize, wait_for


def version_intent(stack: Stack, user: str, track_id: str, path: Path, content_type: str = "audio/wav") -> Any:
    body = {"fileName": path.name, "contentType": content_type, "byteSize": path.stat().st_size}
    return stack.api.post(f"/v1/tracks/{track_id}/versions/uploads", json=body, headers=as_user(user))


def upload_version(stack: Stack, user: str, track_id: str, path: Path, content_type: str = "audio/wav") -> dict:
    """Intent, PUT, explicit finalize: the version's run has started."""
    response = version_intent(stack, user, track_id, path, content_type)
    assert response.status_code == 201, response.text
    created = dict(response.json())
    assert stack.put(created["signedUrl"], path, content_type=content_type) == 200
    finalized = stack.api.post(created["finalizeUrl"], headers=as_user(user))
    assert finalized.json()["status"] == "finalized", finalized.text
    return created


def track(stack: Stack, user: str, track_id: str) -> dict:
    return dict(stack.api.get(f"/v1/tracks/{track_id}", headers=as_user(user)).json())


def until_version_settled(stack: Stack, user: str, track_id: str, upload_id: str) -> dict:
    """The track once this version is live, or failed."""

    def settled(value: dict) -> bool:
        pending = value["pendingVersion"]
        return value["uploadId"] == upload_id or (pending is not None and pending["status"] == "failed")

    return wait_for(lambda: track(stack, user, track_id), until=settled)


def stream_key(stack: Stack, user: str, track_id: str, fmt: str = "aac") -> str:
    """The object key the /stream redirect points at, after checking that the object is there."""
    response = stack.api.get(
        f"/v1/tracks/{track_id}/stream?format={fmt}", headers=as_user(user), follow_redirects=False
    )
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert httpx.get(location).status_code == 200
    return httpx.URL(location).path.removeprefix(f"/{stack.resources.bucket}/")


def exists(stack: Stack, key: str) -> bool:
    return bool(stack.s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix=key).get("KeyCount"))


@pytest.fixture
def held_version_probe(runner: Any, monkeypatch: pytest.MonkeyPatch):
    """The runner, holding a version's run at its probe until the test releases it: the moment
    'while the new version processes' then lasts as long as the test needs. An original's probe
    is not held. (Released before the runner stops, which waits for the task.)"""
    release = threading.Event()
    reached = threading.Event()
    real_probe = steps.STEPS["probe"]

    def probe(payload: dict) -> Any:
        if payload.get("version"):
            reached.set()
            assert release.wait(timeout=60), "the test never released the version's probe"
        return real_probe(payload)

    monkeypatch.setitem(steps.STEPS, "probe", probe)
    yield reached, release
    release.set()


def test_the_live_version_streams_until_the_new_one_is_processed_then_is_replaced(
    stack, artist, wav_3s, make_audio, held_version_probe
):
    reached, release = held_version_probe
    # Given a ready track from a 3 s original
    upload = upload_and_finalize(stack, artist, wav_3s)
    assert processed(stack, artist, upload)["status"] == "ready"
    track_id, raw_track = upload["trackId"], upload["trackId"].removeprefix("trk_")
    v1 = track(stack, artist, track_id)
    v1_key = stream_key(stack, artist, track_id)
    assert v1_key == keys.rendition(raw_track, "aac", "m4a")
    v1_files = [*(r["key"] for r in TrackModel.get(raw_track, TrackModel.TRACK_SK).rendition_map().values()), v1_key]
    v1_original = keys.kept_upload(
        keys.track_prefix(raw_track), upload["uploadId"].removeprefix("upl_"), "original.wav"
    )

    # When a 5 s version is uploaded and its run is still going
    v2_audio = make_audio("tone-5s.wav", seconds=5.0)
    v2 = upload_version(stack, artist, track_id, v2_audio)
    v2_id = v2["uploadId"].removeprefix("upl_")
    assert reached.wait(timeout=120)

    # Then listeners still get the first version, whole
    during = track(stack, artist, track_id)
    assert (during["status"], during["uploadId"], during["durationMs"]) == (
        "ready",
        upload["uploadId"],
        v1["durationMs"],
    )
    assert during["renditions"] == v1["renditions"] and during["waveform"] == v1["waveform"]
    assert during["pendingVersion"]["uploadId"] == v2["uploadId"]
    assert during["pendingVersion"]["status"] == "processing"
    assert stream_key(stack, artist, track_id) == v1_key
    assert stream_key(stack, artist, track_id, "original") == v1_original
    # and a second version waits for this one
    second = version_intent(stack, artist, track_id, wav_3s)
    assert (second.status_code, second.json()["error"]["code"]) == (409, "version_in_progress")

    # When the run finishes
    release.set()
    after = until_version_settled(stack, artist, track_id, v2["uploadId"])

    # Then the new version is what the track plays, and the old one's files are gone
    assert after["uploadId"] == v2["uploadId"] and after["pendingVersion"] is None
    assert after["status"] == "ready"
    assert abs(after["durationMs"] - 5000) <= 50
    assert after["waveform"]["source"] == "analysis"
    assert stream_key(stack, artist, track_id) == keys.rendition(raw_track, "aac", "m4a", version=v2_id)
    v2_original = keys.kept_upload(keys.track_prefix(raw_track), v2_id, "original.wav")
    assert stream_key(stack, artist, track_id, "original") == v2_original
    for key in [*v1_files, v1_original]:
        assert not exists(stack, key), key
    assert objects_under(stack, keys.track_prefix(raw_track)) == sorted(
        [
            keys.rendition(raw_track, "aac", "m4a", version=v2_id),
            keys.rendition(raw_track, "mp3", "mp3", version=v2_id),
            keys.rendition(raw_track, "opus", "opus", version=v2_id),
            keys.waveform(raw_track, version=v2_id),
            v2_original,
        ]
    )
    # Its sound-profile vector went with it: only the new version's is kept.
    vectors = EmbeddingModel.query(raw_track, EmbeddingModel.sk.startswith(EmbeddingModel.SK_PREFIX))
    assert [item.sk for item in vectors] == [EmbeddingModel.key(raw_track, v2_id)[1]]
    history = [(v["uploadId"], v["status"], v["replacedAt"] is not None) for v in after["versions"]]
    assert history == [(upload["uploadId"], "replaced", True), (v2["uploadId"], "live", False)]
    assert abs(after["versions"][0]["durationMs"] - 3000) <= 50
    assert abs(after["versions"][1]["durationMs"] - 5000) <= 50
    status = stack.api.get(f"/v1/tracks/{track_id}/processing-status", headers=as_user(artist)).json()
    assert status["pendingVersion"] is None
    assert {lane["name"]: lane["state"] for lane in status["lanes"]}["artwork"] == "skipped"
    assert [execution["status"] for execution in stack.executions()] == ["SUCCEEDED", "SUCCEEDED"]
    # The replaced original's bytes are no longer the track's: uploading them again is not a
    # duplicate of it (upload_and_finalize asserts "finalized").
    assert upload_and_finalize(stack, artist, wav_3s)["trackId"] != track_id


def test_a_version_that_fails_leaves_the_live_one_and_says_why(stack, artist, runner, wav_3s, png_named_wav):
    upload = upload_and_finalize(stack, artist, wav_3s)
    processed(stack, artist, upload)
    track_id, raw_track = upload["trackId"], upload["trackId"].removeprefix("trk_")
    before = track(stack, artist, track_id)
    live_key = stream_key(stack, artist, track_id)

    # When the new version is a PNG renamed .wav
    v2 = upload_version(stack, artist, track_id, png_named_wav)
    after = until_version_settled(stack, artist, track_id, v2["uploadId"])

    # Then the track is as it was, and the version reports its failure
    assert after["pendingVersion"]["status"] == "failed"
    assert after["pendingVersion"]["failure"]["code"] == "audio_unreadable"
    for field in ("uploadId", "status", "workflowStatus", "durationMs", "renditions", "waveform", "failure"):
        assert after[field] == before[field], field
    assert stream_key(stack, artist, track_id) == live_key
    assert [(v["uploadId"], v["status"]) for v in after["versions"]] == [
        (upload["uploadId"], "live"),
        (v2["uploadId"], "failed"),
    ]
    assert after["versions"][1]["failure"]["code"] == "audio_unreadable"
    status = stack.api.get(f"/v1/tracks/{track_id}/processing-status", headers=as_user(artist)).json()
    assert (status["status"], status["workflowStatus"]) == ("ready", "succeeded")
    assert status["pendingVersion"]["failure"]["code"] == "audio_unreadable"
    assert status["lanes"][0]["code"] == "audio_unreadable"
    # Nothing of the failed version is kept
    v2_id = v2["uploadId"].removeprefix("upl_")
    assert objects_under(stack, keys.version_prefix(raw_track, v2_id)) == []
    assert not exists(stack, keys.original(v2_id, "wav"))
    # and the next version may be uploaded
    assert version_intent(stack, artist, track_id, wav_3s).status_code == 201


def test_a_repeated_put_event_and_finalize_start_no_second_run(stack, artist, runner, wav_3s, make_audio):
    upload = upload_and_finalize(stack, artist, wav_3s)
    processed(stack, artist, upload)
    audio = make_audio("tone-2s.wav", seconds=2.0)
    created = version_intent(stack, artist, upload["trackId"], audio).json()
    stack.put(created["signedUrl"], audio, content_type="audio/wav")
    stack.drain_s3_events()  # the put event finalizes it
    raw_upload = created["uploadId"].removeprefix("upl_")

    again = finalize.finalize(raw_upload, trigger="s3_event")
    first_api = stack.api.post(created["finalizeUrl"], headers=as_user(artist)).json()
    second_api = stack.api.post(created["finalizeUrl"], headers=as_user(artist)).json()

    assert again.status == "already_finalized"
    # Seed 004: the client's first finalize is 'finalized' even though the put event was first.
    assert (first_api["status"], second_api["status"]) == ("finalized", "already_finalized")
    assert first_api["trackId"] == upload["trackId"]
    after = until_version_settled(stack, artist, upload["trackId"], created["uploadId"])
    assert after["uploadId"] == created["uploadId"]
    assert abs(after["durationMs"] - 2000) <= 50
    assert [e["name"] for e in stack.executions()].count(raw_upload) == 1


def test_a_newer_intent_replaces_one_whose_file_was_not_finalized(stack, artist, runner, wav_3s, make_audio):
    upload = upload_and_finalize(stack, artist, wav_3s)
    processed(stack, artist, upload)
    audio = make_audio("tone-2s.wav", seconds=2.0)
    older = version_intent(stack, artist, upload["trackId"], audio).json()
    newer = version_intent(stack, artist, upload["trackId"], audio).json()

    # The replaced intent's file arrives: it is refused and deleted
    stack.put(older["signedUrl"], audio, content_type="audio/wav")
    stack.drain_s3_events()
    refused = stack.api.post(older["finalizeUrl"], headers=as_user(artist))
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "version_superseded")
    assert not exists(stack, keys.original(older["uploadId"].removeprefix("upl_"), "wav"))
    assert track(stack, artist, upload["trackId"])["pendingVersion"]["uploadId"] == newer["uploadId"]

    # The newer one goes live
    stack.put(newer["signedUrl"], audio, content_type="audio/wav")
    stack.drain_s3_events()
    after = until_version_settled(stack, artist, upload["trackId"], newer["uploadId"])
    assert after["uploadId"] == newer["uploadId"]
    assert older["uploadId"][4:] not in [e["name"] for e in stack.executions()]


def test_deleting_the_track_while_a_version_processes_leaves_nothing(
    stack, artist, wav_3s, make_audio, held_version_probe
):
    reached, release = held_version_probe
    upload = upload_and_finalize(stack, artist, wav_3s)
    processed(stack, artist, upload)
    track_id, raw_track = upload["trackId"], upload["trackId"].removeprefix("trk_")
    v2 = upload_version(stack, artist, track_id, make_audio("tone-2s.wav", seconds=2.0))
    v2_id = v2["uploadId"].removeprefix("upl_")
    assert reached.wait(timeout=120)

    assert stack.api.delete(f"/v1/tracks/{track_id}", headers=as_user(artist)).status_code == 204
    release.set()

    def version_run() -> dict:
        return next(e for e in stack.executions() if e["name"] == v2_id)

    assert wait_for(version_run, until=lambda e: e["status"] != "RUNNING")["status"] == "FAILED"
    assert objects_under(stack, keys.track_prefix(raw_track)) == []
    assert not exists(stack, keys.original(v2_id, "wav"))
    assert not exists(stack, keys.original(upload["uploadId"].removeprefix("upl_"), "wav"))
    assert list(TrackModel.query(raw_track)) == []
    assert list(LaneModel.query(raw_track)) == []


def test_a_version_run_that_ended_without_a_verdict_does_not_block_the_next(stack, artist, runner, wav_3s):
    upload = upload_and_finalize(stack, artist, wav_3s)
    processed(stack, artist, upload)
    track_id, raw_track = upload["trackId"], upload["trackId"].removeprefix("trk_")
    created = version_intent(stack, artist, track_id, wav_3s).json()
    # As a version's run leaves it when it stopped for good before its verdict (a crash, a
    # timeout): processing, since longer than the workflow may run.
    pending: Any = TrackModel.pending_version
    started = utcnow() - versions.STALLED_AFTER - timedelta(minutes=1)
    TrackModel(raw_track, TrackModel.TRACK_SK).update(
        actions=[pending["status"].set("processing"), pending["finalizedAt"].set(started.isoformat())]
    )
    blocked = track(stack, artist, track_id)["pendingVersion"]
    assert blocked["status"] == "processing"

    response = version_intent(stack, artist, track_id, wav_3s)

    assert response.status_code == 201, response.text
    after = track(stack, artist, track_id)
    assert after["pendingVersion"]["uploadId"] == response.json()["uploadId"]
    assert after["versions"][-1]["uploadId"] == created["uploadId"]
    assert after["versions"][-1]["failure"]["code"] == "processing_stopped"


def test_a_version_finalized_while_the_track_is_still_processing_waits_for_a_later_finalize(stack, artist, wav_3s):
    # No runner: the track's own run stays running
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    stack.drain_s3_events()
    created = version_intent(stack, artist, upload["trackId"], wav_3s)
    assert created.status_code == 201, created.text
    stack.put(created.json()["signedUrl"], wav_3s, content_type="audio/wav")
    stack.drain_s3_events()

    response = stack.api.post(created.json()["finalizeUrl"], headers=as_user(artist))

    assert (response.status_code, response.json()["error"]["code"]) == (409, "track_processing")
    # The file stays, and so does the intent: finalizing once the run has ended starts it.
    raw_upload = created.json()["uploadId"].removeprefix("upl_")
    assert exists(stack, keys.original(raw_upload, "wav"))
    assert track(stack, artist, upload["trackId"])["pendingVersion"]["status"] == "awaiting_upload"
    assert raw_upload not in [e["name"] for e in stack.executions()]


def test_version_intents_follow_the_upload_rules(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    track_id = upload["trackId"]
    draft = version_intent(stack, artist, track_id, wav_3s)
    assert (draft.status_code, draft.json()["error"]["code"]) == (409, "track_has_no_audio")
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    stack.drain_s3_events()

    def intent(**body: Any) -> httpx.Response:
        fields = {"fileName": "v2.wav", "contentType": "audio/wav", "byteSize": 1000, **body}
        return stack.api.post(f"/v1/tracks/{track_id}/versions/uploads", json=fields, headers=as_user(artist))

    created = intent()
    assert created.status_code == 201, created.text
    assert created.json()["requiredHeaders"] == {"content-type": "audio/wav"}
    assert created.json()["finalizeUrl"].endswith(f"/v1/uploads/{created.json()['uploadId']}/finalize")
    assert created.json()["trackId"] == track_id
    refusals = {
        "mime": intent(contentType="audio/mpeg"),
        "extension": intent(fileName="v2.png", contentType="image/png"),
        "empty": intent(byteSize=0),
        "size": intent(byteSize=500 * 1024 * 1024 + 1),
    }
    assert {name: (r.status_code, r.json()["error"]["code"]) for name, r in refusals.items()} == {
        "mime": (400, "unsupported_media_type"),
        "extension": (400, "unsupported_media_type"),
        "empty": (400, "empty_file"),
        "size": (413, "file_too_large"),
    }
    artists.upsert("mallory", handle="mallory", display_name="Mallory")
    other = stack.api.post(
        f"/v1/tracks/{track_id}/versions/uploads",
        json={"fileName": "v2.wav", "contentType": "audio/wav", "byteSize": 1000},
        headers=as_user("mallory"),
    )
    assert (other.status_code, other.json()["error"]["code"]) == (404, "track_not_found")
    entitlements.set_entitlement(artist, allowed=False, by="test", reason="chargeback")
    revoked = intent()
    assert (revoked.status_code, revoked.json()["error"]["code"]) == (403, "entitlement_required")
