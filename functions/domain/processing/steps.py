"""Workflow step implementations: the processing Lambda and the local runner both call ``run``.

Each lane records its own state (running, attempts, succeeded/failed/skipped with a user-facing
message) so processing-status tells the truth while the workflow runs, on AWS and locally alike.

mutagen (tags), Pillow (artwork) and numpy (embeddings), and the media and domain code only one
lane uses, are imported by that lane: every step runs in the same processing function, and the
other steps' cold starts skip them.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from functions.data import keys, reads, storage
from functions.data.models import LaneModel, TrackModel
from functions.domain.catalog import embeddings, listing, tracks, usage, waveforms
from functions.domain.intake import versions
from functions.domain.processing import external
from functions.domain.processing.verdict import mark_failed, mark_playable, mark_ready
from functions.errors import TrackDeleted, VersionDiscarded
from functions.media import ffmpeg, transcode
from functions.observability import logger
from functions.settings import settings
from functions.step_errors import StepFailed, ThrottledStepError, TransientStepError
from functions.throttling import is_throttle
from functions.workflow.definition import rendition_lane

if TYPE_CHECKING:
    from functions.media import artwork, tags

StepInput = dict[str, Any]
Step = Callable[[StepInput], Any]
SOURCE_URL_TTL_S = 3600


class LaneSuperseded(Exception):
    """The lane's input was replaced while it ran (a newer image): the run that replaced it owns the
    lane's state, so this one ends without writing it."""


def _lane(name: str, work: Callable[[StepInput], dict[str, Any]], *, done_message: str | None = None) -> Step:
    """Wraps a lane's work with its bookkeeping: running -> succeeded (with ``done_message``) |
    skipped | failed (permanent), or still running with a message (transient: the Retry policy calls
    it again). A track deleted while the lane ran fails it for good (``track_deleted``), see
    ``_deleted``."""

    def step(payload: StepInput) -> dict[str, Any]:
        try:
            return bookkept(payload)
        except TrackDeleted as deleted:
            raise _deleted(payload["trackId"], name) from deleted
        except LaneSuperseded:
            logger.info("lane superseded", extra={"lane": name, "track_id": payload["trackId"]})
            return {"superseded": True}

    def bookkept(payload: StepInput) -> dict[str, Any]:
        track_id = payload["trackId"]
        attempt = tracks.lane_started(track_id, name)
        try:
            outputs = work(payload)
        except external.LaneSkipped as skipped:
            tracks.lane_finished(track_id, name, state="skipped", code=skipped.code, message=skipped.message)
            return {"skipped": skipped.code}
        except StepFailed as failure:
            tracks.lane_finished(track_id, name, state="failed", code=failure.code, message=failure.message)
            raise
        except (TransientStepError, ffmpeg.FfmpegTimeout, BotoCoreError, ClientError) as error:
            tracks.lane_retrying(track_id, name, f"Attempt {attempt} hit a temporary problem; retrying.")
            logger.warning("transient lane error", extra={"lane": name, "attempt": attempt, "error": str(error)})
            raise TransientStepError(str(error)) from error
        tracks.lane_finished(track_id, name, state="succeeded", message=done_message, outputs=outputs)
        return outputs

    return step


def _deleted(track_id: str, lane: str) -> StepFailed:
    """The track was deleted while this lane ran. Every lane stores its objects before it writes the
    track, and that write is what failed, so anything it stored after the delete swept the track's
    prefix is swept here (MarkReady/MarkFailed sweep once more). Permanent: nothing to retry."""
    swept = storage.delete_prefix(keys.track_prefix(track_id))
    logger.info("lane stopped: track deleted", extra={"lane": lane, "track_id": track_id, "objects_swept": swept})
    return StepFailed("track_deleted", "The track was deleted while it was being processed.")


def _store(payload: StepInput, **outputs: Any) -> None:
    """Records a lane's results (``versions.OUTPUTS`` names): on the track for its original; for a
    new version (``"version"`` in the input) beside the live one, which listeners keep getting
    until MarkReady swaps the whole version in."""
    version = payload.get("version")
    if not version:
        tracks.update(payload["trackId"], *(versions.OUTPUTS[name].set(value) for name, value in outputs.items()))
        return
    try:
        versions.store_outputs(payload["trackId"], version, outputs)
    except VersionDiscarded as discarded:
        raise StepFailed(discarded.code, discarded.message) from discarded


