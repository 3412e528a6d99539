"""The local stack runs every function in one process, one thread each (the API under uvicorn, the
S3-event pump, the workflow runner, the sweeper), all logging through the one powertools Logger.
Each line must carry the context of the function that wrote it, never another thread's."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from functions.api.app import create_app
from functions.observability import logger
from local.lambda_context import InvocationLogContext, LocalLambdaContext

Handler = Callable[[dict[str, Any], LocalLambdaContext], None]


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Every JSON line the shared logger writes while the test runs (formatted as in production)."""
    sink = io.StringIO()
    capture = logging.StreamHandler(sink)
    capture.setFormatter(logger.registered_formatter)
    logger.addHandler(capture)
    try:
        yield lambda: [json.loads(line) for line in sink.getvalue().splitlines()]
    finally:
        logger.removeHandler(capture)


def held_open_handler(entered: threading.Event, release: threading.Event) -> Handler:
    """A handler decorated like every Lambda entry point (functions.handlers.*), which stays inside
    its invocation until told to return, and logs before it does."""

    @logger.inject_lambda_context(correlation_id_path="id", clear_state=True)
    def handler(event: dict[str, Any], context: LocalLambdaContext) -> None:
        entered.set()
        release.wait(timeout=10)
        logger.error("still inside", extra={"step": event["id"]})

    return handler


def start_invocation(function_name: str) -> tuple[threading.Thread, LocalLambdaContext, threading.Event]:
    entered, release = threading.Event(), threading.Event()
    context = LocalLambdaContext(function_name)
    thread = threading.Thread(
        target=held_open_handler(entered, release), args=({"id": f"{function_name}-event"}, context)
    )
    thread.start()
    assert entered.wait(timeout=10)
    return thread, context, release


class Anonymous:
    def authenticate(self, request: Any) -> None:
        return None


def api_with_a_failing_route() -> TestClient:
    """The app as the local stack serves it (functions.api.app under InvocationLogContext)."""

    def fails() -> None:
        raise RuntimeError("boom")

    app = create_app(Anonymous())
    app.add_api_route("/v1/fails", fails)
    return TestClient(InvocationLogContext(app, function_name="tracklane-api"), raise_server_exceptions=False)


def test_an_api_error_logged_during_a_sweep_carries_the_apis_context_not_the_sweepers(log_lines):
    # Given the sweeper is inside an invocation on its own thread
    sweeper, sweep_context, release = start_invocation("tracklane-sweeper")

    # When the API fails a request meanwhile
    response = api_with_a_failing_route().get("/v1/fails")
    release.set()
    sweeper.join(timeout=10)

    # Then the API's error line names the API and its own request, nothing of the sweeper's
    assert response.status_code == 500
    (api_error,) = [line for line in log_lines() if line["message"] == "unhandled error"]
    assert api_error["function_name"] == "tracklane-api"
    assert api_error["function_request_id"] != sweep_context.aws_request_id
    assert api_error.get("correlation_id") != "tracklane-sweeper-event"
    assert sweep_context.aws_request_id not in json.dumps(api_error)
    # And the sweeper's line, written after the request, is still the sweeper's
    (sweep_line,) = [line for line in log_lines() if line["message"] == "still inside"]
    assert sweep_line["function_name"] == "tracklane-sweeper"
    assert sweep_line["function_request_id"] == sweep_context.aws_request_id


def test_two_functions_running_at_once_each_log_their_own_invocation(log_lines):
    # Given the finalize function is inside an invocation on one thread
    finalize, finalize_context, release_finalize = start_invocation("tracklane-finalize")

    # When the sweeper starts an invocation on another thread before finalize logs
    sweeper, sweep_context, release_sweeper = start_invocation("tracklane-sweeper")
    release_finalize.set()
    finalize.join(timeout=10)
    release_sweeper.set()
    sweeper.join(timeout=10)

    # Then each line carries the invocation of the function that wrote it
    lines = {line["step"]: line for line in log_lines() if line["message"] == "still inside"}
    assert lines["tracklane-finalize-event"]["function_name"] == "tracklane-finalize"
    assert lines["tracklane-finalize-event"]["function_request_id"] == finalize_context.aws_request_id
    assert lines["tracklane-finalize-event"]["correlation_id"] == "tracklane-finalize-event"
    assert lines["tracklane-sweeper-event"]["function_name"] == "tracklane-sweeper"
    assert lines["tracklane-sweeper-event"]["function_request_id"] == sweep_context.aws_request_id


def test_a_thread_that_never_ran_a_function_logs_no_functions_context(log_lines):
    # Given a function ran to completion on another thread
    sweeper, _, release = start_invocation("tracklane-sweeper")
    release.set()
    sweeper.join(timeout=10)

    # When another thread that runs no function (a poll loop, say) logs
    poll_loop = threading.Thread(target=logger.error, args=("workflow runner: poll failed",))
    poll_loop.start()
    poll_loop.join(timeout=10)

    # Then its line has the service's keys only
    (line,) = [line for line in log_lines() if line["message"] == "workflow runner: poll failed"]
    assert line["service"] == "tracklane"
    assert "function_name" not in line
    assert "correlation_id" not in line
