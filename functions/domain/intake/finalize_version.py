"""Finalizing a new version of a track's audio (``functions.domain.intake.versions``)."""

from __future__ import annotations

from functions.data import storage
from functions.data.models import UploadModel
from functions.domain.catalog import tracks
from functions.domain.intake import executions, run_queue, uploads, versions
from functions.domain.intake import finalize_steps as steps
from functions.errors import (
    TrackNotFound,
    TrackProcessing,
    UploadAssetInvalid,
    UploadIntentNotFound,
    VersionSuperseded,
)
from functions.observability import logger
from functions.workflow.definition import LANES


def finalize(upload: UploadModel, request: steps.Request) -> steps.Outcome:
    """A new original for an existing track (``functions.domain.intake.versions``): finalized like an
    original (either trigger, one winner, one execution named after the upload), but the track's
    side comes first: its pending version must still be this one, and the track's own run must have
    ended (``track_processing`` leaves the upload pending, to be finalized again). ``durationMs``
    and ``waveform`` hints are not stored: they would overwrite the version listeners get."""
    trigger = request.trigger
    kept = steps.verify_and_keep(upload) if upload.status == "pending" else None
    if kept is not None:
        try:
            versions.begin(upload, uploads.kept_key(upload))
        except (VersionSuperseded, TrackNotFound) as refused:
            steps.reject(upload, refused.message, refused.code)
            if isinstance(refused, TrackNotFound):
                raise UploadIntentNotFound("No such upload intent for this owner.") from refused
            raise
        except TrackProcessing:
            # The upload stays pending, to be finalized (and kept) again once the track's run ends.
            storage.delete(uploads.kept_key(upload))
            raise
        run = steps.claim_settling(upload, trigger, kept.size)
        if run is not None:
            tracks.queue_lanes(upload.track_id, LANES)
            if run == "running":  # else it waits for one of the owner's run slots (run_queue)
                executions.ensure_execution(upload)
            storage.delete(upload.object_key)
            logger.info("version finalized", extra={"upload_id": upload.upload_id, "trigger": trigger, "run": run})
            return steps.Outcome("finalized", upload, LANES, run)
    if upload.status == "pending":
        steps.refresh(upload)
    return _after_the_fact(upload, trigger)


def _after_the_fact(upload: UploadModel, trigger: steps.Trigger) -> steps.Outcome:
    """What was decided of the version's upload (by this caller's claim, or another's)."""
    if upload.status == "rejected":
        if upload.rejected_code == VersionSuperseded.code:
            raise VersionSuperseded(upload.rejected_message or "A newer version replaced this one.")
        if upload.rejected_code == TrackNotFound.code:
            raise UploadIntentNotFound("No such upload intent for this owner.")
        raise UploadAssetInvalid(steps.rejection(upload))
    if upload.status != "finalized":
        raise UploadIntentNotFound("No such upload intent for this owner.")
    if upload.execution_arn is None and not run_queue.is_waiting(upload):
        # The winner stopped between its claim and the start: same name, same input, one run.
        executions.ensure_execution(upload)
    workflow_status = "queued" if run_queue.is_waiting(upload) else versions.run_status(upload)
    if trigger == "api" and steps.acknowledge(upload):
        return steps.Outcome("finalized", upload, LANES, workflow_status)
    return steps.Outcome("already_finalized", upload, (), workflow_status)
