"""Duplicate uploads: the same owner's same bytes are finalized as ``duplicate`` of the track that
already has them -- not processed again, not stored twice -- and deleting that track frees them."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from functions import ids
from functions.data.models import ContentClaimModel, TrackModel, UploadModel
from functions.domain.catalog import artists
from functions.domain.intake import uploads
from functions.domain.processing import verdict

from .conftest import Stack, as_user


@pytest.fixture
def song(tmp_path: Path, wav_3s: Path) -> Path:
    """A file no other test uploads (the same bytes would be a duplicate across a test's uploads)."""
    path = tmp_path / "song.wav"
    path.write_bytes(wav_3s.read_bytes())
    return path


def put(stack: Stack, user: str, path: Path) -> dict:
    upload = stack.create_upload(user, path)
    assert stack.put(upload["signedUrl"], path, content_type="audio/wav") == 200
    return upload


def finalize(stack: Stack, user: str, upload: dict) -> dict:
    response = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(user))
    assert response.status_code == 200, response.text
    return dict(response.json())


def raw(prefixed: str) -> str:
    value = ids.parse(prefixed[:3], prefixed)
    assert value is not None
    return value


def stored(stack: Stack, upload: dict) -> int:
    """Copies of the upload's file left anywhere: where it was PUT, and where finalize keeps it."""
    record = UploadModel.get(raw(upload["uploadId"]))
    return sum(
        int(stack.s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix=key).get("KeyCount", 0))
        for key in (record.object_key, uploads.kept_key(record))
    )


def test_the_same_bytes_again_are_a_duplicate_of_the_first_track(stack, artist, song):
    first = finalize(stack, artist, put(stack, artist, song))
    assert first["status"] == "finalized"

    second_upload = put(stack, artist, song)
    second = finalize(stack, artist, second_upload)
    assert second["status"] == "duplicate"
    assert second["trackId"] == first["trackId"]
    assert (second["jobsQueued"], second["uploadId"]) == ([], second_upload["uploadId"])
    # Nothing processed, nothing kept: one execution, the second copy deleted, its draft gone.
    assert len(stack.executions()) == 1
    assert stored(stack, second_upload) == 0
    draft = stack.api.get(f"/v1/tracks/{second_upload['trackId']}", headers=as_user(artist))
    assert draft.status_code == 404
    # The first track and its original are untouched.
    assert stack.api.get(f"/v1/tracks/{first['trackId']}", headers=as_user(artist)).json()["status"] == "processing"
    assert stored(stack, first) == 1

    # Asking again (or the put event arriving late) answers the same, and still starts nothing.
    assert finalize(stack, artist, second_upload)["status"] == "duplicate"
    stack.drain_s3_events()
    assert len(stack.executions()) == 1
    record = UploadModel.get(raw(second_upload["uploadId"]))
    assert (record.status, record.duplicate_of) == ("duplicate", raw(first["trackId"]))


def test_the_put_event_finds_the_duplicate_too(stack, artist, song):
    first = finalize(stack, artist, put(stack, artist, song))
    second_upload = put(stack, artist, song)
    stack.drain_s3_events()
    record = UploadModel.get(raw(second_upload["uploadId"]))
    assert (record.status, record.duplicate_of) == ("duplicate", raw(first["trackId"]))
    answer = finalize(stack, artist, second_upload)
    assert (answer["status"], answer["trackId"]) == ("duplicate", first["trackId"])


def test_other_owners_and_other_bytes_are_never_duplicates(stack, artist, song, tmp_path):
    artists.upsert("bob", handle="bob", display_name="Bob")
    assert finalize(stack, artist, put(stack, artist, song))["status"] == "finalized"
    assert finalize(stack, "bob", put(stack, "bob", song))["status"] == "finalized"
    other = tmp_path / "other.wav"
    data = bytearray(song.read_bytes())
    data[-1] ^= 1  # one bit of the last sample
    other.write_bytes(bytes(data))
    assert finalize(stack, artist, put(stack, artist, other))["status"] == "finalized"
    assert len(stack.executions()) == 3


def test_deleting_the_track_or_its_failure_frees_the_bytes(stack, artist, song):
    first = finalize(stack, artist, put(stack, artist, song))
    assert stack.api.delete(f"/v1/tracks/{first['trackId']}", headers=as_user(artist)).status_code == 204
    again = finalize(stack, artist, put(stack, artist, song))
    assert again["status"] == "finalized" and again["trackId"] != first["trackId"]

    # A failed track does not hold its bytes: uploading the file again is how an owner retries.
    verdict.mark_failed({"trackId": raw(again["trackId"]), "ownerId": artist})
    retry = finalize(stack, artist, put(stack, artist, song))
    assert retry["status"] == "finalized" and retry["trackId"] != again["trackId"]
    content = TrackModel.get(raw(retry["trackId"]), TrackModel.TRACK_SK).content_checksum
    assert content is not None
    claim = ContentClaimModel.get(*ContentClaimModel.key(artist, content))
    assert claim.track_id == raw(retry["trackId"])


def test_identical_uploads_racing_to_finalize_are_processed_once(stack, artist, song):
    uploads = [put(stack, artist, song) for _ in range(6)]
    barrier = threading.Barrier(len(uploads))
    answers: list[dict] = []

    def go(upload: dict) -> None:
        barrier.wait()
        answers.append(finalize(stack, artist, upload))

    threads = [threading.Thread(target=go, args=(upload,)) for upload in uploads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(answer["status"] for answer in answers)
    assert statuses == ["duplicate"] * 5 + ["finalized"]
    assert len({answer["trackId"] for answer in answers}) == 1
    assert len(stack.executions()) == 1
