"""Finalizing an original: the audio of a new track (the upload intent contract's
``track_original``, and each track of an upload session).

The file is verified and kept, then its checksum is claimed for the owner: the same bytes again are
a ``duplicate`` of the track that has them, and nothing is processed. Otherwise the intent is
claimed (one winner), the draft becomes ``processing``, joins the album its intent named and the
workflow starts. A later finalize answers what was decided (``after_the_fact``).
"""

from __future__ import annotations

from typing import Any

from functions.data import storage, writes
from functions.data.models import TrackModel, UploadModel, utcnow
from functions.domain import lifecycle
from functions.domain.catalog import album_membership, tracks, usage, waveforms
from functions.domain.intake import duplicates, executions, run_queue, uploads
from functions.domain.intake import finalize_steps as steps
from functions.errors import (
    AlbumChanged,
    AlbumFull,
    AlbumNotFound,
    TrackDeleted,
    UploadAssetInvalid,
    UploadExpired,
    UploadIntentNotFound,
)
from functions.observability import logger
from functions.workflow.definition import LANES


def finalize(upload: UploadModel, request: steps.Request) -> steps.Outcome:
    trigger, duration_ms, waveform = request.trigger, request.duration_ms, request.waveform
    if upload.status == "pending":
        kept = steps.verify_and_keep(upload)
        if kept is not None:
            content = duplicates.checksum(kept.etag)
            # The peaks go to S3 beside the kept file; the track keeps where they are.
            hint = waveforms.client_hint(upload.track_id, upload.upload_id, waveform.to_json()) if waveform else None
            for _ in range(duplicates.MAX_ATTEMPTS):
                claimed = _claim_for_processing(
                    upload, trigger, content=content, duration_ms=duration_ms, waveform=hint, stored_bytes=kept.size
                )
                if claimed is not _CONTENT_HELD:
                    break
                assert content is not None
                holder = duplicates.claim(
                    upload.owner_id, content, track_id=upload.track_id, upload_id=upload.upload_id
                )
                if holder != upload.track_id:
                    return _finalize_duplicate(upload, holder, content, trigger=trigger)
                # The claim was stale (its track deleted or failed) and is this track's now: claim again.
            else:
                # Every attempt met a content claim that changed hands under it: process this upload
                # (without claiming its content) rather than lose it.
                claimed = _claim_for_processing(
                    upload, trigger, content=None, duration_ms=duration_ms, waveform=hint, stored_bytes=kept.size
                )
            if claimed is _CLAIMED:
                return _start_processing(upload)
            if claimed is _QUEUED:
                return _queue_processing(upload)
        steps.refresh(upload)
    return _after_the_fact(upload, trigger=trigger, duration_ms=duration_ms, waveform=waveform)


# What _claim_for_processing found.
_CLAIMED = "claimed"  # this caller won: the track is processing, its lanes queued
_QUEUED = "queued"  # this caller won, but every run slot of the owner is taken: the upload waits
_DECIDED = "decided"  # another caller decided the intent (or it was deleted with its track)
_CONTENT_HELD = "content_held"  # the owner's content claim names another track: maybe a duplicate


def _claim_for_processing(
    upload: UploadModel,
    trigger: steps.Trigger,
    *,
    content: str | None,
    duration_ms: int | None,
    waveform: dict[str, Any] | None,
    stored_bytes: int,
) -> str:
    """One transaction: the intent claimed (one winner however many race), the owner's claim on its
    content, the draft made ``processing``, every lane queued, the intent's reservation settled
    at the stored size (``usage.settle``) and one of the owner's run slots taken
    (``run_queue.take``). All of it or none: no claimed intent is left with a draft track or its
    bytes counted twice, and a refused claim writes nothing. When every run slot is taken (and
    nothing else refused the claim), it is made again with the upload queued instead
    (``_QUEUED``). Raises TrackDeleted when the track is gone (a DELETE won the race),
    UploadExpired when the intent expired and its reservation was released meanwhile."""
    claimed = _claim(
        upload,
        trigger,
        content=content,
        duration_ms=duration_ms,
        waveform=waveform,
        stored_bytes=stored_bytes,
        queued=False,
    )
    if claimed is _SLOTS_TAKEN:
        claimed = _claim(
            upload,
            trigger,
            content=content,
            duration_ms=duration_ms,
            waveform=waveform,
            stored_bytes=stored_bytes,
            queued=True,
        )
    return claimed


