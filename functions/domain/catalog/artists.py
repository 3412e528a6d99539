"""Artist profiles: a handle (unique) and a display name, required before uploading."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from functions.data import reads, writes
from functions.data.models import ArtistModel, utcnow
from functions.errors import (
    ArtistNotFound,
    ArtistProfileRequired,
    ConcurrentUpdate,
    HandleTaken,
    InvalidUpload,
    UnknownFeatureHandle,
)

HANDLE_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{1,61}[a-z0-9])?$")
# Featured artists on one track.
MAX_FEATURES = 10


@dataclass(frozen=True)
class Artist:
    user_id: str
    handle: str
    display_name: str | None
    created_at: datetime
    updated_at: datetime


def _artist(item: ArtistModel) -> Artist:
    return Artist(item.user_id, item.handle, item.display_name, item.created_at, item.updated_at)


def find(user_id: str) -> Artist | None:
    item = reads.get_or_none(ArtistModel, *ArtistModel.profile_key(user_id))
    return _artist(item) if item is not None else None


def find_many(user_ids: list[str]) -> list[Artist]:
    """The profiles of these users that exist (one BatchGetItem per 100)."""
    if not user_ids:
        return []
    keys = [ArtistModel.profile_key(user_id) for user_id in dict.fromkeys(user_ids)]
    return [_artist(item) for item in ArtistModel.batch_get(keys)]


def by_handle(handle: str) -> Artist:
    """The artist holding ``handle`` (its claim item names the user, the profile the rest)."""
    handle = handle.lower()
    if not HANDLE_PATTERN.match(handle):
        raise ArtistNotFound(f"No artist has the handle '{handle[:64]}'.")
    claim = reads.get_or_none(ArtistModel, *ArtistModel.handle_key(handle))
    if claim is None:
        raise ArtistNotFound(f"No artist has the handle '{handle}'.")
    artist = find(claim.user_id)
    if artist is None or artist.handle != handle:  # a rename released the handle meanwhile
        raise ArtistNotFound(f"No artist has the handle '{handle}'.")
    return artist


def require(user_id: str) -> Artist:
    artist = find(user_id)
    if artist is None:
        raise profile_required()
    return artist


def profile_required() -> ArtistProfileRequired:
    return ArtistProfileRequired("Create your artist profile (PUT /v1/artists/me) before uploading.")


def upsert(user_id: str, *, handle: str, display_name: str | None) -> Artist:
    """Create or update the caller's profile. A handle change claims the new handle and releases
    the old one in the same transaction, so two artists can never hold one handle."""
    handle = handle.lower()
    current = find(user_id)
    now = utcnow()
    profile = ArtistModel(
        *ArtistModel.profile_key(user_id),
        user_id=user_id,
        handle=handle,
        display_name=display_name,
        created_at=current.created_at if current else now,
        updated_at=now,
    )
    claim = ArtistModel(*ArtistModel.handle_key(handle), user_id=user_id, handle=handle, created_at=now)
    with writes.conditional_transaction() as tx:
        if current is None or current.handle != handle:
            # The claim is free, or already ours (a retried request).
            tx.save(claim, condition=ArtistModel.user_id.does_not_exist() | (ArtistModel.user_id == user_id))
        if current is not None and current.handle != handle:
            tx.delete(
                ArtistModel(*ArtistModel.handle_key(current.handle)),
                condition=ArtistModel.user_id == user_id,
            )
        # The profile changes only from the state we read, so a concurrent rename cannot
        # leave a handle claimed by nobody's profile.
        profile_condition = ArtistModel.pk.does_not_exist() if current is None else ArtistModel.handle == current.handle
        tx.save(profile, condition=profile_condition)
    if not tx.committed:
        if (current is None or current.handle != handle) and tx.refused(claim):
            raise HandleTaken(f"The handle '{handle}' is taken.", handle=handle)
        raise ConcurrentUpdate("Your profile changed while this request ran; try again.")
    return _artist(profile)


def check_features(handles: list[str]) -> list[str]:
    """The handles, normalized (``" @Ana "`` -> ``"ana"``) and de-duplicated; each must be an
    artist's (UnknownFeatureHandle names the first that is not)."""
    normalized = list(dict.fromkeys(h.strip().lower().removeprefix("@") for h in handles if h.strip()))
    if len(normalized) > MAX_FEATURES:
        raise InvalidUpload(f"At most {MAX_FEATURES} featured artists.", field="features")
    if not normalized:
        return []
    claims = {item.handle for item in ArtistModel.batch_get([ArtistModel.handle_key(h) for h in normalized])}
    for handle in normalized:
        if handle not in claims:
            raise UnknownFeatureHandle(f"No artist has the handle '{handle}'.", handle=handle)
    return normalized
