"""Tracks and their processing lanes: reads for the owner, lane bookkeeping for the workflow."""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from functions.data import reads, writes
from functions.data.models import LaneModel, TrackModel, utcnow
from functions.domain import lifecycle
from functions.domain.catalog import embeddings, similarity
from functions.errors import EmbeddingNotReady, LaneResultNotFound, TrackDeleted, TrackNotFound
from functions.settings import settings
from functions.workflow.definition import LANES

if TYPE_CHECKING:
    from functions.media.tags import EmbeddedTags

TERMINAL_LANE_STATES = frozenset({"succeeded", "failed", "skipped"})
# Partitions of the sweeper's index (``by_processing``); the sweeper queries each.
PROCESSING_SHARDS = 8


def processing_shard(track_id: str) -> str:
    return f"processing#{zlib.crc32(track_id.encode()) % PROCESSING_SHARDS}"


@dataclass(frozen=True)
class ProcessingStatus:
    track: TrackModel
    lanes: list[LaneModel]


def get_owned(track_id: str, owner_id: str) -> TrackModel:
    """The track, if it exists and belongs to ``owner_id``; another owner's track is 'not found'."""
    track = find(track_id)
    if track is None or track.owner_id != owner_id:
        raise TrackNotFound("No such track.")
    return track


def find(track_id: str) -> TrackModel | None:
    return reads.get_or_none(TrackModel, track_id, TrackModel.TRACK_SK)


# A lane's outputs that were too large to keep on the lane item: ``{STORED_RESULT: {"key",
# "byteSize"}}`` (``functions.domain.processing.steps``), the answer itself in S3.
STORED_RESULT = "storedResult"


@dataclass(frozen=True)
class LaneResult:
    """What a succeeded lane produced: its outputs, or where they are stored when they were too
    large to keep on the lane item (``stored_key``)."""

    outputs: dict[str, Any]
    stored_key: str | None


def lane_result(track_id: str, owner_id: str, lane: str) -> LaneResult:
    """The owner's view of one lane's result. Raises TrackNotFound (not the owner's, or gone) or
    LaneResultNotFound (no such lane, not succeeded, no outputs)."""
    found = reads.get_many((TrackModel, track_id, TrackModel.TRACK_SK), (LaneModel, track_id, LaneModel.sort_key(lane)))
    track, lane_item = found
    if not isinstance(track, TrackModel) or track.owner_id != owner_id:
        raise TrackNotFound("No such track.")
    if not isinstance(lane_item, LaneModel) or lane_item.state != "succeeded" or not lane_item.outputs:
        raise LaneResultNotFound(f"The {lane} lane has no result (yet).", lane=lane)
    stored = lane_item.outputs.get(STORED_RESULT)
    return LaneResult(lane_item.outputs, stored["key"] if isinstance(stored, dict) else None)


def processing_status(track_id: str, owner_id: str) -> ProcessingStatus:
    """One Query returns the track item and its lane items (they share the partition; ``lane#...``
    and ``track`` sort after the embedding items, which the status does not read)."""
    track: TrackModel | None = None
    lanes: list[LaneModel] = []
    for raw in reads.partition(TrackModel, track_id, sort_key_from=LaneModel.sort_key(""), consistent_read=True):
        if raw["sk"]["S"] == TrackModel.TRACK_SK:
            track = TrackModel.from_raw_data(raw)
        else:
            lanes.append(LaneModel.from_raw_data(raw))
    lanes.sort(key=lambda lane: LANES.index(lane.lane) if lane.lane in LANES else len(LANES))
    if track is None or track.owner_id != owner_id:
        raise TrackNotFound("No such track.")
    return ProcessingStatus(track, lanes)


def update(track_id: str, *actions: Any) -> None:
    """Applies ``actions`` to the track item and stamps ``updated_at``. Raises TrackDeleted when the
    track is gone: UpdateItem would otherwise create a stray item for a track deleted while its
    lanes ran."""
    if not writes.update_if(
        TrackModel(track_id, TrackModel.TRACK_SK),
        [*actions, TrackModel.updated_at.set(utcnow())],
        TrackModel.pk.exists(),
    ):
        raise TrackDeleted("The track was deleted.", trackId=track_id)


def queue_lanes(track_id: str, lanes: Iterable[str]) -> None:
    with LaneModel.batch_write() as batch:
        for lane in queued_lanes(track_id, lanes):
            batch.save(lane)


def queued_lanes(track_id: str, lanes: Iterable[str]) -> list[LaneModel]:
    """The lane items of a track about to be processed, each ``queued`` (saved unconditionally:
    a lane queued again starts over)."""
    now = utcnow()
    return [LaneModel(track_id, LaneModel.sort_key(lane), lane=lane, state="queued", updated_at=now) for lane in lanes]


def lane_started(track_id: str, lane: str) -> int:
    """Marks the lane running and counts the attempt; returns the attempt number."""
    now = utcnow()
    item = LaneModel(track_id, LaneModel.sort_key(lane))
    actions: list[Any] = [
        LaneModel.lane.set(lane),
        LaneModel.state.set("running"),
        LaneModel.attempts.add(1),
        LaneModel.started_at.set(LaneModel.started_at | now),
        LaneModel.updated_at.set(now),
        LaneModel.message.remove(),
        LaneModel.code.remove(),
    ]
    if not writes.update_if(item, actions, LaneModel.pk.exists()):
        # Finalize queues every lane before the workflow starts, so a missing lane item means the
        # track was deleted -- unless finalize stopped between the two and the sweeper started the
        # workflow: then the track is still there and the lane is recorded now.
        if find(track_id) is None:
            raise TrackDeleted("The track was deleted.", trackId=track_id)
        item.update(actions=actions)
    return int(item.attempts)


