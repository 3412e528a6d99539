"""A track's waveform: peaks stored as one S3 object (every bucket count the lane made, or the
client's advisory peaks), while the track item keeps only ``{"key", "source"}`` pointing at it.
Peaks on the item would ride along in every later write of the track and in the indexes that
project it (docs/capacity.md); tracks processed before they moved out hold them inline, which the
reader below still takes.
"""

from __future__ import annotations

from typing import Any

from functions.data import keys, storage
from functions.data.models import TrackModel

Document = dict[str, dict[str, Any]]  # str(bucket count) -> {"peaks", "sampleRateHz", "channels"}


def client_hint(track_id: str, upload_id: str, peaks: dict[str, Any]) -> dict[str, Any]:
    """Stores a client's advisory ``{"peaks", "sampleRateHz", "channels"}`` and returns what the
    track keeps: the waveform lane's measured peaks replace the pointer later."""
    key = keys.client_waveform(track_id, upload_id)
    storage.put_json(key, {str(len(peaks["peaks"])): peaks})
    return {"key": key, "source": "client"}


def analysis(key: str, document: Document) -> dict[str, Any]:
    """Stores the waveform lane's peaks (``document``) and returns what the track keeps."""
    storage.put_json(key, document)
    return {"key": key, "source": "analysis"}


def public(track: TrackModel) -> dict[str, Any] | None:
    """What a track's reader gets: the coarsest peaks stored, ``{"peaks", "sampleRateHz",
    "channels", "source"}``, one GetObject (None while there are none, or the object is gone)."""
    summary = track.waveform or {}
    if not summary:
        return None
    if "peaks" in summary:  # stored inline, before the peaks moved to S3
        return {name: value for name, value in summary.items() if name != "key"}
    stored = storage.get_json(summary["key"])
    if not isinstance(stored, storage.JsonObject) or not stored.document:
        return None
    coarsest = min(stored.document, key=int)
    return {**stored.document[coarsest], "source": summary["source"]}
