"""S3 key layout, in one place."""

from __future__ import annotations

from pathlib import PurePosixPath

# The bucket's three top-level prefixes, declared once: the CDK stack grants and filters on these
# (stacks/constructs/storage.py). Clients PUT under uploads/ only; each track and album keeps
# everything it owns (kept uploads, renditions, artwork, covers) under its own prefix.
UPLOADS_PREFIX = "uploads/"
TRACKS_PREFIX = "tracks/"
ALBUMS_PREFIX = "albums/"
# Catalog-wide derived data, rebuilt from the tables (the autotag lane's reference examples).
REFERENCES_PREFIX = "references/"
AUTOTAG_REFERENCES = f"{REFERENCES_PREFIX}autotag-examples.json"


def original(upload_id: str, extension: str) -> str:
    """Where the client PUTs an original; the S3 event for this prefix finalizes it."""
    return f"{UPLOADS_PREFIX}{upload_id}/original.{extension}"


def kept_upload(owner_prefix: str, upload_id: str, staged_key: str) -> str:
    """Where finalize keeps an upload's file once it has verified it: copied out of ``uploads/``
    (where a still-valid signed URL could overwrite it) into the prefix of what it belongs to
    (``track_prefix`` or ``album_prefix``), named after the upload so versions never collide.
    Deleting the track or album deletes it with the rest."""
    name = PurePosixPath(staged_key).name
    return f"{owner_prefix}{KEPT_FOLDER}{upload_id}/{name}"


# The folder, under a track's or album's prefix, of the files finalize kept (``kept_upload``).
KEPT_FOLDER = "uploaded/"


def media_upload(upload_id: str, kind: str, extension: str) -> str:
    """Where the client PUTs an image or a document (``kind``: artwork, cover, document); under
    ``uploads/`` so that its S3 event finalizes it like an original."""
    return f"{UPLOADS_PREFIX}{upload_id}/{kind}.{extension}"


def rendition(track_id: str, fmt: str, extension: str, *, version: str | None = None) -> str:
    """A streaming rendition. A new version's (``version``: its upload id) sit in the version's own
    folder, so processing it never overwrites what listeners are streaming."""
    return f"{_outputs_folder(track_id, version)}renditions/{fmt}.{extension}"


def waveform(track_id: str, *, version: str | None = None) -> str:
    """The waveform lane's peaks, every bucket count in one JSON object (the track keeps the key)."""
    return f"{_outputs_folder(track_id, version)}waveform.json"


def lane_result(track_id: str, lane: str, *, version: str | None = None) -> str:
    """An external processor's answer too large to keep on the lane item (and in the workflow's
    state, which Step Functions caps at 256 KiB): stored here, the lane keeps the key."""
    return f"{_outputs_folder(track_id, version)}lanes/{lane}.json"


def client_waveform(track_id: str, upload_id: str) -> str:
    """The advisory peaks a client sent with its finalize: kept beside the file it uploaded (where
    finalize may already write), never where the waveform lane stores the measured ones."""
    return f"{track_prefix(track_id)}{KEPT_FOLDER}{upload_id}/waveform.json"


def version_prefix(track_id: str, upload_id: str) -> str:
    """What processing a new version of the track stores (renditions, waveform): under the track's
    prefix, so deleting the track deletes it too."""
    return f"{TRACKS_PREFIX}{track_id}/versions/{upload_id}/"


def _outputs_folder(track_id: str, version: str | None) -> str:
    return version_prefix(track_id, version) if version else track_prefix(track_id)


def embedded_cover(track_id: str, extension: str) -> str:
    """The cover found in the audio's tags, kept as the artwork lane's source image."""
    return f"{TRACKS_PREFIX}{track_id}/artwork/source-embedded.{extension}"


def artwork_variant(track_id: str, size: int, extension: str, *, version: str | None = None) -> str:
    """A rendered variant. An uploaded image's variants sit in a folder of their own (``version``:
    the upload id), so a render of an image that was replaced meanwhile never overwrites them."""
    folder = f"{version}/" if version else ""
    return f"{TRACKS_PREFIX}{track_id}/artwork/{folder}{size}.{extension}"


def upload_id_from_key(key: str) -> str | None:
    """The upload id an ``uploads/`` object key belongs to, or None for any other key."""
    if not key.startswith(UPLOADS_PREFIX):
        return None
    parts = key[len(UPLOADS_PREFIX) :].split("/")
    return parts[0] if len(parts) == 2 and parts[0] else None


def track_prefix(track_id: str) -> str:
    """Everything the workflow stores for a track lives under this prefix (renditions, waveform,
    artwork): deleting the track deletes the prefix."""
    return f"{TRACKS_PREFIX}{track_id}/"


def artwork_prefix(track_id: str) -> str:
    """The track's artwork: the embedded cover kept as the source image and the rendered variants."""
    return f"{TRACKS_PREFIX}{track_id}/artwork/"


def album_prefix(album_id: str) -> str:
    """Everything stored for an album (its cover variants): deleting the album deletes the prefix."""
    return f"{ALBUMS_PREFIX}{album_id}/"


def album_cover_prefix(album_id: str) -> str:
    return f"{ALBUMS_PREFIX}{album_id}/cover/"


def album_cover_variant(album_id: str, version: str, size: int, extension: str) -> str:
    """A rendered cover variant, in a folder per cover upload (``version``: the upload id)."""
    return f"{ALBUMS_PREFIX}{album_id}/cover/{version}/{size}.{extension}"


def posted_upload(upload_id: str, kind: str) -> str:
    """Where a browser-form POST stores a file whose type is only known once it is stored (the
    upload-session contract's track cover): no extension; under ``uploads/`` so that its S3 event
    finalizes it."""
    return f"{UPLOADS_PREFIX}{upload_id}/{kind}"
