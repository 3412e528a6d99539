"""Issue 4's acceptance: a 3-minute WAV, a FLAC, an MP3 and an AIFF uploaded through the local
stack reach ready, and every rendition decodes with ffmpeg with the expected codec, bitrate
(+-10 %) and duration (+-50 ms)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest

from functions.media.probe import probe
from tests.conftest import FFMPEG

from .conftest import LocalStackProcess

TARGET_KBPS = {"aac": 256, "opus": 160, "mp3": 320}
CODECS = {"aac": "aac", "opus": "opus", "mp3": "mp3"}


def music(path: Path, seconds: float, codec_args: tuple[str, ...] = ()) -> Path:
    """Decorrelated stereo pink noise under a chord: dense like a real mix, so every encoder spends
    its bitrate. (Identical channels, or tones over quiet noise, let the average-bitrate AAC encoder
    get away with ~222 kb/s of 256: mid/side coding and sparse spectra need fewer bits.)"""
    noise = f"anoisesrc=color=pink:amplitude=0.3:duration={seconds}"
    graph = (
        f"{noise}:seed=1[l];{noise}:seed=2[r];[l][r]amerge=inputs=2[noise];"
        f"sine=frequency=220:duration={seconds}[a];sine=frequency=277:duration={seconds}[b];"
        "[a][b]amix=inputs=2,pan=stereo|c0=c0|c1=c0[chord];[noise][chord]amix=inputs=2,volume=1.5[out]"
    )
    subprocess.run(
        [FFMPEG, "-v", "error", "-y", "-filter_complex", graph, "-map", "[out]", "-ar", "44100",
         *codec_args, str(path)],
        check=True,
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def uploader(local_stack: LocalStackProcess) -> str:
    response = httpx.put(
        f"{local_stack.api}/v1/artists/me", json={"handle": "grace"}, headers=local_stack.auth("grace")
    )
    assert response.status_code == 200
    return "grace"


@pytest.mark.parametrize(
    ("name", "content_type", "seconds", "codec_args"),
    [
        ("three-minutes.wav", "audio/wav", 180.0, ()),
        ("take.flac", "audio/flac", 20.0, ()),
        ("take.mp3", "audio/mpeg", 20.0, ("-b:a", "192k")),
        ("take.aiff", "audio/aiff", 20.0, ()),
    ],
)
def test_uploads_reach_ready_with_renditions_of_the_right_codec_bitrate_and_duration(  # noqa: PLR0917
    local_stack, uploader, tmp_path, name, content_type, seconds, codec_args
):
    source = music(tmp_path / name, seconds, codec_args)
    source_ms = probe(str(source), min_ms=0, max_ms=10**9).duration_ms
    auth = local_stack.auth(uploader)
    body = {"fileName": name, "contentType": content_type, "byteSize": source.stat().st_size}
    intent = httpx.post(f"{local_stack.api}/v1/uploads", json=body, headers=auth).json()
    put = httpx.put(intent["signedUrl"], content=source.read_bytes(), headers=intent["requiredHeaders"], timeout=60)
    assert put.status_code == 200

    deadline = time.monotonic() + 180
    while True:
        track = httpx.get(f"{local_stack.api}/v1/tracks/{intent['trackId']}", headers=auth).json()
        # Playable ("ready") comes with the first rendition; each of the others is its own task.
        if track["status"] == "failed" or set(track.get("renditions") or {}) >= set(TARGET_KBPS):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert track["status"] == "ready", track

    for fmt, target in TARGET_KBPS.items():
        redirect = httpx.get(
            f"{local_stack.api}/v1/tracks/{intent['trackId']}/stream?format={fmt}", headers=auth, follow_redirects=False
        )
        rendition = tmp_path / f"rendition-{fmt}"
        rendition.write_bytes(httpx.get(redirect.headers["location"]).content)
        facts = probe(str(rendition), min_ms=0, max_ms=10**9)
        kbps = rendition.stat().st_size * 8 / facts.duration_ms  # bits per ms = kbit/s, container included
        assert facts.codec == CODECS[fmt], (fmt, facts)
        assert abs(kbps - target) <= 0.10 * target, (fmt, round(kbps, 1))
        assert abs(facts.duration_ms - source_ms) <= 50, (fmt, facts.duration_ms, source_ms)
