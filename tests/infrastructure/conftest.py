"""Synthesize the app once per session and per context variant (a few seconds each).

Synthesis runs offline (sockets are refused) and without Docker; it needs the layers built first (``make test`` does it:
``.venv/bin/python -m layers.build``). Without them every test here fails with that command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import pytest_socket

from layers import build as layer_build
from tests.infrastructure.synth import VARIANT_CONTEXT, Synth, synthesize


@contextmanager
def _offline() -> Iterator[None]:
    """Synthesis and these tests are offline: opening a network socket fails (jsii uses pipes)."""
    pytest_socket.disable_socket(allow_unix_socket=True)
    try:
        yield
    finally:
        pytest_socket.enable_socket()


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    with _offline():
        yield


@pytest.fixture(scope="session")
def built_layers() -> None:
    problems = layer_build.problems()
    if problems:
        pytest.fail(
            "The Lambda layers must be built before the infrastructure tests: "
            + "; ".join(problems)
            + f". Run `{layer_build.BUILD_COMMAND}` (make test does).",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def synth(built_layers: None, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    with _offline():
        return synthesize(tmp_path_factory.mktemp("cdk-default"))


@pytest.fixture(scope="session")
def variant(built_layers: None, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    with _offline():
        return synthesize(tmp_path_factory.mktemp("cdk-variant"), VARIANT_CONTEXT)
