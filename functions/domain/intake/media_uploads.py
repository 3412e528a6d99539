"""Image and document uploads: a track's artwork, an album's cover, a track's documents.

Each is an upload intent like the upload-intent contract's (an ``UploadModel`` with a presigned PUT
under ``uploads/``), so its S3 put event reaches the same finalize service, which verifies the
stored object against the intent and then, by the intent's kind:

* ``track_artwork``: the image becomes the track's ``image_source`` (an uploaded image always wins
  over an embedded cover; between two uploads the one finalized last wins) and the artwork lane
  runs alone for that track (a workflow execution named after the upload);
* ``album_cover``: the image becomes the album's ``image_source`` and an execution renders it into
  the album's ``artwork``, bumping its ``revision``;
* ``track_document``: the document is recorded on the track (at most ``MAX_DOCUMENTS``).

This module holds the domain side; ``functions.domain.intake.finalize`` orchestrates the put event and
``functions.domain.processing.steps`` renders the images.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.expressions.condition import size

from functions import ids
from functions.data import keys, reads, storage, writes
from functions.data.models import AlbumModel, TrackModel, UploadModel, utcnow
from functions.domain.catalog import albums, entitlements, tracks
from functions.domain.intake import media_types, uploads
from functions.errors import (
    AlbumNotFound,
    ConcurrentUpdate,
    DocumentLimitReached,
    DocumentNotFound,
    EmptyFile,
    FileTooLarge,
    TrackDeleted,
    UnsupportedMediaType,
)
from functions.settings import settings

MAX_DOCUMENTS = 20
# Optimistic writes (the image source's compare-and-set) retry this often before giving up.
MAX_ATTEMPTS = 5

TRACK_ARTWORK = "track_artwork"
ALBUM_COVER = "album_cover"
TRACK_DOCUMENT = "track_document"


@dataclass(frozen=True)
class MediaKind:
    intent: str
    # The object's name under ``uploads/<uploadId>/``.
    object_name: str
    accepted: dict[str, frozenset[str]]
    max_bytes: int
    noun: str


KINDS = {
    kind.intent: kind
    for kind in (
        MediaKind(TRACK_ARTWORK, "artwork", media_types.IMAGE_TYPES, media_types.MAX_IMAGE_BYTES, "image"),
        MediaKind(ALBUM_COVER, "cover", media_types.IMAGE_TYPES, media_types.MAX_IMAGE_BYTES, "image"),
        MediaKind(TRACK_DOCUMENT, "document", media_types.DOCUMENT_TYPES, media_types.MAX_DOCUMENT_BYTES, "document"),
    )
}


@dataclass(frozen=True)
class FileSpec:
    file_name: str
    content_type: str
    byte_size: int


@dataclass(frozen=True)
class CreatedMediaUpload:
    upload_id: str
    asset_id: str
    # The track or album the file is for.
    target_id: str
    signed_url: str
    expires_at: datetime
    required_headers: dict[str, str]


def _with_article(noun: str) -> str:
    """``noun`` with its indefinite article, by its first letter: "an image", "a document"."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def validate(intent: str, spec: FileSpec) -> str:
    """The file's extension, once extension, content type and size are acceptable for ``intent``."""
    kind = KINDS[intent]
    extension = media_types.extension_of(spec.file_name)
    if extension not in kind.accepted:
        raise UnsupportedMediaType(
            f"'{spec.file_name}' is not a supported {kind.noun} ({media_types.accepted_summary(kind.accepted)}).",
            field="fileName",
        )
    if not media_types.is_accepted(spec.file_name, spec.content_type, kind.accepted):
        raise UnsupportedMediaType(
            f"Content type '{spec.content_type}' does not match a .{extension} file.", field="contentType"
        )
    if spec.byte_size == 0:
        raise EmptyFile(f"The file is empty (byteSize 0); choose a non-empty {kind.noun}.", field="byteSize")
    if spec.byte_size > kind.max_bytes:
        raise FileTooLarge(
            f"{_with_article(kind.noun).capitalize()} is limited to {kind.max_bytes} bytes.", limit=kind.max_bytes
        )
    return extension


def create_track_artwork(owner_id: str, track_id: str, spec: FileSpec) -> CreatedMediaUpload:
    extension = validate(TRACK_ARTWORK, spec)
    tracks.get_owned(track_id, owner_id)
    entitlements.require_upload(owner_id)
    return _create(TRACK_ARTWORK, owner_id, track_id, spec, extension)


def create_album_cover(owner_id: str, album_id: str, spec: FileSpec) -> CreatedMediaUpload:
    extension = validate(ALBUM_COVER, spec)
    albums.get_owned(album_id, owner_id)
    entitlements.require_upload(owner_id)
    return _create(ALBUM_COVER, owner_id, album_id, spec, extension, album_id=album_id)


