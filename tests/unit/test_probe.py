"""Probe runs the real ffmpeg over real files (local paths: no network)."""

import random

import pytest

from functions.media.probe import probe
from functions.step_errors import StepFailed
from tests.conftest import render_audio

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


def data_chunk_offset(wav: bytes) -> int:
    """Where the RIFF ``data`` chunk's header starts (ffmpeg writes a LIST chunk before it)."""
    offset = 12
    while wav[offset : offset + 4] != b"data":
        offset += 8 + int.from_bytes(wav[offset + 4 : offset + 8], "little")
    return offset


def with_data_size(wav: bytes, size: int) -> bytes:
    at = data_chunk_offset(wav) + 4
    return wav[:at] + size.to_bytes(4, "little") + wav[at + 4 :]


@pytest.mark.parametrize(
    ("name", "keep"),
    [
        ("cut.wav", 100_001),  # mid-sample
        ("cut.wav", 100_078),  # on a frame boundary: nothing for the decoder to complain about
        ("cut.aiff", 100_001),
        ("cut.flac", 20_000),  # mid-frame
    ],
    ids=["wav-mid-sample", "wav-frame-boundary", "aiff", "flac"],
)
def test_a_file_cut_short_of_its_declared_length_is_truncated(make_audio, tmp_path, name, keep):
    # Given a real 3 s file whose end is cut off (its header still declares 3 s)
    cut = tmp_path / name
    cut.write_bytes(make_audio(f"full-{name}").read_bytes()[:keep])

    # When it is probed
    with pytest.raises(StepFailed) as failure:
        probe(str(cut), **LIMITS)

    # Then it is truncated, not corrupt, and the message says how much is there
    assert failure.value.code == "audio_truncated"
    assert "of the 3000 ms it declares" in failure.value.message


def test_a_wav_missing_only_its_last_frame_is_truncated(wav_3s, tmp_path):
    cut = tmp_path / "one-frame-short.wav"
    cut.write_bytes(wav_3s.read_bytes()[:-4])  # 16-bit stereo: one frame

    with pytest.raises(StepFailed) as failure:
        probe(str(cut), **LIMITS)

    assert failure.value.code == "audio_truncated"


def test_a_header_declaring_audio_with_none_after_it_is_truncated(wav_3s, tmp_path):
    data = wav_3s.read_bytes()
    header_only = tmp_path / "header-only.wav"
    header_only.write_bytes(data[: data_chunk_offset(data) + 8])

    with pytest.raises(StepFailed) as failure:
        probe(str(header_only), **LIMITS)

    assert failure.value.code == "audio_truncated"
    assert "0 ms of the 3000 ms" in failure.value.message


def test_an_rf64_wav_cut_short_is_truncated(make_audio, tmp_path):
    # RF64 keeps the real data size in its ds64 chunk; the data chunk says 0xFFFFFFFF
    full = make_audio("full.rf64.wav", codec_args=("-rf64", "always"))
    assert probe(str(full), **LIMITS).duration_ms == 3000
    cut = tmp_path / "cut.rf64.wav"
    cut.write_bytes(full.read_bytes()[:200_000])

    with pytest.raises(StepFailed) as failure:
        probe(str(cut), **LIMITS)

    assert failure.value.code == "audio_truncated"


@pytest.mark.parametrize("unrecorded", [0, 0xFFFFFFFF])
@pytest.mark.parametrize("tail", [0, 3], ids=["whole-frames", "partial-last-frame"])
def test_a_wav_whose_header_never_recorded_its_length_is_read_to_the_end(wav_3s, tmp_path, unrecorded, tail):
    # Given a WAV as a recorder that stopped without closing it leaves it: data size 0 (or -1),
    # the audio after it, possibly ending mid-frame
    data = with_data_size(wav_3s.read_bytes(), unrecorded)
    unclosed = tmp_path / "unclosed.wav"
    unclosed.write_bytes(data + bytes(tail))

    # When it is probed, Then its audio is what it holds
    assert probe(str(unclosed), **LIMITS).duration_ms == 3000


@pytest.mark.parametrize("name", ["empty.wav", "empty.aiff", "empty.flac"])
def test_a_header_with_zero_frames_and_nothing_after_it_is_unreadable(tmp_path, name):
    empty = render_audio(tmp_path / name, seconds=0.0, codec_args=("-t", "0"))

    with pytest.raises(StepFailed) as failure:
        probe(str(empty), **LIMITS)

    assert failure.value.code == "audio_unreadable"
    assert "holds no audio" in failure.value.message


def test_damage_inside_a_complete_file_is_still_corrupt(make_audio, tmp_path):
    data = bytearray(make_audio("whole.mp3", codec_args=("-b:a", "192k")).read_bytes())
    middle = len(data) // 2
    data[middle : middle + 3000] = random.Random(11).randbytes(3000)
    damaged = tmp_path / "damaged.mp3"
    damaged.write_bytes(bytes(data))

    with pytest.raises(StepFailed) as failure:
        probe(str(damaged), **LIMITS)

    assert failure.value.code == "audio_corrupt"


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
