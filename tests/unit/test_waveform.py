"""Waveform runs the real ffmpeg over signals whose peaks are known in advance."""

import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest

from functions.api.routers.uploads import WaveformBody
from functions.media.waveform import Waveform, waveform
from functions.step_errors import StepFailed

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()
MINUS_6_DBFS = 10 ** (-6 / 20)  # 0.5012
TONE = "sin(2*PI*1000*t)"  # 1 kHz: every bucket of these tests holds at least one full period


def render(path: Path, expression: str, *, seconds: float = 3.0, rate: int = 44100, args=()) -> Path:
    """``expression`` is aevalsrc's, one per channel separated by ``|``; written as 16-bit WAV
    unless ``args`` say otherwise."""
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-f", "lavfi", "-i", f"aevalsrc='{expression}':s={rate}:d={seconds}", *args, str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


def peaks_of(path: Path, *, seconds: float = 3.0, rate: int = 44100, channels: int = 2, **kwargs) -> Waveform:
    return waveform(str(path), duration_ms=round(seconds * 1000), sample_rate_hz=rate, channels=channels, **kwargs)


def test_a_sine_at_minus_6_dbfs_draws_at_half_scale_everywhere(tmp_path):
    tone = f"{MINUS_6_DBFS}*{TONE}"
    result = peaks_of(render(tmp_path / "half.wav", f"{tone}|{tone}"))
    assert set(result.peaks) == {1024, 2048}
    for count, peaks in result.peaks.items():
        assert len(peaks) == count
        assert all(abs(peak - 0.5) <= 0.02 for peak in peaks), (min(peaks), max(peaks))


def test_silence_then_sound_draws_flat_then_at_the_known_level(tmp_path):
    loud_after_1_5_s = f"if(gte(t,1.5),{MINUS_6_DBFS}*{TONE},0)"
    result = peaks_of(render(tmp_path / "step.wav", f"{loud_after_1_5_s}|{loud_after_1_5_s}"))
    for count, peaks in result.peaks.items():
        half = count // 2
        # The one bucket that straddles 1.5 s may go either way; every other one is exact.
        assert peaks[: half - 1] == [0.0] * (half - 1)
        assert all(abs(peak - 0.5) <= 0.02 for peak in peaks[half + 1 :])


def test_channels_are_combined_by_their_largest_peak_not_mixed(tmp_path):
    # Left and right in opposite phase: a mixdown would be silence. And a quiet right channel:
    # an average would draw at 0.375. The loudest channel is what the display must show.
    opposite = render(tmp_path / "opposite.wav", f"{MINUS_6_DBFS}*{TONE}|-{MINUS_6_DBFS}*{TONE}")
    lopsided = render(tmp_path / "lopsided.wav", f"0.25*{TONE}|{MINUS_6_DBFS}*{TONE}")
    for path in (opposite, lopsided):
        assert all(abs(peak - 0.5) <= 0.02 for peak in peaks_of(path, buckets=(256,)).peaks[256])


def test_a_mono_48k_24bit_ramp_rises_steadily(tmp_path):
    # Amplitude rising linearly from 0 to 1 over the file: bucket i of n peaks at about (i+1)/n.
    ramp = render(tmp_path / "ramp.wav", f"(t/3)*{TONE}", rate=48000, args=("-c:a", "pcm_s24le"))
    result = peaks_of(ramp, rate=48000, channels=1, buckets=(64,))
    peaks = result.peaks[64]
    assert all(abs(peak - (i + 1) / 64) <= 0.02 for i, peak in enumerate(peaks)), peaks
    assert result.to_json(64) == {"peaks": peaks, "sampleRateHz": 48000, "channels": 1}


def test_a_two_second_file_gets_exactly_2048_peaks_in_range(tmp_path):
    noise = "0.9*sin(2*PI*1000*t)*random(0)"
    short = render(tmp_path / "short.wav", f"{noise}|{noise}", seconds=2.0)
    # Fewer than 44 samples per bucket; odd counts do not divide the length evenly.
    result = peaks_of(short, seconds=2.0, buckets=(2048, 1024, 1000, 2047, 16))
    for count, peaks in result.peaks.items():
        assert len(peaks) == count
        assert all(0.0 <= peak <= 1.0 for peak in peaks)
        assert all(peak == round(peak, 4) for peak in peaks)
        assert max(peaks) > 0.5
    # What finalize would store passes the API's own seed 004 validation.
    WaveformBody.model_validate(result.to_json(2048))


def test_the_count_is_exact_even_when_the_duration_given_is_off(tmp_path):
    tone = render(tmp_path / "tone.wav", f"0.5*{TONE}|0.5*{TONE}", seconds=2.0)
    for claimed_seconds in (1.7, 2.6):  # more and fewer frames than planned come back
        result = peaks_of(tone, seconds=claimed_seconds)
        assert [len(result.peaks[count]) for count in (1024, 2048)] == [1024, 2048]
        assert all(abs(peak - 0.5) <= 0.02 for peak in result.peaks[2048])


def test_a_clip_shorter_than_the_bucket_count_is_stretched_to_it(tmp_path):
    clip = render(tmp_path / "clip.wav", "0.5|0.5", seconds=0.02)  # 882 samples of DC at 0.5
    result = peaks_of(clip, seconds=0.02)
    assert len(result.peaks[2048]) == 2048
    assert all(abs(peak - 0.5) <= 0.001 for peak in result.peaks[2048])


def test_float_overs_are_drawn_at_full_scale(tmp_path):
    hot = render(tmp_path / "hot.wav", f"1.5*{TONE}|0", args=("-c:a", "pcm_f32le"))
    assert all(peak == 1.0 for peak in peaks_of(hot, buckets=(64,)).peaks[64])


def test_audio_that_does_not_decode_fails_permanently(png_named_wav):
    with pytest.raises(StepFailed) as failure:
        waveform(str(png_named_wav), duration_ms=3000, sample_rate_hz=44100, channels=2)
    assert failure.value.code == "waveform_failed"


@pytest.mark.parametrize("kwargs", [{"buckets": ()}, {"buckets": (0,)}, {"duration_ms": 0}])
def test_nonsense_arguments_are_a_programming_error(wav_3s, kwargs):
    arguments = {"duration_ms": 3000, "sample_rate_hz": 44100, "channels": 2, **kwargs}
    with pytest.raises(ValueError):
        waveform(str(wav_3s), **arguments)
