"""The DynamoDB tables are the pynamodb models, as deployed."""

from __future__ import annotations

from typing import Any

from functions.data.schema import TableSpec, table_specs
from stacks.constructs.tables import env_var
from tests.infrastructure.synth import Synth, logical_id_by_path


def _key_schema(partition: Any, sort: Any) -> list[dict[str, str]]:
    return [{"AttributeName": partition.name, "KeyType": "HASH"}] + (
        [{"AttributeName": sort.name, "KeyType": "RANGE"}] if sort else []
    )


def _table(synth: Synth, spec: TableSpec) -> dict[str, Any]:
    return synth.properties(logical_id_by_path(synth, f"/Tables/{spec.logical_name}/Resource"))


def test_every_model_table_is_deployed_with_its_keys_indexes_and_ttl(synth: Synth) -> None:
    specs = table_specs()
    assert len(synth.resources("AWS::DynamoDB::Table")) == len(specs)
    for spec in specs:
        table = _table(synth, spec)
        assert table["KeySchema"] == _key_schema(spec.partition_key, spec.sort_key), spec.logical_name
        declared = {d["AttributeName"]: d["AttributeType"] for d in table["AttributeDefinitions"]}
        keys = [spec.partition_key, spec.sort_key]
        keys += [k for index in spec.indexes for k in (index.partition_key, index.sort_key)]
        assert declared == {k.name: k.type for k in keys if k}, spec.logical_name

        indexes = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
        assert set(indexes) == {index.name for index in spec.indexes}, spec.logical_name
        for index in spec.indexes:
            deployed = indexes[index.name]
            assert deployed["KeySchema"] == _key_schema(index.partition_key, index.sort_key)
            assert deployed["Projection"]["ProjectionType"] == index.projection
            assert sorted(deployed["Projection"].get("NonKeyAttributes", [])) == sorted(index.non_key_attributes)

        if spec.ttl_attribute:
            assert table["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
        else:
            assert "TimeToLiveSpecification" not in table


def test_tables_are_on_demand_with_point_in_time_recovery(synth: Synth) -> None:
    for spec in table_specs():
        table = _table(synth, spec)
        assert table["BillingMode"] == "PAY_PER_REQUEST"
        assert table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert "ProvisionedThroughput" not in table


def test_prod_tables_are_retained_and_deletion_protected_and_dev_ones_are_not(synth: Synth, variant: Synth) -> None:
    # synth: the dev stage (ephemeral); variant: prod.
    for lid, table in variant.resources("AWS::DynamoDB::Table").items():
        assert table["DeletionPolicy"] == "Retain", lid
        assert table["Properties"]["DeletionProtectionEnabled"] is True, lid
    for lid, table in synth.resources("AWS::DynamoDB::Table").items():
        assert table["DeletionPolicy"] == "Delete", lid
        assert not table["Properties"].get("DeletionProtectionEnabled"), lid


def test_functions_get_each_table_name_under_the_settings_variable(synth: Synth) -> None:
    """functions.settings reads TRACKLANE_<FIELD>; each must name the table of that model."""
    paths = ("Api/Function", "Ingest/Finalize", "Processing/Step", "Sweeper/Function")
    functions = [logical_id_by_path(synth, f"/{p}/Resource") for p in paths]
    for spec in table_specs():
        table_id = logical_id_by_path(synth, f"/Tables/{spec.logical_name}/Resource")
        for function in functions:
            variables = synth.properties(function)["Environment"]["Variables"]
            assert variables[env_var(spec)] == {"Ref": table_id}, (function, spec.logical_name)
