"""Create the local resources on moto from the same definitions the CDK stack deploys:
tables from the pynamodb models, the bucket notification to the S3-event queue, and the state
machine rendered from ``functions.workflow.definition``."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from functions import clients, cors
from functions.data import keys
from functions.data.models import TABLE_MODELS, bind
from functions.data.schema import table_specs
from functions.events import publish
from functions.settings import Settings
from functions.workflow import definition

PREFIX = "tracklane"
ROLE_ARN = "arn:aws:iam::123456789012:role/tracklane-local-workflow"


@dataclass(frozen=True)
class LocalResources:
    endpoint: str
    bucket: str
    s3_events_queue_url: str
    s3_events_queue_arn: str
    s3_events_dlq_url: str
    tasks_queue_url: str
    state_machine_arn: str
    settings: Settings
    # The queue a rule on the domain-events bus fills with every event (what a consumer would see).
    domain_events_queue_url: str

    def environment(self) -> dict[str, str]:
        """Environment that points ``functions.settings`` at these resources."""
        current = self.settings
        return {
            "TRACKLANE_AWS_ENDPOINT_URL": self.endpoint,
            "TRACKLANE_MEDIA_BUCKET": current.media_bucket,
            # Every table the models define, as the CDK stack passes them (stacks.constructs.tables).
            **{
                f"TRACKLANE_{spec.settings_field.upper()}": getattr(current, spec.settings_field)
                for spec in table_specs()
            },
            "TRACKLANE_STATE_MACHINE_ARN": self.state_machine_arn,
            "TRACKLANE_EVENT_BUS_NAME": current.event_bus_name,
        }


def client(service: str, endpoint: str, region: str = "us-east-1") -> Any:
    """A boto3 client for the moto server at ``endpoint`` (sharing the process's session)."""
    return clients.session().client(service, region_name=region, endpoint_url=endpoint)  # type: ignore[call-overload]


def _moto_api(endpoint: str, path: str, body: dict[str, Any] | None = None) -> None:
    request = urllib.request.Request(  # noqa: S310 - our own local moto, http only
        f"{endpoint}/moto-api/{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


def reset(endpoint: str) -> None:
    """Forget every resource and item (tests start each case from nothing)."""
    _moto_api(endpoint, "reset")


def empty(region: str = "us-east-1") -> None:
    """Forget every item, stream record, object, upload in progress, queued message and ended
    execution, keeping the tables, buckets, queues, state machines and their settings: what ``reset``
    then ``provision`` leave, in milliseconds instead of a second. Edits the state of a moto server
    running in this process (``ThreadedMotoServer``), so nothing may be writing to it meanwhile.
    A running execution stays: its worker may still post a task (when a callback times out), so its
    state machine and task queue are not for reuse."""
    from moto.core.model_instances import reset_model_data
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.table import StreamShard
    from moto.dynamodbstreams.models import dynamodbstreams_backends
    from moto.s3.models import FakeKey, FakeMultipart, s3_backends
    from moto.sqs.models import sqs_backends
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    for table in dynamodb_backends[DEFAULT_ACCOUNT_ID][region].tables.values():
        table.items.clear()
        if table.stream_shard is not None:
            # A reader starting at TRIM_HORIZON sees what is written from now on, and nothing before.
            table.stream_shard = StreamShard(DEFAULT_ACCOUNT_ID, table)
    dynamodbstreams_backends[DEFAULT_ACCOUNT_ID][region].shard_iterators.clear()

    for bucket in s3_backends[DEFAULT_ACCOUNT_ID]["global"].buckets.values():
        bucket.keys.clear()
        bucket.multiparts.clear()
    # Every key and part moto made (replaced versions too) holds a temporary file: close them all,
    # as moto's reset does; then forget its record of every instance, which only grows otherwise.
    for stored in (*FakeKey.instances_tracked, *FakeMultipart.instances_tracked):  # type: ignore[attr-defined]
        stored.dispose()
    reset_model_data()

    for queue in sqs_backends[DEFAULT_ACCOUNT_ID][region].queues.values():
        with queue._messages_lock:
            queue._messages = []
            queue._pending_messages = set()
            queue.deleted_messages = set()

    for machine in stepfunctions_parser_backends[DEFAULT_ACCOUNT_ID][region].state_machines:
        machine.executions[:] = [execution for execution in machine.executions if execution.status == "RUNNING"]


def enable_workflow_execution(endpoint: str) -> None:
    """moto only interprets ASL when told to, and only for state machines created afterwards."""
    _moto_api(endpoint, "config", {"stepfunctions": {"execute_state_machine": True}})


def provision(endpoint: str, region: str = "us-east-1", *, cors_origins: Sequence[str] = ("*",)) -> LocalResources:
    enable_workflow_execution(endpoint)
    current = Settings(aws_endpoint_url=endpoint, region=region)

    bind(current)
    for model in TABLE_MODELS:
        if not model.exists():
            model.create_table(billing_mode="PAY_PER_REQUEST", wait=True)
    # The deployed tables' TTL settings (stacks/constructs/tables.py), from the same declaration. moto
    # deletes nothing when an item's time passes; the code judges expiry when it reads.
    dynamodb = client("dynamodb", endpoint, region)
    for spec in table_specs():
        if spec.ttl_attribute is not None:
            dynamodb.update_time_to_live(
                TableName=getattr(current, spec.settings_field),
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )

    sqs = client("sqs", endpoint, region)
    dlq_url = sqs.create_queue(QueueName=f"{PREFIX}-s3-events-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(
        QueueName=f"{PREFIX}-s3-events",
        Attributes={
            "VisibilityTimeout": "10",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    s3 = client("s3", endpoint, region)
    s3.create_bucket(Bucket=current.media_bucket)
    # The deployed bucket's rule (stacks/constructs/storage.py), from the same declaration.
    s3.put_bucket_cors(Bucket=current.media_bucket, CORSConfiguration={"CORSRules": [cors.bucket_rule(cors_origins)]})
    s3.put_bucket_notification_configuration(
        Bucket=current.media_bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": keys.UPLOADS_PREFIX}]}},
                }
            ]
        },
    )

    tasks_url, state_machine_arn = provision_workflow(endpoint, region)
    domain_events_queue_url = _domain_events_bus(current.event_bus_name, endpoint, region)

    return LocalResources(
        endpoint=endpoint,
        bucket=current.media_bucket,
        s3_events_queue_url=queue_url,
        s3_events_queue_arn=queue_arn,
        s3_events_dlq_url=dlq_url,
        tasks_queue_url=tasks_url,
        state_machine_arn=state_machine_arn,
        settings=current.model_copy(update={"state_machine_arn": state_machine_arn}),
        domain_events_queue_url=domain_events_queue_url,
    )


def provision_workflow(endpoint: str, region: str = "us-east-1", *, suffix: str = "") -> tuple[str, str]:
    """The workflow-tasks queue and the state machine whose Tasks post to it: (queue URL, ARN).
    A ``suffix`` makes a pair of their own, which no execution of another pair can reach."""
    sqs = client("sqs", endpoint, region)
    # Workflow tasks stay invisible while a step runs (a transcode can take minutes).
    tasks_url: str = sqs.create_queue(
        QueueName=f"{PREFIX}-workflow-tasks{suffix}", Attributes={"VisibilityTimeout": "900"}
    )["QueueUrl"]
    sfn = client("stepfunctions", endpoint, region)
    asl = json.dumps(definition.render_local(tasks_url))
    existing = {m["name"]: m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]}
    name = f"{PREFIX}-process-track{suffix}"
    if name in existing:
        state_machine_arn: str = existing[name]
        sfn.update_state_machine(stateMachineArn=state_machine_arn, definition=asl)
    else:
        state_machine_arn = sfn.create_state_machine(name=name, definition=asl, roleArn=ROLE_ARN)["stateMachineArn"]
    return tasks_url, state_machine_arn


def _domain_events_bus(bus_name: str, endpoint: str, region: str) -> str:
    """The domain-events bus, and a rule sending every tracklane event on it to a queue: locally the
    events are there to be read (the deployed stack has the bus only; consumers add their rules).
    The tables' streams come from the models (``Meta.stream_view_type``) with the tables."""
    events = client("events", endpoint, region)
    if bus_name not in {bus["Name"] for bus in events.list_event_buses()["EventBuses"]}:
        events.create_event_bus(Name=bus_name)
    sqs = client("sqs", endpoint, region)
    queue_url: str = sqs.create_queue(QueueName=f"{PREFIX}-domain-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"{PREFIX}-domain-events-to-queue"
    events.put_rule(Name=rule, EventBusName=bus_name, EventPattern=json.dumps({"source": [publish.SOURCE]}))
    events.put_targets(Rule=rule, EventBusName=bus_name, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return queue_url
