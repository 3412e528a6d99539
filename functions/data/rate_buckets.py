"""Token buckets in DynamoDB: one conditional UpdateItem takes a token, whichever Lambda instance
sends it.

A bucket of ``burst`` tokens refilled at one token per ``interval_ms`` is kept as one number,
``full_at_ms``: the time at which it is full again (GCRA's "theoretical arrival time"). At time
``now`` it holds ``burst - (full_at - now) / interval`` tokens (``burst`` once ``full_at <= now``),
so a request may take one when ``full_at <= now + tolerance`` (``tolerance = (burst - 1) *
interval``), and taking it moves ``full_at`` to ``max(full_at, now) + interval``.

An update expression has no ``max``, so the two cases are two updates, each under the condition
that makes it the right one:

* **idle** (``full_at`` absent or ``<= now``): ``SET full_at = :now + interval``;
* **draining** (``now < full_at <= now + tolerance``): ``SET full_at = full_at + interval``.

The caller guesses which applies (its last view of the bucket); a wrong guess is refused by its
condition, and the refusal returns the stored item (``ReturnValuesOnConditionCheckFailure``), which
says which case it is, or that the bucket is empty (``full_at > now + tolerance``: refused, no
further call). ``full_at`` only ever grows, so one request sends at most three updates and usually
one. Concurrent requests never lose a token: each update is atomic and is judged against the value
the other left (the draining update is an ADD, so racing requests on a draining bucket both succeed
if both fit and never overwrite one another).

**Expiry**: each update also sets the item's TTL (``expires_at_epoch``, epoch seconds) to
``TTL_MARGIN_S`` after the bucket is full again, so DynamoDB deletes the item of a caller who stopped
writing. A missing item is a full bucket (the idle update's ``attribute_not_exists``), and so is an
item past that time that DynamoDB has not deleted yet (``full_at <= now``): deleting one changes no
answer. The draining update cannot compute its new ``full_at`` in seconds (an update expression has
no division), so it sets the TTL from the most its condition lets ``full_at`` become,
``now + tolerance + interval``: never before the bucket is full again, at most a burst's refill
later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from functions.data.models import RateBucketModel, shared_connection

# Idle guess, draining guess, idle again when another request moved the bucket in between.
MAX_UPDATES = 3
# How long after a bucket is full again DynamoDB may delete it: more than the clocks of two
# instances ever differ, so no instance still sees the bucket draining when it goes.
TTL_MARGIN_S = 3600


@dataclass(frozen=True)
class Taken:
    """The outcome of one request on a bucket."""

    allowed: bool
    # Allowed: the bucket's ``full_at_ms`` after taking the token; refused: as stored.
    full_at_ms: int
    # UpdateItem calls sent.
    updates: int


def take(
    user_id: str, *, now_ms: int, interval_ms: int, tolerance_ms: int, idle_guess: bool = True, bucket: str = "writes"
) -> Taken:
    """Takes one token from the bucket at ``now_ms``, or finds it empty."""
    pk, sk = RateBucketModel.key(user_id, bucket)
    idle = idle_guess
    stored: int | None = None
    for attempt in range(1, MAX_UPDATES + 1):
        if idle:
            expression = "SET #f = :after_idle, #t = :expires"
            condition = "attribute_not_exists(#f) OR #f <= :now"
            values = {":after_idle": interval_ms + now_ms, ":now": now_ms}
            full_by_ms = now_ms + interval_ms
        else:
            expression = "SET #f = #f + :interval, #t = :expires"
            condition = "#f > :now AND #f <= :latest"
            values = {":interval": interval_ms, ":now": now_ms, ":latest": now_ms + tolerance_ms}
            full_by_ms = now_ms + tolerance_ms + interval_ms
        values[":expires"] = expires_at(full_by_ms)
        ok, found = _update(pk, sk, expression, condition, values)
        if ok:
            assert found is not None
            return Taken(True, found, attempt)
        stored = found
        if stored is not None and stored > now_ms + tolerance_ms:
            return Taken(False, stored, attempt)
        idle = stored is None or stored <= now_ms
    # Unreachable while full_at only grows (see the module's docstring); refused rather than looping.
    return Taken(False, stored if stored is not None else now_ms, MAX_UPDATES)


def expires_at(full_at_ms: int) -> int:
    """The TTL (epoch seconds) of a bucket full again at ``full_at_ms`` (or earlier)."""
    return -(-full_at_ms // 1000) + TTL_MARGIN_S


def _update(pk: str, sk: str, expression: str, condition: str, values: dict[str, int]) -> tuple[bool, int | None]:
    """(True, full_at after) when the update happened; (False, full_at as stored, None if absent)."""
    client: Any = shared_connection().client
    try:
        answer = client.update_item(
            TableName=RateBucketModel.Meta.table_name,
            Key={"pk": {"S": pk}, "sk": {"S": sk}},
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames={
                "#f": RateBucketModel.full_at_ms.attr_name,
                "#t": RateBucketModel.expires_at_epoch.attr_name,
            },
            ExpressionAttributeValues={name: {"N": str(value)} for name, value in values.items()},
            ReturnValues="UPDATED_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        # The stored item (ReturnValuesOnConditionCheckFailure), a modeled field of the error.
        response: dict[str, Any] = dict(error.response)
        item: dict[str, Any] = response.get("Item") or {}
        value = item.get(RateBucketModel.full_at_ms.attr_name)
        return False, int(value["N"]) if value else None
    return True, int(answer["Attributes"][RateBucketModel.full_at_ms.attr_name]["N"])
