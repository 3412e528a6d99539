"""Key schemas are forever: a test fails when the deployed tables' keys or indexes change.

CloudFormation cannot change a DynamoDB table's key schema (or its local secondary indexes, or its
logical id) in place: it creates a new, empty table and deletes the old one -- or, with the
RETAIN policy every non-ephemeral stage has, leaves it behind, orphaned, with all the data. So
``table_keys.json`` records what the deployed tables have, and any difference fails here.

Global secondary indexes can change in place, but one at a time: one update of a table may create
or delete one GSI, and an index cannot be modified (new keys or projection = delete, then create
under a new name). The GSI test says whether a difference fits one deployment.

After a deliberate, deployable change (see docs/operations.md), record it:
``TRACKLANE_UPDATE_TABLE_KEYS=1 .venv/bin/pytest tests/infrastructure/test_table_keys.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.infrastructure.synth import Synth

SNAPSHOT = Path(__file__).with_name("table_keys.json")
UPDATE = "TRACKLANE_UPDATE_TABLE_KEYS"


def _types(props: dict[str, Any]) -> dict[str, str]:
    return {d["AttributeName"]: d["AttributeType"] for d in props.get("AttributeDefinitions", [])}


def _keys(schema: list[dict[str, str]], types: dict[str, str]) -> list[str]:
    """``["pk:S:HASH", "sk:S:RANGE"]``: name, type and role of each key attribute."""
    return [f"{key['AttributeName']}:{types[key['AttributeName']]}:{key['KeyType']}" for key in schema]


def deployed_keys(synth: Synth) -> dict[str, Any]:
    """``{construct path of the table: {logicalId, keys, localIndexes, globalIndexes}}``."""
    found: dict[str, Any] = {}
    for lid, table in synth.resources("AWS::DynamoDB::Table").items():
        props = table["Properties"]
        types = _types(props)
        path = table["Metadata"]["aws:cdk:path"].removeprefix(f"{synth.stack_name}/")
        found[path] = {
            "logicalId": lid,
            "keys": _keys(props["KeySchema"], types),
            "localIndexes": {
                index["IndexName"]: _keys(index["KeySchema"], types) for index in props.get("LocalSecondaryIndexes", [])
            },
            "globalIndexes": {
                index["IndexName"]: {
                    "keys": _keys(index["KeySchema"], types),
                    "projection": index["Projection"].get("ProjectionType"),
                    "nonKeyAttributes": sorted(index["Projection"].get("NonKeyAttributes", [])),
                }
                for index in props.get("GlobalSecondaryIndexes", [])
            },
        }
    return dict(sorted(found.items()))


def _recorded(synth: Synth) -> dict[str, Any]:
    current = deployed_keys(synth)
    if os.environ.get(UPDATE) == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2) + "\n")
    return dict(json.loads(SNAPSHOT.read_text()))


def test_no_table_is_replaced(synth: Synth, variant: Synth) -> None:
    recorded = _recorded(synth)
    for deployed in (synth, variant):
        current = deployed_keys(deployed)
        replaced = {
            path: {"recorded": recorded.get(path), "now": current.get(path)}
            for path in recorded.keys() | current.keys()
            if {k: v for k, v in (recorded.get(path) or {}).items() if k != "globalIndexes"}
            != {k: v for k, v in (current.get(path) or {}).items() if k != "globalIndexes"}
        }
        assert not replaced, (
            "A table's key schema, local secondary indexes or logical id changed, or a table appeared or "
            "went away. CloudFormation would replace such a table with a new, empty one and leave the old "
            "one (and its data) orphaned, retained outside the stack. Keep the key schema; to change it, "
            "add a new table beside the old one, migrate the items, then remove the old one in a later "
            f"release. A new table is fine: record it with {UPDATE}=1 (tests/infrastructure/test_table_keys.py). "
            f"Changed: {json.dumps(replaced, indent=2)}"
        )


def _index_changes(recorded: dict[str, Any], current: dict[str, Any]) -> dict[str, list[str]]:
    """``{table path: ["create <index>", "delete <index>", "modify <index>"]}`` for each table."""
    changes: dict[str, list[str]] = {}
    for path in recorded.keys() & current.keys():
        before, after = recorded[path]["globalIndexes"], current[path]["globalIndexes"]
        table_changes = [f"create {name}" for name in sorted(after.keys() - before.keys())]
        table_changes += [f"delete {name}" for name in sorted(before.keys() - after.keys())]
        table_changes += [
            f"modify {name}" for name in sorted(before.keys() & after.keys()) if before[name] != after[name]
        ]
        if table_changes:
            changes[path] = table_changes
    return changes


def test_global_index_changes_are_recorded_and_fit_one_deployment(synth: Synth) -> None:
    changes = _index_changes(_recorded(synth), deployed_keys(synth))
    deployable = all(
        len(table_changes) == 1 and not table_changes[0].startswith("modify") for table_changes in changes.values()
    )
    assert not changes, (
        "Global secondary indexes differ from tests/infrastructure/table_keys.json: "
        f"{json.dumps(changes)}. One deployment may create or delete ONE global secondary index per table, "
        "and cannot modify one (new keys or projection: delete it in one deployment, create it under a new "
        "name in the next, and have the code query the new name only once it exists). "
        + (
            f"This change fits one deployment: record it with {UPDATE}=1."
            if deployable
            else "This change does NOT fit one deployment: split it into one index change per table per release, "
            "or, for an index whose projection narrowed, name the one it replaces (Meta.replaces): the upgrade "
            "then takes two deployments, each of which fits (checked below, docs/migrations.md)."
        )
    )


def _release_before(final: dict[str, Any]) -> dict[str, Any]:
    """The deployed indexes as the release before had them: each index that replaced another
    (``Meta.replaces``) swapped back for the one it replaced (its keys, every attribute projected)."""
    from functions.data.schema import table_specs

    before = json.loads(json.dumps(final))
    path_of = {path.split("/")[1]: path for path in final}
    for spec in table_specs():
        indexes = before[path_of[spec.logical_name]]["globalIndexes"]
        for index in spec.indexes:
            old = index.replaced()
            if old is None:
                continue
            keys = [f"{old.partition_key.name}:{old.partition_key.type}:HASH"]
            if old.sort_key is not None:
                keys.append(f"{old.sort_key.name}:{old.sort_key.type}:RANGE")
            del indexes[index.name]
            indexes[old.name] = {"keys": keys, "projection": "ALL", "nonKeyAttributes": []}
    return before


def test_a_replaced_index_moves_across_in_two_deployments_that_each_fit(synth: Synth, variant: Synth) -> None:
    """An index that replaced another (``Meta.replaces``: the same keys, a narrower projection)
    reaches a deployed stack in two deployments: with ``indexMigration`` (the variant) the new
    index is created beside the old one, and the code queries the old one while the new one
    backfills; without it the old one is deleted. Each must be at most one index change per table."""
    final, migrating = deployed_keys(synth), deployed_keys(variant)
    before = _release_before(final)
    replaced = _index_changes(before, final)
    first, second = _index_changes(before, migrating), _index_changes(migrating, final)
    assert first.keys() == second.keys() == replaced.keys(), (first, second, replaced)
    for path in replaced:
        assert len(first[path]) == 1 and first[path][0].startswith("create"), (path, first[path])
        assert len(second[path]) == 1 and second[path][0].startswith("delete"), (path, second[path])
    # While migrating, every function that reads the tables queries the old indexes; afterwards none does.
    for deployed, migrating_now in ((synth, False), (variant, bool(replaced))):
        switches = [
            variables.get("TRACKLANE_READ_REPLACED_INDEXES")
            for fn in deployed.resources("AWS::Lambda::Function").values()
            if "TRACKLANE_TRACKS_TABLE" in (variables := fn["Properties"].get("Environment", {}).get("Variables", {}))
        ]
        assert switches and all(switch == ("true" if migrating_now else None) for switch in switches), switches


def test_the_snapshot_covers_every_table_of_the_models(synth: Synth) -> None:
    from functions.data.schema import table_specs

    recorded = json.loads(SNAPSHOT.read_text())
    assert {path.split("/")[1] for path in recorded} == {spec.logical_name for spec in table_specs()}
