"""Storage quota per artist: what its tracks hold and what its pending intents reserve.

The bytes are counted on one item per artist (``UsageModel``) with ledger items beside it, all in
the artist's ``usage#<userId>`` partition of the Artists table:

* **reserve**: an audio intent (``POST /v1/uploads``, a session's track, a new version) writes a
  ``ReservationModel`` and ADDs its declared size (an upload-session track, which declares none: the
  audio cap) to ``reserved_bytes`` in the transaction that creates the intent, under the condition
  ``committed_bytes <= quota - requested`` (``committed_bytes`` = used + reserved: DynamoDB
  conditions cannot add). However many intents race, the sum never passes the quota.
* **settle**: the transaction that claims the intent at finalize deletes the reservation, takes its
  bytes off ``reserved_bytes`` and adds the stored file's real size to ``used_bytes`` and to the
  track's ledger (``TrackUsageModel``). Renditions add their ``byteSize`` when they are stored.
* **release**: a cancel, a rejection, a duplicate and the delete of a draft delete the reservation
  in the same transaction that decides the intent; a version intent replaced by a newer one, in the
  transaction that creates the newer one (``reserving(replacing=...)``: one update of the usage
  item adds the new reservation and takes the old one off). An expired intent (DynamoDB TTL deletes it some
  day, unannounced) is released by ``reconcile``: before a refusal and on ``GET /v1/me/usage``,
  every reservation past its intent's TTL is released. So a reservation a crash left behind never
  refuses an intent, and the usage an artist reads never counts it.
* deleting a track takes off exactly what its ledger holds (``release_track``).

The same item counts the artist's **pending intents** (``pending_intents``): the reservation's
update ADDs 1 under the condition ``pending_intents < max_pending_intents`` (beside the bytes'
condition, in the same transaction), and every settle and release of a reservation takes 1 off in
the transaction that deletes it. A refusal is told apart by reading the item afterwards (after
``reconcile``): too many pending intents (``too_many_pending_uploads``), or too few bytes.

Every step is a transaction that deletes or conditionally updates a ledger item: repeating one (a
retried finalize, a second put event, a retried lane) changes nothing.

What is counted: audio (originals, versions, renditions), and images and documents (track
artwork, album covers, track documents, and an uploaded image's rendered variants). An image or
document intent reserves like an audio one but is no pending intent (``counts_pending=False``); its
claim settles it on a ledger item of its own (``MediaUsageModel``, ``settle_media``), which the
document's delete, a newer image, the image's removal and the delete of its track or album release
(``releasing_media``, ``release_media_item``, ``release_target_media``). Not counted: a cover
embedded in the audio and its variants.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from functions.data import reads, writes
from functions.data.models import (
    AlbumModel,
    MediaUsageModel,
    ReservationModel,
    TrackModel,
    TrackUsageModel,
    UploadModel,
    UsageModel,
    utcnow,
)
from functions.errors import StorageQuotaExceeded, TooManyPendingUploads
from functions.observability import logger
from functions.settings import settings

# Optimistic ledger writes (a rendition stored twice with different sizes, a delete racing a
# lane) retry this often.
MAX_ATTEMPTS = 5
# The ledger attribute of each rendition format.
RENDITION_BYTES: dict[str, Any] = {
    "aac": TrackUsageModel.aac_bytes,
    "opus": TrackUsageModel.opus_bytes,
    "mp3": TrackUsageModel.mp3_bytes,
}
_LEDGER_BYTES = (
    TrackUsageModel.original_bytes,
    TrackUsageModel.pending_bytes,
    *RENDITION_BYTES.values(),
)


@dataclass(frozen=True)
class Allowance:
    """The quota an intent is held to, as read with the caller's profile and entitlement (the same
    BatchGetItem): the write's condition checks it is still the quota in force."""

    owner_id: str
    quota_bytes: int
    # True: an admin's override on the usage item; False: the configured default.
    override: bool
    used_bytes: int
    reserved_bytes: int
    pending_intents: int = 0


@dataclass(frozen=True)
class Usage:
    used_bytes: int
    reserved_bytes: int
    quota_bytes: int
    quota_source: str  # "default" | "override"
    track_count: int
    pending_intents: int
    max_pending_intents: int

    @property
    def available_bytes(self) -> int:
        return max(0, self.quota_bytes - self.used_bytes - self.reserved_bytes)


