"""Request bodies are strict about JSON types: a number sent as a string, a boolean sent as a string
or a number, a whole number sent as a float is a 422 naming the field, never quietly converted.
(The network is refused in unit tests: a body that got past validation would fail reaching storage.)"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions import ids
from functions.api.app import create_app

from .test_api_requests import AUTH, VALID, HeaderAuthenticator

SESSION = "3f2b1c4e-8d7a-4b6c-9e1f-0a2b3c4d5e6f"
IDS = {
    "upload": ids.render("upl", SESSION),
    "track": ids.render("trk", SESSION),
    "album": ids.render("alb", SESSION),
}
PEAKS = [0.5] * 16
MEDIA = {"fileName": "cover.png", "contentType": "image/png", "byteSize": 1000}


def body_value(body: Any, field: str) -> Any:
    for part in field.split("."):
        body = body[int(part)] if isinstance(body, list) else body[part]
    return body


@pytest.fixture
def client():
    return TestClient(create_app(HeaderAuthenticator()), raise_server_exceptions=False)


LOOSE_BODIES = [
    # (method, path, body, the field the error names)
    ("POST", "/v1/uploads", {**VALID, "byteSize": "1000"}, "byteSize"),
    ("POST", "/v1/uploads", {**VALID, "byteSize": 1000.0}, "byteSize"),
    ("POST", "/v1/uploads", {**VALID, "autoTag": "true"}, "autoTag"),
    ("POST", "/v1/uploads", {**VALID, "autoTag": 1}, "autoTag"),
    ("POST", "/v1/uploads", {**VALID, "multipart": "false"}, "multipart"),
    ("POST", "/v1/uploads/{upload}/finalize", {"durationMs": "3000"}, "durationMs"),
    (
        "POST",
        "/v1/uploads/{upload}/finalize",
        {"waveform": {"peaks": PEAKS, "sampleRateHz": "44100"}},
        "waveform.sampleRateHz",
    ),
    (
        "POST",
        "/v1/uploads/{upload}/finalize",
        {"waveform": {"peaks": ["0.5", *PEAKS[1:]], "sampleRateHz": 44100}},
        "waveform.peaks.0",
    ),
    ("POST", "/v1/uploads/{upload}/complete", {"parts": [{"partNumber": "1", "etag": "e"}]}, "parts.0.partNumber"),
    ("PATCH", "/v1/tracks/{track}", {"removeImage": "true"}, "removeImage"),
    ("PATCH", "/v1/tracks/{track}", {"removeImage": 0}, "removeImage"),
    ("POST", "/v1/tracks/{track}/artwork/uploads", {**MEDIA, "byteSize": "1000"}, "byteSize"),
    ("POST", "/v1/albums/{album}/cover/uploads", {**MEDIA, "byteSize": "1000"}, "byteSize"),
    (
        "POST",
        "/v1/tracks/{track}/versions/uploads",
        {"fileName": "v2.wav", "contentType": "audio/wav", "byteSize": "1000"},
        "byteSize",
    ),
    (
        "POST",
        "/v1/tracks/{track}/documents/uploads",
        {"fileName": "notes.pdf", "contentType": "application/pdf", "byteSize": "1000"},
        "byteSize",
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    LOOSE_BODIES,
    ids=[
        f"{method} {path.removeprefix('/v1/')} {field}={body_value(body, field)!r}"
        for method, path, body, field in LOOSE_BODIES
    ],
)
def test_a_loosely_typed_value_is_a_422_naming_its_field(client, method, path, body, field):
    response = client.request(method, path.format(**IDS), json=body, headers=AUTH)

    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed"
    assert [f["field"] for f in error["fields"]] == [field]
    assert error["fields"][0]["type"] in {"int_type", "bool_type", "float_type"}


@pytest.mark.parametrize(
    "body",
    [
        {"title": 7},
        {"description": 1.5},
    ],
)
def test_albums_take_strings_only(client, body):
    response = client.post("/v1/albums", json={"title": "Night Drive", **body}, headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_failed"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/upload_session", {"collection_id": 42}, "collection_id"),
        ("/v1/upload_session", {"collection_id": "alb", "organization_index": 1}, "organization_index"),
        (f"/v1/upload/{SESSION}/track", {"file_name": "a.wav", "organization_index": 1}, "organization_index"),
    ],
)
def test_upload_session_routes_are_as_strict_in_their_own_error_shape(client, path, body, field):
    response = client.post(path, json=body, headers=AUTH)

    assert response.status_code == 422, response.text
    answer: dict[str, Any] = response.json()
    assert answer["ok"] is False
    assert answer["error"]["code"] == "validation_failed"
    assert answer["error"]["message"].startswith(f"{field}:")


def test_every_request_model_is_strict():
    """Each body model inherits the strict base: a new one cannot forget it."""
    from functions.api.models import RequestModel
    from functions.api.routers import albums, artists, media_uploads, sessions, tracks, uploads

    bodies = {
        model
        for module in (albums, artists, media_uploads, sessions, tracks, uploads)
        for name, model in vars(module).items()
        if isinstance(model, type) and name.endswith(("Request", "Body")) and model.__module__ == module.__name__
    }
    assert bodies, "no request models found"
    assert all(issubclass(model, RequestModel) and model.model_config.get("strict") for model in bodies), bodies
