"""The processing functions and the Step Functions state machine that drives them.

The ASL comes from ``functions.workflow.definition.render_aws`` -- the same definition the local
stack runs -- with a function ARN substituted into each Task at deploy time.

Every Task has its own ``TimeoutSeconds`` (60 s for a status write, 900 s for a rendition), and a
Task that times out does not stop the Lambda it invoked: with one 900-second function behind every
Task, a timed-out 60-second step could go on writing for 14 more minutes after its Catch had
moved the track on. And every Task has its memory (``Task.memory_mb``: one vCPU for an ffmpeg
decode or encode, far less for a status write). So there is one function per (timeout, memory) --
the same code, role and layers -- each stopping ``TASK_TIMEOUT_MARGIN`` before its Tasks give up,
and its ffmpeg runs stopping before the function does, so a stuck encoder ends as a lane failure
the step records, not a kill.

The stems and lyrics lanes call external processors (``StackConfig.external_processors``): the
function gets each one's URL or Lambda ARN in ``TRACKLANE_<LANE>_PROCESSOR`` and, for an ARN, the
right to invoke exactly that function. A lane without a processor is skipped at run time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from functions.data.keys import ALBUMS_PREFIX, AUTOTAG_REFERENCES, TRACKS_PREFIX, UPLOADS_PREFIX
from functions.workflow.definition import PROCESSING_FUNCTION_ARN, WORKFLOW, render_aws
from stacks import nag
from stacks.config import is_lambda_arn
from stacks.constructs.function_factory import FunctionFactory
from stacks.constructs.layers import FFMPEG_PATH
from stacks.constructs.storage import Storage
from stacks.constructs.tables import Tables

# "${ProcessingFunctionArn}" -> "ProcessingFunctionArn"
SUBSTITUTION = PROCESSING_FUNCTION_ARN.removeprefix("${").removesuffix("}")
# Step Functions' clock for a Task starts before Lambda's: a cold start's init phase (up to 10 s)
# does not count against the function's timeout but does against the Task's.
TASK_TIMEOUT_MARGIN = Duration.seconds(15)
# Time left to a step after ffmpeg gave up: recording the lane's failure and answering.
FFMPEG_MARGIN = Duration.seconds(45)


def processor_env_var(lane: str) -> str:
    """The environment variable ``functions.settings`` reads a lane's external processor from."""
    return f"TRACKLANE_{lane.upper()}_PROCESSOR"


# (Task TimeoutSeconds, memory MB): the size of the function behind a Task.
FunctionSize = tuple[int, int]


def function_sizes() -> list[FunctionSize]:
    """The distinct sizes of the workflow's Tasks, longest timeout (then most memory) first."""
    return sorted({(task.timeout_seconds, task.memory_mb) for task in WORKFLOW.tasks()}, reverse=True)


def function_id(size: FunctionSize) -> str:
    """The construct id of the function of that size: ``Step`` for the largest (probe, renditions)."""
    return "Step" if size == function_sizes()[0] else f"Step{size[0]}s{size[1]}mb"


def function_timeout(task_timeout_s: int) -> Duration:
    return Duration.seconds(task_timeout_s - TASK_TIMEOUT_MARGIN.to_seconds())


