"""The bytes and the envelope: parts cut exactly as planned and sent in parallel, an expired part
URL signed again, a stop that leaves the rest unsent; the API's error envelope as ApiError, and
repeated requests that reuse their Idempotency-Key."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from client import transfer
from client.api import Api, ApiError, error_from, token_subject

from .fake_api import API, FakeApi


def test_a_plan_cuts_equal_parts_and_a_shorter_last_one():
    assert transfer.plan(25, 10, 3) == [
        transfer.Part(1, 0, 10),
        transfer.Part(2, 10, 10),
        transfer.Part(3, 20, 5),
    ]


def start_multipart(fake: FakeApi, data: bytes) -> tuple[str, transfer.PartUrls]:
    api = fake.api()
    intent = api.create_upload(
        {"fileName": "a.wav", "contentType": "audio/wav", "byteSize": len(data), "multipart": True}
    )
    plan = intent["multipart"]
    return intent["uploadId"], transfer.PartUrls(api, intent["uploadId"], plan["parts"], plan["partsExpireAt"])


def test_every_part_lands_with_exactly_its_bytes(tmp_path: Path):
    fake = FakeApi(part_size=10)
    data = bytes(range(95))
    (source := tmp_path / "a.wav").write_bytes(data)
    upload_id, urls = start_multipart(fake, data)
    counted: list[int] = []

    outcome = transfer.upload_parts(
        urls.api, source, transfer.plan(95, 10, 10), urls, parallel=4, on_bytes=counted.append, stop=transfer.StopFlag()
    )

    assert outcome.uploaded == list(range(1, 11))
    assert b"".join(fake.uploads[upload_id].parts[n] for n in range(1, 11)) == data
    assert sum(counted) == 95


def test_an_expired_part_url_is_signed_again_and_the_part_sent_again(tmp_path: Path):
    fake = FakeApi(part_size=10)
    data = b"x" * 30
    (source := tmp_path / "a.wav").write_bytes(data)
    upload_id, urls = start_multipart(fake, data)
    refused_once = {2}

    def expire_part_2(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/2") and refused_once:
            refused_once.clear()
            return httpx.Response(
                403, text="<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            )
        return None

    fake.storage_hook = expire_part_2
    counted: list[int] = []

    transfer.upload_parts(
        urls.api, source, transfer.plan(30, 10, 3), urls, parallel=1, on_bytes=counted.append, stop=transfer.StopFlag(),
    )  # fmt: skip

    assert sorted(fake.uploads[upload_id].parts) == [1, 2, 3]
    assert fake.calls("GET", r"/v1/uploads/.+/parts/urls") != []
    # The refused attempt's bytes were taken back: the bar counts each byte once.
    assert sum(counted) == 30


def test_a_stop_after_the_first_part_leaves_the_others_unsent(tmp_path: Path):
    fake = FakeApi(part_size=10)
    data = b"y" * 40
    (source := tmp_path / "a.wav").write_bytes(data)
    upload_id, urls = start_multipart(fake, data)
    stop = transfer.StopFlag()

    with pytest.raises(transfer.Interrupted):
        transfer.upload_parts(
            urls.api, source, transfer.plan(40, 10, 4), urls, parallel=1, on_bytes=lambda _: None, stop=stop,
            on_part=lambda _: stop.set("test"),
        )  # fmt: skip

    assert sorted(fake.uploads[upload_id].parts) == [1]


def test_a_file_that_shrank_since_the_plan_is_not_sent_short(tmp_path: Path):
    fake = FakeApi(part_size=10)
    (source := tmp_path / "a.wav").write_bytes(b"z" * 30)
    upload_id, urls = start_multipart(fake, b"z" * 30)
    source.write_bytes(b"z" * 15)

    with pytest.raises(transfer.FileChanged):
        transfer.upload_parts(
            urls.api, source, transfer.plan(30, 10, 3), urls, parallel=1, on_bytes=lambda _: None,
            stop=transfer.StopFlag(),
        )  # fmt: skip

    assert 3 not in fake.uploads[upload_id].parts


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"error": {"code": "file_too_large", "message": "Over 500 MB."}}, "file_too_large", "Over 500 MB."),
        ({"ok": False, "error": {"code": "upload_session_expired", "message": "Gone."}},
         "upload_session_expired", "Gone."),
        ({"status": "upload_asset_invalid", "error": {"code": "upload_asset_invalid", "message": "Size."}},
         "upload_asset_invalid", "Size."),
    ],
)  # fmt: skip
def test_every_error_shape_of_the_api_gives_its_stable_code(body, code, message):
    refused = error_from(httpx.Response(413, json=body))

    assert (refused.status, refused.code, refused.message) == (413, code, message)


def test_an_answer_without_the_envelope_gets_a_code_from_its_status():
    assert error_from(httpx.Response(502, text="<html>Bad gateway</html>")).code == "http_502"


def test_a_post_that_met_a_5xx_is_repeated_with_the_same_idempotency_key():
    keys: list[str] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers["idempotency-key"])
        if len(keys) == 1:
            return httpx.Response(503, json={"error": {"code": "service_unavailable", "message": "x"}})
        return httpx.Response(201, json={"uploadId": "upl_1"})

    api = Api(API, "t", transport=httpx.MockTransport(flaky), sleep=lambda _: None)

    assert api.create_upload({})["uploadId"] == "upl_1"
    assert len(keys) == 2 and keys[0] == keys[1]


def test_a_refusal_is_not_repeated():
    calls: list[int] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(400, json={"error": {"code": "unsupported_media_type", "message": "no"}})

    api = Api(API, "t", transport=httpx.MockTransport(refuse), sleep=lambda _: None)

    with pytest.raises(ApiError) as refused:
        api.create_upload({})
    assert refused.value.code == "unsupported_media_type"
    assert len(calls) == 1


def test_the_token_subject_keeps_users_apart_without_verifying_anything():
    assert token_subject("h.eyJzdWIiOiJhcnRpc3QifQ.s") == "artist"
    assert token_subject("opaque").startswith("token:")
