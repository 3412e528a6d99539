"""Track versions: a new original for an existing track (the upload-intent contract's ``draft``
intent, ``POST /v1/tracks/{trackId}/versions/uploads``), processed beside the version listeners get.

The life of a version, all of it on the track item's ``pending_version`` map:

* ``awaiting_upload``: the intent exists (an ``UploadModel`` with intent ``track_version`` and a
  presigned PUT under ``uploads/``). A newer intent replaces it: in the same transaction the
  replaced intent is rejected as ``version_superseded`` (what its finalize answers from then on;
  its file is deleted) and its storage reservation and pending-intent slot are released.
* ``processing``: finalized (by its put event or the explicit finalize, as an original), the
  workflow runs the same lanes with ``"version": <uploadId>`` in its input. Lanes store their files
  under the version's own prefix (``keys.version_prefix``) and their results in
  ``pending_version.outputs``; nothing listeners read (renditions, waveform, duration, status,
  stream URLs) changes. One version processes at a time: another intent is ``version_in_progress``.
* promoted: when every lane has ended and the required ones succeeded, MarkReady swaps the outputs
  in with ONE conditional UpdateItem (readers see the old version or the new one, never a mix),
  then deletes the old version's files and original. A failed optional lane's output is absent
  afterwards rather than the old version's, which would describe other audio.
* ``failed``: a required lane failed; the track keeps playing the previous version and
  ``pending_version`` says why until the next intent replaces it. Its files are deleted.

The run does not touch the track's metadata or artwork: the tags lane records the new file's tags
(``embeddedTags``, swapped in with the rest) but fills no field, and the artwork lane is skipped
(``version_keeps_artwork``). Finalize's ``durationMs``/``waveform`` hints are ignored for a version:
they would overwrite the live version's values.

``versions`` keeps a bounded history (``MAX_HISTORY``, oldest first): every original that went
live or failed, with ``replacedAt`` once a newer one replaced it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from functions import ids
from functions.data import keys, reads, storage, writes
from functions.data.models import TrackModel, UploadModel, utcnow
from functions.domain import lifecycle
from functions.domain.catalog import embeddings, entitlements, listing, tracks, usage
from functions.domain.intake import duplicates, media_types
from functions.errors import (
    ConcurrentUpdate,
    EmptyFile,
    FileTooLarge,
    TrackDeleted,
    TrackHasNoAudio,
    TrackNotFound,
    TrackProcessing,
    UnsupportedMediaType,
    VersionDiscarded,
    VersionInProgress,
    VersionSuperseded,
)
from functions.observability import logger
from functions.settings import settings
from functions.workflow.definition import WORKFLOW

TRACK_VERSION = "track_version"
AWAITING_UPLOAD = "awaiting_upload"
PROCESSING = "processing"
FAILED = "failed"
MAX_HISTORY = 10
# A run that started this long ago has ended, whatever it left behind: Step Functions stops an
# execution at the workflow's timeout. Past it, a version still 'processing' no longer blocks the
# next one (the sweeper only looks at tracks that are themselves processing).
STALLED_AFTER = timedelta(seconds=WORKFLOW.timeout_seconds + 300)
# Optimistic writes (the promote reads the item, then swaps on a condition) retry this often.
MAX_ATTEMPTS = 5

# What a run produces, by the lane output's name: on the track for an original, in
# ``pending_version.outputs`` for a version (until the promote sets these attributes from it).
OUTPUTS: dict[str, Any] = {
    "audio": TrackModel.audio,
    "duration_ms": TrackModel.duration_ms,
    "renditions": TrackModel.renditions,
    "rendition_aac": TrackModel.rendition_aac,
    "rendition_opus": TrackModel.rendition_opus,
    "rendition_mp3": TrackModel.rendition_mp3,
    "waveform": TrackModel.waveform,
    "loudness": TrackModel.loudness,
    "embedded_tags": TrackModel.embedded_tags,
    "embedding": TrackModel.embedding,
}

_pending: Any = TrackModel.pending_version


@dataclass(frozen=True)
class FileSpec:
    file_name: str
    content_type: str
    byte_size: int


@dataclass(frozen=True)
class CreatedVersionUpload:
    upload_id: str
    track_id: str
    asset_id: str
    signed_url: str
    expires_at: datetime
    required_headers: dict[str, str]


@dataclass(frozen=True)
class Failure:
    code: str
    message: str


@dataclass(frozen=True)
class PendingVersion:
    upload_id: str
    status: str
    created_at: str
    file_name: str | None
    finalized_at: str | None
    failure: Failure | None


@dataclass(frozen=True)
class VersionRecord:
    upload_id: str
    status: str
    created_at: str | None
    duration_ms: int | None
    replaced_at: str | None
    failure: Failure | None


# --- the intent --------------------------------------------------------------------------------


def validate(spec: FileSpec) -> str:
    """The file's extension, once it is acceptable: the rules of ``POST /v1/uploads`` for audio."""
    extension = media_types.extension_of(spec.file_name)
    if extension not in media_types.AUDIO_TYPES:
        raise UnsupportedMediaType(
            f"'{spec.file_name}' is not a supported audio file ({media_types.accepted_summary()}).", field="fileName"
        )
    if not media_types.is_accepted(spec.file_name, spec.content_type):
        raise UnsupportedMediaType(
            f"Content type '{spec.content_type}' does not match a .{extension} file.", field="contentType"
        )
    if spec.byte_size == 0:
        raise EmptyFile("The file is empty (byteSize 0); choose an audio file.", field="byteSize")
    limit = settings().max_audio_bytes
    if spec.byte_size > limit:
        raise FileTooLarge(f"Audio files are limited to {limit} bytes.", limit=limit)
    return extension


