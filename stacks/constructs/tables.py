"""DynamoDB tables, derived from the pynamodb models (``functions.data.schema.table_specs``).

There is no second copy of a key schema here: a model change reaches the stack on the next synth.
Grants name each index the model declares instead of ``<table>/index/*``, and include no Scan:
every access pattern is a GetItem or a Query, so a Scan in the code fails loudly in AWS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct

from functions.data.models import TABLE_MODELS
from functions.data.schema import IndexSpec, Key, TableSpec, table_specs

_ATTRIBUTE_TYPES = {
    "S": dynamodb.AttributeType.STRING,
    "N": dynamodb.AttributeType.NUMBER,
    "B": dynamodb.AttributeType.BINARY,
}
_PROJECTIONS = {
    "ALL": dynamodb.ProjectionType.ALL,
    "KEYS_ONLY": dynamodb.ProjectionType.KEYS_ONLY,
    "INCLUDE": dynamodb.ProjectionType.INCLUDE,
}
READ_ACTIONS = (
    "dynamodb:GetItem",
    "dynamodb:BatchGetItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DescribeTable",
)
WRITE_ACTIONS = (
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
)


def _attribute(key: Key) -> dynamodb.Attribute:
    return dynamodb.Attribute(name=key.name, type=_ATTRIBUTE_TYPES[key.type])


def stream_view_types() -> dict[str, str]:
    """``{logical table name: view type}`` for each table whose model asks for a DynamoDB stream
    (``Meta.stream_view_type``, which the local stack's ``create_table`` honours as well)."""
    metas: list[Any] = [model.Meta for model in TABLE_MODELS]
    return {meta.logical_name: meta.stream_view_type for meta in metas if getattr(meta, "stream_view_type", None)}


def env_var(spec: TableSpec) -> str:
    """The environment variable ``functions.settings`` reads the table name from."""
    return f"TRACKLANE_{spec.settings_field.upper()}"


def indexes_of(spec: TableSpec, *, index_migration: bool) -> list[IndexSpec]:
    """The table's indexes: the models' own and, while a deployment migrates across
    (``index_migration``), the ones they replaced. DynamoDB creates or deletes one index per table
    update, so a release replaces at most one index per table (tests/infrastructure checks)."""
    replaced = [old for index in spec.indexes if (old := index.replaced()) is not None] if index_migration else []
    return [*spec.indexes, *replaced]


class Tables(Construct):
    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        removal_policy: RemovalPolicy,
        deletion_protection: bool,
        index_migration: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        self.index_migration = index_migration
        self.specs: dict[str, TableSpec] = {spec.logical_name: spec for spec in table_specs()}
        self.by_name: dict[str, dynamodb.Table] = {}
        streams = stream_view_types()
        for name, spec in self.specs.items():
            table = dynamodb.Table(
                self,
                name,
                partition_key=_attribute(spec.partition_key),
                sort_key=_attribute(spec.sort_key) if spec.sort_key else None,
                billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
                point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                    point_in_time_recovery_enabled=True
                ),
                encryption=dynamodb.TableEncryption.AWS_MANAGED,
                time_to_live_attribute=spec.ttl_attribute,
                stream=dynamodb.StreamViewType(streams[name]) if name in streams else None,
                removal_policy=removal_policy,
                deletion_protection=deletion_protection,
            )
            for index in indexes_of(spec, index_migration=index_migration):
                table.add_global_secondary_index(
                    index_name=index.name,
                    partition_key=_attribute(index.partition_key),
                    sort_key=_attribute(index.sort_key) if index.sort_key else None,
                    projection_type=_PROJECTIONS[index.projection],
                    non_key_attributes=list(index.non_key_attributes) or None,
                )
            self.by_name[name] = table

    def environment(self) -> Mapping[str, str]:
        """``{"TRACKLANE_TRACKS_TABLE": <name>, ...}`` for every table, and while the tables migrate,
        the switch that makes the code query the replaced indexes (their successors may be backfilling)."""
        names = {env_var(spec): self.by_name[name].table_name for name, spec in self.specs.items()}
        return {**names, **({"TRACKLANE_READ_REPLACED_INDEXES": "true"} if self.index_migration else {})}

    def _resources(self, name: str) -> list[str]:
        table = self.by_name[name]
        indexes = indexes_of(self.specs[name], index_migration=self.index_migration)
        return [table.table_arn, *(f"{table.table_arn}/index/{index.name}" for index in indexes)]

    def grant_read(self, grantee: iam.IGrantable, *names: str) -> None:
        for name in names:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(actions=list(READ_ACTIONS), resources=self._resources(name))
            )

    def grant_read_write(self, grantee: iam.IGrantable, *names: str) -> None:
        for name in names:
            grantee.grant_principal.add_to_principal_policy(
                iam.PolicyStatement(actions=[*READ_ACTIONS, *WRITE_ACTIONS], resources=self._resources(name))
            )
