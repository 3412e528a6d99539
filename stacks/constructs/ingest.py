"""S3 ObjectCreated under ``uploads/`` -> SQS (with a DLQ and an alarm on it) -> the finalize function.

The explicit ``POST /v1/uploads/:id/finalize`` and this path race on purpose; the finalize service
makes exactly one of them win, so either may arrive first, twice, or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as sources
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions.data.keys import UPLOADS_PREFIX
from stacks import nag
from stacks.constructs.dead_letters import dead_letters
from stacks.constructs.function_factory import FunctionFactory
from stacks.constructs.storage import Storage
from stacks.constructs.tables import Tables

FINALIZE_TIMEOUT = Duration.seconds(60)
BATCH_SIZE = 10
MAX_RECEIVE_COUNT = 5


class Ingest(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        storage: Storage,
        tables: Tables,
        workflow: sfn.IStateMachine,
        functions: FunctionFactory,
        layers: Sequence[lambda_.ILayerVersion],
        max_concurrency: int,
    ) -> None:
        super().__init__(scope, id_)
        self.dead_letters = dead_letters(
            self,
            runbook=(
                f"S3 upload events failed finalize {MAX_RECEIVE_COUNT} times and sit in the DLQ; inspect and redrive."
            ),
        )
        self.queue = sqs.Queue(
            self,
            "PutEvents",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            # AWS's guidance for a Lambda event source: at least six times the function timeout, so
            # a message is not redelivered while a retried batch is still being worked on.
            visibility_timeout=Duration.seconds(6 * FINALIZE_TIMEOUT.to_seconds()),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dead_letters.queue, max_receive_count=MAX_RECEIVE_COUNT),
        )
        storage.bucket.add_event_notification(
            s3.EventType.OBJECT_CREATED, s3n.SqsDestination(self.queue), s3.NotificationKeyFilter(prefix=UPLOADS_PREFIX)
        )
        _acknowledge_notifications_handler(self)

        self.function = functions.make(
            self,
            "Finalize",
            handler="functions.handlers.finalize_on_put.handler",
            description="Finalizes uploads from S3 ObjectCreated events (via SQS)",
            layers=layers,
            timeout=FINALIZE_TIMEOUT,
            environment={"TRACKLANE_STATE_MACHINE_ARN": workflow.state_machine_arn},
        )
        self.function.add_event_source(
            sources.SqsEventSource(
                self.queue,
                batch_size=BATCH_SIZE,
                report_batch_item_failures=True,
                # Caps this consumer without reserving concurrency (see StackConfig): past the cap,
                # messages wait in the queue rather than being throttled back into it.
                max_concurrency=max_concurrency,
            )
        )
        # Albums: a finalized track joins the album its intent named. Artists: finalize settles or
        # releases the intent's storage reservation (functions.domain.catalog.usage).
        tables.grant_read_write(self.function, "Uploads", "Tracks", "Albums", "Artists")
        storage.grant_uploads(self.function, read=True, delete=True)
        workflow.grant_start_execution(self.function)
        # Finalize (the explicit route here, the put event in ingest) copies the verified file out
        # of uploads/ to where its track or album keeps it, and drops that copy on rejection.
        for prefix in storage.grant_keep_uploads(self.function):
            nag.acknowledge(
                self.function.role or self.function,
                storage.objects_finding(prefix),
                "Copies a finalized upload to, and deletes a rejected one from, the kept-uploads folder of "
                "its track or album, whose keys are per upload; PutObject and DeleteObject only.",
            )
        nag.acknowledge(
            self.function.role or self.function,
            storage.objects_finding(UPLOADS_PREFIX),
            "Reads and deletes the uploaded original, whose key is only known per event; limited to uploads/.",
        )


def _acknowledge_notifications_handler(scope: Construct) -> None:
    """``add_event_notification`` puts a CDK-owned singleton Lambda (it calls PutBucketNotification
    at deploy time) at the stack root; its role uses the AWS managed basic-execution policy."""
    stack = Stack.of(scope)
    for child in stack.node.children:
        if child.node.id.startswith("BucketNotificationsHandler"):
            nag.acknowledge(
                child,
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
                "CDK's own deploy-time handler that configures the bucket notification; its role is not "
                "configurable and the managed policy only grants writing its own logs.",
            )
