"""Embedding: a short vector that says how a track sounds, for "the owner's tracks most like this one".

The track is decoded once by ffmpeg to mono float PCM at ``SAMPLE_RATE_HZ`` and read from a pipe
in fixed-size chunks; only running sums are kept, so memory does not grow with the track's length.
Each 93 ms frame (``N_FFT`` samples, Hann window, every ``HOP`` samples) becomes a log-mel
spectrum: ``MEL_BANDS`` triangular bands on the HTK mel scale (``2595 log10(1 + f/700)``), each
normalised to unit area so a band measures power density, then weighted by its centre frequency
so that pink noise (equal power per octave, roughly the long-term spectrum of music) comes out
flat. The vector describes the whole track through statistics of those spectra over time:

* ``MEL_BANDS`` x timbre: each band's mean log level, minus the mean over bands. Removing the
  common level makes the vector independent of loudness (a gain adds the same constant to every
  log band), so only the shape of the spectrum counts: bright or dark, bass-heavy, a hole in the
  mids.
* ``MEL_BANDS`` x movement: each band's standard deviation over time. A held chord is near zero,
  drums are high in the bands they hit. A gain does not change it either.
* 5 globals: onset strength (spectral flux: how much the bands rise from one frame to the next)
  mean and standard deviation, spectral centroid mean and standard deviation (in band units, 0..1),
  and the standard deviation of the frame level in dB. Rhythm and dynamics, again gain-free.

Each group is divided by a typical spread of its features and by the square root of its size,
so that each group, not each number, carries about the same weight: otherwise the 48 timbre
levels, which for a tonal or filtered sound spread over tens of dB, would decide the similarity
alone and the 5 globals would hardly count. Then the whole vector is L2-normalised; vectors are
compared by cosine. The scales are fixed constants, not statistics of the owner's library, so a
track's vector never changes when other tracks are added; a change to them, to the bands or to
the framing changes every vector, and must come with a new ``VERSION``.

Frames that touch silence (any of their four hops below ``GATE_DBFS``) are left out: silence
before a fade-in or between songs says nothing about how the music sounds, and the frames that
straddle its edge would otherwise dominate the movement and dynamics features of a short track.
A track with no frame above the gate has nothing to compare: ``StepFailed("audio_silent")``.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, Any

from functions.media import ffmpeg
from functions.observability import logger
from functions.settings import run_blas_on_one_thread
from functions.step_errors import StepFailed

# Before numpy's first import, which in the processing Lambda and the local stack is here.
run_blas_on_one_thread()

import numpy as np  # noqa: E402  (after the BLAS thread setting, which numpy reads on import)
from numpy.typing import NDArray  # noqa: E402

VERSION = "logmel-v1"
SAMPLE_RATE_HZ = 22050
# 93 ms frames every 23 ms: long enough to resolve a low E (41 Hz) from its neighbours' bins
# (10.8 Hz apart), short enough to follow a drum hit.
N_FFT = 2048
HOP = 512
MEL_BANDS = 48
MIN_HZ = 20.0
MAX_HZ = SAMPLE_RATE_HZ / 2
# A frame counts as silence unless each of its four hops has an RMS level at or above this.
# Absolute rather than relative to the track, which a single streamed pass cannot know in advance;
# -60 dBFS is at the edge of hearing at normal listening levels, far below mastered music.
GATE_DBFS = -60.0
GLOBALS = ("flux_mean", "flux_std", "centroid_mean", "centroid_std", "level_std")
DIMENSIONS = 2 * MEL_BANDS + len(GLOBALS)

# Each frame's log-mel spectrum is floored 80 dB below its loudest band: a band that holds nothing
# is then "far below the rest", however quiet the track is and whatever noise floor a codec left
# there (a lossless file has none, an MP3 some), which a fixed floor would read as a difference.
_FLOOR_LN = 80.0 / 10 * math.log(10)
_SILENCE = 1e-10
# 128 hops (3 s of audio, 256 KB of PCM) per read: numpy's per-call overhead is paid per chunk, and
# the chunk's spectra and their temporaries (about 7 MB in all) are the largest thing held.
_CHUNK_SAMPLES = 128 * HOP

# Typical spreads, one per feature group: chosen, not fitted to a corpus, from the usual ranges of
# mastered music (band levels within about 10 dB of pink, bands moving by 5-10 dB, flux and level
# as below) and checked on the noise, tone and percussion textures of the tests.
_TIMBRE_SCALE = 2.0  # ln units per band (10 dB is 2.3)
_MOVEMENT_SCALE = 2.0  # ln units per band
_GLOBAL_SCALES = np.array([0.5, 0.5, 0.25, 0.1, 5.0])  # ln/band/frame, ln/band/frame, 1, 1, dB


def _mel(hz: float) -> float:
    return 2595.0 * math.log10(1.0 + hz / 700.0)


def _hz(mel: NDArray[np.float64]) -> NDArray[np.float64]:
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def _filterbank() -> NDArray[np.float32]:
    """``MEL_BANDS`` x ``N_FFT // 2 + 1`` weights: HTK mel scale, triangles with unit area in Hz,
    then x centre frequency in kHz, so that pink noise reads the same in every band."""
    edges = _hz(np.linspace(_mel(MIN_HZ), _mel(MAX_HZ), MEL_BANDS + 2, dtype=np.float64))
    bins = np.fft.rfftfreq(N_FFT, 1 / SAMPLE_RATE_HZ)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    weights: NDArray[np.float32] = (triangles * (2.0 / (upper - lower)) * (centre / 1000.0)).astype(np.float32)
    return weights


_FILTERBANK = _filterbank()
# Periodic Hann: consecutive windows at a quarter-frame hop sum to a constant, so every sample
# counts equally.
_WINDOW = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
_QUARTERS = N_FFT // HOP
_GATE_POWER = 10 ** (GATE_DBFS / 10)
_BAND_POSITION = (np.arange(MEL_BANDS) / (MEL_BANDS - 1)).astype(np.float32)


@dataclass(frozen=True)
class Embedding:
    version: str
    vector: tuple[float, ...]  # unit length (L2), 5 decimals
    analysed_ms: int  # decoded audio that went into it, silence included

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "dimensions": len(self.vector),
            "vector": list(self.vector),
            "analysedMs": self.analysed_ms,
        }


def embed(source: str, *, timeout_s: float | None = None, background: bool = False) -> Embedding:
    """The embedding of ``source`` (a local path or presigned URL), in one streamed pass.

    Raises ``StepFailed("audio_unreadable", ...)`` if ffmpeg cannot decode it (or it holds no
    audio at all), ``StepFailed("audio_silent", ...)`` if nothing in it rises above ``GATE_DBFS``;
    ``ffmpeg.FfmpegTimeout`` propagates."""
    args = [
        *ffmpeg.input_args(source),
        "-map", "0:a:0", "-vn",
        # One channel: how a track sounds does not depend on where things are panned. (Channels
        # that cancel exactly would read as silence; recordings do not.)
        "-ac", "1", "-ar", str(SAMPLE_RATE_HZ),
        "-c:a", "pcm_f32le", "-f", "f32le",
        # Only errors on stderr, so its kept tail is the reason for a failure, not progress lines.
        "-v", "error", "-nostats",
        "pipe:1",
    ]  # fmt: skip
    statistics = _Statistics()
    try:
        with ffmpeg.stream(args, timeout_s=timeout_s, background=background) as pcm:
            for chunk in _chunks(pcm, _CHUNK_SAMPLES):
                statistics.add(chunk)
    except subprocess.CalledProcessError as failure:
        logger.warning(
            "embedding failed", extra={"returncode": failure.returncode, "stderr_tail": str(failure.stderr)[-2000:]}
        )
        raise StepFailed(
            "audio_unreadable", "We could not analyse this audio to find similar tracks: it did not decode."
        ) from failure
    if statistics.samples == 0:
        raise StepFailed(
            "audio_unreadable", "We could not analyse this audio to find similar tracks: it decoded to nothing."
        )
    features = statistics.features()
    if features is None:
        raise StepFailed("audio_silent", "This audio is silent: there is nothing to compare it with.")
    return Embedding(
        version=VERSION,
        vector=tuple(round(float(value), 5) + 0.0 for value in features),  # + 0.0: no -0.0
        analysed_ms=statistics.samples * 1000 // SAMPLE_RATE_HZ,
    )


def _chunks(pcm: IO[bytes], samples: int) -> Iterable[NDArray[np.float32]]:
    """The pipe's float32 samples, ``samples`` at a time (the last chunk may be shorter)."""
    size = samples * 4
    while data := pcm.read(size):
        # A killed ffmpeg can stop mid-sample; the watchdog's FfmpegTimeout follows.
        usable = len(data) - len(data) % 4
        if usable:
            yield np.frombuffer(data[:usable], dtype="<f4").astype(np.float32, copy=False)