def lane_finished(
    track_id: str,
    lane: str,
    *,
    state: str,
    message: str | None = None,
    code: str | None = None,
    outputs: dict[str, Any] | None = None,
) -> None:
    now = utcnow()
    actions: list[Any] = [
        LaneModel.lane.set(lane),
        LaneModel.state.set(state),
        LaneModel.finished_at.set(now),
        LaneModel.updated_at.set(now),
    ]
    actions.append(LaneModel.message.set(message) if message is not None else LaneModel.message.remove())
    actions.append(LaneModel.code.set(code) if code is not None else LaneModel.code.remove())
    actions.append(LaneModel.outputs.set(outputs) if outputs is not None else LaneModel.outputs.remove())
    _update_lane(track_id, lane, actions)


def lane_retrying(track_id: str, lane: str, message: str) -> None:
    _update_lane(track_id, lane, [LaneModel.message.set(message), LaneModel.updated_at.set(utcnow())])


def _update_lane(track_id: str, lane: str, actions: list[Any]) -> None:
    """A write to a lane that has started, so its item exists unless the track was deleted (which
    deletes its lanes): the write must not re-create it."""
    if not writes.update_if(LaneModel(track_id, LaneModel.sort_key(lane)), actions, LaneModel.pk.exists()):
        raise TrackDeleted("The track was deleted.", trackId=track_id)


def delete_side_items(track_id: str) -> int:
    """Deletes the items kept beside the track in its partition -- its lane items and its
    sound-profile vectors (``embeddings``) -- and returns how many lanes there were. The track item
    itself is never touched here."""
    embeddings.delete_all(track_id)
    found = list(LaneModel.query(track_id, LaneModel.sk.startswith(LaneModel.sort_key("")), consistent_read=True))
    with LaneModel.batch_write() as batch:
        for lane in found:
            batch.delete(lane)
    return len(found)


def apply_embedded_tags(track_id: str, found: EmbeddedTags) -> list[str]:
    """Fills the track's fields the uploader left empty from the file's own tags and returns the
    names of the fields it filled. Each write is conditional on the field still being empty (the
    title: on it not being the uploader's choice), so an edit racing the lane always wins."""
    item = TrackModel(track_id, TrackModel.TRACK_SK)
    applied: list[str] = []
    if found.title and _update_if(
        item,
        [TrackModel.title.set(found.title), TrackModel.title_source.set("tags")],
        TrackModel.title_source == "file_name",
    ):
        applied.append("title")
    # The album is not a plain field: naming one joins an album (``track_mutations.join_tagged_album``).
    fillable: list[tuple[str, Any, Any]] = [
        ("genre", TrackModel.genre, found.genre),
        ("year", TrackModel.year, found.year),
        ("trackNumber", TrackModel.track_number, found.track_number),
    ]
    for name, attribute, value in fillable:
        if value is not None and _update_if(item, [attribute.set(value)], attribute.does_not_exist()):
            applied.append(name)
    _update_if(item, [TrackModel.embedded_tags.set(found.fields())], None)
    return applied


def offer_image(track_id: str, source: dict[str, str]) -> bool:
    """Makes ``source`` the image the artwork lane renders unless the track already has one (an
    uploaded image always wins over one embedded in the audio). True when it was taken."""
    return _update_if(
        TrackModel(track_id, TrackModel.TRACK_SK),
        [TrackModel.image_source.set(source)],
        TrackModel.image_source.does_not_exist(),
    )


def mark_rejected(track_id: str, code: str, message: str) -> bool:
    """The draft of an intent whose file was rejected: shown as ``rejected`` with why, in lists, the
    track view and the processing status alike (``functions.domain.lifecycle``). It keeps the
    intent's TTL and goes with it. Only a draft: False when the track moved on or is gone."""
    return _update_if(
        TrackModel(track_id, TrackModel.TRACK_SK),
        [
            TrackModel.status.set(lifecycle.TRACK_REJECTED),
            TrackModel.failure_code.set(code),
            TrackModel.failure_message.set(message),
        ],
        TrackModel.status == lifecycle.DRAFT,
    )


def _update_if(item: TrackModel, actions: list[Any], condition: Any) -> bool:
    """An update that happens only if ``condition`` holds and the track still exists (UpdateItem
    would otherwise create a stray item for a track deleted while its lanes ran)."""
    exists = TrackModel.pk.exists()
    return writes.update_if(
        item,
        [*actions, TrackModel.updated_at.set(utcnow())],
        exists if condition is None else exists & condition,
    )


@dataclass(frozen=True)
class Similar:
    track: TrackModel
    score: float


def similar(track_id: str, owner_id: str, *, limit: int) -> tuple[TrackModel, list[Similar], int]:
    """The owner's ready tracks whose embeddings are nearest to this track's, best first, and how
    many were compared. One Query on ``by_owner`` (newest first, bounded), never a full-table read."""
    track = get_owned(track_id, owner_id)
    vector = embeddings.vector_of(track)
    if not vector:
        raise EmbeddingNotReady(f"This track has no embedding yet (status: {track.status}).", trackStatus=track.status)
    candidates: dict[str, TrackModel] = {}
    for other in TrackModel.by_owner.query(owner_id, scan_index_forward=False, limit=settings().similar_candidates_max):
        if other.pk != track_id and other.status == "ready" and embeddings.has_embedding(other):
            candidates[other.pk] = other
    vectors = embeddings.vectors_of((pk, other.embedding) for pk, other in candidates.items())
    ranked = similarity.nearest(vector, vectors.items(), limit=limit)
    return track, [Similar(candidates[pk], score) for pk, score in ranked], len(candidates)
