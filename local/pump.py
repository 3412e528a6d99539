"""The S3-event pump: long-polls the queue the bucket notifies and feeds real SQS-shaped batches to
the finalize Lambda handler, honouring its partial batch failures like the Lambda SQS poller."""

from __future__ import annotations

import threading
from typing import Any

from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from functions.handlers import finalize_on_put
from functions.observability import logger
from local.lambda_context import LocalLambdaContext


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


class S3EventPump(threading.Thread):
    def __init__(self, sqs: Any, queue_url: str, queue_arn: str, region: str, wait_s: int = 1) -> None:
        super().__init__(name="s3-event-pump", daemon=True)
        self._sqs, self._queue_url, self._queue_arn, self._region = sqs, queue_url, queue_arn, region
        self._wait_s = wait_s
        self._stop_requested = threading.Event()
        self.batches_handled = 0

    def stop(self) -> None:
        self._stop_requested.set()

    def run(self) -> None:
        while not self._stop_requested.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("s3 event pump: poll failed")
                self._stop_requested.wait(1)

    def poll_once(self) -> int:
        received = self._sqs.receive_message(
            QueueUrl=self._queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=self._wait_s, AttributeNames=["All"]
        ).get("Messages", [])
        if not received:
            return 0
        event = sqs_event(received, self._queue_arn, self._region)
        try:
            result = finalize_on_put.handler(event, LocalLambdaContext("tracklane-finalize"))
            failed = {item["itemIdentifier"] for item in result.get("batchItemFailures", [])}
        except BatchProcessingError:
            # Every record failed: Lambda reports the invocation failed and SQS redelivers them all.
            logger.warning("s3 event batch failed; it will be redelivered", extra={"messages": len(received)})
            failed = {m["MessageId"] for m in received}
        done = [m for m in received if m["MessageId"] not in failed]
        if done:
            # Like the Lambda poller: successes are deleted, failures become visible again later.
            self._sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        self.batches_handled += 1
        return len(received)
