"""The states of an upload intent and of the track it makes, in one place.

An upload intent is ``pending`` until its file is decided, then exactly one of:

* ``finalized``: the file was verified and kept (copied out of ``uploads/``) and is processed;
* ``duplicate``: the owner already has a track with these bytes; nothing is processed;
* ``rejected``: the file broke the intent's promise (size, type, an empty file) or the track
  refused it; the file is deleted and the reason kept (``rejected_code``, ``rejected_message``);
* ``cancelled``: its owner cancelled it;
* ``expired``: derived, never written. A pending intent past its TTL, or past its signed URL's
  expiry with no file stored, can no longer be completed.

Its track is a ``draft`` while the intent is pending, ``rejected`` (with ``failure``) when the
intent was, and ``processing`` -> ``ready`` | ``failed`` once finalized. A draft or rejected track
never had audio: it is not playable, not listed and not announced by domain events.

Every reader -- a later finalize, the processing status, the progress stream, the session view --
reports an intent that ended without processing with the same code, from ``ended_without_audio``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from functions.data.models import UploadModel, utcnow
from functions.errors import DomainError, UploadAssetInvalid, UploadCancelled, UploadExpired

# Upload intents.
PENDING = "pending"
FINALIZED = "finalized"
DUPLICATE = "duplicate"
REJECTED = "rejected"
CANCELLED = "cancelled"
EXPIRED = "expired"
UPLOAD_STATES = (PENDING, FINALIZED, DUPLICATE, REJECTED, CANCELLED, EXPIRED)

# Tracks.
DRAFT = "draft"
TRACK_REJECTED = "rejected"
PROCESSING = "processing"
READY = "ready"
FAILED = "failed"
TRACK_STATES = (DRAFT, TRACK_REJECTED, PROCESSING, READY, FAILED)
# Tracks whose original was never kept: nothing to play, list, announce or join to an album.
WITHOUT_AUDIO = frozenset({DRAFT, TRACK_REJECTED})


def upload_state(
    upload: UploadModel, *, now: datetime | None = None, file_stored: Callable[[], bool] | None = None
) -> str:
    """The intent's state. ``file_stored`` answers whether a file is stored under the intent's key
    (a HEAD): asked only for a pending intent past its signed URL's expiry, where a file stored in
    time may still be waiting for its put event (then it is not expired yet)."""
    if upload.status != PENDING:
        return str(upload.status)
    now = now or utcnow()
    deadline = upload.expires_at_epoch
    if deadline is not None and deadline <= now:
        return EXPIRED
    if upload.expires_at < now and file_stored is not None and not file_stored():
        return EXPIRED
    return PENDING


def ended_without_audio(upload: UploadModel, state: str) -> DomainError | None:
    """Why an intent in ``state`` will never be processed, as the error every reader reports."""
    if state == REJECTED:
        error = UploadAssetInvalid(upload.rejected_message or "The uploaded file did not match the upload intent.")
        # A refusal by the track (a superseded version, a full document list) keeps its own code.
        error.code = upload.rejected_code or UploadAssetInvalid.code
        return error
    if state == CANCELLED:
        return UploadCancelled("This upload intent was cancelled; create a new one.")
    if state == EXPIRED:
        return UploadExpired("This upload intent expired before any file arrived; create a new one.")
    return None
