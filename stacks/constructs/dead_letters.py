"""Where work that kept failing goes, and what the alarm on it tells whoever receives it.

The alarm itself is made with every other one in ``stacks/constructs/monitoring.py``, so that all
alarms notify the same topic.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct


@dataclass(frozen=True)
class DeadLetters:
    queue: sqs.Queue
    # The alarm's description: what landed there and what to do about it.
    runbook: str


def dead_letters(scope: Construct, *, runbook: str) -> DeadLetters:
    """A dead-letter queue (encrypted, TLS only, kept 14 days) as ``scope``'s child ``DeadLetters``;
    monitoring alarms as soon as anything lands in it."""
    queue = sqs.Queue(
        scope,
        "DeadLetters",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    return DeadLetters(queue, runbook)