def _source(payload: StepInput) -> str:
    """A presigned GET: ffmpeg streams the original from S3, never holding it in memory."""
    return storage.presign_get(payload["objectKey"], expires_in=SOURCE_URL_TTL_S)


def _probe(payload: StepInput) -> dict[str, Any]:
    from functions.media import probe

    current = settings()
    facts = probe.probe(_source(payload), min_ms=current.min_audio_ms, max_ms=current.max_audio_ms)
    _store(payload, audio=facts.to_json(), duration_ms=facts.duration_ms)
    return facts.to_json()


def _encode_and_store(payload: StepInput, specs: tuple[transcode.RenditionSpec, ...]) -> dict[str, dict[str, Any]]:
    """Encodes ``specs`` from the original and stores each file; returns what to record, by format."""
    track_id = payload["trackId"]
    # /tmp holds the renditions only while they upload; the directory is removed either way.
    with tempfile.TemporaryDirectory(prefix="transcode-") as scratch:
        made = transcode.transcode(_source(payload), Path(scratch), specs=specs)
        renditions: dict[str, dict[str, Any]] = {}
        for rendition in made:
            spec = rendition.spec
            key = keys.rendition(track_id, spec.format, spec.extension, version=payload.get("version"))
            storage.upload_file(rendition.path, key, content_type=spec.content_type)
            renditions[spec.format] = {
                "key": key,
                "contentType": spec.content_type,
                "codec": spec.codec,
                "bitrateKbps": spec.bitrate_kbps,
                "byteSize": rendition.byte_size,
            }
    return renditions


def _rendition(spec: transcode.RenditionSpec) -> Callable[[StepInput], dict[str, Any]]:
    """One rendition's lane: its own task, so on AWS its own Lambda and CPU. The first rendition
    stored makes the track playable at once, from this task."""

    def work(payload: StepInput) -> dict[str, Any]:
        made = _encode_and_store(payload, (spec,))[spec.format]
        _store(payload, **{TrackModel.RENDITION_ATTRIBUTES[spec.format]: made})
        _count(payload, {spec.format: made})
        try:
            mark_playable(payload)
        except (BotoCoreError, ClientError):
            # The rendition is stored, which is what this lane is for; MarkReady sets the status
            # when the workflow ends. Retrying the lane would encode it again for a status write.
            logger.exception("rendition stored, track not marked playable yet", extra={"format": spec.format})
        return {"rendition": made}

    return work


def _transcode_all(payload: StepInput) -> dict[str, Any]:
    """The three renditions in one task, as executions started before each had its own still ask
    (Step Functions runs an execution on the definition it started with)."""
    renditions = _encode_and_store(payload, transcode.RENDITIONS)
    _store(payload, renditions=renditions)
    _count(payload, renditions)
    return {"renditions": renditions}


def _count(payload: StepInput, renditions: dict[str, dict[str, Any]]) -> None:
    """Stored renditions of the track's original count in its owner's storage usage; a version's
    count when the version replaces the live one (``versions.promote``)."""
    if payload.get("version"):
        return
    for fmt, made in renditions.items():
        usage.count_rendition(payload["ownerId"], payload["trackId"], fmt, int(made["byteSize"]))


def _waveform(payload: StepInput) -> dict[str, Any]:
    from functions.media import waveform

    track_id = payload["trackId"]
    facts = payload["probe"]
    peaks = waveform.waveform(
        _source(payload),
        duration_ms=facts["durationMs"],
        sample_rate_hz=facts["sampleRateHz"],
        channels=facts["channels"],
        background=True,  # optional lane: yields the CPU to the renditions where they share cores
    )
    key = keys.waveform(track_id, version=payload.get("version"))
    document = {str(buckets): peaks.to_json(buckets) for buckets in sorted(peaks.peaks)}
    # The measured peaks replace the client's advisory ones on the track.
    _store(payload, waveform=waveforms.analysis(key, document))
    return {"key": key, "buckets": sorted(peaks.peaks)}


def _loudness(payload: StepInput) -> dict[str, Any]:
    from functions.media import loudness

    measured = loudness.loudness(_source(payload), background=True)
    _store(payload, loudness=measured.to_json())
    return measured.to_json()


