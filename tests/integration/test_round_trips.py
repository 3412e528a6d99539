"""AWS calls per request, counted at the botocore layer (every call any client of the app makes):
a number each hot path is held to (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from local.aws_calls import app_calls

from .conftest import Stack, as_user

# The caller's write token (functions.data.rate_buckets): one UpdateItem while this process's view
# of the bucket is current, as it is for a single test process.
WRITE_TOKEN = "UpdateItem"


@pytest.fixture
def aws_calls(stack: Stack) -> Iterator[list[str]]:
    """The operations the app's botocore clients send, in order, while the test runs."""
    with app_calls() as calls:
        yield calls


def test_an_upload_intent_costs_three_aws_calls(stack: Stack, artist: str, wav_3s: Path, aws_calls: list[str]):
    stack.create_upload(artist, wav_3s)

    # A token from the caller's write bucket (issue 16: every owner write takes one, in one place,
    # before the route runs, so it cannot ride in the intent's transaction); the artist profile and
    # the entitlement in one BatchGetItem; the intent and its draft track in one transaction.
    # Presigning the PUT is local.
    assert aws_calls == [WRITE_TOKEN, "BatchGetItem", "TransactWriteItems"]


def test_a_caller_without_an_artist_profile_is_refused_after_one_call(stack: Stack, wav_3s: Path, aws_calls):
    body = {"fileName": wav_3s.name, "contentType": "audio/wav", "byteSize": wav_3s.stat().st_size}
    response = stack.api.post("/v1/uploads", json=body, headers={"Authorization": "Test nobody"})

    assert (response.status_code, response.json()["error"]["code"]) == (403, "artist_profile_required")
    assert aws_calls == [WRITE_TOKEN, "BatchGetItem"]


def test_a_first_finalize_costs_eight_aws_calls(stack: Stack, artist: str, wav_3s: Path, aws_calls: list[str]):
    created = stack.create_upload(artist, wav_3s)
    assert stack.put(created["signedUrl"], wav_3s, content_type="audio/wav") == 200
    aws_calls.clear()

    response = stack.api.post(f"/v1/uploads/{created['uploadId']}/finalize", json={}, headers=as_user(artist))

    assert (response.status_code, response.json()["status"]) == (200, "finalized")
    assert aws_calls == [
        WRITE_TOKEN,  # a token from the caller's write bucket (issue 16)
        "GetItem",  # the intent
        "HeadObject",  # the stored file is what the intent declared
        "CopyObject",  # kept where the signed URL cannot reach, if still that very file (its ETag)
        # The intent claimed, the owner's claim on the content, the track processing with its
        # execution's name, every lane queued: all or nothing.
        "TransactWriteItems",
        "GetItem",  # the track: the album it joins (a PATCH may have moved the draft)
        "StartExecution",
        "DeleteObject",  # the uploaded copy
    ]
    track = stack.api.get(f"/v1/tracks/{created['trackId']}", headers=as_user(artist)).json()
    assert track["status"] in ("processing", "ready")
