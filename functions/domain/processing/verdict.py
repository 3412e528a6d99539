"""A track's verdict once its workflow ends: ready or failed, with no lane left open.

Kept apart from the lanes (``steps``) because the sweeper gives verdicts too, and it must not
import the lanes' media libraries (Pillow, numpy), which only the processing function carries.
"""

from __future__ import annotations

from typing import Any

from functions.data import keys, storage, writes
from functions.data.models import TrackModel, utcnow
from functions.domain.catalog import listing, tracks
from functions.domain.intake import run_queue, versions
from functions.errors import TrackNotFound
from functions.observability import logger
from functions.settings import settings
from functions.step_errors import StepFailed
from functions.workflow.definition import RENDITION_LANES, REQUIRED_LANES

StepInput = dict[str, Any]


def close_open_lanes(track_id: str, owner_id: str, error_name: str | None) -> list[tuple[str, str | None, str | None]]:
    """Lanes still queued or running when the workflow ends were stopped (a timeout, a crash, retries
    exhausted, a required lane failing beside them): close them so nothing stays 'running'.
    Returns every failed lane as (lane, code, message)."""
    status = tracks.processing_status(track_id, owner_id)
    failures: list[tuple[str, str | None, str | None]] = []
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
    return failures


def mark_playable(payload: StepInput) -> dict[str, str]:
    """A rendition is stored (the probe succeeded before any could start): the track is ``ready``
    to play while the other renditions and the optional lanes (waveform, loudness, ...) may still
    run; ``workflowStatus`` stays ``running`` until MarkReady. Conditional, so it never revives a
    track that was settled or failed meanwhile, and the later renditions change nothing."""
    if payload.get("version"):
        # A new version goes live whole, once every lane has ended (MarkReady); until then the
        # track keeps playing the version it has.
        return {"status": "pending"}
    writes.update_if(
        TrackModel(payload["trackId"], TrackModel.TRACK_SK),
        [TrackModel.status.set("ready"), TrackModel.updated_at.set(utcnow())],
        TrackModel.status == "processing",
    )
    listing.sync(payload["trackId"])
    return {"status": "ready"}


def mark_ready(payload: StepInput, *, sweep_objects: bool = True) -> dict[str, str]:
    """Reached when every lane has ended and the required ones succeeded; optional lanes may have
    failed, and so may renditions, as long as one exists. With none, this step fails
    (``StepFailed``), and the workflow's Catch gives the track (or version) MarkFailed's verdict
    with the renditions' reason. (The sweeper passes how the execution ended as ``failure``, so
    lanes it stopped say why.)"""
    try:
        if not _has_rendition(payload):
            raise StepFailed("no_rendition", "No streaming version of this audio could be made.")
        verdict = _promote_version(payload) if payload.get("version") else _mark_ready(payload)
    except TrackNotFound:  # TrackDeleted included
        verdict = _forget_deleted(payload, sweep_objects=sweep_objects)
    _hand_slot_on(payload)
    return verdict


def _has_rendition(payload: StepInput) -> bool:
    lanes = tracks.processing_status(payload["trackId"], payload["ownerId"]).lanes
    return _any_rendition({lane.lane: lane.state for lane in lanes})


def _any_rendition(states: dict[str, str]) -> bool:
    return any(states.get(lane) == "succeeded" for lane in RENDITION_LANES)


def _mark_ready(payload: StepInput) -> dict[str, str]:
    error_name = (payload.get("failure") or {}).get("Error")
    close_open_lanes(payload["trackId"], payload["ownerId"], error_name=error_name)
    tracks.update(
        payload["trackId"],
        TrackModel.status.set("ready"),
        TrackModel.workflow_status.set("succeeded"),
        TrackModel.failure_code.remove(),
        TrackModel.failure_message.remove(),
        *_leave_sweeper_index(),
    )
    listing.sync(payload["trackId"])
    return {"status": "ready"}


def mark_failed(payload: StepInput, *, sweep_objects: bool = True) -> dict[str, str]:
    """Reached through Catch when a required lane failed. Lanes that failed permanently have
    recorded why; the track reports the first required lane's reason."""
    try:
        verdict = _fail_version(payload) if payload.get("version") else _mark_failed(payload)
    except TrackNotFound:  # TrackDeleted included
        verdict = _forget_deleted(payload, sweep_objects=sweep_objects)
    _hand_slot_on(payload)
    return verdict


def _hand_slot_on(payload: StepInput) -> None:
    """The verdict is recorded: the run's slot goes to the owner's oldest waiting upload
    (``run_queue``). Repeated with the step (a retry), it frees nothing twice. The workflow passes
    its own state machine's ARN (``stateMachineArn``: the processing function has no setting for
    it, which would make the state machine and its functions depend on each other); an execution
    started before that input existed relies on the configured one, else on the sweeper."""
    if not payload.get("uploadId") or not payload.get("ownerId"):
        return
    machine = payload.get("stateMachineArn") or settings().state_machine_arn or None
    run_queue.finish(payload["ownerId"], payload["uploadId"], machine)


