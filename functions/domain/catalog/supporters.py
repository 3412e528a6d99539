"""An artist's supporters: the users its support-gated tracks stream to. Grants are data the
artist manages (``PUT/DELETE /v1/artists/me/supporters/{userId}``); no payment system is wired in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from functions.data import writes
from functions.data.models import SupporterModel, utcnow
from functions.domain.catalog import artists, paging


@dataclass(frozen=True)
class Supporter:
    user_id: str
    since: datetime


@dataclass(frozen=True)
class Granted:
    supporter: Supporter
    created: bool


def grant(artist_id: str, user_id: str) -> Granted:
    """Adds ``user_id`` to the artist's supporters. Granting again changes nothing (the first
    grant's date stays), so a retried request is harmless."""
    artists.require(artist_id)
    item = SupporterModel(*SupporterModel.key(artist_id, user_id), supporter_id=user_id, created_at=utcnow())
    if not writes.save_if(item, SupporterModel.pk.does_not_exist()):
        existing = SupporterModel.get(*SupporterModel.key(artist_id, user_id), consistent_read=True)
        return Granted(Supporter(existing.supporter_id, existing.created_at), created=False)
    return Granted(Supporter(user_id, item.created_at), created=True)


def revoke(artist_id: str, user_id: str) -> bool:
    """Removes the grant; False when there was none."""
    return writes.delete_if(SupporterModel(*SupporterModel.key(artist_id, user_id)), SupporterModel.pk.exists())


def list_for(artist_id: str, *, limit: int, cursor: str | None) -> tuple[list[Supporter], str | None]:
    """The artist's supporters in user id order: one Query on the artist's partition."""
    profile_pk = SupporterModel.key(artist_id, "")[0]
    page = paging.query(
        "supporters",
        SupporterModel,
        SupporterModel,
        profile_pk,
        limit=limit,
        cursor=cursor,
        newest_first=False,
        range_key_condition=SupporterModel.sk.startswith(SupporterModel.PREFIX),
    )
    return [Supporter(item.supporter_id, item.created_at) for item in page.items], page.next_cursor
