"""Duplicate uploads: the same owner uploading the same bytes again gets the track it already has.

The content checksum is what S3 reports for the stored object: the ETag of a single PUT, which is
the MD5 of the bytes for unencrypted and SSE-S3 objects (the media bucket uses SSE-S3). It costs
nothing -- finalize reads it in the HEAD it does anyway -- and needs nothing from the client.
(Multipart ETags, ``<md5 of part md5s>-<parts>``, depend on the part size, so they are not used.)
Duplicates are looked for within one owner's tracks only, so a checksum collision could only ever
confuse an owner's own uploads, and nothing about another owner's content can be learned.

A claim item per (owner, checksum) names the track that holds the content; it is written with a
conditional put, so of two identical uploads racing to finalize exactly one is processed.
"""

from __future__ import annotations

import re
from typing import Any

from functions.data import reads, writes
from functions.data.models import ContentClaimModel
from functions.domain.catalog import tracks

_PLAIN_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")
# A claimed track in these states holds its content; a failed one does not (uploading the same
# file again is how an owner retries), and a deleted one has released it.
HOLDING_STATUSES = frozenset({"draft", "processing", "ready"})
MAX_ATTEMPTS = 3


def checksum(etag: str) -> str | None:
    """``md5:<hex>`` for a single-PUT object's ETag, None when the ETag is not a content digest."""
    value = etag.strip('"').lower()
    return f"md5:{value}" if _PLAIN_MD5_ETAG.match(value) else None


def claim_item(owner_id: str, content: str, *, track_id: str, upload_id: str) -> ContentClaimModel:
    """The claim ``track_id`` holds on ``content``, to be saved under ``claimable_by(track_id)``
    (finalize saves it in the transaction that claims the intent)."""
    return ContentClaimModel(*ContentClaimModel.key(owner_id, content), track_id=track_id, upload_id=upload_id)


def claimable_by(track_id: str) -> Any:
    """The condition of saving a claim: nobody holds the content, or ``track_id`` already does (a
    repeated finalize)."""
    return ContentClaimModel.pk.does_not_exist() | (ContentClaimModel.track_id == track_id)


def claim(owner_id: str, content: str, *, track_id: str, upload_id: str) -> str:
    """The id of the owner's track that holds ``content``: ``track_id`` when this upload now
    holds it (or already did: a repeated finalize), else the track that got there first. A claim
    whose track was deleted or failed is taken over."""
    key = ContentClaimModel.key(owner_id, content)
    mine = claim_item(owner_id, content, track_id=track_id, upload_id=upload_id)
    for _ in range(MAX_ATTEMPTS):
        if writes.save_if(mine, claimable_by(track_id)):
            return track_id
        holder = reads.get_or_none(ContentClaimModel, *key, consistent_read=True)
        if holder is None:
            continue  # released meanwhile: try again
        held = tracks.find(holder.track_id)
        if held is not None and held.owner_id == owner_id and held.status in HOLDING_STATUSES:
            return holder.track_id
        # A stale claim: take it over, unless someone else just did.
        if writes.save_if(mine, ContentClaimModel.track_id == holder.track_id):
            return track_id
    # Every attempt met a claim that changed hands under it: process this upload rather than lose it.
    return track_id


def release(owner_id: str, content: str, track_id: str) -> None:
    """Frees ``content`` for the owner's next upload of it, if ``track_id`` still holds it."""
    writes.delete_if(
        ContentClaimModel(*ContentClaimModel.key(owner_id, content)), ContentClaimModel.track_id == track_id
    )
