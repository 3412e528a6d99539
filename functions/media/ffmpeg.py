"""Locating and running the real ffmpeg (the static binary from imageio-ffmpeg, or the layer's)."""

from __future__ import annotations

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


def run(args: list[str], *, timeout_s: float | None = None) -> Completed:
    command = [executable(), "-hide_banner", "-nostdin", *args]
    try:
        # The command is our own argument list (no shell); the only outside value is the input
        # path or presigned URL, passed as one argv element.
        done = subprocess.run(  # noqa: S603
            command,
            check=False,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s or settings().ffmpeg_timeout_s,
        )
    except subprocess.TimeoutExpired as error:
        raise FfmpegTimeout(f"ffmpeg did not finish within {error.timeout} s") from error
    return Completed(done.returncode, done.stdout, done.stderr)
