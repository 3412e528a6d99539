"""An index that replaced another is queried under the old name only while a deployment migrates
across (``read_replaced_indexes``, docs/migrations.md); the schema the stack builds always names
the new one, and says which it replaced."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from functions.data import models
from functions.data.schema import table_specs
from functions.settings import settings


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.undo()
    settings.cache_clear()
    models.bind()


def _tracks_indexes() -> dict[str, str | None]:
    (tracks,) = [spec for spec in table_specs() if spec.logical_name == "Tracks"]
    return {index.name: index.replaces for index in tracks.indexes}


def test_queries_name_the_old_index_only_while_migrating(rebinding: pytest.MonkeyPatch) -> None:
    models.bind()
    assert models.TrackModel.by_owner.Meta.index_name == "by_owner_summary"

    rebinding.setenv("TRACKLANE_READ_REPLACED_INDEXES", "true")
    settings.cache_clear()
    models.ensure_bound()
    assert models.TrackModel.by_owner.Meta.index_name == "by_owner"
    # What the stack creates does not follow the switch.
    assert _tracks_indexes()["by_owner_summary"] == "by_owner"

    rebinding.delenv("TRACKLANE_READ_REPLACED_INDEXES")
    settings.cache_clear()
    models.ensure_bound()
    assert models.TrackModel.by_owner.Meta.index_name == "by_owner_summary"


def test_a_replaced_index_keeps_the_keys_and_projected_every_attribute() -> None:
    (tracks,) = [spec for spec in table_specs() if spec.logical_name == "Tracks"]
    (index,) = [index for index in tracks.indexes if index.replaces]
    old = index.replaced()
    assert old is not None
    assert (old.name, old.partition_key, old.sort_key, old.projection) == (
        "by_owner",
        index.partition_key,
        index.sort_key,
        "ALL",
    )
    # Everything the owner's list asks the index for is projected.
    projected = {
        *index.non_key_attributes,
        "pk",
        "sk",
        index.partition_key.name,
        index.sort_key.name if index.sort_key else "",
    }
    assert set(models.OWNER_TRACK_FIELDS) <= projected
    assert "embedding" in projected  # /similar ranks candidates by their embedding summaries
