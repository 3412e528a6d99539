"""Limits (docs/limits.md) as an artist meets them over HTTP against the local stack: an admin gives
it a small storage quota with ``tracklane quota set`` (a separate process, finding the stack by its
state file), and an intent past it is refused with the documented code and numbers; uploads past
the running-workflow cap (3, the default) wait their turn and are all processed."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.cli_process import run_cli

from .conftest import LocalStackProcess


def tracklane(stack: LocalStackProcess, *args: str) -> subprocess.CompletedProcess[str]:
    # The stack announces itself in the state file beside its log (tests/e2e/conftest.py).
    return run_cli(*args, state_file=stack.log.parent / "stack.json")


def test_an_artist_with_a_small_quota_is_refused_with_the_documented_code_and_numbers(local_stack):
    # Given an artist whose admin set its quota to 1000 bytes
    user = "quota-e2e"
    auth = local_stack.auth(user)
    assert httpx.put(f"{local_stack.api}/v1/artists/me", json={"handle": "quotae2e"}, headers=auth).status_code == 200
    set_ = tracklane(local_stack, "quota", "set", user, "1000")
    assert set_.returncode == 0, set_.stderr
    assert json.loads(set_.stdout)["quotaBytes"] == 1000

    # When it asks to upload 4000 bytes
    body = {"fileName": "take.wav", "contentType": "audio/wav", "byteSize": 4000}
    refused = httpx.post(f"{local_stack.api}/v1/uploads", json=body, headers=auth)

    # Then it is refused as docs/limits.md says, with what it uses, reserves, may use and asked for
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert error["code"] == "storage_quota_exceeded"
    assert (error["usedBytes"], error["reservedBytes"], error["quotaBytes"], error["requestedBytes"]) == (
        0,
        0,
        1000,
        4000,
    )
    # ... and its usage says the same, with nothing pending
    usage = httpx.get(f"{local_stack.api}/v1/me/usage", headers=auth).json()
    assert (usage["quotaBytes"], usage["quotaSource"], usage["availableBytes"], usage["pendingIntents"]) == (
        1000,
        "override",
        1000,
        0,
    )

    # When the admin clears the quota, the same intent is accepted
    assert tracklane(local_stack, "quota", "clear", user).returncode == 0
    assert httpx.post(f"{local_stack.api}/v1/uploads", json=body, headers=auth).status_code == 201


def test_an_artists_uploads_past_the_running_workflow_cap_wait_then_are_all_processed(
    local_stack, make_audio, tmp_path
):
    # Given an artist with five distinct files (the same bytes twice would be a duplicate), long
    # enough that no run ends while the five are stored and finalized (about a second)
    user = "runcap-e2e"
    auth = local_stack.auth(user)
    assert httpx.put(f"{local_stack.api}/v1/artists/me", json={"handle": "runcape2e"}, headers=auth).status_code == 200
    files = []
    for n in range(5):
        path = tmp_path / f"take-{n}.wav"
        data = make_audio("tone-10s.wav", seconds=10).read_bytes()
        path.write_bytes(data[:-4] + (n + 1).to_bytes(4, "little"))
        files.append(path)

    def intent_for(path: Path) -> dict:
        body = {"fileName": path.name, "contentType": "audio/wav", "byteSize": path.stat().st_size}
        return dict(httpx.post(f"{local_stack.api}/v1/uploads", json=body, headers=auth).json())

    def store(intent: dict, path: Path) -> int:
        put = httpx.put(intent["signedUrl"], content=path.read_bytes(), headers=intent["requiredHeaders"])
        return put.status_code

    def finalize(intent: dict) -> dict:
        answer = httpx.post(f"{local_stack.api}/v1/uploads/{intent['uploadId']}/finalize", headers=auth, timeout=30)
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    # When all five are stored at once, then finalized at once
    intents = [intent_for(path) for path in files]
    with ThreadPoolExecutor(max_workers=5) as pool:
        assert list(pool.map(store, intents, files)) == [200] * 5
        answers = list(pool.map(finalize, intents))

    # Then at most three run (the S3 event may have finalized some first: those answer
    # already_finalized with the same workflowStatus), the others wait, and none is refused
    statuses = [answer["workflowStatus"] for answer in answers]
    assert statuses.count("queued") >= 2, statuses
    assert set(statuses) <= {"queued", "running"}, statuses
    usage = httpx.get(f"{local_stack.api}/v1/me/usage", headers=auth).json()
    assert usage["maxRunningWorkflows"] == 3
    assert usage["runningWorkflows"] + usage["queuedWorkflows"] <= 5
    assert usage["runningWorkflows"] <= 3

    # ... and every one of them ends ready, each run handing its slot on
    def status(intent: dict) -> dict:
        url = f"{local_stack.api}/v1/tracks/{intent['trackId']}/processing-status"
        return dict(httpx.get(url, headers=auth).json())

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        current = [status(intent) for intent in intents]
        if all(s["workflowStatus"] in {"succeeded", "failed"} for s in current):
            break
        time.sleep(1)
    assert [(s["status"], s["workflowStatus"]) for s in current] == [("ready", "succeeded")] * 5
    usage = httpx.get(f"{local_stack.api}/v1/me/usage", headers=auth).json()
    assert (usage["runningWorkflows"], usage["queuedWorkflows"]) == (0, 0)
