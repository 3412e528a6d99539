"""What the app's DynamoDB writes cost, in write capacity units, measured from the items themselves.

``WriteMeter`` hooks the app's DynamoDB client at the botocore layer and, around every write
(PutItem, UpdateItem, DeleteItem, BatchWriteItem, TransactWriteItems), reads the item as it was
before and as it is after with a client of its own. From those two images it charges what
DynamoDB charges (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html):

- the base table: one WCU per started KB of the larger image (a write refused by its condition
  still costs the item's size); twice that inside a transaction;
- each global secondary index whose keys the item has before or after: a put, a delete, or both
  when the index keys changed (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations),
  each one WCU per started KB of the *projected* item (ALL: the whole item; INCLUDE: keys and the
  named attributes; KEYS_ONLY: keys); nothing when no projected attribute changed.

Item sizes follow https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html.
Writes that race on one item (lanes of one track) may read an image a neighbour wrote; sizes
differ by a few bytes then. ``tests/integration/test_write_cost.py`` runs one track through the
whole pipeline under the meter and holds docs/capacity.md to what it measures.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from functions.data.schema import IndexSpec, TableSpec, table_specs

KB = 1024
WRITE_OPERATIONS = ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems")
READ_OPERATIONS = ("GetItem", "BatchGetItem", "Query", "Scan")


def attribute_value_size(value: dict[str, Any]) -> int:
    """Bytes of one DynamoDB-JSON attribute value."""
    ((kind, inner),) = value.items()
    sizes: dict[str, Callable[[Any], int]] = {
        "S": lambda text: len(text.encode()),
        "N": number_size,
        "B": lambda data: len(data) if isinstance(data, bytes) else math.ceil(len(data) * 3 / 4),
        "BOOL": lambda _: 1,
        "NULL": lambda _: 1,
        "SS": lambda members: sum(len(member.encode()) for member in members),
        "NS": lambda members: sum(number_size(member) for member in members),
        "BS": lambda members: sum(len(member) for member in members),
        # A list or map: 3 bytes, and one per element besides its own size (and a map key's).
        "L": lambda members: 3 + sum(1 + attribute_value_size(member) for member in members),
        "M": lambda members: (
            3 + sum(1 + len(name.encode()) + attribute_value_size(member) for name, member in members.items())
        ),
    }
    return sizes[kind](inner)


def number_size(text: str) -> int:
    """About one byte per two significant digits, plus one."""
    digits = Decimal(text).normalize().as_tuple().digits
    return 1 + math.ceil(len(digits) / 2)


def item_size(item: dict[str, Any] | None, names: tuple[str, ...] | None = None) -> int:
    """Bytes of an item (attribute names plus values), or of its attributes ``names``."""
    if not item:
        return 0
    return sum(
        len(name.encode()) + attribute_value_size(value)
        for name, value in item.items()
        if names is None or name in names
    )


def units(size: int) -> int:
    return max(1, math.ceil(size / KB)) if size else 0


def read_units(size: int, consistent: bool) -> float:
    """An empty answer still costs the minimum."""
    whole = max(1, math.ceil(size / (4 * KB)))
    return float(whole) if consistent else whole / 2


@dataclass
class Charge:
    """One item written: its size (the larger image) and the projected sizes of the index entries
    the write put or deleted."""

    table: str
    key: str
    operation: str
    transactional: bool
    size: int
    index_writes: dict[str, list[int]]

    def base_wcu(self, size: int | None = None) -> int:
        return units(size if size is not None else self.size or 1) * (2 if self.transactional else 1)

    def index_wcu(self) -> dict[str, int]:
        return {index: sum(units(size) for size in sizes) for index, sizes in self.index_writes.items() if sizes}

    @property
    def total(self) -> int:
        return self.base_wcu() + sum(self.index_wcu().values())


@dataclass
class Bill:
    charges: list[Charge] = field(default_factory=list)
    # Read capacity by table: a strongly consistent read of up to 4 KB is one RCU, an eventually
    # consistent one half; a Query or Scan is charged on the size of all it returned together.
    reads: Counter[str] = field(default_factory=Counter)  # type: ignore[assignment]

    @property
    def total(self) -> int:
        """As charged: each write at the item's size at that moment, which depends on the order
        the lanes finished in (a track item grows by kilobytes when the waveform lands)."""
        return sum(charge.total for charge in self.charges)

    @property
    def bound(self) -> int:
        """Each write charged at the largest size its item (and its index entry) ever reached in
        the run: the same whatever order the lanes finished in, and what a write costs once the
        item is complete (a reprocessing, a PATCH)."""
        return sum(self.bound_by_part().values())

    def bound_by_part(self) -> Counter[str]:
        """``bound`` by table (its base writes) and by index (``Table.index``)."""
        largest: dict[str, int] = {}
        largest_entry: dict[tuple[str, str], int] = {}
        for charge in self.charges:
            largest[charge.key] = max(largest.get(charge.key, 0), charge.size)
            for index, sizes in charge.index_writes.items():
                entry = (charge.key, index)
                largest_entry[entry] = max([largest_entry.get(entry, 0), *sizes])
        spent: Counter[str] = Counter()
        for charge in self.charges:
            spent[charge.table] += charge.base_wcu(largest[charge.key] or 1)
            for index, sizes in charge.index_writes.items():
                if sizes:
                    spent[f"{charge.table}.{index}"] += len(sizes) * units(largest_entry[(charge.key, index)])
        return spent

    @property
    def base(self) -> int:
        return sum(charge.base_wcu() for charge in self.charges)

    def by_index(self) -> Counter[str]:
        spent: Counter[str] = Counter()
        for charge in self.charges:
            spent.update(charge.index_wcu())
        return spent

    def by_table(self) -> Counter[str]:
        spent: Counter[str] = Counter()
        for charge in self.charges:
            spent[charge.table] += charge.total
        return spent

    def writes(self) -> Counter[str]:
        return Counter(charge.operation for charge in self.charges)


class WriteMeter:
    """Charges every write the app's DynamoDB ``client`` sends; ``reader`` is a client of the same
    endpoint that the meter reads images with (its own calls are not charged)."""

    def __init__(self, client: Any, reader: Any, table_names: dict[str, str]) -> None:
        """``table_names``: real table name -> logical name (``Tracks``...)."""
        self.client, self.reader = client, reader
        specs = {spec.logical_name: spec for spec in table_specs()}
        self.tables: dict[str, TableSpec] = {real: specs[logical] for real, logical in table_names.items()}
        self.bill = Bill()
        self._pending = threading.local()
        self._lock = threading.Lock()

    def _hooks(self) -> list[tuple[str, Callable[..., None]]]:
        """(botocore event, handler): an image before and after every write, the answer of every read."""
        return [
            (f"{stage}.dynamodb.{operation}", handler)
            for operations, before, after in (
                (READ_OPERATIONS, self._before_read, self._after_read),
                (WRITE_OPERATIONS, self._before, self._after),
            )
            for operation in operations
            for stage, handler in (("before-parameter-build", before), ("after-call", after))
        ]

    def __enter__(self) -> WriteMeter:
        for event, handler in self._hooks():
            self.client.meta.events.register(event, handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for event, handler in self._hooks():
            self.client.meta.events.unregister(event, handler)

    def _before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if not self._counting():
            self._pending.writes = []
            return
        writes = [
            (table, key, operation, transactional)
            for table, key, operation, transactional in _targets(model.name, params, self.tables)
        ]
        self._pending.writes = [
            (table, key, operation, transactional, self._image(table, key))
            for table, key, operation, transactional in writes
        ]

    def _after(self, model: Any, **_: Any) -> None:
        for table, key, operation, transactional, before in getattr(self._pending, "writes", []):
            after = self._image(table, key)
            charge = self._charge(table, key, operation, before, after, transactional=transactional)
            with self._lock:
                self.bill.charges.append(charge)
        self._pending.writes = []

    @contextmanager
    def not_counting(self) -> Iterator[None]:
        """What this thread sends meanwhile is not charged (a client polling for progress)."""
        self._pending.ignored = True
        try:
            yield
        finally:
            self._pending.ignored = False

    def _counting(self) -> bool:
        return not getattr(self._pending, "ignored", False)

    def _before_read(self, params: dict[str, Any], **_: Any) -> None:
        tables = params.get("RequestItems") or {params.get("TableName"): params}
        self._pending.consistent = {table: bool(request.get("ConsistentRead")) for table, request in tables.items()}
        self._pending.requested = {table: len(request.get("Keys", ())) for table, request in tables.items()}

    def _after_read(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if not self._counting():
            return
        consistent: dict[str, bool] = self._pending.consistent
        if model.name == "BatchGetItem":
            # Every key asked for costs at least the minimum, found or not.
            returned = parsed.get("Responses", {})
            spent = {
                table: sum(read_units(item_size(item), consistent[table]) for item in returned.get(table, []))
                + (requested - len(returned.get(table, []))) * read_units(0, consistent[table])
                for table, requested in self._pending.requested.items()
            }
        else:
            (table,) = consistent
            items = parsed.get("Items", [parsed["Item"]] if parsed.get("Item") else [])
            spent = {table: read_units(sum(item_size(item) for item in items), consistent[table])}
        with self._lock:
            for table, rcu in spent.items():
                self.bill.reads[self.tables[table].logical_name] += rcu

    def _image(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.reader.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
        return item

    def _charge(
        self,
        table: str,
        key: dict[str, Any],
        operation: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        *,
        transactional: bool,
    ) -> Charge:
        spec = self.tables[table]
        return Charge(
            spec.logical_name,
            f"{table}:{sorted(key.items())}",
            operation,
            transactional,
            max(item_size(before), item_size(after)),
            {index.name: index_writes(spec, index, before, after) for index in spec.indexes},
        )


def index_writes(
    table: TableSpec, index: IndexSpec, before: dict[str, Any] | None, after: dict[str, Any] | None
) -> list[int]:
    """The projected sizes of the index entries a write puts or deletes: none, one (a put, a
    delete, or an update of projected attributes) or two (its index keys changed)."""
    index_keys = tuple(key.name for key in (index.partition_key, index.sort_key) if key is not None)
    table_keys = tuple(key.name for key in (table.partition_key, table.sort_key) if key is not None)

    def in_index(image: dict[str, Any] | None) -> bool:
        return image is not None and all(name in image for name in index_keys)

    def projected(image: dict[str, Any]) -> dict[str, Any]:
        if index.projection == "ALL":
            return image
        names = (*table_keys, *index_keys, *index.non_key_attributes)
        return {name: value for name, value in image.items() if name in names}

    was, now = in_index(before), in_index(after)
    if not was and not now:
        return []
    if was and not now:
        return [item_size(projected(before))]  # type: ignore[arg-type]
    if now and not was:
        return [item_size(projected(after))]  # type: ignore[arg-type]
    old, new = projected(before), projected(after)  # type: ignore[arg-type]
    if any(old.get(name) != new.get(name) for name in index_keys):
        return [item_size(old), item_size(new)]
    return [item_size(new)] if old != new else []


def _targets(
    operation: str, params: dict[str, Any], tables: dict[str, TableSpec]
) -> list[tuple[str, dict[str, Any], str, bool]]:
    """(table, key, operation, transactional) of every item a write request touches."""

    def key_of(table: str, item: dict[str, Any]) -> dict[str, Any]:
        spec = tables[table]
        names = [key.name for key in (spec.partition_key, spec.sort_key) if key is not None]
        return {name: item[name] for name in names}

    if operation == "PutItem":
        return [(params["TableName"], key_of(params["TableName"], params["Item"]), operation, False)]
    if operation in ("UpdateItem", "DeleteItem"):
        return [(params["TableName"], params["Key"], operation, False)]
    if operation == "BatchWriteItem":
        return [
            (
                table,
                key_of(table, request["PutRequest"]["Item"])
                if "PutRequest" in request
                else request["DeleteRequest"]["Key"],
                operation,
                False,
            )
            for table, requests in params["RequestItems"].items()
            for request in requests
        ]
    targets = []
    for entry in params["TransactItems"]:
        ((kind, body),) = entry.items()
        # A condition check is charged as a write of the item it reads (and changes no index).
        key = key_of(body["TableName"], body["Item"]) if kind == "Put" else body["Key"]
        targets.append((body["TableName"], key, operation, True))
    return targets
