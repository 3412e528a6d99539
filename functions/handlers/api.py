"""API Lambda: the FastAPI app behind API Gateway's HTTP API, through Mangum.

The app verifies bearer tokens against the configured issuer only (``functions.api.auth``); there
is no switch that turns on another path (the local stack configures its own issuer and keys).
"""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from mangum import Mangum

from functions.api.app import create_app
from functions.api.auth import IssuerAuthenticator
from functions.observability import logger, tracer

app = create_app(IssuerAuthenticator())
_asgi = Mangum(app, lifespan="off")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _asgi(event, context)  # type: ignore[arg-type]  # powertools and mangum type the same context differently
