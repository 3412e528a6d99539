"""Which files an upload intent accepts: extension and MIME type are checked together."""

from __future__ import annotations

from pathlib import PurePosixPath

# extension -> MIME types a browser or client may reasonably send for it
AUDIO_TYPES: dict[str, frozenset[str]] = {
    "wav": frozenset({"audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"}),
    "mp3": frozenset({"audio/mpeg", "audio/mp3"}),
    "flac": frozenset({"audio/flac", "audio/x-flac"}),
    "aiff": frozenset({"audio/aiff", "audio/x-aiff"}),
    "aif": frozenset({"audio/aiff", "audio/x-aiff"}),
    "ogg": frozenset({"audio/ogg", "application/ogg"}),
    "opus": frozenset({"audio/opus", "audio/ogg"}),
    "m4a": frozenset({"audio/mp4", "audio/x-m4a", "audio/m4a", "audio/aac"}),
    "aac": frozenset({"audio/aac", "audio/x-aac", "audio/aacp"}),
    "webm": frozenset({"audio/webm"}),
}

# Artwork and album covers: what the artwork lane decodes (functions.media.artwork), at most 20 MB.
IMAGE_TYPES: dict[str, frozenset[str]] = {
    "jpg": frozenset({"image/jpeg", "image/pjpeg"}),
    "jpeg": frozenset({"image/jpeg", "image/pjpeg"}),
    "png": frozenset({"image/png"}),
    "webp": frozenset({"image/webp"}),
    "gif": frozenset({"image/gif"}),
}
MAX_IMAGE_BYTES = 20 * 1024 * 1024
# Documents stored beside a track (liner notes, lyrics sheets, credits): kept as uploaded, never
# opened by the backend.
DOCUMENT_TYPES: dict[str, frozenset[str]] = {
    "pdf": frozenset({"application/pdf"}),
    "txt": frozenset({"text/plain"}),
}
MAX_DOCUMENT_BYTES = 10 * 1024 * 1024


def extension_of(file_name: str) -> str:
    return PurePosixPath(file_name).suffix.lower().removeprefix(".")


def normalized_content_type(content_type: str) -> str:
    """``Audio/WAV; codecs=1`` -> ``audio/wav``: parameters and case do not change the type."""
    return content_type.split(";", 1)[0].strip().lower()


def is_accepted(file_name: str, content_type: str, accepted: dict[str, frozenset[str]] = AUDIO_TYPES) -> bool:
    return normalized_content_type(content_type) in accepted.get(extension_of(file_name), frozenset())


def accepted_summary(accepted: dict[str, frozenset[str]] = AUDIO_TYPES) -> str:
    return ", ".join(f".{ext}" for ext in accepted)
