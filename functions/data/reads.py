"""Read mechanics every capability shares. Domain code says which item it wants; whether it is
there is answered here as a value (None, False), never as a pynamodb exception to catch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from pynamodb.exceptions import DoesNotExist
from pynamodb.models import Model

M = TypeVar("M", bound=Model)


def get_or_none(model: type[M], hash_key: Any, range_key: Any = None, *, consistent_read: bool = False) -> M | None:
    """One GetItem: the item under this key, or None when there is none."""
    try:
        return model.get(hash_key, range_key, consistent_read=consistent_read)
    except DoesNotExist:
        return None


# DynamoDB's limit per BatchGetItem, and how often unprocessed keys are asked for again.
_BATCH_GET_MAX = 100
_BATCH_GET_ATTEMPTS = 5


def get_many(*keys: tuple[type[Model], Any, Any]) -> list[Model | None]:
    """Items of any tables, ``(model, hash key, range key or None)`` each, in one BatchGetItem
    (where one GetItem per item would cost a round trip each): each item, or None when there is
    none, in the order asked. Keys DynamoDB leaves unprocessed (throttling) are asked for again."""
    if len(keys) > _BATCH_GET_MAX:
        raise ValueError(f"at most {_BATCH_GET_MAX} keys per call")
    from functions.data.models import shared_connection

    wanted = [(model, _typed_key(model, hash_key, range_key)) for model, hash_key, range_key in keys]
    request: dict[str, dict[str, Any]] = {}
    for model, key in wanted:
        request.setdefault(model.Meta.table_name, {"Keys": []})["Keys"].append(key)
    found: dict[str, list[dict[str, Any]]] = {}
    for _ in range(_BATCH_GET_ATTEMPTS):
        client: Any = shared_connection().client
        answer = client.batch_get_item(RequestItems=request)
        for table, items in answer.get("Responses", {}).items():
            found.setdefault(table, []).extend(items)
        request = answer.get("UnprocessedKeys") or {}
        if not request:
            break
    else:
        raise RuntimeError("BatchGetItem left keys unprocessed after every attempt")
    results: list[Model | None] = []
    for model, key in wanted:
        match = next(
            (item for item in found.get(model.Meta.table_name, []) if all(item.get(n) == v for n, v in key.items())),
            None,
        )
        results.append(model.from_raw_data(match) if match is not None else None)
    return results


def _typed_key(model: type[Model], hash_key: Any, range_key: Any) -> dict[str, Any]:
    hash_attribute = model._hash_key_attribute()  # type: ignore[no-untyped-call]
    range_attribute = model._range_key_attribute()  # type: ignore[no-untyped-call]
    attributes = [(hash_attribute, hash_key)]
    if range_attribute is not None:
        attributes.append((range_attribute, range_key))
    return {attribute.attr_name: {attribute.attr_type: attribute.serialize(value)} for attribute, value in attributes}


def refresh(item: Model, *, consistent_read: bool = False) -> bool:
    """Reads ``item`` again from its table into the same object: False when it is gone (the
    object then keeps what it held)."""
    try:
        item.refresh(consistent_read=consistent_read)
    except DoesNotExist:
        return False
    return True


def partition(
    model: type[Model],
    hash_key: str,
    *,
    sort_key_from: str | None = None,
    sort_key_prefix: str | None = None,
    consistent_read: bool = False,
) -> Iterator[dict[str, Any]]:
    """Every item under ``hash_key`` in ``model``'s table (from sort key ``sort_key_from`` on, or
    those whose sort key starts with ``sort_key_prefix``, when given), whatever model each one is,
    as DynamoDB returns it (``Model.from_raw_data`` reads one): one Query, page by page."""
    sort_key = model._range_key_attribute()  # type: ignore[no-untyped-call]
    range_key_condition = sort_key >= sort_key_from if sort_key_from is not None else None
    if sort_key_prefix is not None:
        range_key_condition = sort_key.startswith(sort_key_prefix)
    last_key: dict[str, Any] | None = None
    while True:
        page = model._get_connection().query(
            hash_key,
            range_key_condition=range_key_condition,
            exclusive_start_key=last_key,
            consistent_read=consistent_read,
        )
        yield from page.get("Items", [])
        last_key = page.get("LastEvaluatedKey")
        if not last_key:
            return


def first(model: type[M], hash_key: str, *, sort_key_prefix: str) -> M | None:
    """The item under ``hash_key`` with the lowest sort key starting with ``sort_key_prefix``
    (consistent: one Query, ``Limit 1``), or None."""
    sort_key = model._range_key_attribute()  # type: ignore[no-untyped-call]
    for item in model.query(hash_key, sort_key.startswith(sort_key_prefix), limit=1, consistent_read=True):
        return item
    return None
