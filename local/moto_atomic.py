"""Make moto's DynamoDB writes atomic, as DynamoDB's are.

moto's threaded server evaluates a ConditionExpression and then writes, with no lock in between:
two concurrent conditional updates can both pass (seen here: two winners out of fifty racing
finalize calls). Real DynamoDB applies each conditional write atomically, and the finalize
convergence relies on exactly that. Serializing moto's write operations restores those semantics
for the local stack and the tests; the conditions themselves still decide who wins.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
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


def make_dynamodb_writes_atomic() -> None:
    from moto.dynamodb.models import DynamoDBBackend

    for name in _WRITES:
        method = getattr(DynamoDBBackend, name)
        if not getattr(method, "__tracklane_atomic__", False):
            setattr(DynamoDBBackend, name, _serialized(method))
