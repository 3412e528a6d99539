"""Cursor pagination over one Query, shared by every listing.

A cursor is the key of the last item of the previous page (the table's keys plus the index's),
base64url JSON tagged with the listing it belongs to. It is not secret -- it only says where to
start inside a partition the caller may read anyway -- but anything this module did not write for
this listing and partition is refused (``invalid_cursor``) before it can reach DynamoDB.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pynamodb.indexes import Index
from pynamodb.models import Model

from functions.errors import InvalidCursor

MAX_PAGE_SIZE = 100
# Longest key value a cursor may carry (ids, timestamps and tag names are far shorter).
_MAX_KEY_VALUE = 512

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Page(Generic[M]):
    items: list[M]
    next_cursor: str | None


def _roles(schema: Any) -> dict[str, str]:
    return {k["KeyType"]: k["AttributeName"] for k in schema["key_schema"]}


def _key_names(source: type[Model] | Index[Any], model: type[Model]) -> tuple[str, list[str]]:
    """(hash key, every key attribute a start key needs) of a table or one of its indexes."""
    table = _roles(model._get_schema())
    if isinstance(source, Index):
        index = _roles(source._get_schema())
        return index["HASH"], list(dict.fromkeys([table["HASH"], table["RANGE"], index["HASH"], index["RANGE"]]))
    return table["HASH"], [table["HASH"], table["RANGE"]]


def encode(kind: str, key: dict[str, str]) -> str:
    raw = json.dumps({"k": kind, "key": key}, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(
    kind: str, cursor: str, *, names: list[str], hash_name: str | None = None, hash_value: str | None = None
) -> dict[str, str]:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(decoded, dict) or set(decoded) != {"k", "key"} or decoded["k"] != kind:
            raise ValueError("foreign cursor")
        key = decoded["key"]
        if not isinstance(key, dict) or set(key) != set(names):
            raise ValueError("malformed cursor")
        if not all(isinstance(value, str) and 0 < len(value) <= _MAX_KEY_VALUE for value in key.values()):
            raise ValueError("malformed cursor")
        if hash_name is not None and key[hash_name] != hash_value:
            raise ValueError("a cursor of another listing")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidCursor("The cursor is not one this listing returned.") from error
    return key


def _serialized_key(item: Model, names: list[str]) -> dict[str, str]:
    attributes = item.get_attributes()
    return {name: str(attributes[name].serialize(getattr(item, name))) for name in names}


def query(
    kind: str,
    source: type[M] | Index[M],
    model: type[M],
    hash_value: str,
    *,
    limit: int,
    cursor: str | None,
    newest_first: bool = True,
    **options: Any,
) -> Page[M]:
    """One page of ``source`` (a model or one of its indexes) in one partition, in sort-key order
    (descending when ``newest_first``). One extra item is read to tell whether another page exists.
    Every key attribute is a string (S), as in all of this system's tables and indexes."""
    hash_name, names = _key_names(source, model)
    start = None
    if cursor:
        key = decode(kind, cursor, names=names, hash_name=hash_name, hash_value=hash_value)
        start = {name: {"S": value} for name, value in key.items()}
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    found: list[M] = list(
        source.query(
            hash_value, scan_index_forward=not newest_first, limit=limit + 1, last_evaluated_key=start, **options
        )
    )
    items = found[:limit]
    next_cursor = encode(kind, _serialized_key(items[-1], names)) if len(found) > limit else None
    return Page(items, next_cursor)


# What a merged listing's cursor holds: where the last item returned sorts.
_MERGED_NAMES = ["created_at", "pk"]


def query_merged(
    kind: str, index: Index[M], model: type[M], partitions: list[str], *, limit: int, cursor: str | None
) -> Page[M]:
    """One page of an index spread over ``partitions`` (a sharded listing), newest first: the
    items of all of them in one order, sort key descending then table hash key descending (a tie
    on the sort key still has one order). The cursor is the last item's place in that order, so a
    page starts right after it in every partition, whichever partition it came from. Items carry
    the keys only (the caller reads what it shows). One Query per partition, each reading a few
    items past ``limit`` (more only where many items share one sort key value)."""
    schema = _roles(index._get_schema())
    if schema.get("RANGE") != _MERGED_NAMES[0]:
        raise ValueError(f"a merged listing is sorted by {_MERGED_NAMES[0]}")
    sort_attribute = model.get_attributes()["created_at"]
    after: tuple[str, str] | None = None
    if cursor:
        key = decode(kind, cursor, names=_MERGED_NAMES)
        try:
            sort_attribute.deserialize(key["created_at"])
        except ValueError as error:
            raise InvalidCursor("The cursor is not one this listing returned.") from error
        after = (key["created_at"], key["pk"])
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    table_hash = _roles(model._get_schema())["HASH"]
    found: list[tuple[tuple[str, str], M]] = []
    for partition in partitions:
        found += _newest(index, partition, (sort_attribute, table_hash), after, limit + 1)
    found.sort(key=lambda entry: entry[0], reverse=True)
    page = found[:limit]
    next_cursor = encode(kind, dict(zip(_MERGED_NAMES, page[-1][0], strict=True))) if len(found) > limit else None
    return Page([item for _, item in page], next_cursor)


def _newest(
    index: Index[M], partition: str, names: tuple[Any, str], after: tuple[str, str] | None, count: int
) -> list[tuple[tuple[str, str], M]]:
    """The first ``count`` items of one partition in (sort key, hash key) descending order, all
    before ``after``. An index returns items with an equal sort key in no set order, so every item
    sharing the last kept sort key value is read before the cut."""
    sort_attribute, table_hash = names
    condition = sort_attribute <= sort_attribute.deserialize(after[0]) if after else None
    kept: list[tuple[tuple[str, str], M]] = []
    for item in index.query(partition, condition, scan_index_forward=False, page_size=count + 1):
        place = (str(sort_attribute.serialize(getattr(item, sort_attribute.attr_name))), str(getattr(item, table_hash)))
        if after is not None and place >= after:
            continue
        if len(kept) >= count and place[0] < kept[-1][0][0]:
            break
        kept.append((place, item))
    kept.sort(key=lambda entry: entry[0], reverse=True)
    return kept[:count]
