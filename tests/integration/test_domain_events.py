"""Domain events against moto: the Tracks and Albums tables' streams, read by the same pump the
local stack runs, feed the domain-events handler, which puts the events on the bus; a rule on the
bus fills a queue, and what a consumer reads there is checked: every change exactly once, nothing
for drafts, nothing for bookkeeping."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from functions.data.models import TrackModel, ensure_bound
from functions.events import publish
from local.provision import client as local_client
from local.streams import StreamPump, streamed_tables

from .conftest import Stack, as_user
from .test_workflow import processed, upload_and_finalize


@pytest.fixture
def stream_pump(stack: Stack) -> Iterator[StreamPump]:
    """The local stack's stream pump, running as it does there; stopped before the stack goes."""
    endpoint = stack.resources.endpoint
    pump = StreamPump(
        local_client("dynamodb", endpoint),
        local_client("dynamodbstreams", endpoint),
        streamed_tables(stack.resources.settings),
        wait_s=0.2,
    )
    pump.start()
    yield pump
    pump.stop()
    pump.join(timeout=5)


def consumed(stack: Stack, pump: StreamPump) -> list[dict[str, Any]]:
    """Every event on the bus so far, as the rule's target queue holds them (EventBridge envelopes)."""
    pump.drain()
    bodies: list[dict[str, Any]] = []
    while messages := stack.sqs.receive_message(
        QueueUrl=stack.resources.domain_events_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    ).get("Messages", []):
        bodies += [json.loads(message["Body"]) for message in messages]
        stack.sqs.delete_message_batch(
            QueueUrl=stack.resources.domain_events_queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
    return bodies


def subject(detail: dict[str, Any]) -> str:
    return str(detail.get("trackId") or detail.get("albumId"))


@pytest.mark.usefixtures("runner")
def test_every_change_is_published_once_and_drafts_never(
    stack: Stack, artist: str, stream_pump: StreamPump, wav_3s: Path, png_named_wav: Path
) -> None:
    # Given an album, a track uploaded into it and processed, and a track whose audio fails
    album = stack.api.post("/v1/albums", json={"title": "Night Drive"}, headers=as_user(artist)).json()
    album_id = album["albumId"]
    good = upload_and_finalize_into(stack, artist, wav_3s, album=album_id, title="Night Drive")
    assert processed(stack, artist, good)["status"] == "ready"
    bad = upload_and_finalize(stack, artist, png_named_wav)
    assert processed(stack, artist, bad)["status"] == "failed"
    # ... and a draft: an intent edited but never finalized, then expired (TTL deletes the item).
    draft = stack.create_upload(artist, wav_3s, title="Never Sent")
    edited = stack.api.patch(
        f"/v1/tracks/{draft['trackId']}", json={"title": "Still Never Sent"}, headers=as_user(artist)
    )
    assert edited.status_code == 200, edited.text
    ensure_bound()
    TrackModel(draft["trackId"].removeprefix("trk_"), TrackModel.TRACK_SK).delete()

    # When the owner edits the track, renames the album, deletes the track and then the album
    patched = stack.api.patch(
        f"/v1/tracks/{good['trackId']}",
        json={"title": "Night Drive (Edit)", "tags": ["synth"]},
        headers=as_user(artist),
    )
    assert patched.status_code == 200, patched.text
    renamed = stack.api.patch(f"/v1/albums/{album_id}", json={"title": "Night Drive Sessions"}, headers=as_user(artist))
    assert renamed.status_code == 200, renamed.text
    assert stack.api.delete(f"/v1/tracks/{good['trackId']}", headers=as_user(artist)).status_code == 204
    assert stack.api.delete(f"/v1/albums/{album_id}", headers=as_user(artist)).status_code == 200

    # Then the queue behind the bus holds each change exactly once
    events = consumed(stack, stream_pump)
    details = [event["detail"] for event in events]
    assert Counter((d["type"], subject(d)) for d in details) == Counter(
        {
            ("album.created", album_id): 1,
            # the track joined at finalize, the rename, the track's delete took it out
            ("album.updated", album_id): 3,
            ("album.deleted", album_id): 1,
            ("track.created", good["trackId"]): 1,
            ("track.processed", good["trackId"]): 1,
            ("track.updated", good["trackId"]): 1,
            ("track.deleted", good["trackId"]): 1,
            ("track.created", bad["trackId"]): 1,
            ("track.failed", bad["trackId"]): 1,
        }
    )
    assert len({d["eventId"] for d in details}) == len(details)
    assert draft["trackId"] not in {subject(d) for d in details}
    for event in events:
        assert (event["source"], event["detail-type"]) == (publish.SOURCE, event["detail"]["type"])
        assert event["detail"]["ownerId"] == artist

    by_type = {d["type"]: d for d in details if subject(d) == good["trackId"]}
    assert by_type["track.created"]["albumId"] == album_id
    assert by_type["track.processed"]["status"] == "ready"
    assert by_type["track.updated"]["changed"] == ["tags", "title"]
    assert by_type["track.updated"]["title"] == "Night Drive (Edit)"
    failed = next(d for d in details if d["type"] == "track.failed")
    assert failed["failureCode"] == "audio_unreadable"
    album_updates = [d for d in details if d["type"] == "album.updated"]
    assert sorted(d["revision"] for d in album_updates) == [2, 3, 4]
    assert sorted(tuple(d["changed"]) for d in album_updates) == [("slug", "title"), ("tracks",), ("tracks",)]

    # And nothing more arrives later: the pump has nothing left to hand over.
    assert consumed(stack, stream_pump) == []


def test_a_refused_publish_is_retried_and_still_lands_once(
    stack: Stack, artist: str, stream_pump: StreamPump, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given EventBridge refusing the first attempt to publish an album.updated
    refusals = []
    real_publish = publish.publish

    def refusing_once(event: Any) -> None:
        if event.type == "album.updated" and not refusals:
            refusals.append(event.event_id)
            raise publish.PublishFailed("InternalFailure")
        real_publish(event)

    monkeypatch.setattr(publish, "publish", refusing_once)

    # When an album is created, renamed and deleted
    album = stack.api.post("/v1/albums", json={"title": "Retry Me"}, headers=as_user(artist)).json()
    stack.api.patch(f"/v1/albums/{album['albumId']}", json={"title": "Retried"}, headers=as_user(artist))
    stack.api.delete(f"/v1/albums/{album['albumId']}", headers=as_user(artist))

    # Then the refused record was redelivered, and each event arrived once, in order
    details = [event["detail"] for event in consumed(stack, stream_pump)]
    assert refusals and [d["type"] for d in details] == ["album.created", "album.updated", "album.deleted"]
    assert details[1]["eventId"] == refusals[0]


def upload_and_finalize_into(stack: Stack, user: str, path: Path, **metadata: Any) -> dict[str, Any]:
    upload = stack.create_upload(user, path, **metadata)
    stack.put(upload["signedUrl"], path, content_type="audio/wav")
    response = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(user))
    assert response.json()["status"] == "finalized", response.text
    return upload
