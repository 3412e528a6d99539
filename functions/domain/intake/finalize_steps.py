"""What every kind of finalize shares: verify the stored file and keep it, claim the intent (one
winner however many race), reject it, acknowledge an API caller. (Starting the workflow:
``functions.domain.intake.executions``.)

Each kind of intent (``functions.domain.intake.finalize.KINDS``) composes these in its own module,
so each kind's path reads top to bottom in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from functions.data import reads, storage, writes
from functions.data.models import TrackModel, UploadModel, utcnow
from functions.domain.catalog import tracks, usage
from functions.domain.intake import media_types, run_queue, sessions, uploads
from functions.errors import (
    UploadAssetChanged,
    UploadAssetInvalid,
    UploadAssetMissing,
    UploadCancelled,
    UploadExpired,
    UploadIntentNotFound,
)
from functions.observability import logger

Trigger = Literal["api", "s3_event"]


@dataclass(frozen=True)
class Waveform:
    peaks: list[float]
    sample_rate_hz: int
    channels: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"peaks": self.peaks, "sampleRateHz": self.sample_rate_hz, "channels": self.channels}


@dataclass(frozen=True)
class Request:
    """What the caller of a finalize said: which trigger, and an API caller's advisory hints."""

    trigger: Trigger
    duration_ms: int | None = None
    waveform: Waveform | None = None


@dataclass(frozen=True)
class Outcome:
    status: Literal["finalized", "already_finalized", "duplicate"]
    upload: UploadModel
    jobs_queued: tuple[str, ...]
    workflow_status: str | None

    @property
    def track_id(self) -> str:
        """The track the upload's audio lives in: a duplicate's is the owner's existing track."""
        return self.upload.duplicate_of or self.upload.track_id


def refresh(upload: UploadModel) -> None:
    """Reads the intent again after another caller decided it."""
    if not reads.refresh(upload, consistent_read=True):  # its track was deleted (with the intent) meanwhile
        raise UploadIntentNotFound("No such upload intent for this owner.")


def discard_stray(upload: UploadModel, trigger: Trigger) -> None:
    """Once an intent is decided, nothing stored under its upload key belongs to anything: a
    finalized file was kept elsewhere (``_verify_and_keep``), a rejected, duplicate or cancelled one
    was dropped. A file there now was PUT again with the still-valid signed URL (or is the winner's
    copy source, already kept): it is deleted, and nothing else changes."""
    storage.delete(upload.object_key)
    if trigger == "s3_event":
        state = "expired" if upload.status == "pending" else upload.status
        logger.info(
            "stray upload object deleted",
            extra={"upload_id": upload.upload_id, "upload_state": state, "key": upload.object_key},
        )
    if upload.status == "cancelled":
        raise UploadCancelled("This upload intent was cancelled; create a new one.")
    if upload.status == "pending":  # past its TTL: nothing may finalize it any more
        raise UploadExpired("This upload intent expired; create a new one.")


# A PUT replacing the file between the HEAD and the copy is retried this often (each attempt
# verifies the file that is there now).
KEEP_ATTEMPTS = 3


def verify_and_keep(upload: UploadModel) -> storage.StoredObject | None:
    """Verifies the stored file and copies exactly that file (the copy is conditional on the ETag
    the HEAD saw) to where its track or album keeps it, before the claim: a finalized intent always
    has its kept file, and the signed upload URL can never reach it. None when the file is gone
    because another finalize of this upload won meanwhile (it kept the file and deleted it)."""
    for _ in range(KEEP_ATTEMPTS):
        stored = verify_object(upload)
        try:
            storage.copy_if_unchanged(upload.object_key, uploads.kept_key(upload), etag=stored.etag)
        except storage.ObjectChanged:
            continue
        except storage.ObjectMissing:
            refresh(upload)
            if upload.status != "pending":
                return None
            continue
        return stored
    raise UploadAssetChanged(
        "The file was replaced while it was being finalized; finalize again once the upload is done."
    )


