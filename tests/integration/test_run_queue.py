"""Processing concurrency per artist (functions.domain.intake.run_queue, docs/limits.md): at most
``max_running_workflows`` of an artist's track workflows run; further finalized uploads wait,
unstarted, and start as slots free: at a verdict, or by the sweeper when a hand-off was lost."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from functions import clients
from functions.domain.intake import run_queue
from functions.domain.processing import sweeper
from local.runner import WorkflowRunner

from .conftest import Stack, _running, as_user
from .test_track_versions import until_version_settled, version_intent
from .test_workflow import execution_ended, processed, upload_and_finalize, wait_for


@pytest.fixture
def cap(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    def set_(value: int) -> None:
        monkeypatch.setenv("TRACKLANE_MAX_RUNNING_WORKFLOWS", str(value))
        clients.reset()

    return set_


class Runners:
    """The workflow runner, started and stopped when the test says (executions wait on their first
    Task meanwhile: every run a test starts is still running when it looks)."""

    def __init__(self, stack: Stack) -> None:
        self._stack = stack
        self._running: list[Iterator[WorkflowRunner]] = []

    def start(self) -> None:
        stack = self._stack
        running = _running(WorkflowRunner(stack.sqs, stack.sfn, stack.resources.tasks_queue_url, wait_s=1), stack)
        next(running)
        self._running.append(running)

    def stop(self) -> None:
        """Returns once no runner polls the task queue any more."""
        while self._running:
            next(self._running.pop(), None)


@pytest.fixture
def runners(stack: Stack) -> Iterator[Runners]:
    started = Runners(stack)
    yield started
    started.stop()


@pytest.fixture
def aborted(monkeypatch: pytest.MonkeyPatch) -> Callable[[dict], None]:
    """Makes Step Functions tell the sweeper an upload's execution was stopped (moto cannot stop one
    that waits on a callback cleanly: tests/integration/test_sweeper.py)."""
    stopped: set[str] = set()
    real = sweeper.sfn()

    class Described:
        def describe_execution(self, **request: Any) -> dict:
            described = dict(real.describe_execution(**request))
            return {**described, "status": "ABORTED"} if described["name"] in stopped else described

    monkeypatch.setattr(sweeper, "sfn", Described)
    return lambda upload: stopped.add(upload["uploadId"].removeprefix("upl_"))


def executions_of(stack: Stack, uploads: list[dict]) -> dict[str, str]:
    """{uploadId: execution status} for those uploads that have an execution."""
    names = {upload["uploadId"].removeprefix("upl_"): upload["uploadId"] for upload in uploads}
    return {names[e["name"]]: e["status"] for e in stack.executions() if e["name"] in names}


def finalize_together(stack: Stack, user: str, paths: list[Path]) -> tuple[list[dict], list[dict]]:
    """Intents for every file, PUT, then every finalize at once. (uploads, finalize answers)"""
    uploads = [stack.create_upload(user, path) for path in paths]
    for upload, path in zip(uploads, paths, strict=True):
        assert stack.put(upload["signedUrl"], path, content_type="audio/wav") == 200
    answers: list[Any] = [None] * len(uploads)
    barrier = threading.Barrier(len(uploads))

    def finalize(index: int) -> None:
        barrier.wait()
        answers[index] = stack.api.post(f"/v1/uploads/{uploads[index]['uploadId']}/finalize", headers=as_user(user))

    threads = [threading.Thread(target=finalize, args=(i,)) for i in range(len(uploads))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return uploads, [answer.json() for answer in answers]


def status_of(stack: Stack, user: str, upload: dict) -> dict:
    return dict(stack.api.get(f"/v1/tracks/{upload['trackId']}/processing-status", headers=as_user(user)).json())


def test_the_third_of_three_simultaneous_uploads_waits_then_runs(stack, artist, cap, runners, distinct_wav):
    cap(2)
    uploads, answers = finalize_together(stack, artist, [distinct_wav() for _ in range(3)])

    assert all(answer["status"] == "finalized" for answer in answers), answers
    assert sorted(answer["workflowStatus"] for answer in answers) == ["queued", "running", "running"]
    waiting = next(u for u, a in zip(uploads, answers, strict=True) if a["workflowStatus"] == "queued")
    started = [u for u in uploads if u is not waiting]
    # Two executions, none for the waiting upload; it is told apart everywhere the owner looks.
    assert executions_of(stack, uploads) == {u["uploadId"]: "RUNNING" for u in started}
    status = status_of(stack, artist, waiting)
    assert (status["status"], status["workflowStatus"]) == ("processing", "queued")
    again = stack.api.post(f"/v1/uploads/{waiting['uploadId']}/finalize", headers=as_user(artist)).json()
    assert (again["status"], again["workflowStatus"]) == ("already_finalized", "queued")
    assert waiting["uploadId"] not in executions_of(stack, uploads)  # a repeated finalize starts nothing
    usage = stack.api.get("/v1/me/usage", headers=as_user(artist)).json()
    assert (usage["runningWorkflows"], usage["queuedWorkflows"], usage["maxRunningWorkflows"]) == (2, 1, 2)

    runners.start()
    for upload in uploads:
        assert processed(stack, artist, upload)["workflowStatus"] == "succeeded"
        execution_ended(stack, upload)
    # The waiting upload ran once a slot freed, and everything is given back.
    assert executions_of(stack, uploads) == {u["uploadId"]: "SUCCEEDED" for u in uploads}
    assert (run_queue.running(artist), run_queue.waiting(artist), list(run_queue.slots(artist))) == (0, 0, [])


def test_a_version_waits_for_a_slot_like_a_first_upload(stack, artist, cap, runners, distinct_wav):
    runners.start()
    first = upload_and_finalize(stack, artist, distinct_wav())
    processed(stack, artist, first)
    runners.stop()
    cap(1)
    # Another track takes the only slot (its run waits for a runner), so the version queues.
    busy = upload_and_finalize(stack, artist, distinct_wav())
    version = distinct_wav()
    created = version_intent(stack, artist, first["trackId"], version).json()
    assert stack.put(created["signedUrl"], version, content_type="audio/wav") == 200
    answer = stack.api.post(created["finalizeUrl"], headers=as_user(artist)).json()
    assert (answer["status"], answer["workflowStatus"]) == ("finalized", "queued")
    assert created["uploadId"] not in executions_of(stack, [created])

    runners.start()
    processed(stack, artist, busy)
    live = until_version_settled(stack, artist, first["trackId"], created["uploadId"])
    assert live["uploadId"] == created["uploadId"]
    execution_ended(stack, created)
    assert (run_queue.running(artist), run_queue.waiting(artist)) == (0, 0)


def test_the_sweeper_starts_a_waiting_upload_whose_hand_off_was_lost(stack, artist, cap, aborted, distinct_wav):
    cap(1)
    holder = upload_and_finalize(stack, artist, distinct_wav())
    waiting = upload_and_finalize(stack, artist, distinct_wav())
    assert status_of(stack, artist, waiting)["workflowStatus"] == "queued"
    aborted(holder)  # its run ended without a verdict: the slot was never handed on
    assert waiting["uploadId"] not in executions_of(stack, [waiting])

    report = sweeper.sweep(older_than_s=0)

    # The holder's track is settled and its slot handed on, by its verdict or by the repair of the
    # waiting track's owner, whichever the sweep reaches first (the index is sharded): once.
    assert report.settled_failed == 1
    assert report.handed_on + report.slots_freed in {0, 2}
    assert executions_of(stack, [waiting]) == {waiting["uploadId"]: "RUNNING"}
    assert status_of(stack, artist, waiting)["workflowStatus"] == "running"
    assert (run_queue.running(artist), run_queue.waiting(artist)) == (1, 0)
    assert sweeper.sweep(older_than_s=0).handed_on == 0  # once


def test_a_slot_whose_run_ended_without_a_verdict_is_freed_for_the_waiting_upload(
    stack, artist, cap, aborted, distinct_wav
):
    cap(1)
    holder = upload_and_finalize(stack, artist, distinct_wav())
    waiting = upload_and_finalize(stack, artist, distinct_wav())
    aborted(holder)
    # The holder's track was settled already (its index entry gone) but its slot was kept: only the
    # waiting track shows the sweeper anything.
    sweeper._leave_index(holder["trackId"].removeprefix("trk_"))

    report = sweeper.sweep(older_than_s=0)

    assert (report.waiting, report.slots_freed, report.handed_on) == (1, 1, 1)
    assert executions_of(stack, [waiting]) == {waiting["uploadId"]: "RUNNING"}
    assert [slot.upload_id for slot in run_queue.slots(artist)] == [waiting["uploadId"].removeprefix("upl_")]


def test_racing_hand_offs_start_a_waiting_upload_once(stack, artist, cap, distinct_wav):
    cap(1)
    holder = upload_and_finalize(stack, artist, distinct_wav())
    waiting = [upload_and_finalize(stack, artist, distinct_wav()) for _ in range(3)]
    assert run_queue.release(artist, holder["uploadId"].removeprefix("upl_"))
    assert not run_queue.release(artist, holder["uploadId"].removeprefix("upl_"))  # a repeated verdict
    started: list[list[str]] = []
    barrier = threading.Barrier(6)

    def hand_off() -> None:
        barrier.wait()
        started.append(run_queue.hand_off(artist, stack.resources.state_machine_arn))

    threads = [threading.Thread(target=hand_off) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # One slot was free: the oldest waiting upload got it, once.
    assert sorted(uploaded for each in started for uploaded in each) == [waiting[0]["uploadId"].removeprefix("upl_")]
    assert executions_of(stack, waiting) == {waiting[0]["uploadId"]: "RUNNING"}
    assert (run_queue.running(artist), run_queue.waiting(artist)) == (1, 2)


def test_a_waiting_upload_whose_track_was_deleted_is_dropped(stack, artist, cap, distinct_wav):
    cap(1)
    holder = upload_and_finalize(stack, artist, distinct_wav())
    waiting = upload_and_finalize(stack, artist, distinct_wav())
    assert stack.api.delete(f"/v1/tracks/{waiting['trackId']}", headers=as_user(artist)).status_code == 204
    run_queue.release(artist, holder["uploadId"].removeprefix("upl_"))

    assert run_queue.hand_off(artist, stack.resources.state_machine_arn) == []
    assert executions_of(stack, [waiting]) == {}
    assert (run_queue.running(artist), run_queue.waiting(artist)) == (0, 0)


def test_a_waiting_upload_shows_every_lane_queued(stack, artist, cap, distinct_wav):
    cap(1)
    upload_and_finalize(stack, artist, distinct_wav())
    waiting = upload_and_finalize(stack, artist, distinct_wav())
    wait_for(lambda: status_of(stack, artist, waiting), until=lambda s: s["workflowStatus"] == "queued")
    assert {lane["state"] for lane in status_of(stack, artist, waiting)["lanes"]} == {"queued"}
