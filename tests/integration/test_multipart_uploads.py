"""Resumable (multipart) uploads against moto: the intent's plan, parts PUT straight to storage with
httpx, a resume after an interruption, complete -> the same finalize as a single PUT, abort."""

from __future__ import annotations

import hashlib
import resource
import struct
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy
import pytest

from functions.data.models import utcnow
from functions.data.storage import ABORT_INCOMPLETE_MULTIPART_DAYS
from functions.settings import settings

from .conftest import Stack, as_user
from .test_workflow import processed

MIB = 1024 * 1024


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """5 MiB parts (S3's minimum), so a 12 MB file has three: two full ones and a short last one."""
    monkeypatch.setenv("TRACKLANE_MULTIPART_PART_SIZE_BYTES", str(5 * MIB))
    settings.cache_clear()
    yield
    settings.cache_clear()


@pytest.fixture(scope="module")
def wav_12mb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """70 s of a real 44.1 kHz stereo tone rendered by ffmpeg (~12.3 MB): processable end to end."""
    from tests.conftest import render_audio

    return render_audio(tmp_path_factory.mktemp("mp") / "long-tone.wav", seconds=70)


def _wav_header(data_bytes: int) -> bytes:
    """A canonical 44-byte PCM WAV header (44.1 kHz, stereo, 16 bit) for ``data_bytes`` of samples."""
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_bytes)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 2, 44100, 44100 * 4, 4, 16)
        + b"data"
        + struct.pack("<I", data_bytes)
    )