def usage_key(owner_id: str) -> tuple[str, str]:
    return UsageModel.key(owner_id)


def allowance(owner_id: str, item: UsageModel | None) -> Allowance:
    """``item``: the owner's usage item as read (None: never written)."""
    override = item is not None and item.quota_bytes is not None
    quota = int(item.quota_bytes) if item is not None and item.quota_bytes is not None else _default_quota()
    return Allowance(
        owner_id,
        quota,
        override,
        int(item.used_bytes or 0) if item is not None else 0,
        int(item.reserved_bytes or 0) if item is not None else 0,
        int(item.pending_intents or 0) if item is not None else 0,
    )


def _default_quota() -> int:
    return settings().storage_quota_bytes


# --- reserve -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Need:
    """What an intent changes on the usage item: ``bytes`` more reserved (its reservation, less
    what the intent it replaces gives back) and ``pending`` more pending intents (1, or 0 when the
    replaced intent's slot passes to it). ``asked``: the intent's own bytes, as a refusal names them."""

    bytes: int
    pending: int
    asked: int


def _need(upload: UploadModel, replacing: UploadModel | None) -> _Need:
    """``replacing``: the intent ``upload`` replaces, whose reservation is released with it."""
    asked = int(upload.reserved_bytes or 0)
    need = _Need(asked, int(bool(upload.counts_pending)), asked)
    if replacing is None or replacing.reserved_bytes is None:
        return need
    return _Need(asked - int(replacing.reserved_bytes), need.pending - int(bool(replacing.counts_pending)), asked)


def _fits(current: Allowance, need: _Need) -> bool:
    return (need.pending <= 0 or current.pending_intents < settings().max_pending_intents) and (
        current.used_bytes + current.reserved_bytes + need.bytes <= current.quota_bytes
    )


def _check(current: Allowance, need: _Need) -> Allowance:
    """Refuses now what the usage read already refuses (no write is spent on it), after releasing
    expired reservations; the allowance to reserve under. The reservation's condition is the guard."""
    if _fits(current, need):
        return current
    return _after_refusal(current.owner_id, need)


def reserve(
    tx: writes.ConditionalTransaction,
    current: Allowance,
    upload: UploadModel,
    *,
    replacing: UploadModel | None = None,
) -> tuple[UsageModel, ReservationModel | None]:
    """Adds the reservation of ``upload.reserved_bytes`` to ``tx`` (which saves the intent) and,
    given the pending intent it is ``replacing`` (which ``tx`` decides), the release of that one's
    reservation: one update of the usage item does both (a transaction writes an item once).
    Returns the usage item, whose refusal (``tx.refused``) means the quota, not the intent,
    refused, and the replaced reservation (None: none is released), whose refusal means it was
    released meanwhile (the replaced intent expired: ``reconcile``)."""
    tx.save(
        ReservationModel(
            *ReservationModel.key(current.owner_id, upload.upload_id),
            upload_id=upload.upload_id,
            intent=str(upload.intent),
            byte_size=int(upload.reserved_bytes or 0),
            expires_at=upload.expires_at_epoch,
            counts_pending=bool(upload.counts_pending),
        )
    )
    released = None
    if replacing is not None and replacing.reserved_bytes is not None:
        released = _reservation(replacing)
        tx.delete(released, condition=ReservationModel.pk.exists())
    need = _need(upload, replacing)
    item = UsageModel(*usage_key(current.owner_id))
    limit = current.quota_bytes - need.bytes
    condition = UsageModel.committed_bytes.does_not_exist() | (UsageModel.committed_bytes <= limit)
    # The quota in force must still be the one read: an admin may have changed it since.
    condition &= (
        UsageModel.quota_bytes == current.quota_bytes if current.override else UsageModel.quota_bytes.does_not_exist()
    )
    if need.pending > 0:
        # A count against a constant: however many intents race, at most ``max_pending_intents`` pass.
        condition &= UsageModel.pending_intents.does_not_exist() | (
            UsageModel.pending_intents < settings().max_pending_intents
        )
    actions = [UsageModel.reserved_bytes.add(need.bytes), UsageModel.committed_bytes.add(need.bytes)]
    if need.pending:
        actions.append(UsageModel.pending_intents.add(need.pending))
    tx.update(item, actions, condition=condition)
    return item, released


