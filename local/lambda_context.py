"""A Lambda context for invoking handlers outside Lambda (powertools reads these attributes), and the
same per-request context for the API the local stack serves without a Lambda handler."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model
from starlette.types import ASGIApp, Receive, Scope, Send

from functions.observability import logger


@dataclass
class LocalLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "local"
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


class InvocationLogContext:
    """ASGI middleware for the API the local stack serves under uvicorn: each request logs as one
    invocation of the API function would on Lambda, with its own function name and request id.

    The keys live in the request's own context (``functions.observability``), so what the API logs
    never carries the context of a pump, runner or sweeper thread, nor theirs the API's.
    """

    def __init__(self, app: ASGIApp, *, function_name: str) -> None:
        self.app = app
        self._function_name = function_name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            invocation = LocalLambdaContext(self._function_name)
            logger.structure_logs(cold_start=False, **build_lambda_context_model(invocation).__dict__)
            logger.set_correlation_id(invocation.aws_request_id)
        await self.app(scope, receive, send)