@pytest.fixture(scope="module")
def wav_300mb(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """300,000,000 bytes: a valid WAV header and deterministic PCM noise, written in 16 MiB chunks
    (never held whole in memory); returns the path and its SHA-256."""
    path = tmp_path_factory.mktemp("big") / "big-noise.wav"
    size = 300_000_000
    digest = hashlib.sha256()
    noise = numpy.random.default_rng(6)  # ~1 GB/s; random.randbytes takes 10 s for this file
    with path.open("wb") as out:
        header = _wav_header(size - 44)
        out.write(header)
        digest.update(header)
        left = size - 44
        while left:
            chunk = noise.bytes(min(16 * MIB, left))
            out.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return path, digest.hexdigest()


def _create(stack: Stack, user: str, path: Path, **extra: Any) -> dict[str, Any]:
    return stack.create_upload(user, path, **extra)


def _put_part(path: Path, part: dict[str, Any], part_size: int) -> httpx.Response:
    """Reads just this part from disk and PUTs it to its signed URL, as a resuming client would."""
    with path.open("rb") as source:
        source.seek((part["partNumber"] - 1) * part_size)
        data = source.read(part["size"])
    assert len(data) == part["size"]
    return httpx.put(part["url"], content=data, timeout=120)


def _object_sha256(stack: Stack, key: str) -> tuple[str, int, str]:
    response = stack.s3.get_object(Bucket=stack.resources.bucket, Key=key)
    digest = hashlib.sha256()
    for chunk in response["Body"].iter_chunks(chunk_size=8 * MIB):
        digest.update(chunk)
    return digest.hexdigest(), int(response["ContentLength"]), response["ContentType"]


def _original_key(stack: Stack, user: str, track_id: str) -> str:
    from functions.domain.catalog import tracks

    track = tracks.find(track_id.removeprefix("trk_"))
    assert track is not None and track.owner_id == user
    return str(track.original_key)


def _multipart_uploads(stack: Stack) -> list[dict[str, Any]]:
    return list(stack.s3.list_multipart_uploads(Bucket=stack.resources.bucket).get("Uploads", []))


@pytest.mark.slow
def test_a_300_mb_upload_interrupted_after_half_its_parts_resumes_and_finalizes_with_the_right_bytes(
    stack, artist, wav_300mb
):
    path, sha256 = wav_300mb
    started = time.monotonic()

    # Given an intent asking for parts: a plan, not one signed PUT.
    intent = _create(stack, artist, path, multipart=True)
    assert intent["method"] == "MULTIPART" and "signedUrl" not in intent
    plan = intent["multipart"]
    assert plan["partSize"] == 16 * MIB
    assert plan["partCount"] == 18  # ceil(300,000,000 / 16 MiB)
    assert [p["partNumber"] for p in plan["parts"]] == list(range(1, 19))
    assert {p["size"] for p in plan["parts"][:-1]} == {16 * MIB}
    assert plan["parts"][-1]["size"] == 300_000_000 - 17 * 16 * MIB
    assert all("partNumber=" in p["url"] and "X-Amz-Signature=" in p["url"] for p in plan["parts"])

    # When the client uploads half of the parts and its connection drops (it keeps nothing).
    for part in plan["parts"][:9]:
        assert _put_part(path, part, plan["partSize"]).status_code == 200

    # Then storage tells it exactly what landed and what is missing ...
    listed = stack.api.get(f"/v1/uploads/{intent['uploadId']}/parts", headers=as_user(artist)).json()
    assert listed["status"] == "pending"
    assert [(p["partNumber"], p["size"]) for p in listed["parts"]] == [(n, 16 * MIB) for n in range(1, 10)]
    assert listed["missingParts"] == list(range(10, 19))
    # ... nothing is finalized early (the object does not exist until complete) ...
    early = stack.api.post(f"/v1/uploads/{intent['uploadId']}/complete", headers=as_user(artist))
    assert (early.status_code, early.json()["error"]["code"]) == (409, "upload_parts_incomplete")
    assert early.json()["error"]["missing"] == list(range(10, 19))
    # ... and it resumes with fresh URLs for the missing parts only.
    fresh = stack.api.get(
        f"/v1/uploads/{intent['uploadId']}/parts/urls?from=10&count=9", headers=as_user(artist)
    ).json()
    assert [p["partNumber"] for p in fresh["parts"]] == list(range(10, 19))
    for part in fresh["parts"]:
        assert _put_part(path, part, plan["partSize"]).status_code == 200

    # Complete with the ETags storage listed: finalized like a single PUT, processing started once.
    listed = stack.api.get(f"/v1/uploads/{intent['uploadId']}/parts", headers=as_user(artist)).json()
    assert listed["missingParts"] == []
    body = {"parts": [{"partNumber": p["partNumber"], "etag": p["etag"]} for p in listed["parts"]]}
    done = stack.api.post(f"/v1/uploads/{intent['uploadId']}/complete", json=body, headers=as_user(artist))
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "finalized"
    stack.drain_s3_events()  # the CompleteMultipartUpload event converges on the same upload
    again = stack.api.post(f"/v1/uploads/{intent['uploadId']}/complete", json=body, headers=as_user(artist))
    assert again.json()["status"] == "already_finalized"
    assert len(stack.executions()) == 1

    # The stored object is byte for byte the local file, with the intent's type.
    key = _original_key(stack, artist, intent["trackId"])
    assert _object_sha256(stack, key) == (sha256, 300_000_000, "audio/wav")
    assert _multipart_uploads(stack) == []
    elapsed = time.monotonic() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\n300 MB multipart: {elapsed:.1f} s, peak RSS of the test process (moto in it) {peak_mib:.0f} MiB")


@pytest.mark.slow
def test_a_small_multipart_upload_is_processed_end_to_end(stack, artist, runner, small_parts, wav_12mb):
    intent = _create(stack, artist, wav_12mb, multipart=True)
    plan = intent["multipart"]
    assert (plan["partSize"], plan["partCount"]) == (5 * MIB, 3)
    assert plan["parts"][2]["size"] == wav_12mb.stat().st_size - 10 * MIB
    for part in plan["parts"]:
        assert _put_part(wav_12mb, part, plan["partSize"]).status_code == 200

    # No part list: the parts storage holds are assembled (each was checked against the plan).
    done = stack.api.post(f"/v1/uploads/{intent['uploadId']}/complete", headers=as_user(artist))

    assert done.json()["status"] == "finalized", done.text
    status = processed(stack, artist, intent)
    assert (status["status"], status["workflowStatus"]) == ("ready", "succeeded")
    probe = status["lanes"][0]
    assert abs(probe["outputs"]["durationMs"] - 70_000) <= 50
    key = _original_key(stack, artist, intent["trackId"])
    expected = hashlib.sha256(wav_12mb.read_bytes()).hexdigest()
    assert _object_sha256(stack, key) == (expected, wav_12mb.stat().st_size, "audio/wav")


def test_the_put_event_of_the_completed_object_alone_finalizes_it(stack, artist, small_parts, wav_12mb):
    intent = _create(stack, artist, wav_12mb, multipart=True)
    plan = intent["multipart"]
    parts = []
    for part in plan["parts"]:
        response = _put_part(wav_12mb, part, plan["partSize"])
        parts.append({"PartNumber": part["partNumber"], "ETag": response.headers["etag"]})
    key = _original_key(stack, artist, intent["trackId"])
    multipart_id = _multipart_uploads(stack)[0]["UploadId"]

    # A client that completes with S3 directly (or whose complete call was lost after S3 answered).
    stack.s3.complete_multipart_upload(
        Bucket=stack.resources.bucket, Key=key, UploadId=multipart_id, MultipartUpload={"Parts": parts}
    )
    stack.drain_s3_events()

    assert len(stack.executions()) == 1
    track = stack.api.get(f"/v1/tracks/{intent['trackId']}", headers=as_user(artist)).json()
    assert track["status"] == "processing"
    # The client's own complete then learns the upload is done; finalize answers its first call.
    done = stack.api.post(f"/v1/uploads/{intent['uploadId']}/complete", headers=as_user(artist))
    assert done.json()["status"] == "finalized"


def test_a_part_of_the_wrong_size_is_missing_and_blocks_complete(stack, artist, small_parts, wav_12mb):
    # moto does not enforce the signed Content-Length; real S3 refuses such a PUT outright.
    intent = _create(stack, artist, wav_12mb, multipart=True)
    plan = intent["multipart"]
    for part in plan["parts"][1:]:
        assert _put_part(wav_12mb, part, plan["partSize"]).status_code == 200
    assert httpx.put(plan["parts"][0]["url"], content=b"\0" * (5 * MIB + 1)).status_code == 200

    listed = stack.api.get(f"/v1/uploads/{intent['uploadId']}/parts", headers=as_user(artist)).json()
    assert listed["missingParts"] == [1]
    refused = stack.api.post(f"/v1/uploads/{intent['uploadId']}/complete", headers=as_user(artist))

    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "upload_parts_incomplete")
    assert stack.executions() == []


