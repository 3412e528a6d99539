"""Finalize converges: explicit calls and S3 put events, racing or repeated, process once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from functions import clients, ids
from functions.data.models import TrackModel, UploadModel, bind
from functions.domain.catalog import artists
from functions.domain.intake import finalize
from functions.workflow.definition import LANES

from .conftest import Stack, as_user


def finalize_call(stack: Stack, upload: dict, user: str = "alice", **body):
    return stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", json=body or None, headers=as_user(user))


def test_create_upload_returns_the_seed_004_shape(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    assert set(upload) == {
        "uploadId", "trackId", "assetId", "signedUrl", "method", "expiresAt", "requiredHeaders", "finalizeUrl",
    }  # fmt: skip
    assert upload["uploadId"].startswith("upl_")
    assert upload["trackId"].startswith("trk_")
    assert upload["assetId"].startswith("ast_")
    assert upload["method"] == "PUT"
    assert upload["expiresAt"].endswith("Z")
    assert upload["finalizeUrl"].endswith(f"/v1/uploads/{upload['uploadId']}/finalize")
    # The URL is signed over what the client sets (requiredHeaders) and what every HTTP client sends
    # by itself (Host, and Content-Length, which browsers refuse to be told): docs/api.md says so.
    signed = upload["signedUrl"].split("X-Amz-SignedHeaders=")[1].split("&")[0].split("%3B")
    assert sorted(signed) == ["content-length", "content-type", "host"]
    assert upload["requiredHeaders"] == {"content-type": "audio/wav"}


def test_finalize_twice_returns_finalized_then_already_finalized(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    assert stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav") == 200

    first = finalize_call(stack, upload, durationMs=3000)
    second = finalize_call(stack, upload)

    assert first.status_code == 200
    assert first.json() == {
        "status": "finalized",
        "assetId": upload["assetId"],
        "assetKind": "original_audio",
        "jobsQueued": list(LANES),
        "trackId": upload["trackId"],
        "uploadId": upload["uploadId"],
        "workflowStatus": "running",
    }
    assert second.status_code == 200
    assert second.json()["status"] == "already_finalized"
    assert [e["name"] for e in stack.executions()] == [ids.parse("upl", upload["uploadId"])]


def test_the_s3_event_alone_finalizes_the_upload(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")

    stack.drain_s3_events()

    bind()
    stored = UploadModel.get(ids.parse("upl", upload["uploadId"]))
    assert stored.status == "finalized"
    assert stored.finalized_by == "s3_event"
    assert stored.expires_at_epoch is None  # a finalized intent no longer expires
    assert TrackModel.get(stored.track_id, TrackModel.TRACK_SK).expires_at_epoch is None
    assert len(stack.executions()) == 1
    # The client never saw the S3 event: its first finalize is "finalized", a re-finalize is not.
    first, again = finalize_call(stack, upload).json(), finalize_call(stack, upload).json()
    assert (first["status"], first["jobsQueued"]) == ("finalized", list(LANES))
    assert (again["status"], again["jobsQueued"]) == ("already_finalized", [])
    assert len(stack.executions()) == 1


@pytest.mark.parametrize("s3_event", ["racing", "first"])
def test_fifty_concurrent_finalizes_and_the_s3_event_process_once_and_answer_finalized_once(
    stack, artist, wav_3s, s3_event
):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    raw_upload_id = ids.parse("upl", upload["uploadId"])
    if s3_event == "first":
        stack.drain_s3_events()

    def call(index: int) -> str:
        if index == 0:
            stack.drain_s3_events()
            return "s3_event"
        return finalize.finalize(raw_upload_id, trigger="api", owner_id="alice").status

    with ThreadPoolExecutor(max_workers=17) as pool:
        outcomes = list(pool.map(call, range(51)))

    api_outcomes = [o for o in outcomes if o != "s3_event"]
    # One conditional write lets exactly one caller start processing (the S3 event or an API
    # call); a second one lets exactly one API caller hear "finalized". Remove either: this fails.
    assert api_outcomes.count("finalized") == 1
    assert api_outcomes.count("already_finalized") == 49
    assert len(stack.executions()) == 1
    tracks = list(TrackModel.by_owner.query("alice"))
    assert [t.track_id for t in tracks] == [ids.parse("trk", upload["trackId"])]


def test_a_put_with_another_content_type_is_rejected_and_never_processed(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    # moto does not enforce the signature; real S3 would refuse this PUT outright.
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/mpeg")

    response = finalize_call(stack, upload)

    assert response.status_code == 422
    assert response.json()["status"] == "upload_asset_invalid"
    assert response.json()["error"]["code"] == "upload_asset_invalid"
    assert "content type" in response.json()["error"]["message"]
    assert stack.executions() == []
    assert stack.s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix="uploads/").get("KeyCount") == 0
    # The S3 event for the same object changes nothing, and asking again gives the same answer.
    stack.drain_s3_events()
    assert stack.executions() == []
    assert finalize_call(stack, upload).json()["error"]["code"] == "upload_asset_invalid"


def test_a_put_of_the_wrong_size_is_rejected_and_never_processed(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav", body=wav_3s.read_bytes()[:-1000])

    stack.drain_s3_events()  # the S3 trigger reaches the same verdict first
    response = finalize_call(stack, upload)

    assert response.status_code == 422
    assert "size" in response.json()["error"]["message"]
    assert stack.executions() == []
    bind()
    assert UploadModel.get(ids.parse("upl", upload["uploadId"])).status == "rejected"


def test_finalize_before_any_put_reports_the_asset_missing(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    response = finalize_call(stack, upload)
    assert response.status_code == 409
    assert response.json()["status"] == "upload_asset_missing"
    assert response.json()["error"]["code"] == "upload_asset_missing"
    # Nothing is lost: once the PUT lands, finalize succeeds.
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    assert finalize_call(stack, upload).json()["status"] == "finalized"


def test_another_owners_intent_is_not_found(stack, artist, wav_3s):
    artists.upsert("bob", handle="bob", display_name=None)
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")

    response = finalize_call(stack, upload, user="bob")

    assert response.status_code == 404
    assert response.json()["status"] == "upload_intent_not_found"
    assert stack.executions() == []
    assert stack.api.get(f"/v1/tracks/{upload['trackId']}", headers=as_user("bob")).status_code == 404


def test_a_different_asset_id_is_an_asset_mismatch(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    response = finalize_call(stack, upload, assetId=f"ast_{ids.new_id()}")
    assert response.status_code == 409
    assert response.json()["status"] == "asset_mismatch"
    assert response.json()["error"]["code"] == "upload_asset_mismatch"
    assert finalize_call(stack, upload, assetId=upload["assetId"]).json()["status"] == "finalized"


def test_the_advisory_waveform_and_duration_are_stored_on_the_track(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    peaks = [round(i / 31, 3) for i in range(32)]
    finalize_call(stack, upload, durationMs=3000, waveform={"peaks": peaks, "sampleRateHz": 48000, "channels": 2})

    track = stack.api.get(f"/v1/tracks/{upload['trackId']}", headers=as_user("alice")).json()
    assert track["waveform"] == {"peaks": peaks, "sampleRateHz": 48000, "channels": 2, "source": "client"}
    assert track["durationMs"] == 3000
    assert track["status"] == "processing"


def test_a_waveform_sent_after_the_s3_event_won_is_still_kept(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    stack.drain_s3_events()
    response = finalize_call(stack, upload, waveform={"peaks": [0.5] * 16, "sampleRateHz": 44100})
    assert response.json()["status"] == "finalized"
    track = stack.api.get(f"/v1/tracks/{upload['trackId']}", headers=as_user("alice")).json()
    assert track["waveform"]["peaks"] == [0.5] * 16


@pytest.mark.parametrize("trigger", ["api", "s3_event"])
def test_a_crash_between_claim_and_start_is_repaired_by_the_next_finalize(stack, artist, wav_3s, trigger):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    raw_upload_id = ids.parse("upl", upload["uploadId"])
    # The winner claimed the upload and then died before starting the workflow.
    bind()
    UploadModel(raw_upload_id).update(actions=[UploadModel.status.set("finalized")])

    if trigger == "api":
        assert finalize_call(stack, upload).json()["status"] == "finalized"
    else:
        stack.drain_s3_events()

    assert [e["name"] for e in stack.executions()] == [raw_upload_id]


def test_a_workflow_that_failed_to_start_is_started_by_the_next_finalize(stack, artist, wav_3s, monkeypatch):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    raw_upload_id = ids.parse("upl", upload["uploadId"])
    # The claim records the execution's ARN before the start; Step Functions then refuses the start.
    workflows = clients.sfn()
    start = workflows.start_execution

    def unavailable(**_: object) -> None:
        raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "StartExecution")

    monkeypatch.setattr(workflows, "start_execution", unavailable)
    failed = finalize_call(stack, upload)
    assert (failed.status_code, failed.json()["error"]["code"]) == (503, "workflow_start_failed")
    assert stack.executions() == []

    # The failed start took the ARN back, so the next finalize starts the execution.
    monkeypatch.setattr(workflows, "start_execution", start)
    assert finalize_call(stack, upload).status_code == 200
    assert [e["name"] for e in stack.executions()] == [raw_upload_id]


def test_a_pending_intent_and_its_draft_track_expire_together(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    bind()
    stored = UploadModel.get(ids.parse("upl", upload["uploadId"]))
    track = TrackModel.get(stored.track_id, TrackModel.TRACK_SK)
    assert stored.expires_at_epoch is not None
    assert track.expires_at_epoch == stored.expires_at_epoch
    assert stored.expires_at_epoch > stored.expires_at  # the item outlives the signed URL
