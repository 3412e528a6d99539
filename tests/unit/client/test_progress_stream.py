"""The client's Server-Sent Events reader: the format's rules, and following an upload across
closed and dropped connections with Last-Event-ID until its terminal event."""

from __future__ import annotations

import httpx
import pytest

from client import progress
from client.api import ApiError, Unreachable
from client.transfer import Interrupted, StopFlag

from .fake_api import FakeApi, Upload, sse


def test_comments_are_skipped_data_lines_join_and_the_id_persists():
    parser = progress.SseParser()
    lines = ["retry: 2000", "", ": keep-alive", "", "id: 1.1", 'data: {"a":', "data: 1}", "", "data: {}", ""]

    events = parser.feed_all(lines)

    assert [(e.id, e.data) for e in events] == [("1.1", '{"a":\n1}'), ("1.1", "{}")]
    assert parser.retry_ms == 2000


def test_a_space_after_the_colon_is_not_part_of_the_value_and_an_unfinished_event_is_not_dispatched():
    parser = progress.SseParser()

    events = parser.feed_all(["data:x", "", "data:  y", "", "data: never dispatched"])

    assert [e.data for e in events] == ["x", " y"]


def follow(fake: FakeApi, upload: Upload, **kwargs):
    seen = []
    terminal = progress.follow(
        fake.api(),
        upload.upload_id,
        on_event=seen.append,
        stop=StopFlag(),
        timeout_s=60,
        sleep=lambda _: None,
        **kwargs,
    )
    return terminal, seen


def an_upload(fake: FakeApi) -> Upload:
    created = fake.api().create_upload({"fileName": "a.wav", "contentType": "audio/wav", "byteSize": 5})
    return fake.uploads[created["uploadId"]]


def test_a_stream_closed_before_the_verdict_is_reopened_with_last_event_id_and_only_new_events_arrive():
    fake = FakeApi()
    upload = an_upload(fake)
    base = {"uploadId": upload.upload_id, "trackId": upload.track_id, "terminal": False}
    story = [
        {**base, "phase": "validation", "status": "waiting"},
        {**base, "phase": "storage", "status": "done"},
        {**base, "phase": "lane", "status": "running", "lane": "probe", "progressPct": 0},
        {**base, "phase": "ready", "status": "ready", "terminal": True, "progressPct": 100},
    ]
    asked: list[str | None] = []

    def two_at_a_time(_: Upload, request: httpx.Request) -> httpx.Response:
        # What a deployed API does: the events not seen yet (at most two here), then close.
        last = request.headers.get("last-event-id")
        asked.append(last)
        start = int(last) if last else 0
        return httpx.Response(200, text=sse(story[start : start + 2], first_id=start + 1))

    fake.progress_hook = two_at_a_time

    terminal, seen = follow(fake, upload)

    assert terminal["phase"] == "ready"
    assert [e["phase"] for e in seen] == ["validation", "storage", "lane", "ready"]
    assert asked == [None, "2"]


def test_a_dropped_connection_is_retried_and_a_failed_verdict_carries_its_code():
    fake = FakeApi()
    upload = an_upload(fake)
    upload.verdict = {"phase": "failed", "status": "failed", "code": "audio_unreadable", "message": "Not audio."}
    drops = iter([True, True])

    def drop_twice(_: Upload, request: httpx.Request) -> httpx.Response | None:
        if next(drops, False):
            raise httpx.ReadError("connection reset", request=request)
        return None

    fake.progress_hook = drop_twice

    terminal, _ = follow(fake, upload)

    assert (terminal["phase"], terminal["code"], terminal["message"]) == ("failed", "audio_unreadable", "Not audio.")


def test_a_network_that_stays_down_ends_as_unreachable():
    fake = FakeApi()
    upload = an_upload(fake)

    def always_down(_: Upload, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    fake.progress_hook = always_down

    with pytest.raises(Unreachable):
        follow(fake, upload)


def test_a_refusal_is_an_api_error_with_its_code():
    fake = FakeApi()
    upload = an_upload(fake)
    fake.progress_hook = lambda *_: httpx.Response(
        404, json={"error": {"code": "upload_intent_not_found", "message": "x"}}
    )

    with pytest.raises(ApiError) as refused:
        follow(fake, upload)

    assert refused.value.code == "upload_intent_not_found"


def test_204_after_an_earlier_run_saw_the_verdict_replays_the_story_from_the_start():
    fake = FakeApi()
    upload = an_upload(fake)
    fake.progress_hook = lambda _, request: httpx.Response(204) if request.headers.get("last-event-id") else None

    terminal, seen = follow(fake, upload, last_event_id="9.4")

    assert terminal["phase"] == "ready"
    assert [e["phase"] for e in seen] == ["storage", "ready"]


def test_a_stop_request_ends_the_follow():
    fake = FakeApi()
    upload = an_upload(fake)
    stop = StopFlag()
    stop.set("interrupted")

    with pytest.raises(Interrupted):
        progress.follow(fake.api(), upload.upload_id, on_event=print, stop=stop, timeout_s=60)
