"""The pure parts of Idempotency-Key handling: key validation, request fingerprints, the stored
answer, and the claim decision against an in-memory store with DynamoDB's conditional-put rules
(powertools' own persistence base class does the hashing and payload validation)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from functions.api.idempotency import (
    LOCAL_IN_PROGRESS_MS,
    REPLAYED_HEADER,
    StoredResponse,
    claim,
    configure,
    fingerprint,
    in_progress_budget_ms,
    parse_key,
    request_data,
)
from functions.errors import IdempotencyKeyInProgress, IdempotencyKeyReused, InvalidIdempotencyKey

# --- keys ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"a", b"k" * 255, b"4f1c0b7e-9a55-4c1e-8f1e-2d7c0c2b9a10", b"order 42 / retry ~!@#$%^&*()"],
)
def test_printable_ascii_keys_of_1_to_255_characters_are_accepted(raw):
    assert parse_key([raw]) == raw.decode()


def test_whitespace_around_a_key_is_not_part_of_it():
    assert parse_key([b"  abc  "]) == "abc"


@pytest.mark.parametrize(
    "values",
    [[b""], [b"   "], [b"k" * 256], ["clé".encode()], [b"\xff"], [b"tab\there"], [b"nul\x00"], [b"a", b"a"]],
    ids=["empty", "blank", "too-long", "utf8", "latin1", "control", "nul", "twice"],
)
def test_other_keys_are_invalid(values):
    with pytest.raises(InvalidIdempotencyKey) as refused:
        parse_key(values)
    assert refused.value.code == "invalid_idempotency_key"
    assert refused.value.status == 400


# --- fingerprints -------------------------------------------------------------------------------


def test_a_json_body_is_compared_as_a_value_not_as_bytes():
    compact = b'{"fileName":"a.wav","byteSize":10,"tags":["x","y"]}'
    spaced = b'{\n  "tags": ["x", "y"],\n  "byteSize": 10,\n  "fileName": "a.wav"\n}'
    assert fingerprint(compact) == fingerprint(spaced)


@pytest.mark.parametrize(
    "other",
    [
        b'{"fileName":"b.wav","byteSize":10,"tags":["x","y"]}',
        b'{"fileName":"a.wav","byteSize":11,"tags":["x","y"]}',
        b'{"fileName":"a.wav","byteSize":10,"tags":["y","x"]}',
        b'{"fileName":"a.wav","byteSize":10}',
        b"",
    ],
    ids=["value", "number", "list-order", "missing-field", "no-body"],
)
def test_any_change_of_value_is_another_fingerprint(other):
    assert fingerprint(b'{"fileName":"a.wav","byteSize":10,"tags":["x","y"]}') != fingerprint(other)


def test_a_body_that_is_not_json_is_compared_byte_for_byte():
    assert fingerprint(b"not json ") != fingerprint(b"not json")
    assert fingerprint(b"\xff\xfe") == fingerprint(b"\xff\xfe")


def test_a_non_json_body_never_matches_the_json_it_resembles():
    assert fingerprint(b'"x"') != fingerprint(b"x")


def test_query_parameters_count_in_any_order():
    body = b"{}"
    assert fingerprint(body, b"a=1&b=2") == fingerprint(body, b"b=2&a=1")
    assert fingerprint(body, b"a=1") != fingerprint(body, b"a=2")
    assert fingerprint(body, b"") != fingerprint(body, b"a=")


def test_json_nested_too_deep_for_the_parser_is_fingerprinted_as_bytes():
    deep = b"[" * 100_000 + b"]" * 100_000
    assert fingerprint(deep) == fingerprint(deep)
    assert fingerprint(deep) != fingerprint(deep[1:-1])


# --- what is stored and replayed ----------------------------------------------------------------


@pytest.mark.parametrize("body", [b'{"uploadId":"upl_1","title":"Caf\xc3\xa9"}', b"\x00\xff binary"])
def test_a_stored_answer_survives_the_round_trip_through_the_record(body):
    answer = StoredResponse(201, [("content-type", "application/json"), ("location", "/v1/x")], body)
    assert StoredResponse.from_record(json.loads(json.dumps(answer.to_record()))) == answer


def test_a_replay_carries_the_status_headers_body_and_says_it_is_a_replay():
    answer = StoredResponse(201, [("content-type", "application/json")], b'{"a":1}')
    start, body = answer.messages()

    assert start["status"] == 201
    assert dict(start["headers"]) == {
        b"content-type": b"application/json",
        b"content-length": b"7",
        REPLAYED_HEADER: b"true",
    }
    assert body["body"] == b'{"a":1}'


class _LambdaContext:
    def get_remaining_time_in_millis(self) -> int:
        return 12_345


def test_in_lambda_a_request_holds_its_key_for_the_invocations_remaining_time():
    assert in_progress_budget_ms({"aws.context": _LambdaContext()}) == 12_345
    assert in_progress_budget_ms({}) == LOCAL_IN_PROGRESS_MS


# --- the claim decision -------------------------------------------------------------------------


class InMemoryStore(BasePersistenceLayer):
    """Records in a dict, with the conditions DynamoDBPersistenceLayer puts on DynamoDB."""

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[str, DataRecord] = {}

    def _get_record(self, idempotency_key: Any) -> DataRecord:
        try:
            return self.items[idempotency_key]
        except KeyError as missing:
            raise IdempotencyItemNotFoundError from missing

    def _put_record(self, data_record: DataRecord) -> None:
        old = self.items.get(data_record.idempotency_key)
        now = time.time()
        dead = old is not None and (
            (old.expiry_timestamp or 0) < now
            or (
                old._status == "INPROGRESS"
                and old.in_progress_expiry_timestamp is not None
                and old.in_progress_expiry_timestamp < now * 1000
            )
        )
        if old is not None and not dead:
            self._validate_payload(data_payload=data_record, stored_data_record=old)
            raise IdempotencyItemAlreadyExistsError(old_data_record=old)
        self.items[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.items[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.items.pop(data_record.idempotency_key, None)


@pytest.fixture
def store() -> InMemoryStore:
    layer = InMemoryStore()
    configure(layer, expires_after_s=86_400)
    return layer


def data(body: bytes = b'{"title":"Night Drive"}', *, caller="alice", path="/v1/uploads", key="k1"):
    return request_data(caller=caller, method="POST", path=path, key=key, body_fingerprint=fingerprint(body))


ANSWER = StoredResponse(201, [("content-type", "application/json")], b'{"uploadId":"upl_1"}')


def test_a_new_key_is_taken_in_progress_until_the_request_may_have_died(store):
    before_ms = int(time.time() * 1000)  # powertools truncates to whole milliseconds
    assert claim(store, data(), in_progress_ms=29_000) is None

    (record,) = store.items.values()
    assert record.status == "INPROGRESS"
    assert record.idempotency_key.startswith("api#")
    assert before_ms + 29_000 <= record.in_progress_expiry_timestamp <= time.time() * 1000 + 29_000
    assert 86_000 < record.expiry_timestamp - time.time() <= 86_400


def test_a_duplicate_while_the_first_runs_is_told_to_come_back(store):
    claim(store, data(), in_progress_ms=29_000)
    with pytest.raises(IdempotencyKeyInProgress) as busy:
        claim(store, data(), in_progress_ms=29_000)
    assert (busy.value.code, busy.value.status) == ("idempotency_key_in_progress", 409)


def test_a_duplicate_after_a_2xx_gets_the_stored_answer(store):
    claim(store, data(), in_progress_ms=29_000)
    store.save_success(data(), ANSWER.to_record())

    assert claim(store, data(), in_progress_ms=29_000) == ANSWER


@pytest.mark.parametrize("first_answered", [True, False], ids=["answered", "running"])
def test_another_body_under_the_same_key_is_refused(store, first_answered):
    claim(store, data(), in_progress_ms=29_000)
    if first_answered:
        store.save_success(data(), ANSWER.to_record())

    with pytest.raises(IdempotencyKeyReused) as reused:
        claim(store, data(b'{"title":"Day Drive"}'), in_progress_ms=29_000)
    assert (reused.value.code, reused.value.status) == ("idempotency_key_reused", 422)


def test_keys_are_scoped_per_caller_and_path(store):
    claim(store, data(), in_progress_ms=29_000)

    assert claim(store, data(caller="bob"), in_progress_ms=29_000) is None
    assert claim(store, data(path="/v1/albums"), in_progress_ms=29_000) is None
    assert claim(store, data(key="k2"), in_progress_ms=29_000) is None
    assert len(store.items) == 4


def test_a_released_key_runs_again_with_any_body(store):
    claim(store, data(), in_progress_ms=29_000)
    store.delete_record(data(), RuntimeError("answered 400"))

    assert claim(store, data(b'{"title":"Fixed"}'), in_progress_ms=29_000) is None


def test_a_key_whose_request_outlived_its_time_is_taken_over(store):
    claim(store, data(), in_progress_ms=-1)

    assert claim(store, data(), in_progress_ms=29_000) is None


def test_a_record_past_its_ttl_is_a_new_key(store):
    claim(store, data(), in_progress_ms=29_000)
    store.save_success(data(), ANSWER.to_record())
    (record,) = store.items.values()
    record.expiry_timestamp = int(time.time()) - 1

    assert claim(store, data(b'{"title":"Another"}'), in_progress_ms=29_000) is None
