"""Errors a workflow step raises. The class names are the Step Functions error names."""

from __future__ import annotations


class TransientStepError(Exception):
    """Worth retrying (throttling, a network blip); the workflow's Retry policy applies."""


class StepFailed(Exception):
    """Permanent: the input cannot be processed. Carries a stable code and a user-facing message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
