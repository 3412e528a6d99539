"""Write mechanics every capability shares: transactions and conditional updates. Domain code says
what to write and under which condition; how pynamodb is driven, and how a refusal is told apart
from a failure, is decided here once."""

from __future__ import annotations

import random
import time
from typing import Any, NoReturn, TypeVar

from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from functions.data.models import condition_failed, shared_connection
from functions.settings import settings

M = TypeVar("M", bound=Model)

# Why DynamoDB cancelled an item of a transaction (``cancellation_reasons``).
CONDITION_FAILED = "ConditionalCheckFailed"
CONFLICT = "TransactionConflict"
THROTTLED = "ThrottlingError"


def transaction() -> TransactWrite:
    """A TransactWrite on the bound endpoint; use it as a context manager, which commits on exit
    and raises whatever cancelled it."""
    return PatientTransactWrite(connection=shared_connection())


class PatientTransactWrite(TransactWrite):
    """A TransactWrite that a throttle or a conflict does not cancel for good. DynamoDB answers a
    throttled transaction with TransactionCanceledException (reason ``ThrottlingError``), and one
    that met another transaction on one of its items (an artist's usage item is in most intake
    transactions) with reason ``TransactionConflict``, neither of which the SDK retries; nothing of
    it was written, so it is sent again here, with full-jitter backoff, up to ``sdk_max_attempts``
    times like every other call. A cancellation any condition caused is never retried."""

    def _commit(self) -> Any:
        attempts = settings().sdk_max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return super()._commit()
            except TransactWriteError as error:
                reasons = cancellation_reasons(error)
                if attempt == attempts or not _retryable(reasons):
                    raise
                time.sleep(random.uniform(0, min(MAX_BACKOFF_S, BASE_BACKOFF_S * 2**attempt)))  # noqa: S311
        raise AssertionError("unreachable")


def _retryable(reasons: list[str | None]) -> bool:
    """Throttled, or met a concurrent transaction, and refused by no condition."""
    found = {reason for reason in reasons if reason and reason != "None"}
    return bool(found & {THROTTLED, CONFLICT}) and CONDITION_FAILED not in found


# Backoff of a throttled transaction before its next attempt: up to 0.1, 0.2, 0.4 ... 20 s.
BASE_BACKOFF_S = 0.05
MAX_BACKOFF_S = 20.0


class ConditionalTransaction(PatientTransactWrite):
    """A TransactWrite that may be refused: it commits on exit like ``transaction()``, but a
    cancellation that one of its conditions caused (with ``conflicts``, also one that a concurrent
    transaction caused) is recorded instead of raised; ``committed`` tells which happened. Any other
    failure is raised.

    ``refused(item)`` says whether the refusal was about that item. (``reasons`` and ``refused_at``
    index the items in DynamoDB's order, which is pynamodb's, not the order they were added in:
    condition checks first, then deletes, then puts, then updates; ``refused`` does that mapping.)"""

    def __init__(self, *, conflicts: bool = False) -> None:
        super().__init__(connection=shared_connection())
        self.refusals = frozenset({CONDITION_FAILED, CONFLICT} if conflicts else {CONDITION_FAILED})
        self.reasons: list[str | None] = []
        self._cancelled: TransactWriteError | None = None
        # The items by kind, in the order pynamodb sends the kinds.
        self._items: dict[str, list[Any]] = {"check": [], "delete": [], "put": [], "update": []}
        self._assigned: list[tuple[Any, list[Assignment]]] = []

    def condition_check(self, model_cls: Any, hash_key: Any, range_key: Any = None, condition: Any = None) -> None:
        super().condition_check(model_cls, hash_key, range_key=range_key, condition=condition)
        self._items["check"].append((model_cls, hash_key, range_key))

    def delete(self, model: Any, condition: Any = None, *, add_version_condition: bool = True) -> None:
        super().delete(model, condition=condition, add_version_condition=add_version_condition)
        self._items["delete"].append(model)

    def save(self, model: Any, condition: Any = None, return_values: Any = None) -> None:
        super().save(model, condition=condition, return_values=return_values)
        self._items["put"].append(model)

    def update(
        self,
        model: Any,
        actions: Any,
        condition: Any = None,
        return_values: Any = None,
        *,
        add_version_condition: bool = True,
    ) -> None:
        super().update(
            model,
            actions,
            condition=condition,
            return_values=return_values,
            add_version_condition=add_version_condition,
        )
        self._items["update"].append(model)

    def assign(self, model: Any, assignments: list[Assignment], condition: Any = None) -> None:
        """An update setting each ``(attribute, value)`` (None removes the attribute) that, once
        the transaction commits, is also made on ``model`` itself: a transaction answers with no
        values, so the caller's item would otherwise still show what it was before."""
        self.update(model, assignment_actions(assignments), condition=condition)
        self._assigned.append((model, assignments))

    def refused(self, item: Any) -> bool:
        """True when ``item`` (a model passed to delete/save/update, or a condition check's
        ``(model_cls, hash_key, range_key)``) is one the refusal was about."""
        order = [entry for kind in ("check", "delete", "put", "update") for entry in self._items[kind]]
        for index, entry in enumerate(order):
            if entry is item or (isinstance(item, tuple) and entry == item):
                return self.refused_at(index)
        raise ValueError("that item is not part of this transaction")

    def __exit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        if exc_type is not None:
            return  # nothing is committed; the error goes on
        try:
            self._commit()
        except TransactWriteError as error:
            reasons = cancellation_reasons(error)
            if self.refusals.isdisjoint(reasons):
                raise
            self.reasons = reasons
            self._cancelled = error
            return
        for model, assignments in self._assigned:
            assign_locally(model, assignments)

    @property
    def committed(self) -> bool:
        """False when the transaction was refused (nothing of it was written)."""
        return self._cancelled is None

    def refused_at(self, index: int) -> bool:
        """True when the item at ``index`` (in DynamoDB's order) is one the refusal was about."""
        return index < len(self.reasons) and self.reasons[index] in self.refusals

    def raise_refusal(self) -> NoReturn:
        """Raises the refusal after all, as the failure it is to a caller that did not expect it."""
        if self._cancelled is None:
            raise RuntimeError("the transaction was not refused")
        raise self._cancelled


