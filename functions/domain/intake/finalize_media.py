"""Finalizing an image or a document (track artwork, an album cover, a track document): by its put
event only. The file is verified and kept, a document is recorded, the claim picks one winner and
counts the stored file in its owner's usage, and an image is adopted (the newest finalized wins)
and rendered by the workflow's ``artwork`` or ``album_cover`` run.
"""

from __future__ import annotations

from functions.data import storage, writes
from functions.data.models import UploadModel
from functions.domain.catalog import tracks, usage
from functions.domain.intake import executions, media_uploads, uploads
from functions.domain.intake import finalize_steps as steps
from functions.errors import (
    AlbumNotFound,
    DocumentLimitReached,
    TrackDeleted,
    TrackNotFound,
    UploadAssetInvalid,
    UploadExpired,
    UploadIntentNotFound,
)
from functions.observability import logger


def finalize(upload: UploadModel, request: steps.Request) -> steps.Outcome:
    if request.trigger == "api":
        # Images and documents are finalized by their put event only (their intents carry no
        # finalizeUrl); the finalize answers describe an original's processing.
        raise UploadIntentNotFound("No such upload intent for this owner.")
    return _finalize(upload)


def _finalize(upload: UploadModel) -> steps.Outcome:
    """The put event of an image or a document. The claim (pending -> finalized) is the one
    winner, as for an original, and settles the intent's reservation at the stored size; a
    document is recorded before it (that write is conditional on its own id, so a repeat is
    harmless) so that a full track rejects the upload instead."""
    kept = steps.verify_and_keep(upload) if upload.status == "pending" else None
    if kept is not None:
        if upload.intent == media_uploads.TRACK_DOCUMENT:
            try:
                media_uploads.record_document(upload)
            except (DocumentLimitReached, TrackNotFound) as refused:
                steps.reject(upload, refused.message, refused.code)
                raise
        if _claim_settling(upload, kept.size):
            outcome = _apply_media(upload)
            storage.delete(upload.object_key)
            return outcome
    if upload.status == "pending":
        steps.refresh(upload)
    if upload.status == "rejected":
        raise UploadAssetInvalid(steps.rejection(upload))
    if upload.status != "finalized":
        raise UploadIntentNotFound("No such upload intent for this owner.")
    if upload.intent != media_uploads.TRACK_DOCUMENT and upload.execution_arn is None:
        # The winner stopped between its claim and the start: finish its work (each part is
        # idempotent, and the execution is named after the upload).
        return _apply_media(upload)
    return steps.Outcome("already_finalized", upload, (), None)


def _claim_settling(upload: UploadModel, stored_bytes: int) -> bool:
    """The claim, with the intent's reservation settled at the stored size on the file's own
    ledger item (``usage.settle_media``), in one transaction. False when another delivery decided
    the intent. Raises UploadExpired when the intent expired and its reservation was released
    meanwhile, and TrackNotFound or AlbumNotFound (the intent rejected, its reservation released)
    when the track or album it is for was deleted."""
    with writes.conditional_transaction() as tx:
        tx.assign(upload, steps.claim_assignments("s3_event"), condition=steps.CLAIMABLE)
        reservation = usage.settle_media(tx, upload, stored_bytes)
    if tx.committed:
        return True
    if tx.refused(upload):
        return False
    if reservation is not None and tx.refused(reservation):
        if upload.intent == media_uploads.TRACK_DOCUMENT:
            media_uploads.forget_document(upload)
        storage.delete(uploads.kept_key(upload))
        raise UploadExpired("This upload intent expired; create a new one.")
    gone: TrackNotFound | AlbumNotFound = (
        AlbumNotFound("The album was deleted.") if upload.album_id else TrackDeleted("The track was deleted.")
    )
    steps.reject(upload, gone.message, gone.code)
    raise gone


def _apply_media(upload: UploadModel) -> steps.Outcome:
    if upload.intent == media_uploads.TRACK_DOCUMENT:
        logger.info("document recorded", extra={"upload_id": upload.upload_id, "track_id": upload.track_id})
        return steps.Outcome("finalized", upload, (), None)
    adopt = (
        media_uploads.adopt_track_image
        if upload.intent == media_uploads.TRACK_ARTWORK
        else media_uploads.adopt_album_cover
    )
    try:
        adopted = adopt(upload)
    except (TrackNotFound, AlbumNotFound) as gone:  # the track or album was deleted meanwhile
        storage.delete(upload.object_key)
        storage.delete(uploads.kept_key(upload))
        logger.info("image for a deleted item dropped", extra={"upload_id": upload.upload_id, "code": gone.code})
        raise
    if not adopted:
        # A newer upload is the image already: this one will never be rendered, nor count.
        usage.release_media_item(upload.owner_id, upload.track_id, upload.upload_id)
        storage.delete(uploads.kept_key(upload))
        logger.info("older image upload superseded", extra={"upload_id": upload.upload_id})
        return steps.Outcome("finalized", upload, (), None)
    if upload.intent == media_uploads.TRACK_ARTWORK:
        tracks.queue_lanes(upload.track_id, ("artwork",))
    executions.ensure_execution(upload)
    logger.info("image upload finalized", extra={"upload_id": upload.upload_id, "intent": upload.intent})
    return steps.Outcome("finalized", upload, ("artwork",), "running")