def _mark_failed(payload: StepInput) -> dict[str, str]:
    error_name = (payload.get("failure") or {}).get("Error", "States.Unknown")
    failures = close_open_lanes(payload["trackId"], payload["ownerId"], error_name)
    code, message = _reason(failures)
    tracks.update(
        payload["trackId"],
        TrackModel.status.set("failed"),
        TrackModel.workflow_status.set("failed"),
        TrackModel.failure_code.set(code),
        TrackModel.failure_message.set(message),
        *_leave_sweeper_index(),
    )
    listing.sync(payload["trackId"])
    return {"status": "failed"}


def _reason(failures: list[tuple[str, str | None, str | None]]) -> tuple[str, str]:
    """The first failed required lane's code and message, else the first failed rendition's (no
    rendition could be made), else the first failed lane's."""
    required = [f for f in failures if f[0] in REQUIRED_LANES] or [f for f in failures if f[0] in RENDITION_LANES]
    code: str | None = None
    message: str | None = None
    if failures:
        _, code, message = (required or failures)[0]
    # No lane failed: the workflow itself was stopped (timeout, abort) before any lane could.
    return code or "processing_stopped", message or "Processing stopped before it could finish. Upload the file again."


def _promote_version(payload: StepInput) -> dict[str, str]:
    """A new version's MarkReady: its outputs replace the live version's (functions.domain.intake.versions)
    and the track's status stays (or becomes) ready. A version no longer pending is dropped."""
    error_name = (payload.get("failure") or {}).get("Error")
    close_open_lanes(payload["trackId"], payload["ownerId"], error_name=error_name)
    promoted = versions.promote(payload["trackId"], payload["version"], payload["objectKey"])
    return {"status": "ready" if promoted else "discarded"}


def _fail_version(payload: StepInput) -> dict[str, str]:
    """A new version's MarkFailed: the version is failed, the track keeps the one it plays and its
    own status, failure and workflow status."""
    error_name = (payload.get("failure") or {}).get("Error", "States.Unknown")
    code, message = _reason(close_open_lanes(payload["trackId"], payload["ownerId"], error_name))
    versions.fail(payload["trackId"], payload["version"], payload["objectKey"], code, message)
    return {"status": "failed"}


def settle(track_id: str, owner_id: str, error_name: str, *, upload_id: str | None = None) -> str:
    """Gives a verdict for a track whose workflow ended without one (it timed out, was stopped, or
    crashed before MarkReady/MarkFailed): ready when every required lane and at least one rendition
    succeeded, else failed.
    Returns the new status. Used by the sweeper."""
    # The sweeper has no S3 access: objects of a track deleted meanwhile are swept by its lanes and
    # its workflow's MarkReady/MarkFailed.
    try:
        lanes = {lane.lane: lane.state for lane in tracks.processing_status(track_id, owner_id).lanes}
    except TrackNotFound:
        status = _forget_deleted({"trackId": track_id}, sweep_objects=False)["status"]
        if upload_id is not None:
            _hand_slot_on({"ownerId": owner_id, "uploadId": upload_id})
        return status
    payload = {"trackId": track_id, "ownerId": owner_id, "failure": {"Error": error_name}}
    if upload_id is not None:  # its run slot is handed on with the verdict
        payload["uploadId"] = upload_id
    if all(lanes.get(lane) == "succeeded" for lane in REQUIRED_LANES) and _any_rendition(lanes):
        return mark_ready(payload, sweep_objects=False)["status"]
    return mark_failed(payload, sweep_objects=False)["status"]


def _forget_deleted(payload: StepInput, *, sweep_objects: bool) -> dict[str, str]:
    """The track was deleted while it was processed. Its delete removed the lanes and objects there
    were then; lanes still running may have written since (a lane's own cleanup covers what it
    stored, but not a lane that crashed in between): the workflow's last step sweeps once more, so
    nothing of the track outlives its execution."""
    track_id = payload["trackId"]
    # (the vector too: the embeddings lane may have stored it after the delete)
    lanes = tracks.delete_side_items(track_id)
    objects = storage.delete_prefix(keys.track_prefix(track_id)) if sweep_objects else 0
    if payload.get("version"):
        versions.forget_deleted(payload["objectKey"])
    logger.info("verdict for a deleted track", extra={"track_id": track_id, "lanes": lanes, "objects": objects})
    return {"status": "deleted"}


def _leave_sweeper_index() -> tuple[Any, ...]:
    return TrackModel.processing_shard.remove(), TrackModel.processing_since.remove()


def _stopped_message(error_name: str | None) -> str:
    if error_name == "States.Timeout":
        return "This step took too long and was stopped."
    if error_name == "States.Aborted":
        return "Processing was stopped before this step finished."
    if error_name == "TransientStepError":
        return "This step kept hitting temporary problems and gave up. Try again later."
    if error_name is None:
        return "This step did not finish before processing completed."
    return "This step stopped unexpectedly."
