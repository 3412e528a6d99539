"""What every file's upload shares in one run: the API, the resume state, the reporter, the stop
flag and the options that apply to all files."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from client.api import Api
from client.output import Reporter
from client.state import StateStore
from client.transfer import StopFlag

# The type to send for each audio extension (docs/api.md's "Send this contentType" column). An
# extension not listed is sent as application/octet-stream, which the API refuses with its own
# code (unsupported_media_type): the API, not this table, decides what is accepted.
CONTENT_TYPES = {
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
UNKNOWN_TYPE = "application/octet-stream"


def content_type(path: Path) -> str:
    return CONTENT_TYPES.get(path.suffix.lower().lstrip("."), UNKNOWN_TYPE)


@dataclass(frozen=True)
class FileSpec:
    """One FILE argument: its place on the command line (1-based), what to call it, its metadata."""

    slot: int
    path: Path
    byte_size: int
    title: str | None = None

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Context:
    api: Api
    store: StateStore
    reporter: Reporter
    stop: StopFlag
    # The API and the user: an upload is only "the same one" again for both.
    identity: str
    multipart_threshold: int
    part_size: int | None = None
    # Whether the API is known to take ``partSize`` (it publishes GET /v1/uploads/config).
    part_size_supported: bool | None = None
    parallel: int = 4
    timeout_s: float = 3600.0
    tags: list[str] = field(default_factory=list)
    visibility: str | None = None
    # Ignore saved state: every file starts a new upload.
    restart: bool = False
    # Test hook (--stop-after-parts): stop the run like Ctrl-C once this many parts are stored.
    stop_after_parts: int | None = None
    _parts_stored: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def part_stored(self) -> None:
        with self._lock:
            self._parts_stored += 1
            if self.stop_after_parts is not None and self._parts_stored >= self.stop_after_parts:
                self.stop.set(f"stopped after {self._parts_stored} part(s) (--stop-after-parts)")

    def metadata(self) -> dict[str, object]:
        """The intent fields every file gets (``--tags``, ``--visibility``)."""
        fields: dict[str, object] = {}
        if self.tags:
            fields["tags"] = list(self.tags)
        if self.visibility:
            fields["visibility"] = self.visibility
        return fields
