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

Each counts in its owner's storage quota (``functions.domain.catalog.usage``): the intent reserves
its declared size in the transaction that saves it, the claim settles it at the stored size, a
rendered image's variants add theirs, and deleting the document or replacing the image (in the
transaction that does it) gives the bytes back.

This module holds the domain side; ``functions.domain.intake.finalize`` orchestrates the put event and
``functions.domain.processing.steps`` renders the images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pynamodb.expressions.condition import size

from functions import ids
from functions.data import keys, reads, storage, writes
from functions.data.models import AlbumModel, TrackModel, UploadModel, utcnow
from functions.domain.catalog import albums, entitlements, tracks, usage
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
from functions.observability import logger
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
    allowance = entitlements.require_audio_upload(owner_id)
    return _create(TRACK_ARTWORK, allowance, track_id, spec, extension)


def create_album_cover(owner_id: str, album_id: str, spec: FileSpec) -> CreatedMediaUpload:
    extension = validate(ALBUM_COVER, spec)
    albums.get_owned(album_id, owner_id)
    allowance = entitlements.require_audio_upload(owner_id)
    return _create(ALBUM_COVER, allowance, album_id, spec, extension, album_id=album_id)


def create_document(owner_id: str, track_id: str, spec: FileSpec) -> CreatedMediaUpload:
    extension = validate(TRACK_DOCUMENT, spec)
    track = tracks.get_owned(track_id, owner_id)
    allowance = entitlements.require_audio_upload(owner_id)
    # Refused early when the track is already full; the put event's conditional write is the guard.
    if len(stored_documents(track)) >= MAX_DOCUMENTS:
        raise DocumentLimitReached(f"A track holds at most {MAX_DOCUMENTS} documents; delete one first.")
    return _create(TRACK_DOCUMENT, allowance, track_id, spec, extension)


def _create(
    intent: str,
    allowance: usage.Allowance,
    target_id: str,
    spec: FileSpec,
    extension: str,
    *,
    album_id: str | None = None,
) -> CreatedMediaUpload:
    owner_id = allowance.owner_id
    current = settings()
    upload_id, asset_id = ids.new_id(), ids.new_id()
    now = utcnow()
    url_expires_at = now + timedelta(seconds=current.upload_url_ttl_s)
    content_type = media_types.normalized_content_type(spec.content_type)
    object_key = keys.media_upload(upload_id, KINDS[intent].object_name, extension)
    upload = uploads.pending_intent(
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
        # Held of the owner's storage quota until finalized or released, like audio; but it is no
        # pending audio intent (functions.domain.catalog.usage).
        reserved_bytes=spec.byte_size,
    )

    def write(tx: writes.ConditionalTransaction) -> None:
        tx.save(upload, condition=UploadModel.upload_id.does_not_exist())

    # The intent and its reservation: both, or neither (storage_quota_exceeded).
    tx = usage.reserving(allowance, upload, write, counts_pending=False)
    if not tx.committed:
        tx.raise_refusal()  # a fresh id: only a failure could refuse it
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
    there, so a concurrent offer (an embedded cover, another upload, a removal) is never lost. An
    uploaded image it replaces stops counting in the owner's usage in the same transaction."""
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
        actions = [model.image_source.set(source), model.updated_at.set(utcnow())]
        condition = model.pk.exists() & unchanged
        replaced = (current or {}).get("uploadId") if (current or {}).get("origin") == "upload" else None
        if replaced:
            write = _update_in(item, actions, condition)
            adopted = usage.releasing_media(item.owner_id, key[0], replaced, write).committed
        else:
            adopted = writes.update_if(item, actions, condition)
        if not adopted:
            continue
        if current and current.get("origin") == "upload" and current.get("key"):
            # The image it replaced was uploaded too: nothing renders it any more. (An embedded
            # cover lives under the track's artwork prefix; the artwork lane sweeps it.)
            storage.delete(current["key"])
        return True
    raise ConcurrentUpdate("The image kept changing while it was being replaced; upload it again.")


def _update_in(item: Any, actions: list[Any], condition: Any) -> Callable[[writes.ConditionalTransaction], None]:
    """What adds the update of ``item`` to a transaction."""
    return lambda tx: tx.update(item, actions, condition=condition)


