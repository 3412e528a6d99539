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


def refresh(item: Model, *, consistent_read: bool = False) -> bool:
    """Reads ``item`` again from its table into the same object: False when it is gone (the
    object then keeps what it held)."""
    try:
        item.refresh(consistent_read=consistent_read)
    except DoesNotExist:
        return False
    return True


def partition(model: type[Model], hash_key: str, *, consistent_read: bool = False) -> Iterator[dict[str, Any]]:
    """Every item under ``hash_key`` in ``model``'s table, whatever model each one is, as DynamoDB
    returns it (``Model.from_raw_data`` reads one): one Query, page by page."""
    last_key: dict[str, Any] | None = None
    while True:
        page = model._get_connection().query(hash_key, exclusive_start_key=last_key, consistent_read=consistent_read)
        yield from page.get("Items", [])
        last_key = page.get("LastEvaluatedKey")
        if not last_key:
            return
