"""Domain events: the Tracks and Albums streams feed one publisher function, in order and with
partial batch failures, and that function may do nothing but read those two streams and put
events on the one bus."""

from __future__ import annotations

import json
from typing import Any

from functions.data.models import AlbumModel, TrackModel
from local import streams
from stacks.constructs.events import BATCH_SIZE, RETRY_ATTEMPTS
from tests.infrastructure.synth import Synth, logical_id_by_path


def _arn(synth: Synth, path: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id_by_path(synth, path), "Arn"]}


def _stream_arn(synth: Synth, table: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id_by_path(synth, f"/Tables/{table}/Resource"), "StreamArn"]}


def test_only_the_tracks_and_albums_tables_stream_both_images(synth: Synth) -> None:
    streams_by_table = {
        r["Metadata"]["aws:cdk:path"].split("/")[-2]: r["Properties"].get("StreamSpecification")
        for r in synth.resources("AWS::DynamoDB::Table").values()
    }
    assert {table for table, stream in streams_by_table.items() if stream is not None} == {"Tracks", "Albums"}
    assert streams_by_table["Tracks"] == streams_by_table["Albums"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert len(streams_by_table) >= 5  # the check above cannot pass on an empty synth


def test_each_stream_feeds_the_publisher_in_order_with_partial_failures_and_a_dead_letter_queue(
    synth: Synth,
) -> None:
    function = logical_id_by_path(synth, "/DomainEvents/Publisher/Resource")
    mappings = {
        json.dumps(m["Properties"]["EventSourceArn"]): m["Properties"]
        for m in synth.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["FunctionName"] == {"Ref": function}
    }
    item_kinds = {"Tracks": TrackModel.TRACK_SK, "Albums": AlbumModel.ALBUM_SK}
    assert set(mappings) == {json.dumps(_stream_arn(synth, table)) for table in item_kinds}
    for table, item_kind in item_kinds.items():
        mapping = dict(mappings[json.dumps(_stream_arn(synth, table))])
        # Lane items, tag entries and slug claims never reach the function.
        (pattern,) = mapping.pop("FilterCriteria")["Filters"]
        assert json.loads(pattern["Pattern"]) == {"dynamodb": {"Keys": {"sk": {"S": [item_kind]}}}}, table
        assert mapping == {
            "EventSourceArn": _stream_arn(synth, table),
            "FunctionName": {"Ref": function},
            "StartingPosition": "TRIM_HORIZON",
            "BatchSize": BATCH_SIZE,
            # One batch at a time per shard: a track's created/processed/deleted stay in order.
            "ParallelizationFactor": 1,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BisectBatchOnFunctionError": True,
            "MaximumRetryAttempts": RETRY_ATTEMPTS,
            "DestinationConfig": {"OnFailure": {"Destination": _arn(synth, "/DomainEvents/DeadLetters/Resource")}},
            "Tags": mapping["Tags"],
        }, table
    # The local stack's pump gives up after as many attempts.
    assert streams.MAX_ATTEMPTS == RETRY_ATTEMPTS + 1


def test_publisher_may_read_the_two_streams_and_put_events_on_the_bus_only(synth: Synth) -> None:
    statements = synth.properties(logical_id_by_path(synth, "/DomainEvents/PublisherRole/DefaultPolicy/Resource"))[
        "PolicyDocument"
    ]["Statement"]
    by_action = {json.dumps(s["Action"]): s["Resource"] for s in statements}
    assert by_action == {
        json.dumps(["logs:CreateLogStream", "logs:PutLogEvents"]): _arn(synth, "/DomainEvents/PublisherLogs/Resource"),
        json.dumps(["xray:PutTelemetryRecords", "xray:PutTraceSegments"]): "*",
        json.dumps("events:PutEvents"): _arn(synth, "/DomainEvents/Bus/Resource"),
        json.dumps(
            ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"]
        ): [_stream_arn(synth, "Albums"), _stream_arn(synth, "Tracks")],
        json.dumps(["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"]): _arn(
            synth, "/DomainEvents/DeadLetters/Resource"
        ),
    }
    assert all(s["Effect"] == "Allow" for s in statements)
    role = synth.properties(logical_id_by_path(synth, "/DomainEvents/PublisherRole/Resource"))
    assert "Policies" not in role and not role.get("ManagedPolicyArns")


def test_publisher_runs_its_handler_with_the_bus_name_and_the_deps_layer_only(synth: Synth) -> None:
    function = synth.properties(logical_id_by_path(synth, "/DomainEvents/Publisher/Resource"))
    assert function["Handler"] == "functions.handlers.domain_events.handler"
    bus = logical_id_by_path(synth, "/DomainEvents/Bus/Resource")
    assert function["Environment"]["Variables"]["TRACKLANE_EVENT_BUS_NAME"] == {"Ref": bus}
    assert function["Layers"] == [{"Ref": logical_id_by_path(synth, "/Layers/Deps/Resource")}]
    assert synth.template["Outputs"]["EventBusName"]["Value"] == {"Ref": bus}
    # Only the publisher is told the bus: nothing else puts events on it.
    others = [
        lid
        for lid, f in synth.resources("AWS::Lambda::Function").items()
        if "TRACKLANE_EVENT_BUS_NAME" in f["Properties"].get("Environment", {}).get("Variables", {})
    ]
    assert others == [logical_id_by_path(synth, "/DomainEvents/Publisher/Resource")]


def test_every_event_on_the_bus_is_archived_for_replay(synth: Synth, variant: Synth) -> None:
    for deployed, days in ((synth, 90), (variant, 0)):
        (archive,) = deployed.resources("AWS::Events::Archive").values()
        props = archive["Properties"]
        assert props["SourceArn"] == _arn(deployed, "/DomainEvents/Bus/Resource")
        # The pattern matches every event: all of them come from this account.
        assert list(props["EventPattern"]) == ["account"]
        assert props["RetentionDays"] == days  # 0: kept indefinitely
