"""The scheduled sweeper: nothing stays ``processing`` forever.

A workflow normally ends in MarkReady or MarkFailed, which give the track its verdict. It can end
without one: the execution times out (Step Functions stops it mid-lane), someone stops it, or a
Lambda crash exhausts MarkFailed's own retries. And finalize can crash between claiming an upload
and starting its execution. Each of these leaves a track ``processing`` with no workflow to finish
it. The sweeper finds such tracks through the sparse ``by_processing`` index (a Query per shard,
oldest first, never a full-table read) and asks Step Functions what became of each one's execution:

* still running -> left alone (the workflow's own timeout bounds it);
* ended -> the track is settled: ready when every required lane succeeded, else failed, with
  lanes still open closed as failed (``processing_stopped``) or skipped (``not_run``);
* never started -> started now (same name and input as finalize would use: idempotent).

A track whose upload waits for one of its owner's run slots (``queued_run``,
``functions.domain.intake.run_queue``) is in the index too: the sweeper then repairs the owner's
slots (a slot whose execution ended without a verdict is freed, one whose execution never started is
started) and hands the queue on, so a hand-off lost between a verdict and its start delays an upload
by one sweep.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from functions.clients import sfn
from functions.data import writes
from functions.data.models import TrackModel, utcnow
from functions.domain.catalog import tracks
from functions.observability import logger
from functions.settings import settings

# Step Functions execution status -> the error name the lanes' "stopped" messages are keyed by.
ENDED = {"TIMED_OUT": "States.Timeout", "ABORTED": "States.Aborted", "FAILED": "States.Runtime"}
STILL_RUNNING = frozenset({"RUNNING", "PENDING_REDRIVE"})


@dataclass
class SweepReport:
    examined: int = 0
    running: int = 0
    settled_ready: int = 0
    settled_failed: int = 0
    restarted: int = 0
    stale_entries: int = 0
    waiting: int = 0
    slots_freed: int = 0
    handed_on: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)


def sweep(*, now: datetime | None = None, older_than_s: int | None = None) -> SweepReport:
    now = now or utcnow()
    cutoff = now - timedelta(seconds=settings().sweep_after_s if older_than_s is None else older_than_s)
    report = SweepReport()
    for shard in range(tracks.PROCESSING_SHARDS):
        shard_key = f"processing#{shard}"
        for entry in TrackModel.in_processing.query(shard_key, TrackModel.processing_since <= cutoff):
            report.examined += 1
            _sweep_one(entry.pk, now, cutoff, report)
    if report.examined:
        logger.info("sweep finished", extra=report.to_json())
    return report


def _sweep_one(track_id: str, now: datetime, cutoff: datetime, report: SweepReport) -> None:
    # Most sweeps find no track to look at: only those that do load the intake and verdict code.
    from functions.domain.intake import executions, uploads
    from functions.domain.processing import verdict

    track = tracks.find(track_id)
    if track is not None and track.queued_run:
        report.waiting += 1
        _repair_run_slots(track.owner_id, cutoff, report)
        _touch(track_id, now)
        return
    upload = uploads.find(track.upload_id) if track else None
    if (
        track is None
        or upload is None
        or track.status not in ("processing", "ready")
        or track.workflow_status != "running"
    ):
        # Deleted, or given a verdict by a write that kept the index keys: drop the entry. (A track
        # already playable, ``ready`` with its workflow running, is still the sweeper's: should
        # that execution end without MarkReady, its lanes would stay open.)
        _leave_index(track_id)
        report.stale_entries += 1
        return
    execution = _execution(upload.execution_arn or executions.execution_arn(upload.upload_id))
    if execution is None:
        executions.ensure_execution(upload)
        _touch(track_id, now)  # give the new execution a full grace period before looking again
        report.restarted += 1
        logger.warning("sweeper started a missing execution", extra={"track_id": track_id})
        return
    status = execution["status"]
    if status in STILL_RUNNING:
        report.running += 1
        return
    error_name = ENDED.get(status, "States.Runtime")
    if status == "FAILED" and execution.get("error"):
        error_name = execution["error"]
    status_now = verdict.settle(track_id, track.owner_id, error_name, upload_id=upload.upload_id)
    if status_now == "ready":
        report.settled_ready += 1
    else:
        report.settled_failed += 1
    logger.warning("sweeper settled a track", extra={"track_id": track_id, "execution": status, "verdict": status_now})


def _repair_run_slots(owner_id: str, cutoff: datetime, report: SweepReport) -> None:
    """An upload of the owner waits for a run slot: each slot older than a sweep whose execution
    ended without handing it on (a verdict lost, an execution stopped or timed out) is freed, one
    whose execution never started is started; then the queue is handed on. (Slots taken since
    ``cutoff`` are left to their execution: it may be starting.)"""
    from functions.domain.intake import executions, run_queue, uploads

    for slot in run_queue.slots(owner_id):
        if slot.started_at > cutoff:
            continue
        execution = _execution(executions.execution_arn(slot.upload_id))
        if execution is not None and execution["status"] in STILL_RUNNING:
            continue
        upload = uploads.find(slot.upload_id) if execution is None else None
        if upload is not None:
            executions.ensure_execution(upload)
            report.restarted += 1
        elif run_queue.release(owner_id, slot.upload_id):
            report.slots_freed += 1
            logger.warning("sweeper freed a run slot", extra={"upload_id": slot.upload_id, "owner_id": owner_id})
    report.handed_on += len(run_queue.hand_off(owner_id, settings().state_machine_arn))


def _execution(execution_arn: str) -> dict[str, Any] | None:
    try:
        return dict(sfn().describe_execution(executionArn=execution_arn))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ExecutionDoesNotExist":
            return None
        raise


def _touch(track_id: str, now: datetime) -> None:
    TrackModel(track_id, TrackModel.TRACK_SK).update(
        actions=[TrackModel.processing_since.set(now)], condition=TrackModel.pk.exists()
    )


def _leave_index(track_id: str) -> None:
    # Refused when the item is gone already: then it is out of the index too.
    writes.update_if(
        TrackModel(track_id, TrackModel.TRACK_SK),
        [TrackModel.processing_shard.remove(), TrackModel.processing_since.remove()],
        TrackModel.pk.exists(),
    )
