"""Transcode: one ffmpeg process decodes the original once and encodes the streaming renditions
asked for. The workflow asks for one per task (each rendition its own Lambda, in parallel, so the
first one stored makes the track playable); asked for several, the source is decoded once for all.

Each output maps only the first audio stream (``-map 0:a:0``, ``-vn``), so video, cover art and
subtitle streams never reach a rendition. Tags and chapters are dropped (``-map_metadata -1``,
``-map_chapters -1``): the track's title, artist and artwork live in our database and are edited
there, so embedded tags would go stale, and an uploader's file can carry things (comments,
personal details, encoder paths) we should not republish on a public stream. The original is
only read, never written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from functions.media import ffmpeg
from functions.observability import logger
from functions.step_errors import StepFailed


@dataclass(frozen=True)
class RenditionSpec:
    format: Literal["aac", "opus", "mp3"]
    extension: str  # without the dot
    content_type: str
    codec: str  # the ffmpeg encoder
    bitrate_kbps: int
    sample_rate_hz: int | None  # None: keep the source's rate if it is 44.1 or 48 kHz (else the nearer one)
    # Where the renditions share cores (the local stack: three encodes and the optional lanes on a
    # few cores), the order the CPU serves them in. Shortest first makes the track playable soonest
    # (MP3: 1.7 s alone for 3 minutes of music on this machine), longest first ends the ladder
    # soonest (Opus: 4.8 s); AAC (3.2 s) takes the core MP3 frees. 0 = normal priority; more is
    # lower, below ffmpeg.BACKGROUND_NICENESS (the optional lanes). On Lambda each rendition has its
    # own function instance: no effect.
    shared_core_niceness: int = 0

    @property
    def file_name(self) -> str:
        return f"{self.format}.{self.extension}"


RENDITIONS: tuple[RenditionSpec, ...] = (
    # AAC-LC (ffmpeg's native encoder) in MP4; +faststart puts the index first so a player can
    # start before the whole file has arrived. On a mono source this encoder tops out near
    # 200 kb/s (its per-channel limit), which is still far more than mono AAC needs.
    RenditionSpec("aac", "m4a", "audio/mp4", "aac", 256, None, shared_core_niceness=5),
    # libopus only runs at 8/12/16/24/48 kHz; 48 kHz is the one that keeps music's full band.
    RenditionSpec("opus", "opus", "audio/ogg", "libopus", 160, 48000),
    RenditionSpec("mp3", "mp3", "audio/mpeg", "libmp3lame", 320, 44100),
)

# Per format: the muxer (named, not guessed from the extension) and the options only that format takes.
_FORMAT_OPTIONS: dict[str, tuple[str, ...]] = {
    # "ipod" is ffmpeg's MP4 muxer with the M4A brand that .m4a files carry.
    "aac": ("-profile:a", "aac_low", "-f", "ipod", "-movflags", "+faststart"),
    # Ogg with the Opus mapping. Constrained VBR keeps the rate near 160 kb/s (unconstrained came out
    # 7-11 % under on music-like test signals): sizes and bandwidth stay predictable, like the other
    # two renditions, and at 160 kb/s both modes are transparent.
    "opus": ("-vbr", "constrained", "-f", "opus"),
    "mp3": ("-f", "mp3"),  # writes the Xing/LAME header, so players get the exact length and gapless trim
}
# The encoder's own float format, so the resampler works in float rather than in 16-bit integers.
_SAMPLE_FORMAT = {"aac": "fltp", "opus": "flt", "mp3": "fltp"}


@dataclass(frozen=True)
class Rendition:
    spec: RenditionSpec
    path: Path
    byte_size: int


def _output_args(spec: RenditionSpec, path: Path) -> list[str]:
    rates = str(spec.sample_rate_hz) if spec.sample_rate_hz else "44100|48000"
    # aformat picks, from each list, the value nearest the source: mono stays mono, stereo stays
    # stereo, anything wider is downmixed to stereo (256/160 kb/s spread over 5.1 would starve
    # every channel); 44.1 and 48 kHz stay as they are for AAC, other rates go to the nearer one.
    # soxr is the better resampler in this build (sharper cut-off, less aliasing than swr's default).
    audio_filter = (
        f"aresample=resampler=soxr,"
        f"aformat=sample_fmts={_SAMPLE_FORMAT[spec.format]}:sample_rates={rates}:channel_layouts=mono|stereo"
    )
    return [
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-map_metadata", "-1", "-map_chapters", "-1",
        "-af", audio_filter,
        "-c:a", spec.codec, "-b:a", f"{spec.bitrate_kbps}k",
        *_FORMAT_OPTIONS[spec.format],
        str(path),
    ]  # fmt: skip


def transcode(
    source: str,
    out_dir: Path,
    *,
    specs: tuple[RenditionSpec, ...] = RENDITIONS,
    timeout_s: float | None = None,
) -> list[Rendition]:
    """Encodes each rendition of ``specs`` (by default all of ``RENDITIONS``) into ``out_dir``
    (created if missing; files are named ``aac.m4a``, ``opus.opus``, ``mp3.mp3`` and overwritten) in
    one ffmpeg process, which decodes the source once and feeds each encoder.

    Raises ``StepFailed("transcode_failed", ...)`` when ffmpeg cannot do it (nothing is left behind);
    ``ffmpeg.FfmpegTimeout`` propagates, since a retry may well succeed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / spec.file_name for spec in specs]
    if not ffmpeg.is_url(source) and Path(source).resolve() in {p.resolve() for p in paths}:
        raise ValueError(f"refusing to transcode {source} onto itself")  # would destroy the original

    args = ["-y", *ffmpeg.input_args(source)]
    for spec, path in zip(specs, paths, strict=True):
        args += _output_args(spec, path)
    try:
        result = ffmpeg.run(args, timeout_s=timeout_s, niceness=min(spec.shared_core_niceness for spec in specs))
    except ffmpeg.FfmpegTimeout:
        _remove(paths)
        raise

    missing = [p.name for p in paths if not p.is_file() or p.stat().st_size == 0]
    if result.returncode != 0 or missing:
        _remove(paths)
        logger.warning(
            "transcode failed",
            extra={"returncode": result.returncode, "missing": missing, "stderr_tail": result.stderr[-2000:]},
        )
        raise StepFailed(
            "transcode_failed",
            "We could not convert this audio for streaming. Try exporting it again as WAV or FLAC and re-uploading.",
        )
    return [Rendition(spec, path, path.stat().st_size) for spec, path in zip(specs, paths, strict=True)]


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