def create(owner_id: str, track_id: str, spec: FileSpec) -> CreatedVersionUpload:
    # Only the API creates versions: the processing steps, which record and promote them, would
    # otherwise import the whole intent module (and the album and artist code behind it).
    from functions.domain.intake import uploads

    extension = validate(spec)
    track = tracks.get_owned(track_id, owner_id)
    allowance = entitlements.require_audio_upload(owner_id)
    if track.status in lifecycle.WITHOUT_AUDIO:
        raise TrackHasNoAudio("This track has no audio yet: PUT its original and finalize that upload first.")
    _release_if_stalled(track)

    current = settings()
    upload_id, asset_id = ids.new_id(), ids.new_id()
    now = utcnow()
    url_expires_at = now + timedelta(seconds=current.upload_url_ttl_s)
    content_type = media_types.normalized_content_type(spec.content_type)
    object_key = keys.original(upload_id, extension)
    upload = uploads.pending_intent(
        upload_id,
        owner_id=owner_id,
        track_id=track_id,
        asset_id=asset_id,
        intent=TRACK_VERSION,
        object_key=object_key,
        file_name=spec.file_name,
        content_type=content_type,
        byte_size=spec.byte_size,
        now=now,
        expires_at=url_expires_at,
        # Held of the owner's storage quota until finalized or released (functions.domain.catalog.usage).
        reserved_bytes=spec.byte_size,
    )
    entry = {
        "uploadId": upload_id,
        "status": AWAITING_UPLOAD,
        "createdAt": now.isoformat(),
        "fileName": spec.file_name,
        "contentType": content_type,
        "byteSize": spec.byte_size,
        "originalKey": object_key,
    }
    for _ in range(MAX_ATTEMPTS):
        replaced = _replaced_intent(track)
        tx = _write_intent(allowance, upload, track, entry, replaced)
        if tx.committed:
            break
        if writes.CONDITION_FAILED not in tx.reasons:
            tx.raise_refusal()
        # Another intent or a finalize moved the track's pending version since it was read (or the
        # replaced intent was decided meanwhile): decide again on what it holds now.
        found = tracks.find(track_id)
        if found is None or found.owner_id != owner_id:
            raise TrackNotFound("No such track.")
        track = found
        _release_if_stalled(track)
    else:
        raise ConcurrentUpdate("The track's versions kept changing while this one was being created; try again.")
    if replaced is not None:
        # Its file, if one was PUT before the put event could finalize it (a put event still to
        # come finds the intent rejected and deletes it too).
        storage.delete(replaced.object_key)
    signed = storage.presign_put(
        object_key, content_type=content_type, content_length=spec.byte_size, expires_in=current.upload_url_ttl_s
    )
    return CreatedVersionUpload(upload_id, track_id, asset_id, signed.url, url_expires_at, signed.headers)