def reserving(
    current: Allowance,
    upload: UploadModel,
    write: Callable[[writes.ConditionalTransaction], None],
    *,
    replacing: UploadModel | None = None,
    counts_pending: bool = True,
    **options: Any,
) -> writes.ConditionalTransaction:
    """Runs the transaction ``write`` builds with the intent's reservation in it and, given the
    pending intent it is ``replacing`` (which ``write`` decides), the release of that one's
    reservation. Refused by the quota: expired reservations are released and it runs once more if
    the intent fits then, else ``storage_quota_exceeded`` (or, past the pending intents' limit,
    ``too_many_pending_uploads``). A replaced reservation released meanwhile is not released
    twice: it runs again without it. Any other refusal is left to the caller (``tx.committed``).
    ``counts_pending``: False for an image or a document, which is not a pending audio intent."""
    # Set before ``write`` saves the intent: its settle or release then takes its count off.
    upload.counts_pending = counts_pending
    held = replacing if replacing is not None and replacing.reserved_bytes is not None else None
    current = _check(current, _need(upload, held))
    rechecked = False
    # At most three: the replaced reservation found released, then the quota checked once more.
    for _ in range(3):
        with writes.conditional_transaction(**options) as tx:
            write(tx)
            item, released = reserve(tx, current, upload, replacing=held)
        if tx.committed:
            return tx
        if released is not None and tx.refused(released):
            held = None
            continue
        if not tx.refused(item):
            return tx
        if rechecked:
            break
        current = _after_refusal(current.owner_id, _need(upload, held))
        rechecked = True
    # Refused after the check: whichever limit the item refuses it for now.
    current = allowance(current.owner_id, _read(current.owner_id))
    if _need(upload, held).pending > 0 and current.pending_intents >= settings().max_pending_intents:
        raise _too_many(current)
    raise _exceeded(current.owner_id, _need(upload, held).asked, current)


def _after_refusal(owner_id: str, need: _Need) -> Allowance:
    """The usage item refused an intent needing ``need``: expired reservations are released, and
    the allowance read afterwards is returned if the intent fits now; else
    ``too_many_pending_uploads`` or ``storage_quota_exceeded``."""
    reconcile(owner_id)
    current = allowance(owner_id, _read(owner_id))
    if _fits(current, need):
        return current
    if need.pending > 0 and current.pending_intents >= settings().max_pending_intents:
        raise _too_many(current)
    raise _exceeded(owner_id, need.asked, current)


def _too_many(current: Allowance) -> TooManyPendingUploads:
    cap = settings().max_pending_intents
    return TooManyPendingUploads(
        f"You have {current.pending_intents} uploads waiting for their file (at most {cap}):"
        " finish or cancel one first.",
        pendingIntents=current.pending_intents,
        maxPendingIntents=cap,
    )


def _exceeded(owner_id: str, requested: int, current: Allowance | None = None) -> StorageQuotaExceeded:
    current = current or allowance(owner_id, _read(owner_id))
    free = max(0, current.quota_bytes - current.used_bytes - current.reserved_bytes)
    return StorageQuotaExceeded(
        f"This upload needs {requested} bytes; {free} of your {current.quota_bytes}-byte storage quota"
        " are free. Delete tracks to make room.",
        usedBytes=current.used_bytes,
        reservedBytes=current.reserved_bytes,
        quotaBytes=current.quota_bytes,
        requestedBytes=requested,
    )


# --- settle and release --------------------------------------------------------------------------


def _reservation(upload: UploadModel) -> ReservationModel:
    return ReservationModel(*ReservationModel.key(upload.owner_id, upload.upload_id))


def _usage_update(
    tx: writes.ConditionalTransaction,
    owner_id: str,
    *,
    used: int = 0,
    reserved: int = 0,
    tracks: int = 0,
    pending: int = 0,
) -> None:
    actions = [UsageModel.committed_bytes.add(used + reserved)]
    if pending:
        actions.append(UsageModel.pending_intents.add(pending))
    if used:
        actions.append(UsageModel.used_bytes.add(used))
    if reserved:
        actions.append(UsageModel.reserved_bytes.add(reserved))
    if tracks:
        actions.append(UsageModel.track_count.add(tracks))
    tx.update(UsageModel(*usage_key(owner_id)), actions)


