"""Upload intents (the upload-intent contract's ``POST /v1/uploads``): validate, allocate track +
asset, presign.

An intent is ``pending`` until its file is finalized (``functions.domain.intake.finalize``), then
``finalized`` (or ``duplicate``), ``rejected`` when the file broke its promise, ``cancelled`` by its
owner. ``expired`` is derived, never written: a pending intent past its TTL (``is_expired``) can no
longer be completed and its draft is not listed, while DynamoDB TTL takes up to days to delete it.

A large file (when the client asks, or above ``multipart_threshold_bytes`` if set) is uploaded in parts:
the intent opens an S3 multipart upload and answers a plan (part size, part count, one URL per part,
each signed for its exact size). The client may lose its connection at any time: ``parts`` lists
what S3 holds, ``part_urls`` signs fresh URLs, ``complete_multipart`` assembles the object, and the
object is then finalized exactly like a single PUT (its put event and the API converge).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from math import ceil
from pathlib import PurePosixPath
from typing import Any

from functions import ids
from functions.data import keys, reads, storage, writes
from functions.data.models import TrackModel, UploadModel, utcnow
from functions.domain import lifecycle
from functions.domain.catalog import album_membership, albums, artists, entitlements, usage
from functions.domain.catalog import tags as tag_names
from functions.domain.intake import media_types
from functions.errors import (
    ConcurrentUpdate,
    FileTooLarge,
    InvalidPartSize,
    InvalidUpload,
    RedirectedIntent,
    UnsupportedMediaType,
    UploadAlreadyFinalized,
    UploadCancelled,
    UploadExpired,
    UploadIntentNotFound,
    UploadNotMultipart,
    UploadPartMismatch,
    UploadPartsIncomplete,
)
from functions.observability import logger
from functions.settings import settings

# Intents this route refuses, with the code and the route to use instead, as the upload-intent
# contract has them.
REDIRECTED_INTENTS = {
    "draft": ("use_track_versions_upload_route", "POST /v1/tracks/:trackId/versions/uploads"),
    "track_artwork": ("use_track_artwork_upload_route", "POST /v1/tracks/:trackId/artwork/uploads"),
    "track_document": ("use_track_documents_upload_route", "POST /v1/tracks/:trackId/documents/uploads"),
}
TRACK_ORIGINAL = "track_original"
# One answer signs at most this many part URLs (a 500 MB file in 16 MiB parts has 30); the client
# asks ``part_urls`` for the rest.
MAX_PART_URLS = 100


@dataclass(frozen=True)
class TrackMetadata:
    """The upload_track contract's form fields, accepted on the intent."""

    title: str | None = None
    album: str | None = None
    features: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    support_gate: dict[str, Any] | None = None
    description: str | None = None
    auto_tag: bool = False
    visibility: str = "public"


@dataclass(frozen=True)
class NewUpload:
    intent: str
    file_name: str
    content_type: str
    byte_size: int
    metadata: TrackMetadata = field(default_factory=TrackMetadata)
    # True: a multipart plan; False: one signed PUT; None: multipart above the threshold, if one is set.
    multipart: bool | None = None
    # The client's part size for a multipart plan (``part_size_bounds``); None: the configured one.
    part_size: int | None = None
    # The client does not say how big the file is (the upload-session contract's tracks): the PUT is
    # signed without a Content-Length (S3 cannot bound it then) and finalize holds the stored object
    # to the audio cap and the content type instead (``UploadModel.declared_bounds``). ``byte_size``
    # is ignored.
    size_unknown: bool = False


@dataclass(frozen=True)
class PartUrl:
    part_number: int
    size: int
    url: str


@dataclass(frozen=True)
class PartUrls:
    urls: list[PartUrl]
    expires_at: datetime


@dataclass(frozen=True)
class MultipartPlan:
    part_size: int
    part_count: int
    urls: PartUrls
    s3: S3Requests


@dataclass(frozen=True)
class S3Requests:
    """For clients that speak S3 themselves: the object key, S3's own multipart UploadId, and
    presigned ListParts / CompleteMultipartUpload / AbortMultipartUpload requests on that upload."""

    key: str
    multipart_id: str
    requests: storage.MultipartRequests
    expires_at: datetime