# Refused only because every run slot of the owner is taken.
_SLOTS_TAKEN = "slots_taken"


def _claim(
    upload: UploadModel,
    trigger: steps.Trigger,
    *,
    content: str | None,
    duration_ms: int | None,
    waveform: dict[str, Any] | None,
    stored_bytes: int,
    queued: bool,
) -> str:
    now = utcnow()
    track = TrackModel(upload.track_id, TrackModel.TRACK_SK)
    track_actions: list[Any] = [
        *([TrackModel.content_checksum.set(content)] if content else []),
        # What finalize verified and copied: the only original the track will ever serve or process.
        TrackModel.original_key.set(uploads.kept_key(upload)),
        TrackModel.status.set("processing"),
        TrackModel.workflow_status.set("queued" if queued else "running"),
        *(run_queue.waiting_track_actions(upload, now) if queued else []),
        TrackModel.expires_at_epoch.remove(),
        # Enters the sweeper's index until mark ready/failed takes it out.
        *(
            []
            if queued
            else [
                TrackModel.processing_shard.set(tracks.processing_shard(upload.track_id)),
                TrackModel.processing_since.set(now),
            ]
        ),
        TrackModel.updated_at.set(now),
        *([TrackModel.duration_ms.set(duration_ms)] if duration_ms is not None else []),
        *([TrackModel.waveform.set(waveform)] if waveform is not None else []),
    ]
    claim = (
        duplicates.claim_item(upload.owner_id, content, track_id=upload.track_id, upload_id=upload.upload_id)
        if content
        else None
    )
    with writes.conditional_transaction() as tx:
        # The execution is named after the upload: its ARN is known before it starts. Should the
        # start never happen (this process stops first), a later finalize or the sweeper starts it.
        tx.assign(
            upload,
            [
                *steps.claim_assignments(trigger, content=content),
                *(
                    run_queue.waiting_assignments(now)
                    if queued
                    else [(UploadModel.execution_arn, executions.execution_arn(upload.upload_id))]
                ),
            ],
            condition=steps.CLAIMABLE,
        )
        if claim is not None:
            tx.save(claim, condition=duplicates.claimable_by(upload.track_id))
        # Conditional on the track still existing: a DELETE that won the race must not be undone by
        # re-creating a bare track item.
        tx.update(track, track_actions, condition=TrackModel.pk.exists())
        for lane in tracks.queued_lanes(upload.track_id, LANES):
            tx.save(lane)
        reservation = usage.settle(tx, upload, stored_bytes, new_track=True)
        if queued:
            run_queue.enqueue(tx, upload, now)
        else:
            slots = run_queue.take(tx, upload)
    if tx.committed:
        return _QUEUED if queued else _CLAIMED
    if tx.refused(upload):
        return _DECIDED
    if claim is not None and tx.refused(claim):
        return _CONTENT_HELD
    if reservation is not None and tx.refused(reservation):
        storage.delete(uploads.kept_key(upload))
        raise UploadExpired("This upload intent expired; create a new one.")
    if not queued and tx.refused(slots) and not tx.refused(track):
        return _SLOTS_TAKEN
    # The delete swept the track's prefix before the copy (and the client's peaks) may have landed there.
    storage.delete(uploads.kept_key(upload))
    if waveform is not None:
        storage.delete(waveform["key"])
    storage.delete(upload.object_key)
    raise TrackDeleted("The track was deleted.", trackId=upload.track_id)


def _start_processing(upload: UploadModel) -> steps.Outcome:
    _join_album(upload.track_id)
    executions.ensure_execution(upload)
    storage.delete(upload.object_key)
    logger.info("upload finalized", extra={"upload_id": upload.upload_id, "trigger": upload.finalized_by})
    return steps.Outcome("finalized", upload, LANES, "running")


def _queue_processing(upload: UploadModel) -> steps.Outcome:
    """Claimed while every run slot of the owner is taken: the track joins its album now, and its
    workflow starts when a slot frees (``run_queue``)."""
    _join_album(upload.track_id)
    storage.delete(upload.object_key)
    logger.info("upload finalized, waiting for a run slot", extra={"upload_id": upload.upload_id})
    return steps.Outcome("finalized", upload, LANES, "queued")


