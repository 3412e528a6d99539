"""A track's sound profile: the embeddings lane's vector, stored in its own item
(``EmbeddingModel``) while the track carries a summary that points at it (``{"version",
"dimensions", "analysedMs", "uploadId"}``). Tracks processed before the vector moved out still hold
it in that summary (``"vector"``); every reader here takes either.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from functions.data import reads
from functions.data.models import EmbeddingModel, TrackModel

Vector = list[float]


def has_embedding(track: TrackModel) -> bool:
    summary = track.embedding or {}
    return bool(summary.get("uploadId") or summary.get("vector"))


def store(track_id: str, upload_id: str, made: dict[str, Any]) -> dict[str, Any]:
    """Stores the vector of ``made`` (the lane's ``{"version", "dimensions", "vector",
    "analysedMs"}``) for the original ``upload_id`` and returns the summary the track keeps. A
    retried lane puts the same item again."""
    track_key, sort_key = EmbeddingModel.key(track_id, upload_id)
    EmbeddingModel(track_key, sort_key, vector=list(made["vector"])).save()
    return {key: value for key, value in made.items() if key != "vector"} | {"uploadId": upload_id}


def vector_of(track: TrackModel) -> Vector | None:
    """The track's vector: one GetItem, or none for a track processed before it moved out."""
    summary = track.embedding or {}
    if summary.get("vector"):
        return [float(x) for x in summary["vector"]]
    if not summary.get("uploadId"):
        return None
    found = reads.get_or_none(EmbeddingModel, *EmbeddingModel.key(track.track_id, summary["uploadId"]))
    return [float(x) for x in found.vector] if found is not None else None


def vectors_of(summaries: Iterable[tuple[str, dict[str, Any] | None]]) -> dict[str, Vector]:
    """The vectors of many tracks, by track id, from ``(trackId, embedding summary)`` pairs (an
    index projects the summary): BatchGetItem, 100 keys a request. Tracks without one are left out."""
    vectors: dict[str, Vector] = {}
    wanted: dict[tuple[str, str], str] = {}
    for track_id, summary in summaries:
        found = summary or {}
        if found.get("vector"):
            vectors[track_id] = [float(x) for x in found["vector"]]
        elif found.get("uploadId"):
            wanted[EmbeddingModel.key(track_id, found["uploadId"])] = track_id
    for item in EmbeddingModel.batch_get(list(wanted)):
        vectors[wanted[(item.pk, item.sk)]] = [float(x) for x in item.vector]
    return vectors


def delete_all(track_id: str) -> int:
    """Deletes every vector stored for the track (one per processed original) and returns how many."""
    found = list(EmbeddingModel.query(track_id, EmbeddingModel.sk.startswith(EmbeddingModel.SK_PREFIX)))
    with EmbeddingModel.batch_write() as batch:
        for item in found:
            batch.delete(item)
    return len(found)


def delete(track_id: str, upload_id: str) -> None:
    """Deletes the vector of one original (a replaced or failed version's); a no-op without one."""
    EmbeddingModel(*EmbeddingModel.key(track_id, upload_id)).delete()