@dataclass(frozen=True)
class PartSizeBounds:
    """What a client may choose as ``part_size`` (S3's limits), and what it gets by default."""

    default: int
    minimum: int
    maximum: int
    max_parts: int


@dataclass(frozen=True)
class UploadLimits:
    """What ``GET /v1/uploads/config`` publishes: the limits an intent is held to."""

    max_audio_bytes: int
    # extension -> accepted content types, in a stable order
    accepted_types: dict[str, tuple[str, ...]]
    multipart_threshold_bytes: int | None
    part_sizes: PartSizeBounds


def upload_limits() -> UploadLimits:
    current = settings()
    return UploadLimits(
        max_audio_bytes=current.max_audio_bytes,
        accepted_types={ext: tuple(sorted(types)) for ext, types in sorted(media_types.AUDIO_TYPES.items())},
        multipart_threshold_bytes=current.multipart_threshold_bytes,
        part_sizes=part_size_bounds(),
    )


def part_size_bounds() -> PartSizeBounds:
    return PartSizeBounds(
        default=settings().multipart_part_size_bytes,
        minimum=storage.MIN_PART_BYTES,
        maximum=storage.MAX_PART_BYTES,
        max_parts=storage.MAX_PARTS,
    )


@dataclass(frozen=True)
class CreatedUpload:
    upload_id: str
    track_id: str
    asset_id: str
    # One of the two: a signed PUT (with its headers) or a multipart plan.
    signed_url: str | None
    expires_at: datetime
    required_headers: dict[str, str]
    multipart: MultipartPlan | None = None


@dataclass(frozen=True)
class PartsView:
    upload: UploadModel
    # What S3 holds, while the upload is pending and open; ``missing``: the part numbers still to
    # upload (absent, or of another size than planned).
    parts: list[storage.StoredPart]
    missing: list[int]


def _validate(request: NewUpload) -> str:
    """Returns the file extension once the request is acceptable."""
    if request.intent in REDIRECTED_INTENTS:
        code, route = REDIRECTED_INTENTS[request.intent]
        raise RedirectedIntent(code, f"Intent '{request.intent}' is not accepted here; use {route}.", route)
    if request.intent != "track_original":
        raise InvalidUpload(f"Unknown intent '{request.intent}'.", field="intent")
    extension = media_types.extension_of(request.file_name)
    if extension not in media_types.AUDIO_TYPES:
        raise UnsupportedMediaType(
            f"'{request.file_name}' is not a supported audio file ({media_types.accepted_summary()}).",
            field="fileName",
        )
    if not media_types.is_accepted(request.file_name, request.content_type):
        raise UnsupportedMediaType(
            f"Content type '{request.content_type}' does not match a .{extension} file.", field="contentType"
        )
    if request.byte_size > settings().max_audio_bytes:
        raise FileTooLarge(
            f"Audio files are limited to {settings().max_audio_bytes} bytes.", limit=settings().max_audio_bytes
        )
    return extension


def pending_intent(
    upload_id: str,
    *,
    owner_id: str,
    track_id: str,
    asset_id: str,
    intent: str,
    object_key: str,
    file_name: str,
    content_type: str,
    byte_size: int,
    now: datetime,
    expires_at: datetime | None = None,
    **extra: Any,
) -> UploadModel:
    """A new, pending upload intent of any kind. ``expires_at`` is when its signed request stops
    working (by default the upload URL's lifetime); the intent itself (with a draft track) expires
    by DynamoDB TTL after ``intent_ttl_s``. ``extra``: the kind's own attributes."""
    current = settings()
    return UploadModel(
        upload_id,
        owner_id=owner_id,
        track_id=track_id,
        asset_id=asset_id,
        intent=intent,
        object_key=object_key,
        file_name=file_name,
        content_type=content_type,
        byte_size=byte_size,
        status="pending",
        created_at=now,
        expires_at=expires_at or now + timedelta(seconds=current.upload_url_ttl_s),
        expires_at_epoch=now + timedelta(seconds=current.intent_ttl_s),
        **extra,
    )


