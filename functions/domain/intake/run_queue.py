"""Processing concurrency per artist: at most ``settings().max_running_workflows`` of an artist's
track workflows (first uploads and new versions) run at once; further finalized uploads wait their
turn, oldest first, and are never refused. So one artist uploading a whole catalogue cannot take
the account's Lambda concurrency from everybody else.

The items live in the artist's ``usage#<userId>`` partition of the Artists table:

* ``RunsModel`` (``sk=runs``): ``running``, how many slots are taken;
* ``RunSlotModel`` (``sk=run#<uploadId>``): one per running workflow;
* ``QueuedRunModel`` (``sk=queued#<queuedAt>#<uploadId>``): one per upload waiting for a slot.

**Take** (``take``): the transaction that claims an upload at finalize also puts its slot and ADDs
1 to ``running`` under ``running < cap``. Refused by that condition alone, the claim runs again
with ``enqueue`` instead: the upload waits, its track's workflow is ``queued`` and nothing starts.
The common path costs no extra call.

**Hand-off** (``finish``): once a workflow has its verdict (MarkReady/MarkFailed), its slot is
deleted (condition: it exists) with -1 on ``running``, so a repeated verdict frees nothing twice;
then the oldest waiting upload is taken by one transaction (its entry deleted under the condition
that it exists: one taker wins, the slot put, +1 under the cap) and its workflow started, named
after the upload as finalize would have (a repeated start is a no-op).

**Repair**: a track whose upload waits stays in the sweeper's index
(``functions.domain.processing.sweeper``), which releases slots whose execution ended without a
verdict, starts those that never started and hands the queue on, so a lost hand-off delays an
upload by a sweep, never for ever.

A slot or entry is only removed by a conditional delete in the transaction that moves the count, so
``running`` always equals the slots there are.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from functions.data import reads, writes
from functions.data.models import QueuedRunModel, RunSlotModel, RunsModel, TrackModel, UploadModel, utcnow
from functions.domain.catalog import tracks
from functions.observability import logger
from functions.settings import settings

# One hand-off starts at most this many waiting uploads (the slots a verdict and a repair can free).
MAX_HAND_OFFS = 10


def cap() -> int:
    return settings().max_running_workflows


def _room() -> Any:
    return RunsModel.running.does_not_exist() | (RunsModel.running < cap())


def _counter(owner_id: str) -> RunsModel:
    return RunsModel(*RunsModel.key(owner_id))


def _slot(owner_id: str, upload_id: str, track_id: str) -> RunSlotModel:
    return RunSlotModel(*RunSlotModel.key(owner_id, upload_id), upload_id=upload_id, track_id=track_id)


# --- finalize --------------------------------------------------------------------------------------


def take(tx: writes.ConditionalTransaction, upload: UploadModel) -> RunsModel:
    """Adds to ``tx`` (the claim of ``upload``) one of its owner's run slots. Returns the count's
    item: a refusal of it alone means every slot is taken (claim again with ``enqueue``)."""
    tx.save(_slot(upload.owner_id, upload.upload_id, upload.track_id), condition=RunSlotModel.pk.does_not_exist())
    counter = _counter(upload.owner_id)
    tx.update(counter, [RunsModel.running.add(1)], condition=_room())
    return counter


def enqueue(tx: writes.ConditionalTransaction, upload: UploadModel, now: datetime) -> None:
    """Adds to ``tx`` (the claim of ``upload``) its place in its owner's queue."""
    entry = QueuedRunModel(
        *QueuedRunModel.key(upload.owner_id, now, upload.upload_id),
        upload_id=upload.upload_id,
        track_id=upload.track_id,
        queued_at=now,
    )
    tx.save(entry, condition=QueuedRunModel.pk.does_not_exist())


def waiting_assignments(now: datetime) -> list[writes.Assignment]:
    """What a queued claim writes on the intent beside the claim itself."""
    return [(UploadModel.run_queued_at, now)]


def waiting_track_actions(upload: UploadModel, now: datetime) -> list[Any]:
    """What a queued claim writes on the track: the upload it waits with, and the track enters the
    sweeper's index (a first upload's claim puts it there anyway)."""
    return [
        TrackModel.queued_run.set(upload.upload_id),
        TrackModel.processing_shard.set(tracks.processing_shard(upload.track_id)),
        TrackModel.processing_since.set(now),
    ]


def is_waiting(upload: UploadModel) -> bool:
    """The upload was finalized and waits for a slot: nothing may start its workflow but a hand-off."""
    return upload.run_queued_at is not None


# --- verdicts --------------------------------------------------------------------------------------


def finish(owner_id: str, upload_id: str, state_machine_arn: str | None) -> None:
    """After a workflow's verdict: its slot is freed and the oldest waiting upload takes it
    (``state_machine_arn``: where its workflow starts; None leaves the hand-off to the sweeper)."""
    release(owner_id, upload_id)
    if state_machine_arn:
        hand_off(owner_id, state_machine_arn)


