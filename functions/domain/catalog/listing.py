"""Who may see and play a track, and the public listings that follow from it.

A track is *listed* -- in its artist's public tracks and under each of its tags -- only while it is
``ready``, ``public`` and has no support gate. Gated, private and unlisted tracks never appear in a
public list; unlisted ones still play for anyone holding their id, gated ones only for the owner
and the artist's supporters, private ones only for the owner.

Listing state is derived, never written directly: every write that can change one of its inputs
(status, visibility, support gate, tags) calls ``sync`` afterwards. ``sync`` reads the track and
writes the listing in one transaction conditional on exactly the inputs it read (and the listing it
read), retrying when any moved. A ``sync`` that keeps losing may stop: its condition only fails
because another writer changed an input after its read, and that writer's own ``sync`` comes after
its change. So the last ``sync`` to commit always saw the final inputs, however writers interleave.
(A writer that crashes between its write and its ``sync`` leaves the listing stale until the
track's next change; the public reads re-check every track they return, so it never shows a track
that should not be listed -- it can only miss one.)
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

from functions.data import reads, writes
from functions.data.models import (
    OWNER_TRACK_FIELDS,
    TRACK_SUMMARY_FIELDS,
    SupporterModel,
    TagEntryModel,
    TrackModel,
    utcnow,
)
from functions.domain import lifecycle
from functions.domain.catalog import artists, embeddings, paging, tags
from functions.errors import SupportRequired, TrackNotFound
from functions.observability import logger

VISIBILITIES = TrackModel.VISIBILITIES
# Tracks a non-owner may read or play at all (a private one is 'not found' to them).
SHAREABLE = frozenset({"public", "unlisted"})
# Transactions hold at most 100 items: the track plus its tag entries (10 tags, at most 20 moves).
MAX_ATTEMPTS = 6
# Jittered pause before attempt n: up to 10 ms * 2**n, so racing writers stop colliding.
BACKOFF_S = 0.01


def is_listed(track: TrackModel) -> bool:
    return track.status == "ready" and track.visibility == "public" and not track.support_gate


def is_tag_reference(track: TrackModel) -> bool:
    """A listed track with tags and an embedding: an example the autotag lane learns from. Only
    public tracks teach, so nobody's private or gated work shapes what others are told."""
    return is_listed(track) and bool(track.tags) and embeddings.has_embedding(track)


def may_read(track: TrackModel, viewer_id: str | None) -> bool:
    """The owner reads every track; others only ready public or unlisted ones (gated included:
    the gate limits playing, not knowing the track exists)."""
    if viewer_id is not None and viewer_id == track.owner_id:
        return True
    return track.status == "ready" and track.visibility in SHAREABLE


def check_playable(track: TrackModel, viewer_id: str | None) -> None:
    """Raises unless ``viewer_id`` (None: an anonymous listener) may stream ``track``: a track it
    may not even read is 'not found'; a gated one needs the viewer to be the artist's supporter."""
    if viewer_id is not None and viewer_id == track.owner_id:
        return
    if not may_read(track, viewer_id):
        raise TrackNotFound("No such track.")
    if track.support_gate and (viewer_id is None or not is_supporter(track.owner_id, viewer_id)):
        raise SupportRequired(
            "This track is for the artist's supporters: ask the artist to add you as a supporter.",
            gate=track.support_gate,
        )


def is_supporter(artist_id: str, user_id: str) -> bool:
    return reads.get_or_none(SupporterModel, *SupporterModel.key(artist_id, user_id), consistent_read=True) is not None


# --- keeping the listing in step -------------------------------------------------------------------


def _inputs_unchanged(track: TrackModel) -> Any:
    """True while every input of the listing (and the listing itself) is as ``track`` read it."""

    def same(attribute: Any, value: Any) -> Any:
        return attribute == value if value else attribute.does_not_exist()

    # Whether there is an embedding is an input; the vector itself is not (it is never replaced
    # by another, only written once per processed original).
    embedded = TrackModel.embedding.exists() if track.embedding else TrackModel.embedding.does_not_exist()
    return (
        TrackModel.pk.exists()
        & (TrackModel.status == track.status)
        & (TrackModel.visibility == track.visibility)
        & same(TrackModel.support_gate, track.support_gate)
        & same(TrackModel.tags, list(track.tags or []))
        & embedded
        & same(TrackModel.listed_owner, track.listed_owner)
        & same(TrackModel.listed_tags, list(track.listed_tags or []))
        & same(TrackModel.tag_reference, track.tag_reference)
    )


