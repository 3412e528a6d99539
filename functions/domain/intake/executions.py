"""Starting an upload's workflow: one execution per upload, named after it, with an input that
depends on nothing but the intent, so any number of starts (finalize's triggers, the sweeper, a run
slot's hand-off) make one run."""

from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError

from functions.clients import sfn
from functions.data import writes
from functions.data.models import UploadModel
from functions.domain.intake import media_uploads, uploads, versions
from functions.errors import WorkflowStartFailed
from functions.settings import settings
from functions.workflow.definition import TRACK_RUN


def workflow_input(upload: UploadModel) -> dict[str, str]:
    payload = {
        "uploadId": upload.upload_id,
        "trackId": upload.track_id,
        "ownerId": upload.owner_id,
        # The kept copy finalize verified, never the upload key a signed URL can still write to.
        "objectKey": uploads.kept_key(upload),
        "run": TRACK_RUN,
    }
    # An uploaded image runs one part of the workflow (functions.workflow.definition.RUNS).
    if upload.intent == media_uploads.TRACK_ARTWORK:
        payload["run"] = "artwork"
    elif upload.intent == media_uploads.ALBUM_COVER:
        payload.update({"run": "album_cover", "albumId": upload.album_id or upload.track_id})
    elif upload.intent == versions.TRACK_VERSION:
        # The whole workflow, for a new version of the track (functions.domain.intake.versions).
        payload["version"] = upload.upload_id
    return payload


def ensure_execution(upload: UploadModel, *, state_machine_arn: str | None = None) -> None:
    """Starts the upload's workflow; starting it again is a no-op (same name, same input).
    ``state_machine_arn``: the configured one unless given (a workflow step handing its slot on
    knows its own state machine from its input: it has no setting for it)."""
    machine = state_machine_arn or settings().state_machine_arn
    try:
        response = sfn().start_execution(
            stateMachineArn=machine,
            name=upload.upload_id,
            # Deterministic input: a repeated start with the same name is then a no-op.
            input=json.dumps(workflow_input(upload), sort_keys=True),
        )
        started = response["executionArn"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            _not_started(upload)
            raise WorkflowStartFailed("The upload is stored but processing could not start; finalize again.") from error
        started = execution_arn(upload.upload_id, machine)
    except BotoCoreError as error:
        _not_started(upload)
        raise WorkflowStartFailed("The upload is stored but processing could not start; finalize again.") from error
    if upload.execution_arn != started:  # an original's claim records it already
        upload.update(actions=[UploadModel.execution_arn.set(started)])


def _not_started(upload: UploadModel) -> None:
    """An original's claim records the execution's ARN before the start; when the start fails, it
    is taken back, so the next finalize (which starts an execution only for an intent without one)
    starts it. A process that stops between the claim and the start leaves it to the sweeper."""
    if upload.execution_arn is not None:
        writes.update_if(upload, [UploadModel.execution_arn.remove()], UploadModel.execution_arn.exists())


def execution_arn(name: str, state_machine_arn: str | None = None) -> str:
    state_machine = state_machine_arn or settings().state_machine_arn
    return state_machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"
