"""Probe reads the original the way the workflow gives it: a presigned GET on storage. ffmpeg
streams the audio; the header's declared length comes from ranged GETs of the file's head."""

from __future__ import annotations

from pathlib import Path

import pytest

from functions.data import storage
from functions.media.probe import probe
from functions.step_errors import StepFailed

from .conftest import Stack

LIMITS = {"min_ms": 1000, "max_ms": 3600 * 1000}


def stored(stack: Stack, key: str, data: bytes) -> str:
    stack.s3.put_object(Bucket=stack.resources.bucket, Key=key, Body=data)
    return storage.presign_get(key, expires_in=300)


def with_junk_before_the_audio(wav: bytes, junk_bytes: int) -> bytes:
    """The WAV with a JUNK chunk (as some recorders reserve for later metadata) before its
    ``fmt `` chunk, so the chunks that declare the length start beyond the first ranged read."""
    junk = b"JUNK" + junk_bytes.to_bytes(4, "little") + bytes(junk_bytes)
    body = wav[12:]
    riff_size = 4 + len(junk) + len(body)
    return b"RIFF" + riff_size.to_bytes(4, "little") + b"WAVE" + junk + body


def test_a_complete_wav_behind_a_presigned_url_is_probed(stack, wav_3s):
    url = stored(stack, "uploads/complete.wav", wav_3s.read_bytes())

    assert probe(url, **LIMITS).duration_ms == 3000


@pytest.mark.parametrize("junk_bytes", [0, 200_000], ids=["plain", "length-beyond-the-first-read"])
def test_a_wav_cut_short_behind_a_presigned_url_is_truncated(stack, wav_3s: Path, junk_bytes):
    data = wav_3s.read_bytes()
    if junk_bytes:
        data = with_junk_before_the_audio(data, junk_bytes)
        assert probe(stored(stack, "uploads/padded.wav", data), **LIMITS).duration_ms == 3000
    url = stored(stack, "uploads/cut.wav", data[: junk_bytes + 100_078])

    with pytest.raises(StepFailed) as failure:
        probe(url, **LIMITS)

    assert failure.value.code == "audio_truncated"
    assert "of the 3000 ms it declares" in failure.value.message
