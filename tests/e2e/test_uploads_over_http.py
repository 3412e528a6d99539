"""The upload contract over real HTTP: presigned PUTs to moto, the S3-event pump and the runner."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from .conftest import LocalStackProcess


@pytest.fixture(scope="module")
def artist(local_stack: LocalStackProcess) -> str:
    for user in ("erin", "frank"):
        response = httpx.put(f"{local_stack.api}/v1/artists/me", json={"handle": user}, headers=local_stack.auth(user))
        assert response.status_code == 200, response.text
    return "erin"


def create_intent(stack: LocalStackProcess, user: str, size: int, **extra) -> dict:
    body = {"fileName": "take.wav", "contentType": "audio/wav", "byteSize": size, **extra}
    response = httpx.post(f"{stack.api}/v1/uploads", json=body, headers=stack.auth(user))
    assert response.status_code == 201, response.text
    return response.json()


def wait_for_status(
    stack: LocalStackProcess, user: str, track_id: str, *, until: set[str], timeout_s: float = 60
) -> dict:
    deadline = time.monotonic() + timeout_s
    while True:
        status = httpx.get(f"{stack.api}/v1/tracks/{track_id}/processing-status", headers=stack.auth(user)).json()
        if status["status"] in until or time.monotonic() > deadline:
            return status
        time.sleep(0.3)


def test_the_s3_event_alone_finalizes_and_processes(local_stack, artist, wav_3s):
    intent = create_intent(local_stack, artist, wav_3s.stat().st_size)
    put = httpx.put(intent["signedUrl"], content=wav_3s.read_bytes(), headers=intent["requiredHeaders"])
    assert put.status_code == 200

    status = wait_for_status(local_stack, artist, intent["trackId"], until={"ready", "failed"})

    assert status["status"] == "ready"
    # The client's own first finalize still answers "finalized"; processing ran once.
    finalize = httpx.post(intent["finalizeUrl"], headers=local_stack.auth(artist))
    assert finalize.json()["status"] == "finalized"
    again = httpx.post(intent["finalizeUrl"], headers=local_stack.auth(artist))
    assert again.json()["status"] == "already_finalized"


def test_a_put_with_another_content_type_is_refused_at_finalize(local_stack, artist, wav_3s):
    intent = create_intent(local_stack, artist, wav_3s.stat().st_size)
    httpx.put(intent["signedUrl"], content=wav_3s.read_bytes(), headers={"content-type": "audio/mpeg"})

    finalize = httpx.post(intent["finalizeUrl"], headers=local_stack.auth(artist))

    assert finalize.status_code == 422
    assert finalize.json()["status"] == "upload_asset_invalid"
    status = httpx.get(
        f"{local_stack.api}/v1/tracks/{intent['trackId']}/processing-status", headers=local_stack.auth(artist)
    ).json()
    # Never processed, and the track says why, as finalize did.
    assert (status["status"], status["workflowStatus"]) == ("rejected", "not_started")
    assert status["failure"]["code"] == "upload_asset_invalid"
    assert status["lanes"] == []


def test_another_owners_finalize_is_404(local_stack, artist, wav_3s):
    intent = create_intent(local_stack, artist, wav_3s.stat().st_size)
    response = httpx.post(intent["finalizeUrl"], headers=local_stack.auth("frank"))
    assert response.status_code == 404
    assert response.json()["status"] == "upload_intent_not_found"


def test_a_png_renamed_wav_fails_with_a_code(local_stack, artist, png_named_wav):
    intent = create_intent(local_stack, artist, png_named_wav.stat().st_size)
    httpx.put(intent["signedUrl"], content=png_named_wav.read_bytes(), headers=intent["requiredHeaders"])

    status = wait_for_status(local_stack, artist, intent["trackId"], until={"ready", "failed"})

    assert status["status"] == "failed"
    assert status["failure"]["code"] == "audio_unreadable"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"fileName": "a.wav"}, 422, "validation_failed"),
        ({"fileName": "a.wav", "contentType": "audio/wav", "byteSize": -5}, 422, "validation_failed"),
        ({"fileName": "a.wav", "contentType": "audio/mpeg", "byteSize": 5}, 400, "unsupported_media_type"),
        (
            {"fileName": "a.wav", "contentType": "audio/wav", "byteSize": 5, "intent": "track_artwork"},
            400,
            "use_track_artwork_upload_route",
        ),
    ],
)
def test_bad_bodies_are_4xx_with_a_code(local_stack, artist, body, status, code):
    response = httpx.post(f"{local_stack.api}/v1/uploads", json=body, headers=local_stack.auth(artist))
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_a_ten_megabyte_body_is_413(local_stack, artist):
    response = httpx.post(
        f"{local_stack.api}/v1/uploads",
        content=b"{" + b" " * (10 * 1024 * 1024) + b"}",
        headers={**local_stack.auth(artist), "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"


def test_an_unknown_upload_is_404(local_stack, artist):
    response = httpx.post(
        f"{local_stack.api}/v1/uploads/upl_00000000-0000-4000-8000-000000000000/finalize",
        headers=local_stack.auth(artist),
    )
    assert response.status_code == 404
    assert response.json()["status"] == "upload_intent_not_found"


def test_a_forged_token_is_401(local_stack, tmp_path):
    from local.devauth import DevKeys, mint

    # Right issuer and audience, signed by a key the stack never published.
    forged = mint("erin", DevKeys(tmp_path / "another-key.pem"))
    response = httpx.get(f"{local_stack.api}/v1/artists/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    # The same request with the stack's own key is authenticated (a new user: no profile yet).
    newcomer = f"newcomer-{uuid.uuid4()}"
    genuine = httpx.get(f"{local_stack.api}/v1/artists/me", headers=local_stack.auth(newcomer))
    assert (genuine.status_code, genuine.json()["error"]["code"]) == (404, "artist_profile_not_found")


def test_health_reports_every_component(local_stack):
    body = httpx.get(f"{local_stack.api}/health").json()
    checks = {"storage": True, "s3EventPump": True, "workflowRunner": True, "sweeper": True, "domainEventPump": True}
    assert body == {"status": "ok", "checks": checks}
