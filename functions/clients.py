"""AWS clients, created lazily and once per process.

Importing this module touches neither AWS nor the environment; the first call reads ``settings()``.
Tests point everything at moto by setting environment variables and calling ``reset()``.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from functions.settings import settings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_stepfunctions import SFNClient


@cache
def session() -> boto3.session.Session:
    """One session per process: its loader caches botocore's service models, which otherwise
    cost ~0.3 s to parse for every new client."""
    return boto3.session.Session()


def _client(service: str, **config: Any) -> Any:
    current = settings()
    return session().client(
        service,  # type: ignore[call-overload]
        region_name=current.region,
        endpoint_url=current.aws_endpoint_url,
        config=Config(**{"retries": sdk_retries(), **config}),
    )


def sdk_retries() -> dict[str, Any]:
    """botocore's standard mode retries throttling errors (ThrottlingException,
    ProvisionedThroughputExceededException, TooManyRequestsException, ...) with full jitter; how
    often is ``sdk_max_attempts``. The pynamodb connection takes the same (functions.data.models)."""
    return {"mode": "standard", "total_max_attempts": settings().sdk_max_attempts}


@cache
def s3() -> S3Client:
    # SigV4 so that S3 enforces the signed Content-Type and Content-Length on presigned PUTs.
    return _client("s3", signature_version="s3v4", s3={"addressing_style": "path"})  # type: ignore[no-any-return]


@cache
def sfn() -> SFNClient:
    return _client("stepfunctions")  # type: ignore[no-any-return]


@cache
def dynamodb() -> DynamoDBClient:
    """For what talks to DynamoDB without pynamodb (powertools' idempotency persistence layer)."""
    return _client("dynamodb")  # type: ignore[no-any-return]


@cache
def events() -> EventBridgeClient:
    return _client("events")  # type: ignore[no-any-return]


@cache
def lambda_() -> LambdaClient:
    """For external processors deployed as Lambda functions. No SDK retries: a read timeout would
    invoke the processor again behind the workflow's back; the workflow's Retry policy decides."""
    read_timeout = settings().processor_timeout_s + 5
    return _client(  # type: ignore[no-any-return]
        "lambda", read_timeout=read_timeout, retries={"mode": "standard", "total_max_attempts": 1}
    )


def reset() -> None:
    """Forget cached settings and clients (tests and the local stack use this). The table models
    rebind themselves on their next use, to the settings read then (``functions.data.models``)."""
    settings.cache_clear()
    s3.cache_clear()
    sfn.cache_clear()
    lambda_.cache_clear()
    events.cache_clear()
    dynamodb.cache_clear()
