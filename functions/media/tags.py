"""Embedded metadata (ID3, MP4 atoms, Vorbis comments, FLAC pictures), read with mutagen.

Only what the catalog uses is read: title, artist, album, genre, year, track and disc numbers, and
the front cover. Values are cleaned the way user input is (control characters dropped, whitespace
collapsed, bounded length) because a file's tags are input from whoever made the file.

mutagen reads from any seekable binary file object, so the workflow hands it a ranged reader over
the S3 object: tags are fetched, the audio in between is skipped.
"""

from __future__ import annotations

import base64
import re
import struct
import unicodedata
from dataclasses import dataclass
from typing import Any, BinaryIO

import mutagen
from mutagen.flac import Picture
from mutagen.id3 import ID3
from mutagen.mp4 import MP4Cover, MP4Tags

from functions.step_errors import StepFailed

MAX_TEXT_LENGTH = 256
# The artwork lane accepts images up to this size; a larger embedded cover is reported, not used.
MAX_COVER_BYTES = 20 * 1024 * 1024
# ID3 APIC picture type 3 and FLAC picture type 3 are both "Cover (front)".
FRONT_COVER = 3
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_YEAR = re.compile(r"(?<!\d)(1[0-9]{3}|20[0-9]{2})(?!\d)")
_POSITION = re.compile(r"\s*(\d{1,4})\s*(?:/\s*(\d{1,4})\s*)?")


# Image types by their leading bytes: a tag's declared MIME type is often wrong or missing.
_IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "jpg", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"GIF87a", "gif", "image/gif"),
    (b"GIF89a", "gif", "image/gif"),
)


@dataclass(frozen=True)
class EmbeddedCover:
    data: bytes
    mime: str | None

    def kind(self) -> tuple[str, str]:
        """``(extension, content type)`` from the bytes themselves; unknown -> ``("bin", ...)``,
        which the artwork lane then refuses with its own code."""
        if self.data[:4] == b"RIFF" and self.data[8:12] == b"WEBP":
            return "webp", "image/webp"
        for signature, extension, content_type in _IMAGE_SIGNATURES:
            if self.data.startswith(signature):
                return extension, content_type
        return "bin", "application/octet-stream"


@dataclass(frozen=True)
class EmbeddedTags:
    container: str | None
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    genre: str | None = None
    year: int | None = None
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    cover: EmbeddedCover | None = None
    # Why an embedded cover was found but not kept (e.g. too large), for processing-status.
    cover_note: str | None = None

    def fields(self) -> dict[str, Any]:
        """What the file says, in the API's camelCase, without empty values or the cover bytes."""
        values = {
            "title": self.title,
            "artist": self.artist,
            "album": self.album,
            "genre": self.genre,
            "year": self.year,
            "trackNumber": self.track_number,
            "trackTotal": self.track_total,
            "discNumber": self.disc_number,
        }
        return {name: value for name, value in values.items() if value is not None}


def read(fileobj: BinaryIO) -> EmbeddedTags:
    """The embedded tags of an audio file; a container mutagen does not know yields no tags."""
    try:
        audio = mutagen.File(fileobj)
    except mutagen.MutagenError as error:
        raise StepFailed(
            "tags_unreadable", "The file's embedded tags are damaged and were ignored; the audio is unaffected."
        ) from error
    if audio is None:
        return EmbeddedTags(container=None)
    container = type(audio).__name__
    tags = audio.tags
    if isinstance(tags, ID3):
        found = _from_id3(tags)
    elif isinstance(tags, MP4Tags):
        found = _from_mp4(tags)
    elif tags is not None and hasattr(tags, "as_dict"):  # Vorbis comments: FLAC, Ogg Vorbis/Opus
        found = _from_vorbis(tags.as_dict(), pictures=list(getattr(audio, "pictures", [])))
    else:
        found = {}
    if container == "WAVE":
        # DAWs tag WAV files with a RIFF INFO list, which mutagen does not read; ID3 wins where both exist.
        for name, value in _riff_info(fileobj).items():
            if found.get(name) is None:
                found[name] = value
    cover = found.pop("cover", None)
    note = None
    if cover is not None and len(cover.data) > MAX_COVER_BYTES:
        cover, note = None, f"The embedded cover is over {MAX_COVER_BYTES // (1024 * 1024)} MB and was not used."
    return EmbeddedTags(container=container, cover=cover, cover_note=note, **found)


# RIFF INFO sub-chunks -> the arguments of ``_common``.
_RIFF_INFO_FIELDS = {
    b"INAM": "title", b"IART": "artist", b"IPRD": "album", b"IGNR": "genre",
    b"ICRD": "date", b"ITRK": "track", b"IPRT": "track",
}  # fmt: skip
# A LIST chunk larger than this is not tags; it is skipped rather than read into memory.
_MAX_INFO_BYTES = 64 * 1024


def _riff_info(fileobj: BinaryIO) -> dict[str, Any]:
    """Tags from a WAV's ``LIST``/``INFO`` chunk, reading chunk headers only (the audio is skipped)."""
    raw: dict[str, object] = {}
    fileobj.seek(0)
    header = fileobj.read(12)
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return {}
    while True:
        chunk = fileobj.read(8)
        if len(chunk) < 8:
            break
        chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        padded = size + (size & 1)
        if chunk_id == b"LIST" and 4 <= size <= _MAX_INFO_BYTES:
            body = fileobj.read(padded)
            if body[:4] == b"INFO":
                raw.update(_info_entries(body[4:size]))
            continue
        fileobj.seek(padded, 1)
    if not raw:
        return {}
    arguments = {name: raw.get(name) for name in ("title", "artist", "album", "genre", "date", "track")}
    found = _common(**arguments, disc=None)
    return {name: value for name, value in found.items() if value is not None}


