"""``tracklane entitlement`` (and any command that talks to the local stack) finds the stack through
the state file ``make run`` writes, ``MOTO_PORT`` winning over it; without a stack it prints one
line saying what to do and fails, never a traceback."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from functions.domain.catalog import entitlements, usage
from local import config
from local.cli import main as tracklane
from local.config import free_port
from local.running_stack import RunningStack, announce
from tests.cli_process import run_cli


def announced(state_file: Path, moto_endpoint: str) -> Path:
    announce(
        state_file,
        RunningStack(moto_endpoint=moto_endpoint, api_url="http://127.0.0.1:1", region="us-east-1", pid=os.getpid()),
    )
    return state_file


@pytest.fixture
def cli_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """For commands run in this process: settings read afresh, the environment the command points
    at the stack restored afterwards, and a state file of the test's own."""
    state_file = tmp_path / "stack.json"
    monkeypatch.setenv("TRACKLANE_STACK_STATE_FILE", str(state_file))
    changed_by_the_command = {name: os.environ.get(name) for name in ("TRACKLANE_AWS_ENDPOINT_URL", "AWS_REGION")}
    config.local_settings.cache_clear()
    yield state_file
    config.local_settings.cache_clear()
    for name, value in changed_by_the_command.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def test_entitlement_reaches_the_stack_named_in_the_state_file(stack, moto_endpoint, tmp_path):
    # Given a running stack announced in the state file
    state_file = announced(tmp_path / "stack.json", moto_endpoint)

    # When the command is run with nothing else to go on
    result = run_cli("entitlement", "revoke", "bob", "--reason", "chargeback", state_file=state_file)

    # Then it acted on that stack's table
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "user": "bob",
        "allowed": False,
        "source": "revocation",
        "reason": "chargeback",
    }
    assert entitlements.lookup("bob").allowed is False


def test_quota_sets_shows_and_clears_an_artists_storage_quota(stack, moto_endpoint, tmp_path):
    state_file = announced(tmp_path / "stack.json", moto_endpoint)

    set_ = run_cli("quota", "set", "bob", "2GiB", state_file=state_file)
    shown = run_cli("quota", "show", "bob", state_file=state_file)
    cleared = run_cli("quota", "clear", "bob", state_file=state_file)

    assert (set_.returncode, shown.returncode, cleared.returncode) == (0, 0, 0), set_.stderr + cleared.stderr
    assert json.loads(set_.stdout) == json.loads(shown.stdout)
    assert json.loads(shown.stdout) | {"quotaBytes": 2 * 1024**3} == {
        "user": "bob",
        "quotaBytes": 2 * 1024**3,
        "source": "override",
        "usedBytes": 0,
        "reservedBytes": 0,
        "trackCount": 0,
        "pendingIntents": 0,
    }
    assert (json.loads(cleared.stdout)["source"], usage.of("bob").quota_source) == ("default", "default")


def test_a_state_file_left_by_a_killed_stack_is_one_line_and_a_failure(tmp_path):
    # Given the state file of a stack that is gone (nothing listens on its port)
    dead_endpoint = f"http://127.0.0.1:{free_port()}"
    state_file = announced(tmp_path / "stack.json", dead_endpoint)

    result = run_cli("entitlement", "show", "bob", state_file=state_file)

    assert result.returncode != 0
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"tracklane: no local stack is running at {dead_endpoint}; "
        "start it with `make run` (or pass --aws for the deployed table)"
    ]


def test_no_state_file_is_one_line_and_a_failure(cli_settings, monkeypatch, capsys):
    monkeypatch.delenv("MOTO_PORT", raising=False)

    exit_code = tracklane(["entitlement", "grant", "bob"])

    captured = capsys.readouterr()
    assert exit_code != 0
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"tracklane: no local stack is running (none has written {cli_settings}); "
        "start it with `make run` (or pass --aws for the deployed table)"
    ]


def test_moto_port_wins_over_the_state_file(stack, moto_endpoint, cli_settings, monkeypatch, capsys):
    # Given a stale state file, and MOTO_PORT naming the running stack's moto
    announced(cli_settings, f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MOTO_PORT", moto_endpoint.rsplit(":", 1)[1])

    exit_code = tracklane(["entitlement", "grant", "carol"])

    assert exit_code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["allowed"] is True
    assert entitlements.lookup("carol").allowed is True


def test_moto_port_with_nothing_listening_is_one_line_and_a_failure(cli_settings, monkeypatch, capsys):
    dead_port = free_port()
    monkeypatch.setenv("MOTO_PORT", str(dead_port))

    exit_code = tracklane(["entitlement", "show", "bob"])

    captured = capsys.readouterr()
    assert exit_code != 0
    assert captured.err.splitlines() == [
        f"tracklane: no local stack is running at http://127.0.0.1:{dead_port}; "
        "start it with `make run` (or pass --aws for the deployed table)"
    ]