def settle(
    tx: writes.ConditionalTransaction,
    upload: UploadModel,
    stored_bytes: int,
    *,
    new_track: bool,
    track_checked: bool = False,
) -> ReservationModel | None:
    """Adds to ``tx`` (the claim of ``upload``) the settlement of its reservation at the stored
    file's real size: on the track's ledger as its original (``new_track``) or as its version being
    processed. Returns the reservation, whose refusal means the intent expired and was released
    meanwhile (None: the intent reserved nothing, as one made before quotas existed).
    ``track_checked``: ``tx`` writes the track under the condition that it exists already (a
    transaction may not name one item twice)."""
    reserved = upload.reserved_bytes
    reservation = None
    if reserved is not None:
        reservation = _reservation(upload)
        tx.delete(reservation, condition=ReservationModel.pk.exists())
    _usage_update(
        tx,
        upload.owner_id,
        used=stored_bytes,
        reserved=-int(reserved or 0),
        tracks=1 if new_track else 0,
        pending=-1 if reserved is not None and upload.counts_pending else 0,
    )
    ledger_key = TrackUsageModel.key(upload.owner_id, upload.track_id)
    if new_track:
        tx.save(TrackUsageModel(*ledger_key, original_bytes=stored_bytes, counted_track=True))
    else:
        # A version's original, until it replaces the live one or fails (``version_outcome``). The
        # claim's own condition (the intent pending) makes it happen once; the track must still be
        # there, or the ledger would outlive it.
        tx.update(TrackUsageModel(*ledger_key), [TrackUsageModel.pending_bytes.add(stored_bytes)])
        if not track_checked:
            tx.condition_check(TrackModel, upload.track_id, TrackModel.TRACK_SK, condition=TrackModel.pk.exists())
    return reservation


def release(tx: writes.ConditionalTransaction, upload: UploadModel) -> ReservationModel | None:
    """Adds to ``tx`` (which decides ``upload`` without storing it) the release of its reservation;
    the reservation is returned (None: it reserved nothing)."""
    if upload.reserved_bytes is None:
        return None
    reservation = _reservation(upload)
    tx.delete(reservation, condition=ReservationModel.pk.exists())
    _usage_update(tx, upload.owner_id, reserved=-int(upload.reserved_bytes), pending=-1 if upload.counts_pending else 0)
    return reservation


def releasing(
    upload: UploadModel, write: Callable[[writes.ConditionalTransaction], None], **options: Any
) -> writes.ConditionalTransaction:
    """Runs the transaction ``write`` builds with the release of the intent's reservation in it.
    A reservation already released (the intent expired and ``reconcile`` released it) is not
    released twice: the transaction runs again without it. ``tx.committed`` tells the rest."""
    for hold in (True, False):
        with writes.conditional_transaction(**options) as tx:
            write(tx)
            reservation = release(tx, upload) if hold else None
        if tx.committed or reservation is None or not tx.refused(reservation):
            return tx
    return tx


def reconcile(owner_id: str) -> int:
    """Releases the reservations of the owner's intents past their TTL (nothing can finalize them
    any more: ``functions.domain.intake.uploads.is_expired``). Each release deletes its
    reservation under a condition, so concurrent reconciliations release it once. The bytes
    released."""
    now = utcnow()
    released = 0
    for raw in reads.partition(
        ReservationModel, usage_key(owner_id)[0], sort_key_prefix=ReservationModel.SK_PREFIX, consistent_read=True
    ):
        reservation = ReservationModel.from_raw_data(raw)
        if reservation.expires_at > now:
            continue
        with writes.conditional_transaction() as tx:
            tx.delete(reservation, condition=ReservationModel.pk.exists())
            _usage_update(
                tx, owner_id, reserved=-int(reservation.byte_size), pending=-1 if reservation.counts_pending else 0
            )
        if tx.committed:
            released += int(reservation.byte_size)
            logger.info(
                "expired reservation released",
                extra={"upload_id": reservation.upload_id, "bytes": int(reservation.byte_size)},
            )
    return released


