"""An intent's life: pending -> finalized | rejected | duplicate | cancelled, and expired (derived).
``DELETE /v1/uploads/{uploadId}`` cancels; nothing of a cancelled or expired intent stays visible
or stored."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from functions.data.models import TrackModel, UploadModel, utcnow
from functions.domain.intake import uploads

from .conftest import Stack, as_user


def _my_track_ids(stack: Stack, user: str) -> list[str]:
    response = stack.api.get("/v1/me/tracks", params={"limit": 100}, headers=as_user(user))
    assert response.status_code == 200, response.text
    return [track["trackId"] for track in response.json()["tracks"]]


def _stored_uploads(stack: Stack) -> list[str]:
    listed = stack.s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix="uploads/")
    return [item["Key"] for item in listed.get("Contents", [])]


def _cancel(stack: Stack, user: str | None, upload: dict[str, Any]) -> Any:
    headers = as_user(user) if user else {}
    return stack.api.delete(f"/v1/uploads/{upload['uploadId']}", headers=headers)


def test_cancelling_a_pending_intent_deletes_its_draft_and_its_file(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    assert stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav") == 200
    assert upload["trackId"] in _my_track_ids(stack, artist)

    response = _cancel(stack, artist, upload)

    assert response.status_code == 204 and response.content == b""
    assert upload["trackId"] not in _my_track_ids(stack, artist)
    assert stack.api.get(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).status_code == 404
    assert _stored_uploads(stack) == []
    # The put event that was already on its way finalizes nothing.
    stack.drain_s3_events()
    assert stack.executions() == []
    finalize = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))
    assert finalize.status_code == 410
    assert finalize.json()["status"] == "upload_intent_cancelled"
    assert finalize.json()["error"]["code"] == "upload_intent_cancelled"


def test_a_file_put_after_the_cancel_is_deleted_by_its_put_event(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    assert _cancel(stack, artist, upload).status_code == 204

    # The signed URL outlives the cancel: S3 accepts the PUT.
    assert stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav") == 200
    assert len(_stored_uploads(stack)) == 1
    stack.drain_s3_events()

    assert _stored_uploads(stack) == []
    assert stack.executions() == []


def test_cancelling_twice_answers_204_both_times(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)

    first, second = _cancel(stack, artist, upload), _cancel(stack, artist, upload)

    assert (first.status_code, second.status_code) == (204, 204)
    assert UploadModel.get(upload["uploadId"].removeprefix("upl_")).status == "cancelled"


def test_a_rejected_intent_can_be_cancelled_and_its_draft_goes(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/x-wav-but-wrong", body=b"not the promised file")
    rejected = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))
    assert rejected.json()["error"]["code"] == "upload_asset_invalid"
    assert upload["trackId"] in _my_track_ids(stack, artist)

    assert _cancel(stack, artist, upload).status_code == 204

    assert upload["trackId"] not in _my_track_ids(stack, artist)


def test_cancelling_a_finalized_upload_is_a_conflict_and_changes_nothing(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))

    response = _cancel(stack, artist, upload)

    assert (response.status_code, response.json()["error"]["code"]) == (409, "upload_already_finalized")
    assert upload["trackId"] in _my_track_ids(stack, artist)
    # The finalized file is kept under its track, out of reach of the signed URL, and stays.
    record = UploadModel.get(upload["uploadId"].removeprefix("upl_"))
    assert _stored_uploads(stack) == []
    assert stack.s3.head_object(Bucket=stack.resources.bucket, Key=uploads.kept_key(record))["ContentLength"] > 0
    assert UploadModel.get(upload["uploadId"].removeprefix("upl_")).status == "finalized"


def test_another_owner_gets_not_found_and_anonymous_unauthorized(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")

    other = _cancel(stack, "mallory", upload)
    anonymous = _cancel(stack, None, upload)
    unknown = stack.api.delete("/v1/uploads/upl_00000000-0000-4000-8000-000000000000", headers=as_user(artist))

    assert (other.status_code, other.json()["error"]["code"]) == (404, "upload_intent_not_found")
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthorized")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "upload_intent_not_found")
    # Neither touched the intent: it still finalizes.
    finalize = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))
    assert finalize.json()["status"] == "finalized"


def test_an_expired_intents_draft_is_not_listed(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    kept = stack.create_upload(artist, wav_3s.with_name(wav_3s.name))  # a second, live intent
    # The intent's TTL passed; DynamoDB has not deleted the items yet (it may take days).
    past = utcnow() - timedelta(minutes=1)
    UploadModel(upload["uploadId"].removeprefix("upl_")).update(actions=[UploadModel.expires_at_epoch.set(past)])
    TrackModel(upload["trackId"].removeprefix("trk_"), TrackModel.TRACK_SK).update(
        actions=[TrackModel.expires_at_epoch.set(past)]
    )

    listed = _my_track_ids(stack, artist)

    assert kept["trackId"] in listed
    assert upload["trackId"] not in listed
