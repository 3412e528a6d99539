"""The progress events are a pure function of (what the client has seen, the tables now): these
run sequences of snapshots through it, as a poller or a reconnecting client would, without AWS."""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

import pytest

from functions.domain.processing.progress import LANE_ENDED, TERMINAL, Cursor, Event, LaneState, Snapshot, events
from functions.errors import UploadAssetInvalid, UploadCancelled, UploadExpired
from functions.workflow.definition import LANES

UPLOAD, TRACK, EXISTING = "u-1", "t-1", "t-0"

PENDING = Snapshot(UPLOAD, TRACK, "pending")
FINALIZED = Snapshot(UPLOAD, TRACK, "finalized", track_status="draft", workflow_status="not_started")
QUEUED = tuple(LaneState(name, "queued") for name in LANES)
PROCESSING = replace(FINALIZED, track_status="processing", workflow_status="running", lanes=QUEUED)


def lanes(**states: str) -> tuple[LaneState, ...]:
    return tuple(LaneState(name, states.get(name, "queued")) for name in LANES)


def all_lanes(state: str) -> dict[str, str]:
    return dict.fromkeys(LANES, state)


def run(snapshots: list[Snapshot], seen: Cursor | None = None) -> list[Event]:
    """Polls the snapshots in order, carrying the cursor from one batch to the next."""
    seen = seen or Cursor.start()
    emitted: list[Event] = []
    for current in snapshots:
        batch = events(seen, current)
        emitted += batch
        if batch:
            seen = batch[-1].cursor
    return emitted


def summary(emitted: list[Event]) -> list[tuple[str, str | None, str]]:
    return [(e.phase, e.lane, e.status) for e in emitted]


def positions(emitted: list[Event]) -> list[int]:
    return [int(e.id.split(".")[0]) for e in emitted]


def strictly_increasing(values: list[int]) -> bool:
    return all(a < b for a, b in pairwise(values))


HAPPY_PATH = [
    PENDING,
    PENDING,
    FINALIZED,
    PROCESSING,
    replace(PROCESSING, lanes=lanes(probe="running")),
    replace(PROCESSING, lanes=lanes(probe="succeeded", transcode_aac="running", waveform="running")),
    # waveform ends before the AAC rendition: lanes end in any order, ids still increase
    replace(PROCESSING, lanes=lanes(probe="succeeded", transcode_aac="running", waveform="succeeded")),
    replace(PROCESSING, track_status="ready", lanes=lanes(**{**all_lanes("succeeded"), "stems": "skipped"})),
    replace(
        PROCESSING,
        track_status="ready",
        workflow_status="succeeded",
        lanes=lanes(**{**all_lanes("succeeded"), "stems": "skipped", "lyrics": "skipped"}),
    ),
]


def test_a_processed_upload_goes_validation_storage_transcoding_lanes_ready():
    emitted = run(HAPPY_PATH)

    phases = [e.phase for e in emitted]
    assert phases[:3] == ["validation", "storage", "transcoding"]
    assert set(phases[3:-1]) == {"lane"}
    assert phases[-1] == "ready"
    assert emitted[-1].terminal and emitted[-1].status == "ready" and emitted[-1].progress_pct == 100
    assert not any(e.terminal for e in emitted[:-1])
    # Each lane reports once per state it was seen in; the repeated PENDING poll added nothing.
    assert summary(emitted).count(("lane", "probe", "running")) == 1
    assert summary(emitted).count(("lane", "probe", "succeeded")) == 1
    assert summary(emitted).count(("validation", None, "waiting")) == 1
    assert ("lane", "stems", "skipped") in summary(emitted)
    assert summary(emitted).index(("lane", "waveform", "succeeded")) < summary(emitted).index(
        ("lane", "transcode_aac", "succeeded")
    )
    assert strictly_increasing(positions(emitted))
    assert len({e.id for e in emitted}) == len(emitted)


def test_an_upload_waiting_for_a_run_slot_is_stored_not_yet_transcoding():
    waiting = replace(PROCESSING, workflow_status="queued")

    assert summary(run([PENDING, FINALIZED, waiting, waiting])) == [
        ("validation", None, "waiting"),
        ("storage", None, "done"),
    ]
    # Once its run starts, the stream goes on as for any upload.
    assert summary(run([PENDING, FINALIZED, waiting, *HAPPY_PATH[3:]])) == summary(run(HAPPY_PATH))


def test_progress_pct_counts_ended_lanes():
    emitted = run(HAPPY_PATH)

    lane_pcts = [e.progress_pct or 0 for e in emitted if e.phase == "lane"]
    assert lane_pcts == sorted(lane_pcts)
    assert lane_pcts[-1] == 100
    probe_done = next(e for e in emitted if (e.lane, e.status) == ("probe", "succeeded"))
    assert probe_done.progress_pct == round(100 / len(LANES))
    assert next(e for e in emitted if e.phase == "transcoding").progress_pct == 0
    assert next(e for e in emitted if e.phase == "storage").progress_pct is None


