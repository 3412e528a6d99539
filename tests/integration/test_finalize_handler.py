"""The finalize Lambda's batch semantics: what SQS redelivers and what it does not."""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from functions import clients
from functions.handlers import finalize_on_put
from local.lambda_context import LocalLambdaContext
from local.pump import sqs_event

from .conftest import Stack


def receive_put_events(stack: Stack) -> list[dict]:
    messages = stack.sqs.receive_message(
        QueueUrl=stack.resources.s3_events_queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
    ).get("Messages", [])
    assert messages, "the bucket notification delivered nothing"
    return messages


def handle(stack: Stack, messages: list[dict]) -> set[str]:
    """The ids SQS would deliver again: the partial failures, or all when the whole batch failed
    (powertools then raises, and Lambda reports the invocation as failed)."""
    event = sqs_event(messages, stack.resources.s3_events_queue_arn, "us-east-1")
    try:
        result = finalize_on_put.handler(event, LocalLambdaContext("finalize"))
    except BatchProcessingError:
        return {m["MessageId"] for m in messages}
    return {failure["itemIdentifier"] for failure in result["batchItemFailures"]}


def test_a_workflow_that_cannot_start_is_redelivered_then_processed_once(stack, artist, wav_3s, monkeypatch):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    messages = receive_put_events(stack)
    real_arn = stack.resources.state_machine_arn

    monkeypatch.setenv("TRACKLANE_STATE_MACHINE_ARN", real_arn.replace("process-track", "missing"))
    clients.reset()
    assert handle(stack, messages) == {messages[0]["MessageId"]}  # SQS will deliver it again
    assert stack.executions() == []

    monkeypatch.setenv("TRACKLANE_STATE_MACHINE_ARN", real_arn)
    clients.reset()
    assert handle(stack, messages) == set()  # the redelivery starts the run
    assert handle(stack, messages) == set()  # and a duplicate delivery changes nothing
    assert len(stack.executions()) == 1


def test_verdicts_about_an_upload_are_not_redelivered(stack, artist, wav_3s):
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/flac")  # not what the intent said
    messages = receive_put_events(stack)

    assert handle(stack, messages) == set()  # rejected: redelivery could not change that
    assert stack.executions() == []


def test_test_events_and_foreign_keys_are_ignored(stack):
    test_event = {"MessageId": "m1", "ReceiptHandle": "r1", "Body": json.dumps({"Event": "s3:TestEvent"})}
    foreign = {
        "MessageId": "m2",
        "ReceiptHandle": "r2",
        "Body": json.dumps(
            {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "s3": {"object": {"key": "tracks%2Fx%2Fa.m4a", "size": 1}, "bucket": {"name": "b"}},
                    }
                ]
            }
        ),
    }
    not_json = {"MessageId": "m3", "ReceiptHandle": "r3", "Body": "not json"}

    assert handle(stack, [test_event, foreign]) == set()
    assert handle(stack, [not_json]) == {"m3"}  # malformed: left for the DLQ, never silently dropped