def _tags(payload: StepInput) -> dict[str, Any]:
    """Reads the original's embedded tags with ranged GETs (tags sit at either end of a file; the
    audio between is never fetched) and fills what the uploader left empty."""
    track_id, key = payload["trackId"], payload["objectKey"]
    stored = storage.head(key)
    if stored is None:
        raise StepFailed("original_missing", "The original file is no longer in storage.")
    from functions.domain.catalog import track_mutations
    from functions.media import tags  # mutagen: this lane's alone

    with storage.open_ranged(key, size=stored.size) as fileobj:
        found = tags.read(fileobj)
    if payload.get("version"):
        # A new version keeps the track's metadata and artwork (the owner's, edited since): its
        # tags are recorded, and go live with the version, but fill nothing.
        _store(payload, embedded_tags=found.fields())
        return {"container": found.container, "found": found.fields(), "applied": []}
    applied = tracks.apply_embedded_tags(track_id, found)
    if found.album and track_mutations.join_tagged_album(track_id, found.album) is not None:
        applied.append("album")
    outputs: dict[str, Any] = {"container": found.container, "found": found.fields(), "applied": applied}
    if found.cover is not None:
        outputs["cover"] = _keep_embedded_cover(track_id, found.cover)
    elif found.cover_note:
        outputs["cover"] = {"used": False, "note": found.cover_note}
    return outputs


def _keep_embedded_cover(track_id: str, cover: tags.EmbeddedCover) -> dict[str, Any]:
    """Stores the cover as the artwork lane's source unless the track already has an image: an
    uploaded image wins. The object is written first and removed if the offer loses, so the track
    never points at an image that is not there."""
    extension, content_type = cover.kind()
    key = keys.embedded_cover(track_id, extension)
    storage.put_bytes(key, cover.data, content_type=content_type)
    used = tracks.offer_image(track_id, {"key": key, "origin": "embedded", "contentType": content_type})
    if not used:
        storage.delete(key)
    return {"used": used, "contentType": content_type, "byteSize": len(cover.data)}


def _artwork_record(origin: str | None, made: artwork.Artwork, variants: list[dict[str, Any]]) -> dict[str, Any]:
    """What a track's or album's ``artwork`` holds once its image is rendered."""
    return {
        "origin": origin,
        "sourceFormat": made.source_format,
        "width": made.source_width,
        "height": made.source_height,
        "variants": variants,
    }


def _artwork(payload: StepInput) -> dict[str, Any]:
    """Renders the track's image (uploaded, or the cover the tags lane found) into square variants.
    A bad image fails this lane only: the audio is unaffected.

    The image may be replaced while this runs (an upload, a removal). The record is written only
    if the image rendered is still the track's, and what it replaced (older variants, which may
    be larger than the new image allows; an embedded cover an upload replaced) is deleted after;
    a render that lost deletes its own variants instead."""
    from functions.domain.intake import media_uploads

    track_id = payload["trackId"]
    if payload.get("version"):
        raise external.LaneSkipped("version_keeps_artwork", "A new version keeps the track's artwork.")
    track = tracks.find(track_id)
    source = track.image_source if track else None
    if track is None or not source:
        raise external.LaneSkipped("no_image", "No image was uploaded and the audio has no embedded cover.")
    stored = storage.head(source["key"])
    if stored is None:
        if media_uploads.image_replaced(track_id, source):
            raise LaneSuperseded()
        raise StepFailed("image_missing", "The image is no longer in storage; upload it again.")
    version = source.get("uploadId")
    made, variants = _render(
        source["key"], stored.size, lambda size, ext: keys.artwork_variant(track_id, size, ext, version=version)
    )
    record = _artwork_record(source.get("origin"), made, variants)
    written = [variant["key"] for variant in variants]
    if not media_uploads.store_track_artwork(track_id, source, record, owner_id=track.owner_id):
        for key in written:
            storage.delete(key)
        raise LaneSuperseded()
    storage.delete_prefix(keys.artwork_prefix(track_id), keep=[source["key"], *written])
    return record


