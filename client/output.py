"""What the user sees: a rich progress bar per file (bytes sent, then the processing lanes) and one
line per file at the end; or, with ``--json``, no bars and one JSON object per file on stdout.

Bars and notices go to stderr, results to stdout, so ``tracklane upload ... > results.txt`` keeps
only the results. Reporters are called from worker threads (parts, progress followers): rich's
Progress is thread-safe, and the JSON reporter only writes from the main thread.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any, Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TransferSpeedColumn,
)
from rich.text import Text

from client.results import SUCCESS, Result


class Reporter(Protocol):
    def start(self, slot: int, name: str, byte_size: int) -> None: ...
    def sent(self, slot: int, byte_count: int) -> None: ...
    def processing(self, slot: int, message: str, percent: float | None) -> None: ...
    def notice(self, message: str) -> None: ...
    def done(self, slot: int, result: Result) -> None: ...
    def close(self, results: list[Result]) -> None: ...


def describe(result: Result) -> str:
    """One line for a person: status, file, track, and why for anything but success."""
    parts = [f"{result.status:<11}", result.file]
    if result.position is not None:
        parts.insert(1, f"#{result.position}")
    if result.track_id:
        parts.append(result.track_id)
    if result.status not in SUCCESS and (result.code or result.message):
        parts.append(f"{result.code or 'error'}: {result.message or ''}".rstrip(": "))
    if result.status == "duplicate":
        parts.append("(you already have a track with these bytes)")
    return "  ".join(parts)


class _Amount(ProgressColumn):
    """Bytes while uploading (``DownloadColumn``), then the processing percentage."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes = DownloadColumn(binary_units=True)

    def render(self, task: Task) -> Text:
        if task.fields.get("stage") == "upload":
            return self._bytes.render(task)
        return Text(f"{task.percentage:>5.0f}%", style="progress.percentage")


class _Speed(ProgressColumn):
    def __init__(self) -> None:
        super().__init__()
        self._speed = TransferSpeedColumn()

    def render(self, task: Task) -> Text:
        return self._speed.render(task) if task.fields.get("stage") == "upload" else Text("")


class RichReporter:
    def __init__(self, out: TextIO | None = None, err: Console | None = None) -> None:
        self.out = out or sys.stdout
        self.console = err or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(bar_width=30),
            _Amount(),
            _Speed(),
            TextColumn("{task.fields[detail]}", style="dim"),
            console=self.console,
            # A pipe or a CI log gets the notices and the results, not bars redrawn in place.
            disable=not self.console.is_terminal,
        )
        self.tasks: dict[int, TaskID] = {}
        self.progress.start()

    def start(self, slot: int, name: str, byte_size: int) -> None:
        if slot not in self.tasks:
            self.tasks[slot] = self.progress.add_task(name, total=byte_size, stage="upload", detail="")

    def sent(self, slot: int, byte_count: int) -> None:
        self.progress.advance(self.tasks[slot], byte_count)

    def processing(self, slot: int, message: str, percent: float | None) -> None:
        task = self.tasks[slot]
        changes: dict[str, Any] = {"stage": "processing", "detail": message}
        if percent is not None:
            changes["completed"] = percent
        self.progress.update(task, total=100, **changes)

    def notice(self, message: str) -> None:
        self.progress.console.print(message, markup=False, highlight=False)

    def done(self, slot: int, result: Result) -> None:
        task = self.tasks.get(slot)
        if task is not None:
            detail = result.status if result.status in SUCCESS else f"{result.status}: {result.code or ''}"
            completed = 100 if result.status in SUCCESS else None
            self.progress.update(task, stage="processing", total=100, completed=completed, detail=detail)

    def close(self, results: list[Result]) -> None:
        self.progress.stop()
        for result in results:
            print(describe(result), file=self.out, flush=True)


class JsonReporter:
    """``--json``: no bars; notices on stderr; one JSON object per file, in argument order."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self._lock = threading.Lock()

    def start(self, slot: int, name: str, byte_size: int) -> None:
        pass

    def sent(self, slot: int, byte_count: int) -> None:
        pass

    def processing(self, slot: int, message: str, percent: float | None) -> None:
        pass

    def notice(self, message: str) -> None:
        with self._lock:
            print(message, file=self.err, flush=True)

    def done(self, slot: int, result: Result) -> None:
        pass

    def close(self, results: list[Result]) -> None:
        for result in results:
            print(json.dumps(result.to_json(), separators=(",", ":")), file=self.out, flush=True)
