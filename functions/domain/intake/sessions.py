"""Upload sessions (the upload-session contract): a batch of tracks uploaded into one of the
owner's albums.

A session names the album (``collection_id``) and expires (``expires_at``). Each track added to it
is an ordinary upload intent (``functions.domain.intake.uploads.create``: file name and type, entitlement,
artist profile, the album's room) plus an artwork intent for its cover, signed as a browser-form
POST. There is no finalize call: each object's S3 put event finalizes it, as for every intent
(``functions.domain.intake.finalize``), and the cover's event makes it the track's artwork through the
same machinery as ``POST /v1/tracks/{trackId}/artwork/uploads``.

The upload-session contract's track intent names only the file, so both presigned requests are
signed with bounds rather than exact values (``UploadModel.declared_bounds``): the PUT over the
content type the file name implies (S3 cannot bound a PUT's size without an exact signed
Content-Length), the cover POST over a policy (1 byte to 20 MB, ``image/*``). Finalize ``settle``s
an intent on what was stored when it is within those bounds and rejects it otherwise, so the
audio's size cap holds even where S3 could not enforce it.

Tracks land in the album in ``organization_index`` order, then ``metadata.track_number``, then
creation, however their uploads race: each track carries an order key (``order_key``) and
finalize places it by that key (``album_membership.place_track``) instead of appending it.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.expressions.condition import size

from functions import ids
from functions.data import keys, reads, storage, writes
from functions.data.models import TrackModel, UploadModel, UploadSessionModel, utcnow
from functions.domain.catalog import albums, entitlements, tracks, usage
from functions.domain.intake import media_types, media_uploads, uploads
from functions.errors import (
    AlbumNotFound,
    CollectionNotFound,
    InvalidUpload,
    MetadataTooLarge,
    StorageQuotaExceeded,
    UploadSessionExpired,
    UploadSessionFull,
    UploadSessionNotFound,
)
from functions.observability import logger
from functions.settings import settings

# A session's metadata is free-form JSON; a track's is stored in the session item beside up to
# MAX_TRACKS others, which bounds it tighter (a DynamoDB item stops at 400 KB:
# 16 KB + 100 x (2 KB + ~0.4 KB of ids) stays far below).
MAX_SESSION_METADATA_BYTES = 16 * 1024
MAX_TRACK_METADATA_BYTES = 2 * 1024
MAX_TRACKS = 100
MAX_INDEX_LENGTH = 64
# The session item outlives its expiry by this much (DynamoDB TTL), so its state stays readable
# while the last uploads are processed.
RETENTION_S = 7 * 24 * 3600
# The content type a session track's PUT is signed with, from its file name (each is one of the
# types the intent accepts for that extension: functions.domain.intake.media_types.AUDIO_TYPES).
AUDIO_CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "flac": "audio/flac",
    "aiff": "audio/aiff",
    "aif": "audio/aiff",
    "ogg": "audio/ogg",
    "opus": "audio/opus",
    "m4a": "audio/mp4",
    "aac": "audio/aac",
    "webm": "audio/webm",
}
COVER_CONTENT_TYPE_PREFIX = "image/"
# Index strings of digits only compare as numbers ("2" before "10"); other strings after them,
# as strings; tracks without an index after both.
_DIGITS = re.compile(r"[0-9]{1,18}")
_NO_TRACK_NUMBER = 10**9


@dataclass(frozen=True)
class SessionTrack:
    track_id: str
    upload_id: str
    cover_upload_id: str
    index: str
    organization_index: str | None
    file_name: str
    metadata: dict[str, Any] | None
    created_at: str

    @classmethod
    def from_json(cls, raw: str) -> SessionTrack:
        data = json.loads(raw)
        return cls(
            track_id=data["trackId"],
            upload_id=data["uploadId"],
            cover_upload_id=data["coverUploadId"],
            index=data["index"],
            organization_index=data.get("organizationIndex"),
            file_name=data["fileName"],
            metadata=data.get("metadata"),
            created_at=data["createdAt"],
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "trackId": self.track_id,
                "uploadId": self.upload_id,
                "coverUploadId": self.cover_upload_id,
                "index": self.index,
                "organizationIndex": self.organization_index,
                "fileName": self.file_name,
                "metadata": self.metadata,
                "createdAt": self.created_at,
            },
            separators=(",", ":"),
        )


@dataclass(frozen=True)
class Presigned:
    method: str
    url: str
    ttl_s: int
    expires_at: datetime
    headers: dict[str, str] | None = None
    fields: dict[str, str] | None = None


@dataclass(frozen=True)
class AddedTrack:
    session: UploadSessionModel
    track: SessionTrack
    path: str
    track_upload: Presigned
    cover_upload: Presigned


@dataclass(frozen=True)
class TrackState:
    track: SessionTrack
    # pending (awaiting its upload) | processing | ready | failed | duplicate | expired | deleted
    status: str
    title: str | None
    error_code: str | None
    error_message: str | None
    duplicate_of: str | None
    # none | pending | processing | ready | failed | expired
    cover_status: str


@dataclass(frozen=True)
class SessionState:
    session: UploadSessionModel
    expired: bool
    tracks: list[TrackState]


def _json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def _check_metadata(metadata: dict[str, Any] | None, limit: int) -> None:
    if metadata is not None and _json_size(metadata) > limit:
        raise MetadataTooLarge(f"metadata is at most {limit} bytes of JSON.", limit=limit)


def _clean_index(value: str | None) -> str | None:
    if value is None:
        return None
    stripped = value.strip()
    if not stripped or len(stripped) > MAX_INDEX_LENGTH:
        raise InvalidUpload(f"organization_index has 1 to {MAX_INDEX_LENGTH} characters.", field="organization_index")
    return stripped


def _expired(session: UploadSessionModel) -> bool:
    return bool(session.expires_at <= utcnow())


# --- sessions --------------------------------------------------------------------------------------


def create(
    owner_id: str,
    collection_id: str,
    *,
    creator_id: str | None = None,
    organization_index: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> UploadSessionModel:
    """A new session into the caller's album ``collection_id`` (``alb_<uuid>`` or the bare
    UUID; another owner's is CollectionNotFound). Refused early without an upload entitlement,
    which every track of it would need."""
    _check_metadata(metadata, MAX_SESSION_METADATA_BYTES)
    index = _clean_index(organization_index)
    album_id = ids.parse("alb", collection_id.strip())
    if album_id is None:
        raise CollectionNotFound("No such collection (album) for this owner.")
    try:
        albums.get_owned(album_id, owner_id)
    except AlbumNotFound:
        raise CollectionNotFound("No such collection (album) for this owner.") from None
    entitlements.require_upload(owner_id)
    now = utcnow()
    expires_at = now + timedelta(seconds=settings().upload_session_ttl_s)
    session = UploadSessionModel(
        UploadSessionModel.key(ids.new_id()),
        owner_id=owner_id,
        collection_id=album_id,
        creator_id=creator_id,
        organization_index=index,
        metadata=metadata,
        tracks=[],
        created_at=now,
        expires_at=expires_at,
        expires_at_epoch=expires_at + timedelta(seconds=RETENTION_S),
    )
    session.save(condition=UploadSessionModel.pk.does_not_exist())
    return session


def session_id(session: UploadSessionModel) -> str:
    return session.pk.removeprefix(UploadSessionModel.PREFIX)


def parse_id(value: str) -> str:
    """The bare UUID of a session id (the upload-session contract's ids carry no prefix); anything
    else is not found."""
    try:
        parsed = uuid.UUID(value) if len(value) == 36 else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise UploadSessionNotFound("No such upload session.")
    return str(parsed)


def get_owned(session_id_: str, owner_id: str) -> UploadSessionModel:
    """The session if ``owner_id`` owns it; another owner's is 'not found', as is one DynamoDB's
    TTL has removed."""
    session = reads.get_or_none(UploadSessionModel, UploadSessionModel.key(parse_id(session_id_)), consistent_read=True)
    if session is None or session.owner_id != owner_id:
        raise UploadSessionNotFound("No such upload session.")
    return session


def entries(session: UploadSessionModel) -> list[SessionTrack]:
    return [SessionTrack.from_json(str(raw)) for raw in session.tracks or []]


# --- tracks ----------------------------------------------------------------------------------------


def order_key(organization_index: str | None, track_number: int | None, created_at: str, track_id: str) -> list[Any]:
    """What a session track is placed by in its album, compared as a tuple: the organization
    index (numerically when it is all digits, so "2" < "10"; then other strings; then none), then
    ``metadata.track_number``, then creation time, then the id (so no two keys are equal)."""
    if organization_index is None:
        index: list[Any] = [2, ""]
    elif _DIGITS.fullmatch(organization_index):
        index = [0, int(organization_index)]
    else:
        index = [1, organization_index]
    number = track_number if track_number is not None else _NO_TRACK_NUMBER
    return [*index, number, created_at, track_id]


def _track_number(metadata: dict[str, Any] | None) -> int | None:
    value = (metadata or {}).get("track_number")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
        raise InvalidUpload("metadata.track_number is a whole number from 1 to 100000.", field="metadata.track_number")
    return value


def _title(metadata: dict[str, Any] | None) -> str | None:
    value = (metadata or {}).get("title")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 256:
        raise InvalidUpload("metadata.title is a string of at most 256 characters.", field="metadata.title")
    return value


def add_track(
    owner_id: str,
    session_id_: str,
    *,
    file_name: str,
    organization_index: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> AddedTrack:
    """A track intent in the session: the audio's presigned PUT and the cover's presigned POST.
    Refused for an expired session (UploadSessionExpired) or a full one (UploadSessionFull)."""
    session = get_owned(session_id_, owner_id)
    if _expired(session):
        raise UploadSessionExpired("This upload session has expired; create a new one.")
    if len(session.tracks or []) >= MAX_TRACKS:
        raise UploadSessionFull(f"An upload session holds at most {MAX_TRACKS} tracks.", limit=MAX_TRACKS)
    _check_metadata(metadata, MAX_TRACK_METADATA_BYTES)
    index = _clean_index(organization_index)
    number, title = _track_number(metadata), _title(metadata)
    extension = media_types.extension_of(file_name)
    content_type = AUDIO_CONTENT_TYPES.get(extension)
    if content_type is None:
        # uploads.create words the refusal (unsupported_media_type) like every audio intent does.
        content_type = "application/octet-stream"

    created = uploads.create(
        owner_id,
        uploads.NewUpload(
            intent="track_original",
            file_name=file_name,
            content_type=content_type,
            byte_size=0,
            metadata=uploads.TrackMetadata(title=title, album=ids.render("alb", session.collection_id)),
            size_unknown=True,  # the upload-session contract names only the file
        ),
    )
    now = utcnow()
    created_at = now.isoformat()
    key = order_key(index, number, created_at, created.track_id)
    tracks.update(
        created.track_id,
        TrackModel.album_order.set(key),
        TrackModel.upload_session_id.set(session_id(session)),
        *([TrackModel.track_number.set(number)] if number is not None else []),
    )
    try:
        cover_upload_id, cover = _cover_intent(owner_id, created.track_id)
    except StorageQuotaExceeded:
        # No room for the cover's reservation: the track is not added, so neither is its audio
        # intent (cancelled, its reservation released, its draft deleted).
        uploads.cancel(owner_id, created.upload_id)
        raise

    entry = SessionTrack(
        track_id=created.track_id,
        upload_id=created.upload_id,
        cover_upload_id=cover_upload_id,
        index=index if index is not None else str(len(session.tracks or []) + 1),
        organization_index=index,
        file_name=file_name,
        metadata=metadata,
        created_at=created_at,
    )
    _append(session, entry)
    logger.info(
        "session track intent",
        extra={"upload_session_id": session_id(session), "track_id": created.track_id, "upload_id": created.upload_id},
    )
    assert created.signed_url is not None  # size_unknown intents are never multipart
    track_upload = Presigned(
        "PUT", created.signed_url, settings().upload_url_ttl_s, created.expires_at, headers=created.required_headers
    )
    return AddedTrack(session, entry, keys.original(created.upload_id, extension), track_upload, cover)


def _append(session: UploadSessionModel, entry: SessionTrack) -> None:
    """Adds the entry atomically, while the session is unexpired and not full: a track added
    concurrently by another request is never lost, and the bound holds however many race."""
    if not writes.update_if(
        session,
        [UploadSessionModel.tracks.set((UploadSessionModel.tracks | []).append([entry.to_json()]))],
        (UploadSessionModel.expires_at > utcnow())
        & (UploadSessionModel.tracks.does_not_exist() | (size(UploadSessionModel.tracks) < MAX_TRACKS)),  # type: ignore[no-untyped-call]
    ):
        # The intents made above are drafts that expire with their TTL; they never show anywhere.
        session.refresh()
        if _expired(session):
            raise UploadSessionExpired("This upload session has expired; create a new one.")
        raise UploadSessionFull(f"An upload session holds at most {MAX_TRACKS} tracks.", limit=MAX_TRACKS)


def _cover_intent(owner_id: str, track_id: str) -> tuple[str, Presigned]:
    """The cover's artwork intent: an ``UploadModel`` of intent ``track_artwork``, like those of
    ``POST /v1/tracks/{trackId}/artwork/uploads``, so its put event runs the same finalize (the image
    becomes the track's source, the artwork lane renders it). Signed as a POST: the policy bounds
    size and type, and finalize settles the intent on the stored object within the same bounds.
    Like the track's audio, which declares no size either, it reserves the most it may be (the
    image cap) of the owner's storage quota until its file is stored; it is no pending audio
    intent."""
    current = settings()
    upload_id, asset_id = ids.new_id(), ids.new_id()
    now = utcnow()
    expires_at = now + timedelta(seconds=current.upload_url_ttl_s)
    kind = media_uploads.KINDS[media_uploads.TRACK_ARTWORK]
    object_key = keys.posted_upload(upload_id, kind.object_name)
    upload = uploads.pending_intent(
        upload_id,
        owner_id=owner_id,
        track_id=track_id,
        asset_id=asset_id,
        intent=media_uploads.TRACK_ARTWORK,
        object_key=object_key,
        file_name=kind.object_name,
        content_type=COVER_CONTENT_TYPE_PREFIX + "*",
        byte_size=kind.max_bytes,
        now=now,
        expires_at=expires_at,
        declared_bounds={"maxBytes": kind.max_bytes, "contentTypePrefix": COVER_CONTENT_TYPE_PREFIX},
        reserved_bytes=kind.max_bytes,
    )

    def write(tx: writes.ConditionalTransaction) -> None:
        tx.save(upload, condition=UploadModel.upload_id.does_not_exist())

    tx = usage.reserving(usage.current(owner_id), upload, write, counts_pending=False)
    if not tx.committed:
        tx.raise_refusal()  # a fresh id: only a failure could refuse it
    post = storage.presign_post(
        object_key,
        max_bytes=kind.max_bytes,
        content_type_prefix=COVER_CONTENT_TYPE_PREFIX,
        expires_in=current.upload_url_ttl_s,
    )
    return upload_id, Presigned("POST", post.url, current.upload_url_ttl_s, expires_at, fields=post.fields)


# --- finalize's side -------------------------------------------------------------------------------


def settle(upload: UploadModel, stored: storage.StoredObject) -> str | None:
    """For an intent signed with bounds: None once the intent holds the stored object's size and
    type (they were within the bounds), else why the object is refused. The write is conditional on
    the intent still pending with its bounds, so repeated events settle it once."""
    bounds = upload.declared_bounds or {}
    stored_type = media_types.normalized_content_type(stored.content_type or "")
    problems = []
    if stored.size < 1:
        problems.append("the file is empty")
    elif stored.size > int(bounds.get("maxBytes", 0)):
        problems.append(f"size is {stored.size} bytes, at most {bounds.get('maxBytes')} are accepted")
    allowed = bounds.get("contentTypes")
    prefix = bounds.get("contentTypePrefix")
    if (allowed is not None and stored_type not in allowed) or (
        prefix is not None and not stored_type.startswith(prefix)
    ):
        expected = ", ".join(allowed) if allowed is not None else f"{prefix}*"
        problems.append(f"content type is '{stored_type or 'missing'}', expected {expected}")
    if problems:
        return "The uploaded file is not acceptable: " + "; ".join(problems) + "."
    if not writes.update_if(
        upload,
        [
            UploadModel.byte_size.set(stored.size),
            UploadModel.content_type.set(stored_type),
            UploadModel.declared_bounds.remove(),
        ],
        (UploadModel.status == "pending") & UploadModel.declared_bounds.exists(),
    ):
        upload.refresh()  # settled (or decided) by another delivery: verify against that
    return None


# --- reads -----------------------------------------------------------------------------------------


def state(owner_id: str, session_id_: str) -> SessionState:
    """The session and each track's state: one GetItem plus one BatchGetItem each for its tracks
    and its intents (at most MAX_TRACKS of each)."""
    session = get_owned(session_id_, owner_id)
    listed = entries(session)
    found_tracks = {str(t.pk): t for t in TrackModel.batch_get([(e.track_id, TrackModel.TRACK_SK) for e in listed])}
    upload_ids = [e.upload_id for e in listed] + [e.cover_upload_id for e in listed]
    found_uploads = {str(u.upload_id): u for u in UploadModel.batch_get(upload_ids)} if upload_ids else {}
    now = utcnow()
    states = [
        _track_state(
            e, found_tracks.get(e.track_id), found_uploads.get(e.upload_id), found_uploads.get(e.cover_upload_id), now
        )
        for e in listed
    ]
    return SessionState(session, _expired(session), states)


def _track_state(
    entry: SessionTrack,
    track: TrackModel | None,
    upload: UploadModel | None,
    cover: UploadModel | None,
    now: datetime,
) -> TrackState:
    title = track.title if track else None
    if upload is not None and upload.status == "duplicate":
        return TrackState(entry, "duplicate", title, None, None, upload.duplicate_of, "none")
    if upload is not None and upload.status == "rejected":
        return TrackState(
            entry, "failed", title, upload.rejected_code, upload.rejected_message, None, _cover(cover, track, now)
        )
    if track is None:
        # An intent never used is removed with its draft by TTL; a deleted track takes its intent.
        gone = "expired" if upload is None or upload.status == "pending" else "deleted"
        return TrackState(entry, gone, None, None, None, None, "none")
    if track.status == "draft":
        status = "expired" if upload is None or upload.expires_at <= now else "pending"
        return TrackState(entry, status, title, None, None, None, _cover(cover, track, now))
    return TrackState(
        entry, str(track.status), title, track.failure_code, track.failure_message, None, _cover(cover, track, now)
    )


def _cover(cover: UploadModel | None, track: TrackModel | None, now: datetime) -> str:
    if cover is None:
        return "none"
    if cover.status == "pending":
        return "expired" if cover.expires_at <= now else "pending"
    if cover.status == "rejected":
        return "failed"
    artwork = (track.artwork if track else None) or {}
    # Each upload's variants sit in a folder named after it (keys.artwork_variant).
    if any(f"/{cover.upload_id}/" in variant.get("key", "") for variant in artwork.get("variants", [])):
        return "ready"
    if track is not None and (track.image_source or {}).get("uploadId") not in (None, cover.upload_id):
        return "replaced"
    return "processing"