def test_complete_with_an_etag_storage_does_not_hold_is_refused(stack, artist, small_parts, wav_12mb):
    intent = _create(stack, artist, wav_12mb, multipart=True)
    plan = intent["multipart"]
    etags = [_put_part(wav_12mb, part, plan["partSize"]).headers["etag"] for part in plan["parts"]]
    parts = [{"partNumber": n, "etag": etag} for n, etag in enumerate(etags, start=1)]
    parts[1]["etag"] = "0" * 32

    refused = stack.api.post(
        f"/v1/uploads/{intent['uploadId']}/complete", json={"parts": parts}, headers=as_user(artist)
    )
    assert (refused.status_code, refused.json()["error"]["code"]) == (409, "upload_part_mismatch")
    skipping = stack.api.post(
        f"/v1/uploads/{intent['uploadId']}/complete", json={"parts": parts[:2]}, headers=as_user(artist)
    )
    assert (skipping.status_code, skipping.json()["error"]["code"]) == (409, "upload_part_mismatch")
    assert stack.executions() == []


def test_aborting_leaves_no_object_no_parts_and_no_draft(stack, artist, small_parts, wav_12mb):
    intent = _create(stack, artist, wav_12mb, multipart=True)
    plan = intent["multipart"]
    for part in plan["parts"]:
        assert _put_part(wav_12mb, part, plan["partSize"]).status_code == 200

    aborted = stack.api.post(f"/v1/uploads/{intent['uploadId']}/abort", headers=as_user(artist))

    assert aborted.status_code == 200 and aborted.json() == {"uploadId": intent["uploadId"], "status": "cancelled"}
    assert _multipart_uploads(stack) == []
    assert "Contents" not in stack.s3.list_objects_v2(Bucket=stack.resources.bucket, Prefix="uploads/")
    assert stack.api.get(f"/v1/tracks/{intent['trackId']}", headers=as_user(artist)).status_code == 404
    for method, action in (("POST", "complete"), ("GET", "parts"), ("GET", "parts/urls")):
        late = stack.api.request(method, f"/v1/uploads/{intent['uploadId']}/{action}", headers=as_user(artist))
        assert (late.status_code, late.json()["error"]["code"]) == (410, "upload_intent_cancelled"), action
    assert stack.executions() == []


def test_a_single_put_intent_has_no_parts(stack, artist, wav_3s):
    intent = stack.create_upload(artist, wav_3s)
    assert intent["method"] == "PUT" and "multipart" not in intent and intent["signedUrl"]

    response = stack.api.get(f"/v1/uploads/{intent['uploadId']}/parts", headers=as_user(artist))

    assert (response.status_code, response.json()["error"]["code"]) == (409, "upload_not_multipart")


def test_multipart_false_keeps_one_signed_put_above_the_threshold(stack, artist, monkeypatch, wav_3s):
    monkeypatch.setenv("TRACKLANE_MULTIPART_THRESHOLD_BYTES", str(5 * MIB))
    settings.cache_clear()
    try:
        big = {"fileName": "big.wav", "contentType": "audio/wav", "byteSize": 6 * MIB}
        automatic = stack.api.post("/v1/uploads", json=big, headers=as_user(artist)).json()
        single = stack.api.post("/v1/uploads", json={**big, "multipart": False}, headers=as_user(artist)).json()
    finally:
        settings.cache_clear()
    assert automatic["method"] == "MULTIPART"
    assert single["method"] == "PUT" and single["signedUrl"]


def test_the_window_to_complete_ends_before_s3_lifecycle_would_abort_the_parts(stack, artist, monkeypatch, wav_3s):
    # An intent TTL longer than the lifecycle rule (stacks/constructs/storage.py) must not let a
    # client keep uploading parts S3 is about to drop: the deadline is capped at the rule's age.
    monkeypatch.setenv("TRACKLANE_INTENT_TTL_S", str(7 * 24 * 3600))
    settings.cache_clear()
    try:
        before = utcnow()
        intent = _create(stack, artist, wav_3s, multipart=True)
    finally:
        settings.cache_clear()
    deadline = datetime.fromisoformat(intent["expiresAt"].replace("Z", "+00:00"))
    lifecycle = timedelta(days=ABORT_INCOMPLETE_MULTIPART_DAYS)
    assert before + lifecycle - timedelta(seconds=5) <= deadline <= before + lifecycle + timedelta(seconds=5)
    assert datetime.fromisoformat(intent["multipart"]["partsExpireAt"].replace("Z", "+00:00")) <= deadline
