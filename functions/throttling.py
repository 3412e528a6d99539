"""Which AWS failures are throttling: the service said "not now", and the same call later succeeds.

The SDK retries these itself (standard mode, ``settings().sdk_max_attempts``); what still arrives
here outlasted those retries. Nothing a throttle interrupts may be lost: the API answers
``503 service_busy`` with Retry-After, a lane raises a transient step error the workflow retries.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

# botocore's standard retry mode treats these codes as throttling (botocore.retries.standard).
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        # DynamoDB's own: a table or index over its on-demand or provisioned throughput.
        "ThrottlingError",
        "RequestLimitExceededException",
    }
)


def is_throttle(error: BaseException | None) -> bool:
    """True for an AWS throttling error, also when wrapped (pynamodb raises its own exceptions
    with the ClientError as their cause; a transaction cancelled because one item was throttled
    names it among its reasons)."""
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, ClientError):
            code = error.response.get("Error", {}).get("Code", "")
            if code in THROTTLING_CODES:
                return True
            reasons = error.response.get("CancellationReasons") or []
            if any((reason or {}).get("Code") in THROTTLING_CODES for reason in reasons):
                return True
        error = error.__cause__ or getattr(error, "cause", None)
        seen += 1
    return False
