"""What a rerun of ``tracklane upload`` needs to continue: one small JSON file per upload (or per
album upload) in a cache directory.

The file is named by a digest of what makes an upload "the same one again": the API's URL, the
token's user, the file's absolute path, size and modification time (and for an album its name and
every file in order). A file that was edited since is therefore a new upload, and nothing about a
file survives in the name. Writes go to a temporary file renamed into place, so Ctrl-C at any moment
leaves either the old state or the new one. Nothing secret is kept: ids and part counts, never the
token or a signed URL.

Where: ``$TRACKLANE_UPLOAD_STATE_DIR`` if set, else ``$XDG_CACHE_HOME/tracklane/uploads``, else
``~/.cache/tracklane/uploads``. Files untouched for 30 days are removed on the next run (an intent
lives at most 7 days, so nothing older can be resumed).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

MAX_AGE_S = 30 * 24 * 3600


def default_directory() -> Path:
    explicit = os.environ.get("TRACKLANE_UPLOAD_STATE_DIR")
    if explicit:
        return Path(explicit)
    cache = os.environ.get("XDG_CACHE_HOME")
    return (Path(cache) if cache else Path.home() / ".cache") / "tracklane" / "uploads"


def file_identity(path: Path) -> str:
    """The file as this run sees it: absolute path, size, modification time (ns)."""
    stat = path.stat()
    return f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}"


class StateStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @staticmethod
    def key(*parts: str) -> str:
        return hashlib.sha256("\0\0".join(parts).encode()).hexdigest()[:40]

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        try:
            data = json.loads(self.path(key).read_text())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def save(self, key: str, data: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self.path(key)
        partial = target.with_name(f".{target.name}.{os.getpid()}")
        partial.write_text(json.dumps({**data, "savedAt": int(time.time())}, indent=2) + "\n")
        partial.chmod(0o600)
        partial.replace(target)

    def drop(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def prune(self, max_age_s: float = MAX_AGE_S, now: float | None = None) -> int:
        """Removes state files older than ``max_age_s``; how many."""
        cutoff = (time.time() if now is None else now) - max_age_s
        removed = 0
        for candidate in self.directory.glob("*.json") if self.directory.is_dir() else ():
            try:
                if candidate.stat().st_mtime < cutoff:
                    candidate.unlink()
                    removed += 1
            except OSError:
                continue
        return removed
