"""The local stack stopped with Ctrl-C and started again on the same data directory keeps what it
held (docs/local-stack.md#what-survives-a-restart); a damaged store stops the start, named."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from PIL import Image

from .conftest import ROOT, LocalStackProcess, interrupt, launch


def _ready_track(
    stack: LocalStackProcess, user: str, wav: Path, *, content: bytes | None = None, **fields: str
) -> dict:
    """``wav`` uploaded (or ``content`` under its name) with the intent's ``fields``, and processed."""
    auth = stack.auth(user)
    assert httpx.put(f"{stack.api}/v1/artists/me", json={"handle": user}, headers=auth).status_code == 200
    data = wav.read_bytes() if content is None else content
    body = {"fileName": wav.name, "contentType": "audio/wav", "byteSize": len(data), **fields}
    intent = httpx.post(f"{stack.api}/v1/uploads", json=body, headers=auth).json()
    put = httpx.put(intent["signedUrl"], content=data, headers=intent["requiredHeaders"], timeout=60)
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


def _stream(stack: LocalStackProcess, user: str, track_id: str, what: str = "stream") -> bytes:
    redirect = httpx.get(
        f"{stack.api}/v1/tracks/{track_id}/{what}", headers=stack.auth(user), follow_redirects=False, timeout=30
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


def _processing_status(stack: LocalStackProcess, user: str, track_id: str) -> dict:
    return dict(
        httpx.get(f"{stack.api}/v1/tracks/{track_id}/processing-status", headers=stack.auth(user), timeout=10).json()
    )


def test_a_track_interrupted_while_processing_reaches_ready_after_a_start(tmp_path, make_audio):
    # Given a stack processing a 3-minute WAV (its lanes running), stopped with Ctrl-C
    wav = make_audio("tone-180s.wav", seconds=180.0)
    data_dir = tmp_path / "data"
    first = launch(tmp_path, data_dir=data_dir)
    try:
        auth = first.auth("ines")
        assert httpx.put(f"{first.api}/v1/artists/me", json={"handle": "ines"}, headers=auth).status_code == 200
        body = {"fileName": wav.name, "contentType": "audio/wav", "byteSize": wav.stat().st_size}
        intent = httpx.post(f"{first.api}/v1/uploads", json=body, headers=auth).json()
        put = httpx.put(intent["signedUrl"], content=wav.read_bytes(), headers=intent["requiredHeaders"], timeout=60)
        assert put.status_code == 200
        track_id = intent["trackId"]
        deadline = time.monotonic() + 60
        while True:
            status = _processing_status(first, "ines", track_id)
            running = [lane["name"] for lane in status.get("lanes", []) if lane["state"] == "running"]
            if (status.get("status") == "processing" and len(running) > 1) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status["status"] == "processing", status
        assert len(running) > 1, status
    finally:
        interrupt(first)

    # When it starts again on the same data directory, and nobody calls anything
    second = launch(tmp_path, data_dir=data_dir, dev_keys=first.dev_keys)
    try:
        # Then the track's workflow runs again to its end: ready, every lane settled
        deadline = time.monotonic() + 240
        while True:
            status = _processing_status(second, "ines", track_id)
            lanes = {lane["name"]: lane["state"] for lane in status["lanes"]}
            settled = status["workflowStatus"] != "running" and "running" not in lanes.values()
            if (status["status"] in ("ready", "failed") and settled) or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert status["status"] == "ready", (status, second.log.read_text()[-3000:])
        assert "queued" not in lanes.values() and "running" not in lanes.values(), status
        # ... the lanes the stop cut short among them: run again, not left as they were
        attempts = {lane["name"]: lane["attempts"] for lane in status["lanes"]}
        assert all(attempts[name] >= 2 for name in running), (running, status)
    finally:
        interrupt(second)


def _track(stack: LocalStackProcess, user: str, track_id: str) -> dict:
    return dict(httpx.get(f"{stack.api}/v1/tracks/{track_id}", headers=stack.auth(user), timeout=10).json())


def test_a_new_version_interrupted_while_processing_goes_live_after_a_start(tmp_path, wav_3s, make_audio):
    # Given a ready track, and a new version of it (a 3-minute WAV) uploaded and finalized, still
    # processing when the stack is stopped with Ctrl-C
    long_wav = make_audio("tone-180s.wav", seconds=180.0)
    data_dir = tmp_path / "data"
    first = launch(tmp_path, data_dir=data_dir)
    try:
        track_id = _ready_track(first, "vera", wav_3s)["trackId"]
        deadline = time.monotonic() + 60  # a version is taken once the original's run has ended
        while _processing_status(first, "vera", track_id)["workflowStatus"] == "running":
            assert time.monotonic() < deadline, _processing_status(first, "vera", track_id)
            time.sleep(0.3)
        auth = first.auth("vera")
        body = {"fileName": long_wav.name, "contentType": "audio/wav", "byteSize": long_wav.stat().st_size}
        created = httpx.post(f"{first.api}/v1/tracks/{track_id}/versions/uploads", json=body, headers=auth)
        assert created.status_code == 201, created.text
        version = created.json()
        put = httpx.put(
            version["signedUrl"], content=long_wav.read_bytes(), headers=version["requiredHeaders"], timeout=60
        )
        assert put.status_code == 200, put.text
        finalized = httpx.post(version["finalizeUrl"], headers=auth, timeout=30)
        assert finalized.json().get("status") in ("finalized", "already_finalized"), finalized.text
        during = _track(first, "vera", track_id)
        assert (during["pendingVersion"] or {}).get("status") == "processing", during
    finally:
        interrupt(first)
    # ... its execution recorded as running at the stop
    raw_version = version["uploadId"].removeprefix("upl_")
    recorded = json.loads((data_dir / "executions.json").read_text())["running"]
    assert any(raw_version in json.dumps(json.loads(e["input"]).get("version")) for e in recorded), recorded

    # When it starts again on the same data directory, and nobody calls anything
    second = launch(tmp_path, data_dir=data_dir, dev_keys=first.dev_keys)
    try:
        # Then the version's run starts again and ends with the version live
        deadline = time.monotonic() + 240
        while True:
            track = _track(second, "vera", track_id)
            pending = track["pendingVersion"]
            if track["uploadId"] == version["uploadId"] or (pending or {}).get("status") == "failed":
                break
            if time.monotonic() > deadline:
                break
            time.sleep(1)
        assert track["uploadId"] == version["uploadId"], (track, second.log.read_text()[-3000:])
        assert track["pendingVersion"] is None, track
        assert track["status"] == "ready", track
        assert "workflow executions started again after a restart" in second.log.read_text()
    finally:
        interrupt(second)


def _with_artwork(stack: LocalStackProcess, user: str, track_id: str) -> bytes:
    """A cover for the track, uploaded and rendered; returns the variant the API serves."""
    image = io.BytesIO()
    Image.new("RGB", (400, 400), (30, 90, 200)).save(image, format="PNG")
    body = {"fileName": "cover.png", "contentType": "image/png", "byteSize": len(image.getvalue())}
    intent = httpx.post(f"{stack.api}/v1/tracks/{track_id}/artwork/uploads", json=body, headers=stack.auth(user))
    assert intent.status_code == 201, intent.text
    upload = intent.json()
    put = httpx.put(upload["signedUrl"], content=image.getvalue(), headers=upload["requiredHeaders"])
    assert put.status_code == 200, put.text
    deadline = time.monotonic() + 60
    while True:
        served = httpx.get(f"{stack.api}/v1/tracks/{track_id}/artwork", headers=stack.auth(user))
        if served.status_code == 302 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert served.status_code == 302, served.text
    return _stream(stack, user, track_id, "artwork")


def _album_titles(stack: LocalStackProcess, user: str, slug: str) -> list[str]:
    page = httpx.get(f"{stack.api}/v1/artists/{user}/albums/{slug}", headers=stack.auth(user))
    assert page.status_code == 200, page.text
    return [track["title"] for track in page.json()["tracks"]]


def _may_upload(stack: LocalStackProcess, user: str) -> bool:
    body = {"fileName": "x.wav", "contentType": "audio/wav", "byteSize": 1000}
    response = httpx.post(f"{stack.api}/v1/uploads", json=body, headers=stack.auth(user))
    assert response.status_code in (201, 403), response.text
    return response.status_code == 201


def test_after_a_kill_9_the_catalog_its_streams_artwork_entitlements_and_supporters_are_all_there(tmp_path, wav_3s):
    # Given a stack (in a process group of its own) with an album of two processed tracks in order,
    # artwork on the first, a supporter, and an artist whose upload entitlement was revoked
    data_dir = tmp_path / "data"
    first = launch(tmp_path, data_dir=data_dir, own_process_group=True)
    try:
        wav = wav_3s.read_bytes()
        one = _ready_track(first, "kim", wav_3s, content=wav[:-4] + b"\x01\x00\x00\x00", title="One", album="Kept")
        two = _ready_track(first, "kim", wav_3s, content=wav[:-4] + b"\x02\x00\x00\x00", title="Two", album="Kept")
        assert one["album"] == two["album"] == "Kept", one
        artwork = _with_artwork(first, "kim", one["trackId"])
        streams = {track["trackId"]: _stream(first, "kim", track["trackId"]) for track in (one, two)}
        granted = httpx.put(f"{first.api}/v1/artists/me/supporters/sam", headers=first.auth("kim"))
        assert granted.status_code == 200, granted.text
        assert httpx.put(f"{first.api}/v1/artists/me", json={"handle": "rex"}, headers=first.auth("rex")).is_success
        revoke = [sys.executable, "-m", "local.cli", "entitlement", "revoke", "rex", "--reason", "chargeback"]
        env = {**os.environ, "MOTO_PORT": str(urlsplit(first.moto).port)}
        subprocess.run(revoke, cwd=ROOT, env=env, check=True, capture_output=True, timeout=60)
        assert not _may_upload(first, "rex")
        album = _album_titles(first, "kim", "kept")
        assert album == ["One", "Two"]
        tracks = {t["trackId"]: httpx.get(f"{first.api}/v1/tracks/{t['trackId']}", headers=first.auth("kim")).json()
                  for t in (one, two)}  # fmt: skip
        # ... and nothing written since for longer than the snapshot interval, but for one last
        # supporter granted just before the kill (in the journal, not yet in a snapshot)
        time.sleep(5)
        assert httpx.put(f"{first.api}/v1/artists/me/supporters/tia", headers=first.auth("kim")).status_code == 200
    finally:
        # When the whole process group is killed (no snapshot at stop, no clean exit)
        os.killpg(first.process.pid, signal.SIGKILL)
        first.process.wait(timeout=10)

    # ... and the stack starts again on the same data directory
    second = launch(tmp_path, data_dir=data_dir, dev_keys=first.dev_keys)
    try:
        # Then the tracks are there as they were, in the album's order, streaming the same bytes,
        # with the same artwork, both supporters and the revoked entitlement
        for track_id, before in tracks.items():
            again = httpx.get(f"{second.api}/v1/tracks/{track_id}", headers=second.auth("kim")).json()
            assert again == before
            assert _stream(second, "kim", track_id) == streams[track_id]
        assert _album_titles(second, "kim", "kept") == album
        assert _stream(second, "kim", one["trackId"], "artwork") == artwork
        supporters = httpx.get(f"{second.api}/v1/artists/me/supporters", headers=second.auth("kim")).json()
        assert sorted(s["userId"] for s in supporters["supporters"]) == ["sam", "tia"]
        assert not _may_upload(second, "rex")
        assert _may_upload(second, "kim")
    finally:
        interrupt(second)