def sync(track_id: str) -> None:
    """Brings the track's public listing (``listed_owner`` and its tag entries) in line with its
    current state. Idempotent; a deleted track is left to ``unlist_deleted``."""
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            time.sleep(random.uniform(0, BACKOFF_S * 2**attempt))  # noqa: S311 - jitter, not secrecy
        track = reads.get_or_none(TrackModel, track_id, TrackModel.TRACK_SK, consistent_read=True)
        if track is None:
            return
        listed = is_listed(track)
        wanted_owner = track.owner_id if listed else None
        wanted_tags = [str(tag) for tag in track.tags or []] if listed else []
        current_tags = [str(tag) for tag in track.listed_tags or []]
        wanted_reference = TrackModel.TAG_REFERENCE if is_tag_reference(track) else None
        if (track.listed_owner, current_tags, track.tag_reference) == (wanted_owner, wanted_tags, wanted_reference):
            return
        listed_tags: Any = TrackModel.listed_tags  # pynamodb types a list's items as attributes
        actions = [
            TrackModel.listed_owner.set(wanted_owner) if wanted_owner else TrackModel.listed_owner.remove(),
            listed_tags.set(wanted_tags) if wanted_tags else listed_tags.remove(),
            TrackModel.tag_reference.set(wanted_reference) if wanted_reference else TrackModel.tag_reference.remove(),
        ]
        with writes.conditional_transaction() as tx:
            tx.update(track, actions=actions, condition=_inputs_unchanged(track))
            for tag in set(current_tags) - set(wanted_tags):
                tx.delete(_entry(track, tag))
            for tag in set(wanted_tags) - set(current_tags):
                tx.save(_entry(track, tag))
        if not tx.committed:
            continue  # an input moved since the read: look again
        logger.info("listing synced", extra={"track_id": track_id, "listed": listed, "tags": wanted_tags})
        return
    # Every attempt lost to a writer that changed an input since: its own sync comes after it.
    logger.info("listing left to a later writer", extra={"track_id": track_id, "attempts": MAX_ATTEMPTS})


def unlist_deleted(track: TrackModel) -> None:
    """Removes the tag entries of a track whose item is already deleted (its index entry went
    with the item). Deleting an entry that is not there is a no-op, so a repeat is harmless."""
    tags = [str(tag) for tag in track.listed_tags or []]
    if not tags:
        return
    with TagEntryModel.batch_write() as batch:
        for tag in tags:
            batch.delete(_entry(track, tag))


def _entry(track: TrackModel, tag: str) -> TagEntryModel:
    return TagEntryModel(
        TagEntryModel.key(tag),
        TagEntryModel.sort_key(track.created_at, track.track_id),
        track_id=track.track_id,
        artist_id=track.owner_id,
    )


# --- public reads ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackPage:
    tracks: list[TrackModel]
    artists: dict[str, artists.Artist]
    next_cursor: str | None


def _summaries(track_ids: list[str]) -> dict[str, TrackModel]:
    if not track_ids:
        return {}
    keys = [(track_id, TrackModel.TRACK_SK) for track_id in dict.fromkeys(track_ids)]
    return {str(t.pk): t for t in TrackModel.batch_get(keys, attributes_to_get=list(TRACK_SUMMARY_FIELDS))}


def _listed_page(track_ids: list[str], next_cursor: str | None, *, with_artists: bool) -> TrackPage:
    """The page's tracks in index order, re-checked against the items themselves: an index answers
    eventually, so a track unlisted a moment ago may still be in it."""
    found = _summaries(track_ids)
    listed = [found[tid] for tid in track_ids if tid in found and is_listed(found[tid])]
    owners = list(dict.fromkeys(track.owner_id for track in listed)) if with_artists else []
    profiles = {artist.user_id: artist for artist in artists.find_many(owners)}
    return TrackPage(listed, profiles, next_cursor)


def artist_tracks(artist: artists.Artist, *, limit: int, cursor: str | None) -> TrackPage:
    """The artist's listed tracks, newest first: one Query on ``by_artist_listing`` and one
    BatchGetItem, whatever the size of the catalog."""
    page = paging.query(
        "artist-tracks", TrackModel.by_artist_listing, TrackModel, artist.user_id, limit=limit, cursor=cursor
    )
    result = _listed_page([str(t.pk) for t in page.items], page.next_cursor, with_artists=False)
    return TrackPage(result.tracks, {artist.user_id: artist}, result.next_cursor)


def tag_tracks(tag: str, *, limit: int, cursor: str | None) -> tuple[str, TrackPage]:
    """Listed tracks under ``tag`` (normalized as tags are on tracks), newest first, with their
    artists: one Query on the tag's entries and two BatchGetItems."""
    tag = tags.lookup(tag)
    page = paging.query("tag-tracks", TagEntryModel, TagEntryModel, TagEntryModel.key(tag), limit=limit, cursor=cursor)
    return tag, _listed_page([entry.track_id for entry in page.items], page.next_cursor, with_artists=True)


def owner_tracks(owner_id: str, *, limit: int, cursor: str | None) -> paging.Page[TrackModel]:
    """Every track of the caller, newest first, drafts included (``by_owner``) -- but not the
    draft of an intent that expired: DynamoDB's TTL deletes it only eventually (up to days), and
    its file can no longer arrive. Dropped after the Query, so the cursor still follows the index;
    a page may then hold fewer than ``limit`` tracks."""
    page = paging.query(
        "my-tracks",
        TrackModel.by_owner,
        TrackModel,
        owner_id,
        limit=limit,
        cursor=cursor,
        # The owner sees why a track failed or its upload was rejected.
        attributes_to_get=list(OWNER_TRACK_FIELDS),
    )
    now = utcnow()
    # An abandoned or rejected intent's track goes with the intent, at its TTL; DynamoDB's TTL
    # deletion lags by up to days.
    live = [
        t
        for t in page.items
        if not (t.status in lifecycle.WITHOUT_AUDIO and t.expires_at_epoch and t.expires_at_epoch <= now)
    ]
    return paging.Page(live, page.next_cursor)
