"""Idempotency-Key on POST routes, against moto: replays, reuse with another body, concurrent
duplicates, scoping per caller and route, released keys after errors, expiry."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from fastapi.testclient import TestClient

from functions.api import idempotency
from functions.data.models import TrackModel
from functions.domain.catalog import artists
from functions.settings import settings
from local.provision import client

from .conftest import as_user

KEY = "4f1c0b7e-9a55-4c1e-8f1e-2d7c0c2b9a10"


@pytest.fixture
def bob(stack):
    artists.upsert("bob", handle="bob", display_name="Bob")
    return "bob"


def keyed(user, key=KEY):
    return {**as_user(user), "Idempotency-Key": key}


def intent(path, **extra):
    return {"fileName": path.name, "contentType": "audio/wav", "byteSize": path.stat().st_size, **extra}


def my_tracks(stack, user):
    response = stack.api.get("/v1/me/tracks", params={"limit": 100}, headers=as_user(user))
    assert response.status_code == 200, response.text
    return response.json()["tracks"]


def _dynamodb(stack):
    return client("dynamodb", stack.resources.endpoint)


def records(stack):
    """Every idempotency record (a Scan is fine in a test; the API only ever gets by key)."""
    return _dynamodb(stack).scan(TableName=settings().idempotency_table)["Items"]


def test_a_repeat_replays_the_first_answer_and_creates_one_intent(stack, artist, wav_3s):
    first = stack.api.post("/v1/uploads", json=intent(wav_3s, title="Night Drive"), headers=keyed(artist))
    second = stack.api.post("/v1/uploads", json=intent(wav_3s, title="Night Drive"), headers=keyed(artist))

    assert first.status_code == 201, first.text
    assert "idempotency-replayed" not in first.headers
    assert second.status_code == 201
    assert second.headers["idempotency-replayed"] == "true"
    assert second.text == first.text
    assert second.headers["content-type"] == first.headers["content-type"]
    assert [t["uploadId"] for t in my_tracks(stack, artist)] == [first.json()["uploadId"]]


def test_the_same_json_with_other_key_order_and_spacing_is_the_same_request(stack, artist, wav_3s):
    body = intent(wav_3s, title="Night Drive", tags=["synth"])
    headers = {**keyed(artist), "content-type": "application/json"}
    first = stack.api.post("/v1/uploads", content=json.dumps(body), headers=headers)
    reordered = json.dumps(dict(reversed(list(body.items()))), indent=2)
    second = stack.api.post("/v1/uploads", content=reordered, headers=headers)

    assert first.status_code == 201, first.text
    assert second.headers.get("idempotency-replayed") == "true"
    assert second.json()["uploadId"] == first.json()["uploadId"]


def test_the_same_key_with_another_body_is_refused(stack, artist, wav_3s):
    first = stack.api.post("/v1/uploads", json=intent(wav_3s, title="Night Drive"), headers=keyed(artist))
    other = stack.api.post("/v1/uploads", json=intent(wav_3s, title="Day Drive"), headers=keyed(artist))

    assert first.status_code == 201
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert set(other.json()["error"]) >= {"code", "message"}
    assert len(my_tracks(stack, artist)) == 1


def test_twenty_concurrent_duplicates_have_one_effect(stack, artist, wav_3s):
    body = intent(wav_3s, title="Night Drive")
    barrier = threading.Barrier(20)

    def call(_):
        client = TestClient(stack.api.app, raise_server_exceptions=False)
        barrier.wait()
        return client.post("/v1/uploads", json=body, headers=keyed(artist))

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(call, range(20)))

    created = [r for r in responses if r.status_code == 201]
    busy = [r for r in responses if r.status_code == 409]
    assert len(created) + len(busy) == 20, [r.text for r in responses]
    # Exactly one ran (no replay header); any other 201 is its replay, byte for byte.
    originals = [r for r in created if "idempotency-replayed" not in r.headers]
    assert len(originals) == 1
    assert {r.text for r in created} == {originals[0].text}
    for response in busy:
        assert response.json()["error"]["code"] == "idempotency_key_in_progress"
        assert response.headers["retry-after"] == "1"
    assert [t["uploadId"] for t in my_tracks(stack, artist)] == [originals[0].json()["uploadId"]]

    # Once the first has answered, every repeat gets its answer.
    after = stack.api.post("/v1/uploads", json=body, headers=keyed(artist))
    assert after.headers["idempotency-replayed"] == "true"
    assert after.text == originals[0].text


def test_a_key_is_scoped_per_caller_and_per_route(stack, artist, bob, wav_3s):
    body = intent(wav_3s, title="Night Drive")
    alices = stack.api.post("/v1/uploads", json=body, headers=keyed(artist))
    bobs = stack.api.post("/v1/uploads", json=body, headers=keyed(bob))
    album = stack.api.post("/v1/albums", json={"title": "Night Drives"}, headers=keyed(artist))

    assert alices.status_code == bobs.status_code == 201
    assert "idempotency-replayed" not in bobs.headers
    assert bobs.json()["uploadId"] != alices.json()["uploadId"]
    assert album.status_code == 201, album.text
    assert "idempotency-replayed" not in album.headers
    assert album.json()["title"] == "Night Drives"
    assert len(my_tracks(stack, artist)) == len(my_tracks(stack, bob)) == 1


def test_finalize_replays_finalized_rather_than_answering_already_finalized(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    assert stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav") == 200
    path = f"/v1/uploads/{upload['uploadId']}/finalize"

    first = stack.api.post(path, json={"durationMs": 3000}, headers=keyed(artist))
    repeat = stack.api.post(path, json={"durationMs": 3000}, headers=keyed(artist))
    unkeyed = stack.api.post(path, json={"durationMs": 3000}, headers=as_user(artist))

    assert first.json()["status"] == "finalized"
    assert repeat.headers["idempotency-replayed"] == "true"
    assert repeat.text == first.text
    assert unkeyed.json()["status"] == "already_finalized"
    assert len(stack.executions()) == 1


def test_an_error_answer_is_not_stored_so_the_fixed_body_runs_under_the_same_key(stack, artist, wav_3s):
    broken = intent(wav_3s, contentType="image/png")

    refused = stack.api.post("/v1/uploads", json=broken, headers=keyed(artist))
    refused_again = stack.api.post("/v1/uploads", json=broken, headers=keyed(artist))
    fixed = stack.api.post("/v1/uploads", json=intent(wav_3s), headers=keyed(artist))

    assert refused.status_code == 400, refused.text
    assert refused_again.status_code == 400
    assert "idempotency-replayed" not in refused_again.headers
    assert fixed.status_code == 201, fixed.text
    assert "idempotency-replayed" not in fixed.headers
    assert len(my_tracks(stack, artist)) == 1


def test_without_the_header_every_request_runs(stack, artist, wav_3s):
    body = intent(wav_3s, title="Night Drive")
    first = stack.api.post("/v1/uploads", json=body, headers=as_user(artist))
    second = stack.api.post("/v1/uploads", json=body, headers=as_user(artist))

    assert first.status_code == second.status_code == 201
    assert "idempotency-replayed" not in second.headers
    assert first.json()["uploadId"] != second.json()["uploadId"]
    assert len(my_tracks(stack, artist)) == 2
    assert records(stack) == []


@pytest.mark.parametrize(
    "key",
    ["", "   ", "k" * 256, b"cl\xc3\xa9", "tab\there"],
    ids=["empty", "blank", "too-long", "non-ascii", "control"],
)
def test_an_invalid_key_is_refused_before_anything_runs(stack, artist, wav_3s, key):
    response = stack.api.post("/v1/uploads", json=intent(wav_3s), headers=keyed(artist, key))

    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_idempotency_key"
    assert my_tracks(stack, artist) == []


def test_the_longest_allowed_key_works(stack, artist, wav_3s):
    response = stack.api.post("/v1/uploads", json=intent(wav_3s), headers=keyed(artist, "k" * 255))
    assert response.status_code == 201, response.text


def test_an_anonymous_keyed_request_is_answered_401_as_always(stack, wav_3s):
    response = stack.api.post("/v1/uploads", json=intent(wav_3s), headers={"Idempotency-Key": KEY})
    assert response.status_code == 401
    assert records(stack) == []


def test_the_record_expires_after_the_ttl_and_then_the_key_is_new(stack, artist, wav_3s):
    body = intent(wav_3s)
    first = stack.api.post("/v1/uploads", json=body, headers=keyed(artist))

    (record,) = records(stack)
    assert record["status"]["S"] == "COMPLETED"
    expiration = int(record["expiration"]["N"])
    assert abs(expiration - (time.time() + settings().idempotency_ttl_s)) < 60
    # DynamoDB's TTL deletes the item some time after it expires; until then it must count as gone.
    _dynamodb(stack).update_item(
        TableName=settings().idempotency_table,
        Key={"id": record["id"]},
        UpdateExpression="SET #e = :past",
        ExpressionAttributeNames={"#e": "expiration"},
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )
    later = stack.api.post("/v1/uploads", json=body, headers=keyed(artist))

    assert later.status_code == 201
    assert "idempotency-replayed" not in later.headers
    assert later.json()["uploadId"] != first.json()["uploadId"]


def test_a_key_held_by_a_request_that_died_is_taken_over_after_its_in_progress_expiry(stack, artist, wav_3s):
    body = intent(wav_3s)
    data = idempotency.request_data(
        caller=artist,
        method="POST",
        path="/v1/uploads",
        key=KEY,
        body_fingerprint=idempotency.fingerprint(json.dumps(body).encode()),
    )
    # A request took the key and is still running (or died without answering).
    assert idempotency.claim(idempotency.persistence_layer(), data, in_progress_ms=60_000) is None

    busy = stack.api.post("/v1/uploads", json=body, headers=keyed(artist))
    assert busy.status_code == 409
    assert busy.json()["error"]["code"] == "idempotency_key_in_progress"

    (record,) = records(stack)
    _dynamodb(stack).update_item(
        TableName=settings().idempotency_table,
        Key={"id": record["id"]},
        UpdateExpression="SET #e = :past",
        ExpressionAttributeNames={"#e": "in_progress_expiration"},
        ExpressionAttributeValues={":past": {"N": str(int(time.time() * 1000) - 1)}},
    )
    taken_over = stack.api.post("/v1/uploads", json=body, headers=keyed(artist))

    assert taken_over.status_code == 201, taken_over.text
    assert len(list(TrackModel.by_owner.query(artist))) == 1


def test_a_body_over_the_size_limit_is_refused_before_the_key_is_taken(stack, artist):
    oversized = {"fileName": "a.wav", "description": "x" * (settings().max_request_body_bytes + 1)}
    response = stack.api.post("/v1/uploads", json=oversized, headers=keyed(artist))

    assert response.status_code == 413
    assert records(stack) == []
