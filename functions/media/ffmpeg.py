"""Locating and running the real ffmpeg (the static binary from imageio-ffmpeg, or the layer's)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from dataclasses import dataclass
from functools import cache

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

    URLs get a 30 s read timeout and reconnect on a dropped connection. A local path is given as
    ``file:`` so a name that contains a colon is never taken for a protocol."""
    if is_url(source):
        return ["-rw_timeout", "30000000", "-reconnect", "1", "-reconnect_on_network_error", "1", "-i", source]
    return ["-i", f"file:{source}"]


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


class FfmpegTimeout(Exception):
    pass


# Optional lanes run ffmpeg at a lower CPU priority: where lanes share cores (the local stack, a
# small machine) the required transcode, which the track waits for, gets the CPU first, and the
# optional lanes use what it leaves idle. In Lambda each lane has its own sandbox: no effect.
BACKGROUND_NICENESS = 10


def run(args: list[str], *, timeout_s: float | None = None, background: bool = False) -> Completed:
    command = [executable(), "-hide_banner", "-nostdin", *args]
    # The command is our own argument list (no shell); the only outside value is the input path
    # or presigned URL, passed as one argv element.
    with subprocess.Popen(  # noqa: S603
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
    ) as process:
        if background:
            # After the spawn rather than in preexec_fn, which is unsafe in a threaded process.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.setpriority(os.PRIO_PROCESS, process.pid, BACKGROUND_NICENESS)
        try:
            stdout, stderr = process.communicate(timeout=timeout_s or settings().ffmpeg_timeout_s)
        except subprocess.TimeoutExpired as error:
            process.kill()
            process.communicate()
            raise FfmpegTimeout(f"ffmpeg did not finish within {error.timeout} s") from error
    return Completed(process.returncode, stdout, stderr)
