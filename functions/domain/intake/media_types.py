"""Which files an upload intent accepts: extension and MIME type are checked together."""

from __future__ import annotations

from pathlib import PurePosixPath

# The one declaration of what each kind of upload accepts: extension -> the MIME types accepted for
# it, the one to send first. Browsers disagree (``audio/x-m4a`` or ``audio/mp4`` for the same file)
# and give no type at all (``File.type == ""``) for some extensions; a client without a type sends
# the first one. ``application/octet-stream`` is never accepted: the type is stored with the
# original and served with it. docs/api.md's content-type table is checked against these
# (tests/unit/test_media_types.py).
AUDIO_FILES: dict[str, tuple[str, ...]] = {
    "wav": ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"),
    "mp3": ("audio/mpeg", "audio/mp3"),
    "flac": ("audio/flac", "audio/x-flac"),
    "aiff": ("audio/aiff", "audio/x-aiff"),
    "aif": ("audio/aiff", "audio/x-aiff"),
    "ogg": ("audio/ogg", "application/ogg"),
    "opus": ("audio/opus", "audio/ogg"),
    "m4a": ("audio/mp4", "audio/x-m4a", "audio/m4a", "audio/aac"),
    "aac": ("audio/aac", "audio/x-aac", "audio/aacp"),
    "webm": ("audio/webm",),
}
# Artwork and album covers: what the artwork lane decodes (functions.media.artwork), at most 20 MB.
IMAGE_FILES: dict[str, tuple[str, ...]] = {
    "jpg": ("image/jpeg", "image/pjpeg"),
    "jpeg": ("image/jpeg", "image/pjpeg"),
    "png": ("image/png",),
    "webp": ("image/webp",),
    "gif": ("image/gif",),
}
# Documents stored beside a track (liner notes, lyrics sheets, credits): kept as uploaded, never
# opened by the backend.
DOCUMENT_FILES: dict[str, tuple[str, ...]] = {
    "pdf": ("application/pdf",),
    "txt": ("text/plain",),
}


def _accepted(files: dict[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    return {extension: frozenset(types) for extension, types in files.items()}


AUDIO_TYPES = _accepted(AUDIO_FILES)
IMAGE_TYPES = _accepted(IMAGE_FILES)
MAX_IMAGE_BYTES = 20 * 1024 * 1024
DOCUMENT_TYPES = _accepted(DOCUMENT_FILES)
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024


def preferred_type(extension: str, files: dict[str, tuple[str, ...]] = AUDIO_FILES) -> str:
    """The type to send for a file of ``extension`` when the client has none of its own."""
    return files[extension][0]


def extension_of(file_name: str) -> str:
    return PurePosixPath(file_name).suffix.lower().removeprefix(".")


def normalized_content_type(content_type: str) -> str:
    """``Audio/WAV; codecs=1`` -> ``audio/wav``: parameters and case do not change the type."""
    return content_type.split(";", 1)[0].strip().lower()


def is_accepted(file_name: str, content_type: str, accepted: dict[str, frozenset[str]] = AUDIO_TYPES) -> bool:
    return normalized_content_type(content_type) in accepted.get(extension_of(file_name), frozenset())


def accepted_summary(accepted: dict[str, frozenset[str]] = AUDIO_TYPES) -> str:
    return ", ".join(f".{ext}" for ext in accepted)