_IN_PROGRESS = "A new version of this track is being processed; upload another once it is live or has failed."
_SUPERSEDED = "A newer version was uploaded for this track (or this one already ended); this file is dropped."


def _replaced_intent(track: TrackModel) -> UploadModel | None:
    """The intent a new one replaces on ``track`` (as read): its pending version's while that one
    still awaits its file and nobody decided it. A failed version's intent was finalized and
    settled; one whose file was rejected, released."""
    # Only the API creates versions (see ``create``).
    from functions.domain.intake import uploads

    pending = pending_of(track)
    if pending is None or pending.get("status") != AWAITING_UPLOAD:
        return None
    upload = uploads.find(str(pending["uploadId"]))
    if upload is None or upload.status != "pending":
        return None
    return upload


def _write_intent(
    allowance: usage.Allowance,
    upload: UploadModel,
    track: TrackModel,
    entry: dict[str, Any],
    replaced: UploadModel | None,
) -> writes.ConditionalTransaction:
    """One transaction: the intent saved with its reservation, the track's pending version set to
    it (only if that is still the one read: awaiting its file or failed, never processing), and the
    intent it replaces rejected as superseded with its reservation released, so the bytes and the
    pending slot of an intent nobody can finalize any more are never held. Conditional on all of it
    being as read, so racing or repeated creates release each replaced intent once."""
    pending = pending_of(track)
    if pending is None:
        as_read = _pending.does_not_exist()
    else:
        # A version being processed is never replaced (a stale read of one never matches).
        as_read = (
            (_pending["uploadId"] == pending["uploadId"])
            & (_pending["status"] == pending["status"])
            & (_pending["status"] != PROCESSING)
        )

    def write(tx: writes.ConditionalTransaction) -> None:
        tx.save(upload, condition=UploadModel.upload_id.does_not_exist())
        tx.update(
            TrackModel(track.track_id, TrackModel.TRACK_SK),
            actions=[_pending.set(entry), TrackModel.updated_at.set(utcnow())],
            condition=TrackModel.pk.exists() & (TrackModel.owner_id == upload.owner_id) & as_read,
        )
        if replaced is not None:
            # Rejected with the code its finalize answers (``begin``): its file is refused the same
            # whenever it arrives.
            tx.update(
                replaced,
                [
                    UploadModel.status.set("rejected"),
                    UploadModel.rejected_code.set(VersionSuperseded.code),
                    UploadModel.rejected_message.set(_SUPERSEDED),
                ],
                condition=UploadModel.status == "pending",
            )

    return usage.reserving(allowance, upload, write, replacing=replaced, conflicts=True)


def _release_if_stalled(track: TrackModel) -> None:
    """Refuses while a version is being processed, unless its run has certainly ended without a
    verdict (it outlived the workflow's timeout): that version is then failed, so that it does not
    block the track's versions for ever."""
    pending = pending_of(track)
    if pending is None or pending.get("status") != PROCESSING:
        return
    finalized_at = pending.get("finalizedAt")
    if finalized_at and datetime.fromisoformat(finalized_at) + STALLED_AFTER > utcnow():
        raise VersionInProgress(_IN_PROGRESS)
    fail(
        track.track_id,
        str(pending["uploadId"]),
        str(pending["originalKey"]),
        "processing_stopped",
        "Processing stopped before it could finish. Upload the file again.",
    )


# --- finalize ----------------------------------------------------------------------------------