def _info_entries(body: bytes) -> dict[str, object]:
    entries: dict[str, object] = {}
    offset = 0
    while offset + 8 <= len(body):
        entry_id, size = body[offset : offset + 4], struct.unpack("<I", body[offset + 4 : offset + 8])[0]
        data = body[offset + 8 : offset + 8 + size].split(b"\x00", 1)[0]
        offset += 8 + size + (size & 1)
        field = _RIFF_INFO_FIELDS.get(entry_id)
        if field and data and field not in entries:
            try:
                entries[field] = data.decode("utf-8")
            except UnicodeDecodeError:
                entries[field] = data.decode("latin-1")
    return entries


def clean_text(value: object) -> str | None:
    text = unicodedata.normalize("NFC", str(value))
    text = re.sub(r"\s+", " ", _CONTROL.sub(" ", text)).strip()
    return text[:MAX_TEXT_LENGTH] or None


def _year(value: object) -> int | None:
    match = _YEAR.search(str(value))
    return int(match.group(1)) if match else None


def _position(value: object) -> tuple[int | None, int | None]:
    """``"3/12"`` -> (3, 12); ``"3"`` -> (3, None); a zero or garbage is no number."""
    match = _POSITION.fullmatch(str(value))
    if not match:
        return None, None
    number, total = int(match.group(1)), int(match.group(2)) if match.group(2) else None
    return number or None, total or None


def _first(values: list[Any] | None) -> Any:
    return values[0] if values else None


def _common(
    *, title: object, artist: object, album: object, genre: object, date: object, track: object, disc: object
) -> dict[str, Any]:
    track_number, track_total = _position(track) if track is not None else (None, None)
    disc_number, _ = _position(disc) if disc is not None else (None, None)
    return {
        "title": clean_text(title) if title is not None else None,
        "artist": clean_text(artist) if artist is not None else None,
        "album": clean_text(album) if album is not None else None,
        "genre": clean_text(genre) if genre is not None else None,
        "year": _year(date) if date is not None else None,
        "track_number": track_number,
        "track_total": track_total,
        "disc_number": disc_number,
    }


def _id3_text(tags: ID3, frame_id: str) -> Any:
    frame = tags.get(frame_id)
    return _first(list(frame.text)) if frame is not None and frame.text else None


def _from_id3(tags: ID3) -> dict[str, Any]:
    genre_frame = tags.get("TCON")
    # TCON.genres resolves ID3v1 numeric genres ("(13)" -> "Pop").
    genre = _first(genre_frame.genres) if genre_frame is not None else None
    found = _common(
        title=_id3_text(tags, "TIT2"),
        artist=_id3_text(tags, "TPE1"),
        album=_id3_text(tags, "TALB"),
        genre=genre,
        date=_id3_text(tags, "TDRC") or _id3_text(tags, "TYER"),
        track=_id3_text(tags, "TRCK"),
        disc=_id3_text(tags, "TPOS"),
    )
    pictures = tags.getall("APIC")
    chosen = next((p for p in pictures if p.type == FRONT_COVER), _first(pictures))
    if chosen is not None:
        found["cover"] = EmbeddedCover(bytes(chosen.data), chosen.mime or None)
    return found


def _from_mp4(tags: MP4Tags) -> dict[str, Any]:
    track = _first(tags.get("trkn"))
    disc = _first(tags.get("disk"))
    found = _common(
        title=_first(tags.get("\xa9nam")),
        artist=_first(tags.get("\xa9ART")),
        album=_first(tags.get("\xa9alb")),
        genre=_first(tags.get("\xa9gen")),
        date=_first(tags.get("\xa9day")),
        track=f"{track[0]}/{track[1]}" if track else None,
        disc=f"{disc[0]}" if disc else None,
    )
    cover = _first(tags.get("covr"))
    if cover is not None:
        mime = {MP4Cover.FORMAT_JPEG: "image/jpeg", MP4Cover.FORMAT_PNG: "image/png"}.get(cover.imageformat)
        found["cover"] = EmbeddedCover(bytes(cover), mime)
    return found


def _from_vorbis(comments: dict[str, list[str]], *, pictures: list[Picture]) -> dict[str, Any]:
    def value(name: str) -> str | None:
        values = comments.get(name)
        return values[0] if values else None

    found = _common(
        title=value("title"),
        artist=value("artist"),
        album=value("album"),
        genre=value("genre"),
        date=value("date") or value("year"),
        track=value("tracknumber"),
        disc=value("discnumber"),
    )
    if not found["track_total"] and value("tracktotal"):
        found["track_total"] = _position(value("tracktotal"))[0]
    # Ogg files carry pictures as base64 FLAC picture blocks in a comment.
    for encoded in comments.get("metadata_block_picture", []):
        try:
            pictures.append(Picture(base64.b64decode(encoded)))
        except (ValueError, mutagen.MutagenError):
            continue
    chosen = next((p for p in pictures if p.type == FRONT_COVER), _first(pictures))
    if chosen is not None:
        found["cover"] = EmbeddedCover(bytes(chosen.data), chosen.mime or None)
    return found
