"""Ranking tracks by how alike their embeddings are (cosine similarity).

Pure Python on purpose: the API function answers ``/similar`` and does not carry numpy (only the
processing function has the media layer). An owner's library is at most a few thousand vectors of
about a hundred numbers, a few hundred thousand multiply-adds: milliseconds either way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def similarity(a: Sequence[float], b: Sequence[float]) -> float:
    """Cosine similarity in [-1, 1]; 0.0 when either vector is all zeros."""
    if len(a) != len(b):
        raise ValueError(f"cannot compare vectors of {len(a)} and {len(b)} dimensions")
    norms = math.sqrt(math.fsum(x * x for x in a)) * math.sqrt(math.fsum(y * y for y in b))
    if norms == 0.0:
        return 0.0
    return max(-1.0, min(1.0, math.fsum(x * y for x, y in zip(a, b, strict=True)) / norms))


def nearest(
    target: Sequence[float], candidates: Iterable[tuple[str, Sequence[float]]], *, limit: int
) -> list[tuple[str, float]]:
    """The ``limit`` candidates most similar to ``target`` as ``(id, cosine similarity)``, best
    first; equal similarities in id order. The caller leaves the target's own id out.

    Candidates of another length than ``target`` are skipped: they were made by another embedding
    version and measure something else. Similarities are rounded to 6 decimals before ranking, so
    the order does not depend on the last bits of a floating-point sum (vectors are stored with 5
    decimals; two tracks that differ only beyond that are equally similar)."""
    if limit <= 0 or not target:
        return []
    scored = [
        (round(similarity(target, vector), 6) + 0.0, track_id)
        for track_id, vector in candidates
        if len(vector) == len(target)
    ]
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return [(track_id, score) for score, track_id in scored[:limit]]
