"""The Idempotency-Key table: shaped as powertools' DynamoDB persistence layer writes it, expiring
by TTL, and usable by the API function only."""

from __future__ import annotations

import inspect
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

from functions.data.models import IdempotencyRecordModel
from functions.data.schema import spec_for
from stacks.constructs.tables import READ_ACTIONS, WRITE_ACTIONS
from tests.infrastructure.synth import Synth, logical_id_by_path


def _powertools_default(parameter: str) -> Any:
    return inspect.signature(DynamoDBPersistenceLayer.__init__).parameters[parameter].default


def test_the_model_uses_the_attribute_names_powertools_writes():
    """functions.api.idempotency builds the layer with its defaults; the table must match them."""
    attributes = {a.attr_name for a in IdempotencyRecordModel.get_attributes().values()}
    for parameter in ("key_attr", "expiry_attr", "in_progress_expiry_attr", "status_attr", "data_attr"):
        assert _powertools_default(parameter) in attributes, parameter
    assert _powertools_default("validation_key_attr") in attributes
    spec = spec_for(IdempotencyRecordModel)
    assert (spec.partition_key.name, spec.partition_key.type) == (_powertools_default("key_attr"), "S")
    assert spec.sort_key is None and _powertools_default("sort_key_attr") is None
    assert spec.ttl_attribute == _powertools_default("expiry_attr") == "expiration"


def test_the_table_is_deployed_with_ttl_on_expiration(synth: Synth) -> None:
    table = synth.properties(logical_id_by_path(synth, "/Tables/Idempotency/Resource"))
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def _table_actions(synth: Synth, role: str, table_arn: dict[str, Any]) -> set[str]:
    policy = synth.properties(logical_id_by_path(synth, f"/{role}/DefaultPolicy/Resource"))
    actions: set[str] = set()
    for statement in policy["PolicyDocument"]["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if statement["Effect"] == "Allow" and table_arn in resources:
            actions |= set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
    return actions


def test_only_the_api_function_may_use_the_table(synth: Synth) -> None:
    table_arn = {"Fn::GetAtt": [logical_id_by_path(synth, "/Tables/Idempotency/Resource"), "Arn"]}

    api = _table_actions(synth, "Api/FunctionRole", table_arn)
    # powertools: GetItem, a conditional PutItem, UpdateItem (the answer), DeleteItem (release).
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} <= api
    assert api <= {*READ_ACTIONS, *WRITE_ACTIONS}
    for role in ("Ingest/FinalizeRole", "Processing/StepRole", "Sweeper/FunctionRole"):
        assert _table_actions(synth, role, table_arn) == set(), role


def test_the_api_function_is_given_the_table_name(synth: Synth) -> None:
    function = synth.properties(logical_id_by_path(synth, "/Api/Function/Resource"))
    table = logical_id_by_path(synth, "/Tables/Idempotency/Resource")
    assert function["Environment"]["Variables"]["TRACKLANE_IDEMPOTENCY_TABLE"] == {"Ref": table}
