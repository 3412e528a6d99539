"""A test-only switch that makes AWS throttle: the load simulation of issue 18, and what anyone can
try on `make run` (``TRACKLANE_LOCAL_THROTTLE=dynamodb=0.25,lambda=0.25``, docs/local-stack.md).

DynamoDB: a share of the requests the app's clients send are answered, before they leave the
process, as DynamoDB answers a table or index over its throughput: ``ThrottlingException`` (400)
for single-item and batch requests, ``TransactionCanceledException`` with a ``ThrottlingError``
reason for transactions. The answer goes through botocore exactly as a real one would: the SDK's
standard retry mode retries the first kind (the transaction kind it does not), each attempt drawn
again.

Lambda: a share of the workflow's Task invocations fail with ``Lambda.TooManyRequestsException``
before the step runs, as Step Functions reports a Lambda out of concurrency; the local runner then
applies the Task's Retry policies as Step Functions would.

Nothing here is imported by the Lambda code; the local stack installs it only when the setting is
given, and tests install it themselves.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders


@dataclass(frozen=True)
class ThrottlePlan:
    """The share (0..1) of DynamoDB requests and of Lambda Task invocations that are throttled."""

    dynamodb: float = 0.0
    lambda_: float = 0.0

    @classmethod
    def parse(cls, text: str) -> ThrottlePlan:
        """``"dynamodb=0.25,lambda=0.25"``; a service left out is never throttled."""
        shares: dict[str, float] = {}
        for part in filter(None, (piece.strip() for piece in text.split(","))):
            service, _, value = part.partition("=")
            if service not in ("dynamodb", "lambda") or not value:
                raise ValueError(f"unknown throttle {part!r}: use dynamodb=<share>,lambda=<share>")
            share = float(value)
            if not 0.0 <= share < 1.0:
                raise ValueError(f"a throttled share is at least 0 and below 1: {part!r}")
            shares["lambda_" if service == "lambda" else service] = share
        return cls(**shares)

    @property
    def active(self) -> bool:
        return self.dynamodb > 0 or self.lambda_ > 0


THROUGHPUT_EXCEEDED = "Throughput exceeds the current capacity of your table or index."


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


class LambdaThrottled(Exception):
    """What Step Functions reports for a Task whose Lambda invocation was throttled."""

    error_name = "Lambda.TooManyRequestsException"


class Throttler:
    def __init__(self, plan: ThrottlePlan, *, seed: int | None = None) -> None:
        self.plan = plan
        self._random = random.Random(seed)  # noqa: S311  (a simulation, not a secret)
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self._clients: list[Any] = []

    def _draw(self, share: float) -> bool:
        with self._lock:
            return self._random.random() < share

    def install(self, *dynamodb_clients: Any) -> Throttler:
        for client in dynamodb_clients:
            client.meta.events.register("before-send.dynamodb", self._dynamodb)
            self._clients.append(client)
        return self

    def uninstall(self) -> None:
        for client in self._clients:
            client.meta.events.unregister("before-send.dynamodb", self._dynamodb)
        self._clients.clear()

    def _dynamodb(self, request: Any, **_: Any) -> AWSResponse | None:
        if not self._draw(self.plan.dynamodb):
            return None
        target = request.headers.get("X-Amz-Target") or b""
        operation = (target.decode() if isinstance(target, bytes) else str(target)).rpartition(".")[2]
        with self._lock:
            self.injected[f"dynamodb.{operation}"] += 1
        if operation == "TransactWriteItems":
            items = len(json.loads(request.body or b"{}").get("TransactItems", []))
            body = {
                "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
                "message": "Transaction cancelled, please refer cancellation reasons for specific reasons",
                "CancellationReasons": [{"Code": "ThrottlingError", "Message": THROUGHPUT_EXCEEDED}]
                + [{"Code": "None"}] * (items - 1),
            }
        else:
            body = {
                "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                "message": THROUGHPUT_EXCEEDED,
            }
        headers = HTTPHeaders()
        headers["Content-Type"] = "application/x-amz-json-1.0"
        return AWSResponse(request.url, 400, headers, _Body(json.dumps(body).encode()))

    def lambda_invocation(self) -> None:
        """Raises LambdaThrottled for the planned share of Task invocations."""
        if self._draw(self.plan.lambda_):
            with self._lock:
                self.injected["lambda.Invoke"] += 1
            raise LambdaThrottled("Rate Exceeded.")
