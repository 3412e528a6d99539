"""Genre tags recommended from what a track sounds like (the upload_track contract's ``autoTag``).

The classifier is nearest neighbours over the embeddings lane's vectors: the new track's closest
public, tagged tracks vote for their tags, each vote weighted by how alike the two sound. No model
is downloaded or trained; the examples are the catalog itself (``by_tag_reference``: listed tracks
that have tags and an embedding), read from a snapshot rebuilt every few minutes. Suggestions are
always recorded in the lane's outputs (processing-status); with ``autoTag`` on they are also
added to the track's tags -- never replacing or removing a tag the artist chose, and never past
the tag limit.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from functions.data import keys, storage, writes
from functions.data.models import TrackModel, utcnow
from functions.domain.catalog import embeddings, listing, similarity, tags, tracks
from functions.errors import TrackDeleted
from functions.settings import Settings, settings

CLASSIFIER = "knn-embeddings-v1"
# How many of the most similar examples vote.
NEIGHBOURS = 15
# A neighbour's vote weighs its similarity to this power: a near-identical example outweighs a
# loosely similar one many times over (0.99 -> 0.92, 0.7 -> 0.06), which matters while the
# catalog holds few examples and every one of them is among the "nearest".
SHARPNESS = 8
# A tag is suggested when at least this share of the weighted vote is for it.
MIN_SCORE = 0.3
MAX_SUGGESTIONS = 5
MAX_ATTEMPTS = 3
# pynamodb types a list attribute's items as attributes, not the strings it stores.
_track_tags: Any = TrackModel.tags


@dataclass(frozen=True)
class Example:
    track_id: str
    vector: Sequence[float]
    tags: Sequence[str]


@dataclass(frozen=True)
class Suggestion:
    tag: str
    # Share of the neighbours' similarity-weighted vote, 0..1.
    score: float

    def to_json(self) -> dict[str, object]:
        return {"tag": self.tag, "score": self.score}


def suggest(vector: Sequence[float], examples: Iterable[Example]) -> list[Suggestion]:
    """The tags the ``NEIGHBOURS`` most similar examples vote for, best first. Only neighbours
    that sound alike at all (positive similarity) vote; ties in tag order."""
    by_id = {example.track_id: example for example in examples}
    nearest = similarity.nearest(vector, ((e.track_id, e.vector) for e in by_id.values()), limit=NEIGHBOURS)
    voters = [(by_id[track_id], score**SHARPNESS) for track_id, score in nearest if score > 0]
    total = sum(weight for _, weight in voters)
    if total == 0:
        return []
    votes: dict[str, float] = defaultdict(float)
    for example, weight in voters:
        for tag in dict.fromkeys(example.tags):
            votes[tag] += weight
    ranked = sorted(((round(weight / total, 4), tag) for tag, weight in votes.items()), key=lambda p: (-p[0], p[1]))
    return [Suggestion(tag, score) for score, tag in ranked if score >= MIN_SCORE][:MAX_SUGGESTIONS]


@dataclass(frozen=True)
class _Snapshot:
    examples: list[Example]
    built_at: datetime
    limit: int
    etag: str | None
    checked_at: float  # time.monotonic() of the last look at the stored snapshot
    settings: Settings  # the configuration it was read under (tests switch stacks in one process)


class _Held:
    """The snapshot this container holds (one invocation at a time on Lambda; the local runner's
    threads take turns)."""

    snapshot: _Snapshot | None = None
    lock = threading.Lock()


# How long a container trusts the snapshot it holds before a conditional GET asks whether a newer
# one was stored (an unchanged one transfers nothing).
SNAPSHOT_RECHECK_S = 60.0


def reference_examples(exclude_track_id: str, *, limit: int) -> list[Example]:
    """The newest ``limit`` tagged public tracks with embeddings, from the reference snapshot: one
    S3 object holding them, rebuilt from ``by_tag_reference`` by the first lane that finds it older
    than ``autotag_references_max_age_s``, and kept per container. Every lane querying the index
    itself read ~2 MB from its single partition each time: ~10 lanes a second for the whole
    service (docs/capacity.md); now the index is read once per max age."""
    return [example for example in _current_snapshot(limit).examples if example.track_id != exclude_track_id]


def _current_snapshot(limit: int) -> _Snapshot:
    current = settings()
    with _Held.lock:
        held = _Held.snapshot if _Held.snapshot is not None and _Held.snapshot.settings is current else None
        recent = held is not None and time.monotonic() - held.checked_at < SNAPSHOT_RECHECK_S
        if held is not None and recent and held.limit == limit and not _expired(held.built_at):
            return held
        stored = storage.get_json(keys.AUTOTAG_REFERENCES, unless_etag=held.etag if held else None)
        snapshot: _Snapshot | None
        if stored is storage.NOT_MODIFIED and held is not None:
            snapshot = dataclasses.replace(held, checked_at=time.monotonic())
        elif isinstance(stored, storage.JsonObject):
            snapshot = _parse(stored, current)
        else:
            snapshot = None
        if snapshot is None or snapshot.limit != limit or _expired(snapshot.built_at):
            snapshot = rebuild_reference_snapshot(limit)
        _Held.snapshot = snapshot
        return snapshot


def rebuild_reference_snapshot(limit: int) -> _Snapshot:
    """Reads the newest ``limit`` examples from ``by_tag_reference`` (which carries just the tags
    and the vector) and stores them as the snapshot. Lanes that find the snapshot expired at the
    same moment may each rebuild it: the same content, written a few times, once per max age."""
    found = [
        item
        for item in TrackModel.by_tag_reference.query(TrackModel.TAG_REFERENCE, scan_index_forward=False, limit=limit)
        if item.tags
    ]
    # The index carries each track's embedding summary; the vectors are read 100 a request.
    vectors = embeddings.vectors_of((str(item.pk), item.embedding) for item in found)
    examples = [
        Example(str(item.pk), vectors[str(item.pk)], [str(tag) for tag in item.tags or []])
        for item in found
        if str(item.pk) in vectors
    ]
    built_at = utcnow()
    etag = storage.put_json(
        keys.AUTOTAG_REFERENCES,
        {
            "builtAt": built_at.isoformat(),
            "limit": limit,
            "examples": [{"trackId": e.track_id, "tags": list(e.tags), "vector": list(e.vector)} for e in examples],
        },
    )
    snapshot = _Snapshot(examples, built_at, limit, etag, time.monotonic(), settings())
    _Held.snapshot = snapshot  # this container holds what it just stored
    return snapshot


def _parse(stored: storage.JsonObject, current: Settings) -> _Snapshot | None:
    document = stored.document
    try:
        examples = [Example(e["trackId"], e["vector"], e["tags"]) for e in document["examples"]]
        built_at = datetime.fromisoformat(document["builtAt"])
        limit = int(document["limit"])
    except (KeyError, TypeError, ValueError):
        return None  # written by another version of this code: rebuilt
    return _Snapshot(examples, built_at, limit, stored.etag, time.monotonic(), current)


def _expired(built_at: datetime) -> bool:
    return utcnow() - built_at > timedelta(seconds=settings().autotag_references_max_age_s)


def apply(track_id: str, suggestions: Sequence[Suggestion]) -> list[str]:
    """Adds the suggested tags the track does not have yet, up to the tag limit, and returns them.
    Conditional on the tags it read, so an edit by the artist meanwhile is never overwritten: the
    suggestions are then added to the artist's new tags instead."""
    for _ in range(MAX_ATTEMPTS):
        track = tracks.find(track_id)
        if track is None:
            raise TrackDeleted("The track was deleted.", trackId=track_id)
        current = [str(tag) for tag in track.tags or []]
        room = max(0, tags.MAX_TAGS - len(current))
        added = [s.tag for s in suggestions if s.tag not in current][:room]
        if not added:
            return []
        unchanged = _track_tags == current if current else _track_tags.does_not_exist()
        if not writes.update_if(
            TrackModel(track_id, TrackModel.TRACK_SK),
            [_track_tags.set([*current, *added]), TrackModel.updated_at.set(utcnow())],
            TrackModel.pk.exists() & unchanged,
        ):
            continue  # the tags changed (or the track went): read them again
        listing.sync(track_id)
        return added
    return []
