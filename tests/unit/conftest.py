"""Unit tests run with the network refused: anything that tries to reach AWS fails loudly."""

from collections.abc import Iterator

import pytest
import pytest_socket


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    pytest_socket.disable_socket(allow_unix_socket=True)
    yield
    pytest_socket.enable_socket()


@pytest.fixture(autouse=True)
def _write_tokens_without_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every owner write takes a token from the caller's bucket in DynamoDB before its route runs
    (functions.api.auth.current_user); here the bucket is always full, so what these tests check --
    bad requests answered before any of the route's storage is touched -- is what they see.
    tests/integration/test_limits.py tests the bucket itself."""
    monkeypatch.setattr("functions.domain.rate_limits.spend_write", lambda user_id: 0)
