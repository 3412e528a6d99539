"""Finalize Lambda: S3 ObjectCreated events arrive through SQS; each record finalizes its upload."""

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes import S3Event
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from functions.data import keys
from functions.domain.intake import finalize
from functions.errors import DomainError
from functions.observability import logger, tracer

processor = BatchProcessor(event_type=EventType.SQS)


def _record(record: SQSRecord) -> None:
    body = record.json_body
    # S3 sends an s3:TestEvent (no Records) when the notification is configured: nothing to do.
    for s3_record in S3Event(body).records if isinstance(body, dict) and "Records" in body else ():
        # Event keys are URL-encoded ("/" arrives as %2F, spaces as "+").
        key = unquote_plus(s3_record.s3.get_object.key)
        upload_id = keys.upload_id_from_key(key)
        if upload_id is None:
            logger.info("ignoring object outside uploads/", extra={"key": key})
            continue
        try:
            outcome = finalize.finalize(upload_id, trigger="s3_event")
            logger.info("finalize on put", extra={"upload_id": upload_id, "status": outcome.status})
        except DomainError as error:
            if error.status >= 500:
                raise  # worth redelivering (e.g. the workflow could not start yet)
            # A verdict about the upload (missing, invalid, unknown): redelivery cannot change it.
            logger.warning("finalize on put refused", extra={"upload_id": upload_id, "code": error.code})


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId", clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=_record, processor=processor, context=context)
