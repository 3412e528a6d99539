"""The sweeper: every 15 minutes it looks at the tracks still marked as processing (the Tracks
table's ``by_processing`` index) and asks Step Functions what became of each one's execution
(``functions.domain.processing.sweeper``): an ended execution gets its track a verdict, a missing one (finalize
crashed between claiming the upload and starting it) is started, under the upload's id as always.

A sweep ends (5-minute timeout) long before the next one starts, so sweeps overlap only when a
delivery is retried; two overlapping sweeps would only race on the same tracks, each settling a
track with a conditional write. Reserved concurrency could forbid even that, but it fails deployments
on accounts with a low concurrency quota, so it is off unless configured
(``StackConfig.sweeper_reserved_concurrency``). It reads no media, so it has no S3 access at all.

EventBridge retries a schedule delivery Lambda refused (throttling, a service error) for up to
``SWEEP_RATE`` -- a later one would only overlap the next sweep -- then parks the event in a
dead-letter queue (alarmed), so a sweeper that cannot run is noticed.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from stacks import nag
from stacks.constructs.dead_letters import dead_letters
from stacks.constructs.function_factory import FunctionFactory
from stacks.constructs.tables import Tables

SWEEP_RATE = Duration.minutes(15)
SWEEP_TIMEOUT = Duration.minutes(5)
SCHEDULE_RETRY_ATTEMPTS = 4


class Sweeper(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        tables: Tables,
        workflow: sfn.StateMachine,
        functions: FunctionFactory,
        layers: Sequence[lambda_.ILayerVersion],
        reserved_concurrency: int | None,
    ) -> None:
        super().__init__(scope, id_)
        self.function = functions.make(
            self,
            "Function",
            handler="functions.handlers.sweeper.handler",
            description="Every 15 minutes: settles tracks whose workflow ended without a verdict",
            layers=layers,
            memory_size=512,
            timeout=SWEEP_TIMEOUT,
            reserved_concurrency=reserved_concurrency,
            environment={"TRACKLANE_STATE_MACHINE_ARN": workflow.state_machine_arn},
        )
        # Tracks: the index Query and the verdict; Uploads: finding the upload and recording the
        # execution it starts; Artists: the run slots it frees and the waiting uploads it starts
        # (functions.domain.intake.run_queue), and the storage usage a verdict settles.
        tables.grant_read_write(self.function, "Tracks", "Uploads", "Artists")
        workflow.grant_start_execution(self.function)
        # Executions are named by upload id, so the statement can only name the state machine's
        # executions as a whole: arn:<partition>:states:<region>:<account>:execution:<machine>:*.
        executions = Stack.of(self).format_arn(
            service="states",
            resource="execution",
            resource_name=f"{workflow.state_machine_name}:*",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["states:DescribeExecution"], resources=[executions])
        )
        nag.acknowledge(
            self.function.role or self.function,
            f"AwsSolutions-IAM5[Resource::{nag.executions_of(workflow)}]",
            "DescribeExecution on the processing state machine's executions only; an execution's name is the "
            "upload id, known per track at run time, so the resource ends in ':*'.",
        )

        self.dead_letters = dead_letters(
            self,
            runbook=(
                "A scheduled sweep could not be delivered to the sweeper function (throttled or refused "
                f"for {SWEEP_RATE.to_minutes()} minutes): tracks left processing are not being settled."
            ),
        )
        nag.acknowledge(
            self.dead_letters.queue,
            "AwsSolutions-SQS3",
            "This queue is the dead-letter destination itself: it receives the schedule events EventBridge "
            "could not deliver to the sweeper.",
        )
        self.schedule = events.Rule(
            self,
            "Schedule",
            description="Runs the tracklane sweeper",
            schedule=events.Schedule.rate(SWEEP_RATE),
            targets=[
                targets.LambdaFunction(
                    self.function,
                    dead_letter_queue=self.dead_letters.queue,
                    retry_attempts=SCHEDULE_RETRY_ATTEMPTS,
                    max_event_age=SWEEP_RATE,
                )
            ],
        )
