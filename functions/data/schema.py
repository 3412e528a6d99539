"""Table specifications derived from the pynamodb models, for the CDK stack and the local stack.

There is no hand-kept second copy of a key schema: change a model, and both follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pynamodb.attributes import TTLAttribute
from pynamodb.models import Model

from functions.data.models import ALL_MODELS, TABLE_MODELS


@dataclass(frozen=True)
class Key:
    name: str
    type: str  # "S" | "N" | "B"


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition_key: Key
    sort_key: Key | None
    projection: str  # "ALL" | "KEYS_ONLY" | "INCLUDE"
    # With INCLUDE: the attributes the index carries besides the keys.
    non_key_attributes: tuple[str, ...] = ()
    # The index this one replaced: the same keys, every attribute projected. DynamoDB cannot change
    # an index's projection in place, so a narrower one gets a new name; a deployment migrating
    # across carries both for a while and reads the old one (docs/migrations.md).
    replaces: str | None = None

    def replaced(self) -> IndexSpec | None:
        """The index as it was before, under its old name; None when it replaced none."""
        if self.replaces is None:
            return None
        return IndexSpec(self.replaces, self.partition_key, self.sort_key, "ALL")


@dataclass(frozen=True)
class TableSpec:
    logical_name: str
    settings_field: str
    partition_key: Key
    sort_key: Key | None
    ttl_attribute: str | None
    indexes: list[IndexSpec] = field(default_factory=list)


def _keys(schema: Any) -> tuple[Key, Key | None]:
    """Partition and sort key from a pynamodb table or index schema."""
    types = {d["AttributeName"]: d["AttributeType"] for d in schema["attribute_definitions"]}
    by_role = {k["KeyType"]: k["AttributeName"] for k in schema["key_schema"]}
    sort = by_role.get("RANGE")
    return Key(by_role["HASH"], types[by_role["HASH"]]), (Key(sort, types[sort]) if sort else None)


def _ttl_attribute(model: type[Model]) -> str | None:
    """The table's TTL attribute: the ``TTLAttribute`` of ``model`` or of a model sharing its table
    (``Meta.shares_table_with``). A table has one TTL attribute name, so its models must agree."""
    sharing = [
        model,
        *(other for other in ALL_MODELS if getattr(other.Meta, "shares_table_with", None) == model.__name__),
    ]
    names = {
        attribute.attr_name
        for member in sharing
        for attribute in member.get_attributes().values()
        if isinstance(attribute, TTLAttribute)
    }
    if len(names) > 1:
        table = model.Meta.logical_name  # type: ignore[attr-defined]
        raise ValueError(f"the models of the {table} table name TTL attributes {sorted(names)}; a table has one")
    return next(iter(names), None)


def spec_for(model: type[Model]) -> TableSpec:
    partition, sort = _keys(model._get_schema())
    ttl = _ttl_attribute(model)
    indexes = []
    for index in model._indexes.values():
        index_schema = index._get_schema()
        index_partition, index_sort = _keys(index_schema)
        projection = index_schema["projection"]
        indexes.append(
            IndexSpec(
                # Its own name, not the one it may be queried under while a deployment migrates.
                getattr(index.Meta, "declared_name", index_schema["index_name"]),
                index_partition,
                index_sort,
                projection["ProjectionType"],
                tuple(projection.get("NonKeyAttributes", ())),
                getattr(index.Meta, "replaces", None),
            )
        )
    return TableSpec(
        logical_name=model.Meta.logical_name,  # type: ignore[attr-defined]
        settings_field=model.Meta.settings_field,  # type: ignore[attr-defined]
        partition_key=partition,
        sort_key=sort,
        ttl_attribute=ttl,
        indexes=indexes,
    )


def table_specs() -> list[TableSpec]:
    return [spec_for(model) for model in TABLE_MODELS]
