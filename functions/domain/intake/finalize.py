"""Finalize an upload intent: one code path for the explicit API call and the S3 put event.

Both triggers may race or repeat (S3 and SQS deliver at least once, clients retry). A conditional
write on the Upload item (``status == "pending"``) picks exactly one winner, which starts processing;
the workflow execution is named after the upload id, so even a repeated start creates no second
execution.

What the API answers is a second, separate decision. Clients of the upload-intent contract never
see the S3 trigger: for them ``already_finalized`` means "you finalized this before". So the first
API finalize of an intent answers ``finalized`` even when the S3 event got there first, and every
later one ``already_finalized`` — decided by a second conditional write (``acknowledged_at``), so
exactly one API call gets ``finalized`` however many race.
"""

from __future__ import annotations

from collections.abc import Callable

from functions.data.models import UploadModel
from functions.domain.intake import (
    finalize_media,
    finalize_original,
    finalize_steps,
    finalize_version,
    media_uploads,
    uploads,
    versions,
)
from functions.domain.intake.finalize_steps import Outcome, Request, Trigger, Waveform
from functions.errors import AssetMismatch, UploadIntentNotFound

__all__ = ["KINDS", "Outcome", "Trigger", "Waveform", "finalize"]

# One path per kind of intent, each in its own module, composed of ``finalize_steps``.
KINDS: dict[str, Callable[[UploadModel, Request], Outcome]] = {
    uploads.TRACK_ORIGINAL: finalize_original.finalize,
    versions.TRACK_VERSION: finalize_version.finalize,
    **dict.fromkeys(media_uploads.KINDS, finalize_media.finalize),
}


def finalize(
    upload_id: str,
    *,
    trigger: Trigger,
    owner_id: str | None = None,
    asset_id: str | None = None,
    duration_ms: int | None = None,
    waveform: Waveform | None = None,
) -> Outcome:
    """``owner_id`` is the caller for the API trigger (another owner's intent is 'not found');
    the S3 trigger passes None: the object key itself names the intent."""
    upload = uploads.find(upload_id)
    if upload is None or (owner_id is not None and upload.owner_id != owner_id):
        raise UploadIntentNotFound("No such upload intent for this owner.")
    if asset_id is not None and asset_id != upload.asset_id:
        raise AssetMismatch("assetId does not match this upload intent.", assetId=asset_id)
    if upload.status != "pending" or uploads.is_expired(upload):
        finalize_steps.discard_stray(upload, trigger)
    kind = KINDS.get(str(upload.intent))
    if kind is None:
        raise UploadIntentNotFound("No such upload intent for this owner.")
    return kind(upload, Request(trigger, duration_ms, waveform))
