"""Workflow step implementations: the processing Lambda and the local runner both call ``run``.

Each lane records its own state (running, attempts, succeeded/failed with a user-facing message)
so processing-status tells the truth while the workflow runs, on AWS and locally alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.data import storage
from functions.data.models import TrackModel, ensure_bound, utcnow
from functions.domain import tracks
from functions.media import ffmpeg, probe
from functions.observability import logger
from functions.settings import settings
from functions.workflow.errors import StepFailed, TransientStepError

StepInput = dict[str, Any]
Step = Callable[[StepInput], Any]


def _lane(name: str, work: Callable[[StepInput], dict[str, Any]]) -> Step:
    """Wraps a lane's work with its bookkeeping: running -> succeeded | failed (permanent) or
    still running with a message (transient: the Retry policy will call it again)."""

    def step(payload: StepInput) -> dict[str, Any]:
        track_id = payload["trackId"]
        attempt = tracks.lane_started(track_id, name)
        try:
            outputs = work(payload)
        except StepFailed as failure:
            tracks.lane_finished(track_id, name, state="failed", code=failure.code, message=failure.message)
            raise
        except (TransientStepError, ffmpeg.FfmpegTimeout, BotoCoreError, ClientError) as error:
            tracks.lane_retrying(track_id, name, f"Attempt {attempt} hit a temporary problem; retrying.")
            logger.warning("transient lane error", extra={"lane": name, "attempt": attempt, "error": str(error)})
            raise TransientStepError(str(error)) from error
        tracks.lane_finished(track_id, name, state="succeeded", outputs=outputs)
        return outputs

    return step


def _probe(payload: StepInput) -> dict[str, Any]:
    current = settings()
    source = storage.presign_get(payload["objectKey"], expires_in=3600)
    facts = probe.probe(source, min_ms=current.min_audio_ms, max_ms=current.max_audio_ms)
    ensure_bound()
    TrackModel(payload["trackId"], TrackModel.TRACK_SK).update(
        actions=[
            TrackModel.audio.set(facts.to_json()),
            TrackModel.duration_ms.set(facts.duration_ms),
            TrackModel.updated_at.set(utcnow()),
        ]
    )
    return facts.to_json()


def mark_ready(payload: StepInput) -> dict[str, str]:
    ensure_bound()
    TrackModel(payload["trackId"], TrackModel.TRACK_SK).update(
        actions=[
            TrackModel.status.set("ready"),
            TrackModel.workflow_status.set("succeeded"),
            TrackModel.failure_code.remove(),
            TrackModel.failure_message.remove(),
            TrackModel.updated_at.set(utcnow()),
        ]
    )
    return {"status": "ready"}


def mark_failed(payload: StepInput) -> dict[str, str]:
    """Reached through Catch. A lane that failed permanently has already recorded why; a lane that
    was still running (retries exhausted, a timeout, a crash) is closed here so nothing stays
    'running' forever."""
    ensure_bound()
    track_id = payload["trackId"]
    error_name = (payload.get("failure") or {}).get("Error", "States.Unknown")
    status = tracks.processing_status(track_id, payload["ownerId"])
    failures: list[tuple[str, str | None, str | None]] = []  # (lane, code, message)
    for lane in status.lanes:
        if lane.state == "failed":
            failures.append((lane.lane, lane.code, lane.message))
        elif lane.state == "running":
            stopped = _stopped_message(error_name)
            tracks.lane_finished(track_id, lane.lane, state="failed", code="processing_stopped", message=stopped)
            failures.append((lane.lane, "processing_stopped", stopped))
        elif lane.state == "queued":
            tracks.lane_finished(
                track_id, lane.lane, state="skipped", code="not_run", message="Not run: a required step failed."
            )
    required = [f for f in failures if f[0] in tracks.REQUIRED_LANES]
    code: str | None = None
    message: str | None = None
    if failures:
        _, code, message = (required or failures)[0]
    TrackModel(track_id, TrackModel.TRACK_SK).update(
        actions=[
            TrackModel.status.set("failed"),
            TrackModel.workflow_status.set("failed"),
            TrackModel.failure_code.set(code or "processing_failed"),
            TrackModel.failure_message.set(message or "Processing failed. Try uploading the file again."),
            TrackModel.updated_at.set(utcnow()),
        ]
    )
    return {"status": "failed"}


def _stopped_message(error_name: str) -> str:
    if error_name == "States.Timeout":
        return "This step took too long and was stopped."
    if error_name == "TransientStepError":
        return "This step kept hitting temporary problems and gave up. Try again later."
    return "This step stopped unexpectedly."


STEPS: dict[str, Step] = {
    "probe": _lane("probe", _probe),
    "mark_ready": mark_ready,
    "mark_failed": mark_failed,
}


def run(step: str, payload: StepInput) -> Any:
    if step not in STEPS:
        raise StepFailed("unknown_step", f"No workflow step named '{step}'.")
    return STEPS[step](payload)
