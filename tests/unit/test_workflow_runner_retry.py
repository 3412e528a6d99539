"""The local runner applies a step's Retry policy as Step Functions would: the same errors, the same
number of retries, and each wait drawn by the policy (backoff capped at MaxDelaySeconds, FULL jitter)."""

from __future__ import annotations

from typing import Any

import pytest

from functions.step_errors import TransientStepError
from functions.workflow import definition
from local import runner as runner_module


class _Recorder:
    def __init__(self) -> None:
        self.failures: list[dict[str, Any]] = []
        self.successes: list[dict[str, Any]] = []
        self.waits: list[float] = []

    def send_task_failure(self, **kwargs: Any) -> None:
        self.failures.append(kwargs)

    def send_task_success(self, **kwargs: Any) -> None:
        self.successes.append(kwargs)

    def wait(self, seconds: float) -> bool:
        self.waits.append(seconds)
        return False

    def is_set(self) -> bool:
        return False


def _runner(monkeypatch: pytest.MonkeyPatch, policy: definition.RetryPolicy, failures: int) -> _Recorder:
    recorder = _Recorder()
    calls = {"n": 0}

    def step(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls["n"] += 1
        if calls["n"] <= failures:
            raise TransientStepError("throttled")
        return {"ok": True}

    monkeypatch.setattr(runner_module.workflow_step, "handler", step)
    monkeypatch.setattr(runner_module, "retry_policies", lambda: {"probe": (policy,)})
    runner = runner_module.WorkflowRunner(sqs=None, sfn=recorder, queue_url="q")
    runner._stop_requested = recorder  # type: ignore[assignment]
    runner._execute("probe", {"uploadId": "u1"}, "token")
    return recorder


def test_runner_retries_with_the_policys_capped_jittered_delays(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a step that fails three times with a transient error, and a policy capped at 5 s
    policy = definition.RetryPolicy(interval_seconds=2, backoff_rate=2.0, max_attempts=3, max_delay_seconds=5)
    monkeypatch.setattr(definition.random, "uniform", lambda low, high: high)
    # When the runner executes it
    recorder = _runner(monkeypatch, policy, failures=3)
    # Then it waited the capped backoff drawn by the jitter (here its upper end) and then succeeded
    assert recorder.waits == [2.0, 4.0, 5.0]
    assert len(recorder.successes) == 1
    assert recorder.failures == []


def test_runner_jitter_keeps_every_wait_within_the_capped_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = definition.RetryPolicy(interval_seconds=2, backoff_rate=2.0, max_attempts=3, max_delay_seconds=5)
    recorder = _runner(monkeypatch, policy, failures=3)
    assert all(0.0 <= wait <= bound for wait, bound in zip(recorder.waits, (2.0, 4.0, 5.0), strict=True))


def test_runner_reports_the_failure_once_the_retries_are_spent(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = definition.RetryPolicy(interval_seconds=1, max_attempts=2, jitter_strategy="NONE")
    recorder = _runner(monkeypatch, policy, failures=5)
    assert recorder.waits == [1.0, 2.0]
    assert [failure["error"] for failure in recorder.failures] == ["TransientStepError"]