def create(owner_id: str, request: NewUpload) -> CreatedUpload:
    extension = _validate(request)
    if request.metadata.visibility not in TrackModel.VISIBILITIES:
        raise InvalidUpload(f"visibility is one of {', '.join(TrackModel.VISIBILITIES)}.", field="visibility")
    allowance = entitlements.require_uploader(owner_id)
    features = artists.check_features(request.metadata.features)
    tags = tag_names.normalize_all(request.metadata.tags)
    # Resolved (and created, for a new title) only once the request is otherwise acceptable.
    album = albums.resolve(owner_id, request.metadata.album) if request.metadata.album else None

    current = settings()
    upload_id, track_id, asset_id = ids.new_id(), ids.new_id(), ids.new_id()
    object_key = keys.original(upload_id, extension)
    now = utcnow()
    url_expires_at = now + timedelta(seconds=current.upload_url_ttl_s)
    content_type = media_types.normalized_content_type(request.content_type)
    metadata = request.metadata
    multipart = not request.size_unknown and (
        request.multipart
        if request.multipart is not None
        else current.multipart_threshold_bytes is not None and request.byte_size > current.multipart_threshold_bytes
    )
    if request.part_size is not None and not multipart:
        raise InvalidUpload("partSize applies to a multipart upload; send multipart: true.", field="partSize")
    part_size, part_count = plan_parts(request.byte_size, request.part_size) if multipart else (None, None)
    if multipart:
        # A multipart upload may take hours (the client resumes it): it may be completed until the
        # window ends, and ``expires_at`` is that deadline, not one URL's.
        url_expires_at = now + _multipart_window()
    upload = pending_intent(
        upload_id,
        owner_id=owner_id,
        track_id=track_id,
        asset_id=asset_id,
        intent=request.intent,
        object_key=object_key,
        file_name=request.file_name,
        content_type=content_type,
        # Unknown: the cap is what the intent allows, and finalize accepts what is within bounds.
        byte_size=current.max_audio_bytes if request.size_unknown else request.byte_size,
        now=now,
        expires_at=url_expires_at,
        declared_bounds=(
            {"maxBytes": current.max_audio_bytes, "contentTypes": [content_type]} if request.size_unknown else None
        ),
        part_size=part_size,
        part_count=part_count,
    )
    # What the intent holds of the owner's storage quota until it is finalized or released
    # (functions.domain.catalog.usage): the declared size, or the cap when none is declared.
    upload.reserved_bytes = upload.byte_size
    track = TrackModel(
        track_id,
        TrackModel.TRACK_SK,
        owner_id=owner_id,
        upload_id=upload_id,
        title=(metadata.title or "").strip() or PurePosixPath(request.file_name).stem,
        title_source="uploader" if (metadata.title or "").strip() else "file_name",
        album_id=album.album_id if album else None,
        # The album's own title (the request may name it by id); the tags lane then leaves it alone.
        album=album.title if album else None,
        features=features or None,
        tags=tags or None,
        support_gate=metadata.support_gate,
        description=metadata.description or None,
        auto_tag=metadata.auto_tag,
        visibility=metadata.visibility,
        status="draft",
        original_key=object_key,
        original_content_type=content_type,
        created_at=now,
        updated_at=now,
        expires_at_epoch=upload.expires_at_epoch,
    )
    if album is not None:
        # The track joins the album's list at finalize (an abandoned intent never shows up in an
        # album); a full album refuses the intent now rather than then.
        album_membership.check_room(album)
    # Opened last, once nothing but the write can refuse the intent.
    multipart_id = storage.create_multipart(object_key, content_type=content_type) if multipart else None
    upload.multipart_id = multipart_id

    def write(tx: writes.ConditionalTransaction) -> None:
        tx.save(upload, condition=UploadModel.upload_id.does_not_exist())
        tx.save(track, condition=TrackModel.pk.does_not_exist())

    try:
        # The intent, its draft and its reservation: all of them, or none (storage_quota_exceeded).
        tx = usage.reserving(allowance, upload, write)
        if not tx.committed:
            tx.raise_refusal()  # fresh ids: only a failure could refuse them
    except Exception:
        if multipart_id:  # no intent names it: nothing could ever complete or abort it but lifecycle
            storage.abort_multipart(object_key, multipart_id)
        raise
    if multipart:
        assert part_size is not None and part_count is not None
        urls = _sign_parts(upload, 1, MAX_PART_URLS)
        plan = MultipartPlan(part_size, part_count, urls, s3_requests(upload, urls))
        return CreatedUpload(upload_id, track_id, asset_id, None, url_expires_at, {}, plan)
    if request.size_unknown:
        signed = storage.presign_put_any_size(
            object_key, content_type=content_type, expires_in=current.upload_url_ttl_s
        )
    else:
        signed = storage.presign_put(
            object_key, content_type=content_type, content_length=request.byte_size, expires_in=current.upload_url_ttl_s
        )
    return CreatedUpload(upload_id, track_id, asset_id, signed.url, url_expires_at, signed.headers)


