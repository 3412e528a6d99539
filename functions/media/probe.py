"""Probe: decode the whole file once with ffmpeg and report what it really is.

The imageio-ffmpeg build ships no ffprobe, so the facts come from ffmpeg's own input report and
its ``-progress`` output while decoding to the null muxer. Decoding everything (not just reading
the header) is what catches truncated and corrupt files.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from pydantic.alias_generators import to_camel

from functions.media import ffmpeg
from functions.workflow.errors import StepFailed

_INPUT = re.compile(r"^Input #0, ([\w,]+), from", re.MULTILINE)
_DURATION = re.compile(r"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_BITRATE = re.compile(r"Duration: [^\n]*?bitrate: (\d+) kb/s")
_AUDIO_STREAM = re.compile(
    r"Stream #0:\d+[^:]*: Audio: (?P<codec>\w+)[^,\n]*, (?P<rate>\d+) Hz, (?P<layout>[^,\n]+)"
    r"(?:, (?P<format>[^,\n]+))?(?:, (?P<kbps>\d+) kb/s)?"
)
_OUT_TIME = re.compile(r"^out_time_us=(\d+)$", re.MULTILINE)
_DAMAGE = re.compile(
    r"(invalid data found|error while decoding|packet corrupt|corrupt|truncat|invalid frame|"
    r"could not find codec parameters|decoding error)",
    re.IGNORECASE,
)
_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}


@dataclass(frozen=True)
class AudioFacts:
    container: str
    codec: str
    sample_rate_hz: int
    channels: int
    channel_layout: str
    duration_ms: int
    bitrate_kbps: int | None

    def to_json(self) -> dict[str, Any]:
        return {to_camel(name): value for name, value in asdict(self).items()}


def _channels(layout: str) -> int:
    layout = layout.strip()
    if layout in _LAYOUT_CHANNELS:
        return _LAYOUT_CHANNELS[layout]
    match = re.match(r"(\d+) channels", layout)
    if match:
        return int(match.group(1))
    base = layout.split("(", 1)[0]
    return _LAYOUT_CHANNELS.get(base, 0)


def probe(source: str, *, min_ms: int, max_ms: int) -> AudioFacts:
    """``source`` is a local path or an (presigned) http(s) URL; ffmpeg streams it, never loading
    the whole file. Raises ``StepFailed`` with a stable code for anything that is not usable audio."""
    args = [*ffmpeg.input_args(source), "-map", "0:a:0", "-f", "null", "-progress", "pipe:1", "-nostats", "-"]
    result = ffmpeg.run(args)
    report = result.stderr

    stream = _AUDIO_STREAM.search(report)
    container = _INPUT.search(report)
    if container is None or stream is None:
        raise StepFailed(
            "audio_unreadable",
            "This file is not audio we can read. Upload a WAV, FLAC, MP3, AIFF, OGG, Opus or M4A file.",
        )
    if result.returncode != 0:
        raise StepFailed("audio_corrupt", "The audio could not be decoded: the file is damaged.")
    damage = _DAMAGE.search(report[stream.end() :])
    if damage:
        raise StepFailed("audio_corrupt", f"The audio is damaged or truncated ({damage.group(1).lower()}).")

    out_times = _OUT_TIME.findall(result.stdout)
    decoded_ms = int(out_times[-1]) // 1000 if out_times else 0
    declared = _DURATION.search(report)
    if declared and decoded_ms:
        hours, minutes, seconds = declared.groups()
        declared_ms = round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)
        # A header promising much more audio than decodes is a truncated file.
        if declared_ms - decoded_ms > max(500, declared_ms // 50):
            raise StepFailed(
                "audio_truncated", f"The file ends early: {decoded_ms} ms of the {declared_ms} ms it declares."
            )
    if decoded_ms < min_ms:
        raise StepFailed("audio_too_short", f"The audio is {decoded_ms} ms long; the minimum is {min_ms} ms.")
    if decoded_ms > max_ms:
        raise StepFailed(
            "audio_too_long", f"The audio is {decoded_ms // 1000} s long; the maximum is {max_ms // 1000} s."
        )

    bitrate = _BITRATE.search(report)
    return AudioFacts(
        container=container.group(1),
        codec=stream.group("codec"),
        sample_rate_hz=int(stream.group("rate")),
        channels=_channels(stream.group("layout")),
        channel_layout=stream.group("layout").strip(),
        duration_ms=decoded_ms,
        bitrate_kbps=int(bitrate.group(1))
        if bitrate
        else (int(stream.group("kbps")) if stream.group("kbps") else None),
    )
