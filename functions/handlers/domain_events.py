"""Domain events Lambda: records of the Tracks and Albums tables' DynamoDB streams -> at most one
event each on the EventBridge bus (``functions.events``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.events import mapping, publish
from functions.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


class EarlierRecordFailed(Exception):
    """Not attempted because a record before it in the batch failed."""


class _InOrder:
    """Publishes a batch's records in stream order and stops at the first failure. Lambda resumes
    the shard at the first failed record, so publishing the records after it now would only send
    them a second time when they are redelivered."""

    def __init__(self) -> None:
        self.failed = False

    def __call__(self, record: DynamoDBRecord) -> None:
        if self.failed:
            raise EarlierRecordFailed("an earlier record of this batch failed; it is redelivered with it")
        try:
            _publish(record)
        except Exception:
            self.failed = True
            raise


def _publish(record: DynamoDBRecord) -> None:
    stream = record.dynamodb
    if stream is None or record.event_name is None or record.event_id is None:
        return
    created = stream.approximate_creation_date_time  # epoch seconds; Lambda always sends it
    change = mapping.Change(
        event_id=record.event_id,
        name=record.event_name.name,  # type: ignore[arg-type]  # INSERT | MODIFY | REMOVE
        occurred_at=datetime.fromtimestamp(created, UTC) if created is not None else datetime.now(UTC),
        old=stream.old_image,
        new=stream.new_image,
    )
    event = mapping.domain_event(change)
    if event is None:
        return
    publish.publish(event)
    logger.info("domain event", extra={"type": event.type, "event_id": event.event_id})


@logger.inject_lambda_context(correlation_id_path="Records[0].eventID", clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=_InOrder(), processor=processor, context=context)
