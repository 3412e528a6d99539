"""External processors for lanes that need ML we do not run in-house (stems, lyrics).

Contract: ``POST <url>`` with JSON ``{"trackId", "lane", "audioUrl", "durationMs"}`` where
``audioUrl`` is a presigned GET valid for an hour; the processor answers 2xx with a JSON object
(at most 256 KB), stored as the lane's outputs. 4xx is a permanent refusal, 5xx or no answer is
transient (the workflow retries).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from functions.workflow.errors import StepFailed, TransientStepError

MAX_RESPONSE_BYTES = 256 * 1024


class LaneSkipped(Exception):
    """The lane is not run, for a reason the user can read (e.g. no processor configured)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def call(url: str | None, *, lane: str, payload: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    if not url:
        raise LaneSkipped("not_configured", f"No {lane} processor is configured for this deployment.")
    if not url.startswith(("https://", "http://")):
        raise StepFailed("processor_misconfigured", f"The {lane} processor URL is not http(s).")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        url,
        data=json.dumps({**payload, "lane": lane}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            body = response.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as error:
        if 400 <= error.code < 500:
            raise StepFailed(
                "processor_rejected", f"The {lane} processor refused this track ({error.code})."
            ) from error
        raise TransientStepError(f"{lane} processor answered {error.code}") from error
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise TransientStepError(f"{lane} processor unreachable: {error}") from error
    if len(body) > MAX_RESPONSE_BYTES:
        raise StepFailed("processor_response_too_large", f"The {lane} processor's answer exceeds 256 KB.")
    try:
        result = json.loads(body or b"{}")
    except json.JSONDecodeError as error:
        raise StepFailed("processor_bad_response", f"The {lane} processor's answer is not JSON.") from error
    if not isinstance(result, dict):
        raise StepFailed("processor_bad_response", f"The {lane} processor's answer is not a JSON object.")
    return result
