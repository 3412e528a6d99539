"""Every Lambda function of the stack comes from here, so they share runtime, architecture,
tracing, logging, the code asset and the base environment, and differ only where they must."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from aws_cdk import Duration, IgnoreMode, RemovalPolicy, Size
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks import nag
from stacks.constructs.layers import ARCHITECTURE, RUNTIME

ROOT = Path(__file__).resolve().parent.parent.parent
SERVICE_NAME = "tracklane"

# The code asset is the ``functions`` package and nothing else: an allow-list (git ignore syntax),
# so a new top-level directory -- and above all ``local/``, whose dev-only HS256 token path must
# never reach AWS -- stays out without anyone remembering to exclude it.
CODE_EXCLUDES = (
    "*",
    "!/functions/",
    "!/functions/**",
    "__pycache__/",
    "*.py[cod]",
    ".*",
)


def code_asset() -> lambda_.Code:
    return lambda_.Code.from_asset(str(ROOT), exclude=list(CODE_EXCLUDES), ignore_mode=IgnoreMode.GIT)


class FunctionFactory:
    def __init__(
        self,
        *,
        environment: Mapping[str, str],
        log_retention: logs.RetentionDays,
        removal_policy: RemovalPolicy,
    ) -> None:
        self.code = code_asset()
        self.environment = {"POWERTOOLS_SERVICE_NAME": SERVICE_NAME, **environment}
        self.log_retention = log_retention
        self.removal_policy = removal_policy

    def make(
        self,
        scope: Construct,
        id_: str,
        *,
        handler: str,
        description: str,
        layers: Sequence[lambda_.ILayerVersion],
        timeout: Duration,
        memory_size: int = 256,
        ephemeral_storage: Size | None = None,
        reserved_concurrency: int | None = None,
        environment: Mapping[str, str] | None = None,
        role: iam.Role | None = None,
    ) -> lambda_.Function:
        """``role``: one shared by functions that run the same code with the same rights (the
        processing steps); by default the function gets a role of its own."""
        log_group = logs.LogGroup(scope, f"{id_}Logs", retention=self.log_retention, removal_policy=self.removal_policy)
        # An own role instead of the default one with AWSLambdaBasicExecutionRole (logs:* on every
        # log group): this function may write to its own log group only.
        role = role or iam.Role(
            scope,
            f"{id_}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"tracklane {id_} function",
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            scope,
            id_,
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=self.code,
            layers=list(layers),
            memory_size=memory_size,
            timeout=timeout,
            ephemeral_storage_size=ephemeral_storage,
            reserved_concurrent_executions=reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            role=role,
            log_group=log_group,
            environment={**self.environment, **(environment or {})},
        )
        nag.acknowledge(
            function,
            "AwsSolutions-L1",
            "Pinned to python3.11 on purpose: the deps layer is built for cp311 manylinux2014 wheels "
            "and pyproject requires Python <3.12; moving runtimes is a deliberate, tested change.",
        )
        nag.acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing) support no resource-level "
            "permissions; AWS requires Resource '*' for them.",
        )
        return function
