"""The state file through which ``make run`` tells the CLI where the local stack listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from local.config import LocalSettings
from local.running_stack import NoLocalStack, RunningStack, announce, locate, read, withdraw

STACK = RunningStack(
    moto_endpoint="http://127.0.0.1:5123", api_url="http://127.0.0.1:8123", region="eu-west-1", pid=4242
)


def test_an_announced_stack_reads_back_as_written(tmp_path):
    state_file = tmp_path / ".tracklane" / "stack.json"

    announce(state_file, STACK)

    assert read(state_file) == STACK
    assert [path.name for path in state_file.parent.iterdir()] == ["stack.json"]  # no partial file left


def test_withdrawing_the_stack_removes_its_file(tmp_path):
    state_file = tmp_path / "stack.json"
    announce(state_file, STACK)

    withdraw(state_file, STACK)

    assert not state_file.exists()
    assert read(state_file) is None


def test_a_stack_stopping_leaves_the_file_of_one_started_after_it(tmp_path):
    # Given a second stack in the same checkout announced itself over the first
    state_file = tmp_path / "stack.json"
    announce(state_file, STACK)
    second = RunningStack(
        moto_endpoint="http://127.0.0.1:5999", api_url="http://127.0.0.1:8999", region="eu-west-1", pid=4243
    )
    announce(state_file, second)

    # When the first one stops
    withdraw(state_file, STACK)

    # Then the CLI still finds the second
    assert read(state_file) == second


@pytest.mark.parametrize("content", ["", "{not json", '{"moto_endpoint": "http://x"}', "[]"])
def test_an_unreadable_state_file_announces_no_stack(tmp_path, content):
    state_file = tmp_path / "stack.json"
    state_file.write_text(content)

    assert read(state_file) is None


def test_without_a_state_file_or_moto_port_no_stack_is_found(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MOTO_PORT", raising=False)
    monkeypatch.setenv("TRACKLANE_STACK_STATE_FILE", str(tmp_path / "stack.json"))

    with pytest.raises(NoLocalStack, match="no local stack is running") as missing:
        locate(LocalSettings())

    assert str(tmp_path / "stack.json") in str(missing.value)
