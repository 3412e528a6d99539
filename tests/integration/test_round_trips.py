"""AWS calls per request, counted at the botocore layer (every call any client of the app makes):
a number each hot path is held to (issue 15: create intent at most 2)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions import clients
from functions.data.models import shared_connection

from .conftest import Stack


@pytest.fixture
def aws_calls(stack: Stack) -> Iterator[list[str]]:
    """The operations the app's botocore clients send, in order, while the test runs."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    watched = [shared_connection().client, clients.s3(), clients.sfn()]
    for client in watched:
        client.meta.events.register("before-call", record)
    yield calls
    for client in watched:
        client.meta.events.unregister("before-call", record)


def test_an_upload_intent_costs_two_aws_calls(stack: Stack, artist: str, wav_3s: Path, aws_calls: list[str]):
    stack.create_upload(artist, wav_3s)

    # The artist profile and the entitlement in one BatchGetItem; the intent and its draft track in
    # one transaction. Presigning the PUT is local.
    assert aws_calls == ["BatchGetItem", "TransactWriteItems"]


def test_a_caller_without_an_artist_profile_is_refused_after_one_call(stack: Stack, wav_3s: Path, aws_calls):
    body = {"fileName": wav_3s.name, "contentType": "audio/wav", "byteSize": wav_3s.stat().st_size}
    response = stack.api.post("/v1/uploads", json=body, headers={"Authorization": "Test nobody"})

    assert (response.status_code, response.json()["error"]["code"]) == (403, "artist_profile_required")
    assert aws_calls == ["BatchGetItem"]
