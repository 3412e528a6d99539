"""The stream pump: reads the DynamoDB streams of the tables that carry domain events (on moto) and
feeds Lambda-shaped batches to the domain-events handler, as Lambda's stream poller does: records
in order per shard from the oldest (TRIM_HORIZON), and after a partial failure the shard resumes
at the first record the handler reported failed, a bounded number of times.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from functions.data.models import TABLE_MODELS
from functions.handlers import domain_events
from functions.observability import logger
from functions.settings import Settings
from local.lambda_context import LocalLambdaContext

BATCH_SIZE = 100
# As many attempts as the deployed event source mappings make (stacks.constructs.events) before a
# batch is given up on and the shard moves past it.
MAX_ATTEMPTS = 1 + 8


def streamed_tables(current: Settings) -> list[str]:
    """The names of the tables whose model asks for a stream (``Meta.stream_view_type``)."""
    metas: list[Any] = [model.Meta for model in TABLE_MODELS]
    return [getattr(current, meta.settings_field) for meta in metas if getattr(meta, "stream_view_type", None)]


def stream_event(records: list[dict[str, Any]], stream_arn: str) -> dict[str, Any]:
    """GetRecords' records in the shape Lambda delivers them."""
    shaped = []
    for record in records:
        stream = dict(record["dynamodb"])
        created = stream.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):  # boto3 parses it; Lambda sends epoch seconds
            stream["ApproximateCreationDateTime"] = int(created.timestamp())
        shaped.append({**record, "dynamodb": stream, "eventSourceARN": stream_arn})
    return {"Records": shaped}


class _Shard:
    def __init__(self, stream_arn: str, shard_id: str, iterator: str) -> None:
        self.stream_arn, self.shard_id, self.iterator = stream_arn, shard_id, iterator
        self.failed_attempts = 0


class StreamPump(threading.Thread):
    def __init__(
        self, dynamodb: Any, streams: Any, tables: list[str], *, wait_s: float = 0.5, batch_size: int = BATCH_SIZE
    ) -> None:
        super().__init__(name="stream-pump", daemon=True)
        self._dynamodb, self._streams, self._tables = dynamodb, streams, tables
        self._wait_s, self._batch_size = wait_s, batch_size
        self._stop_requested = threading.Event()
        # One poll at a time: a test may drain while the thread runs, and a shard's iterator must
        # move on exactly once per batch.
        self._lock = threading.Lock()
        self._shards: list[_Shard] | None = None
        self.records_handled = 0

    def stop(self) -> None:
        self._stop_requested.set()

    def run(self) -> None:
        while not self._stop_requested.is_set():
            try:
                if not self.poll_once():
                    self._stop_requested.wait(self._wait_s)
            except Exception:
                logger.exception("stream pump: poll failed")
                self._stop_requested.wait(1)

    def drain(self) -> None:
        """Hands every record written so far to the handler (tests call this before they look)."""
        while self.poll_once():
            pass

    def poll_once(self) -> int:
        """One GetRecords per shard, each non-empty batch to the handler; returns the records read."""
        with self._lock:
            if self._shards is None:
                self._shards = self._open_shards()
            return sum(self._poll_shard(shard) for shard in self._shards)

    def _open_shards(self) -> list[_Shard]:
        shards = []
        for table in self._tables:
            stream_arn = self._dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
            for shard in self._streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]:
                iterator = self._streams.get_shard_iterator(
                    StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
                shards.append(_Shard(stream_arn, shard["ShardId"], iterator))
        return shards

    def _poll_shard(self, shard: _Shard) -> int:
        response = self._streams.get_records(ShardIterator=shard.iterator, Limit=self._batch_size)
        records = response["Records"]
        if not records:
            shard.iterator = response["NextShardIterator"]
            return 0
        event = stream_event(records, shard.stream_arn)
        try:
            result = domain_events.handler(event, LocalLambdaContext("tracklane-domain-events"))
            # A stream record's identifier is its sequence number (powertools types Kafka's too).
            failed = [str(item["itemIdentifier"]) for item in result.get("batchItemFailures", [])]
        except BatchProcessingError:
            failed = [records[0]["dynamodb"]["SequenceNumber"]]
        self.records_handled += len(records)
        if not failed:
            shard.iterator, shard.failed_attempts = response["NextShardIterator"], 0
            return len(records)
        shard.failed_attempts += 1
        if shard.failed_attempts >= MAX_ATTEMPTS:
            # Like the deployed mapping's on-failure destination: the shard goes on without them.
            logger.error("stream pump: giving up on records", extra={"from_sequence_number": min(failed, key=int)})
            shard.iterator, shard.failed_attempts = response["NextShardIterator"], 0
            return len(records)
        logger.warning("stream pump: records failed; retrying them", extra={"records": len(failed)})
        shard.iterator = self._streams.get_shard_iterator(
            StreamArn=shard.stream_arn,
            ShardId=shard.shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=min(failed, key=int),
        )["ShardIterator"]
        self._stop_requested.wait(0.2 * shard.failed_attempts)
        return len(records)