def _render(
    source_key: str, byte_size: int, key_of: Callable[[int, str], str]
) -> tuple[artwork.Artwork, list[dict[str, Any]]]:
    """Downloads an image, renders its variants and stores each at ``key_of(size, extension)``."""
    from functions.media import artwork  # Pillow: the artwork and album cover lanes' alone

    if byte_size > artwork.MAX_IMAGE_BYTES:
        # Refused before it is downloaded.
        raise StepFailed("image_too_large", f"The image is over {artwork.MAX_IMAGE_BYTES // (1024 * 1024)} MB.")
    with tempfile.TemporaryDirectory(prefix="artwork-") as scratch:
        original = Path(scratch) / "source"
        storage.download(source_key, original)
        made = artwork.render(original, Path(scratch) / "variants")
        variants = []
        for variant in made.variants:
            key = key_of(variant.size, variant.path.suffix.lstrip("."))
            storage.upload_file(variant.path, key, content_type=variant.content_type)
            variants.append({**variant.to_json(), "key": key})
    return made, variants


_artwork_lane = _lane("artwork", _artwork)


def _artwork_upload(payload: StepInput) -> dict[str, Any]:
    """The artwork lane alone, for an image uploaded to a track (``run: artwork``). An execution
    whose image a newer upload replaced before it started leaves the lane to that upload's run."""
    track = tracks.find(payload["trackId"])
    if track is None or (track.image_source or {}).get("uploadId") != payload["uploadId"]:
        logger.info("artwork run superseded", extra={"upload_id": payload["uploadId"]})
        return {"superseded": True}
    return dict(_artwork_lane(payload))


def _artwork_stopped(payload: StepInput) -> dict[str, Any]:
    """Catch of the artwork-only run: a lane it left queued or running (retries exhausted, a
    timeout) is closed as failed, as MarkReady/MarkFailed do for a whole workflow."""
    track_id = payload["trackId"]
    lane = reads.get_or_none(LaneModel, track_id, LaneModel.sort_key("artwork"), consistent_read=True)
    if lane is not None and lane.state in {"queued", "running"}:
        error_name = (payload.get("failure") or {}).get("Error")
        message = (
            "This step took too long and was stopped."
            if error_name == "States.Timeout"
            else "This step kept failing and was stopped. Upload the image again."
        )
        with contextlib.suppress(TrackDeleted):  # deleted meanwhile: its lanes are gone too
            tracks.lane_finished(track_id, "artwork", state="failed", code="processing_stopped", message=message)
    return {"closed": lane is not None}


def _album_cover(payload: StepInput) -> dict[str, Any]:
    """Renders an album's uploaded cover (``run: album_cover``) into the album's ``artwork`` and
    bumps its revision. Only the cover this execution's upload made is rendered; a newer one has
    its own execution. An album has no lanes: a failure shows in the execution (and the log)."""
    try:
        return _render_album_cover(payload)
    except (BotoCoreError, ClientError) as error:
        raise TransientStepError(str(error)) from error


def _render_album_cover(payload: StepInput) -> dict[str, Any]:
    from functions.domain.catalog import albums
    from functions.domain.intake import media_uploads

    album_id, upload_id = payload["albumId"], payload["uploadId"]
    album = albums.find(album_id)
    source = album.image_source if album else None
    if album is None or not source or source.get("uploadId") != upload_id:
        logger.info("album cover run superseded", extra={"upload_id": upload_id})
        return {"superseded": True}
    stored = storage.head(source["key"])
    if stored is None:
        raise StepFailed("image_missing", "The image is no longer in storage; upload it again.")
    made, variants = _render(
        source["key"], stored.size, lambda size, ext: keys.album_cover_variant(album_id, upload_id, size, ext)
    )
    record = _artwork_record("upload", made, variants)
    written = [variant["key"] for variant in variants]
    if not media_uploads.store_album_cover(album_id, source, record, owner_id=album.owner_id):
        for key in written:
            storage.delete(key)
        return {"superseded": True}
    storage.delete_prefix(keys.album_cover_prefix(album_id), keep=written)
    return record


def _embeddings(payload: StepInput) -> dict[str, Any]:
    from functions.media import embedding  # numpy: this lane's alone

    made = embedding.embed(_source(payload), background=True)
    # The vector goes to its own item; the track keeps a summary pointing at it.
    original = payload.get("version") or payload["uploadId"]
    _store(payload, embedding=embeddings.store(payload["trackId"], original, made.to_json()))
    if not payload.get("version"):
        # With a vector, a listed tagged track becomes an example the autotag lane learns from.
        listing.sync(payload["trackId"])
    # The vector itself stays out of the task result (a hundred numbers of no use to read).
    return {"version": made.version, "dimensions": len(made.vector), "analysedMs": made.analysed_ms}


