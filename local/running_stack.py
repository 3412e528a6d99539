"""How the CLI finds the local stack: ``make run`` announces its addresses in a small state file
(``LocalSettings.stack_state_file``) and withdraws them on a clean exit.

An explicit ``MOTO_PORT`` still wins over the file, so a stack started on chosen ports is reached
by passing the same ones.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from local.config import LocalSettings


@dataclass(frozen=True)
class RunningStack:
    moto_endpoint: str
    api_url: str
    region: str
    # The process that announced the stack; None when the addresses come from settings instead.
    pid: int | None = None


class NoLocalStack(Exception):
    """No local stack answers; the message says where none was found."""


def announce(path: Path, stack: RunningStack) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written whole and then renamed: a CLI reading at the same moment never sees half a file.
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(asdict(stack), indent=2) + "\n")
    partial.replace(path)


def withdraw(path: Path, stack: RunningStack) -> None:
    """Removes the state file if it still describes ``stack``: a second stack started in the same
    checkout has replaced it, and stopping the first must not hide the second."""
    if read(path) == stack:
        path.unlink(missing_ok=True)


def read(path: Path) -> RunningStack | None:
    try:
        fields = json.loads(path.read_text())
        return RunningStack(**fields)
    except (OSError, ValueError, TypeError):
        # Missing, half-written by hand or from another version: no stack is announced.
        return None


def locate(config: LocalSettings) -> RunningStack:
    """The stack CLI commands talk to, checked to be listening; else NoLocalStack says what to do."""
    if "moto_port" in config.model_fields_set:
        stack = RunningStack(moto_endpoint=config.moto_endpoint, api_url=config.api_url, region=config.region)
    else:
        announced = read(config.stack_state_file)
        if announced is None:
            raise NoLocalStack(f"no local stack is running (none has written {config.stack_state_file})")
        stack = announced
    if not _listening(stack.moto_endpoint):
        # Also what a state file left behind by a killed run leads to.
        raise NoLocalStack(f"no local stack is running at {stack.moto_endpoint}")
    return stack


def _listening(endpoint: str) -> bool:
    address = urlsplit(endpoint)
    try:
        with socket.create_connection((address.hostname or "127.0.0.1", address.port or 80), timeout=2):
            return True
    except OSError:
        return False
