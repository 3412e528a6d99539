"""Live progress of an upload (``GET /v1/uploads/{uploadId}/progress``): what the client is told,
as a pure function of what it has already seen and what the tables say now.

The upload moves forward through phases -- ``validation`` (intent created, waiting for and
checking the file), ``storage`` (the file is stored and finalized), ``transcoding`` (the workflow
runs; each lane reports ``running`` and then how it ended) -- and ends in exactly one terminal
event: ``ready``, ``failed`` (a processing failure, a rejected file, an expired intent, a deleted
track) or ``duplicate`` (the owner already has a track with these bytes).

What the client has seen is a ``Cursor``: the phase it has reached and, per lane, whether it saw
the lane start and end. Every event advances the cursor, and the event's SSE ``id`` is the
cursor after it: ``<position>.<phase><lane ranks>``, where ``position`` is the sum of the ranks.
So ids strictly increase, and a client that reconnects with ``Last-Event-ID`` hands back exactly
what it has seen: the same function then emits only what is new, whichever connection (or Lambda
invocation) answers. Nothing is remembered on the server between requests.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from functions.data import reads, storage
from functions.data.models import ProgressTokenModel, UploadModel, utcnow
from functions.domain import lifecycle
from functions.domain.catalog import tracks
from functions.domain.intake import uploads
from functions.errors import (
    DomainError,
    ProgressTokenExpired,
    ProgressTokenInvalid,
    TrackNotFound,
    UploadIntentNotFound,
)
from functions.settings import settings
from functions.workflow.definition import LANES

# Cursor phases, in the order an upload moves through them.
NOTHING, VALIDATION, STORAGE, TRANSCODING, TERMINAL = range(5)
PHASE_NAMES = {VALIDATION: "validation", STORAGE: "storage", TRANSCODING: "transcoding"}
# A lane's rank: what the client has seen of it.
LANE_QUEUED, LANE_RUNNING, LANE_ENDED = range(3)
_LANE_RANKS = {"queued": LANE_QUEUED, "running": LANE_RUNNING, "succeeded": LANE_ENDED}
_LANE_RANKS.update(failed=LANE_ENDED, skipped=LANE_ENDED)

# What a lane does, as a listener would say it.
LANE_LABELS = {
    "probe": "Reading the audio",
    "transcode_aac": "AAC stream",
    "transcode_opus": "Opus stream",
    "transcode_mp3": "MP3 stream",
    "transcode": "Streaming versions",
    "waveform": "Waveform",
    "loudness": "Loudness",
    "tags": "Tags",
    "artwork": "Artwork",
    "embeddings": "Sound profile",
    "stems": "Stems",
    "lyrics": "Lyrics",
}
TRACK_DELETED = "track_deleted"


@dataclass(frozen=True)
class Cursor:
    """What a client has seen: the phase it reached and the rank of each lane (in ``LANES`` order)."""

    phase: int
    lanes: tuple[int, ...]

    @classmethod
    def start(cls) -> Cursor:
        return cls(NOTHING, (LANE_QUEUED,) * len(LANES))

    @property
    def position(self) -> int:
        return self.phase + sum(self.lanes)

    @property
    def terminal(self) -> bool:
        return self.phase >= TERMINAL

    @property
    def progress_pct(self) -> int:
        ended = sum(1 for rank in self.lanes if rank >= LANE_ENDED)
        return round(100 * ended / len(self.lanes)) if self.lanes else 0

    def event_id(self) -> str:
        return f"{self.position}.{self.phase}{''.join(str(rank) for rank in self.lanes)}"

    @classmethod
    def parse(cls, event_id: str | None) -> Cursor:
        """The cursor a ``Last-Event-ID`` names. Anything this module did not write (empty, damaged,
        inconsistent) is the start: the client then gets the whole history again rather than a gap."""
        start = cls.start()
        if not event_id or len(event_id) > 64:
            return start
        position, dot, ranks = event_id.strip().partition(".")
        if not dot or not position.isdigit() or not ranks.isdigit():
            return start
        phase, lanes = int(ranks[0]), tuple(int(rank) for rank in ranks[1:])
        if phase > TERMINAL or any(rank > LANE_ENDED for rank in lanes) or int(position) != phase + sum(lanes):
            return start
        # A deployment with another set of lanes: keep what still lines up, the rest starts over.
        lanes = (lanes + start.lanes)[: len(start.lanes)]
        return cls(phase, lanes)


@dataclass(frozen=True)
class LaneState:
    name: str
    state: str
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """An upload and its track as the tables hold them now (bare ids)."""

    upload_id: str
    track_id: str
    # pending | finalized | rejected | duplicate | gone (the intent item no longer exists)
    upload_status: str
    # Why an intent ended without being processed (rejected, cancelled, expired), as every reader
    # reports it (``functions.domain.lifecycle``).
    ended: DomainError | None = None
    duplicate_of: str | None = None
    # draft | processing | ready | failed; None once the track is deleted (or not read: pending).
    track_status: str | None = None
    workflow_status: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    lanes: tuple[LaneState, ...] = ()


@dataclass(frozen=True)
class Event:
    cursor: Cursor
    phase: str
    status: str
    message: str
    track_id: str
    progress_pct: int | None = None
    lane: str | None = None
    code: str | None = None

    @property
    def id(self) -> str:
        return self.cursor.event_id()

    @property
    def terminal(self) -> bool:
        return self.cursor.terminal


@dataclass(frozen=True)
class _Outcome:
    phase: str  # ready | failed | duplicate
    message: str
    track_id: str
    code: str | None = None


def _settled(current: Snapshot) -> tuple[int, _Outcome | None]:
    """The last phase the upload reached and, once it has ended, how."""
    if current.upload_status == "finalized":
        return _processing(current)
    return VALIDATION, _intent_outcome(current)


def _intent_outcome(current: Snapshot) -> _Outcome | None:
    """How an upload that never got to processing ended (None: it is still waiting for its file)."""
    status, track_id = current.upload_status, current.track_id
    if status == lifecycle.DUPLICATE:
        message = "You already uploaded this file: it is one of your tracks, so nothing was processed again."
        return _Outcome("duplicate", message, current.duplicate_of or track_id)
    if current.ended is not None:
        return _Outcome("failed", current.ended.message, track_id, current.ended.code)
    if status == "gone":  # deleting a track deletes its unfinalized intent with it
        return _Outcome("failed", "The track was deleted.", track_id, TRACK_DELETED)
    return None


def _processing(current: Snapshot) -> tuple[int, _Outcome | None]:
    track_id = current.track_id
    if current.track_status is None:
        return STORAGE, _Outcome("failed", "The track was deleted.", track_id, TRACK_DELETED)
    if current.track_status == "failed" or current.workflow_status == "failed":
        message = current.failure_message or "Processing failed. Upload the file again."
        return TRANSCODING, _Outcome("failed", message, track_id, current.failure_code or "processing_failed")
    if current.workflow_status == "succeeded":
        return TRANSCODING, _Outcome("ready", "Your track is ready.", track_id)
    if current.track_status == "draft":  # finalized a moment ago; processing is being started
        return STORAGE, None
    if current.workflow_status == "queued":  # waits for one of the owner's runs to end (run_queue)
        return STORAGE, None
    return TRANSCODING, None


_PHASE_EVENTS = {
    VALIDATION: ("waiting", "Waiting for your file; it is checked as soon as it is stored."),
    STORAGE: ("done", "Your file is stored and verified."),
    TRANSCODING: ("running", "Processing started."),
}


def _lane_message(lane: LaneState) -> str:
    label = LANE_LABELS.get(lane.name, lane.name.capitalize())
    if lane.state == "running":
        return f"{label}: started."
    if lane.message:
        return f"{label}: {lane.message}"
    return {"succeeded": f"{label}: done.", "failed": f"{label}: failed.", "skipped": f"{label}: skipped."}.get(
        lane.state, f"{label}: {lane.state}."
    )


def events(seen: Cursor, current: Snapshot) -> list[Event]:
    """The events a client that has seen ``seen`` is owed for ``current``, in order; each one's
    cursor is ``seen`` advanced by it and every event before it. Pure: no clock, no I/O."""
    if seen.terminal:
        return []
    reached, outcome = _settled(current)
    cursor = seen
    emitted: list[Event] = []
    for phase in (VALIDATION, STORAGE, TRANSCODING):
        if cursor.phase < phase <= reached:
            cursor = replace(cursor, phase=phase)
            status, message = _PHASE_EVENTS[phase]
            pct = cursor.progress_pct if phase == TRANSCODING else None
            emitted.append(Event(cursor, PHASE_NAMES[phase], status, message, current.track_id, pct))
    if reached >= TRANSCODING and cursor.phase >= TRANSCODING:
        by_name = {lane.name: lane for lane in current.lanes}
        for index, name in enumerate(LANES):
            lane = by_name.get(name)
            rank = _LANE_RANKS.get(lane.state, LANE_QUEUED) if lane else LANE_QUEUED
            # Never backwards: a lane queued again (an artwork upload re-runs its lane) is not news.
            if rank <= cursor.lanes[index]:
                continue
            assert lane is not None
            cursor = replace(cursor, lanes=(*cursor.lanes[:index], rank, *cursor.lanes[index + 1 :]))
            code = lane.code if lane.state in ("failed", "skipped") else None
            emitted.append(
                Event(
                    cursor,
                    "lane",
                    lane.state,
                    _lane_message(lane),
                    current.track_id,
                    cursor.progress_pct,
                    lane=name,
                    code=code,
                )
            )
    if outcome is not None:
        cursor = replace(cursor, phase=TERMINAL)
        pct = 100 if outcome.phase == "ready" else None
        emitted.append(
            Event(cursor, outcome.phase, outcome.phase, outcome.message, outcome.track_id, pct, code=outcome.code)
        )
    return emitted


# ---- reading the tables ------------------------------------------------------------------------


def owned_upload(upload_id: str, owner_id: str) -> UploadModel:
    """The caller's original-audio upload intent. Anything else -- another owner's, an image or
    document intent, a new version of a track -- is 'not found', as finalize answers."""
    upload = uploads.find(upload_id)
    if upload is None or upload.owner_id != owner_id or upload.intent != "track_original":
        raise UploadIntentNotFound("No such upload intent for this owner.")
    return upload


def snapshot(upload: UploadModel, *, now: datetime | None = None) -> Snapshot:
    """Reads the upload again (consistently) and, once it is finalized, its track and lanes: one
    GetItem and at most one Query. ``upload`` is the intent as first read (it may be gone now)."""
    now = now or utcnow()
    current = reads.get_or_none(UploadModel, upload.upload_id, consistent_read=True)
    if current is None:
        # Gone past its expiry: TTL removed it; before that, a track delete took it.
        gone_expired = lifecycle.ended_without_audio(upload, lifecycle.EXPIRED) if now > upload.expires_at else None
        return Snapshot(upload.upload_id, upload.track_id, "gone", ended=gone_expired)
    state = lifecycle.upload_state(current, now=now, file_stored=lambda: storage.head(current.object_key) is not None)
    base = Snapshot(
        current.upload_id,
        current.track_id,
        current.status,
        ended=lifecycle.ended_without_audio(current, state),
        duplicate_of=current.duplicate_of,
    )
    if current.status != lifecycle.FINALIZED:
        return base
    try:
        status = tracks.processing_status(current.track_id, current.owner_id)
    except TrackNotFound:
        return base
    track = status.track
    return replace(
        base,
        track_status=track.status,
        workflow_status=track.workflow_status,
        failure_code=track.failure_code,
        failure_message=track.failure_message,
        lanes=tuple(LaneState(lane.lane, lane.state, lane.code, lane.message) for lane in status.lanes),
    )


# ---- progress tokens ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProgressToken:
    token: str
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def mint_token(upload_id: str, owner_id: str) -> ProgressToken:
    """A random token for this one upload and this one owner, valid for ``progress_token_ttl_s``.
    256 random bits: nothing to guess, and nothing to sign, so no key to manage."""
    owned_upload(upload_id, owner_id)
    token = secrets.token_urlsafe(32)
    now = utcnow()
    expires_at = now + timedelta(seconds=settings().progress_token_ttl_s)
    ProgressTokenModel(
        ProgressTokenModel.key(_digest(token)),
        for_upload=upload_id,
        owner_id=owner_id,
        expires_at=expires_at,
        expires_at_epoch=expires_at,
    ).save(condition=ProgressTokenModel.pk.does_not_exist())
    return ProgressToken(token, expires_at)


MAX_TOKEN_LENGTH = 128


def verify_token(token: str, upload_id: str) -> str:
    """The owner a token was minted for, if it is valid for ``upload_id`` right now."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise ProgressTokenInvalid("The progress token is not valid; mint a new one.")
    stored = reads.get_or_none(ProgressTokenModel, ProgressTokenModel.key(_digest(token)), consistent_read=True)
    if stored is None:
        raise ProgressTokenInvalid("The progress token is not valid; mint a new one.")
    if stored.for_upload != upload_id:
        raise ProgressTokenInvalid("The progress token is not valid for this upload.")
    # DynamoDB's TTL deletes expired items only eventually: the expiry is checked here.
    if stored.expires_at <= utcnow():
        raise ProgressTokenExpired("The progress token has expired; mint a new one and resume with lastEventId.")
    return stored.owner_id