def find(upload_id: str) -> UploadModel | None:
    return reads.get_or_none(UploadModel, upload_id)


def kept_key(upload: UploadModel) -> str:
    """Where finalize keeps the upload's verified file (``keys.kept_upload``): under its album for
    an album cover, else under its track. Deterministic, so every finalize of the upload (and the
    workflow input built from it) names the same object."""
    owner_prefix = keys.album_prefix(upload.album_id) if upload.album_id else keys.track_prefix(upload.track_id)
    return keys.kept_upload(owner_prefix, upload.upload_id, upload.object_key)


def is_expired(upload: UploadModel, now: datetime | None = None) -> bool:
    """A pending intent past its TTL: nothing can finalize it any more, DynamoDB just has not
    deleted it yet (TTL deletion lags by up to days)."""
    deadline = upload.expires_at_epoch
    return upload.status == "pending" and deadline is not None and deadline <= (now or utcnow())


def owned(owner_id: str, upload_id: str) -> UploadModel:
    """The caller's own ``POST /v1/uploads`` intent; anything else is 'not found' (another owner's
    id must not be told apart from an unknown one). Image, document and version intents belong to
    their own routes."""
    upload = find(upload_id)
    if upload is None or upload.owner_id != owner_id or upload.intent != TRACK_ORIGINAL:
        raise UploadIntentNotFound("No such upload intent for this owner.")
    return upload


# -- resumable (multipart) uploads ------------------------------------------------------------


def plan_parts(byte_size: int, requested: int | None = None) -> tuple[int, int]:
    """(part size, part count). The client's ``requested`` part size when it is within S3's bounds
    and needs at most 10,000 parts (else ``invalid_part_size``); otherwise the configured part size,
    grown (to whole MiB) when the file would need more parts than S3 allows. The last part holds
    the remainder."""
    bounds = part_size_bounds()
    if requested is not None:
        if not bounds.minimum <= requested <= bounds.maximum:
            raise InvalidPartSize(
                f"partSize must be between {bounds.minimum} and {bounds.maximum} bytes.",
                field="partSize",
                minPartSize=bounds.minimum,
                maxPartSize=bounds.maximum,
            )
        if ceil(byte_size / requested) > bounds.max_parts:
            raise InvalidPartSize(
                f"A partSize of {requested} bytes cuts this file into more than {bounds.max_parts} parts.",
                field="partSize",
                minPartSize=ceil(byte_size / bounds.max_parts),
                maxPartSize=bounds.maximum,
            )
        return requested, max(1, ceil(byte_size / requested))
    mib = 1024 * 1024
    part_size = max(bounds.default, ceil(byte_size / bounds.max_parts / mib) * mib)
    return part_size, max(1, ceil(byte_size / part_size))


def part_length(upload: UploadModel, part_number: int) -> int:
    part_size, count = int(upload.part_size or 0), int(upload.part_count or 0)
    return part_size if part_number < count else int(upload.byte_size) - part_size * (count - 1)


def _multipart_window() -> timedelta:
    # S3 lifecycle aborts an incomplete multipart upload a day after it started
    # (stacks/constructs/storage.py): the window must end first, or a client still inside it could
    # lose its parts.
    lifecycle = timedelta(days=storage.ABORT_INCOMPLETE_MULTIPART_DAYS)
    return min(timedelta(seconds=settings().intent_ttl_s), lifecycle)