def begin(upload: UploadModel, kept_key: str) -> None:
    """The track's side of finalizing a version: its intent must still be the track's pending one
    (else ``version_superseded``) and the track's own run must have ended (else
    ``track_processing``: the upload stays pending and may be finalized again later). Repeating it
    for the same upload changes nothing, so racing triggers both get past it and the upload's own
    claim picks the one that starts the run. ``kept_key``: where finalize copied the verified file;
    the version's original from now on. Raises TrackDeleted when the track is gone."""
    actions = [
        _pending["status"].set(PROCESSING),
        _pending["originalKey"].set(kept_key),
        _pending["finalizedAt"].set(utcnow().isoformat()),
        _pending["outputs"].set({}),
        TrackModel.updated_at.set(utcnow()),
    ]
    condition = (
        TrackModel.pk.exists()
        & (TrackModel.workflow_status != "running")
        & (TrackModel.workflow_status != "queued")
        & (_pending["uploadId"] == upload.upload_id)
        & (_pending["status"] == AWAITING_UPLOAD)
    )
    if writes.update_if(TrackModel(upload.track_id, TrackModel.TRACK_SK), actions, condition):
        return
    track = _read(upload.track_id)
    if track is None:
        raise TrackDeleted("The track was deleted.", trackId=upload.track_id)
    pending = pending_of(track) or {}
    if pending.get("uploadId") == upload.upload_id and pending.get("status") == PROCESSING:
        return  # begun by another delivery of the same upload
    if pending.get("uploadId") != upload.upload_id or pending.get("status") != AWAITING_UPLOAD:
        raise VersionSuperseded(_SUPERSEDED)
    raise TrackProcessing(
        "The track is still being processed; finalize this version again once its processing has ended."
    )


def run_status(upload: UploadModel) -> str | None:
    """The version's run as finalize reports it: running, succeeded (it is live) or failed."""
    track = _read(upload.track_id)
    if track is None:
        return None
    if track.upload_id == upload.upload_id:
        return "succeeded"
    pending = pending_of(track) or {}
    if pending.get("uploadId") != upload.upload_id:
        return None
    return {PROCESSING: "running", FAILED: "failed"}.get(str(pending.get("status")))


# --- the lanes and the verdict -------------------------------------------------------------------


def store_outputs(track_id: str, upload_id: str, outputs: dict[str, Any]) -> None:
    """A lane's results for a version being processed, each at its own path of the pending map
    (lanes run in parallel). The write holds only while this version is the one processing, so a
    straggler of a failed run cannot write into the next one; what it stored is deleted then.
    Raises TrackDeleted (the track is gone) or VersionDiscarded."""
    actions = [_pending["outputs"][name].set(OUTPUTS[name].serialize(value)) for name, value in outputs.items()]
    if writes.update_if(
        TrackModel(track_id, TrackModel.TRACK_SK), actions, TrackModel.pk.exists() & _is_processing(upload_id)
    ):
        return
    track = _read(track_id)
    if track is None:
        raise TrackDeleted("The track was deleted.", trackId=track_id)
    if track.upload_id != upload_id:
        storage.delete_prefix(keys.version_prefix(track_id, upload_id))
    raise VersionDiscarded("This version is no longer being processed; its results were dropped.")


def promote(track_id: str, upload_id: str, original_key: str) -> bool:
    """Makes the processed version the track's, in one conditional UpdateItem, then deletes what
    the previous version stored. False when the version is no longer the one processing (nothing
    changes; its files are deleted). A repeated call after the swap is True. Raises TrackDeleted."""
    for _ in range(MAX_ATTEMPTS):
        track = _read(track_id)
        if track is None:
            raise TrackDeleted("The track was deleted.", trackId=track_id)
        if track.upload_id == upload_id:
            return True
        pending = pending_of(track) or {}
        if pending.get("uploadId") != upload_id or pending.get("status") != PROCESSING:
            _delete_version_files(track_id, upload_id, original_key)
            logger.info("version not promoted: no longer pending", extra={"track_id": track_id, "upload_id": upload_id})
            return False
        produced = {name: OUTPUTS[name].deserialize(value) for name, value in (pending.get("outputs") or {}).items()}
        now = utcnow()
        actions: list[Any] = [
            OUTPUTS[name].set(produced[name]) if name in produced else OUTPUTS[name].remove() for name in OUTPUTS
        ]
        actions += [
            TrackModel.upload_id.set(upload_id),
            TrackModel.original_key.set(pending["originalKey"]),
            TrackModel.original_content_type.set(pending["contentType"]),
            # A track whose own original failed becomes playable with this one.
            TrackModel.status.set("ready"),
            TrackModel.workflow_status.set("succeeded"),
            TrackModel.failure_code.remove(),
            TrackModel.failure_message.remove(),
            TrackModel.versions.set(_history_after_promote(track, pending, produced, now)),
            # The replaced original's bytes are no longer this track's (duplicates compare owners'
            # uploads with what their tracks play).
            TrackModel.content_checksum.remove(),
            _pending.remove(),
            TrackModel.updated_at.set(now),
        ]
        # The history and the old files were read from this very item: it must not have moved on.
        condition = TrackModel.pk.exists() & _is_processing(upload_id) & (TrackModel.upload_id == track.upload_id)
        # The new original and renditions replace the old ones in the owner's usage, in the same
        # transaction (functions.domain.catalog.usage).
        ledger = usage.ledger(track.owner_id, track_id)
        with writes.conditional_transaction() as tx:
            tx.update(TrackModel(track_id, TrackModel.TRACK_SK), actions, condition=condition)
            usage.version_ops(tx, track.owner_id, track_id, ledger, promoted_renditions=_rendition_bytes(produced))
        if not tx.committed:
            continue
        listing.sync(track_id)
        if track.content_checksum:
            duplicates.release(track.owner_id, track.content_checksum, track_id)
        _delete_replaced_files(track, keep_original=pending["originalKey"])
        logger.info("version promoted", extra={"track_id": track_id, "upload_id": upload_id})
        return True
    raise VersionDiscarded("The track kept changing while its new version was being swapped in.")


