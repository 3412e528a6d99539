"""moto's transaction rollback, as the local stack and these tests patch it (local/moto_atomic.py):
a cancelled transaction undoes its own writes and nothing else, and a stream reader that was
reading before it keeps reading after it (moto swaps in deep copies of the tables otherwise)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.provision import client as local_client

from .conftest import Stack


def _key(pk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "track"}}


def test_a_cancelled_transaction_undoes_its_writes_and_the_stream_reader_keeps_reading(stack: Stack):
    dynamodb = local_client("dynamodb", stack.resources.endpoint)
    streams = local_client("dynamodbstreams", stack.resources.endpoint)
    table = stack.resources.settings.tracks_table
    stream_arn = dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
    (shard,) = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]

    dynamodb.put_item(TableName=table, Item=_key("before"))
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table, "Item": _key("undone")}},
                {
                    "Put": {
                        "TableName": table,
                        "Item": _key("before"),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    dynamodb.put_item(TableName=table, Item=_key("after"))

    keys = [item["pk"]["S"] for item in dynamodb.scan(TableName=table)["Items"]]
    assert sorted(keys) == ["after", "before"]
    page = streams.get_records(ShardIterator=iterator)
    assert [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in page["Records"]] == [
        ("INSERT", "before"),
        ("INSERT", "after"),
    ]
