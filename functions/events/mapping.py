"""Which change of a stored item is which domain event. Pure: a stream record's images in, at most
one event out, so every rule here is unit-tested without AWS.

One stream record describes one committed write to one item, so mapping each record to at most one
event is what makes an event happen once per change. The record's ``eventID`` becomes the event's
``eventId``: a redelivered record yields the same id, which is how consumers drop repeats.

Tracks table: only track items (``sk = "track"``); lane items and tag-listing entries are
bookkeeping. A track exists for the outside world from the moment it leaves ``draft`` (finalize:
the audio is there); a draft's writes, including its removal when an abandoned intent expires
(TTL), emit nothing. Albums table: only album items (``sk = "album"``); slug claims and member
items (a track's place in an album) are ignored: every membership change also moves the album
item's ``track_list_revision`` in the same transaction, and that is the ``album.updated``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from functions import ids
from functions.data.models import AlbumModel, TrackModel
from functions.domain.lifecycle import WITHOUT_AUDIO

EventName = Literal["INSERT", "MODIFY", "REMOVE"]
EventType = Literal[
    "track.created",
    "track.processed",
    "track.failed",
    "track.updated",
    "track.deleted",
    "album.created",
    "album.updated",
    "album.deleted",
]
Image = Mapping[str, Any]


# The track's user-facing metadata, by attribute name, with the name ``changed`` reports it under.
# A change to any of these on a track that exists is a ``track.updated``. Everything else on the
# item is bookkeeping and never one: status and workflow status (they have their own events),
# timestamps, the sweeper's index keys, the listing index keys, probe facts, renditions, waveform,
# loudness, embedding, the embedded tags as found in the file, the image source (a storage key).
TRACK_METADATA: Mapping[str, str] = {
    "title": "title",
    "album_id": "albumId",
    "album": "album",
    "features": "features",
    "tags": "tags",
    "description": "description",
    "support_gate": "supportGate",
    "visibility": "visibility",
    "genre": "genre",
    "year": "year",
    "track_number": "trackNumber",
    "artwork": "artwork",
    "documents": "documents",
}

# The album's fields that ``album.updated`` names in ``changed`` (every album write bumps
# ``revision``, which is what makes a write an ``album.updated``). Two attributes say "tracks":
# ``track_list_revision`` moves with every join, removal and reorder; ``track_ids`` is the list of
# an album written before member items.
ALBUM_FIELDS: Mapping[str, str] = {
    "title": "title",
    "slug": "slug",
    "description": "description",
    "track_ids": "tracks",
    "track_list_revision": "tracks",
    "artwork": "artwork",
}


@dataclass(frozen=True)
class Change:
    """One stream record: a committed write to one item."""

    event_id: str  # the record's eventID, the same on every redelivery of the record
    name: EventName
    occurred_at: datetime
    old: Image  # empty when the item did not exist before (INSERT)
    new: Image  # empty when the item was removed (REMOVE)


@dataclass(frozen=True)
class DomainEvent:
    type: EventType
    event_id: str
    occurred_at: datetime
    detail: dict[str, Any]  # JSON-ready, camelCase, as documented in docs/api.md "Domain events"


def domain_event(change: Change) -> DomainEvent | None:
    """The event ``change`` stands for, or None when it is not one (bookkeeping, drafts, other items)."""
    sort_key = (change.new or change.old).get("sk")
    if sort_key == TrackModel.TRACK_SK:
        return _track_event(change)
    if sort_key == AlbumModel.ALBUM_SK:
        return _album_event(change)
    return None


def _track_event(change: Change) -> DomainEvent | None:
    old, new = change.old, change.new
    # A draft, or the draft of a rejected upload, never existed for the outside world.
    if change.name == "REMOVE":
        return None if old.get("status") in WITHOUT_AUDIO else _track(change, "track.deleted", old)
    if new.get("status") in WITHOUT_AUDIO:
        return None
    if not old or old.get("status") in WITHOUT_AUDIO:
        return _track(change, "track.created", new)
    return _existing_track_event(change)


def _existing_track_event(change: Change) -> DomainEvent | None:
    """A write to a track that existed before it (past its draft) and still does."""
    old, new = change.old, change.new
    if _version_promoted(old, new):
        # A new original was processed and now plays in place of the old one.
        return _track(change, "track.processed", new, versionUploadId=ids.render("upl", new["upload_id"]))
    if new.get("workflow_status") == "succeeded" and old.get("workflow_status") != "succeeded":
        return _track(change, "track.processed", new)
    if new.get("status") == "failed" and old.get("status") != "failed":
        return _track(change, "track.failed", new, failureCode=new.get("failure_code"))
    changed = metadata_changes(old, new)
    return _track(change, "track.updated", new, changed=changed) if changed else None


def _version_promoted(old: Image, new: Image) -> bool:
    """The one write that swaps a processed version in (``functions.domain.intake.versions``): the
    pending version leaves the item and the track's upload becomes the version's."""
    pending = old.get("pending_version") or {}
    return (
        pending.get("status") == "processing"
        and not new.get("pending_version")
        and old.get("upload_id") != new.get("upload_id")
    )


def metadata_changes(old: Image, new: Image) -> list[str]:
    """The wire names of the metadata that differ between the images, leaving out what a
    processing lane filled in: that arrives before the workflow's verdict and is reported with
    ``track.processed`` (whose consumers read the track as processing left it), not as an edit."""
    lanes_may_write = new.get("workflow_status") != "succeeded"
    return sorted(
        wire
        for attribute, wire in TRACK_METADATA.items()
        if old.get(attribute) != new.get(attribute) and not (lanes_may_write and _filled_by_a_lane(attribute, old, new))
    )


def _filled_by_a_lane(attribute: str, old: Image, new: Image) -> bool:
    """Whether this attribute's change has the shape of a lane's write (the tags lane's
    ``apply_embedded_tags``, the artwork lane), which no owner's edit has. Lanes write only until
    the verdict (or just after a failure verdict, while lanes beside the failed one finish), never
    after success: then every change is the owner's."""
    if attribute == "title":
        # The tags lane marks the title it took from the file; an owner's title is "uploader".
        return new.get("title_source") == "tags" and old.get("title_source") != "tags"
    if attribute == "album":
        # The tags lane fills a standalone track's album name; an owner's move sets album_id with it.
        return old.get("album") is None and old.get("album_id") == new.get("album_id")
    if attribute == "tags":
        # The autotag lane only appends suggestions after the artist's tags, and only with autoTag.
        before, after = list(old.get("tags") or []), list(new.get("tags") or [])
        return bool(new.get("auto_tag")) and len(after) > len(before) and after[: len(before)] == before
    if attribute in ("genre", "year", "track_number"):
        # Only ever filled from the file's tags, and only while empty.
        return old.get(attribute) is None
    if attribute == "artwork":
        # Only the artwork lane renders it; an owner removes it, or uploads an image, whose render
        # after the verdict is then an update.
        return new.get("artwork") is not None
    return False


