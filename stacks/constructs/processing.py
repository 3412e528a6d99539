"""The processing function and the Step Functions state machine that drives it.

The ASL comes from ``functions.workflow.definition.render_aws`` -- the same definition the local
stack runs -- with the function ARN substituted at deploy time.

The stems and lyrics lanes call external processors (``StackConfig.external_processors``): the
function gets each one's URL or Lambda ARN in ``TRACKLANE_<LANE>_PROCESSOR`` and, for an ARN, the
right to invoke exactly that function. A lane without a processor is skipped at run time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions.data.keys import ALBUMS_PREFIX, TRACKS_PREFIX, UPLOADS_PREFIX
from functions.workflow.definition import PROCESSING_FUNCTION_ARN, render_aws
from stacks import nag
from stacks.config import is_lambda_arn
from stacks.constructs.function_factory import FunctionFactory
from stacks.constructs.layers import FFMPEG_PATH
from stacks.constructs.storage import Storage
from stacks.constructs.tables import Tables

# "${ProcessingFunctionArn}" -> "ProcessingFunctionArn"
SUBSTITUTION = PROCESSING_FUNCTION_ARN.removeprefix("${").removesuffix("}")


def processor_env_var(lane: str) -> str:
    """The environment variable ``functions.settings`` reads a lane's external processor from."""
    return f"TRACKLANE_{lane.upper()}_PROCESSOR"


class Processing(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        storage: Storage,
        tables: Tables,
        functions: FunctionFactory,
        layers: Sequence[lambda_.ILayerVersion],
        external_processors: Mapping[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, id_)
        self.function = functions.make(
            self,
            "Step",
            handler="functions.handlers.workflow_step.handler",
            description="Runs one step of the track-processing workflow (probe, transcode, mark ready/failed)",
            layers=layers,
            # 3,584 MB is where Lambda grants 2 vCPUs: the one-process transcode runs its three
            # encoders in parallel (9 s vs 15 s on one core for 3 minutes of music).
            memory_size=3584,
            timeout=Duration.seconds(900),
            ephemeral_storage=Size.mebibytes(4096),
            environment={
                "TRACKLANE_FFMPEG_PATH": FFMPEG_PATH,
                **{processor_env_var(lane): processor for lane, processor in external_processors.items()},
            },
        )
        for processor in external_processors.values():
            if is_lambda_arn(processor):
                # The ARN as configured (qualified or not) is what the lane invokes, so it is the
                # one resource the grant names.
                self.function.add_to_role_policy(
                    iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[processor])
                )
        # Delete: a track's new version, once live, replaces the original it had; a version that
        # failed, or whose track was deleted meanwhile, leaves no original behind
        # (functions.domain.intake.versions).
        storage.grant_uploads(self.function, read=True, delete=True)
        storage.grant_tracks_read_write(self.function)
        # Albums: an uploaded album cover is rendered into the album's variants (``run: album_cover``).
        tables.grant_read_write(self.function, "Tracks", "Uploads", "Albums")
        self.function.add_to_role_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                resources=[storage.bucket.arn_for_objects(f"{ALBUMS_PREFIX}*")],
            )
        )
        for prefix, what in (
            (UPLOADS_PREFIX, "reads the original, deletes a replaced or failed version's"),
            (TRACKS_PREFIX, "writes renditions/artwork"),
            (ALBUMS_PREFIX, "writes album cover variants"),
        ):
            nag.acknowledge(
                self.function.role or self.function,
                storage.objects_finding(prefix),
                f"The step {what} under {prefix} of the media bucket; keys are per track, so the grant is "
                "a prefix, never the whole bucket.",
            )

        log_group = logs.LogGroup(self, "WorkflowLogs", retention=log_retention, removal_policy=removal_policy)
        self.state_machine = sfn.StateMachine(
            self,
            "Workflow",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(json.dumps(render_aws())),
            definition_substitutions={SUBSTITUTION: self.function.function_arn},
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            removal_policy=removal_policy,
        )
        # The Task Resources are the bare function ARN (unqualified), so the role needs exactly that
        # ARN; grant_invoke would add "<arn>:*" (every version and alias) as well.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[self.function.function_arn])
        )
        nag.acknowledge(
            self.state_machine.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing (xray:PutTraceSegments etc.) and CloudWatch Logs delivery "
            "(logs:CreateLogDelivery, logs:DescribeLogGroups, ...) support no resource-level permissions; "
            "AWS requires Resource '*' for them.",
        )
