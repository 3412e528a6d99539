"""Errors a processing step raises (the media code, external processors, the lanes). The class names
are the Step Functions error names the workflow definition retries and catches
(``functions.workflow.definition``), so they live below both."""

from __future__ import annotations


class TransientStepError(Exception):
    """Worth retrying (throttling, a network blip); the workflow's Retry policy applies."""


class ThrottledStepError(TransientStepError):
    """AWS throttled the step's calls past the SDK's own retries: a scaling ramp (Lambda
    concurrency, DynamoDB throughput) that longer, patient retries ride out
    (``functions.workflow.definition.THROTTLE_RETRY``)."""


class StepFailed(Exception):
    """Permanent: the input cannot be processed. Carries a stable code and a user-facing message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
