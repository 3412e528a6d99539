"""What became of each file, as ``--json`` prints it and as the exit code sums it up."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Exit codes (docs/cli.md): every file ready or a duplicate of a track the user has -> OK.
EXIT_OK = 0
EXIT_FAILED = 1  # a file was refused, or its processing failed
EXIT_USAGE = 2  # bad options or files: nothing was uploaded
EXIT_UNREACHABLE = 75  # the API or storage could not be reached (EX_TEMPFAIL): run it again
EXIT_INTERRUPTED = 130  # Ctrl-C (128 + SIGINT): run it again to resume

# ready: processed and playable; duplicate: the user already has a track with these bytes
# (``trackId`` is that track); failed: processing failed; refused: the API refused the file (the
# intent, or the stored bytes at finalize); interrupted: stopped by Ctrl-C; unreachable: the network
# failed; timeout: no verdict within --timeout (processing goes on: run it again to follow it).
SUCCESS = {"ready", "duplicate"}
RESUMABLE = {"interrupted", "unreachable", "timeout"}


@dataclass
class Result:
    file: str
    status: str
    byte_size: int = 0
    upload_id: str | None = None
    track_id: str | None = None
    album_id: str | None = None
    position: int | None = None
    code: str | None = None
    message: str | None = None
    multipart: bool = False
    part_size: int | None = None
    part_count: int | None = None
    parts_uploaded: int = 0
    parts_resumed: int = 0
    # Whether this run continued an upload an earlier run had started.
    resumed: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "status": self.status,
            "uploadId": self.upload_id,
            "trackId": self.track_id,
            "albumId": self.album_id,
            "position": self.position,
            "code": self.code,
            "message": self.message,
            "byteSize": self.byte_size,
            "multipart": self.multipart,
            "partSize": self.part_size,
            "partCount": self.part_count,
            "partsUploaded": self.parts_uploaded,
            "partsResumed": self.parts_resumed,
            "resumed": self.resumed,
        }


def exit_code(results: list[Result]) -> int:
    """The worst outcome wins: interrupted over unreachable over failed."""
    statuses = {result.status for result in results}
    if "interrupted" in statuses:
        return EXIT_INTERRUPTED
    if statuses & {"unreachable", "timeout"}:
        return EXIT_UNREACHABLE
    if statuses - SUCCESS:
        return EXIT_FAILED
    return EXIT_OK
