"""Write mechanics every capability shares: transactions and conditional updates. Domain code says
what to write and under which condition; how pynamodb is driven, and how a refusal is told apart
from a failure, is decided here once."""

from __future__ import annotations

from typing import Any

from pynamodb.connection import Connection
from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from functions.data.models import TrackModel, condition_failed, ensure_bound


def transaction() -> TransactWrite:
    """A TransactWrite on the bound endpoint (every table shares one region and endpoint); use it
    as a context manager, which commits on exit."""
    ensure_bound()
    return TransactWrite(connection=Connection(region=TrackModel.Meta.region, host=TrackModel.Meta.host))


def cancellation_reasons(error: TransactWriteError) -> list[str | None]:
    """Per item of a cancelled transaction, in order: ``"ConditionalCheckFailed"``,
    ``"TransactionConflict"``, ... or None for an item that was not the cause."""
    return [reason.code if reason else None for reason in (error.cancellation_reasons or [])]


def refused(error: TransactWriteError) -> bool:
    """True when a transaction was cancelled because one of its conditions did not hold."""
    return "ConditionalCheckFailed" in cancellation_reasons(error)


def update_if(item: Model, actions: list[Any], condition: Any) -> bool:
    """One UpdateItem of ``actions`` that happens only if ``condition`` holds: False when it did
    not (the item is unchanged), any other failure raised."""
    try:
        item.update(actions=actions, condition=condition)
    except UpdateError as error:
        if condition_failed(error):
            return False
        raise
    return True


def delete_if(item: Model, condition: Any) -> bool:
    """A DeleteItem that happens only if ``condition`` holds: False when it did not."""
    try:
        item.delete(condition=condition)
    except DeleteError as error:
        if condition_failed(error):
            return False
        raise
    return True


def save_if(item: Model, condition: Any) -> bool:
    """A PutItem of the whole item that happens only if ``condition`` holds (typically that no
    item has its key yet): False when it did not."""
    try:
        item.save(condition=condition)
    except PutError as error:
        if condition_failed(error):
            return False
        raise
    return True
