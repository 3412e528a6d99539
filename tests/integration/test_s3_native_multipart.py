"""S3-native multipart (issue 14): a client that speaks S3 itself (Uppy's S3 plugin, the AWS SDKs'
presigned flows) lists, completes and aborts its upload with the plan's presigned S3 requests and
never calls the JSON ``complete`` route; completing at S3 finalizes through the put event. Also the
public ``GET /v1/uploads/config`` and a client-chosen ``partSize``, and the browser-facing CORS of
the local API and bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest
from fastapi.testclient import TestClient

from functions import cors
from functions.api.app import create_app
from functions.data.models import UploadModel
from functions.settings import settings
from local.cors import with_cors

from .conftest import HeaderAuthenticator, Stack, as_user

MIB = 1024 * 1024
S3_NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


@pytest.fixture(scope="module")
def wav_12mb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import render_audio

    return render_audio(tmp_path_factory.mktemp("s3mp") / "tone.wav", seconds=70)


def _intent(stack: Stack, user: str, path: Path, **extra: Any) -> dict[str, Any]:
    body = {"fileName": path.name, "contentType": "audio/wav", "byteSize": path.stat().st_size, **extra}
    response = stack.api.post("/v1/uploads", json=body, headers=as_user(user))
    assert response.status_code == 201, response.text
    return dict(response.json())


def _put_parts(path: Path, plan: dict[str, Any]) -> list[tuple[int, str]]:
    """PUTs every part as a browser would (only the body: its HTTP stack sends Content-Length)."""
    sent = []
    with path.open("rb") as source:
        for part in plan["parts"]:
            source.seek((part["partNumber"] - 1) * plan["partSize"])
            response = httpx.put(part["url"], content=source.read(part["size"]), timeout=60)
            assert response.status_code == 200
            sent.append((part["partNumber"], response.headers["etag"]))
    return sent


def _complete_xml(parts: list[tuple[int, str]]) -> bytes:
    body = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in parts)
    return f"<CompleteMultipartUpload>{body}</CompleteMultipartUpload>".encode()


def _listed_parts(url: str) -> list[tuple[int, int]]:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    root = ElementTree.fromstring(response.content)
    return [
        (int(p.findtext(f"{S3_NS}PartNumber") or 0), int(p.findtext(f"{S3_NS}Size") or 0))
        for p in root.iter(f"{S3_NS}Part")
    ]


def test_the_public_config_tells_limits_and_part_sizes_before_any_intent(stack):
    response = stack.api.get("/v1/uploads/config")  # no Authorization

    assert response.status_code == 200
    config = response.json()
    assert config["maxAudioBytes"] == settings().max_audio_bytes
    assert config["multipart"] == {
        "thresholdBytes": None,
        "defaultPartSize": settings().multipart_part_size_bytes,
        "minPartSize": 5 * MIB,
        "maxPartSize": 5 * 1024 * MIB,
        "maxParts": 10_000,
        "maxPartUrls": 100,
    }
    wav = next(t for t in config["acceptedTypes"] if t["extension"] == "wav")
    assert "audio/wav" in wav["contentTypes"]


def test_a_client_completes_at_s3_with_the_presigned_requests_and_the_put_event_finalizes(stack, artist, wav_12mb):
    intent = _intent(stack, artist, wav_12mb, multipart=True, partSize=5 * MIB)
    plan, s3 = intent["multipart"], intent["multipart"]["s3"]
    assert (plan["partSize"], plan["partCount"]) == (5 * MIB, 3)
    upload = UploadModel.get(intent["uploadId"].removeprefix("upl_"))
    assert (s3["key"], s3["uploadId"]) == (upload.object_key, upload.multipart_id)
    sent = _put_parts(wav_12mb, plan)

    # ListParts and CompleteMultipartUpload exactly as an S3 client sends them, to the presigned URLs.
    assert _listed_parts(s3["listPartsUrl"]) == [(1, 5 * MIB), (2, 5 * MIB), (3, wav_12mb.stat().st_size - 10 * MIB)]
    completed = httpx.post(s3["completeUrl"], content=_complete_xml(sent), timeout=60)
    assert completed.status_code == 200, completed.text
    assert ElementTree.fromstring(completed.content).findtext(f"{S3_NS}Key") == s3["key"]
    stack.drain_s3_events()
    stack.drain_s3_events()  # a redelivered event converges on the same finalize

    assert len(stack.executions()) == 1
    assert UploadModel.get(upload.upload_id).status == "finalized"
    track = stack.api.get(f"/v1/tracks/{intent['trackId']}", headers=as_user(artist)).json()
    assert track["status"] == "processing"
    # A client that also calls finalize learns the same outcome (its first call answers finalized).
    again = stack.api.post(f"/v1/uploads/{intent['uploadId']}/finalize", headers=as_user(artist)).json()
    assert (again["status"], again["trackId"]) == ("finalized", intent["trackId"])
    assert len(stack.executions()) == 1


def test_completing_at_s3_with_a_part_left_out_is_rejected_by_finalize(stack, artist, wav_12mb):
    """The presigned Complete does not sign its body: a client may assemble fewer parts. The object
    then cannot have the intent's size, and finalize refuses it as it would a short single PUT."""
    intent = _intent(stack, artist, wav_12mb, multipart=True, partSize=5 * MIB)
    sent = _put_parts(wav_12mb, intent["multipart"])

    completed = httpx.post(intent["multipart"]["s3"]["completeUrl"], content=_complete_xml(sent[:2]), timeout=60)
    assert completed.status_code == 200
    stack.drain_s3_events()

    upload = UploadModel.get(intent["uploadId"].removeprefix("upl_"))
    assert (upload.status, upload.rejected_code) == ("rejected", "upload_asset_invalid")
    assert "intent declared" in (upload.rejected_message or "")
    assert stack.executions() == []


