"""Logger, tracer and metrics, configured once for every handler."""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

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


# The service is given to the formatter too: a thread that never ran a handler logs with it.
logger = Logger(service=SERVICE, logger_formatter=ContextScopedFormatter(service=SERVICE))
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="Tracklane", service=SERVICE)