def fail(track_id: str, upload_id: str, original_key: str, code: str, message: str) -> bool:
    """Records why the version failed (on ``pending_version`` and in the history) and deletes its
    files; the track keeps the version it has. False when it was no longer the one processing.
    Raises TrackDeleted."""
    track = _read(track_id)
    if track is None:
        raise TrackDeleted("The track was deleted.", trackId=track_id)
    pending = pending_of(track) or {}
    if pending.get("uploadId") == upload_id and pending.get("status") == PROCESSING:
        now = utcnow()
        failure = {"code": code, "message": message}
        duration = (pending.get("outputs") or {}).get("duration_ms")
        record = {
            "uploadId": upload_id,
            "status": FAILED,
            "createdAt": pending.get("createdAt"),
            "durationMs": OUTPUTS["duration_ms"].deserialize(duration) if duration else None,
            "replacedAt": None,
            "failure": failure,
        }
        # The failed version's original no longer counts in the owner's usage: in the same transaction.
        ledger = usage.ledger(track.owner_id, track_id)
        with writes.conditional_transaction() as tx:
            tx.update(
                TrackModel(track_id, TrackModel.TRACK_SK),
                [
                    _pending["status"].set(FAILED),
                    _pending["failure"].set(failure),
                    _pending["outputs"].remove(),
                    TrackModel.versions.set(_bounded([*_history_with_current(track), record])),
                    TrackModel.updated_at.set(now),
                ],
                condition=TrackModel.pk.exists() & _is_processing(upload_id),
            )
            usage.version_ops(tx, track.owner_id, track_id, ledger, promoted_renditions=None)
        if not tx.committed:
            if _read(track_id) is None:
                raise TrackDeleted("The track was deleted.", trackId=track_id)
            return False
        logger.info("version failed", extra={"track_id": track_id, "upload_id": upload_id, "code": code})
        _delete_version_files(track_id, upload_id, original_key)
        return True
    if track.upload_id != upload_id:
        # Failed before (a repeated verdict, or the stalled run released by a new intent): only
        # the live version's files must stay.
        _delete_version_files(track_id, upload_id, original_key)
    return False


def forget_deleted(original_key: str) -> None:
    """The version's track was deleted while it was processed: the track's delete swept the track's
    prefix, possibly before finalize's copy of the version's original landed in it."""
    storage.delete(original_key)


# --- reads -------------------------------------------------------------------------------------


def pending_of(track: TrackModel) -> dict[str, Any] | None:
    if track.pending_version is None:
        return None
    return dict(track.pending_version.as_dict())  # type: ignore[no-untyped-call]


def pending_view(track: TrackModel) -> PendingVersion | None:
    pending = pending_of(track)
    if pending is None:
        return None
    failure = pending.get("failure")
    return PendingVersion(
        upload_id=str(pending["uploadId"]),
        status=str(pending["status"]),
        created_at=str(pending.get("createdAt") or ""),
        file_name=pending.get("fileName"),
        finalized_at=pending.get("finalizedAt"),
        failure=Failure(str(failure["code"]), str(failure["message"])) if failure else None,
    )


