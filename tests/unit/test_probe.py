"""Probe runs the real ffmpeg over real files (local paths: no network)."""

import pytest

from functions.media.probe import probe
from functions.workflow.errors import StepFailed

LIMITS = {"min_ms": 1000, "max_ms": 3600 * 1000}


@pytest.mark.parametrize(
    ("name", "codec_args", "container", "codec"),
    [
        ("p.wav", (), "wav", "pcm_s16le"),
        ("p.flac", (), "flac", "flac"),
        ("p.mp3", ("-b:a", "192k"), "mp3", "mp3"),
        ("p.aiff", (), "aiff", "pcm_s16be"),
        ("p.ogg", ("-c:a", "libvorbis"), "ogg", "vorbis"),
        ("p.m4a", ("-c:a", "aac"), "mov,mp4,m4a,3gp,3g2,mj2", "aac"),
    ],
)
def test_probe_reports_what_the_file_really_is(make_audio, name, codec_args, container, codec):
    facts = probe(str(make_audio(name, seconds=3.0, codec_args=codec_args)), **LIMITS)
    assert facts.container == container
    assert facts.codec == codec
    assert facts.sample_rate_hz == 44100
    assert facts.channels == 2
    assert abs(facts.duration_ms - 3000) <= 50


def test_a_png_renamed_wav_is_unreadable(png_named_wav):
    with pytest.raises(StepFailed) as failure:
        probe(str(png_named_wav), **LIMITS)
    assert failure.value.code == "audio_unreadable"


def test_a_zero_byte_file_is_unreadable(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(StepFailed) as failure:
        probe(str(empty), **LIMITS)
    assert failure.value.code == "audio_unreadable"


def test_a_truncated_wav_is_reported_damaged(wav_3s, tmp_path):
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(wav_3s.read_bytes()[:100_001])  # cut mid-sample
    with pytest.raises(StepFailed) as failure:
        probe(str(truncated), **LIMITS)
    assert failure.value.code in {"audio_corrupt", "audio_truncated"}


def test_audio_shorter_than_the_minimum_is_refused(make_audio):
    with pytest.raises(StepFailed) as failure:
        probe(str(make_audio("short.wav", seconds=0.4)), **LIMITS)
    assert failure.value.code == "audio_too_short"


def test_audio_longer_than_the_maximum_is_refused(wav_3s):
    with pytest.raises(StepFailed) as failure:
        probe(str(wav_3s), min_ms=0, max_ms=2000)
    assert failure.value.code == "audio_too_long"


def test_mono_is_reported_as_one_channel(make_audio):
    assert probe(str(make_audio("mono.wav", channels=1)), **LIMITS).channels == 1
