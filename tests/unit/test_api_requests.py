"""Bad requests get a 4xx with a stable code — never a 5xx — before any storage is touched.
(The network is refused in unit tests, so reaching DynamoDB or S3 here would fail the test.)"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from functions.api.app import create_app
from functions.api.auth import Principal

VALID = {"fileName": "night-drive.wav", "contentType": "audio/wav", "byteSize": 48211200}


class HeaderAuthenticator:
    """Test double: 'Authorization: Test <user>' authenticates as <user>."""

    def authenticate(self, request):
        scheme, _, user = request.headers.get("authorization", "").partition(" ")
        return Principal(user) if scheme == "Test" and user else None


@pytest.fixture
def client():
    return TestClient(create_app(HeaderAuthenticator()), raise_server_exceptions=False)


AUTH = {"Authorization": "Test alice"}


def error_code(response):
    return response.json()["error"]["code"]


def test_no_token_is_401_with_a_code(client):
    response = client.post("/v1/uploads", json=VALID)
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"
    assert response.headers["www-authenticate"] == "Bearer"


def test_missing_fields_name_each_field(client):
    response = client.post("/v1/uploads", json={"fileName": "a.wav"}, headers=AUTH)
    assert response.status_code == 422
    body = response.json()["error"]
    assert body["code"] == "validation_failed"
    assert {f["field"] for f in body["fields"]} == {"contentType", "byteSize"}


def test_negative_byte_size_is_refused_with_its_field(client):
    response = client.post("/v1/uploads", json={**VALID, "byteSize": -1}, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "byteSize"


def test_zero_byte_file_is_refused_at_the_intent(client):
    response = client.post("/v1/uploads", json={**VALID, "byteSize": 0}, headers=AUTH)
    assert response.status_code == 400
    assert error_code(response) == "empty_file"


def test_ten_megabyte_json_is_refused_before_parsing(client):
    huge = json.dumps({**VALID, "description": "x" * (10 * 1024 * 1024)})
    response = client.post("/v1/uploads", content=huge, headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 413
    assert error_code(response) == "request_too_large"


def test_a_streamed_body_without_length_is_counted_and_refused(client):
    def chunks():
        for _ in range(200):
            yield b"x" * 1024

    response = client.post("/v1/uploads", content=chunks(), headers={**AUTH, "content-type": "application/json"})
    assert response.status_code == 413
    assert error_code(response) == "request_too_large"


def test_malformed_json_is_400_invalid_json(client):
    response = client.post(
        "/v1/uploads", content=b'{"fileName": ', headers={**AUTH, "content-type": "application/json"}
    )
    assert response.status_code == 400
    assert error_code(response) == "invalid_json"


@pytest.mark.parametrize(
    ("file_name", "content_type"),
    [("night-drive.wav", "audio/mpeg"), ("cover.png", "image/png"), ("track.exe", "audio/wav")],
)
def test_wrong_extension_and_type_pairs_are_400(client, file_name, content_type):
    response = client.post(
        "/v1/uploads", json={**VALID, "fileName": file_name, "contentType": content_type}, headers=AUTH
    )
    assert response.status_code == 400
    assert error_code(response) == "unsupported_media_type"


def test_files_over_500_mb_are_413(client):
    response = client.post("/v1/uploads", json={**VALID, "byteSize": 524_288_001}, headers=AUTH)
    assert response.status_code == 413
    assert error_code(response) == "file_too_large"


@pytest.mark.parametrize(
    ("intent", "code", "route"),
    [
        ("draft", "use_track_versions_upload_route", "POST /v1/tracks/:trackId/versions/uploads"),
        ("track_artwork", "use_track_artwork_upload_route", "POST /v1/tracks/:trackId/artwork/uploads"),
        ("track_document", "use_track_documents_upload_route", "POST /v1/tracks/:trackId/documents/uploads"),
    ],
)
def test_other_intents_redirect_with_the_seed_codes(client, intent, code, route):
    response = client.post("/v1/uploads", json={**VALID, "intent": intent}, headers=AUTH)
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": code,
        "message": response.json()["error"]["message"],
        "useInstead": route,
    }


def test_unknown_intent_is_400(client):
    response = client.post("/v1/uploads", json={**VALID, "intent": "podcast"}, headers=AUTH)
    assert response.status_code == 400
    assert error_code(response) == "invalid_upload"


def test_unknown_fields_are_refused_not_ignored(client):
    response = client.post("/v1/uploads", json={**VALID, "byteSzie": 1}, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "byteSzie"


def test_a_support_gate_other_than_any_is_refused(client):
    response = client.post("/v1/uploads", json={**VALID, "supportGate": {"type": "vip"}}, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"].startswith("supportGate")


@pytest.mark.parametrize(
    ("waveform", "field"),
    [
        ({"peaks": [0.5] * 15, "sampleRateHz": 48000}, "waveform.peaks"),
        ({"peaks": [0.5] * 2049, "sampleRateHz": 48000}, "waveform.peaks"),
        ({"peaks": [0.5] * 3 + [1.5] + [0.5] * 12, "sampleRateHz": 48000}, "waveform.peaks.3"),
        ({"peaks": [0.5] * 16, "sampleRateHz": 0}, "waveform.sampleRateHz"),
    ],
)
def test_advisory_waveform_is_validated_with_the_path_of_the_bad_value(client, waveform, field):
    upload_id = "upl_00000000-0000-4000-8000-000000000000"
    response = client.post(f"/v1/uploads/{upload_id}/finalize", json={"waveform": waveform}, headers=AUTH)
    assert response.status_code == 422
    assert field in {f["field"] for f in response.json()["error"]["fields"]}


def test_finalize_of_a_malformed_upload_id_is_the_seed_not_found(client):
    response = client.post("/v1/uploads/not-an-id/finalize", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["status"] == "upload_intent_not_found"
    assert error_code(response) == "upload_intent_not_found"


def test_unknown_routes_answer_json_with_a_code(client):
    response = client.get("/v1/nope", headers=AUTH)
    assert response.status_code == 404
    assert error_code(response) == "not_found"


def test_openapi_documents_the_upload_routes(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/v1/uploads" in paths
    assert "/v1/uploads/{upload_id}/finalize" in paths
    assert "/v1/tracks/{track_id}/processing-status" in paths


def test_an_unexpected_error_is_a_500_with_a_code_and_its_traceback_is_logged(client, monkeypatch, caplog):
    from functions.domain.intake import uploads

    def broken(*_args, **_kwargs):
        raise RuntimeError("the database caught fire")

    monkeypatch.setattr(uploads, "create", broken)
    with caplog.at_level("ERROR"):
        response = client.post("/v1/uploads", json=VALID, headers=AUTH)

    assert (response.status_code, error_code(response)) == (500, "internal_error")
    assert "the database caught fire" not in response.text
    (record,) = [record for record in caplog.records if record.getMessage() == "unhandled error"]
    # Logged from the exception handler, outside the except block: the traceback must be passed on.
    assert record.exc_info is not None and "the database caught fire" in str(record.exc_info[1])
