"""Upload entitlements: explicit per-user grants or revocations over a configured default."""

from __future__ import annotations

from dataclasses import dataclass

from functions.data import reads
from functions.data.models import EntitlementModel, utcnow
from functions.errors import EntitlementRequired
from functions.settings import settings


@dataclass(frozen=True)
class Entitlement:
    user_id: str
    allowed: bool
    source: str  # "grant" | "revocation" | "default"
    reason: str | None = None


def lookup(user_id: str) -> Entitlement:
    item = reads.get_or_none(EntitlementModel, user_id)
    if item is None:
        return Entitlement(user_id, settings().default_upload_entitlement == "allow", "default")
    return Entitlement(user_id, item.allowed, "grant" if item.allowed else "revocation", item.reason)


def require_upload(user_id: str) -> None:
    if not lookup(user_id).allowed:
        raise EntitlementRequired("Your account is not entitled to upload tracks.")


def set_entitlement(user_id: str, *, allowed: bool, by: str, reason: str | None = None) -> Entitlement:
    EntitlementModel(user_id, allowed=allowed, reason=reason, updated_by=by, updated_at=utcnow()).save()
    return lookup(user_id)


def clear(user_id: str) -> Entitlement:
    """Forget the explicit decision: the default policy applies again."""
    EntitlementModel(user_id).delete()
    return lookup(user_id)