def release(owner_id: str, upload_id: str) -> bool:
    """Frees the upload's slot; False when it holds none (freed before, or it never took one)."""
    with writes.conditional_transaction() as tx:
        tx.delete(RunSlotModel(*RunSlotModel.key(owner_id, upload_id)), condition=RunSlotModel.pk.exists())
        tx.update(_counter(owner_id), [RunsModel.running.add(-1)])
    return tx.committed


def hand_off(owner_id: str, state_machine_arn: str) -> list[str]:
    """Starts the owner's oldest waiting uploads while slots are free. The uploads started."""
    started: list[str] = []
    partition = RunsModel.key(owner_id)[0]
    for _ in range(MAX_HAND_OFFS):
        entry = reads.first(QueuedRunModel, partition, sort_key_prefix=QueuedRunModel.SK_PREFIX)
        if entry is None:
            break
        taken = _take_waiting(entry, state_machine_arn)
        if taken is _FULL:
            break
        if isinstance(taken, UploadModel):
            _start(taken, state_machine_arn)
            started.append(taken.upload_id)
    return started


_FULL = "full"


def _take_waiting(entry: QueuedRunModel, state_machine_arn: str) -> UploadModel | str | None:
    """One transaction: the entry deleted (one taker wins), its slot taken under the cap, the intent
    given its execution's ARN and the track's workflow running. The upload when taken; ``_FULL``
    when every slot is taken; None when another hand-off took it or it no longer belongs to
    anything (its track was deleted: the entry is dropped)."""
    from functions.domain.intake import executions, uploads

    upload = uploads.find(entry.upload_id)
    if upload is None or not is_waiting(upload):
        writes.delete_if(entry, QueuedRunModel.pk.exists())
        return None
    owner_id = upload.owner_id
    now = utcnow()
    if upload.intent == uploads.TRACK_ORIGINAL:
        track_actions = [
            TrackModel.workflow_status.set("running"),
            TrackModel.processing_since.set(now),  # a full grace period before the sweeper looks
            TrackModel.queued_run.remove(),
        ]
    else:  # a version's run is not the sweeper's (functions.domain.intake.versions)
        track_actions = [
            TrackModel.queued_run.remove(),
            TrackModel.processing_shard.remove(),
            TrackModel.processing_since.remove(),
        ]
    counter = _counter(owner_id)
    track = TrackModel(upload.track_id, TrackModel.TRACK_SK)
    with writes.conditional_transaction() as tx:
        tx.delete(entry, condition=QueuedRunModel.pk.exists())
        tx.save(_slot(owner_id, upload.upload_id, upload.track_id), condition=RunSlotModel.pk.does_not_exist())
        tx.update(counter, [RunsModel.running.add(1)], condition=_room())
        tx.assign(
            upload,
            [
                (UploadModel.execution_arn, executions.execution_arn(upload.upload_id, state_machine_arn)),
                (UploadModel.run_queued_at, None),
            ],
            condition=UploadModel.run_queued_at.exists(),
        )
        tx.update(track, track_actions, condition=TrackModel.queued_run == upload.upload_id)
    if tx.committed:
        logger.info("queued upload takes a run slot", extra={"upload_id": upload.upload_id, "owner_id": owner_id})
        return upload
    if tx.refused(entry):
        return None
    if tx.refused(counter) and not (tx.refused(upload) or tx.refused(track)):
        return _FULL
    writes.delete_if(entry, QueuedRunModel.pk.exists())
    logger.info("queued upload dropped: its track is gone", extra={"upload_id": upload.upload_id})
    return None


def _start(upload: UploadModel, state_machine_arn: str) -> None:
    from functions.domain.intake import executions
    from functions.errors import WorkflowStartFailed

    try:
        executions.ensure_execution(upload, state_machine_arn=state_machine_arn)
    except WorkflowStartFailed:
        # The slot stays taken and the intent's ARN was taken back: the sweeper starts it (a first
        # upload's track is in its index; a version's slot is repaired once anything waits).
        logger.exception("queued upload could not start", extra={"upload_id": upload.upload_id})


# --- repair ----------------------------------------------------------------------------------------


def slots(owner_id: str) -> Iterator[RunSlotModel]:
    """The owner's taken slots."""
    for raw in reads.partition(
        RunSlotModel, RunsModel.key(owner_id)[0], sort_key_prefix=RunSlotModel.SK_PREFIX, consistent_read=True
    ):
        yield RunSlotModel.from_raw_data(raw)


def running(owner_id: str) -> int:
    counter = reads.get_or_none(RunsModel, *RunsModel.key(owner_id), consistent_read=True)
    return int(counter.running or 0) if counter is not None else 0


def waiting(owner_id: str) -> int:
    return sum(
        1 for _ in reads.partition(QueuedRunModel, RunsModel.key(owner_id)[0], sort_key_prefix=QueuedRunModel.SK_PREFIX)
    )
