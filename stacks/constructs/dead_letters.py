"""Where work that kept failing goes, and the alarm that says something went there."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct


def dead_letters(scope: Construct, *, alarm_description: str) -> tuple[sqs.Queue, cloudwatch.Alarm]:
    """A dead-letter queue (encrypted, TLS only, kept 14 days) and an alarm as soon as anything
    lands in it, as ``scope``'s children ``DeadLetters`` and ``DeadLettersAlarm``."""
    queue = sqs.Queue(
        scope,
        "DeadLetters",
        encryption=sqs.QueueEncryption.SQS_MANAGED,
        enforce_ssl=True,
        retention_period=Duration.days(14),
    )
    alarm = cloudwatch.Alarm(
        scope,
        "DeadLettersAlarm",
        alarm_description=alarm_description,
        metric=queue.metric_approximate_number_of_messages_visible(
            period=Duration.minutes(1), statistic=cloudwatch.Stats.MAXIMUM
        ),
        threshold=0,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluation_periods=1,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    return queue, alarm
