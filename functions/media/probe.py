"""Probe: decode the whole file once with ffmpeg and report what it really is.

The imageio-ffmpeg build ships no ffprobe, so the facts come from ffmpeg's own input report and
its ``-progress`` output while decoding to the null muxer. Decoding everything (not just reading
the header) is what catches truncated and corrupt files: what decodes is compared with the length
the header declares (read by ``declared_length`` for WAV, AIFF and FLAC, whose length ffmpeg may
only estimate; ffmpeg's own duration for the rest).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from pydantic.alias_generators import to_camel

from functions.media import declared_length, ffmpeg
from functions.step_errors import StepFailed

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
# ffmpeg's names for the containers whose header records an exact length (declared_length.py).
_HEADER_LENGTH_CONTAINERS = frozenset({"wav", "aiff", "flac"})
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


def _check_length(declared: declared_length.DeclaredLength | None, report: str, decoded_us: int) -> None:
    """``audio_truncated`` when the file holds less audio than its header declares."""
    if declared is not None:
        # WAV, AIFF, FLAC: an exact frame count, compared to the frame. ``None``: not recorded.
        if declared.frames is None or declared.duration_us is None:
            return
        decoded_frames = round(decoded_us * declared.sample_rate_hz / 1_000_000)
        if decoded_frames < declared.frames:
            raise StepFailed(
                "audio_truncated",
                f"The file ends early: {decoded_us // 1000} ms of the {declared.duration_us // 1000} ms it declares.",
            )
        return
    # Other containers: ffmpeg's own duration, from the container or (MP3) the Xing/VBRI header,
    # else estimated from the bitrate, hence the tolerance.
    duration = _DURATION.search(report)
    if duration is None or decoded_us == 0:
        return
    hours, minutes, seconds = duration.groups()
    declared_ms = round((int(hours) * 3600 + int(minutes) * 60 + float(seconds)) * 1000)
    decoded_ms = decoded_us // 1000
    if declared_ms - decoded_ms > max(500, declared_ms // 50):
        raise StepFailed(
            "audio_truncated", f"The file ends early: {decoded_ms} ms of the {declared_ms} ms it declares."
        )


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

    out_times = _OUT_TIME.findall(result.stdout)
    decoded_us = int(out_times[-1]) if out_times else 0
    decoded_ms = decoded_us // 1000
    declared = declared_length.read(source) if container.group(1) in _HEADER_LENGTH_CONTAINERS else None
    # Before the damage check: a file cut short ends mid-frame, and the decoder complains about
    # that last frame. The cut, not the complaint, is what the uploader needs to hear.
    _check_length(declared, report, decoded_us)
    if decoded_us == 0:
        raise StepFailed("audio_unreadable", "The file holds no audio: it has a header but no sound after it.")
    # A PCM WAV or AIFF whose header does not record its length is read to the end of the file,
    # and ffmpeg flags that last, partial read as a corrupt packet. Stored samples cannot be
    # damaged, so that is all it can be: not checked.
    unrecorded_pcm = declared is not None and declared.frames is None and declared.pcm
    damage = None if unrecorded_pcm else _DAMAGE.search(report[stream.end() :])
    if damage:
        raise StepFailed("audio_corrupt", f"The audio is damaged ({damage.group(1).lower()}).")

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
