"""``GET /v1/uploads/{uploadId}/progress`` against moto: streamed by a real uvicorn server (the
TestClient would buffer the stream), answered once through the Lambda handler, and the progress
tokens that let an EventSource in."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from pynamodb.exceptions import DoesNotExist

from functions.api.app import create_app
from functions.data.models import ProgressTokenModel, utcnow
from functions.domain.catalog import artists
from functions.domain.processing import progress as progress_domain
from functions.settings import settings
from functions.workflow.definition import LANES
from local.config import free_port
from local.lambda_context import LocalLambdaContext

from .conftest import HeaderAuthenticator, Stack, as_user

Events = list[dict[str, Any]]


@pytest.fixture
def streaming(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The app under uvicorn on a free port, in streaming mode, as the local stack runs it."""
    monkeypatch.setenv("TRACKLANE_PROGRESS_STREAM", "true")
    monkeypatch.setenv("TRACKLANE_PROGRESS_POLL_INTERVAL_S", "0.1")
    settings.cache_clear()
    port = free_port()
    config = uvicorn.Config(
        create_app(HeaderAuthenticator()),
        host="127.0.0.1",
        port=port,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    settings.cache_clear()


def parse_sse(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Server-Sent Events as an EventSource reads them: ``{"id", "data", "retry"}`` per event and
    ``{"comment"}`` per comment line."""
    fields: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if "data" in fields or "retry" in fields:
                yield fields
            fields = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[name] = json.loads(value) if name == "data" else value


def sse_body(text: str) -> Events:
    return [event for event in parse_sse(iter(text.split("\n"))) if "data" in event]


def until_terminal(stream: Iterator[dict[str, Any]], *, stop: Callable[[dict[str, Any]], bool] | None = None) -> Events:
    """Events (comments skipped) up to and including the terminal one, or the first ``stop`` one."""
    collected: Events = []
    for event in stream:
        if "data" not in event:
            continue
        collected.append(event)
        if event["data"]["terminal"] or (stop and stop(event)):
            break
    return collected


def position(event: dict[str, Any]) -> int:
    return int(event["id"].split(".")[0])


def phases(events: Events) -> list[str]:
    return [event["data"]["phase"] for event in events]


def put_and_finalize_by_s3_event(stack: Stack, upload: dict[str, Any], path: Path) -> None:
    assert stack.put(upload["signedUrl"], path, content_type="audio/wav") == 200
    stack.drain_s3_events()


def test_a_client_connected_before_the_put_sees_every_phase_in_order(stack, artist, runner, streaming, distinct_wav):
    path = distinct_wav()
    upload = stack.create_upload(artist, path)
    url = f"{streaming}/v1/uploads/{upload['uploadId']}/progress"

    with httpx.stream("GET", url, headers=as_user(artist), timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = parse_sse(response.iter_lines())
        assert next(stream) == {"retry": "2000"}
        first = next(stream)
        # Connected and told "waiting" before the file exists.
        assert first["data"]["phase"] == "validation"
        put_and_finalize_by_s3_event(stack, upload, path)
        rest = until_terminal(stream)

    events = [first, *rest]
    seen = phases(events)
    assert seen[:3] == ["validation", "storage", "transcoding"]
    assert seen[-1] == "ready"
    assert set(seen[3:-1]) == {"lane"}
    assert {e["data"]["lane"] for e in events if e["data"]["phase"] == "lane"} == set(LANES)
    final = events[-1]["data"]
    assert final == {
        "uploadId": upload["uploadId"],
        "trackId": upload["trackId"],
        "phase": "ready",
        "status": "ready",
        "message": "Your track is ready.",
        "progressPct": 100,
        "terminal": True,
    }
    positions = [position(e) for e in events]
    assert positions == sorted(set(positions))


def test_a_reconnect_with_last_event_id_replays_nothing_twice(stack, artist, runner, streaming, distinct_wav):
    path = distinct_wav()
    upload = stack.create_upload(artist, path)
    url = f"{streaming}/v1/uploads/{upload['uploadId']}/progress"

    with httpx.stream("GET", url, headers=as_user(artist), timeout=60) as response:
        stream = parse_sse(response.iter_lines())
        first = until_terminal(stream, stop=lambda e: e["data"]["phase"] == "validation")
        put_and_finalize_by_s3_event(stack, upload, path)
        first += until_terminal(stream, stop=lambda e: e["data"]["phase"] == "transcoding")
    # The connection dropped mid-processing; EventSource reconnects with the last id it saw.
    resume = {**as_user(artist), "Last-Event-ID": first[-1]["id"]}
    with httpx.stream("GET", url, headers=resume, timeout=60) as response:
        second = until_terminal(parse_sse(response.iter_lines()))

    both = first + second
    assert phases(first)[-1] == "transcoding"
    assert "transcoding" not in phases(second) and "validation" not in phases(second)
    assert phases(second)[-1] == "ready"
    assert [position(e) for e in both] == sorted({position(e) for e in both})
    # A client that saw the end is told to stop (EventSource does not reconnect after a 204).
    done = httpx.get(url, headers={**as_user(artist), "Last-Event-ID": both[-1]["id"]}, timeout=30)
    assert done.status_code == 204


def test_a_stream_sends_keep_alives_and_ends_at_its_poll_bound(stack, artist, streaming, distinct_wav, monkeypatch):
    monkeypatch.setenv("TRACKLANE_PROGRESS_HEARTBEAT_S", "0.05")
    monkeypatch.setenv("TRACKLANE_PROGRESS_MAX_POLLS", "8")
    settings.cache_clear()
    upload = stack.create_upload(artist, distinct_wav())

    # Nothing is ever PUT: without the bound this would stream until the intent expires.
    response = httpx.get(f"{streaming}/v1/uploads/{upload['uploadId']}/progress", headers=as_user(artist), timeout=60)

    received = list(parse_sse(iter(response.text.split("\n"))))
    assert [e["data"]["phase"] for e in received if "data" in e] == ["validation"]
    assert {"comment": "keep-alive"} in received


def lambda_event(path: str, *, query: str = "", headers: dict[str, str] | None = None) -> dict[str, Any]:
    """An HTTP API (payload 2.0) event for a public route: no authorizer ran, so no claims."""
    return {
        "version": "2.0",
        "routeKey": "GET /v1/uploads/{uploadId}/progress",
        "rawPath": path,
        "rawQueryString": query,
        "headers": {"host": "api.example.com", **(headers or {})},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
            "requestId": "r",
            "routeKey": "GET /v1/uploads/{uploadId}/progress",
            "stage": "$default",
            "time": "23/Nov/2026:10:00:00 +0000",
            "timeEpoch": 0,
        },
        "isBase64Encoded": False,
    }


def mint(stack: Stack, user: str, upload_id: str) -> dict[str, Any]:
    response = stack.api.post(f"/v1/uploads/{upload_id}/progress-tokens", headers=as_user(user))
    assert response.status_code == 201, response.text
    return dict(response.json())


def wait_until_processed(stack: Stack, user: str, track_id: str) -> None:
    for _ in range(300):
        status = stack.api.get(f"/v1/tracks/{track_id}/processing-status", headers=as_user(user)).json()
        if status["workflowStatus"] in {"succeeded", "failed"}:
            return
        time.sleep(0.2)
    pytest.fail("the workflow did not end")


def test_on_lambda_each_request_answers_what_is_new_and_closes(stack, artist, runner, distinct_wav, monkeypatch):
    # Even configured to stream, a request that came through Mangum is answered once.
    monkeypatch.setenv("TRACKLANE_PROGRESS_STREAM", "true")
    settings.cache_clear()
    from functions.handlers.api import handler

    path = distinct_wav()
    upload = stack.create_upload(artist, path)
    token = mint(stack, artist, upload["uploadId"])["token"]
    route = f"/v1/uploads/{upload['uploadId']}/progress"

    def call(last_event_id: str | None = None) -> dict[str, Any]:
        headers = {"last-event-id": last_event_id} if last_event_id else {}
        return dict(handler(lambda_event(route, query=f"token={token}", headers=headers), LocalLambdaContext("api")))

    waiting = call()
    assert waiting["statusCode"] == 200
    assert waiting["headers"]["content-type"].startswith("text/event-stream")
    assert waiting["body"].startswith("retry: 2000\n\n")
    before = sse_body(waiting["body"])
    assert phases(before) == ["validation"]
    assert phases(sse_body(call(before[-1]["id"])["body"])) == []  # nothing new: only retry

    put_and_finalize_by_s3_event(stack, upload, path)
    wait_until_processed(stack, artist, upload["trackId"])
    after = sse_body(call(before[-1]["id"])["body"])

    assert phases(after)[:2] == ["storage", "transcoding"]
    assert phases(after)[-1] == "ready"
    assert [position(e) for e in before + after] == sorted({position(e) for e in before + after})
    assert call(after[-1]["id"])["statusCode"] == 204
    # The header alone is no credential on AWS: the route has no authorizer, so no claims.
    anonymous = handler(lambda_event(route, headers={"authorization": "Test alice"}), LocalLambdaContext("api"))
    assert anonymous["statusCode"] == 401


def test_a_token_reads_one_upload_for_its_owner_until_it_expires(stack, artist, distinct_wav, monkeypatch):
    upload = stack.create_upload(artist, distinct_wav())
    other_upload = stack.create_upload(artist, distinct_wav())

    minted = mint(stack, artist, upload["uploadId"])

    assert minted["progressUrl"].endswith(f"/v1/uploads/{upload['uploadId']}/progress?token={minted['token']}")
    assert minted["expiresAt"].endswith("Z")
    answer = stack.api.get(minted["progressUrl"])  # no Authorization header
    assert answer.status_code == 200
    assert phases(sse_body(answer.text)) == ["validation"]
    # Scoped to that one upload.
    elsewhere = stack.api.get(f"/v1/uploads/{other_upload['uploadId']}/progress", params={"token": minted["token"]})
    assert (elsewhere.status_code, elsewhere.json()["error"]["code"]) == (401, "progress_token_invalid")
    # Stored only as its SHA-256.
    with pytest.raises(DoesNotExist):
        ProgressTokenModel.get(ProgressTokenModel.key(minted["token"]))
    digest = hashlib.sha256(minted["token"].encode()).hexdigest()
    assert ProgressTokenModel.get(ProgressTokenModel.key(digest)).owner_id == artist
    # Past its lifetime (DynamoDB's TTL has not removed it yet): refused with its own code.
    later = utcnow() + timedelta(seconds=settings().progress_token_ttl_s + 1)
    monkeypatch.setattr(progress_domain, "utcnow", lambda: later)
    expired = stack.api.get(minted["progressUrl"])
    assert (expired.status_code, expired.json()["error"]["code"]) == (401, "progress_token_expired")


@pytest.mark.parametrize(
    ("token", "refusal"),
    [("not-a-token", (401, "progress_token_invalid")), ("", (401, "progress_token_invalid")), ("x" * 129, (422, None))],
)
def test_an_unknown_token_is_refused(stack, artist, distinct_wav, token, refusal):
    status, code = refusal
    upload = stack.create_upload(artist, distinct_wav())
    route = f"/v1/uploads/{upload['uploadId']}/progress"

    answer = stack.api.get(route, params={"token": token})
    # Even alongside a valid bearer: an explicit bad credential is never passed over.
    with_bearer = stack.api.get(route, params={"token": token}, headers=as_user(artist))

    for response in (answer, with_bearer):
        assert response.status_code == status
        assert response.json()["error"]["code"] == (code or "validation_failed")


def test_another_user_gets_404_and_anonymous_401(stack, artist, distinct_wav):
    artists.upsert("mallory", handle="mallory", display_name="Mallory")
    upload = stack.create_upload(artist, distinct_wav())
    route = f"/v1/uploads/{upload['uploadId']}/progress"

    for response in (
        stack.api.get(route, headers=as_user("mallory")),
        stack.api.post(f"/v1/uploads/{upload['uploadId']}/progress-tokens", headers=as_user("mallory")),
    ):
        assert (response.status_code, response.json()["error"]["code"]) == (404, "upload_intent_not_found")
    # Mallory's own token does not open Alice's upload either.
    mallory_upload = stack.create_upload("mallory", distinct_wav())
    mallory_token = mint(stack, "mallory", mallory_upload["uploadId"])["token"]
    assert stack.api.get(route, params={"token": mallory_token}).status_code == 401
    anonymous = stack.api.get(route)
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (401, "unauthorized")


def test_a_duplicate_upload_ends_naming_the_existing_track(stack, artist, distinct_wav):
    path = distinct_wav()
    original = stack.create_upload(artist, path)
    put_and_finalize_by_s3_event(stack, original, path)
    again = stack.create_upload(artist, path)
    put_and_finalize_by_s3_event(stack, again, path)

    events = sse_body(stack.api.get(f"/v1/uploads/{again['uploadId']}/progress", headers=as_user(artist)).text)

    assert phases(events) == ["validation", "duplicate"]
    assert events[-1]["data"]["terminal"] is True
    assert events[-1]["data"]["trackId"] == original["trackId"]


def test_a_rejected_file_ends_with_upload_asset_invalid(stack, artist, distinct_wav):
    path = distinct_wav()
    upload = stack.create_upload(artist, path)
    # moto stores a PUT whatever its type; finalize's check rejects it.
    stack.put(upload["signedUrl"], path, content_type="audio/mpeg")
    stack.drain_s3_events()

    events = sse_body(stack.api.get(f"/v1/uploads/{upload['uploadId']}/progress", headers=as_user(artist)).text)

    assert phases(events) == ["validation", "failed"]
    assert events[-1]["data"]["code"] == "upload_asset_invalid"
    assert "content type" in events[-1]["data"]["message"]


def test_a_deleted_track_ends_the_progress(stack, artist, distinct_wav):
    path = distinct_wav()
    upload = stack.create_upload(artist, path)
    put_and_finalize_by_s3_event(stack, upload, path)  # no runner: it stays processing
    route = f"/v1/uploads/{upload['uploadId']}/progress"
    before = sse_body(stack.api.get(route, headers=as_user(artist)).text)

    assert stack.api.delete(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).status_code == 204
    after = sse_body(stack.api.get(route, headers={**as_user(artist), "Last-Event-ID": before[-1]["id"]}).text)

    assert phases(before) == ["validation", "storage", "transcoding"]
    assert phases(after) == ["failed"]
    assert after[-1]["data"]["code"] == "track_deleted"
