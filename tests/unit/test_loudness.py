"""Loudness runs the real ffmpeg over signals whose loudness follows from BS.1770 by hand.

A 1 kHz sine passes the K-weighting filter at about +0.7 dB, and BS.1770's -0.691 offset cancels
that, so one channel carrying a sine with peak P dBFS (mean square P - 3.01 dB) reads P - 3.01 LUFS.
Channels add by power: the same sine in left and right reads P - 3.01 + 3.01 = P LUFS. Mono is
measured as dual mono (it plays from both speakers), so a mono sine also reads P LUFS.
"""

import json
import math
import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest

from functions.media import loudness as loudness_module
from functions.media.loudness import MAX_BOOST_DB, REFERENCE_LUFS, loudness, playback_gain
from functions.step_errors import StepFailed

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def sine(dbfs: float) -> str:
    return f"{10 ** (dbfs / 20)}*sin(2*PI*1000*t)"


def render(path: Path, expression: str, *, seconds: float = 4.0, rate: int = 48000) -> Path:
    """``expression`` is aevalsrc's, one per channel separated by ``|``; written as 24-bit WAV."""
    subprocess.run(
        [
            FFMPEG, "-hide_banner", "-nostdin", "-y", "-v", "error",
            "-f", "lavfi", "-i", f"aevalsrc='{expression}':s={rate}:d={seconds}", "-c:a", "pcm_s24le", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize(
    ("channels", "expected_lufs"),
    [
        ("mono", -20.0),  # dual mono: as loud as the stereo case below
        ("both", -20.0),  # -23.01 per channel, two channels: +3.01
        ("left only", -23.01),  # one channel carrying it, the other silent
    ],
)
def test_a_minus_20_dbfs_sine_reads_what_bs1770_predicts(tmp_path, channels, expected_lufs):
    expression = {"mono": sine(-20), "both": f"{sine(-20)}|{sine(-20)}", "left only": f"{sine(-20)}|0"}[channels]
    result = loudness(str(render(tmp_path / "tone.wav", expression)))
    assert result.integrated_lufs == pytest.approx(expected_lufs, abs=0.5)
    assert result.true_peak_dbtp == pytest.approx(-20.0, abs=0.5)
    assert result.loudness_range_lu == pytest.approx(0.0, abs=0.5)  # a steady tone has no range
    # Quiet, with plenty of headroom: the whole way to the reference.
    assert result.gain_db == pytest.approx(REFERENCE_LUFS - result.integrated_lufs, abs=0.051)


def test_a_loud_track_is_turned_down_by_the_full_difference(tmp_path):
    result = loudness(str(render(tmp_path / "loud.wav", f"{sine(-3)}|{sine(-3)}")))
    assert result.integrated_lufs == pytest.approx(-3.0, abs=0.5)
    assert result.gain_db == pytest.approx(REFERENCE_LUFS - result.integrated_lufs, abs=0.051)
    assert result.gain_db < -10


def test_a_quiet_track_with_loud_peaks_is_boosted_only_up_to_minus_1_dbtp(tmp_path):
    # -30 dBFS throughout but for a 50 ms burst at -4 dBFS: the burst's energy lifts the integrated
    # loudness to about -22 LUFS, so +8 dB would reach the reference, but the burst's peak leaves
    # only 3 dB of headroom below -1 dBTP.
    body = f"if(between(t,2,2.05),{sine(-4)},{sine(-30)})"
    result = loudness(str(render(tmp_path / "burst.wav", f"{body}|{body}")))
    assert result.true_peak_dbtp == pytest.approx(-4.0, abs=0.5)
    assert REFERENCE_LUFS - result.integrated_lufs > (-1.0 - result.true_peak_dbtp) + 2  # the cap binds
    assert result.gain_db == pytest.approx(-1.0 - result.true_peak_dbtp, abs=0.051)
    assert result.true_peak_dbtp + result.gain_db <= -1.0


def test_a_very_quiet_track_is_boosted_at_most_max_boost(tmp_path):
    result = loudness(str(render(tmp_path / "faint.wav", sine(-45))))
    assert result.integrated_lufs == pytest.approx(-45.0, abs=0.5)  # wants +31 dB, has 44 dB of headroom
    assert result.gain_db == MAX_BOOST_DB


def test_silence_gets_no_gain_and_finite_numbers(tmp_path):
    result = loudness(str(render(tmp_path / "silence.wav", "0|0", seconds=3.0)))
    assert result.integrated_lufs == loudness_module.SILENCE_LUFS
    assert result.true_peak_dbtp == loudness_module.TRUE_PEAK_FLOOR_DBTP
    assert result.loudness_range_lu == 0.0
    assert result.gain_db == 0.0
    json.dumps(result.to_json(), allow_nan=False)  # no -inf: JSON and DynamoDB can hold it


def test_to_json_uses_the_api_names(wav_3s):
    document = loudness(str(wav_3s)).to_json()
    assert set(document) == {"integratedLufs", "loudnessRangeLu", "truePeakDbtp", "gainDb", "referenceLufs"}
    assert document["referenceLufs"] == REFERENCE_LUFS
    assert all(isinstance(value, float) and math.isfinite(value) for value in document.values())


@pytest.mark.parametrize(
    ("integrated", "true_peak", "gain"),
    [
        (-20.0, -10.0, 6.0),  # headroom to spare: the whole way
        (-20.0, -4.0, 3.0),  # capped by the peak
        (-20.0, 0.5, 0.0),  # already over the ceiling: no boost, but never turned down either
        (-8.3, 0.9, -5.7),  # too loud: turned down regardless of the peak
        (-14.0, -1.0, 0.0),
        (-60.0, -40.0, MAX_BOOST_DB),  # capped by MAX_BOOST_DB
        (-70.0, -60.0, 0.0),  # at the gate: nothing to match
        (-math.inf, -math.inf, 0.0),
    ],
)
def test_playback_gain_policy(integrated, true_peak, gain):
    assert playback_gain(integrated, true_peak) == gain


def test_audio_that_does_not_decode_fails_permanently(png_named_wav):
    with pytest.raises(StepFailed) as failure:
        loudness(str(png_named_wav))
    assert failure.value.code == "loudness_failed"
