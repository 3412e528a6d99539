"""Throttles are told apart from failures wherever they surface, the API answers them 503 with
Retry-After, and the test-only throttle switch parses what docs/local-stack.md shows."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient
from pynamodb.exceptions import TransactWriteError, UpdateError

from functions.api.app import create_app
from functions.domain.intake import uploads
from functions.throttling import is_throttle
from local.faults import ThrottlePlan

from .test_api_requests import AUTH, VALID, HeaderAuthenticator


def client_error(code: str, **extra: object) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, **extra}, "UpdateItem")  # type: ignore[arg-type]


def test_throttling_errors_are_recognised_also_when_wrapped():
    assert is_throttle(client_error("ProvisionedThroughputExceededException"))
    assert is_throttle(client_error("ThrottlingException"))
    wrapped = UpdateError("Failed to update item", cause=client_error("ThrottlingException"))
    assert is_throttle(wrapped)
    try:
        try:
            raise client_error("TooManyRequestsException")
        except ClientError as error:
            raise RuntimeError("a lane's transient error") from error
    except RuntimeError as chained:
        assert is_throttle(chained)


def test_a_transaction_cancelled_by_a_throttle_is_a_throttle_and_one_refused_by_a_condition_is_not():
    throttled = client_error(
        "TransactionCanceledException", CancellationReasons=[{"Code": "None"}, {"Code": "ThrottlingError"}]
    )
    refused = client_error("TransactionCanceledException", CancellationReasons=[{"Code": "ConditionalCheckFailed"}])

    assert is_throttle(TransactWriteError("Failed to write transaction items", cause=throttled))
    assert not is_throttle(TransactWriteError("Failed to write transaction items", cause=refused))
    assert not is_throttle(client_error("ConditionalCheckFailedException"))
    assert not is_throttle(ValueError("nothing to do with AWS"))


def test_a_request_throttled_past_the_sdk_retries_is_503_service_busy_with_retry_after(monkeypatch):
    def throttled(*_args: object, **_kwargs: object) -> None:
        raise UpdateError("Failed to update item", cause=client_error("ProvisionedThroughputExceededException"))

    monkeypatch.setattr(uploads, "create", throttled)
    client = TestClient(create_app(HeaderAuthenticator()), raise_server_exceptions=False)

    response = client.post("/v1/uploads", json=VALID, headers=AUTH)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_busy"
    assert response.headers["retry-after"] == "5"


def test_the_throttle_switch_parses_shares_per_service():
    assert ThrottlePlan.parse("dynamodb=0.25,lambda=0.5") == ThrottlePlan(dynamodb=0.25, lambda_=0.5)
    assert ThrottlePlan.parse("lambda=0.1") == ThrottlePlan(lambda_=0.1)
    assert not ThrottlePlan.parse("").active
    for wrong in ("s3=0.1", "dynamodb=1.0", "dynamodb=-0.1", "dynamodb"):
        with pytest.raises(ValueError):
            ThrottlePlan.parse(wrong)


def test_a_transaction_cancelled_by_a_throttle_or_a_conflict_is_sent_again_unless_a_condition_refused_it():
    from functions.data.writes import _retryable

    assert _retryable(["None", "ThrottlingError"])
    assert _retryable([None, "TransactionConflict"])
    assert not _retryable(["ConditionalCheckFailed", "TransactionConflict"])
    assert not _retryable([None, "ValidationError"])
