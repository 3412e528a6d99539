"""Make moto's DynamoDB writes atomic, as DynamoDB's are, and its transaction rollback keep the tables.

moto's threaded server evaluates a ConditionExpression and then writes, with no lock in between:
two concurrent conditional updates can both pass (seen here: two winners out of fifty racing
finalize calls). Real DynamoDB applies each conditional write atomically, and the finalize
convergence relies on exactly that. Serializing moto's write operations restores those semantics
for the local stack and the tests; the conditions themselves still decide who wins.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items")
_lock = threading.RLock()


def _serialized(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with _lock:
            return method(*args, **kwargs)

    locked.__tracklane_atomic__ = True  # type: ignore[attr-defined]
    return locked


def _rolled_back_in_place(transact: Callable[..., Any]) -> Callable[..., Any]:
    """moto rolls a cancelled transaction back by putting deep copies of the tables it touched in
    place of the tables. Whatever held the old Table objects then sees nothing more: a DynamoDB
    stream reader keeps reading the old table's stream shard while new records go to the copy's (the
    local stream pump and the domain-events tests lost every later track event after one refused
    transaction). This keeps the live Table objects and gives them the copies' contents instead:
    the items as before the transaction, and its stream without the records of the writes it undid
    (DynamoDB emits none for a cancelled transaction)."""

    @functools.wraps(transact)
    def transact_write_items(self: Any, *args: Any, **kwargs: Any) -> Any:
        live = dict(self.tables)
        try:
            return transact(self, *args, **kwargs)
        except Exception:
            for name, table in live.items():
                copy = self.tables.get(name)
                if copy is None or copy is table:
                    continue
                table.items = copy.items
                if table.stream_shard is not None and copy.stream_shard is not None:
                    table.stream_shard.items = copy.stream_shard.items
                self.tables[name] = table
            raise

    return transact_write_items


def make_dynamodb_writes_atomic() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    if not getattr(DynamoDBBackend.transact_write_items, "__tracklane_atomic__", False):
        DynamoDBBackend.transact_write_items = _rolled_back_in_place(DynamoDBBackend.transact_write_items)  # type: ignore[method-assign]
    for name in _WRITES:
        method = getattr(DynamoDBBackend, name)
        if not getattr(method, "__tracklane_atomic__", False):
            setattr(DynamoDBBackend, name, _serialized(method))


@contextlib.contextmanager
def writes_held() -> Iterator[None]:
    """No write of moto's DynamoDB runs meanwhile (a snapshot of the tables: a consistent cut)."""
    with _lock:
        yield
