"""Locating and running the real ffmpeg (the static binary from imageio-ffmpeg, or the layer's)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import select
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import IO, Any, ClassVar

from functions.settings import settings


@cache
def executable() -> str:
    configured = settings().ffmpeg_path
    if configured:
        return configured
    import imageio_ffmpeg  # only outside Lambda, where the layer provides /opt/bin/ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


_URL_PREFIXES = ("http://", "https://")


def is_url(source: str) -> bool:
    return source.startswith(_URL_PREFIXES)


def input_args(source: str) -> list[str]:
    """ffmpeg's input options for ``source``: a local path or a (presigned) http(s) URL, streamed.

    URLs get a 30 s read timeout and reconnect on a dropped connection, giving up after about 4 s
    of waits (1 s, then 3 s): by default ffmpeg backs off up to 120 s, and a source deleted while
    it streamed (the track was deleted meanwhile) kept a lane retrying for minutes; the step's own
    Retry policy covers a real outage. A local path is given as ``file:`` so a name that contains a
    colon is never taken for a protocol."""
    if is_url(source):
        return [
            "-rw_timeout", "30000000",
            "-reconnect", "1", "-reconnect_on_network_error", "1", "-reconnect_delay_max", "4",
            "-i", source,
        ]  # fmt: skip
    return ["-i", f"file:{source}"]


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


class FfmpegTimeout(Exception):
    pass


class FfmpegStopped(FfmpegTimeout):
    """ffmpeg was killed because the process running it is stopping (``stop_all``): like a
    timeout, the work is unfinished and worth doing again."""


class _Running:
    """The ffmpeg processes this process started and has not reaped yet."""

    processes: ClassVar[set[subprocess.Popen[Any]]] = set()
    lock = threading.Lock()
    stopping = False


@contextlib.contextmanager
def _tracked(process: subprocess.Popen[Any]) -> Iterator[None]:
    with _Running.lock:
        if _Running.stopping:
            process.kill()
        _Running.processes.add(process)
    try:
        yield
    finally:
        with _Running.lock:
            _Running.processes.discard(process)


def stop_all() -> int:
    """Kills every running ffmpeg, and every one started from now on: the local stack stopping
    (Ctrl-C) ends the lanes in flight at once instead of waiting for their encodes. Each raises
    ``FfmpegStopped``. Returns how many were running."""
    with _Running.lock:
        _Running.stopping = True
        running = list(_Running.processes)
    for process in running:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    return len(running)


def _stopped(returncode: int) -> bool:
    return _Running.stopping and returncode < 0


# Optional lanes run ffmpeg at a lower CPU priority: where lanes share cores (the local stack, a
# small machine) the renditions, which the track waits for, get the CPU first, and the optional
# lanes use what they leave idle. In Lambda each lane has its own sandbox: no effect.
BACKGROUND_NICENESS = 10


# Presigned-URL query parameters that are credentials; scrubbed even from a fragment of a URL (a
# stderr tail can begin in the middle of one).
_CREDENTIAL_PARAMETERS = re.compile(r"(X-Amz-(?:Signature|Credential|Security-Token))=[^&\s\"']*", re.IGNORECASE)


def _lower_priority(pid: int, niceness: int) -> None:
    # After the spawn rather than in preexec_fn, which is unsafe in a threaded process.
    if niceness > 0:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.setpriority(os.PRIO_PROCESS, pid, niceness)


def redact(text: str, args: list[str]) -> str:
    """``text`` (ffmpeg's stderr) without the presigned URLs among ``args``: ffmpeg names its
    input in its messages, signature and all, and those messages end up in logs."""
    for url in filter(is_url, args):
        text = text.replace(url, "<url>")
    return _CREDENTIAL_PARAMETERS.sub(r"\1=<redacted>", text)


def run(args: list[str], *, timeout_s: float | None = None, background: bool = False, niceness: int = 0) -> Completed:
    """Runs ffmpeg to its end. ``background``: at ``BACKGROUND_NICENESS``; else at ``niceness``."""
    command = [executable(), "-hide_banner", "-nostdin", *args]
    # The command is our own argument list (no shell); the only outside value is the input path
    # or presigned URL, passed as one argv element.
    with (
        subprocess.Popen(  # noqa: S603
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
        ) as process,
        _tracked(process),
    ):
        _lower_priority(process.pid, BACKGROUND_NICENESS if background else niceness)
        try:
            stdout, stderr = process.communicate(timeout=timeout_s or settings().ffmpeg_timeout_s)
        except subprocess.TimeoutExpired as error:
            process.kill()
            process.communicate()
            raise FfmpegTimeout(f"ffmpeg did not finish within {error.timeout} s") from error
    if _stopped(process.returncode):
        raise FfmpegStopped("ffmpeg was stopped: this process is shutting down")
    return Completed(process.returncode, stdout, redact(stderr, args))


@contextlib.contextmanager
def stream(args: list[str], *, timeout_s: float | None = None, background: bool = False) -> Iterator[IO[bytes]]:
    """Runs ffmpeg and yields its stdout as a binary pipe, for output too large to hold (decoded PCM).

    ``run`` keeps everything ffmpeg prints; this keeps only what the caller has not read yet (the
    pipe's buffer) and the last 8 KB of stderr, whatever the length of the audio. The caller reads
    the pipe to its end inside the ``with`` block; leaving the block then:

    * reaps ffmpeg, always, however the block ends;
    * raises ``FfmpegTimeout`` once ``timeout_s`` (default: the ``ffmpeg_timeout_s`` setting) has
      passed since the start: ffmpeg is killed at the deadline, so a read that was waiting sees
      the end of the pipe at once rather than blocking until the Lambda itself is killed;
    * raises ``subprocess.CalledProcessError`` if ffmpeg exited non-zero, with the tail of its
      stderr (text) in ``stderr``. Any URL among ``args`` is replaced by ``<url>`` in both ``cmd``
      and ``stderr``: a presigned URL is a credential, and the error ends up in logs.

    Leaving the block before the end of the pipe (``break``, ``return``, an exception) kills
    ffmpeg: the caller has what it needs or has failed, and an exception from the block propagates.
    """
    command = [executable(), "-hide_banner", "-nostdin", *args]
    limit = timeout_s or settings().ffmpeg_timeout_s
    deadline = time.monotonic() + limit
    tail = bytearray()
    expired = threading.Event()
    failure: BaseException | None = None
    read_to_end = False
    # As in ``run``: our own argument list, no shell; the source is one argv element.
    with (
        subprocess.Popen(  # noqa: S603
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as process,
        _tracked(process),
    ):
        output, errors = process.stdout, process.stderr
        assert isinstance(output, io.BufferedReader) and isinstance(errors, io.BufferedReader)
        _lower_priority(process.pid, BACKGROUND_NICENESS if background else 0)

        def drain() -> None:
            # ffmpeg stops, blocked on write, once an unread stderr pipe holds 64 KB (a verbose
            # filter or a long run of decode warnings): read all of it, keep only the last 8 KB.
            while chunk := errors.read1(65536):
                tail.extend(chunk)
                del tail[:-8192]

        def expire() -> None:
            expired.set()
            process.kill()

        drainer = threading.Thread(target=drain, name="ffmpeg-stderr", daemon=True)
        watchdog = threading.Timer(limit, expire)
        watchdog.daemon = True
        drainer.start()
        watchdog.start()
        try:
            yield output
            # At the end of the output the pipe is readable and empty. Anything else (data still
            # buffered or in the pipe, or nothing yet) means the caller stopped early.
            read_to_end = bool(select.select([output], [], [], 0)[0]) and not output.peek(1)
        except BaseException as error:  # re-raised below, once ffmpeg is reaped
            failure = error
        # The watchdog must not kill a process that wait() may already have reaped: its pid can be
        # reused. From here on the deadline is wait()'s timeout.
        watchdog.cancel()
        watchdog.join()
        if not read_to_end:
            process.kill()
        try:
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:  # still running at the deadline (it was not killed above)
            expired.set()
            process.kill()
            process.wait()
        drainer.join()

    if failure is not None and not isinstance(failure, Exception):
        raise failure  # KeyboardInterrupt, SystemExit: not ours to replace
    if expired.is_set():
        # A caller that fails on the truncated output would otherwise hide the real cause.
        raise FfmpegTimeout(f"ffmpeg did not finish within {limit} s") from failure
    if process.returncode is not None and _stopped(process.returncode):
        raise FfmpegStopped("ffmpeg was stopped: this process is shutting down") from failure
    if failure is not None:
        raise failure
    if read_to_end and process.returncode != 0:
        raise subprocess.CalledProcessError(
            process.returncode,
            ["<url>" if is_url(arg) else arg for arg in command],
            # ffmpeg names the input in its errors, signature and all.
            stderr=redact(tail.decode(errors="replace"), command),
        )