def test_aborting_at_s3_frees_the_parts_and_a_refresh_signs_fresh_s3_requests(stack, artist, wav_12mb):
    intent = _intent(stack, artist, wav_12mb, multipart=True, partSize=5 * MIB)
    _put_parts(wav_12mb, {**intent["multipart"], "parts": intent["multipart"]["parts"][:1]})

    refreshed = stack.api.get(f"/v1/uploads/{intent['uploadId']}/parts/urls?from=2", headers=as_user(artist))
    assert refreshed.status_code == 200
    fresh = refreshed.json()
    assert [p["partNumber"] for p in fresh["parts"]] == [2, 3]
    assert fresh["s3"]["uploadId"] == intent["multipart"]["s3"]["uploadId"]
    assert _listed_parts(fresh["s3"]["listPartsUrl"]) == [(1, 5 * MIB)]

    assert httpx.delete(fresh["s3"]["abortUrl"], timeout=30).status_code == 204
    assert stack.s3.list_multipart_uploads(Bucket=stack.resources.bucket).get("Uploads", []) == []
    # The intent learns of it when the client next asks: nothing is left to resume.
    listed = stack.api.get(f"/v1/uploads/{intent['uploadId']}/parts", headers=as_user(artist)).json()
    assert (listed["parts"], listed["missingParts"]) == ([], [])


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"multipart": True, "partSize": 5 * MIB - 1}, (422, "invalid_part_size")),
        ({"multipart": True, "partSize": 5 * 1024 * MIB + 1}, (422, "invalid_part_size")),
        ({"partSize": 5 * MIB}, (400, "invalid_upload")),
    ],
)
def test_a_part_size_outside_the_bounds_is_refused_with_its_code(stack, artist, extra, expected):
    body = {"fileName": "a.wav", "contentType": "audio/wav", "byteSize": 12 * MIB, **extra}
    response = stack.api.post("/v1/uploads", json=body, headers=as_user(artist))

    assert (response.status_code, response.json()["error"]["code"]) == expected


def test_a_part_size_that_needs_more_than_10000_parts_is_refused(stack, artist, monkeypatch):
    byte_size = 10_000 * 5 * MIB + 1
    monkeypatch.setenv("TRACKLANE_MAX_AUDIO_BYTES", str(byte_size))
    settings.cache_clear()
    try:
        body = {"fileName": "a.wav", "contentType": "audio/wav", "byteSize": byte_size, "multipart": True}
        response = stack.api.post("/v1/uploads", json={**body, "partSize": 5 * MIB}, headers=as_user(artist))
    finally:
        settings.cache_clear()

    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_part_size")
    assert response.json()["error"]["minPartSize"] == 5 * MIB + 1


def test_the_local_bucket_has_the_deployed_cors_rule_and_answers_a_browser_preflight(stack):
    rules = stack.s3.get_bucket_cors(Bucket=stack.resources.bucket)["CORSRules"]
    assert [{k: v for k, v in rule.items() if k != "ID"} for rule in rules] == [cors.bucket_rule(["*"])]

    preflight = httpx.options(
        f"{stack.resources.endpoint}/{stack.resources.bucket}/uploads/x/original.wav?partNumber=1&uploadId=u",
        headers={
            "Origin": "http://page.example",
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://page.example"
    assert "PUT" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-expose-headers"] == "ETag"


def test_the_local_api_answers_a_browser_as_the_deployed_cors_configuration_does():
    api = TestClient(with_cors(create_app(HeaderAuthenticator()), ["http://page.example"]))

    preflight = api.options(
        "/v1/uploads",
        headers={
            "Origin": "http://page.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://page.example"
    assert preflight.headers["access-control-max-age"] == str(cors.API_MAX_AGE_S)
    allowed = {h.strip() for h in preflight.headers["access-control-allow-headers"].lower().split(",")}
    assert set(cors.API_ALLOWED_HEADERS) <= allowed

    answered = api.get("/v1/uploads/config", headers={"Origin": "http://page.example"})
    assert answered.headers["access-control-allow-origin"] == "http://page.example"
    exposed = {h.strip() for h in answered.headers["access-control-expose-headers"].split(",")}
    assert exposed == set(cors.API_EXPOSED_HEADERS)
    other = api.get("/v1/uploads/config", headers={"Origin": "http://elsewhere.example"})
    assert "access-control-allow-origin" not in other.headers