def verify_object(upload: UploadModel) -> storage.StoredObject:
    """The stored object must be exactly what the intent promised, else nothing is processed."""
    stored = storage.head(upload.object_key)
    if stored is None:
        if upload.expires_at < utcnow():
            raise UploadExpired("This upload intent expired before any file arrived; create a new one.")
        raise UploadAssetMissing(
            "No file has been stored for this upload yet. PUT it to the signed URL with every "
            "required header, then finalize again."
        )
    if upload.declared_bounds is not None:
        # Signed with bounds, not an exact size/type (the upload-session contract's tracks): within
        # them, the intent takes what was stored, and the checks below then hold it to that.
        outside = sessions.settle(upload, stored)
        if outside is not None:
            reject(upload, outside)
            raise UploadAssetInvalid(outside)
    problems = []
    if stored.size != upload.byte_size:
        problems.append(f"size is {stored.size} bytes, the intent declared {upload.byte_size}")
    stored_type = media_types.normalized_content_type(stored.content_type or "")
    if stored_type != upload.content_type:
        problems.append(f"content type is '{stored_type or 'missing'}', the intent declared '{upload.content_type}'")
    if problems:
        message = "The uploaded file does not match the upload intent: " + "; ".join(problems) + "."
        reject(upload, message)
        raise UploadAssetInvalid(message)
    return stored


def reject(upload: UploadModel, message: str, code: str = UploadAssetInvalid.code) -> None:
    def write(tx: writes.ConditionalTransaction) -> None:
        tx.update(
            upload,
            [
                UploadModel.status.set("rejected"),
                UploadModel.rejected_code.set(code),
                UploadModel.rejected_message.set(message),
            ],
            condition=UploadModel.status == "pending",
        )

    # Rejected and its reservation released, in one transaction (or neither).
    rejected = usage.releasing(upload, write).committed
    if not rejected:
        upload.refresh()
        if upload.status == "finalized":
            # Another caller finalized the object before it was replaced; keep what they processed.
            return
    storage.delete(upload.object_key)
    storage.delete(uploads.kept_key(upload))
    if upload.intent == uploads.TRACK_ORIGINAL:
        tracks.mark_rejected(upload.track_id, code, message)
    logger.info("upload rejected", extra={"upload_id": upload.upload_id, "code": code, "reason": message})


def claim(upload: UploadModel, trigger: Trigger, *, content: str | None = None) -> bool:
    """True for exactly one caller, however many race: the one that starts processing."""
    return writes.update_if(upload, writes.assignment_actions(claim_assignments(trigger, content=content)), CLAIMABLE)


def claim_settling(upload: UploadModel, trigger: Trigger, stored_bytes: int) -> str | None:
    """``claim`` for a new version's original, settling its reservation at the stored size
    (``usage.settle``) and taking one of its owner's run slots (``run_queue.take``) in the same
    transaction: ``"running"``. When every slot is taken (and nothing else refused the claim), it is
    made again with the upload queued: ``"queued"``. None when another caller decided the intent,
    or when the track is gone. Raises UploadExpired when the intent expired and its reservation
    was released."""
    for queued in (False, True):
        now = utcnow()
        track = TrackModel(upload.track_id, TrackModel.TRACK_SK)
        with writes.conditional_transaction() as tx:
            tx.assign(
                upload,
                [*claim_assignments(trigger), *(run_queue.waiting_assignments(now) if queued else [])],
                condition=CLAIMABLE,
            )
            reservation = usage.settle(tx, upload, stored_bytes, new_track=False, track_checked=queued)
            if queued:
                run_queue.enqueue(tx, upload, now)
                tx.update(track, run_queue.waiting_track_actions(upload, now), condition=TrackModel.pk.exists())
            else:
                slots = run_queue.take(tx, upload)
        if tx.committed:
            return "queued" if queued else "running"
        if reservation is not None and tx.refused(reservation) and not tx.refused(upload):
            storage.delete(uploads.kept_key(upload))
            raise UploadExpired("This upload intent expired; create a new one.")
        if queued or tx.refused(upload) or not tx.refused(slots):
            return None
    return None


# The condition of claiming an intent: nobody decided it yet.
CLAIMABLE = UploadModel.status == "pending"


def claim_assignments(trigger: Trigger, *, content: str | None = None) -> list[writes.Assignment]:
    """What claiming the intent writes on it, under ``CLAIMABLE``."""
    now = utcnow()
    return [
        *([(UploadModel.content_checksum, content)] if content else []),
        (UploadModel.status, "finalized"),
        (UploadModel.finalized_at, now),
        (UploadModel.finalized_by, trigger),
        # A finalized intent is a record of the asset: it must not expire.
        (UploadModel.expires_at_epoch, None),
        *([(UploadModel.acknowledged_at, now)] if trigger == "api" else []),
    ]


def acknowledge(upload: UploadModel) -> bool:
    """True for the first API finalize of an upload that was finalized by the S3 event."""
    return writes.update_if(
        upload,
        [UploadModel.acknowledged_at.set(utcnow())],
        UploadModel.acknowledged_at.does_not_exist() & (UploadModel.status == "finalized"),
    )


def rejection(upload: UploadModel) -> str:
    return upload.rejected_message or "The uploaded file did not match the upload intent."
