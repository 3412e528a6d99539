"""Overload queues, never fails (issue 18): with AWS throttling a share of calls on purpose
(``local.faults``: DynamoDB requests answered as over their throughput, workflow Tasks failed as a
Lambda out of concurrency), every upload still ends ``ready`` with every lane done, in its album
in its order, and nothing is left processing. Throttles are waited out: the SDK's retries, a
throttled transaction sent again (``functions.data.writes``), the workflow's patient retry of
``ThrottledStepError`` and ``Lambda.TooManyRequestsException``, and a client repeating a
``503 service_busy``."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from functions import clients
from functions.data.models import shared_connection
from functions.domain.catalog import artists
from local.faults import ThrottlePlan, Throttler
from local.runner import WorkflowRunner

from .conftest import Stack, _running, as_user
from .test_upload_sessions import add_track, album_track_ids, new_album, open_session
from .test_workflow import wait_for

SETTLED_LANE_STATES = {"succeeded", "skipped"}


@contextmanager
def throttling(stack: Stack, plan: ThrottlePlan) -> Iterator[tuple[Throttler, WorkflowRunner]]:
    """The app's DynamoDB clients throttled by ``plan``, and a runner whose Task invocations are
    (its retry waits shortened twentyfold: the same sequence, sooner)."""
    throttler = Throttler(plan, seed=18).install(shared_connection().client, clients.dynamodb())
    runner = WorkflowRunner(
        stack.sqs, stack.sfn, stack.resources.tasks_queue_url, wait_s=1, retry_delay_scale=0.05, throttler=throttler
    )
    try:
        for running in _running(runner, stack):
            yield throttler, running
    finally:
        throttler.uninstall()


def patiently(request: Callable[[], httpx.Response]) -> httpx.Response:
    """A client honouring 503 service_busy and 429 rate_limited: repeats the request after a pause.
    (Every attempt is a write request, and so takes one of the caller's write tokens: a quarter of
    them answered 503 can empty a bucket.)"""
    for _ in range(30):
        response = request()
        if response.status_code == 429:
            assert response.json()["error"]["code"] == "rate_limited"
            time.sleep(int(response.headers["retry-after"]))
            continue
        if response.status_code != 503:
            return response
        assert response.json()["error"]["code"] == "service_busy" and response.headers["retry-after"] == "5"
        time.sleep(0.05)  # Retry-After says 5 s; the simulation's throttles are shorter
    return response


def upload(stack: Stack, user: str, path: Path, **extra: Any) -> str:
    body = {"fileName": path.name, "contentType": "audio/wav", "byteSize": path.stat().st_size, **extra}
    created = patiently(lambda: stack.api.post("/v1/uploads", json=body, headers=as_user(user)))
    assert created.status_code == 201, created.text
    intent = created.json()
    assert stack.put(intent["signedUrl"], path, content_type="audio/wav") == 200
    finalized = patiently(
        lambda: stack.api.post(f"/v1/uploads/{intent['uploadId']}/finalize", json={}, headers=as_user(user))
    )
    assert finalized.status_code == 200, finalized.text
    return str(intent["trackId"])


def settled(stack: Stack, user: str, track_id: str) -> dict[str, Any]:
    def status() -> dict[str, Any]:
        response = patiently(lambda: stack.api.get(f"/v1/tracks/{track_id}/processing-status", headers=as_user(user)))
        return dict(response.json()) if response.status_code == 200 else {"workflowStatus": "unknown"}

    return wait_for(status, until=lambda s: s["workflowStatus"] in {"succeeded", "failed"}, timeout_s=600)


def failed_tasks(stack: Stack, upload_id: str) -> list[tuple[str, str, str]]:
    """``(event type, error, cause)`` of every failure in the upload's execution history: which
    step failed, and with what, when a track did not end ready."""
    name = upload_id.removeprefix("upl_")
    trail: list[tuple[str, str, str]] = []
    for execution in stack.executions():
        if execution["name"] != name:
            continue
        history = stack.sfn.get_execution_history(executionArn=execution["executionArn"], maxResults=1000)
        for event in history["events"]:
            details = next((v for k, v in event.items() if k.endswith("FailedEventDetails")), None)
            if details:
                trail.append((event["type"], details.get("error", ""), details.get("cause", "")[:400]))
    return trail


def assert_processed(status: dict[str, Any], stack: Stack | None = None) -> None:
    # Says why, in one line pytest will not cut short: the failure, every lane not succeeded and
    # what the execution's history says failed.
    why = {
        "failure": status.get("failure"),
        "lanes": {lane["name"]: (lane["state"], lane["code"], lane["message"]) for lane in status["lanes"]
                  if lane["state"] != "succeeded"},
    }  # fmt: skip
    if stack is not None and status["status"] != "ready":
        why["execution"] = failed_tasks(stack, status["uploadId"])
    assert (status["status"], status["workflowStatus"]) == ("ready", "succeeded"), f"{status['trackId']}: {why}"
    assert {lane["name"]: lane["state"] for lane in status["lanes"] if lane["state"] not in SETTLED_LANE_STATES} == {}


def test_an_upload_under_throttling_ends_ready_with_every_lane_done(stack: Stack, artist: str, distinct_wav):
    with throttling(stack, ThrottlePlan(dynamodb=0.25, lambda_=0.5)) as (throttler, _):
        track_id = upload(stack, artist, distinct_wav())
        status = settled(stack, artist, track_id)

    assert_processed(status, stack)
    # The simulation throttled for real: DynamoDB requests and Task invocations.
    assert throttler.injected["lambda.Invoke"] > 0
    assert sum(n for call, n in throttler.injected.items() if call.startswith("dynamodb.")) > 0


@pytest.mark.slow
def test_thirty_uploads_with_a_quarter_of_calls_throttled_all_end_ready_and_in_order(stack: Stack, distinct_wav):
    # Given three artists, one of them with an album and an upload session of ten tracks in order
    for name in ("alice", "bob", "carol"):
        artists.upsert(name, handle=name, display_name=name.title())
    album_id = new_album(stack, "alice")
    session_id = open_session(stack, "alice", album_id.removeprefix("alb_"))["upload_session_id"]
    session_tracks = []
    for index in range(1, 11):
        response = add_track(
            stack, "alice", session_id, file_name=f"t{index}.wav", organization_index=str(index),
            metadata={"track_number": index, "title": f"Track {index}"},
        )  # fmt: skip
        assert response.status_code == 201, response.text
        session_tracks.append(response.json())
    files = [distinct_wav() for _ in range(30)]

    with throttling(stack, ThrottlePlan(dynamodb=0.25, lambda_=0.25)) as (throttler, _):
        # When the ten session files are PUT at once, in shuffled order (their put events finalize
        # them), and bob and carol upload ten tracks each through the API, six at a time
        shuffled = random.Random(18).sample(range(10), 10)
        with ThreadPoolExecutor(max_workers=6) as pool:
            puts = [
                pool.submit(
                    stack.put, session_tracks[i]["track_upload"]["upload_url"], files[i], content_type="audio/wav"
                )
                for i in shuffled
            ]
            uploads = [
                pool.submit(upload, stack, owner, files[10 + n]) for n, owner in enumerate(["bob", "carol"] * 10)
            ]
            assert [put.result() for put in puts] == [200] * 10
            track_ids = {f.result(): owner for f, owner in zip(uploads, ["bob", "carol"] * 10, strict=True)}
        track_ids.update({intent["track_id"]: "alice" for intent in session_tracks})

        # (put events that failed come back after the queue's visibility timeout, as on AWS)
        def finalize_pending() -> dict[str, Any]:
            stack.drain_s3_events()
            states = [
                patiently(lambda t=t: stack.api.get(f"/v1/tracks/{t['track_id']}", headers=as_user("alice"))).json()
                for t in session_tracks
            ]
            return {"drafts": sum(1 for state in states if state.get("status") == "draft")}

        assert wait_for(finalize_pending, until=lambda s: s["drafts"] == 0, timeout_s=400) == {"drafts": 0}
        statuses = {track_id: settled(stack, owner, track_id) for track_id, owner in track_ids.items()}

    # Then every track ended ready with every lane done, nothing is left processing
    for status in statuses.values():
        assert_processed(status, stack)
    assert len(statuses) == 30
    # And the session's ten tracks are in the album once each, in their order
    assert album_track_ids(album_id) == [intent["track_id"] for intent in session_tracks]
    # And the throttles were real, transactions and Task invocations included
    assert throttler.injected["dynamodb.TransactWriteItems"] > 0
    assert throttler.injected["lambda.Invoke"] > 0
