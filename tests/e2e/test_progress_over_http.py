"""Live progress against the running local stack, as a browser's EventSource would use it: a
progress token in the URL (no Authorization header), connected before the PUT, streamed to the end."""

from __future__ import annotations

import json

import httpx

from .conftest import LocalStackProcess


def test_an_eventsource_style_client_follows_an_upload_to_ready(local_stack: LocalStackProcess, make_audio):
    user = "gina"
    audio = make_audio("progress-e2e.wav", seconds=2.0)
    profile = httpx.put(f"{local_stack.api}/v1/artists/me", json={"handle": user}, headers=local_stack.auth(user))
    assert profile.status_code == 200, profile.text
    body = {"fileName": "live.wav", "contentType": "audio/wav", "byteSize": audio.stat().st_size}
    intent = httpx.post(f"{local_stack.api}/v1/uploads", json=body, headers=local_stack.auth(user)).json()
    minted = httpx.post(
        f"{local_stack.api}/v1/uploads/{intent['uploadId']}/progress-tokens", headers=local_stack.auth(user)
    )
    assert minted.status_code == 201, minted.text

    phases: list[str] = []
    with httpx.stream("GET", minted.json()["progressUrl"], timeout=60) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue
            event = json.loads(line.removeprefix("data:"))
            phases.append(event["phase"])
            if event["phase"] == "validation":
                # Connected first; now the bytes go straight to storage and its event finalizes.
                put = httpx.put(intent["signedUrl"], content=audio.read_bytes(), headers=intent["requiredHeaders"])
                assert put.status_code == 200
            if event["terminal"]:
                break

    assert phases[:3] == ["validation", "storage", "transcoding"]
    assert phases[-1] == "ready"