def test_resuming_from_any_event_emits_exactly_the_later_ones():
    full = run(HAPPY_PATH)
    final = HAPPY_PATH[-1]

    for index, event in enumerate(full):
        resumed = events(Cursor.parse(event.id), final)
        # The ids after the resume point are new and increasing; nothing seen comes again.
        assert {e.id for e in resumed}.isdisjoint(e.id for e in full[: index + 1])
        assert strictly_increasing([int(event.id.split(".")[0]), *positions(resumed)])
        assert (resumed[-1].phase if resumed else None) == (None if event.terminal else "ready")


def test_a_late_client_gets_the_whole_history_at_once():
    emitted = events(Cursor.start(), HAPPY_PATH[-1])

    # Each lane jumps straight from unseen to its end: one event each.
    assert summary(emitted) == [
        ("validation", None, "waiting"),
        ("storage", None, "done"),
        ("transcoding", None, "running"),
        *[("lane", name, "skipped" if name in ("stems", "lyrics") else "succeeded") for name in LANES],
        ("ready", None, "ready"),
    ]
    assert emitted[-1].cursor == Cursor(TERMINAL, (LANE_ENDED,) * len(LANES))
    assert strictly_increasing(positions(emitted))


def test_a_failed_track_ends_with_its_failure_code_and_message():
    failed = replace(
        PROCESSING,
        track_status="failed",
        workflow_status="failed",
        failure_code="audio_unreadable",
        failure_message="This file is not audio we can read.",
        lanes=(
            LaneState("probe", "failed", "audio_unreadable", "This file is not audio we can read."),
            *(LaneState(name, "skipped", "not_run", "Not run: a required step failed.") for name in LANES[1:]),
        ),
    )

    emitted = run([PENDING, FINALIZED, PROCESSING, failed])

    assert (emitted[-1].phase, emitted[-1].code, emitted[-1].message) == (
        "failed",
        "audio_unreadable",
        "This file is not audio we can read.",
    )
    assert emitted[-1].terminal
    probe = next(e for e in emitted if e.lane == "probe")
    assert (probe.status, probe.code) == ("failed", "audio_unreadable")
    assert strictly_increasing(positions(emitted))


def test_a_duplicate_is_terminal_and_names_the_existing_track():
    duplicate = Snapshot(UPLOAD, TRACK, "duplicate", duplicate_of=EXISTING)

    emitted = run([PENDING, duplicate])

    assert summary(emitted) == [("validation", None, "waiting"), ("duplicate", None, "duplicate")]
    assert emitted[-1].terminal
    assert emitted[-1].track_id == EXISTING


def test_a_rejected_upload_fails_with_upload_asset_invalid():
    rejected = Snapshot(
        UPLOAD,
        TRACK,
        "rejected",
        ended=UploadAssetInvalid("The uploaded file does not match the upload intent: size is 3 bytes."),
    )

    emitted = run([PENDING, rejected])

    assert summary(emitted) == [("validation", None, "waiting"), ("failed", None, "failed")]
    assert emitted[-1].code == "upload_asset_invalid"
    assert "size is 3 bytes" in emitted[-1].message


@pytest.mark.parametrize(
    ("final", "code"),
    [
        (replace(PENDING, ended=UploadExpired("expired")), "upload_intent_expired"),
        (Snapshot(UPLOAD, TRACK, "gone", ended=UploadExpired("expired")), "upload_intent_expired"),
        (Snapshot(UPLOAD, TRACK, "gone"), "track_deleted"),
        (Snapshot(UPLOAD, TRACK, "cancelled", ended=UploadCancelled("cancelled")), "upload_intent_cancelled"),
        (replace(PROCESSING, track_status=None, workflow_status=None, lanes=()), "track_deleted"),
    ],
    ids=["expired", "expired-and-removed", "deleted-while-pending", "cancelled", "deleted-while-processing"],
)
def test_an_expired_or_cancelled_intent_or_a_deleted_track_is_terminal(final, code):
    emitted = run([PENDING, final])

    assert emitted[-1].terminal
    assert (emitted[-1].phase, emitted[-1].code) == ("failed", code)


def test_nothing_follows_a_terminal_event():
    emitted = run(HAPPY_PATH)

    assert events(emitted[-1].cursor, HAPPY_PATH[-1]) == []
    # Even if the tables change afterwards (an artwork upload re-queues its lane).
    assert events(emitted[-1].cursor, replace(HAPPY_PATH[-1], lanes=QUEUED)) == []


def test_a_lane_queued_again_is_not_reported_backwards():
    seen = run(HAPPY_PATH[:6])[-1].cursor

    assert events(seen, replace(PROCESSING, lanes=QUEUED)) == []


@pytest.mark.parametrize(
    "damaged", [None, "", "garbage", "3.2", "99.3222222222", "5.9000000000", "1.1" + "3" * len(LANES), "x" * 100]
)
def test_an_id_this_api_did_not_write_replays_from_the_start(damaged):
    assert Cursor.parse(damaged) == Cursor.start()


def test_an_id_round_trips():
    for event in run(HAPPY_PATH):
        assert Cursor.parse(event.id) == event.cursor
