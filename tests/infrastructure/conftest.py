"""Synthesize the app once per session and per context variant (a few seconds each).

Synthesis runs offline (sockets are refused) and without Docker; it needs the layers built first (``make test`` does it:
``.venv/bin/python -m layers.build``). Without them every test here fails with that command.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import pytest_socket

from layers import build as layer_build
from tests.infrastructure.synth import VARIANT_CONTEXT, Synth, read_synth, synthesize


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


def _shared_synth(tmp_path_factory: pytest.TempPathFactory, name: str, overrides: dict[str, Any] | None) -> Synth:
    """Synthesize once per run: under pytest-xdist the first worker to ask synthesizes (holding a
    lock) into the directory the workers share, and the others read what it wrote."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    outdir = shared / f"cdk-{name}"
    with open(shared / f"cdk-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (outdir / "synth.json").exists():
            return read_synth(outdir)
        outdir.mkdir(exist_ok=True)
        with _offline():
            made = synthesize(outdir, overrides)
        (outdir / "synth.json").write_text(json.dumps({"stack_name": made.stack_name, "error": made.error}))
        return made


@pytest.fixture(scope="session")
def synth(built_layers: None, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _shared_synth(tmp_path_factory, "default", None)


@pytest.fixture(scope="session")
def variant(built_layers: None, tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return _shared_synth(tmp_path_factory, "variant", VARIANT_CONTEXT)
