"""Upload entitlements: explicit per-user grants or revocations over a configured default."""

from __future__ import annotations

from dataclasses import dataclass

from functions.data import reads
from functions.data.models import ArtistModel, EntitlementModel, UsageModel, utcnow
from functions.domain.catalog import artists, usage
from functions.errors import EntitlementRequired
from functions.settings import settings


@dataclass(frozen=True)
class Entitlement:
    user_id: str
    allowed: bool
    source: str  # "grant" | "revocation" | "default"
    reason: str | None = None


def lookup(user_id: str) -> Entitlement:
    return _entitlement(user_id, reads.get_or_none(EntitlementModel, user_id))


def require_uploader(user_id: str) -> usage.Allowance:
    """The caller may upload a track: it has an artist profile (else ``artist_profile_required``)
    and the upload entitlement (else ``entitlement_required``). Both items, and the storage quota
    its intent is held to, in one round trip."""
    profile, item, used = reads.get_many(
        (ArtistModel, *ArtistModel.profile_key(user_id)),
        (EntitlementModel, user_id, None),
        (UsageModel, *UsageModel.key(user_id)),
    )
    if profile is None:
        raise artists.profile_required()
    if not _entitlement(user_id, item if isinstance(item, EntitlementModel) else None).allowed:
        raise EntitlementRequired("Your account is not entitled to upload tracks.")
    return usage.allowance(user_id, used if isinstance(used, UsageModel) else None)


def _entitlement(user_id: str, item: EntitlementModel | None) -> Entitlement:
    if item is None:
        return Entitlement(user_id, settings().default_upload_entitlement == "allow", "default")
    return Entitlement(user_id, item.allowed, "grant" if item.allowed else "revocation", item.reason)


def require_upload(user_id: str) -> None:
    if not lookup(user_id).allowed:
        raise EntitlementRequired("Your account is not entitled to upload tracks.")


def require_audio_upload(user_id: str) -> usage.Allowance:
    """``require_upload``, and the storage quota an intent is held to (audio, and the images and
    documents that count in it too), in one round trip."""
    item, used = reads.get_many((EntitlementModel, user_id, None), (UsageModel, *UsageModel.key(user_id)))
    if not _entitlement(user_id, item if isinstance(item, EntitlementModel) else None).allowed:
        raise EntitlementRequired("Your account is not entitled to upload tracks.")
    return usage.allowance(user_id, used if isinstance(used, UsageModel) else None)


def set_entitlement(user_id: str, *, allowed: bool, by: str, reason: str | None = None) -> Entitlement:
    EntitlementModel(user_id, allowed=allowed, reason=reason, updated_by=by, updated_at=utcnow()).save()
    return lookup(user_id)


def clear(user_id: str) -> Entitlement:
    """Forget the explicit decision: the default policy applies again."""
    EntitlementModel(user_id).delete()
    return lookup(user_id)
