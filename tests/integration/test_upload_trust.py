"""What was verified at finalize is what the track keeps, and an upload that ends without audio
says why the same way everywhere (``functions.domain.lifecycle``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx

from functions import ids
from functions.data import storage
from functions.data.models import UploadModel, bind
from functions.domain.intake import finalize_steps

from .conftest import Stack, as_user
from .test_progress import sse_body
from .test_workflow import processed, upload_and_finalize


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def same_size_other_bytes(path: Path) -> bytes:
    """A file a client could PUT to the same signed URL: same size and type, other audio."""
    data = bytearray(path.read_bytes())
    data[-4000:] = bytes(4000)  # the last samples silenced
    return bytes(data)


def original_bytes(stack: Stack, user: str, track_id: str) -> bytes:
    redirect = stack.api.get(
        f"/v1/tracks/{track_id}/stream", params={"format": "original"}, headers=as_user(user), follow_redirects=False
    )
    assert redirect.status_code == 302, redirect.text
    return httpx.get(redirect.headers["location"]).content


def uploads_left(stack: Stack) -> list[str]:
    listed = stack.s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix="uploads/")
    return [item["Key"] for item in listed.get("Contents", [])]


def track_view(stack: Stack, user: str, track_id: str) -> dict:
    response = stack.api.get(f"/v1/tracks/{track_id}", headers=as_user(user))
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_bytes_put_to_the_old_url_after_ready_never_reach_the_track(stack, artist, runner, wav_3s):
    # Given a track processed from the first file
    first = wav_3s.read_bytes()
    upload = upload_and_finalize(stack, artist, wav_3s)
    assert processed(stack, artist, upload)["status"] == "ready"
    stack.drain_s3_events()
    before = track_view(stack, artist, upload["trackId"])
    assert uploads_left(stack) == []  # finalize kept a copy and removed the uploaded object

    # When other bytes of the same size and type are PUT to the still-valid signed URL
    assert stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav", body=same_size_other_bytes(wav_3s)) == 200
    stack.drain_s3_events()

    # Then the original is still the first file, nothing the lanes made changed, no stray is left
    assert sha256(original_bytes(stack, artist, upload["trackId"])) == sha256(first)
    after = track_view(stack, artist, upload["trackId"])
    for field in ("renditions", "loudness", "waveform", "audio", "durationMs", "status", "updatedAt"):
        assert after[field] == before[field], field
    assert uploads_left(stack) == []
    assert len(stack.executions()) == 1
    # and a repeated finalize still answers as before
    again = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))
    assert again.json()["status"] == "already_finalized"


def test_a_file_replaced_between_the_check_and_the_copy_is_verified_again(stack, artist, wav_3s, monkeypatch):
    # Given a PUT that lands right after finalize's HEAD verified the first file
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    replacement = same_size_other_bytes(wav_3s)
    verify = finalize_steps.verify_object
    checks = []

    def verify_then_replace(intent: UploadModel) -> storage.StoredObject:
        stored = verify(intent)
        checks.append(stored.etag)
        if len(checks) == 1:
            stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav", body=replacement)
        return stored

    monkeypatch.setattr(finalize_steps, "verify_object", verify_then_replace)

    # When it is finalized
    response = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))

    # Then the copy of the first file was refused (its ETag no longer held) and the file kept is
    # the one the second check verified, under the checksum of those bytes
    assert response.json()["status"] == "finalized", response.text
    assert len(checks) == 2 and checks[0] != checks[1]
    bind()
    track_id = ids.parse("trk", upload["trackId"])
    listed = stack.s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix=f"tracks/{track_id}/")
    (kept_key,) = [item["Key"] for item in listed["Contents"]]
    kept = stack.s3.get_object(Bucket=stack.resources.bucket, Key=kept_key)["Body"].read()
    assert sha256(kept) == sha256(replacement)
    checksum = UploadModel.get(ids.parse("upl", upload["uploadId"])).content_checksum
    assert checksum == "md5:" + hashlib.md5(replacement).hexdigest()
    assert uploads_left(stack) == []


def test_a_file_put_to_a_rejected_intent_is_deleted_and_changes_nothing(stack, artist, wav_3s):
    # Given an intent rejected for its file's size
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav", body=wav_3s.read_bytes()[:-1000])
    assert stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist)).status_code == 422

    # When the right file is PUT to the same URL afterwards
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    stack.drain_s3_events()

    # Then it is deleted and the intent stays rejected, with nothing processed
    assert uploads_left(stack) == []
    bind()
    assert UploadModel.get(ids.parse("upl", upload["uploadId"])).status == "rejected"
    assert stack.executions() == []


def test_a_rejected_upload_reads_the_same_everywhere(stack, artist, wav_3s):
    # Given an upload whose file is not the size it declared
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav", body=wav_3s.read_bytes()[:-1000])

    # When the put event rejects it
    stack.drain_s3_events()

    # Then the track, the list, the processing status, the progress stream and every later finalize
    # report the same code and message
    finalized = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))
    assert finalized.status_code == 422
    code, message = finalized.json()["error"]["code"], finalized.json()["error"]["message"]
    assert code == "upload_asset_invalid" and "size" in message
    track = track_view(stack, artist, upload["trackId"])
    assert (track["status"], track["failure"]) == ("rejected", {"code": code, "message": message})
    (listed,) = stack.api.get("/v1/me/tracks", headers=as_user(artist)).json()["tracks"]
    assert (listed["trackId"], listed["status"]) == (upload["trackId"], "rejected")
    assert listed["failure"] == {"code": code, "message": message}
    status = stack.api.get(f"/v1/tracks/{upload['trackId']}/processing-status", headers=as_user(artist)).json()
    assert (status["status"], status["workflowStatus"]) == ("rejected", "not_started")
    assert status["failure"] == {"code": code, "message": message}
    progress = sse_body(stack.api.get(f"/v1/uploads/{upload['uploadId']}/progress", headers=as_user(artist)).text)
    terminal = progress[-1]["data"]
    assert (terminal["phase"], terminal["code"], terminal["message"]) == ("failed", code, message)
    # Nothing to play, and the owner may still cancel the intent, which removes its track
    stream = stack.api.get(f"/v1/tracks/{upload['trackId']}/stream", headers=as_user(artist))
    assert stream.status_code == 409, stream.text
    assert stack.api.delete(f"/v1/uploads/{upload['uploadId']}", headers=as_user(artist)).status_code == 204
    assert stack.api.get(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).status_code == 404
