"""The workflow runs for real: moto interprets the state machine rendered from the one definition,
the local runner executes the steps (real ffmpeg) and applies the Retry policies; Catch marks the
track failed. Nothing is left 'processing'."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from functions.domain.processing import steps
from functions.step_errors import StepFailed, TransientStepError
from functions.workflow.definition import LANES, RENDITION_TASK_LANES

from .conftest import Stack, as_user


def wait_for(check: Callable[[], dict], *, until: Callable[[dict], bool], timeout_s: float = 60) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if until(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def processed(stack: Stack, user: str, upload: dict) -> dict:
    """The processing status once the verdict is written and the upload's execution has ended: the
    verdict step writes the track before the state machine takes its last transition, so a test
    that then reads the execution would otherwise race it."""

    def status() -> dict:
        return stack.api.get(f"/v1/tracks/{upload['trackId']}/processing-status", headers=as_user(user)).json()

    settled = wait_for(status, until=lambda s: s["workflowStatus"] in {"succeeded", "failed"})
    execution_ended(stack, upload)
    return settled


def execution_ended(stack: Stack, upload: dict) -> dict:
    """The upload's execution once it has left RUNNING (asked of Step Functions, not the API)."""
    name = upload["uploadId"].removeprefix("upl_")

    def execution() -> dict:
        found = [e for e in stack.executions() if e["name"] == name]
        return found[0] if found else {"status": "RUNNING"}

    return wait_for(execution, until=lambda e: e["status"] != "RUNNING")


def upload_and_finalize(stack: Stack, user: str, path, content_type: str = "audio/wav") -> dict:
    upload = stack.create_upload(user, path, content_type=content_type)
    stack.put(upload["signedUrl"], path, content_type=content_type)
    response = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(user))
    assert response.json()["status"] == "finalized"
    return upload


def test_a_wav_is_probed_and_the_track_becomes_ready(stack, artist, runner, wav_3s):
    upload = upload_and_finalize(stack, artist, wav_3s)

    status = processed(stack, artist, upload)

    assert status["status"] == "ready"
    assert status["workflowStatus"] == "succeeded"
    assert [lane["name"] for lane in status["lanes"]] == list(LANES)
    probe = status["lanes"][0]
    assert probe["state"] == "succeeded"
    assert probe["attempts"] == 1
    assert probe["outputs"]["codec"] == "pcm_s16le"
    assert probe["outputs"]["sampleRateHz"] == 44100
    assert probe["outputs"]["channels"] == 2
    assert abs(probe["outputs"]["durationMs"] - 3000) <= 50
    assert probe["startedAt"] <= probe["finishedAt"]
    track = stack.api.get(f"/v1/tracks/{upload['trackId']}", headers=as_user(artist)).json()
    assert abs(track["durationMs"] - 3000) <= 50
    (execution,) = stack.executions()
    assert execution["status"] == "SUCCEEDED"


def test_a_healthy_run_logs_no_interpreter_exception(stack, artist, runner, wav_3s, caplog):
    # Step Functions evaluates the Choice's JSONPath on the input: a path the input lacks is an
    # error there, and moto's interpreter logs it even for a presence test.
    with caplog.at_level(logging.ERROR, logger="moto.stepfunctions"):
        upload = upload_and_finalize(stack, artist, wav_3s)
        status = processed(stack, artist, upload)

    assert status["workflowStatus"] == "succeeded"
    logged = [record.getMessage() for record in caplog.records if record.name.startswith("moto.stepfunctions")]
    assert not logged, logged


def test_a_png_renamed_wav_fails_the_track_with_a_user_facing_message(stack, artist, runner, png_named_wav):
    upload = upload_and_finalize(stack, artist, png_named_wav)

    status = processed(stack, artist, upload)

    assert status["status"] == "failed"
    assert status["failure"]["code"] == "audio_unreadable"
    assert "not audio" in status["failure"]["message"]
    assert status["lanes"][0]["state"] == "failed"
    assert status["lanes"][0]["code"] == "audio_unreadable"
    # The lanes after probe never ran, and say so.
    assert {lane["name"]: lane["state"] for lane in status["lanes"][1:]} == dict.fromkeys(LANES[1:], "skipped")
    (execution,) = stack.executions()
    assert execution["status"] == "FAILED"