# An attribute of a model and the value to give it; None removes it.
Assignment = tuple[Any, Any]


def assignment_actions(assignments: list[Assignment]) -> list[Any]:
    """The update actions of ``assignments``."""
    return [attribute.remove() if value is None else attribute.set(value) for attribute, value in assignments]


def assign_locally(model: Model, assignments: list[Assignment]) -> None:
    """Gives ``model`` the values ``assignments`` wrote to its item."""
    names = {id(attribute): name for name, attribute in type(model).get_attributes().items()}
    for attribute, value in assignments:
        setattr(model, names[id(attribute)], value)


def conditional_transaction(*, conflicts: bool = False) -> ConditionalTransaction:
    """A transaction whose refusal is an answer, not an error: use it as a context manager, then
    read ``committed`` (``ConditionalTransaction``)."""
    return ConditionalTransaction(conflicts=conflicts)


def cancellation_reasons(error: TransactWriteError) -> list[str | None]:
    """Per item of a cancelled transaction, in order: ``"ConditionalCheckFailed"``,
    ``"TransactionConflict"``, ... or None for an item that was not the cause."""
    return [reason.code if reason else None for reason in (error.cancellation_reasons or [])]


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


def delete_if_returning_old(item: M, condition: Any) -> M | None:
    """A DeleteItem that happens only if ``condition`` holds, answering with the item as it was
    just before (not as it was read): None when the condition did not hold or nothing was there."""
    model = type(item)
    hash_key, range_key = item._get_hash_range_key_serialized_values()
    try:
        old = model._get_connection().delete_item(hash_key, range_key, condition=condition, return_values="ALL_OLD")
    except DeleteError as error:
        if condition_failed(error):
            return None
        raise
    attributes = old.get("Attributes")
    return model.from_raw_data(attributes) if attributes else None


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


def put_all(items: list[Model]) -> None:
    """Puts every item (unconditionally; BatchWriteItem, 25 a request, unprocessed ones sent
    again by pynamodb): for writes that are idempotent by key."""
    if not items:
        return
    with type(items[0]).batch_write() as batch:
        for item in items:
            batch.save(item)


def delete_all(items: list[Model]) -> None:
    """Deletes every item (unconditionally; BatchWriteItem): deleting what is gone is a no-op."""
    if not items:
        return
    with type(items[0]).batch_write() as batch:
        for item in items:
            batch.delete(item)


# DynamoDB's limit of items per TransactWriteItems.
MAX_TRANSACTION_ITEMS = 100