def _finalize_duplicate(upload: UploadModel, holder: str, content: str, *, trigger: steps.Trigger) -> steps.Outcome:
    """The owner already has a track with these bytes: the upload is recorded as its duplicate,
    nothing is processed, and neither the second copy nor the intent's draft track is kept (the
    draft never became a track: no list, album or event ever showed it)."""
    now = utcnow()

    def write(tx: writes.ConditionalTransaction) -> None:
        tx.assign(
            upload,
            [
                (UploadModel.status, "duplicate"),
                (UploadModel.duplicate_of, holder),
                (UploadModel.content_checksum, content),
                (UploadModel.finalized_at, now),
                (UploadModel.finalized_by, trigger),
                (UploadModel.expires_at_epoch, None),
            ],
            condition=UploadModel.status == "pending",
        )

    # Recorded as a duplicate and its reservation released (nothing new is stored), or neither.
    recorded = usage.releasing(upload, write).committed
    if not recorded:
        steps.refresh(upload)  # decided meanwhile (by the other trigger): answer what was decided
        return _after_the_fact(upload, trigger=trigger, duration_ms=None, waveform=None)
    storage.delete(upload.object_key)
    storage.delete(uploads.kept_key(upload))
    writes.delete_if(TrackModel(upload.track_id, TrackModel.TRACK_SK), TrackModel.status == "draft")
    logger.info("duplicate upload", extra={"upload_id": upload.upload_id, "duplicate_of": holder})
    return _duplicate_outcome(upload)


def _duplicate_outcome(upload: UploadModel) -> steps.Outcome:
    existing = tracks.find(upload.duplicate_of or "")
    return steps.Outcome("duplicate", upload, (), existing.workflow_status if existing else None)


def _join_album(track_id: str) -> None:
    """A track joins the album its intent (or a PATCH of the draft) named once its audio is here:
    an abandoned intent never appears in an album. The album may have been deleted or filled
    since; the upload still proceeds, as a standalone track."""
    track = tracks.find(track_id)
    if track is None or not track.album_id:
        return
    try:
        if track.album_order is not None:
            # A track of an upload session (the upload-session contract) takes its place among the
            # session's tracks by its order key, whichever of their uploads finished first.
            album_membership.place_track(track.album_id, track_id, track.album_order)
        else:
            album_membership.add_track(track.album_id, track_id)
    except (AlbumNotFound, AlbumFull, AlbumChanged) as error:
        tracks.update(track_id, TrackModel.album_id.remove(), TrackModel.album.remove())
        logger.warning("finalized track left out of its album", extra={"track_id": track_id, "code": error.code})


def _after_the_fact(
    upload: UploadModel, *, trigger: steps.Trigger, duration_ms: int | None, waveform: steps.Waveform | None
) -> steps.Outcome:
    if upload.status == lifecycle.REJECTED:
        # Also repairs a rejection that stopped before its draft was marked (idempotent).
        tracks.mark_rejected(upload.track_id, upload.rejected_code or UploadAssetInvalid.code, steps.rejection(upload))
    ended = lifecycle.ended_without_audio(upload, upload.status)
    if ended is not None:
        raise ended
    if upload.status == "duplicate":
        return _duplicate_outcome(upload)
    if upload.status != "finalized":
        raise UploadIntentNotFound("No such upload intent for this owner.")
    if waveform is not None or duration_ms is not None:
        _store_advisory_hints(upload, duration_ms=duration_ms, waveform=waveform)
    track = tracks.find(upload.track_id)
    workflow_status = track.workflow_status if track else None
    # The winner's start failed (it took the execution's ARN back): start it now. Starting every
    # time would be harmless too (same name, same input), but would double the StartExecution
    # calls of every upload finalized by both its triggers.
    if upload.execution_arn is None and not run_queue.is_waiting(upload):
        executions.ensure_execution(upload)
    if trigger == "api" and steps.acknowledge(upload):
        return steps.Outcome("finalized", upload, LANES, workflow_status)
    return steps.Outcome("already_finalized", upload, (), workflow_status)


def _store_advisory_hints(upload: UploadModel, *, duration_ms: int | None, waveform: steps.Waveform | None) -> None:
    """A client's hints arriving after the S3 event won the race are kept, unless processing has
    already measured the real values."""
    track_id = upload.track_id
    hints: list[tuple[Any, Any]] = []
    if waveform is not None:
        hints.append((TrackModel.waveform, waveforms.client_hint(track_id, upload.upload_id, waveform.to_json())))
    if duration_ms is not None:
        hints.append((TrackModel.duration_ms, duration_ms))
    for attribute, value in hints:
        writes.update_if(TrackModel(track_id, TrackModel.TRACK_SK), [attribute.set(value)], attribute.does_not_exist())