# --- renditions, versions, deletes ---------------------------------------------------------------


def count_rendition(owner_id: str, track_id: str, fmt: str, byte_size: int) -> None:
    """Counts a stored rendition of the track's original. A lane run again (a retry) stores the
    same key again: only the difference in size is counted. A track with no ledger (deleted, or
    finalized before quotas existed) counts nothing."""
    attribute = RENDITION_BYTES[fmt]
    ledger = TrackUsageModel(*TrackUsageModel.key(owner_id, track_id))
    previous: int | None = None
    for _ in range(MAX_ATTEMPTS):
        unchanged = attribute.does_not_exist() if previous is None else attribute == previous
        with writes.conditional_transaction() as tx:
            tx.update(ledger, [attribute.set(byte_size)], condition=TrackUsageModel.pk.exists() & unchanged)
            _usage_update(tx, owner_id, used=byte_size - (previous or 0))
        if tx.committed:
            return
        current = _ledger(owner_id, track_id)
        if current is None:
            return
        found = getattr(current, attribute.attr_name)
        if found == byte_size:
            return
        previous = int(found) if found is not None else None
    logger.warning("rendition not counted: its ledger kept changing", extra={"track_id": track_id, "format": fmt})


def version_ops(
    tx: writes.ConditionalTransaction,
    owner_id: str,
    track_id: str,
    ledger: TrackUsageModel | None,
    *,
    promoted_renditions: dict[str, int] | None,
) -> None:
    """Adds to ``tx`` the end of a processed version on the track's ledger ``ledger`` (as read):
    promoted (``promoted_renditions``: the new renditions' sizes by format), its original and
    renditions replace the live version's; failed (None), its original is taken off. Conditional
    on the ledger being as read."""
    if ledger is None:
        return
    pending = int(ledger.pending_bytes or 0)
    item = TrackUsageModel(*TrackUsageModel.key(owner_id, track_id))
    if promoted_renditions is None:
        if not pending:
            return
        tx.update(item, [TrackUsageModel.pending_bytes.remove()], condition=_as_read(ledger))
        _usage_update(tx, owner_id, used=-pending)
        return
    old = _total(ledger) - pending
    actions: list[Any] = [TrackUsageModel.pending_bytes.remove(), TrackUsageModel.original_bytes.set(pending)]
    for fmt, attribute in RENDITION_BYTES.items():
        size = promoted_renditions.get(fmt)
        actions.append(attribute.set(size) if size is not None else attribute.remove())
    tx.update(item, actions, condition=_as_read(ledger))
    _usage_update(tx, owner_id, used=sum(promoted_renditions.values()) - old)


def release_track(owner_id: str, track_id: str, *, while_exists: bool) -> None:
    """Takes what the track's ledger holds off the usage and deletes the ledger. ``while_exists``:
    only while the track item is still there (before it is deleted: a stop between the two leaves
    the track counted as nothing rather than its bytes counted for ever); otherwise once it is gone."""
    for _ in range(MAX_ATTEMPTS):
        ledger = _ledger(owner_id, track_id)
        if ledger is None:
            return
        with writes.conditional_transaction() as tx:
            tx.delete(ledger, condition=_as_read(ledger))
            _usage_update(tx, owner_id, used=-_total(ledger), tracks=-1 if ledger.counted_track else 0)
            track = TrackModel.pk.exists() if while_exists else TrackModel.pk.does_not_exist()
            tx.condition_check(TrackModel, track_id, TrackModel.TRACK_SK, condition=track)
        if tx.committed:
            return
        if tx.refused((TrackModel, track_id, TrackModel.TRACK_SK)):
            return
    logger.warning("track usage not released: its ledger kept changing", extra={"track_id": track_id})


def ledger(owner_id: str, track_id: str) -> TrackUsageModel | None:
    return _ledger(owner_id, track_id)


def _ledger(owner_id: str, track_id: str) -> TrackUsageModel | None:
    return reads.get_or_none(TrackUsageModel, *TrackUsageModel.key(owner_id, track_id), consistent_read=True)


def _total(ledger: TrackUsageModel) -> int:
    return sum(int(getattr(ledger, attribute.attr_name) or 0) for attribute in _LEDGER_BYTES)


