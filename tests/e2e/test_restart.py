"""The local stack stopped with Ctrl-C and started again on the same data directory keeps what it
held (docs/local-stack.md#what-survives-a-restart); a damaged store stops the start, named."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from .conftest import ROOT, LocalStackProcess, interrupt, launch


def _ready_track(stack: LocalStackProcess, user: str, wav: Path) -> dict:
    auth = stack.auth(user)
    assert httpx.put(f"{stack.api}/v1/artists/me", json={"handle": user}, headers=auth).status_code == 200
    body = {"fileName": wav.name, "contentType": "audio/wav", "byteSize": wav.stat().st_size}
    intent = httpx.post(f"{stack.api}/v1/uploads", json=body, headers=auth).json()
    put = httpx.put(intent["signedUrl"], content=wav.read_bytes(), headers=intent["requiredHeaders"], timeout=60)
    assert put.status_code == 200
    deadline = time.monotonic() + 120
    while True:
        track = httpx.get(f"{stack.api}/v1/tracks/{intent['trackId']}", headers=auth).json()
        if track["status"] == "failed" or time.monotonic() > deadline:
            break
        # Every rendition, not only the first that makes it playable: the stop must not cut a lane.
        if track["status"] == "ready" and set(track.get("renditions") or {}) >= {"aac", "opus", "mp3"}:
            break
        time.sleep(0.5)
    assert track["status"] == "ready", track
    return dict(track)


def _stream(stack: LocalStackProcess, user: str, track_id: str) -> bytes:
    redirect = httpx.get(
        f"{stack.api}/v1/tracks/{track_id}/stream", headers=stack.auth(user), follow_redirects=False, timeout=30
    )
    assert redirect.status_code in (302, 307), redirect.text
    return httpx.get(redirect.headers["location"], timeout=30).content


def test_a_ready_track_and_its_stream_survive_a_stop_and_a_start(tmp_path, wav_3s):
    # Given a stack with a track uploaded and processed to ready, stopped with Ctrl-C
    data_dir = tmp_path / "data"
    first = launch(tmp_path, data_dir=data_dir)
    try:
        track = _ready_track(first, "rita", wav_3s)
        streamed = _stream(first, "rita", track["trackId"])
    finally:
        interrupt(first)

    # When it starts again on the same data directory (other ports, as after any restart)
    second = launch(tmp_path, data_dir=data_dir, dev_keys=first.dev_keys)
    try:
        # Then the track is there, ready, and streams the same bytes
        again = httpx.get(f"{second.api}/v1/tracks/{track['trackId']}", headers=second.auth("rita")).json()
        assert again["status"] == "ready"
        assert again.get("renditions") == track.get("renditions")
        assert _stream(second, "rita", track["trackId"]) == streamed
        assert "restored" in second.log.read_text()
    finally:
        interrupt(second)


def test_a_damaged_store_stops_the_start_with_its_path_and_is_left_as_it_is(tmp_path):
    # Given a data directory whose table snapshot was cut short
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "store.json").write_text('{"format": "tracklane-local-store", "version": 1}')
    snapshot = data_dir / "dynamodb.jsonl"
    snapshot.write_text('{"format": "tracklane-local-store", "version": 1, "of": "dynamodb", "items": 3}\n{"tab')

    # When the stack starts on it
    run = subprocess.run(
        [sys.executable, "-m", "local.stack"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "TRACKLANE_DATA_DIR": str(data_dir), "MOTO_PORT": "0", "PORT": "0"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    # Then it exits 1 naming the file, and the file is as it was
    assert run.returncode == 1, run.stdout + run.stderr
    assert str(snapshot) in run.stderr
    assert "--fresh" in run.stderr
    assert snapshot.read_text().endswith('{"tab')
