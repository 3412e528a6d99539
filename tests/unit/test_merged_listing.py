"""The sharded album listing's merge (``paging.query_merged``): one order across partitions,
ties on the sort key included, and a cursor that neither repeats nor skips. An index answers items
with one sort key value in no set order, so the fake answers them in the worst one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from functions.data.models import AlbumModel
from functions.domain.catalog import paging

T = datetime(2026, 1, 1, tzinfo=UTC)


class TiesInTheWrongOrder:
    """An index whose partitions answer newest first, but equal ``created_at`` in ascending id
    order (the merge wants descending). It ignores the key condition: the merge must not need it."""

    def __init__(self, partitions: dict[str, list[tuple[str, datetime]]]) -> None:
        self.partitions = partitions
        self.queries: list[str] = []

    def _get_schema(self) -> dict[str, Any]:
        return {
            "key_schema": [
                {"AttributeName": "listed", "KeyType": "HASH"},
                {"AttributeName": "created_at", "KeyType": "RANGE"},
            ]
        }

    def query(self, partition: str, condition: Any = None, **options: Any) -> list[AlbumModel]:
        self.queries.append(partition)
        items = sorted(self.partitions.get(partition, []), key=lambda entry: entry[0])
        items.sort(key=lambda entry: entry[1], reverse=True)  # stable: ties stay ascending
        return [AlbumModel(pk, AlbumModel.ALBUM_SK, listed=partition, created_at=at) for pk, at in items]


def test_pages_follow_one_order_across_partitions_and_ties() -> None:
    index = TiesInTheWrongOrder(
        {
            "p1": [("a", T), ("b", T), ("c", T), ("d", T)],
            "p2": [("z", T + timedelta(seconds=1)), ("y", T - timedelta(seconds=1)), ("e", T)],
        }
    )
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = paging.query_merged("albums", index, AlbumModel, ["p1", "p2"], limit=2, cursor=cursor)  # type: ignore[arg-type]
        pages.append([album.pk for album in page.items])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == [["z", "e"], ["d", "c"], ["b", "a"], ["y"]]
    assert len(index.queries) == 2 * len(pages)  # one Query per partition and page
