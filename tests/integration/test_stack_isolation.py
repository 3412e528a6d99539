"""The integration tests share one provisioned moto server per worker; ``local.provision.empty``
is what keeps them apart. It must leave nothing another test wrote where a test could find it, and
keep every resource working as provisioned."""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import unquote

from functions.data.schema import table_specs
from local.provision import ROLE_ARN, empty
from local.provision import client as local_client
from local.streams import StreamPump, streamed_tables

from .conftest import Stack


def _tables(stack: Stack) -> list[str]:
    return [getattr(stack.resources.settings, spec.settings_field) for spec in table_specs()]


def _queues(stack: Stack) -> list[str]:
    resources = stack.resources
    return [resources.s3_events_queue_url, resources.s3_events_dlq_url, resources.domain_events_queue_url]


def _stream_records(stack: Stack) -> int:
    endpoint = stack.resources.endpoint
    pump = StreamPump(
        local_client("dynamodb", endpoint),
        local_client("dynamodbstreams", endpoint),
        streamed_tables(stack.resources.settings),
    )
    read = 0
    for shard in pump._open_shards():
        read += len(pump._streams.get_records(ShardIterator=shard.iterator)["Records"])
    return read


def test_empty_forgets_every_item_object_message_and_stream_record_and_keeps_the_resources(stack: Stack, wav_3s: Path):
    # Given something in every table, in the bucket (whole and in parts), on every queue and on the streams
    dynamodb = local_client("dynamodb", stack.resources.endpoint)
    for table in _tables(stack):
        keys = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
        dynamodb.put_item(TableName=table, Item={key["AttributeName"]: {"S": "left-behind"} for key in keys})
    bucket = stack.resources.bucket
    stack.s3.put_object(Bucket=bucket, Key="uploads/left-behind/file.wav", Body=wav_3s.read_bytes())
    stack.s3.put_object(Bucket=bucket, Key="tracks/left-behind/original.wav", Body=b"bytes")
    stack.s3.create_multipart_upload(Bucket=bucket, Key="uploads/left-behind/parts.wav")
    for queue in _queues(stack):
        stack.sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"left": "behind"}))
    in_flight = stack.sqs.receive_message(QueueUrl=stack.resources.s3_events_queue_url, VisibilityTimeout=600)
    assert in_flight.get("Messages")
    assert _stream_records(stack) > 0

    # When the store is emptied
    empty(stack.resources.settings.region)

    # Then none of it can be found, in flight or not
    for table in _tables(stack):
        assert dynamodb.scan(TableName=table)["Items"] == [], table
    assert stack.s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    assert stack.s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    for queue in _queues(stack):
        attributes = stack.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessages"] == "0", queue
        assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0", queue
    assert _stream_records(stack) == 0

    # ... and the resources work as provisioned: the bucket still notifies the S3-event queue
    stack.s3.put_object(Bucket=bucket, Key="uploads/after/file.wav", Body=b"new")
    (message,) = stack.sqs.receive_message(QueueUrl=stack.resources.s3_events_queue_url, WaitTimeSeconds=1)["Messages"]
    assert unquote(json.loads(message["Body"])["Records"][0]["s3"]["object"]["key"]) == "uploads/after/file.wav"


def test_every_test_has_a_workflow_of_its_own(stack: Stack):
    # An execution another test started (and may have left waiting on a callback) is not this
    # test's: it belongs to another state machine, posting to another queue.
    assert stack.executions() == []
    machines = stack.sfn.list_state_machines()["stateMachines"]
    assert [m["stateMachineArn"] for m in machines if m["stateMachineArn"] == stack.resources.state_machine_arn]
    definition = json.loads(
        stack.sfn.describe_state_machine(stateMachineArn=stack.resources.state_machine_arn)["definition"]
    )
    queues = {
        state["Parameters"]["QueueUrl"]
        for state in _states(definition)
        if state.get("Resource", "").startswith("arn:aws:states:::sqs:sendMessage")
    }
    assert queues == {stack.resources.tasks_queue_url}


def _states(definition: dict) -> list[dict]:
    """Every state, those inside Parallel branches and Maps included."""
    found = []
    for state in definition.get("States", {}).values():
        found.append(state)
        for branch in state.get("Branches", []):
            found += _states(branch)
        for key in ("Iterator", "ItemProcessor"):
            if key in state:
                found += _states(state[key])
    return found


def test_empty_forgets_ended_executions_and_keeps_running_ones(stack: Stack):
    # Given an execution that ended and one that waits (on a state machine of this test's own)
    definition = {
        "StartAt": "Wait",
        "States": {
            "Wait": {"Type": "Choice", "Choices": [{"Variable": "$.wait", "IsPresent": True, "Next": "Long"}],
                     "Default": "Done"},
            "Long": {"Type": "Wait", "Seconds": 600, "Next": "Done"},
            "Done": {"Type": "Pass", "End": True},
        },
    }  # fmt: skip
    machine = stack.sfn.create_state_machine(
        name="isolation-check", definition=json.dumps(definition), roleArn=ROLE_ARN
    )["stateMachineArn"]
    ended = stack.sfn.start_execution(stateMachineArn=machine, name="ended", input="{}")["executionArn"]
    stack.sfn.start_execution(stateMachineArn=machine, name="waiting", input=json.dumps({"wait": True}))
    deadline = time.monotonic() + 30
    while stack.sfn.describe_execution(executionArn=ended)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.05)

    # When the store is emptied
    empty(stack.resources.settings.region)

    # Then only the running one is still known (a stack keeps no workflow with one for another test)
    listed = stack.sfn.list_executions(stateMachineArn=machine)["executions"]
    assert [(e["name"], e["status"]) for e in listed] == [("waiting", "RUNNING")]
    stack.sfn.delete_state_machine(stateMachineArn=machine)
