"""Take work off moto's server that repeats on every request but whose answer never changes.

Measured by sampling a test worker (py-spy, integration tests): with moto 5.2's defaults, a fifth of
the busy time went to a new TCP connection and handler thread per request (werkzeug answers
HTTP/1.0, so no client can keep a connection), a listing of moto's package directory per request
(to tell a service name from a host name), and a new boto3 client for every callback task the
Step Functions interpreter posts to SQS. None of it changes what moto answers.
"""

from __future__ import annotations

import functools
import sys
from typing import Any


def make_moto_server_faster() -> None:
    """Idempotent; call before the server starts (it affects connections accepted later)."""
    import moto.backends
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from moto.stepfunctions.parser.asl.utils import boto_client

    # HTTP/1.1: clients keep their connection (every moto response carries a Content-Length).
    MotoRequestHandler.protocol_version = "HTTP/1.1"

    if not getattr(moto.backends.list_of_moto_modules, "__tracklane_cached__", False):
        modules = tuple(moto.backends.list_of_moto_modules())

        def list_of_moto_modules() -> tuple[str, ...]:
            return modules

        list_of_moto_modules.__tracklane_cached__ = True  # type: ignore[attr-defined]
        moto.backends.list_of_moto_modules = list_of_moto_modules  # type: ignore[assignment]

    original = boto_client.boto_client_for
    if getattr(original, "__tracklane_cached__", False):
        return

    @functools.lru_cache(maxsize=32)
    def _client(region: str, service: str) -> Any:
        return original(region, service)

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # A botocore client is safe to share between threads, and moto's function ignores
        # ``state_credentials`` (it signs with fixed keys): one client per (region, service) will do.
        return _client(region, service)

    boto_client_for.__tracklane_cached__ = True  # type: ignore[attr-defined]
    boto_client.boto_client_for = boto_client_for  # type: ignore[assignment]
    # The interpreter's modules imported the function by name: point each at the cached one.
    import moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs

    for name, module in list(sys.modules.items()):
        if name.startswith("moto.stepfunctions.") and getattr(module, "boto_client_for", None) is original:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]
