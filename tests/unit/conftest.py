"""Unit tests run with the network refused: anything that tries to reach AWS fails loudly."""

from collections.abc import Iterator

import pytest
import pytest_socket


@pytest.fixture(autouse=True, scope="session")
def _tracer_created_first() -> None:
    """The X-Ray SDK creates a UDP socket (never used: tracing is disabled in tests) when the
    powertools Tracer is first built. Built here, before sockets are refused, a test importing a
    handler on its own does not fail on that; sending anything is still refused."""
    import functions.observability  # noqa: F401


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    pytest_socket.disable_socket(allow_unix_socket=True)
    yield
    pytest_socket.enable_socket()
