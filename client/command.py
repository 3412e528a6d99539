"""``tracklane upload``: from options to an exit code (``local/cli.py`` only parses and resolves
the API and token).

Files are sent one after another, each multipart file with its parts in parallel; an album's files
(one signed PUT each) are sent in parallel. A file whose bytes are in is followed to its verdict on
a thread of its own while the next one is sent. Ctrl-C stops everything at once: a part in flight
is abandoned mid-way, the resume state stays, and the exit code is 130.
"""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from client.album import AlbumUpload
from client.api import Api, ApiError, Unreachable, token_subject
from client.context import Context, FileSpec
from client.output import JsonReporter, Reporter, RichReporter
from client.results import EXIT_INTERRUPTED, EXIT_UNREACHABLE, Result, exit_code
from client.single import FileUpload, refused
from client.state import StateStore, default_directory
from client.transfer import FileChanged, Interrupted, StopFlag

# Without GET /v1/uploads/config (or a threshold there): files above this are sent in parts.
DEFAULT_MULTIPART_THRESHOLD = 32 * 1024 * 1024
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3, "ki": 1024, "mi": 1024**2, "gi": 1024**3}


def parse_size(text: str) -> int:
    """``5242880``, ``5MiB``, ``5M`` (10**6), ``16mib``, ``1.5GiB`` → bytes."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (e.g. 5242880, 5MiB, 16MB)")
    unit = (match.group(2) or "").lower().removesuffix("b")
    return int(float(match.group(1)) * _UNITS[unit])


@dataclass
class Options:
    files: list[Path]
    album: str | None = None
    titles: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    visibility: str | None = None
    json: bool = False
    multipart_threshold: int | None = None
    part_size: int | None = None
    parallel: int = 4
    timeout_s: float = 3600.0
    restart: bool = False
    state_dir: Path | None = None
    stop_after_parts: int | None = None


class UsageError(Exception):
    """Options or files that cannot be uploaded as given; nothing was sent."""


class Unit(Protocol):
    result: Result
    spec: FileSpec

    def send(self) -> bool: ...
    def follow(self) -> Result: ...


def file_specs(options: Options) -> list[FileSpec]:
    if options.titles and len(options.titles) != len(options.files):
        raise UsageError(f"--title was given {len(options.titles)} times for {len(options.files)} files")
    specs = []
    seen: set[Path] = set()
    for slot, path in enumerate(options.files, start=1):
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
        if path.resolve() in seen:
            raise UsageError(f"{path}: named twice")
        seen.add(path.resolve())
        title = options.titles[slot - 1] if options.titles else None
        specs.append(FileSpec(slot=slot, path=path, byte_size=path.stat().st_size, title=title))
    return specs


def run(options: Options, api: Api, *, reporter: Reporter | None = None) -> int:
    specs = file_specs(options)
    reporter = reporter or (JsonReporter() if options.json else RichReporter())
    stop = StopFlag()
    try:
        ctx = _context(options, api, reporter, stop)
    except Unreachable as lost:
        reporter.notice(f"tracklane upload: {lost}")
        reporter.close([])
        return EXIT_UNREACHABLE
    ctx.store.prune()
    units: list[Unit]
    concurrency = 1
    if options.album and len(specs) > 1:
        album = AlbumUpload(ctx, options.album, specs)
        try:
            album.prepare()
        except KeyboardInterrupt:
            stop.set("interrupted")
        except Unreachable as lost:
            for track in album.tracks:
                _lost(track.result, lost)
        units, concurrency = list(album.tracks), options.parallel
    else:
        units = [FileUpload(ctx, spec, album=options.album) for spec in specs]
    results = drive(units, concurrency=concurrency, stop=stop, reporter=reporter)
    code = exit_code(results)
    if code == EXIT_INTERRUPTED:
        reporter.notice(f"{stop.reason or 'interrupted'}: run the same command again to continue where it stopped")
    elif code == EXIT_UNREACHABLE:
        reporter.notice("not finished: run the same command again to continue where it stopped")
    reporter.close(results)
    return code


def _context(options: Options, api: Api, reporter: Reporter, stop: StopFlag) -> Context:
    config = api.upload_config()
    multipart = (config or {}).get("multipart") or {}
    threshold = options.multipart_threshold or multipart.get("thresholdBytes") or DEFAULT_MULTIPART_THRESHOLD
    return Context(
        api=api,
        store=StateStore(options.state_dir or default_directory()),
        reporter=reporter,
        stop=stop,
        identity=f"{api.base_url}\0{token_subject(api.token)}",
        multipart_threshold=int(threshold),
        part_size=options.part_size,
        part_size_supported=True if "minPartSize" in multipart else None,
        parallel=options.parallel,
        timeout_s=options.timeout_s,
        tags=options.tags,
        visibility=options.visibility,
        restart=options.restart,
        stop_after_parts=options.stop_after_parts,
    )


def _lost(result: Result, lost: Unreachable) -> None:
    result.status, result.code, result.message = "unreachable", lost.code, str(lost)


def _send(unit: Unit) -> bool:
    """``unit.send()``, with what stopped it written into its result instead of raised."""
    try:
        return unit.send()
    except Interrupted:
        unit.result.status = "interrupted"
    except Unreachable as lost:
        _lost(unit.result, lost)
    except FileChanged as changed:
        unit.result.status, unit.result.code, unit.result.message = "failed", changed.code, str(changed)
    except ApiError as error:
        refused(unit.result, error)
    except Exception as error:  # a bug here must not hide what became of the other files
        _crashed(unit.result, error)
    return False


def _follow(unit: Unit, reporter: Reporter) -> None:
    try:
        unit.follow()
    except Exception as error:
        _crashed(unit.result, error)
    reporter.done(unit.spec.slot, unit.result)


def _crashed(result: Result, error: Exception) -> None:
    result.status, result.code, result.message = "failed", "client_error", f"{type(error).__name__}: {error}"


def drive(units: list[Unit], *, concurrency: int, stop: StopFlag, reporter: Reporter) -> list[Result]:
    """Sends ``units`` (``concurrency`` at a time, in order), follows each one whose bytes are in on
    a thread of its own, and waits for all; the results in the units' order."""
    followers: list[threading.Thread] = []

    def send_then_follow(unit: Unit) -> None:
        if stop.is_set():
            return
        if not _send(unit):
            reporter.done(unit.spec.slot, unit.result)
        elif not stop.is_set():
            # Daemon: a follower waiting on the stream must not keep the process alive after Ctrl-C.
            follower = threading.Thread(target=_follow, args=(unit, reporter), daemon=True)
            followers.append(follower)
            follower.start()

    executor = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="file")
    sends: list[Future[None]] = [executor.submit(send_then_follow, unit) for unit in units]
    try:
        # Timeouts keep the main thread able to take Ctrl-C while it waits.
        while wait(sends, timeout=0.2).not_done:
            pass
        while any(f.is_alive() for f in list(followers)):
            for follower in list(followers):
                follower.join(timeout=0.2)
    except KeyboardInterrupt:
        stop.set("interrupted")
        executor.shutdown(wait=True, cancel_futures=True)
        # Followers notice the flag at their next line (a keep-alive at most 15 s away): wait a
        # moment for them to say so, then report whoever has not finished as interrupted.
        deadline = time.monotonic() + 1.0
        for follower in list(followers):
            follower.join(timeout=max(0.0, deadline - time.monotonic()))
        for unit in units:
            if unit.result.status not in {"ready", "failed", "duplicate", "refused", "unreachable", "timeout"}:
                unit.result.status = "interrupted"
    else:
        executor.shutdown(wait=True)
    return [unit.result for unit in units]
