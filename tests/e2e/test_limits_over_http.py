"""Limits (docs/limits.md) as an artist meets them over HTTP against the local stack: an admin gives
it a small storage quota with ``tracklane quota set`` (a separate process, finding the stack by its
state file), and an intent past it is refused with the documented code and numbers."""

from __future__ import annotations

import json
import subprocess

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
