"""Logger, tracer and metrics, configured once for every handler."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

SERVICE = "tracklane"


class ContextScopedFormatter(LambdaPowertoolsFormatter):
    """The powertools formatter, with the keys a handler appends (``inject_lambda_context``'s
    function name and request id, ``append_keys``, the correlation id) kept per thread and asyncio
    task instead of on the one formatter every thread shares.

    On Lambda one invocation runs at a time and nothing changes. The local stack runs every
    function in one process, one thread each (the API under uvicorn, the S3-event pump, the
    workflow runner and its workers, the sweeper): with shared keys, a line the API logged while
    the sweeper ran carried the sweeper's function name and request id.

    A new thread starts from the service's keys alone; an asyncio task or a worker thread FastAPI
    hands a request to starts from a copy of its parent's keys. Keys are replaced, never changed
    in place, so a copy never writes through to its parent.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._scoped_log_format: ContextVar[dict[str, Any] | None] = ContextVar("log_format", default=None)
        super().__init__(**kwargs)

    @property
    def log_format(self) -> dict[str, Any]:
        scoped = self._scoped_log_format.get()
        if scoped is None:
            # What clear_state resets to: the keys given at construction, in the record order.
            return {**dict.fromkeys(self.log_record_order), **self.keys_combined}
        return scoped

    @log_format.setter
    def log_format(self, value: dict[str, Any]) -> None:
        self._scoped_log_format.set(value)

    def append_keys(self, **additional_keys: Any) -> None:
        self.log_format = {**self.log_format, **additional_keys}

    def remove_keys(self, keys: Iterable[str]) -> None:
        removed = set(keys)
        self.log_format = {key: value for key, value in self.log_format.items() if key not in removed}


Event = TypeVar("Event")
Answer = TypeVar("Answer")


class LazyTracer:
    """The powertools Tracer, built when a handler first runs, and only if tracing is on.

    Building powertools' ``Tracer`` imports the X-Ray SDK and builds its recorder, which creates two
    botocore X-Ray clients for its sampler, even when tracing is disabled (the recorder is built
    before the disabled flag is looked at); with tracing on it also patches boto, pynamodb, httplib
    and the rest. ``python -m benchmarks.cold_start`` prints what that costs. Built here on the
    first invocation instead: with tracing off (``POWERTOOLS_TRACE_DISABLED``, or outside Lambda:
    the same rule powertools applies) it is never built; with tracing on (the deployed stack) the
    first invocation pays what the import used to, before the handler runs, so the boto calls of
    every invocation are traced as before.
    """

    def __init__(self, service: str) -> None:
        self.service = service
        self._tracer: Tracer | None = None
        self._decided = False
        self._lock = threading.Lock()

    def get(self) -> Tracer | None:
        """The Tracer (built and modules patched on the first call), or None when tracing is off."""
        with self._lock:
            if not self._decided:
                from aws_lambda_powertools.tracing.tracer import Tracer

                if not Tracer._is_tracer_disabled():
                    self._tracer = Tracer(service=self.service)
                self._decided = True
            return self._tracer

    def capture_lambda_handler(self, handler: Callable[[Event, Any], Answer]) -> Callable[[Event, Any], Answer]:
        """``Tracer.capture_lambda_handler``, applied on the first invocation: a ``## handler``
        subsegment with the ColdStart and Service annotations, the answer or error as metadata."""
        traced: Callable[[Event, Any], Answer] | None = None

        @functools.wraps(handler)
        def run(event: Event, context: Any) -> Answer:
            nonlocal traced
            if traced is None:
                tracer = self.get()
                traced = handler if tracer is None else tracer.capture_lambda_handler(handler)
            return traced(event, context)

        return run


# The service is given to the formatter too: a thread that never ran a handler logs with it.
logger = Logger(service=SERVICE, logger_formatter=ContextScopedFormatter(service=SERVICE))
tracer = LazyTracer(SERVICE)
metrics = Metrics(namespace="Tracklane", service=SERVICE)