def _autotag(payload: StepInput) -> dict[str, Any]:
    """Recommends genre tags from the nearest tagged public tracks (``functions.domain.processing.autotag``)
    and, when the uploader asked for ``autoTag``, adds them to the track's tags."""
    from functions.domain.processing import autotag

    if payload.get("version"):
        raise external.LaneSkipped("version_keeps_metadata", "A new version keeps the track's tags.")
    track = tracks.find(payload["trackId"])
    if track is None:
        raise TrackDeleted("The track was deleted.", trackId=payload["trackId"])
    vector = embeddings.vector_of(track)
    if not vector:
        raise external.LaneSkipped("no_embedding", "The embeddings step produced no sound profile to compare.")
    examples = autotag.reference_examples(track.track_id, limit=settings().autotag_examples_max)
    if not examples:
        raise external.LaneSkipped("no_reference_tracks", "There are no tagged public tracks to learn from yet.")
    suggestions = autotag.suggest(vector, examples)
    applied = autotag.apply(track.track_id, suggestions) if track.auto_tag else []
    return {
        "classifier": autotag.CLASSIFIER,
        "compared": len(examples),
        "suggestions": [suggestion.to_json() for suggestion in suggestions],
        "autoTag": bool(track.auto_tag),
        "applied": applied,
    }


def _external(lane: str, url_of: Callable[[], str | None]) -> Callable[[StepInput], dict[str, Any]]:
    def work(payload: StepInput) -> dict[str, Any]:
        request = {
            "trackId": payload["trackId"],
            "audioUrl": _source(payload),
            "durationMs": (payload.get("probe") or {}).get("durationMs"),
        }
        result = external.call(url_of(), lane=lane, payload=request, timeout_s=settings().processor_timeout_s)
        return _kept_result(payload, lane, result)

    return work


def _kept_result(payload: StepInput, lane: str, result: dict[str, Any]) -> dict[str, Any]:
    """The processor's answer as the lane keeps it: itself when small, else stored in S3 and
    referenced (``tracks.STORED_RESULT``), read through ``GET .../lanes/{lane}/result``."""
    size = len(json.dumps(result, separators=(",", ":")).encode())
    if size <= external.INLINE_RESULT_MAX_BYTES:
        return result
    key = keys.lane_result(payload["trackId"], lane, version=payload.get("version"))
    storage.put_json(key, result)
    return {tracks.STORED_RESULT: {"key": key, "byteSize": size}}


STEPS: dict[str, Step] = {
    "probe": _lane("probe", _probe),
    **{
        rendition_lane(spec.format): _lane(
            rendition_lane(spec.format), _rendition(spec), done_message="ready to stream."
        )
        for spec in transcode.RENDITIONS
    },
    "transcode": _lane("transcode", _transcode_all),
    "waveform": _lane("waveform", _waveform),
    "loudness": _lane("loudness", _loudness),
    "tags": _lane("tags", _tags),
    "artwork": _artwork_lane,
    "artwork_upload": _artwork_upload,
    "artwork_stopped": _artwork_stopped,
    "album_cover": _album_cover,
    "embeddings": _lane("embeddings", _embeddings),
    "autotag": _lane("autotag", _autotag),
    "stems": _lane("stems", _external("stems", lambda: settings().stems_processor)),
    "lyrics": _lane("lyrics", _external("lyrics", lambda: settings().lyrics_processor)),
    # Executions started before each rendition had its own task still run a MarkPlayable state.
    "mark_playable": mark_playable,
    "mark_ready": mark_ready,
    "mark_failed": mark_failed,
}


def run(step: str, payload: StepInput) -> Any:
    if step not in STEPS:
        raise StepFailed("unknown_step", f"No workflow step named '{step}'.")
    try:
        return STEPS[step](payload)
    except ThrottledStepError:
        raise
    except Exception as error:
        # However it surfaced (a pynamodb error wrapping it, a lane's TransientStepError), a
        # throttle is retried patiently by the workflow rather than failing the track.
        if is_throttle(error):
            raise ThrottledStepError(str(error)) from error
        raise