def history(track: TrackModel) -> list[VersionRecord]:
    """The track's originals, oldest first. A track that never had a new version has no stored
    history: its one original is shown as live (or failed) all the same."""
    stored = _history_with_current(track) if track.status in {"ready", "failed"} else []
    return [
        VersionRecord(
            upload_id=str(entry["uploadId"]),
            status=str(entry["status"]),
            created_at=entry.get("createdAt"),
            duration_ms=int(entry["durationMs"]) if entry.get("durationMs") is not None else None,
            replaced_at=entry.get("replacedAt"),
            failure=Failure(entry["failure"]["code"], entry["failure"]["message"]) if entry.get("failure") else None,
        )
        for entry in stored
    ]


# --- helpers -----------------------------------------------------------------------------------


def _read(track_id: str) -> TrackModel | None:
    """A strongly consistent read: the promote must see every output the lanes wrote."""
    return reads.get_or_none(TrackModel, track_id, TrackModel.TRACK_SK, consistent_read=True)


def _is_processing(upload_id: str) -> Any:
    return (_pending["uploadId"] == upload_id) & (_pending["status"] == PROCESSING)


def _history_with_current(track: TrackModel) -> list[dict[str, Any]]:
    """The stored history, with the track's current original in it: the first original has no
    record until a version is uploaded (most tracks never have one)."""
    entries = [dict(entry) for entry in track.versions or []]
    if not any(entry["uploadId"] == track.upload_id for entry in entries):
        entries.insert(0, _record_of_current(track))
    return entries


def _record_of_current(track: TrackModel) -> dict[str, Any]:
    failure = {"code": track.failure_code, "message": track.failure_message or ""} if track.failure_code else None
    return {
        "uploadId": track.upload_id,
        "status": "live" if track.status == "ready" else FAILED,
        "createdAt": track.created_at.isoformat() if track.created_at else None,
        "durationMs": int(track.duration_ms) if track.duration_ms is not None else None,
        "replacedAt": None,
        "failure": failure,
    }


def _history_after_promote(
    track: TrackModel, pending: dict[str, Any], produced: dict[str, Any], now: datetime
) -> list[dict[str, Any]]:
    entries = _history_with_current(track)
    current = next(entry for entry in entries if entry["uploadId"] == track.upload_id)
    if current["status"] == "live":
        current.update(status="replaced", replacedAt=now.isoformat())
    duration = produced.get("duration_ms")
    entries.append(
        {
            "uploadId": pending["uploadId"],
            "status": "live",
            "createdAt": pending.get("createdAt"),
            "durationMs": int(duration) if duration is not None else None,
            "replacedAt": None,
            "failure": None,
        }
    )
    return _bounded(entries)


def _rendition_bytes(produced: dict[str, Any]) -> dict[str, int]:
    """The sizes of the renditions a version's run produced, by format."""
    found = {fmt: value for fmt, value in (produced.get("renditions") or {}).items()}
    for fmt, attribute in TrackModel.RENDITION_ATTRIBUTES.items():
        if produced.get(attribute):
            found[fmt] = produced[attribute]
    return {fmt: int(value["byteSize"]) for fmt, value in found.items() if value.get("byteSize") is not None}


def _bounded(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return entries[-MAX_HISTORY:]


def _delete_version_files(track_id: str, upload_id: str, original_key: str) -> None:
    storage.delete_prefix(keys.version_prefix(track_id, upload_id))
    storage.delete(original_key)
    embeddings.delete(track_id, upload_id)


def _delete_replaced_files(old: TrackModel, *, keep_original: str) -> None:
    """What the version that was live stored: its renditions and waveform (at the track's top level
    for the first original, under its version prefix after that) and its original."""
    for rendition in old.rendition_map().values():
        if rendition.get("key"):
            storage.delete(rendition["key"])
    if (old.waveform or {}).get("key"):
        storage.delete(old.waveform["key"])
    embeddings.delete(old.track_id, (old.embedding or {}).get("uploadId") or old.upload_id)
    storage.delete_prefix(keys.version_prefix(old.track_id, old.upload_id))
    if old.original_key and old.original_key != keep_original:
        storage.delete(old.original_key)