def create_document(owner_id: str, track_id: str, spec: FileSpec) -> CreatedMediaUpload:
    extension = validate(TRACK_DOCUMENT, spec)
    track = tracks.get_owned(track_id, owner_id)
    entitlements.require_upload(owner_id)
    # Refused early when the track is already full; the put event's conditional write is the guard.
    if len(stored_documents(track)) >= MAX_DOCUMENTS:
        raise DocumentLimitReached(f"A track holds at most {MAX_DOCUMENTS} documents; delete one first.")
    return _create(TRACK_DOCUMENT, owner_id, track_id, spec, extension)


def _create(
    intent: str, owner_id: str, target_id: str, spec: FileSpec, extension: str, *, album_id: str | None = None
) -> CreatedMediaUpload:
    current = settings()
    upload_id, asset_id = ids.new_id(), ids.new_id()
    now = utcnow()
    url_expires_at = now + timedelta(seconds=current.upload_url_ttl_s)
    content_type = media_types.normalized_content_type(spec.content_type)
    object_key = keys.media_upload(upload_id, KINDS[intent].object_name, extension)
    uploads.pending_intent(
        upload_id,
        owner_id=owner_id,
        track_id=target_id,
        asset_id=asset_id,
        intent=intent,
        object_key=object_key,
        file_name=spec.file_name,
        content_type=content_type,
        byte_size=spec.byte_size,
        now=now,
        expires_at=url_expires_at,
        album_id=album_id,
    ).save(condition=UploadModel.upload_id.does_not_exist())
    signed = storage.presign_put(
        object_key, content_type=content_type, content_length=spec.byte_size, expires_in=current.upload_url_ttl_s
    )
    return CreatedMediaUpload(upload_id, asset_id, target_id, signed.url, url_expires_at, signed.headers)


# --- images: the source an upload makes ------------------------------------------------------------


def image_source(upload: UploadModel) -> dict[str, str]:
    """What ``image_source`` holds for an uploaded image. ``uploadedAt`` (when it was finalized)
    orders uploads: the newest wins however late an older one's event arrives."""
    finalized_at = upload.finalized_at or upload.created_at
    return {
        # The copy finalize verified, not the upload key a signed URL can still write to.
        "key": uploads.kept_key(upload),
        "origin": "upload",
        "contentType": upload.content_type,
        "uploadId": upload.upload_id,
        "uploadedAt": finalized_at.isoformat(),
    }


def _is_newer(current: dict[str, Any], source: dict[str, str]) -> bool:
    if current.get("origin") != "upload":
        return False  # an embedded cover never beats an upload
    return (current.get("uploadedAt", ""), current.get("uploadId", "")) > (source["uploadedAt"], source["uploadId"])


def adopt_track_image(upload: UploadModel) -> bool:
    """Makes the uploaded image the track's image source unless a newer upload already is. True
    when it is the source now (also when it already was: the event was delivered again)."""
    return _adopt(TrackModel, (upload.track_id, TrackModel.TRACK_SK), image_source(upload), TrackDeleted)


def adopt_album_cover(upload: UploadModel) -> bool:
    """As ``adopt_track_image``, for the album's cover."""
    return _adopt(AlbumModel, (upload.track_id, AlbumModel.ALBUM_SK), image_source(upload), AlbumNotFound)


def _adopt(model: Any, key: tuple[str, str], source: dict[str, str], gone: type[Exception]) -> bool:
    """A compare-and-set on ``image_source``: the write holds only if the source read is still
    there, so a concurrent offer (an embedded cover, another upload, a removal) is never lost."""
    for _ in range(MAX_ATTEMPTS):
        item = reads.get_or_none(model, *key, consistent_read=True)
        if item is None:
            raise gone("It was deleted.")
        current = item.image_source
        if current and current.get("uploadId") == source["uploadId"]:
            return True
        if current and _is_newer(current, source):
            return False
        unchanged = model.image_source == current if current else model.image_source.does_not_exist()
        if not writes.update_if(
            item, [model.image_source.set(source), model.updated_at.set(utcnow())], model.pk.exists() & unchanged
        ):
            continue
        if current and current.get("origin") == "upload" and current.get("key"):
            # The image it replaced was uploaded too: nothing renders it any more. (An embedded
            # cover lives under the track's artwork prefix; the artwork lane sweeps it.)
            storage.delete(current["key"])
        return True
    raise ConcurrentUpdate("The image kept changing while it was being replaced; upload it again.")