def test_a_transient_failure_is_retried_and_then_succeeds(stack, artist, runner, wav_3s, monkeypatch):
    real_probe = steps.STEPS["probe"]
    calls = {"n": 0}

    def flaky_probe(payload):
        calls["n"] += 1
        if calls["n"] == 1:
            # inside the lane bookkeeping, as a throttled S3 read would be
            def fail(_):
                raise TransientStepError("S3 throttled")

            return steps._lane("probe", fail)(payload)
        return real_probe(payload)

    monkeypatch.setitem(steps.STEPS, "probe", flaky_probe)
    upload = upload_and_finalize(stack, artist, wav_3s)

    status = processed(stack, artist, upload)

    assert calls["n"] == 2
    assert status["status"] == "ready"
    assert status["lanes"][0]["state"] == "succeeded"
    assert status["lanes"][0]["attempts"] == 2


def test_a_permanent_failure_ends_in_the_lanes_failed_state(stack, artist, runner, wav_3s, monkeypatch):
    def broken(_):
        raise StepFailed("audio_unreadable", "Injected: this decoder refuses the file.")

    monkeypatch.setitem(steps.STEPS, "probe", steps._lane("probe", broken))
    upload = upload_and_finalize(stack, artist, wav_3s)

    status = processed(stack, artist, upload)

    assert status["status"] == "failed"
    assert status["lanes"][0] | {"startedAt": None, "finishedAt": None, "updatedAt": None} == {
        "name": "probe",
        "state": "failed",
        "attempts": 1,  # permanent: not retried
        "code": "audio_unreadable",
        "message": "Injected: this decoder refuses the file.",
        "outputs": None,
        "startedAt": None,
        "finishedAt": None,
        "updatedAt": None,
    }
    assert status["failure"] == {"code": "audio_unreadable", "message": "Injected: this decoder refuses the file."}


def test_retries_that_never_succeed_end_failed_not_stuck(stack, artist, fast_runner, wav_3s, monkeypatch):
    def always_throttled(_):
        raise TransientStepError("S3 throttled")

    monkeypatch.setitem(steps.STEPS, "probe", steps._lane("probe", always_throttled))
    upload = upload_and_finalize(stack, artist, wav_3s)
    status = processed(stack, artist, upload)

    assert status["status"] == "failed"
    probe = status["lanes"][0]
    assert probe["attempts"] == 4  # the first try + MaxAttempts (3) retries
    assert probe["state"] == "failed"
    assert probe["code"] == "processing_stopped"
    assert "temporary problems" in probe["message"]


def test_the_track_is_ready_to_play_once_the_required_lanes_succeed(stack, artist, fast_runner, wav_3s, monkeypatch):
    """A slow optional lane does not hold the track back: it is ``ready`` (playable) as soon as the
    renditions exist, while ``workflowStatus`` stays ``running`` until every lane has ended."""
    release = threading.Event()

    def slow_waveform(_):
        assert release.wait(120)
        return {"slow": True}

    monkeypatch.setitem(steps.STEPS, "waveform", steps._lane("waveform", slow_waveform))
    upload = upload_and_finalize(stack, artist, wav_3s)

    def status() -> dict:
        return stack.api.get(f"/v1/tracks/{upload['trackId']}/processing-status", headers=as_user(artist)).json()

    def renditions_done(s: dict) -> bool:
        states = {lane["name"]: lane["state"] for lane in s["lanes"]}
        return s["status"] != "processing" and all(states[lane] == "succeeded" for lane in RENDITION_TASK_LANES)

    playable = wait_for(status, until=renditions_done)
    try:
        assert (playable["status"], playable["workflowStatus"]) == ("ready", "running")
        lanes = {lane["name"]: lane["state"] for lane in playable["lanes"]}
        assert lanes["waveform"] == "running"
        stream = stack.api.get(
            f"/v1/tracks/{upload['trackId']}/stream?format=mp3", headers=as_user(artist), follow_redirects=False
        )
        assert stream.status_code == 302
    finally:
        release.set()
    done = processed(stack, artist, upload)
    assert (done["status"], done["workflowStatus"]) == ("ready", "succeeded")
    assert {lane["name"]: lane["state"] for lane in done["lanes"]}["waveform"] == "succeeded"