def _album_event(change: Change) -> DomainEvent | None:
    old, new = change.old, change.new
    if change.name == "INSERT":
        return _album(change, "album.created", new)
    if change.name == "REMOVE":
        return _album(change, "album.deleted", old)
    if old.get("revision") == new.get("revision"):
        return None
    changed = sorted({wire for attribute, wire in ALBUM_FIELDS.items() if old.get(attribute) != new.get(attribute)})
    return _album(change, "album.updated", new, changed=changed)


def _envelope(change: Change, type_: EventType) -> dict[str, Any]:
    return {"eventId": change.event_id, "type": type_, "occurredAt": iso(change.occurred_at)}


def _track(change: Change, type_: EventType, item: Image, **extra: Any) -> DomainEvent:
    album_id = item.get("album_id")
    detail = {
        **_envelope(change, type_),
        "trackId": ids.render("trk", item["pk"]),
        "ownerId": item.get("owner_id"),
        "albumId": ids.render("alb", album_id) if album_id else None,
        "title": item.get("title"),
        "status": item.get("status"),
        **extra,
    }
    return DomainEvent(type_, change.event_id, change.occurred_at, detail)


def _album(change: Change, type_: EventType, item: Image, **extra: Any) -> DomainEvent:
    detail = {
        **_envelope(change, type_),
        "albumId": ids.render("alb", item["pk"]),
        "ownerId": item.get("owner_id"),
        "title": item.get("title"),
        "slug": item.get("slug"),
        "revision": _integer(item.get("revision")),
        "trackCount": _track_count(item),
        **extra,
    }
    return DomainEvent(type_, change.event_id, change.occurred_at, detail)


def _track_count(item: Image) -> int:
    """The album's count, as ``album_membership.track_count`` counts it: an album written before
    member items holds its list instead, and one may hold both while a deployment replaces the
    functions (what an older version appended, not a member yet)."""
    listed = len(item.get("track_ids") or ())
    count = _integer(item.get("track_count"))
    return listed if count is None else count + listed


def _integer(value: Any) -> int | None:
    # Numbers arrive from the stream as Decimal, which json cannot encode.
    return int(value) if isinstance(value, (int, Decimal)) else None


def iso(value: datetime) -> str:
    """ISO 8601 UTC with ``Z``, to the millisecond, like every time the API answers."""
    utc = value.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
