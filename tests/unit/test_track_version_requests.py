"""Track versions without the network: what a version intent accepts, where a version's files go,
how its run is told apart from an original's, and the history a swap leaves. Any write the code
under test attempted would fail here (sockets are refused)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from functions.data import keys
from functions.data.models import TrackModel, UploadModel
from functions.domain.intake import executions, versions
from functions.domain.processing import external, steps, verdict
from functions.errors import EmptyFile, FileTooLarge, UnsupportedMediaType

Spec = versions.FileSpec
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("file_name", "content_type"),
    [("v2.wav", "audio/wav"), ("V2.FLAC", "Audio/FLAC"), ("v2.mp3", "audio/mpeg"), ("v2.m4a", "audio/mp4")],
)
def test_a_version_accepts_what_an_original_does(file_name, content_type):
    assert versions.validate(Spec(file_name, content_type, 1000)) == file_name.rsplit(".")[-1].lower()


@pytest.mark.parametrize(
    ("spec", "error", "field"),
    [
        (Spec("v2.wav", "audio/mpeg", 1000), UnsupportedMediaType, "contentType"),
        (Spec("v2.png", "image/png", 1000), UnsupportedMediaType, "fileName"),
        (Spec("v2.wav", "audio/wav", 0), EmptyFile, "byteSize"),
    ],
)
def test_a_version_refuses_what_an_original_does(spec, error, field):
    with pytest.raises(error) as refused:
        versions.validate(spec)
    assert refused.value.details["field"] == field


def test_a_version_is_capped_at_500_mb_like_an_original():
    versions.validate(Spec("v2.wav", "audio/wav", 524_288_000))
    with pytest.raises(FileTooLarge) as too_large:
        versions.validate(Spec("v2.wav", "audio/wav", 524_288_001))
    assert too_large.value.details == {"limit": 524_288_000}


def test_a_versions_files_sit_apart_from_the_live_ones_under_the_track_prefix():
    live = {keys.rendition("t", "aac", "m4a"), keys.waveform("t")}
    pending = {keys.rendition("t", "aac", "m4a", version="v2"), keys.waveform("t", version="v2")}
    assert live.isdisjoint(pending)
    assert all(key.startswith(keys.version_prefix("t", "v2")) for key in pending)
    assert keys.version_prefix("t", "v2").startswith(keys.track_prefix("t"))  # a track delete sweeps it
    # Its original is under uploads/, so its put event finalizes it.
    assert keys.upload_id_from_key(keys.original("v2", "wav")) == "v2"


def _upload(intent: str) -> UploadModel:
    return UploadModel(
        "v2", owner_id="alice", track_id="t", asset_id="a", intent=intent, object_key="uploads/v2/original.wav"
    )


def test_a_version_runs_the_whole_workflow_with_its_upload_id_as_the_version():
    assert executions.workflow_input(_upload(versions.TRACK_VERSION)) == {
        "uploadId": "v2",
        "trackId": "t",
        "ownerId": "alice",
        # The copy finalize verified and kept under the track, never the signed URL's key.
        "objectKey": "tracks/t/uploaded/v2/original.wav",
        "run": "track",
        "version": "v2",
    }
    assert "version" not in executions.workflow_input(_upload("track_original"))


def test_a_version_does_not_make_the_track_playable_early():
    # No network: any write to the track would raise.
    assert verdict.mark_playable({"trackId": "t", "ownerId": "alice", "version": "v2"}) == {"status": "pending"}


def test_a_version_keeps_the_tracks_artwork():
    with pytest.raises(external.LaneSkipped) as skipped:
        steps._artwork({"trackId": "t", "version": "v2", "objectKey": "uploads/v2/original.wav"})
    assert skipped.value.code == "version_keeps_artwork"


def _track(status: str, history: list[dict] | None = None) -> TrackModel:
    return TrackModel(
        "t",
        TrackModel.TRACK_SK,
        owner_id="alice",
        upload_id="v1",
        title="Song",
        status=status,
        duration_ms=3000,
        failure_code="audio_unreadable" if status == "failed" else None,
        failure_message="Not audio." if status == "failed" else None,
        created_at=NOW - timedelta(days=1),
        versions=history,
    )


PENDING = {"uploadId": "v2", "createdAt": NOW.isoformat()}


def test_a_swap_marks_the_first_original_replaced_and_the_version_live():
    history = versions._history_after_promote(_track("ready"), PENDING, {"duration_ms": 5000}, NOW)
    assert [(e["uploadId"], e["status"], e["replacedAt"], e["durationMs"]) for e in history] == [
        ("v1", "replaced", NOW.isoformat(), 3000),
        ("v2", "live", None, 5000),
    ]


def test_a_failed_original_stays_failed_in_the_history_when_a_version_replaces_it():
    history = versions._history_after_promote(_track("failed"), PENDING, {"duration_ms": 5000}, NOW)
    assert [(e["uploadId"], e["status"]) for e in history] == [("v1", "failed"), ("v2", "live")]
    assert history[0]["failure"] == {"code": "audio_unreadable", "message": "Not audio."}


def test_the_history_is_bounded_to_the_newest_entries():
    old = [{"uploadId": f"old{n}", "status": "replaced"} for n in range(versions.MAX_HISTORY)]
    current = {"uploadId": "v1", "status": "live"}
    history = versions._history_after_promote(_track("ready", [*old, current]), PENDING, {}, NOW)
    assert len(history) == versions.MAX_HISTORY
    assert [e["uploadId"] for e in history[-2:]] == ["v1", "v2"]
    assert history[-2]["status"] == "replaced"


def test_a_track_that_never_had_a_version_shows_its_original_as_live():
    (record,) = versions.history(_track("ready"))
    assert (record.upload_id, record.status, record.duration_ms, record.replaced_at) == ("v1", "live", 3000, None)
    assert versions.history(_track("processing")) == []