def ffmpeg_timeout_s(function_timeout_s: int) -> int:
    return int(max(function_timeout_s - FFMPEG_MARGIN.to_seconds(), function_timeout_s // 2))


def substitution_for(size: FunctionSize) -> str:
    """The definition substitution naming the function behind Tasks of this size."""
    return f"{SUBSTITUTION}{size[0]}s{size[1]}mb"


def route_tasks(definition: dict[str, Any]) -> dict[str, Any]:
    """``render_aws``'s ASL with each Task's Resource, the one placeholder, replaced by the
    substitution of the function for its size (state names are unique in the state machine)."""
    sizes = {task.name: (task.timeout_seconds, task.memory_mb) for task in WORKFLOW.tasks()}

    def route(states: dict[str, Any]) -> dict[str, Any]:
        routed = {}
        for name, rendered in states.items():
            state = dict(rendered)
            if state["Type"] == "Task":
                if state["Resource"] != PROCESSING_FUNCTION_ARN:
                    raise ValueError(f"Task {name} invokes {state['Resource']}, not {PROCESSING_FUNCTION_ARN}")
                state["Resource"] = "${" + substitution_for(sizes[name]) + "}"
            if "Branches" in state:
                state["Branches"] = [{**branch, "States": route(branch["States"])} for branch in state["Branches"]]
            routed[name] = state
        return routed

    return {**definition, "States": route(definition["States"])}


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
        # One role for every step function: they run the same handler on the same data.
        self.role = iam.Role(
            self,
            "StepRole",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="tracklane processing step functions",
        )
        # {(Task timeout, memory): the function behind those Tasks}; "Step" runs probe and the renditions.
        self.functions: dict[FunctionSize, lambda_.Function] = {}
        for size in function_sizes():
            task_timeout, memory_mb = size
            timeout = function_timeout(task_timeout)
            self.functions[size] = functions.make(
                self,
                function_id(size),
                handler="functions.handlers.workflow_step.handler",
                description=(
                    f"Runs the track-processing workflow's steps whose Task times out after {task_timeout} s "
                    f"and needs {memory_mb} MB"
                ),
                layers=layers,
                memory_size=memory_mb,
                timeout=timeout,
                ephemeral_storage=Size.mebibytes(4096),
                role=self.role,
                environment={
                    "TRACKLANE_FFMPEG_PATH": FFMPEG_PATH,
                    "TRACKLANE_FFMPEG_TIMEOUT_S": str(ffmpeg_timeout_s(int(timeout.to_seconds()))),
                    **{processor_env_var(lane): processor for lane, processor in external_processors.items()},
                },
            )
        self.function = self.functions[function_sizes()[0]]
        for processor in external_processors.values():
            if is_lambda_arn(processor):
                # The ARN as configured (qualified or not) is what the lane invokes, so it is the
                # one resource the grant names.
                self.role.add_to_principal_policy(
                    iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[processor])
                )
        # Delete: a track's new version, once live, replaces the original it had; a version that
        # failed, or whose track was deleted meanwhile, leaves no original behind
        # (functions.domain.intake.versions).
        storage.grant_uploads(self.role, read=True, delete=True)
        storage.grant_tracks_read_write(self.role)
        # Albums: an uploaded album cover is rendered into the album's variants (``run: album_cover``).
        # Artists: renditions and versions count in their owner's storage usage.
        tables.grant_read_write(self.role, "Tracks", "Uploads", "Albums", "Artists")
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                resources=[storage.bucket.arn_for_objects(f"{ALBUMS_PREFIX}*")],
            )
        )
        # The autotag lane's reference snapshot (functions.domain.processing.autotag), that one
        # object: read, and rebuilt by the first lane that finds it expired.
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:GetObject", "s3:PutObject"],
                resources=[storage.bucket.arn_for_objects(AUTOTAG_REFERENCES)],
            )
        )
        for prefix, what in (
            (UPLOADS_PREFIX, "reads the original, deletes a replaced or failed version's"),
            (TRACKS_PREFIX, "writes renditions/artwork"),
            (ALBUMS_PREFIX, "writes album cover variants"),
        ):
            nag.acknowledge(
                self.role,
                storage.objects_finding(prefix),
                f"The step {what} under {prefix} of the media bucket; keys are per track, so the grant is "
                "a prefix, never the whole bucket.",
            )

        log_group = logs.LogGroup(self, "WorkflowLogs", retention=log_retention, removal_policy=removal_policy)
        self.state_machine = sfn.StateMachine(
            self,
            "Workflow",
            state_machine_type=sfn.StateMachineType.STANDARD,
            definition_body=sfn.DefinitionBody.from_string(json.dumps(route_tasks(render_aws()))),
            definition_substitutions={
                substitution_for(size): function.function_arn for size, function in self.functions.items()
            },
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
            removal_policy=removal_policy,
        )
        # The Task Resources are the bare function ARNs (unqualified), so the role needs exactly
        # those; grant_invoke would add "<arn>:*" (every version and alias) as well.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["lambda:InvokeFunction"],
                resources=[function.function_arn for function in self.functions.values()],
            )
        )
        # A verdict hands its run slot to the artist's oldest waiting upload by starting that
        # upload's execution (functions.domain.intake.run_queue). A policy of its own, not the
        # role's default one: each function depends on that (so the state machine, which names
        # the functions, would depend on itself through it).
        iam.Policy(
            self,
            "HandOffPolicy",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(actions=["states:StartExecution"], resources=[self.state_machine.state_machine_arn])
            ],
        )
        nag.acknowledge(
            self.state_machine.role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray tracing (xray:PutTraceSegments etc.) and CloudWatch Logs delivery "
            "(logs:CreateLogDelivery, logs:DescribeLogGroups, ...) support no resource-level permissions; "
            "AWS requires Resource '*' for them.",
        )