class _Statistics:
    """Running sums over the frames of one track, fed its samples in chunks of any size: the
    frames are cut at the same sample positions however the samples arrive."""

    def __init__(self) -> None:
        self.samples = 0
        self.frames = 0  # frames above the gate
        self._pending: NDArray[np.float32] = np.zeros(0, dtype=np.float32)
        self._framed = False
        # Last frame's log-mel spectrum, or None if there is none or it was below the gate.
        self._previous: NDArray[np.float32] | None = None
        self._band_sum = np.zeros(MEL_BANDS)
        self._band_squares = np.zeros(MEL_BANDS)
        # Per global feature: sum, sum of squares, count (flux needs two frames, so counts differ).
        self._global_sum = np.zeros(3)
        self._global_squares = np.zeros(3)
        self._global_count = np.zeros(3)

    def add(self, samples: NDArray[np.float32]) -> None:
        self.samples += len(samples)
        pending = np.concatenate((self._pending, samples))
        count = 0 if len(pending) < N_FFT else 1 + (len(pending) - N_FFT) // HOP
        if count:
            self._frames(pending[: (count - 1) * HOP + N_FFT])
            self._framed = True
        # A copy: a view would keep the whole concatenated chunk alive.
        self._pending = pending[count * HOP :].copy()

    def features(self) -> NDArray[np.float64] | None:
        """The normalised vector, or None if no frame rose above the gate."""
        if not self._framed and self.samples:
            # Shorter than one frame: analyse it looped to a frame's length (padding with silence
            # would put it below the gate).
            self._frames(np.resize(self._pending, N_FFT))
            self._framed = True
        if self.frames == 0:
            return None
        mean = self._band_sum / self.frames
        spread = np.sqrt(np.maximum(0.0, self._band_squares / self.frames - mean**2))
        count = np.maximum(self._global_count, 1)
        global_mean = self._global_sum / count
        global_std = np.sqrt(np.maximum(0.0, self._global_squares / count - global_mean**2))
        flux, centroid, level = zip(global_mean, global_std, strict=True)
        # The centroid mean is centred on the middle band, where pink noise puts it: "brighter or
        # darker than usual" has a sign, as every other feature of the vector can.
        summary = np.array([flux[0], flux[1], centroid[0] - 0.5, centroid[1], level[1]])
        vector: NDArray[np.float64] = np.concatenate(
            (
                (mean - mean.mean()) / (_TIMBRE_SCALE * math.sqrt(MEL_BANDS)),
                spread / (_MOVEMENT_SCALE * math.sqrt(MEL_BANDS)),
                summary / (_GLOBAL_SCALES * math.sqrt(len(GLOBALS))),
            )
        )
        norm = float(np.linalg.norm(vector))
        # All zeros only for a perfectly steady, perfectly pink signal: left so, similar to nothing.
        return vector / norm if norm > 0 else vector

    def _frames(self, signal: NDArray[np.float32]) -> None:
        """Adds the frames of ``signal``, which holds a whole number of them (N_FFT + k x HOP)."""
        frames = np.lib.stride_tricks.sliding_window_view(signal, N_FFT)[::HOP]
        spectrum = np.fft.rfft(frames * _WINDOW, axis=1)
        power = spectrum.real**2 + spectrum.imag**2
        mel = power @ _FILTERBANK.T
        log_mel = np.log(_SILENCE + mel)
        log_mel = np.maximum(log_mel, log_mel.max(axis=1, keepdims=True) - _FLOOR_LN)
        # Gated on the quietest quarter, not the frame's mean: where silence ends, the first frames
        # are part silence and part music, 20-40 dB below the music, and a handful of them would
        # dominate the level and movement spreads of a short track. This way at most one frame
        # per silence boundary counts, and it is at least three quarters music.
        hops = signal.reshape(-1, HOP)
        quarters = np.lib.stride_tricks.sliding_window_view(np.einsum("ij,ij->i", hops, hops) / HOP, _QUARTERS)
        level = quarters.mean(axis=1)
        loud = quarters.min(axis=1) >= _GATE_POWER

        # Onset strength: mean rise over bands from the previous frame, where both are loud.
        previous_loud = np.concatenate(([self._previous is not None], loud[:-1]))
        previous = np.concatenate((log_mel[:1] if self._previous is None else self._previous[None, :], log_mel[:-1]))
        flux = np.maximum(0.0, log_mel - previous).mean(axis=1)[loud & previous_loud]
        self._previous = log_mel[-1].copy() if loud[-1] else None

        log_mel, mel, level = log_mel[loud], mel[loud], level[loud]
        if not len(level):
            return
        self.frames += len(level)
        log64 = log_mel.astype(np.float64)
        self._band_sum += log64.sum(axis=0)
        self._band_squares += (log64**2).sum(axis=0)
        centroid = (mel @ _BAND_POSITION) / np.maximum(mel.sum(axis=1), np.float32(_SILENCE))
        level_db = 10 * np.log10(level)
        for index, values in enumerate((flux, centroid, level_db)):
            values64 = values.astype(np.float64)
            self._global_sum[index] += values64.sum()
            self._global_squares[index] += (values64**2).sum()
            self._global_count[index] += len(values64)
