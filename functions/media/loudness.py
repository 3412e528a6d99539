"""Loudness: EBU R 128 / ITU-R BS.1770 measurement and the playback gain that reaches our reference.

ffmpeg's ``ebur128`` filter measures the whole decoded stream (streamed to the null muxer) and
prints a Summary block: integrated loudness (I), loudness range (LRA) and, with ``peak=true``, the
true peak (4x oversampled, so inter-sample peaks count). The per-100 ms lines are pushed down to
verbose logging (``framelog=verbose``) so a four-hour file does not fill stderr.

Mono is measured as dual mono (``dualmono=true``): players send a mono track to both speakers at
full level, where it is as loud as a stereo track with the same signal in both channels, so
measuring it as one channel would read 3 LU too quiet and mono tracks would play 3 dB too loud.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from functions.media import ffmpeg
from functions.observability import logger
from functions.step_errors import StepFailed

REFERENCE_LUFS = -14.0
# Positive gain never pushes the true peak above this (a player applying the gain must not clip,
# and lossy decoding adds a little overshoot on top).
PEAK_CEILING_DBTP = -1.0
# Positive gain never exceeds this either. Music quieter than -34 LUFS is vanishingly rare; what
# is that quiet is mostly room tone, hiss or a near-silent file, and a +40 dB boost of that is noise.
MAX_BOOST_DB = 20.0
# BS.1770's absolute gate. ebur128 reports -70.0 LUFS when no 400 ms block rises above it
# (silence, or audio too short to measure); that is "nothing to measure", not a real level.
SILENCE_LUFS = -70.0
# Digital silence has a true peak of -inf, which JSON (and DynamoDB) cannot hold: report this
# floor instead (below the noise floor of 24-bit audio, about -144.5 dBFS).
TRUE_PEAK_FLOOR_DBTP = -150.0

_SUMMARY = re.compile(
    r"Summary:\s+Integrated loudness:\s+I:\s+(?P<i>\S+) LUFS.*?"
    r"Loudness range:\s+LRA:\s+(?P<lra>\S+) LU\b.*?"
    r"True peak:\s+Peak:\s+(?P<tp>\S+) dBFS",
    re.DOTALL,
)


@dataclass(frozen=True)
class Loudness:
    integrated_lufs: float
    loudness_range_lu: float
    true_peak_dbtp: float
    # Playback gain to reach REFERENCE_LUFS; the audio itself is never changed.
    gain_db: float

    def to_json(self) -> dict[str, Any]:
        return {
            "integratedLufs": self.integrated_lufs,
            "loudnessRangeLu": self.loudness_range_lu,
            "truePeakDbtp": self.true_peak_dbtp,
            "gainDb": self.gain_db,
            "referenceLufs": REFERENCE_LUFS,
        }


def playback_gain(integrated_lufs: float, true_peak_dbtp: float) -> float:
    """The gain (dB, 0.1 dB steps) that brings a track to ``REFERENCE_LUFS``, within safe limits.

    * Louder than the reference: turn it down by the full difference (attenuation cannot clip).
    * Quieter: turn it up, but only as far as the true peak allows (peak + gain <= -1 dBTP) and
      never by more than ``MAX_BOOST_DB``. A quiet track whose peaks already reach the ceiling
      stays at 0 dB: the limits stop a boost, they never turn a quiet track down.
    * Silence (nothing above the -70 LUFS gate): 0 dB. There is no level to match, and boosting
      silence by +56 dB would only amplify noise and whatever follows the gain in the player.
    """
    if integrated_lufs <= SILENCE_LUFS:
        return 0.0
    wanted = REFERENCE_LUFS - integrated_lufs
    if wanted > 0:
        wanted = max(0.0, min(wanted, PEAK_CEILING_DBTP - true_peak_dbtp, MAX_BOOST_DB))
    return round(wanted, 1) + 0.0  # + 0.0 turns -0.0 into 0.0


def loudness(source: str, *, timeout_s: float | None = None, background: bool = False) -> Loudness:
    """Measures ``source`` (a local path or presigned URL) in one streamed pass. Raises
    ``StepFailed("loudness_failed", ...)`` if it cannot be decoded and measured;
    ``ffmpeg.FfmpegTimeout`` propagates."""
    args = [
        *ffmpeg.input_args(source),
        "-map", "0:a:0", "-vn",
        "-af", "ebur128=peak=true:dualmono=true:framelog=verbose",
        "-f", "null", "-",
    ]  # fmt: skip
    result = ffmpeg.run(args, timeout_s=timeout_s, background=background)
    summary = _SUMMARY.search(result.stderr)
    if result.returncode != 0 or summary is None:
        logger.warning("loudness failed", extra={"returncode": result.returncode, "stderr_tail": result.stderr[-2000:]})
        raise StepFailed("loudness_failed", "We could not measure the loudness of this audio: it did not decode.")

    integrated = max(SILENCE_LUFS, _number(summary.group("i")))
    true_peak = max(TRUE_PEAK_FLOOR_DBTP, _number(summary.group("tp")))
    return Loudness(
        integrated_lufs=integrated,
        loudness_range_lu=max(0.0, _number(summary.group("lra"))),
        true_peak_dbtp=true_peak,
        gain_db=playback_gain(integrated, true_peak),
    )


def _number(text: str) -> float:
    value = float(text)  # ebur128 prints "-inf" for silence, which float() reads
    return -math.inf if math.isnan(value) else value
