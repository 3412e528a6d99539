"""Finalize an upload intent: one code path for the explicit API call and the S3 put event.

Both triggers may race or repeat (S3 and SQS deliver at least once, clients retry). A conditional
write on the Upload item (``status == "pending"``) picks exactly one winner, which starts processing;
the workflow execution is named after the upload id, so even a repeated start creates no second
execution.

What the API answers is a second, separate decision. Seed 004 clients never see the S3 trigger: for
them ``already_finalized`` means "you finalized this before". So the first API finalize of an intent
answers ``finalized`` even when the S3 event got there first, and every later one
``already_finalized`` — decided by a second conditional write (``acknowledged_at``), so exactly one
API call gets ``finalized`` however many race.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DeleteError, DoesNotExist, UpdateError

from functions.clients import sfn
from functions.data import storage
from functions.data.models import TrackModel, UploadModel, condition_failed, utcnow
from functions.domain import lifecycle
from functions.domain.catalog import albums, tracks
from functions.domain.intake import duplicates, media_types, media_uploads, sessions, uploads, versions
from functions.errors import (
    AlbumChanged,
    AlbumFull,
    AlbumNotFound,
    AssetMismatch,
    DocumentLimitReached,
    TrackDeleted,
    TrackNotFound,
    TrackProcessing,
    UploadAssetChanged,
    UploadAssetInvalid,
    UploadAssetMissing,
    UploadCancelled,
    UploadExpired,
    UploadIntentNotFound,
    VersionSuperseded,
    WorkflowStartFailed,
)
from functions.observability import logger
from functions.settings import settings
from functions.workflow.definition import LANES, TRACK_RUN

Trigger = Literal["api", "s3_event"]


@dataclass(frozen=True)
class Waveform:
    peaks: list[float]
    sample_rate_hz: int
    channels: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"peaks": self.peaks, "sampleRateHz": self.sample_rate_hz, "channels": self.channels, "source": "client"}


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
        _discard_stray(upload, trigger)
    if upload.intent in media_uploads.KINDS:
        if trigger == "api":
            # Images and documents are finalized by their put event only (their intents carry no
            # finalizeUrl); seed 004's finalize answers describe an original's processing.
            raise UploadIntentNotFound("No such upload intent for this owner.")
        return _finalize_media(upload)
    if upload.intent == versions.TRACK_VERSION:
        return _finalize_version(upload, trigger)

    if upload.status == "pending":
        kept = _verify_and_keep(upload)
        if kept is not None:
            content = duplicates.checksum(kept.etag)
            if content is not None:
                holder = duplicates.claim(
                    upload.owner_id, content, track_id=upload.track_id, upload_id=upload.upload_id
                )
                if holder != upload.track_id:
                    return _finalize_duplicate(upload, holder, content, trigger=trigger)
            if _claim(upload, trigger, content=content):
                return _start_processing(upload, content=content, duration_ms=duration_ms, waveform=waveform)
        _refresh(upload)
    return _after_the_fact(upload, trigger=trigger, duration_ms=duration_ms, waveform=waveform)


def _refresh(upload: UploadModel) -> None:
    """Reads the intent again after another caller decided it."""
    try:
        upload.refresh(consistent_read=True)
    except DoesNotExist as gone:  # its track was deleted (with the intent) meanwhile
        raise UploadIntentNotFound("No such upload intent for this owner.") from gone


def _discard_stray(upload: UploadModel, trigger: Trigger) -> None:
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


def _verify_and_keep(upload: UploadModel) -> storage.StoredObject | None:
    """Verifies the stored file and copies exactly that file (the copy is conditional on the ETag
    the HEAD saw) to where its track or album keeps it, before the claim: a finalized intent always
    has its kept file, and the signed upload URL can never reach it. None when the file is gone
    because another finalize of this upload won meanwhile (it kept the file and deleted it)."""
    for _ in range(KEEP_ATTEMPTS):
        stored = _verify_object(upload)
        try:
            storage.copy_if_unchanged(upload.object_key, uploads.kept_key(upload), etag=stored.etag)
        except storage.ObjectChanged:
            continue
        except storage.ObjectMissing:
            _refresh(upload)
            if upload.status != "pending":
                return None
            continue
        return stored
    raise UploadAssetChanged(
        "The file was replaced while it was being finalized; finalize again once the upload is done."
    )


def _verify_object(upload: UploadModel) -> storage.StoredObject:
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
        # Signed with bounds, not an exact size/type (seed 003 sessions): within them, the intent
        # takes what was stored, and the checks below then hold it to that.
        outside = sessions.settle(upload, stored)
        if outside is not None:
            _reject(upload, outside)
            raise UploadAssetInvalid(outside)
    problems = []
    if stored.size != upload.byte_size:
        problems.append(f"size is {stored.size} bytes, the intent declared {upload.byte_size}")
    stored_type = media_types.normalized_content_type(stored.content_type or "")
    if stored_type != upload.content_type:
        problems.append(f"content type is '{stored_type or 'missing'}', the intent declared '{upload.content_type}'")
    if problems:
        message = "The uploaded file does not match the upload intent: " + "; ".join(problems) + "."
        _reject(upload, message)
        raise UploadAssetInvalid(message)
    return stored


def _reject(upload: UploadModel, message: str, code: str = UploadAssetInvalid.code) -> None:
    try:
        upload.update(
            actions=[
                UploadModel.status.set("rejected"),
                UploadModel.rejected_code.set(code),
                UploadModel.rejected_message.set(message),
            ],
            condition=UploadModel.status == "pending",
        )
    except UpdateError as error:
        if not condition_failed(error):
            raise
        upload.refresh()
        if upload.status == "finalized":
            # Another caller finalized the object before it was replaced; keep what they processed.
            return
    storage.delete(upload.object_key)
    storage.delete(uploads.kept_key(upload))
    if upload.intent == uploads.TRACK_ORIGINAL:
        tracks.mark_rejected(upload.track_id, code, message)
    logger.info("upload rejected", extra={"upload_id": upload.upload_id, "code": code, "reason": message})


def _claim(upload: UploadModel, trigger: Trigger, *, content: str | None = None) -> bool:
    """True for exactly one caller, however many race: the one that starts processing."""
    now = utcnow()
    actions: list[Any] = [
        *([UploadModel.content_checksum.set(content)] if content else []),
        UploadModel.status.set("finalized"),
        UploadModel.finalized_at.set(now),
        UploadModel.finalized_by.set(trigger),
        # A finalized intent is a record of the asset: it must not expire.
        UploadModel.expires_at_epoch.remove(),
    ]
    if trigger == "api":
        actions.append(UploadModel.acknowledged_at.set(now))
    try:
        upload.update(actions=actions, condition=UploadModel.status == "pending")
    except UpdateError as error:
        if condition_failed(error):
            return False
        raise
    return True


def _start_processing(
    upload: UploadModel, *, content: str | None, duration_ms: int | None, waveform: Waveform | None
) -> Outcome:
    now = utcnow()
    actions: list[Any] = [
        *([TrackModel.content_checksum.set(content)] if content else []),
        # What finalize verified and copied: the only original the track will ever serve or process.
        TrackModel.original_key.set(uploads.kept_key(upload)),
        TrackModel.status.set("processing"),
        TrackModel.workflow_status.set("running"),
        TrackModel.expires_at_epoch.remove(),
        # Enters the sweeper's index until mark ready/failed takes it out.
        TrackModel.processing_shard.set(tracks.processing_shard(upload.track_id)),
        TrackModel.processing_since.set(now),
    ]
    if duration_ms is not None:
        actions.append(TrackModel.duration_ms.set(duration_ms))
    if waveform is not None:
        actions.append(TrackModel.waveform.set(waveform.to_json()))
    # Conditional on the track still existing: a DELETE that won the race must not be undone by
    # re-creating a bare track item (tracks.update raises TrackDeleted, a 404).
    try:
        tracks.update(upload.track_id, *actions)
    except TrackDeleted:
        # The delete swept the track's prefix before the copy may have landed there.
        storage.delete(uploads.kept_key(upload))
        storage.delete(upload.object_key)
        raise
    _join_album(upload.track_id)
    tracks.queue_lanes(upload.track_id, LANES)
    ensure_execution(upload)
    storage.delete(upload.object_key)
    logger.info("upload finalized", extra={"upload_id": upload.upload_id, "trigger": upload.finalized_by})
    return Outcome("finalized", upload, LANES, "running")


def _finalize_duplicate(upload: UploadModel, holder: str, content: str, *, trigger: Trigger) -> Outcome:
    """The owner already has a track with these bytes: the upload is recorded as its duplicate,
    nothing is processed, and neither the second copy nor the intent's draft track is kept (the
    draft never became a track: no list, album or event ever showed it)."""
    now = utcnow()
    try:
        upload.update(
            actions=[
                UploadModel.status.set("duplicate"),
                UploadModel.duplicate_of.set(holder),
                UploadModel.content_checksum.set(content),
                UploadModel.finalized_at.set(now),
                UploadModel.finalized_by.set(trigger),
                UploadModel.expires_at_epoch.remove(),
            ],
            condition=UploadModel.status == "pending",
        )
    except UpdateError as error:
        if not condition_failed(error):
            raise
        _refresh(upload)  # decided meanwhile (by the other trigger): answer what was decided
        return _after_the_fact(upload, trigger=trigger, duration_ms=None, waveform=None)
    storage.delete(upload.object_key)
    storage.delete(uploads.kept_key(upload))
    try:
        TrackModel(upload.track_id, TrackModel.TRACK_SK).delete(condition=TrackModel.status == "draft")
    except DeleteError as error:
        if not condition_failed(error):
            raise
    logger.info("duplicate upload", extra={"upload_id": upload.upload_id, "duplicate_of": holder})
    return _duplicate_outcome(upload)


def _duplicate_outcome(upload: UploadModel) -> Outcome:
    existing = tracks.find(upload.duplicate_of or "")
    return Outcome("duplicate", upload, (), existing.workflow_status if existing else None)


def _join_album(track_id: str) -> None:
    """A track joins the album its intent (or a PATCH of the draft) named once its audio is here:
    an abandoned intent never appears in an album. The album may have been deleted or filled
    since; the upload still proceeds, as a standalone track."""
    track = tracks.find(track_id)
    if track is None or not track.album_id:
        return
    try:
        if track.album_order is not None:
            # A track of an upload session (seed 003) takes its place among the session's tracks
            # by its order key, whichever of their uploads finished first.
            albums.place_track(track.album_id, track_id, track.album_order)
        else:
            albums.add_track(track.album_id, track_id)
    except (AlbumNotFound, AlbumFull, AlbumChanged) as error:
        tracks.update(track_id, TrackModel.album_id.remove(), TrackModel.album.remove())
        logger.warning("finalized track left out of its album", extra={"track_id": track_id, "code": error.code})


def _finalize_media(upload: UploadModel) -> Outcome:
    """The put event of an image or a document. The claim (pending -> finalized) is the one
    winner, as for an original; a document is recorded before it (that write is conditional on
    its own id, so a repeat is harmless) so that a full track rejects the upload instead."""
    if upload.status == "pending" and _verify_and_keep(upload) is not None:
        if upload.intent == media_uploads.TRACK_DOCUMENT:
            try:
                media_uploads.record_document(upload)
            except (DocumentLimitReached, TrackNotFound) as refused:
                _reject(upload, refused.message, refused.code)
                raise
        if _claim(upload, "s3_event"):
            outcome = _apply_media(upload)
            storage.delete(upload.object_key)
            return outcome
    if upload.status == "pending":
        _refresh(upload)
    if upload.status == "rejected":
        raise UploadAssetInvalid(_rejection(upload))
    if upload.status != "finalized":
        raise UploadIntentNotFound("No such upload intent for this owner.")
    if upload.intent != media_uploads.TRACK_DOCUMENT and upload.execution_arn is None:
        # The winner stopped between its claim and the start: finish its work (each part is
        # idempotent, and the execution is named after the upload).
        return _apply_media(upload)
    return Outcome("already_finalized", upload, (), None)


def _apply_media(upload: UploadModel) -> Outcome:
    if upload.intent == media_uploads.TRACK_DOCUMENT:
        logger.info("document recorded", extra={"upload_id": upload.upload_id, "track_id": upload.track_id})
        return Outcome("finalized", upload, (), None)
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
        # A newer upload is the image already: this one will never be rendered.
        storage.delete(uploads.kept_key(upload))
        logger.info("older image upload superseded", extra={"upload_id": upload.upload_id})
        return Outcome("finalized", upload, (), None)
    if upload.intent == media_uploads.TRACK_ARTWORK:
        tracks.queue_lanes(upload.track_id, ("artwork",))
    ensure_execution(upload)
    logger.info("image upload finalized", extra={"upload_id": upload.upload_id, "intent": upload.intent})
    return Outcome("finalized", upload, ("artwork",), "running")


def _finalize_version(upload: UploadModel, trigger: Trigger) -> Outcome:
    """A new original for an existing track (``functions.domain.intake.versions``): finalized like an
    original (either trigger, one winner, one execution named after the upload), but the track's
    side comes first: its pending version must still be this one, and the track's own run must have
    ended (``track_processing`` leaves the upload pending, to be finalized again). ``durationMs``
    and ``waveform`` hints are not stored: they would overwrite the version listeners get."""
    if upload.status == "pending" and _verify_and_keep(upload) is not None:
        try:
            versions.begin(upload, uploads.kept_key(upload))
        except (VersionSuperseded, TrackNotFound) as refused:
            _reject(upload, refused.message, refused.code)
            if isinstance(refused, TrackNotFound):
                raise UploadIntentNotFound("No such upload intent for this owner.") from refused
            raise
        except TrackProcessing:
            # The upload stays pending, to be finalized (and kept) again once the track's run ends.
            storage.delete(uploads.kept_key(upload))
            raise
        if _claim(upload, trigger):
            tracks.queue_lanes(upload.track_id, LANES)
            ensure_execution(upload)
            storage.delete(upload.object_key)
            logger.info("version finalized", extra={"upload_id": upload.upload_id, "trigger": trigger})
            return Outcome("finalized", upload, LANES, "running")
    if upload.status == "pending":
        _refresh(upload)
    if upload.status == "rejected":
        if upload.rejected_code == VersionSuperseded.code:
            raise VersionSuperseded(upload.rejected_message or "A newer version replaced this one.")
        if upload.rejected_code == TrackNotFound.code:
            raise UploadIntentNotFound("No such upload intent for this owner.")
        raise UploadAssetInvalid(_rejection(upload))
    if upload.status != "finalized":
        raise UploadIntentNotFound("No such upload intent for this owner.")
    if upload.execution_arn is None:
        # The winner stopped between its claim and the start: same name, same input, one run.
        ensure_execution(upload)
    workflow_status = versions.run_status(upload)
    if trigger == "api" and _acknowledge(upload):
        return Outcome("finalized", upload, LANES, workflow_status)
    return Outcome("already_finalized", upload, (), workflow_status)


def _acknowledge(upload: UploadModel) -> bool:
    """True for the first API finalize of an upload that was finalized by the S3 event."""
    try:
        upload.update(
            actions=[UploadModel.acknowledged_at.set(utcnow())],
            condition=UploadModel.acknowledged_at.does_not_exist() & (UploadModel.status == "finalized"),
        )
    except UpdateError as error:
        if condition_failed(error):
            return False
        raise
    return True


def _after_the_fact(
    upload: UploadModel, *, trigger: Trigger, duration_ms: int | None, waveform: Waveform | None
) -> Outcome:
    if upload.status == lifecycle.REJECTED:
        # Also repairs a rejection that stopped before its draft was marked (idempotent).
        tracks.mark_rejected(upload.track_id, upload.rejected_code or UploadAssetInvalid.code, _rejection(upload))
    ended = lifecycle.ended_without_audio(upload, upload.status)
    if ended is not None:
        raise ended
    if upload.status == "duplicate":
        return _duplicate_outcome(upload)
    if upload.status != "finalized":
        raise UploadIntentNotFound("No such upload intent for this owner.")
    # The winner may have stopped between its claim and the start: starting again is harmless
    # (same execution name, same input) and guarantees the upload is processed.
    if upload.execution_arn is None:
        ensure_execution(upload)
    if waveform is not None or duration_ms is not None:
        _store_advisory_hints(upload.track_id, duration_ms=duration_ms, waveform=waveform)
    track = tracks.find(upload.track_id)
    workflow_status = track.workflow_status if track else None
    if trigger == "api" and _acknowledge(upload):
        return Outcome("finalized", upload, LANES, workflow_status)
    return Outcome("already_finalized", upload, (), workflow_status)


def _rejection(upload: UploadModel) -> str:
    return upload.rejected_message or "The uploaded file did not match the upload intent."


def _store_advisory_hints(track_id: str, *, duration_ms: int | None, waveform: Waveform | None) -> None:
    """A client's hints arriving after the S3 event won the race are kept, unless processing has
    already measured the real values."""
    hints: list[tuple[Any, Any]] = []
    if waveform is not None:
        hints.append((TrackModel.waveform, waveform.to_json()))
    if duration_ms is not None:
        hints.append((TrackModel.duration_ms, duration_ms))
    for attribute, value in hints:
        try:
            TrackModel(track_id, TrackModel.TRACK_SK).update(
                actions=[attribute.set(value)], condition=attribute.does_not_exist()
            )
        except UpdateError as error:
            if not condition_failed(error):
                raise


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


def ensure_execution(upload: UploadModel) -> None:
    """Starts the upload's workflow; starting it again is a no-op (same name, same input)."""
    try:
        response = sfn().start_execution(
            stateMachineArn=settings().state_machine_arn,
            name=upload.upload_id,
            # Deterministic input: a repeated start with the same name is then a no-op.
            input=json.dumps(workflow_input(upload), sort_keys=True),
        )
        started = response["executionArn"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise WorkflowStartFailed("The upload is stored but processing could not start; finalize again.") from error
        started = execution_arn(upload.upload_id)
    except BotoCoreError as error:
        raise WorkflowStartFailed("The upload is stored but processing could not start; finalize again.") from error
    upload.update(actions=[UploadModel.execution_arn.set(started)])


def execution_arn(name: str) -> str:
    state_machine = settings().state_machine_arn
    return state_machine.replace(":stateMachine:", ":execution:", 1) + f":{name}"
