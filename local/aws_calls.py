"""The AWS operations the app's botocore clients send, recorded at the botocore layer: what
``tests/integration/test_round_trips.py`` pins and ``benchmarks/round_trips.py`` prints, and the S3
requests ``tests/integration/test_write_cost.py`` counts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from functions import clients
from functions.data.models import shared_connection

SERVICES = ("dynamodb", "s3", "stepfunctions")


@contextmanager
def app_calls(services: tuple[str, ...] = SERVICES) -> Iterator[list[str]]:
    """The operations (``"GetItem"``, ``"CopyObject"`` ...) the app sends to ``services`` while the
    block runs, in order: DynamoDB through pynamodb's shared connection, S3, Step Functions."""
    operations: list[str] = []

    def record(model: Any, **_: Any) -> None:
        operations.append(model.name)

    watched = {"dynamodb": shared_connection().client, "s3": clients.s3(), "stepfunctions": clients.sfn()}
    hooked = [watched[service] for service in services]
    for client in hooked:
        client.meta.events.register("before-call", record)
    try:
        yield operations
    finally:
        for client in hooked:
            client.meta.events.unregister("before-call", record)
