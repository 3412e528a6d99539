"""External processors for lanes that need ML we do not run in-house (stems, lyrics).

A processor is configured as an http(s) URL or a Lambda function ARN. Either way it receives the
JSON ``{"trackId", "lane", "audioUrl", "durationMs"}``, where ``audioUrl`` is a presigned GET valid
for an hour, and answers a JSON object (at most 256 KB) that is stored as the lane's outputs (in S3,
referenced from them, above ``INLINE_RESULT_MAX_BYTES``).

* URL: ``POST <url>``. 2xx is success; 4xx is a permanent refusal; 5xx or no answer is transient
  (the workflow retries).
* Lambda ARN: a synchronous ``Invoke``. A returned object is success. A function that raises an
  error whose type is ``ProcessorRejected`` refuses the track for good; any other function error
  (a crash, its own timeout, throttling) is transient. A function that does not exist or that we
  may not invoke is a deployment mistake, reported as such rather than retried.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any

from botocore.exceptions import ClientError

from functions import clients
from functions.step_errors import StepFailed, TransientStepError

MAX_RESPONSE_BYTES = 256 * 1024
# An answer larger than this (serialized) is stored in S3 and the lane keeps a reference
# (``tracks.STORED_RESULT``): on the lane item it would cost a write unit per KB on every write and
# read of the lane, and as the task's result it would ride in the workflow's state (256 KiB at
# most, every lane's result included).
INLINE_RESULT_MAX_BYTES = 4 * 1024
LAMBDA_FUNCTION_ARN = re.compile(
    r"arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]{1,64}(:[A-Za-z0-9_$-]{1,128})?"
)
# The function's own refusal: the track cannot be processed, retrying will not help.
REJECTED_ERROR_TYPE = "ProcessorRejected"
# Invoke errors that mean the deployment points at the wrong function or lacks the grant.
MISCONFIGURED_ERRORS = frozenset(
    {"ResourceNotFoundException", "AccessDeniedException", "InvalidParameterValueException"}
)


class LaneSkipped(Exception):
    """The lane is not run, for a reason the user can read (e.g. no processor configured)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_lambda_arn(target: str) -> bool:
    return LAMBDA_FUNCTION_ARN.fullmatch(target) is not None


def call(target: str | None, *, lane: str, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Run ``lane`` on the processor ``target`` (a URL or a Lambda ARN) and return its outputs."""
    if not target:
        raise LaneSkipped("not_configured", f"No {lane} processor is configured for this deployment.")
    request = {**payload, "lane": lane}
    if is_lambda_arn(target):
        return _parse(_invoke(target, lane=lane, request=request), lane=lane)
    if target.startswith(("https://", "http://")):
        return _parse(_post(target, lane=lane, request=request, timeout_s=timeout_s), lane=lane)
    raise StepFailed("processor_misconfigured", f"The {lane} processor is neither an http(s) URL nor a Lambda ARN.")


def _post(url: str, *, lane: str, request: dict[str, Any], timeout_s: float) -> bytes:
    http_request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=json.dumps(request).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(http_request, timeout=timeout_s) as response:  # noqa: S310
            return bytes(response.read(MAX_RESPONSE_BYTES + 1))
    except urllib.error.HTTPError as error:
        if 400 <= error.code < 500:
            raise StepFailed(
                "processor_rejected", f"The {lane} processor refused this track ({error.code})."
            ) from error
        raise TransientStepError(f"{lane} processor answered {error.code}") from error
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise TransientStepError(f"{lane} processor unreachable: {error}") from error


def _invoke(function_arn: str, *, lane: str, request: dict[str, Any]) -> bytes:
    try:
        response = clients.lambda_().invoke(
            FunctionName=function_arn, InvocationType="RequestResponse", Payload=json.dumps(request).encode()
        )
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in MISCONFIGURED_ERRORS:
            raise StepFailed(
                "processor_misconfigured", f"The {lane} processor function cannot be invoked ({code})."
            ) from error
        raise TransientStepError(f"{lane} processor invoke failed: {code or error}") from error
    body = response["Payload"].read(MAX_RESPONSE_BYTES + 1)
    if response.get("FunctionError"):
        error_type = _error_type(body)
        if error_type == REJECTED_ERROR_TYPE:
            raise StepFailed("processor_rejected", f"The {lane} processor refused this track.")
        raise TransientStepError(f"{lane} processor function failed ({error_type or 'unknown error'})")
    return bytes(body)


def _error_type(body: bytes) -> str | None:
    """Lambda reports a function error as ``{"errorType", "errorMessage", ...}``."""
    try:
        error = json.loads(body)
    except ValueError:
        return None
    return error.get("errorType") if isinstance(error, dict) else None


def _parse(body: bytes, *, lane: str) -> dict[str, Any]:
    if len(body) > MAX_RESPONSE_BYTES:
        raise StepFailed("processor_response_too_large", f"The {lane} processor's answer exceeds 256 KB.")
    try:
        result = json.loads(body or b"{}")
    except json.JSONDecodeError as error:
        raise StepFailed("processor_bad_response", f"The {lane} processor's answer is not JSON.") from error
    if not isinstance(result, dict):
        raise StepFailed("processor_bad_response", f"The {lane} processor's answer is not a JSON object.")
    return result
