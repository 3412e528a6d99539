"""A DynamoDB table has one TTL attribute: the schema the stacks build takes it from whichever model
of the table declares it, and refuses models of one table that name two."""

from __future__ import annotations

import pytest
from pynamodb.attributes import TTLAttribute, UnicodeAttribute

from functions.data import models, schema


def _spec(logical_name: str) -> schema.TableSpec:
    (spec,) = [spec for spec in schema.table_specs() if spec.logical_name == logical_name]
    return spec


def test_the_artists_table_expires_rate_buckets_and_nothing_else_of_it_by_accident() -> None:
    ttl = _spec("Artists").ttl_attribute

    assert ttl == models.RateBucketModel.expires_at_epoch.attr_name
    # Every other item of the table lacks that attribute, so none is ever deleted by the TTL.
    sharing = [
        model
        for model in models.ALL_MODELS
        if model is models.ArtistModel or getattr(model.Meta, "shares_table_with", None) == "ArtistModel"
    ]
    carrying = [
        model.__name__
        for model in sharing
        if any(attribute.attr_name == ttl for attribute in model.get_attributes().values())
    ]
    assert carrying == ["RateBucketModel"]


def test_two_ttl_attributes_on_one_table_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class Stray(models._BoundModel):
        class Meta(models._Unbound):
            logical_name = "Artists"
            settings_field = "artists_table"
            shares_table_with = "ArtistModel"

        pk = UnicodeAttribute(hash_key=True)
        sk = UnicodeAttribute(range_key=True)
        gone_at = TTLAttribute(null=True)

    monkeypatch.setattr(schema, "ALL_MODELS", (*models.ALL_MODELS, Stray))

    with pytest.raises(ValueError, match="TTL attributes"):
        schema.table_specs()
