"""The local workflow runner: moto interprets the state machine rendered from the one workflow
definition; each Task posts an SQS callback message, which this runner answers by calling the same
step handler the processing Lambda runs.

moto cannot retry a callback Task, so the runner applies each step's Retry policies (same
ErrorEquals, MaxAttempts, IntervalSeconds, BackoffRate, MaxDelaySeconds and JitterStrategy, through
``RetryPolicy.delay_before``) before reporting a failure, after which the state machine's own Catch
takes over exactly as on AWS.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from functions.handlers import workflow_step
from functions.observability import logger
from functions.workflow.definition import RetryPolicy, retry_policies
from local.faults import Throttler
from local.lambda_context import LocalLambdaContext


class WorkflowRunner(threading.Thread):
    def __init__(
        self,
        sqs: Any,
        sfn: Any,
        queue_url: str,
        *,
        workers: int = 4,
        wait_s: int = 1,
        retry_delay_scale: float = 1.0,
        throttler: Throttler | None = None,
    ) -> None:
        super().__init__(name="workflow-runner", daemon=True)
        self._sqs, self._sfn, self._queue_url, self._wait_s = sqs, sfn, queue_url, wait_s
        # 1.0 waits as Step Functions would; tests shrink it to keep the same sequence fast.
        self._retry_delay_scale = retry_delay_scale
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="workflow-task")
        self._stop_requested = threading.Event()
        self._policies = retry_policies()
        # Test only (local.faults): fails a share of Task invocations as a throttled Lambda would.
        self._throttler = throttler
        self.tasks_completed = 0

    def stop(self) -> None:
        self._stop_requested.set()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def wait_for_running_tasks(self, timeout_s: float | None = None) -> bool:
        """After ``stop``: returns once the tasks already running have finished (or, with
        ``timeout_s``, when it has passed: False if some are still running). A lane still running
        when its test's stack is torn down would otherwise go on against whatever comes next."""
        if timeout_s is None:
            self._pool.shutdown(wait=True)
            return True
        deadline = time.monotonic() + timeout_s
        workers = list(self._pool._threads)  # the pool has no bounded shutdown of its own
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        return not any(worker.is_alive() for worker in workers)

    def run(self) -> None:
        while not self._stop_requested.is_set():
            try:
                messages = self._sqs.receive_message(
                    QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=self._wait_s
                ).get("Messages", [])
            except Exception:
                logger.exception("workflow runner: poll failed")
                self._stop_requested.wait(1)
                continue
            for message in messages:
                try:
                    self._pool.submit(self._handle, message)
                except RuntimeError:
                    # stop() shut the pool while this poll was out: the message stays on the queue
                    # (visible again after its timeout) for whichever runner comes next.
                    return

    def _handle(self, message: dict[str, Any]) -> None:
        try:
            task = json.loads(message["Body"])
            event = {key: value for key, value in task.items() if key != "taskToken"}
            self._execute(task["step"], event, task["taskToken"])
        except Exception:
            logger.exception("workflow runner: task failed to report")
        finally:
            self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=message["ReceiptHandle"])
            self.tasks_completed += 1

    def _execute(self, step: str, event: dict[str, Any], token: str) -> None:
        """``event``: what the processing Lambda would be invoked with (``step``, ``input``, ...)."""
        policies = self._policies.get(step, ())
        attempts_by_policy: dict[int, int] = {}
        while True:
            try:
                if self._throttler is not None:
                    self._throttler.lambda_invocation()
                result = workflow_step.handler(event, LocalLambdaContext("tracklane-processing"))
            except Exception as error:
                if self._stop_requested.is_set():
                    # The stack is stopping and ended this step's ffmpeg (ffmpeg.stop_all): the step
                    # was interrupted, not failed. Its task is left unanswered, as a Lambda killed
                    # mid-invocation leaves it; nothing is recorded as failed.
                    logger.info("step interrupted by stop", extra={"step": step})
                    return
                # A Lambda-side failure has a Step Functions name of its own (local.faults).
                error_name = getattr(error, "error_name", type(error).__name__)
                policy = _matching(policies, error_name)
                if policy is not None and not self._stop_requested.is_set():
                    index = policies.index(policy)
                    retry_number = attempts_by_policy[index] = attempts_by_policy.get(index, 0) + 1
                    # MaxAttempts counts retries after the first attempt, as in Step Functions.
                    if retry_number <= policy.max_attempts:
                        delay = policy.delay_before(retry_number) * self._retry_delay_scale
                        logger.info("retrying step", extra={"step": step, "error": error_name, "delay_s": delay})
                        self._stop_requested.wait(delay)
                        continue
                # moto drops ``cause``; the step has already recorded its user-facing message.
                self._sfn.send_task_failure(taskToken=token, error=error_name[:256], cause=str(error)[:32768])
                return
            self._sfn.send_task_success(taskToken=token, output=json.dumps(result if result is not None else {}))
            return


def _matching(policies: tuple[RetryPolicy, ...], error_name: str) -> RetryPolicy | None:
    return next((policy for policy in policies if policy.matches(error_name)), None)
