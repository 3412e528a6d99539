"""The sweeper against moto: executions that ended without a verdict are settled, a missing one is
started, a running one is left alone, and the index it reads empties as tracks get verdicts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from functions.data.models import TrackModel, UploadModel, utcnow
from functions.domain.catalog import tracks
from functions.domain.intake import executions
from functions.domain.processing import steps, sweeper

from .conftest import as_user
from .test_lanes import lanes_by_name
from .test_workflow import processed, upload_and_finalize


def status_of(stack, user, upload) -> dict:
    return stack.api.get(f"/v1/tracks/{upload['trackId']}/processing-status", headers=as_user(user)).json()


def in_index() -> set[str]:
    return {
        entry.pk
        for shard in range(tracks.PROCESSING_SHARDS)
        for entry in TrackModel.in_processing.query(f"processing#{shard}")
    }


def execution_of(stack, upload) -> dict:
    (execution,) = [e for e in stack.executions() if e["name"] == upload["uploadId"].removeprefix("upl_")]
    return execution


def test_a_running_execution_is_left_alone_and_young_tracks_are_not_examined(stack, artist, wav_3s):
    upload = upload_and_finalize(stack, artist, wav_3s)  # no runner: the execution waits at Probe
    track_id = upload["trackId"].removeprefix("trk_")
    assert in_index() == {track_id}

    assert sweeper.sweep().examined == 0  # younger than sweep_after_s
    report = sweeper.sweep(older_than_s=0)

    assert (report.examined, report.running) == (1, 1)
    assert status_of(stack, artist, upload)["status"] == "processing"


@pytest.fixture
def execution_ends(stack, monkeypatch):
    """Makes Step Functions report the execution as ended with a given status. (moto cannot stop
    an execution that waits on a callback cleanly: its stop_execution fails the waiting Task with a
    runtime error, which the workflow's Catch then handles like any failure.)"""

    def end_with(status: str, error: str | None = None) -> None:
        real = executions.sfn()

        class Ended:
            def describe_execution(self, **request):
                described = real.describe_execution(**request)  # it must exist
                return {**described, "status": status, **({"error": error} if error else {})}

        monkeypatch.setattr(sweeper, "sfn", Ended)

    return end_with


def payload_of(upload, wav) -> dict:
    """The input the execution was started with (its original is the copy finalize kept)."""
    return dict(executions.workflow_input(UploadModel.get(upload["uploadId"].removeprefix("upl_"))))


@pytest.mark.parametrize("ending", [("TIMED_OUT", None), ("ABORTED", None), ("FAILED", "Lambda.Unknown")])
def test_an_execution_that_ended_before_any_lane_ran_leaves_a_failed_track(
    stack, artist, wav_3s, execution_ends, ending
):
    upload = upload_and_finalize(stack, artist, wav_3s)  # no runner: no lane ever starts
    execution_ends(*ending)

    report = sweeper.sweep(older_than_s=0)

    assert (report.examined, report.settled_failed) == (1, 1)
    status_now = status_of(stack, artist, upload)
    assert (status_now["status"], status_now["workflowStatus"]) == ("failed", "failed")
    assert status_now["failure"]["code"] == "processing_stopped"
    assert {lane["state"] for lane in status_now["lanes"]} == {"skipped"}  # none had started
    assert in_index() == set()
    assert sweeper.sweep(older_than_s=0).examined == 0  # settled once, not again


def test_a_timeout_after_the_required_lanes_means_ready_with_the_running_lane_closed(
    stack, artist, wav_3s, execution_ends
):
    """The workflow timed out while an optional lane was still running: the audio is playable (the
    rendition's task already made the track ``ready``, its workflow still ``running``), so the sweeper
    still examines it and settles it ready; the lane that never finished says why."""
    upload = upload_and_finalize(stack, artist, wav_3s)
    payload = payload_of(upload, wav_3s)
    payload["probe"] = steps.run("probe", payload)
    steps.run("transcode_aac", payload)
    tracks.lane_started(payload["trackId"], "waveform")  # ...and the execution ends here
    execution_ends("TIMED_OUT")

    report = sweeper.sweep(older_than_s=0)

    assert report.settled_ready == 1
    status = status_of(stack, artist, upload)
    assert status["status"] == "ready"
    lanes = lanes_by_name(status)
    assert (lanes["waveform"]["state"], lanes["waveform"]["code"]) == ("failed", "processing_stopped")
    assert lanes["waveform"]["message"] == "This step took too long and was stopped."
    assert lanes["loudness"]["state"] == "skipped"
    assert in_index() == set()


def test_an_execution_that_never_started_is_started(stack, artist, fast_runner, wav_3s, monkeypatch):
    real_sfn = executions.sfn

    class Unavailable:
        def start_execution(self, **_):
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "StartExecution")

    monkeypatch.setattr(executions, "sfn", Unavailable)
    upload = stack.create_upload(artist, wav_3s)
    stack.put(upload["signedUrl"], wav_3s, content_type="audio/wav")
    response = stack.api.post(f"/v1/uploads/{upload['uploadId']}/finalize", headers=as_user(artist))
    assert (response.status_code, response.json()["error"]["code"]) == (503, "workflow_start_failed")
    assert stack.executions() == []
    monkeypatch.setattr(executions, "sfn", real_sfn)

    report = sweeper.sweep(older_than_s=0)

    assert report.restarted == 1
    assert processed(stack, artist, upload)["status"] == "ready"
    assert len(stack.executions()) == 1


@pytest.mark.parametrize("verdict", ["ready", "failed"])
def test_stale_index_entries_are_dropped(stack, artist, wav_3s, verdict):
    """A track that has its verdict but kept its index keys (written by an older version, say) is
    taken out of the index, not settled again."""
    upload = upload_and_finalize(stack, artist, wav_3s)
    track_id = upload["trackId"].removeprefix("trk_")
    # A verdict sets both: MarkReady ready/succeeded, MarkFailed failed/failed.
    workflow = {"ready": "succeeded", "failed": "failed"}[verdict]
    tracks.update(
        track_id,
        TrackModel.status.set(verdict),
        TrackModel.workflow_status.set(workflow),
        TrackModel.processing_since.set(utcnow() - timedelta(days=1)),
    )

    report = sweeper.sweep()

    assert (report.examined, report.stale_entries) == (1, 1)
    assert in_index() == set()
    assert status_of(stack, artist, upload)["status"] == verdict
