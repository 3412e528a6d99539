"""The capacity arithmetic of ``local.write_cost``: item sizes as DynamoDB counts them, and which
index entries a write puts or deletes."""

from __future__ import annotations

from functions.data.schema import IndexSpec, Key, TableSpec
from local.write_cost import Charge, index_writes, item_size, read_units, units

TABLE = TableSpec("Tracks", "tracks_table", Key("pk", "S"), Key("sk", "S"), None)
ALL = IndexSpec("by_owner", Key("owner_id", "S"), Key("created_at", "S"), "ALL")
KEYS_ONLY = IndexSpec("by_processing", Key("processing_shard", "S"), Key("processing_since", "S"), "KEYS_ONLY")


def item(**attributes: str) -> dict:
    return {"pk": {"S": "t1"}, "sk": {"S": "track"}, **{name: {"S": value} for name, value in attributes.items()}}


def test_item_sizes_count_names_and_values():
    assert item_size({"name": {"S": "hello"}}) == 4 + 5
    assert item_size({"n": {"N": "123"}}) == 1 + 1 + 2  # one byte per two significant digits, plus one
    assert item_size({"n": {"N": "1200.00"}}) == 1 + 1 + 1  # trailing zeros do not count
    assert item_size({"m": {"M": {"ab": {"S": "xyz"}}}}) == 1 + 3 + 1 + 2 + 3
    assert item_size({"l": {"L": [{"BOOL": True}, {"NULL": True}]}}) == 1 + 3 + 2 * (1 + 1)
    assert item_size({"title": {"S": "é"}}) == 5 + 2  # UTF-8 bytes


def test_capacity_units_round_up_per_started_kilobyte():
    assert [units(1), units(1024), units(1025), units(11 * 1024 - 1)] == [1, 1, 2, 11]
    assert read_units(4096, consistent=True) == 1 and read_units(4097, consistent=True) == 2
    assert read_units(100, consistent=False) == 0.5


def test_an_all_index_is_written_whenever_the_item_changes():
    before, after = item(owner_id="a", created_at="1", title="x"), item(owner_id="a", created_at="1", title="y")

    assert index_writes(TABLE, ALL, before, after) == [item_size(after)]
    assert index_writes(TABLE, ALL, after, after) == []


def test_a_keys_only_index_is_not_written_when_only_other_attributes_change():
    before = item(processing_shard="3", processing_since="1", title="x")
    after = item(processing_shard="3", processing_since="1", title="y")

    assert index_writes(TABLE, KEYS_ONLY, before, after) == []


def test_entering_leaving_and_moving_within_an_index():
    outside, inside = item(title="x"), item(processing_shard="3", processing_since="1")
    moved = item(processing_shard="3", processing_since="2")

    assert len(index_writes(TABLE, KEYS_ONLY, outside, inside)) == 1
    assert len(index_writes(TABLE, KEYS_ONLY, inside, outside)) == 1
    assert len(index_writes(TABLE, KEYS_ONLY, inside, moved)) == 2  # a delete and a put
    assert index_writes(TABLE, KEYS_ONLY, None, outside) == []


def test_a_transactional_write_costs_twice():
    plain = Charge("Tracks", "k", "UpdateItem", False, 1500, {})
    transactional = Charge("Tracks", "k", "TransactWriteItems", True, 1500, {})

    assert (plain.total, transactional.total) == (2, 4)