def store_track_artwork(track_id: str, source: dict[str, Any], record: dict[str, Any]) -> bool:
    """Writes the rendered artwork if ``source`` is still the track's image (a render of a
    replaced or removed image must not overwrite the newer one). Raises TrackDeleted."""
    if not writes.update_if(
        TrackModel(track_id, TrackModel.TRACK_SK),
        [TrackModel.artwork.set(record), TrackModel.updated_at.set(utcnow())],
        TrackModel.pk.exists() & (TrackModel.image_source == source),
    ):
        if tracks.find(track_id) is None:
            raise TrackDeleted("The track was deleted.", trackId=track_id)
        return False
    return True


def image_replaced(track_id: str, source: dict[str, Any]) -> bool:
    track = tracks.find(track_id)
    return track is None or track.image_source != source


def store_album_cover(album_id: str, source: dict[str, Any], record: dict[str, Any]) -> bool:
    """Writes the rendered cover and bumps the album's revision (so its ETag changes) if ``source``
    is still the album's cover image; False when it was replaced or the album deleted."""
    return writes.update_if(
        AlbumModel(album_id, AlbumModel.ALBUM_SK),
        [AlbumModel.artwork.set(record), AlbumModel.revision.add(1), AlbumModel.updated_at.set(utcnow())],
        AlbumModel.pk.exists() & (AlbumModel.image_source == source),
    )


# --- documents -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Document:
    document_id: str
    file_name: str
    content_type: str
    byte_size: int
    created_at: str
    key: str


def stored_documents(track: TrackModel) -> dict[str, dict[str, Any]]:
    """The track's ``documents`` map as plain dicts, by document id."""
    return dict(track.documents.as_dict()) if track.documents is not None else {}  # type: ignore[no-untyped-call]


def _document(document_id: str, data: dict[str, Any]) -> Document:
    return Document(
        document_id=document_id,
        file_name=str(data["fileName"]),
        content_type=str(data["contentType"]),
        byte_size=int(data["byteSize"]),
        created_at=str(data["createdAt"]),
        key=str(data["key"]),
    )


def documents(track: TrackModel) -> list[Document]:
    """The track's documents, oldest first."""
    found = [_document(document_id, value) for document_id, value in stored_documents(track).items()]
    return sorted(found, key=lambda document: (document.created_at, document.document_id))


def list_documents(owner_id: str, track_id: str) -> list[Document]:
    return documents(tracks.get_owned(track_id, owner_id))


def get_document(owner_id: str, track_id: str, document_id: str) -> Document:
    track = tracks.get_owned(track_id, owner_id)
    for document in documents(track):
        if document.document_id == document_id:
            return document
    raise DocumentNotFound("No such document on this track.")


def record_document(upload: UploadModel) -> None:
    """Adds the uploaded document to its track, once: the write is conditional on its id being
    absent (a repeated event changes nothing) and on the track holding fewer than MAX_DOCUMENTS.
    Raises DocumentLimitReached or TrackDeleted."""
    item = TrackModel(upload.track_id, TrackModel.TRACK_SK)
    entry = {
        "fileName": upload.file_name,
        "contentType": upload.content_type,
        "byteSize": int(upload.byte_size),
        "key": uploads.kept_key(upload),
        "uploadId": upload.upload_id,
        "createdAt": (upload.finalized_at or utcnow()).isoformat(),
    }
    path: Any = TrackModel.documents[upload.asset_id]  # type: ignore[index]
    documents_attribute: Any = TrackModel.documents
    # A nested path can only be set inside a map that exists.
    map_there = writes.update_if(item, [documents_attribute.set(documents_attribute | {})], TrackModel.pk.exists())
    if map_there and writes.update_if(
        item,
        [path.set(entry), TrackModel.updated_at.set(utcnow())],
        TrackModel.pk.exists() & path.does_not_exist() & (size(documents_attribute) < MAX_DOCUMENTS),  # type: ignore[no-untyped-call]
    ):
        return
    track = tracks.find(upload.track_id)
    if track is None:
        raise TrackDeleted("The track was deleted.", trackId=upload.track_id)
    if upload.asset_id in stored_documents(track):
        return  # recorded by an earlier delivery of the same event
    raise DocumentLimitReached(f"A track holds at most {MAX_DOCUMENTS} documents; delete one and upload again.")


def delete_document(owner_id: str, track_id: str, document_id: str) -> None:
    """Removes the document from the track (conditional on it being there: a second DELETE is
    'not found'), then its object."""
    document = get_document(owner_id, track_id, document_id)
    path: Any = TrackModel.documents[document_id]  # type: ignore[index]
    if not writes.update_if(
        TrackModel(track_id, TrackModel.TRACK_SK),
        [path.remove(), TrackModel.updated_at.set(utcnow())],
        TrackModel.pk.exists() & path.exists(),
    ):
        raise DocumentNotFound("No such document on this track.")
    storage.delete(document.key)