def _sign_parts(upload: UploadModel, first: int, count: int) -> PartUrls:
    """URLs for parts ``first``..``first + count - 1`` (clipped to the plan), each signed for that
    part's exact size and never valid past the upload's window."""
    now = utcnow()
    ttl = min(settings().upload_url_ttl_s, int((upload.expires_at - now).total_seconds()))
    if ttl <= 0:
        raise UploadExpired("This upload's time to complete has run out; create a new upload intent.")
    last = min(int(upload.part_count or 0), first + count - 1)
    urls = []
    for number in range(first, last + 1):
        size = part_length(upload, number)
        signed = storage.presign_part(
            upload.object_key, upload.multipart_id or "", number, content_length=size, expires_in=ttl
        )
        urls.append(PartUrl(number, size, signed.url))
    return PartUrls(urls, now + timedelta(seconds=ttl))


def s3_requests(upload: UploadModel, urls: PartUrls) -> S3Requests:
    """Presigned ListParts / Complete / Abort for the upload, valid as long as ``urls``."""
    ttl = max(1, int((urls.expires_at - utcnow()).total_seconds()))
    multipart_id = upload.multipart_id or ""
    requests = storage.presign_multipart_requests(upload.object_key, multipart_id, expires_in=ttl)
    return S3Requests(upload.object_key, multipart_id, requests, urls.expires_at)


def _open_multipart(owner_id: str, upload_id: str) -> UploadModel:
    """The caller's multipart intent, still able to receive parts."""
    upload = owned(owner_id, upload_id)
    if not upload.multipart_id:
        raise UploadNotMultipart("This upload has one signed PUT, not parts; PUT the file to its signedUrl.")
    if upload.status == "cancelled":
        raise UploadCancelled("This upload was cancelled; create a new upload intent.")
    if is_expired(upload) or (upload.status == "pending" and upload.expires_at <= utcnow()):
        raise UploadExpired("This upload's time to complete has run out; create a new upload intent.")
    return upload


def part_urls(owner_id: str, upload_id: str, *, first: int, count: int) -> tuple[UploadModel, PartUrls, S3Requests]:
    """Fresh URLs for a resuming client (the first ones may have expired), and fresh S3 requests."""
    upload = _open_multipart(owner_id, upload_id)
    if upload.status != "pending":
        raise UploadAlreadyFinalized("This upload is complete; there are no parts left to upload.")
    if first > int(upload.part_count or 0):
        raise InvalidUpload(f"This upload has {upload.part_count} parts.", field="from")
    urls = _sign_parts(upload, first, min(count, MAX_PART_URLS))
    return upload, urls, s3_requests(upload, urls)


def parts(owner_id: str, upload_id: str) -> PartsView:
    """What S3 holds of a pending upload, so a client resumes with the missing parts only. Once the
    upload is no longer pending there is nothing to resume: ``upload.status`` says what became of it."""
    upload = _open_multipart(owner_id, upload_id)
    if upload.status != "pending":
        return PartsView(upload, [], [])
    try:
        stored = storage.list_parts(upload.object_key, upload.multipart_id or "")
    except storage.MultipartUploadGone:
        # Completed (its finalize has not landed yet) or aborted by lifecycle: nothing to resume.
        return PartsView(upload, [], [])
    return PartsView(upload, stored, _missing(upload, stored))


def _missing(upload: UploadModel, stored: list[storage.StoredPart]) -> list[int]:
    good = {p.part_number for p in stored if p.size == part_length(upload, p.part_number)}
    return [n for n in range(1, int(upload.part_count or 0) + 1) if n not in good]


