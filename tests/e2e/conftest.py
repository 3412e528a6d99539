"""e2e: the test session starts the local stack exactly as `make run` does (a separate process,
free ports) and speaks HTTP to it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from local.config import free_port
from local.devauth import DevKeys, mint
from local.running_stack import RunningStack, read

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LocalStackProcess:
    api: str
    moto: str
    process: subprocess.Popen[bytes]
    log: Path
    # The stack's own issuer key (it verifies what this signs with the deployed code path).
    dev_keys: DevKeys

    def token(self, user: str) -> str:
        return mint(user, self.dev_keys)

    def auth(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}


def launch(
    directory: Path, *, data_dir: Path, dev_keys: DevKeys | None = None, own_process_group: bool = False
) -> LocalStackProcess:
    """The local stack as `make run` starts it, on free ports, its log, state file and store in
    ``directory`` and ``data_dir``; returns once it is healthy. ``own_process_group``: the stack
    and its ffmpeg children in a process group of their own, which a test may kill whole."""
    port, moto_port = free_port(), free_port()
    log = directory / f"stack-{port}.log"
    dev_keys = dev_keys or DevKeys(directory / "dev-signing-key.pem").ensure()
    env = {**os.environ, "PORT": str(port), "MOTO_PORT": str(moto_port)}
    for name in [n for n in env if n.startswith("TRACKLANE_")]:
        env.pop(name)  # the stack configures its own functions
    env["TRACKLANE_DEV_KEY_FILE"] = str(dev_keys.private_key_file)
    # Its own state file: a `make run` going in this checkout keeps the one the CLI finds.
    env["TRACKLANE_STACK_STATE_FILE"] = str(directory / "stack.json")
    # A throwaway store: never the checkout's .tracklane/data.
    env["TRACKLANE_DATA_DIR"] = str(data_dir)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "local.stack"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=sink,
            process_group=0 if own_process_group else None,
        )
    stack = LocalStackProcess(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{moto_port}", process, log, dev_keys)
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            pytest.fail(f"the local stack exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{stack.api}/health", timeout=2).status_code == 200:
                return stack
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the local stack was not healthy within 120 s:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def interrupt(stack: LocalStackProcess) -> None:
    """Ctrl-C, and the clean exit it must lead to."""
    stack.process.send_signal(signal.SIGINT)
    try:
        stack.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        stack.process.kill()
        raise
    assert stack.process.returncode == 0, stack.log.read_text()[-3000:]


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStackProcess]:
    directory = tmp_path_factory.mktemp("stack")
    stack = launch(directory, data_dir=directory / "data")
    process, state_file = stack.process, directory / "stack.json"
    port, moto_port = (int(url.rsplit(":", 1)[1]) for url in (stack.api, stack.moto))
    # The stack announces where it listens, for the CLI (local.running_stack) ...
    assert read(state_file) == RunningStack(
        moto_endpoint=stack.moto, api_url=stack.api, region="us-east-1", pid=process.pid
    )
    yield stack
    # Ctrl-C stops everything cleanly: exit status 0 and both ports free again, also while a page
    # left open still streams progress for an upload that never ends.
    assert process.poll() is None, "the local stack died during the session"
    streaming = _open_progress_stream(stack)
    interrupt(stack)
    streaming.join(timeout=5)
    assert not streaming.is_alive(), "the progress stream outlived the stack"
    # ... and withdraws it when stopped.
    assert not state_file.exists()
    for freed in (port, moto_port):
        with socket.socket() as probe_socket:
            # As a restarted server would: TIME_WAIT is fine, a live listener is not.
            probe_socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe_socket.bind(("127.0.0.1", freed))


def _open_progress_stream(stack: LocalStackProcess) -> threading.Thread:
    """A progress stream of a pending intent (it only ends when the upload settles), held open."""
    user = "lingerer"
    auth = stack.auth(user)
    assert httpx.put(f"{stack.api}/v1/artists/me", json={"handle": user}, headers=auth).status_code == 200
    body = {"fileName": "never.wav", "contentType": "audio/wav", "byteSize": 1000}
    intent = httpx.post(f"{stack.api}/v1/uploads", json=body, headers=auth).json()
    opened = threading.Event()

    def follow() -> None:
        with contextlib.suppress(httpx.HTTPError):
            progress = f"{stack.api}/v1/uploads/{intent['uploadId']}/progress"
            with httpx.stream("GET", progress, headers=auth, timeout=None) as response:
                opened.set()
                for _ in response.iter_bytes():
                    pass

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    assert opened.wait(10), "the progress stream did not open"
    return thread


def readme_walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- walkthrough:start -->", 1)[1].split("<!-- walkthrough:end -->", 1)[0]
    return block.split("```sh", 1)[1].rsplit("```", 1)[0]