def _as_read(ledger: TrackUsageModel) -> Any:
    """The ledger still holds what was read (and exists)."""
    condition: Any = TrackUsageModel.pk.exists()
    for attribute in _LEDGER_BYTES:
        value = getattr(ledger, attribute.attr_name)
        condition &= attribute.does_not_exist() if value is None else attribute == value
    return condition


# --- images and documents ------------------------------------------------------------------------


def _target(upload: UploadModel) -> tuple[Any, str, str]:
    """The model, key and sort key of the item an image or document belongs to (its track, or the
    album of a cover)."""
    if upload.album_id:
        return AlbumModel, upload.album_id, AlbumModel.ALBUM_SK
    return TrackModel, upload.track_id, TrackModel.TRACK_SK


def settle_media(tx: writes.ConditionalTransaction, upload: UploadModel, stored_bytes: int) -> ReservationModel | None:
    """Adds to ``tx`` (the claim of an image or document intent) the settlement of its reservation
    at the stored file's size, on a ledger item of its own (``MediaUsageModel``), conditional on its
    track or album still existing (that one's delete releases its ledger items: one written after
    would outlive it). Returns the reservation, whose refusal means the intent expired and was
    released meanwhile (None: it reserved nothing, as one made before images counted)."""
    reserved = upload.reserved_bytes
    reservation = None
    if reserved is not None:
        reservation = _reservation(upload)
        tx.delete(reservation, condition=ReservationModel.pk.exists())
    _usage_update(
        tx,
        upload.owner_id,
        used=stored_bytes,
        reserved=-int(reserved or 0),
        pending=-1 if reserved is not None and upload.counts_pending else 0,
    )
    model, target_id, sort_key = _target(upload)
    tx.save(
        MediaUsageModel(
            *MediaUsageModel.key(upload.owner_id, target_id, upload.upload_id),
            intent=str(upload.intent),
            byte_size=stored_bytes,
        )
    )
    tx.condition_check(model, target_id, sort_key, condition=model.pk.exists())
    return reservation


def target_refused(tx: writes.ConditionalTransaction, upload: UploadModel) -> bool:
    """True when ``tx`` (with ``settle_media``) was refused because the track or album is gone."""
    model, target_id, sort_key = _target(upload)
    return tx.refused((model, target_id, sort_key))


def media_ledger(owner_id: str, target_id: str, upload_id: str) -> MediaUsageModel | None:
    return reads.get_or_none(
        MediaUsageModel, *MediaUsageModel.key(owner_id, target_id, upload_id), consistent_read=True
    )


def release_media(tx: writes.ConditionalTransaction, owner_id: str, ledger: MediaUsageModel) -> None:
    """Adds to ``tx`` the release of what one image or document counts (as read: ``ledger``): its
    ledger item is deleted under the condition that it is still there and holds what was read, so
    two releases never take it off twice."""
    tx.delete(ledger, condition=_media_as_read(ledger))
    _usage_update(tx, owner_id, used=-ledger.total_bytes)


def count_variants(
    tx: writes.ConditionalTransaction, owner_id: str, ledger: MediaUsageModel, variant_bytes: int
) -> None:
    """Adds to ``tx`` (which stores an uploaded image's rendered variants) their bytes on the
    image's ledger (as read), in place of what an earlier render of the same image counted."""
    tx.update(ledger, [MediaUsageModel.variant_bytes.set(variant_bytes)], condition=_media_as_read(ledger))
    _usage_update(tx, owner_id, used=variant_bytes - int(ledger.variant_bytes or 0))


def releasing_media(
    owner_id: str, target_id: str, upload_id: str, write: Callable[[writes.ConditionalTransaction], None]
) -> writes.ConditionalTransaction:
    """Runs the transaction ``write`` builds (which deletes or replaces the image or document of
    ``upload_id``) with the release of what that file counts. A ledger that is not there (a file
    stored before images counted) or changed meanwhile (released by another, or a variant counted)
    is read again and the transaction runs again; ``tx.committed`` tells the rest."""
    for _ in range(MAX_ATTEMPTS):
        ledger = media_ledger(owner_id, target_id, upload_id)
        with writes.conditional_transaction() as tx:
            write(tx)
            if ledger is not None:
                release_media(tx, owner_id, ledger)
        if tx.committed or ledger is None or not tx.refused(ledger):
            return tx
    return tx


