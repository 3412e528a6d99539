"""Upload intents (seed 004 ``POST /v1/uploads``): validate, allocate track + asset, presign."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DoesNotExist
from pynamodb.transactions import TransactWrite

from functions import ids
from functions.data import keys, storage
from functions.data.models import ArtistModel, TrackModel, UploadModel, ensure_bound, utcnow
from functions.domain import albums, artists, entitlements, media_types
from functions.domain import tags as tag_names
from functions.errors import (
    FileTooLarge,
    InvalidUpload,
    RedirectedIntent,
    UnknownFeatureHandle,
    UnsupportedMediaType,
)
from functions.settings import settings

# Intents this route refuses, with the code and the route to use instead (seed 004).
REDIRECTED_INTENTS = {
    "draft": ("use_track_versions_upload_route", "POST /v1/tracks/:trackId/versions/uploads"),
    "track_artwork": ("use_track_artwork_upload_route", "POST /v1/tracks/:trackId/artwork/uploads"),
    "track_document": ("use_track_documents_upload_route", "POST /v1/tracks/:trackId/documents/uploads"),
}
MAX_FEATURES = 10


@dataclass(frozen=True)
class TrackMetadata:
    """The seed 000 form fields, accepted on the intent."""

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


@dataclass(frozen=True)
class CreatedUpload:
    upload_id: str
    track_id: str
    asset_id: str
    signed_url: str
    expires_at: datetime
    required_headers: dict[str, str]


def normalize_tags(tags: list[str]) -> list[str]:
    normalized: list[str] = []
    for tag in tags:
        value = tag_names.normalize(tag)
        if not value:
            continue
        if len(value) > tag_names.MAX_TAG_LENGTH:
            limit = tag_names.MAX_TAG_LENGTH
            raise InvalidUpload(f"Tags are at most {limit} characters: '{value[:60]}'.", field="tags")
        if value not in normalized:
            normalized.append(value)
    if len(normalized) > tag_names.MAX_TAGS:
        raise InvalidUpload(f"At most {tag_names.MAX_TAGS} tags.", field="tags")
    return normalized


def check_features(handles: list[str]) -> list[str]:
    """The handles, normalized (``" @Ana "`` -> ``"ana"``) and de-duplicated; each must be an
    artist's (UnknownFeatureHandle names the first that is not)."""
    normalized = list(dict.fromkeys(h.strip().lower().removeprefix("@") for h in handles if h.strip()))
    if len(normalized) > MAX_FEATURES:
        raise InvalidUpload(f"At most {MAX_FEATURES} featured artists.", field="features")
    if not normalized:
        return []
    ensure_bound()
    claims = {item.handle for item in ArtistModel.batch_get([ArtistModel.handle_key(h) for h in normalized])}
    for handle in normalized:
        if handle not in claims:
            raise UnknownFeatureHandle(f"No artist has the handle '{handle}'.", handle=handle)
    return normalized


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


def create(owner_id: str, request: NewUpload) -> CreatedUpload:
    extension = _validate(request)
    if request.metadata.visibility not in TrackModel.VISIBILITIES:
        raise InvalidUpload(f"visibility is one of {', '.join(TrackModel.VISIBILITIES)}.", field="visibility")
    artists.require(owner_id)
    entitlements.require_upload(owner_id)
    features = check_features(request.metadata.features)
    tags = normalize_tags(request.metadata.tags)
    # Resolved (and created, for a new title) only once the request is otherwise acceptable.
    album = albums.resolve(owner_id, request.metadata.album) if request.metadata.album else None

    current = settings()
    upload_id, track_id, asset_id = ids.new_id(), ids.new_id(), ids.new_id()
    object_key = keys.original(upload_id, extension)
    now = utcnow()
    url_expires_at = now + timedelta(seconds=current.upload_url_ttl_s)
    content_type = media_types.normalized_content_type(request.content_type)
    metadata = request.metadata
    upload = UploadModel(
        upload_id,
        owner_id=owner_id,
        track_id=track_id,
        asset_id=asset_id,
        intent=request.intent,
        object_key=object_key,
        file_name=request.file_name,
        content_type=content_type,
        byte_size=request.byte_size,
        status="pending",
        created_at=now,
        expires_at=url_expires_at,
        expires_at_epoch=now + timedelta(seconds=current.intent_ttl_s),
    )
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
    ensure_bound()
    if album is not None:
        # The track joins the album's list at finalize (an abandoned intent never shows up in an
        # album); a full album refuses the intent now rather than then.
        albums.check_room(album)
    with TransactWrite(connection=Connection(region=UploadModel.Meta.region, host=UploadModel.Meta.host)) as tx:
        tx.save(upload, condition=UploadModel.upload_id.does_not_exist())
        tx.save(track, condition=TrackModel.pk.does_not_exist())
    signed = storage.presign_put(
        object_key, content_type=content_type, content_length=request.byte_size, expires_in=current.upload_url_ttl_s
    )
    return CreatedUpload(upload_id, track_id, asset_id, signed.url, url_expires_at, signed.headers)


def find(upload_id: str) -> UploadModel | None:
    ensure_bound()
    try:
        return UploadModel.get(upload_id)
    except DoesNotExist:
        return None