def complete_multipart(owner_id: str, upload_id: str, sent: list[tuple[int, str]] | None) -> UploadModel:
    """Assembles the object from its parts; the caller then finalizes it like a single PUT.

    ``sent``: the client's ``(partNumber, etag)`` list, which S3 checks against what it stores
    (a part re-uploaded since the client recorded it is refused). None: the parts S3 lists are
    used, which is safe because each must have landed in its planned size (the URLs were signed
    for it), so the assembled object can only have the intent's size; finalize checks it again."""
    upload = _open_multipart(owner_id, upload_id)
    if upload.status != "pending":
        return upload  # finalize answers what became of it (already_finalized, duplicate, rejected)
    try:
        stored = storage.list_parts(upload.object_key, upload.multipart_id or "")
    except storage.MultipartUploadGone:
        return upload  # completed by an earlier call: finalize finds the object (or reports it missing)
    missing = _missing(upload, stored)
    if missing:
        raise UploadPartsIncomplete(
            f"{len(missing)} of {upload.part_count} parts are missing or of the wrong size; "
            "upload them, then complete.",
            missing=missing[:MAX_PART_URLS],
        )
    if sent is not None:
        numbers = [n for n, _ in sent]
        if numbers != list(range(1, int(upload.part_count or 0) + 1)):
            raise UploadPartMismatch(f"parts must list every part, 1 to {upload.part_count}, in order.", field="parts")
        chosen = sent
    else:
        chosen = [(p.part_number, p.etag) for p in stored]
    try:
        storage.complete_multipart(upload.object_key, upload.multipart_id or "", chosen)
    except storage.PartsRefused as refused:
        raise UploadPartMismatch(
            f"Storage refused the part list ({refused.code}); list the parts and try again."
        ) from refused
    except storage.MultipartUploadGone:
        pass  # a concurrent complete won: the object is there for finalize
    logger.info("multipart upload completed", extra={"upload_id": upload.upload_id, "parts": len(chosen)})
    return upload


# -- cancelling --------------------------------------------------------------------------------


def cancel(owner_id: str, upload_id: str) -> None:
    """Cancels the caller's unfinalized intent: the intent becomes ``cancelled`` (kept until its TTL,
    so a repeat answers the same and a late finalize gets ``upload_intent_cancelled``), its draft
    track is deleted with it in one transaction, then its stored object or open multipart upload is
    removed. A finalized upload is the record of a track's audio: delete the track instead."""
    upload = owned(owner_id, upload_id)
    for _ in range(2):
        if upload.status in ("finalized", "duplicate"):
            raise UploadAlreadyFinalized(
                "This upload is finalized; delete its track (DELETE /v1/tracks/{trackId}) instead."
            )
        if upload.status == "cancelled":
            break
        if _cancel_items(upload):
            break
        # Finalized or cancelled meanwhile (the put event and a second DELETE may race this one).
        if not reads.refresh(upload, consistent_read=True):
            raise UploadIntentNotFound("No such upload intent for this owner.")
    else:
        raise ConcurrentUpdate("The upload changed while it was being cancelled; try again.")
    _discard_storage(upload)


def _cancel_items(upload: UploadModel) -> bool:
    """False when the intent or its draft moved on since it was read (nothing is written then)."""
    track = TrackModel(upload.track_id, TrackModel.TRACK_SK)
    pending = upload.status == "pending"

    def write(tx: writes.ConditionalTransaction) -> None:
        # A rejected intent's draft is as abandoned as a pending one's; a rejection released its
        # reservation already, so the status must still be the one read.
        tx.update(
            upload,
            actions=[UploadModel.status.set("cancelled"), UploadModel.cancelled_at.set(utcnow())],
            condition=(UploadModel.status == upload.status) & (UploadModel.owner_id == upload.owner_id),
        )
        # Only a draft: the intent being pending or rejected means nothing processed the track.
        tx.delete(
            track,
            condition=TrackModel.pk.does_not_exist() | TrackModel.status.is_in(*lifecycle.WITHOUT_AUDIO),
        )

    if upload.status not in ("pending", "rejected"):
        return False
    tx = usage.releasing(upload, write) if pending else _run(write)
    if not tx.committed:
        return False
    logger.info("upload cancelled", extra={"upload_id": upload.upload_id})
    return True


def _run(write: Callable[[writes.ConditionalTransaction], None]) -> writes.ConditionalTransaction:
    with writes.conditional_transaction() as tx:
        write(tx)
    return tx


def _discard_storage(upload: UploadModel) -> None:
    """Repeated by every cancel (each part is idempotent), so a cancel that stopped half-way is
    finished by the next one. A file PUT after this is deleted by its put event's finalize."""
    if upload.multipart_id:
        storage.abort_multipart(upload.object_key, upload.multipart_id)
    storage.delete(upload.object_key)