def release_media_item(owner_id: str, target_id: str, upload_id: str) -> None:
    """Takes off what one image or document counts, once: for a file deleted on its own (an older
    image a newer one beat, an image removed)."""
    for _ in range(MAX_ATTEMPTS):
        ledger = media_ledger(owner_id, target_id, upload_id)
        if ledger is None:
            return
        with writes.conditional_transaction() as tx:
            release_media(tx, owner_id, ledger)
        if tx.committed:
            return
    logger.warning("media usage not released: its ledger kept changing", extra={"upload_id": upload_id})


def release_target_media(owner_id: str, model: Any, target_id: str, sort_key: str, *, while_exists: bool) -> None:
    """Takes off what every image and document of a track or album (``model``) counts, as
    ``release_track`` does for its audio: ``while_exists``, only while its item is still there
    (before it is deleted); otherwise once it is gone (what a claim counted in between)."""
    prefix = MediaUsageModel.target_prefix(target_id)
    target = model.pk.exists() if while_exists else model.pk.does_not_exist()
    for raw in reads.partition(MediaUsageModel, usage_key(owner_id)[0], sort_key_prefix=prefix, consistent_read=True):
        ledger: MediaUsageModel | None = MediaUsageModel.from_raw_data(raw)
        for _ in range(MAX_ATTEMPTS):
            if ledger is None:
                break
            with writes.conditional_transaction() as tx:
                release_media(tx, owner_id, ledger)
                tx.condition_check(model, target_id, sort_key, condition=target)
            if tx.committed:
                break
            if tx.refused((model, target_id, sort_key)):
                return
            # Released by another meanwhile, or its variants counted: as it is now.
            ledger = reads.get_or_none(MediaUsageModel, ledger.pk, ledger.sk, consistent_read=True)


def _media_as_read(ledger: MediaUsageModel) -> Any:
    variants = ledger.variant_bytes
    return (
        MediaUsageModel.pk.exists()
        & (MediaUsageModel.byte_size == ledger.byte_size)
        & (
            MediaUsageModel.variant_bytes.does_not_exist()
            if variants is None
            else MediaUsageModel.variant_bytes == variants
        )
    )


# --- reads and the admin's override ----------------------------------------------------------------


def current(owner_id: str) -> Allowance:
    """The quota an intent of the owner is held to, as stored now."""
    return allowance(owner_id, _read(owner_id))


def _read(owner_id: str) -> UsageModel | None:
    return reads.get_or_none(UsageModel, *usage_key(owner_id), consistent_read=True)


def of(owner_id: str) -> Usage:
    """The owner's usage, after releasing expired reservations (``GET /v1/me/usage``)."""
    reconcile(owner_id)
    item = _read(owner_id)
    current = allowance(owner_id, item)
    # Audio intents (an image's or a document's reservation is marked ``counts_pending=False``;
    # one made before the limit existed, unmarked, was an audio intent's).
    pending = sum(
        1
        for raw in reads.partition(
            ReservationModel, usage_key(owner_id)[0], sort_key_prefix=ReservationModel.SK_PREFIX, consistent_read=True
        )
        if ReservationModel.from_raw_data(raw).counts_pending is not False
    )
    return Usage(
        used_bytes=current.used_bytes,
        reserved_bytes=current.reserved_bytes,
        quota_bytes=current.quota_bytes,
        quota_source="override" if current.override else "default",
        track_count=int(item.track_count or 0) if item is not None else 0,
        pending_intents=pending,
        max_pending_intents=settings().max_pending_intents,
    )


def set_quota(owner_id: str, quota_bytes: int | None, *, by: str) -> Usage:
    """An admin's quota for the owner (None: the configured default again). Lowering it below what
    is stored refuses new intents; nothing stored is removed."""
    item = UsageModel(*usage_key(owner_id))
    if quota_bytes is None:
        item.update(actions=[UsageModel.quota_bytes.remove(), UsageModel.quota_updated_by.set(by)])
    else:
        if quota_bytes < 0:
            raise ValueError("a quota is a number of bytes, 0 or more")
        item.update(actions=[UsageModel.quota_bytes.set(quota_bytes), UsageModel.quota_updated_by.set(by)])
    return of(owner_id)