def store_track_artwork(track_id: str, source: dict[str, Any], record: dict[str, Any], *, owner_id: str) -> bool:
    """Writes the rendered artwork if ``source`` is still the track's image (a render of a
    replaced or removed image must not overwrite the newer one), and counts its variants with an
    uploaded image's bytes. Raises TrackDeleted."""
    if not _store_rendered(
        owner_id,
        TrackModel(track_id, TrackModel.TRACK_SK),
        source,
        record,
        actions=[TrackModel.artwork.set(record), TrackModel.updated_at.set(utcnow())],
        condition=TrackModel.pk.exists() & (TrackModel.image_source == source),
    ):
        if tracks.find(track_id) is None:
            raise TrackDeleted("The track was deleted.", trackId=track_id)
        return False
    return True


def _store_rendered(
    owner_id: str, item: Any, source: dict[str, Any], record: dict[str, Any], *, actions: list[Any], condition: Any
) -> bool:
    """The write of a rendered image (``actions`` on ``item``, under ``condition``: the image is
    still the one rendered) with, for an uploaded image that counts in its owner's usage, its
    variants' bytes on the image's ledger (``usage.count_variants``, replacing what an earlier
    render of the same image counted). False when ``condition`` refused it."""
    uploaded = source.get("uploadId") if source.get("origin") == "upload" else None
    variant_bytes = sum(int(variant.get("byteSize") or 0) for variant in record.get("variants", []))
    for _ in range(MAX_ATTEMPTS):
        ledger = usage.media_ledger(owner_id, item.pk, uploaded) if uploaded else None
        if ledger is None:  # an embedded cover, or an image stored before images counted
            return writes.update_if(item, actions, condition)
        with writes.conditional_transaction() as tx:
            tx.update(item, actions, condition=condition)
            usage.count_variants(tx, owner_id, ledger, variant_bytes)
        if tx.committed:
            return True
        if tx.refused(item):
            return False
        # The ledger changed under it (released by a newer image, or another render counted).
    logger.warning("rendered variants not counted: the image's ledger kept changing", extra={"upload_id": uploaded})
    return writes.update_if(item, actions, condition)


def image_replaced(track_id: str, source: dict[str, Any]) -> bool:
    track = tracks.find(track_id)
    return track is None or track.image_source != source


def store_album_cover(album_id: str, source: dict[str, Any], record: dict[str, Any], *, owner_id: str) -> bool:
    """Writes the rendered cover and bumps the album's revision (so its ETag changes) if ``source``
    is still the album's cover image, and counts its variants with the cover's bytes; False when it
    was replaced or the album deleted."""
    return _store_rendered(
        owner_id,
        AlbumModel(album_id, AlbumModel.ALBUM_SK),
        source,
        record,
        actions=[AlbumModel.artwork.set(record), AlbumModel.revision.add(1), AlbumModel.updated_at.set(utcnow())],
        condition=AlbumModel.pk.exists() & (AlbumModel.image_source == source),
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
    upload_id: str


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
        upload_id=str(data["uploadId"]),
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


def forget_document(upload: UploadModel) -> None:
    """Takes back the document ``record_document`` recorded for an upload whose claim then found
    the intent expired (it is not stored, and counts nothing)."""
    path: Any = TrackModel.documents[upload.asset_id]  # type: ignore[index]
    writes.update_if(
        TrackModel(upload.track_id, TrackModel.TRACK_SK),
        [path.remove()],
        TrackModel.pk.exists() & (path["uploadId"] == upload.upload_id),
    )


def delete_document(owner_id: str, track_id: str, document_id: str) -> None:
    """Removes the document from the track (conditional on it being there: a second DELETE is
    'not found') and takes its bytes off the owner's usage in the same transaction, then deletes
    its object."""
    document = get_document(owner_id, track_id, document_id)
    path: Any = TrackModel.documents[document_id]  # type: ignore[index]
    track = TrackModel(track_id, TrackModel.TRACK_SK)

    def write(tx: writes.ConditionalTransaction) -> None:
        tx.update(track, [path.remove(), TrackModel.updated_at.set(utcnow())], TrackModel.pk.exists() & path.exists())

    if not usage.releasing_media(owner_id, track_id, document.upload_id, write).committed:
        raise DocumentNotFound("No such document on this track.")
    storage.delete(document.key)
