"""Waveform: peak levels for drawing the track, in the upload-intent contract's
``{peaks, sampleRateHz, channels}`` shape.

One ffmpeg pass, streamed, with memory bounded by the number of buckets rather than the length of
the track. The decoded audio is cut into short fixed-length frames (``asetnsamples``); ``astats``
measures each frame on its own (``reset=1``) and ``ametadata`` prints its peak to stdout, one
line per frame. Python then max-pools those fine frames into each requested bucket count.

Why one fine pass instead of one ``asplit`` chain per bucket count: the frames are about
``_OVERSAMPLE`` times finer than the finest bucket count, so every bucket's edges are placed to
within a quarter of a bucket, whatever the counts are (a chain cut at exactly one frame per bucket
has to merge or stretch frames when the division is not exact, which shifts edges by up to a whole
bucket); ``astats`` runs once; and everything comes back on one pipe, with no temporary files.

Channels are not mixed down: ``astats``' overall peak is the largest absolute sample across all
channels. A mixdown would under-draw anything panned to one side and erase anything out of phase
between the channels (left = -right sums to silence), so the display would no longer show how
close the track comes to full scale.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from functions.media import ffmpeg
from functions.observability import logger
from functions.step_errors import StepFailed

# Fine frames per bucket of the finest requested count: edges within 1/4 bucket. The cost is per
# frame, not per second of audio: astats clears its histograms on every reset (~70 us a frame), so
# 4 x 2048 frames add ~0.6 s and the pipe carries ~0.7 MB, whatever the track's length.
_OVERSAMPLE = 4
_PEAK = re.compile(r"^lavfi\.astats\.Overall\.Peak_level=(\S+)$", re.MULTILINE)
# ``pipe:1`` with its colon escaped once for the option parser and once more for the filtergraph.
_STDOUT = r"pipe\\:1"


@dataclass(frozen=True)
class Waveform:
    sample_rate_hz: int
    channels: int
    # bucket count -> exactly that many peaks, each in 0..1 (linear, 1.0 = full scale), 4 decimals
    peaks: dict[int, list[float]]

    def to_json(self, buckets: int) -> dict[str, Any]:
        return {"peaks": self.peaks[buckets], "sampleRateHz": self.sample_rate_hz, "channels": self.channels}


def waveform(
    source: str,
    *,
    duration_ms: int,
    sample_rate_hz: int,
    channels: int,
    buckets: tuple[int, ...] = (1024, 2048),
    timeout_s: float | None = None,
    background: bool = False,
) -> Waveform:
    """Peaks of ``source`` (a local path or presigned URL) for each count in ``buckets``.

    ``duration_ms``, ``sample_rate_hz`` and ``channels`` are the probe step's facts: they size the
    frames and are reported back, nothing else depends on them, so a slightly wrong duration only
    changes the frame size. Raises ``StepFailed("waveform_failed", ...)`` if the audio cannot be
    decoded; ``ffmpeg.FfmpegTimeout`` propagates."""
    if not buckets or min(buckets) < 1:
        raise ValueError(f"bucket counts must be positive, got {buckets}")
    if duration_ms <= 0 or sample_rate_hz <= 0:
        raise ValueError(f"need a positive duration and sample rate, got {duration_ms} ms at {sample_rate_hz} Hz")

    total_samples = duration_ms * sample_rate_hz // 1000
    samples_per_frame = max(1, total_samples // (_OVERSAMPLE * max(buckets)))
    chain = ",".join(
        (
            # The last frame is padded with silence, which cannot change a peak.
            f"asetnsamples=n={samples_per_frame}",
            # Only the overall peak, measured over each frame alone.
            "astats=metadata=1:reset=1:measure_perchannel=none:measure_overall=Peak_level",
            f"ametadata=mode=print:key=lavfi.astats.Overall.Peak_level:file={_STDOUT}",
        )
    )
    args = [*ffmpeg.input_args(source), "-map", "0:a:0", "-vn", "-af", chain, "-f", "null", "-"]
    result = ffmpeg.run(args, timeout_s=timeout_s, background=background)

    frames = [_linear(level) for level in _PEAK.findall(result.stdout)]
    if result.returncode != 0 or not frames:
        logger.warning(
            "waveform failed",
            extra={"returncode": result.returncode, "frames": len(frames), "stderr_tail": result.stderr[-2000:]},
        )
        raise StepFailed("waveform_failed", "We could not draw the waveform for this audio: it did not decode.")
    return Waveform(
        sample_rate_hz=sample_rate_hz,
        channels=channels,
        peaks={count: [round(peak, 4) for peak in _pool(frames, count)] for count in sorted(set(buckets))},
    )


def _linear(level_dbfs: str) -> float:
    """astats' dBFS peak -> linear 0..1. Digital silence is ``-inf`` (0.0); float sources can
    exceed full scale, which draws as 1.0."""
    value = float(level_dbfs)  # "-inf" and "nan" parse too
    if math.isnan(value) or value == -math.inf:
        return 0.0
    return min(1.0, 10 ** (value / 20))


def _pool(frames: list[float], buckets: int) -> list[float]:
    """Exactly ``buckets`` values from ``len(frames)`` fine frames, deterministically: bucket ``i``
    is the max over frames ``[i*n//buckets, (i+1)*n//buckets)``, so no peak is ever dropped. With
    fewer frames than buckets (a clip shorter than ``buckets`` samples) each bucket takes the frame
    it falls in, i.e. the frames are stretched."""
    count = len(frames)
    pooled = []
    for i in range(buckets):
        start = i * count // buckets
        end = max((i + 1) * count // buckets, start + 1)
        pooled.append(max(frames[start:end]))
    return pooled
