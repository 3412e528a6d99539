"""The local stack's store on disk (local/persistence.py): what moto holds comes back after a stop
and a restart, byte for byte and with the same ETags; a damaged store is refused with its path and
left as it was; ``--fresh`` empties it. A restart is played in this process: the store takes its
last snapshot, moto is emptied as a new server would be, and a new store on the same directory
restores into it. Every store lives in the test's own temporary directory."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends
from moto.stepfunctions.parser.models import stepfunctions_parser_backends

from functions import ids
from functions.data.models import UploadModel, bind, utcnow
from local import pending_uploads, persistence
from local.persistence import EXECUTIONS, JOURNAL, TABLES, LocalStore, RestoreReport, StoreUnusable
from local.provision import ROLE_ARN, empty
from tests.integration.conftest import Stack, as_user

REGION = "us-east-1"


class Restartable:
    """A store attached as the local stack attaches it, which a test can stop and start again."""

    def __init__(self, root: Path, *, snapshot_interval_s: float = 2.0) -> None:
        self.root = root
        self.snapshot_interval_s = snapshot_interval_s
        self.store: LocalStore | None = None
        # The executions the last start started again.
        self.resumed: list[str] = []

    def start(self) -> RestoreReport:
        self.store = LocalStore.open(self.root, REGION, snapshot_interval_s=self.snapshot_interval_s)
        report = self.store.restore()
        self.store.attach()
        self.resumed = self.store.resume_executions()
        return report

    def stop(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def restart(self) -> RestoreReport:
        self.stop()
        empty(REGION)  # a new moto server holds nothing
        return self.start()

    def kill(self) -> RestoreReport:
        """As ``kill -9``, then a start: no last snapshot, the journal's file left as it is."""
        assert self.store is not None
        self.store._stop.set()
        persistence._hooks.attached = None
        self.store.journal.close()
        self.store = None
        empty(REGION)
        return self.start()


@pytest.fixture
def restartable(stack: Stack, tmp_path: Path) -> Iterator[Restartable]:
    store = Restartable(tmp_path / "data")
    store.start()
    yield store
    store.stop()


def _dynamodb(stack: Stack):  # type: ignore[no-untyped-def]
    from local.provision import client

    return client("dynamodb", stack.resources.endpoint)


def _object(stack: Stack, key: str) -> tuple[bytes, dict[str, object]]:
    got = stack.s3.get_object(Bucket=stack.resources.bucket, Key=key)
    return got["Body"].read(), got


def test_items_and_objects_come_back_after_a_restart_byte_identical_with_their_etags(stack, restartable):
    # Given items of several attribute types, and objects made by PUT (small, and larger than moto
    # keeps in memory), multipart upload and copy, with content types and user metadata
    tracks = stack.resources.settings.tracks_table
    dynamodb = _dynamodb(stack)
    rich = {
        "pk": {"S": "trk_1"},
        "sk": {"S": "TRACK"},
        "n": {"N": "12.5"},
        "b": {"B": b"\x00\xffbytes"},
        "ss": {"SS": ["a", "b"]},
        "m": {"M": {"nested": {"L": [{"S": "x"}, {"N": "1"}, {"BOOL": True}, {"NULL": True}]}}},
    }
    dynamodb.put_item(TableName=tracks, Item=rich)
    dynamodb.put_item(TableName=tracks, Item={"pk": {"S": "trk_2"}, "sk": {"S": "TRACK"}})
    dynamodb.delete_item(TableName=tracks, Key={"pk": {"S": "trk_2"}, "sk": {"S": "TRACK"}})
    bucket = stack.resources.bucket
    small, large = b"RIFF small wav", os.urandom(6 * 1024 * 1024 + 17)
    stack.s3.put_object(Bucket=bucket, Key="tracks/a/original.wav", Body=small, ContentType="audio/wav",
                        Metadata={"owner": "alice"})  # fmt: skip
    stack.s3.put_object(Bucket=bucket, Key="tracks/a/large.bin", Body=large, ContentType="application/octet-stream")
    parts = [os.urandom(5 * 1024 * 1024), b"tail"]
    upload = stack.s3.create_multipart_upload(Bucket=bucket, Key="tracks/a/parts.flac", ContentType="audio/flac")
    etags = [
        stack.s3.upload_part(Bucket=bucket, Key="tracks/a/parts.flac", UploadId=upload["UploadId"], PartNumber=n,
                             Body=body)["ETag"]
        for n, body in enumerate(parts, start=1)
    ]  # fmt: skip
    stack.s3.complete_multipart_upload(
        Bucket=bucket, Key="tracks/a/parts.flac", UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": e, "PartNumber": n} for n, e in enumerate(etags, start=1)]},
    )  # fmt: skip
    original = {"Bucket": bucket, "Key": "tracks/a/original.wav"}
    stack.s3.copy_object(Bucket=bucket, Key="tracks/a/copy.wav", CopySource=original)
    stack.s3.put_object(Bucket=bucket, Key="tracks/a/gone.wav", Body=b"deleted before the restart")
    stack.s3.delete_object(Bucket=bucket, Key="tracks/a/gone.wav")
    before = {
        key: stack.s3.head_object(Bucket=bucket, Key=key)
        for key in ("tracks/a/original.wav", "tracks/a/large.bin", "tracks/a/parts.flac", "tracks/a/copy.wav")
    }

    # When the stack stops and starts again on the same store
    report = restartable.restart()

    # Then every item and object is back: the same attributes, bytes, ETags, types and metadata
    assert (report.items, report.objects) == (1, 4)
    back = dynamodb.get_item(TableName=tracks, Key={"pk": {"S": "trk_1"}, "sk": {"S": "TRACK"}})["Item"]
    assert back == rich
    assert "Item" not in dynamodb.get_item(TableName=tracks, Key={"pk": {"S": "trk_2"}, "sk": {"S": "TRACK"}})
    expected = {
        "tracks/a/original.wav": small,
        "tracks/a/large.bin": large,
        "tracks/a/parts.flac": b"".join(parts),
        "tracks/a/copy.wav": small,
    }
    for key, data in expected.items():
        body, got = _object(stack, key)
        assert hashlib.sha256(body).digest() == hashlib.sha256(data).digest(), key
        for field in ("ETag", "ContentType", "ContentLength", "Metadata", "LastModified"):
            assert got[field] == before[key][field], (key, field)
    assert before["tracks/a/parts.flac"]["ETag"].endswith('-2"')
    listed = stack.s3.list_objects_v2(Bucket=bucket, Prefix="tracks/a/")["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(expected)
    # ... and a range read and a conditional copy on the restored ETag work as before
    ranged = stack.s3.get_object(Bucket=bucket, Key="tracks/a/large.bin", Range="bytes=10-19")["Body"].read()
    assert ranged == large[10:20]
    stack.s3.copy_object(
        Bucket=bucket, Key="tracks/b/kept.wav", CopySource={"Bucket": bucket, "Key": "tracks/a/original.wav"},
        CopySourceIfMatch=before["tracks/a/original.wav"]["ETag"],
    )  # fmt: skip


def test_a_restore_raises_no_s3_event_and_no_stream_record(stack, restartable):
    # Given an object under uploads/ and a track item, both stored, and the events of writing them consumed
    stack.s3.put_object(Bucket=stack.resources.bucket, Key="uploads/u1/original.wav", Body=b"x")
    _dynamodb(stack).put_item(
        TableName=stack.resources.settings.tracks_table, Item={"pk": {"S": "trk_9"}, "sk": {"S": "TRACK"}}
    )

    # When the stack restarts
    restartable.restart()

    # Then nothing looks new: no ObjectCreated on the S3-event queue, no record on the table's stream
    received = stack.sqs.receive_message(QueueUrl=stack.resources.s3_events_queue_url, WaitTimeSeconds=0)
    assert received.get("Messages", []) == []
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION].tables[stack.resources.settings.tracks_table]
    assert table.stream_shard is None or table.stream_shard.items == []
    assert _object(stack, "uploads/u1/original.wav")[0] == b"x"


def test_writes_after_a_restart_are_kept_too_and_replaced_bytes_leave_no_file(stack, restartable, tmp_path):
    bucket = stack.resources.bucket
    stack.s3.put_object(Bucket=bucket, Key="tracks/c/original.wav", Body=b"first")
    restartable.restart()
    stack.s3.put_object(Bucket=bucket, Key="tracks/c/original.wav", Body=b"second")
    restartable.restart()
    assert _object(stack, "tracks/c/original.wav")[0] == b"second"
    data_files = [p for p in (tmp_path / "data" / "s3").rglob("*.data")]
    assert len(data_files) == 1 and data_files[0].read_bytes() == b"second"


def test_a_truncated_table_snapshot_is_refused_with_its_path_and_left_as_it_is(stack, restartable, tmp_path):
    # Given a store whose table snapshot lost its end (a disk filled, a hand edit)
    _dynamodb(stack).put_item(
        TableName=stack.resources.settings.tracks_table, Item={"pk": {"S": "trk_3"}, "sk": {"S": "TRACK"}}
    )
    restartable.stop()
    snapshot = tmp_path / "data" / TABLES
    damaged = snapshot.read_bytes().rsplit(b"\n", 2)[0] + b"\n"
    snapshot.write_bytes(damaged)

    # When a stack opens it, then it is refused, naming the file, and the file is untouched
    with pytest.raises(StoreUnusable, match="truncated") as refused:
        LocalStore.open(tmp_path / "data", REGION)
    assert str(snapshot) in str(refused.value)
    assert snapshot.read_bytes() == damaged


@pytest.mark.parametrize("damage", ["record_not_json", "data_missing", "data_short"])
def test_a_damaged_object_is_refused_with_its_path(stack, restartable, tmp_path, damage):
    stack.s3.put_object(Bucket=stack.resources.bucket, Key="tracks/d/original.wav", Body=b"0123456789")
    restartable.stop()
    (record,) = (tmp_path / "data" / "s3").rglob("*.json")
    (data,) = (tmp_path / "data" / "s3").rglob("*.data")
    if damage == "record_not_json":
        record.write_text('{"key": "tracks/d/orig')
        named = record
    elif damage == "data_missing":
        data.unlink()
        named = record
    else:
        data.write_bytes(b"01234")
        named = data

    with pytest.raises(StoreUnusable) as refused:
        LocalStore.open(tmp_path / "data", REGION)
    assert str(named) in str(refused.value)


def test_fresh_starts_empty(stack, restartable, tmp_path):
    stack.s3.put_object(Bucket=stack.resources.bucket, Key="tracks/e/original.wav", Body=b"kept until fresh")
    restartable.stop()
    empty(REGION)

    store = LocalStore.open(tmp_path / "data", REGION, fresh=True)
    report = store.restore()

    assert (report.items, report.objects) == (0, 0)
    assert not list((tmp_path / "data").rglob("*.data"))


def test_a_directory_that_is_not_a_store_is_refused_even_with_fresh(tmp_path):
    # Given a data directory set by mistake to a directory with someone's files in it
    (tmp_path / "notes.txt").write_text("mine")

    for fresh in (False, True):
        with pytest.raises(StoreUnusable, match="not a tracklane store") as refused:
            LocalStore.open(tmp_path, REGION, fresh=fresh)
        assert str(tmp_path) in str(refused.value)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_a_snapshot_is_taken_periodically_when_a_table_changed(stack, tmp_path):
    store = LocalStore.open(tmp_path / "data", REGION, snapshot_interval_s=0.05)
    store.restore()
    store.attach()
    try:
        _dynamodb(stack).put_item(
            TableName=stack.resources.settings.tracks_table, Item={"pk": {"S": "trk_p"}, "sk": {"S": "TRACK"}}
        )
        snapshot = tmp_path / "data" / TABLES
        for _ in range(100):
            if snapshot.exists() and b"trk_p" in snapshot.read_bytes():
                break
            time.sleep(0.05)
        # Then, without a stop, the snapshot on disk already holds the write (a kill -9 keeps it)
        assert b"trk_p" in snapshot.read_bytes()
    finally:
        store.close()


def test_an_upload_put_whose_event_a_restart_lost_is_finalized_once_its_event_is_raised_again(
    stack, restartable, artist, distinct_wav
):
    # Given three intents: one PUT and finalized by its event, one never PUT, and one PUT whose
    # ObjectCreated is still on the queue when the stack stops
    files = [distinct_wav() for _ in range(3)]
    done, never_put, lost = (stack.create_upload(artist, path) for path in files)
    assert stack.put(done["signedUrl"], files[0], content_type="audio/wav") == 200
    stack.drain_s3_events()
    assert stack.put(lost["signedUrl"], files[2], content_type="audio/wav") == 200

    # When the stack restarts (the queue's messages are not kept) and its start reconciles
    restartable.restart()
    assert stack.sqs.receive_message(QueueUrl=stack.resources.s3_events_queue_url).get("Messages", []) == []
    raised = pending_uploads.redeliver(stack.resources.bucket)

    # Then only the pending intent whose file is stored gets its event again, and the pump finalizes it
    lost_id = ids.parse("upl", lost["uploadId"])
    assert raised == [lost_id]
    stack.drain_s3_events()
    bind()
    assert UploadModel.get(lost_id).status == "finalized"
    assert UploadModel.get(ids.parse("upl", never_put["uploadId"])).status == "pending"
    assert sorted(e["name"] for e in stack.executions()) == sorted(
        ids.parse("upl", upload["uploadId"]) for upload in (done, lost)
    )
    # ... and a second reconcile finds nothing left to raise
    assert pending_uploads.redeliver(stack.resources.bucket) == []


def test_an_intent_keeps_its_expiry_across_a_restart(stack, restartable, artist, distinct_wav):
    # Given two pending intents, one of them past its expiry (moto's TTL deletes nothing)
    live_file, expired_file = distinct_wav(), distinct_wav()
    live, expired = stack.create_upload(artist, live_file), stack.create_upload(artist, expired_file)
    bind()
    past = utcnow() - timedelta(minutes=1)
    UploadModel(ids.parse("upl", expired["uploadId"])).update(
        actions=[UploadModel.expires_at.set(past), UploadModel.expires_at_epoch.set(past)]
    )
    dynamodb, table = _dynamodb(stack), stack.resources.settings.uploads_table

    def expiry(upload: dict) -> tuple[object, object]:
        item = dynamodb.get_item(TableName=table, Key={"upload_id": {"S": ids.parse("upl", upload["uploadId"])}})
        return item["Item"]["expires_at_epoch"], item["Item"]["expires_at"]

    before = {name: expiry(upload) for name, upload in (("live", live), ("expired", expired))}

    # When the stack restarts
    restartable.restart()

    # Then both keep their expiry attributes, the table has the deployed TTL setting, the expired
    # intent is refused as expired and the live one still finalizes
    assert {name: expiry(upload) for name, upload in (("live", live), ("expired", expired))} == before
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at_epoch"}
    assert stack.put(expired["signedUrl"], expired_file, content_type="audio/wav") == 200
    refused = stack.api.post(f"/v1/uploads/{expired['uploadId']}/finalize", headers=as_user(artist))
    assert (refused.status_code, refused.json()["error"]["code"]) == (410, "upload_intent_expired"), refused.text
    assert stack.put(live["signedUrl"], live_file, content_type="audio/wav") == 200
    finalized = stack.api.post(f"/v1/uploads/{live['uploadId']}/finalize", headers=as_user(artist))
    assert finalized.json()["status"] == "finalized", finalized.text


def test_after_a_kill_the_table_writes_since_the_last_snapshot_come_back_from_the_journal(stack, tmp_path):
    # Given a store whose snapshot is far off, and every kind of table write made after it: puts,
    # an update, a delete, a batch, a committed transaction and a cancelled one
    restartable = Restartable(tmp_path / "data", snapshot_interval_s=3600)
    restartable.start()
    dynamodb, tracks = _dynamodb(stack), stack.resources.settings.tracks_table

    def key(pk: str) -> dict:
        return {"pk": {"S": pk}, "sk": {"S": "TRACK"}}

    for pk in ("trk_a", "trk_b", "trk_c"):
        dynamodb.put_item(TableName=tracks, Item={**key(pk), "title": {"S": pk}})
    dynamodb.update_item(
        TableName=tracks,
        Key=key("trk_a"),
        UpdateExpression="SET plays = :n",
        ExpressionAttributeValues={":n": {"N": "3"}},
    )
    dynamodb.delete_item(TableName=tracks, Key=key("trk_b"))
    dynamodb.batch_write_item(RequestItems={tracks: [{"PutRequest": {"Item": {**key("trk_d"), "title": {"S": "d"}}}}]})
    dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": tracks, "Item": {**key("trk_e"), "title": {"S": "e"}}}},
            {"Delete": {"TableName": tracks, "Key": key("trk_c")}},
        ]
    )
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": tracks, "Item": {**key("trk_f"), "title": {"S": "f"}}}},
                {
                    "Delete": {
                        "TableName": tracks,
                        "Key": key("trk_a"),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    before = sorted(dynamodb.scan(TableName=tracks)["Items"], key=lambda item: item["pk"]["S"])
    assert not (tmp_path / "data" / TABLES).exists()
    # ... and a last record the kill cut short
    (journal,) = (tmp_path / "data" / JOURNAL).glob("*.jsonl")
    with journal.open("a") as cut:
        cut.write('{"table": "' + tracks + '", "key": {"pk": {"S": "trk_g"')

    # When the process is killed and starts again
    report = restartable.kill()

    # Then every committed write is back, the cancelled transaction left nothing, the cut record is
    # dropped; and the next snapshot folds the journal in
    after = sorted(dynamodb.scan(TableName=tracks)["Items"], key=lambda item: item["pk"]["S"])
    assert after == before
    assert [item["pk"]["S"] for item in after] == ["trk_a", "trk_d", "trk_e"]
    assert after[0]["plays"] == {"N": "3"}
    assert report.journaled == 8
    # ... also after a second kill, before any snapshot (the cut record now ends an older generation)
    dynamodb.put_item(TableName=tracks, Item={**key("trk_h"), "title": {"S": "h"}})
    assert restartable.kill().journaled == 9
    assert sorted(item["pk"]["S"] for item in dynamodb.scan(TableName=tracks)["Items"]) == [
        "trk_a", "trk_d", "trk_e", "trk_h",
    ]  # fmt: skip
    assert restartable.store is not None
    assert restartable.store.snapshot_tables(only_if_changed=True) == 4
    assert journal not in (tmp_path / "data" / JOURNAL).glob("*.jsonl")
    restartable.stop()
    empty(REGION)
    assert Restartable(tmp_path / "data").start().journaled == 0


def test_a_damaged_journal_record_is_refused_with_its_path(stack, restartable, tmp_path):
    _dynamodb(stack).put_item(
        TableName=stack.resources.settings.tracks_table, Item={"pk": {"S": "trk_j"}, "sk": {"S": "TRACK"}}
    )
    (journal,) = (tmp_path / "data" / JOURNAL).glob("*.jsonl")
    journal.write_text("not a record\n" + journal.read_text())

    with pytest.raises(StoreUnusable, match="line 1") as refused:
        LocalStore.open(tmp_path / "data", REGION)
    assert str(journal) in str(refused.value)


# --- executions running at a stop ---------------------------------------------------------------------

_WAITS = {"StartAt": "Hold", "States": {"Hold": {"Type": "Wait", "Seconds": 600, "End": True}}}
_ENDS = {"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}


@pytest.fixture
def state_machines(stack: Stack) -> Iterator[Callable[[dict[str, object]], str]]:
    """Makes state machines of a definition (moto interprets them); stops their executions and
    deletes them after the test."""
    made: list[str] = []

    def make(definition: dict[str, object]) -> str:
        name = f"resume-{uuid.uuid4().hex[:12]}"
        arn = stack.sfn.create_state_machine(name=name, definition=json.dumps(definition), roleArn=ROLE_ARN)
        made.append(arn["stateMachineArn"])
        return str(arn["stateMachineArn"])

    yield make
    for arn in made:
        for execution in stack.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
            stack.sfn.stop_execution(executionArn=execution["executionArn"])
        stack.sfn.delete_state_machine(stateMachineArn=arn)


def _forget_executions(stack: Stack, state_machine_arn: str, *, keep: frozenset[str] = frozenset()) -> None:
    """As a new moto server would: the machine's executions are gone (but those named in ``keep``)."""
    machines = stepfunctions_parser_backends[DEFAULT_ACCOUNT_ID][REGION].state_machines
    machine = next(m for m in machines if m.arn == state_machine_arn)
    for execution in list(machine.executions):
        if execution.name in keep:
            continue
        if execution.status == "RUNNING":
            stack.sfn.stop_execution(executionArn=execution.execution_arn)
        machine.executions.remove(execution)


def _executions(stack: Stack, state_machine_arn: str) -> dict[str, dict[str, object]]:
    listed = stack.sfn.list_executions(stateMachineArn=state_machine_arn)["executions"]
    return {e["name"]: dict(stack.sfn.describe_execution(executionArn=e["executionArn"])) for e in listed}


def test_executions_running_at_a_stop_start_again_by_name_with_their_input_and_ended_ones_do_not(
    stack, restartable, state_machines, tmp_path
):
    # Given two executions running (one started by something else again before the store's own
    # start gets to it) and one that ended
    waits, ends = state_machines(_WAITS), state_machines(_ENDS)
    interrupted_input = '{"run": "artwork", "uploadId": "upl_1", "version": null}'
    stack.sfn.start_execution(stateMachineArn=waits, name="interrupted", input=interrupted_input)
    stack.sfn.start_execution(stateMachineArn=waits, name="started-again-first", input='{"run": "album_cover"}')
    stack.sfn.start_execution(stateMachineArn=ends, name="finished", input="{}")
    for _ in range(100):
        if _executions(stack, ends)["finished"]["status"] == "SUCCEEDED":
            break
        time.sleep(0.05)
    assert _executions(stack, ends)["finished"]["status"] == "SUCCEEDED"
    known = _executions(stack, waits)["started-again-first"]

    # When the stack stops and starts on a moto that knows none of them but the one started again
    restartable.stop()
    _forget_executions(stack, waits, keep=frozenset({"started-again-first"}))
    _forget_executions(stack, ends)
    report = restartable.start()

    # Then the interrupted one runs again under its name with its input; the one moto knew is left
    # as it was; the one that ended is not run again
    assert restartable.resumed == ["interrupted"]
    assert report.executions == 2
    after = _executions(stack, waits)
    assert sorted(after) == ["interrupted", "started-again-first"]
    assert after["interrupted"]["status"] == "RUNNING"
    assert json.loads(str(after["interrupted"]["input"])) == json.loads(interrupted_input)
    assert after["started-again-first"]["startDate"] == known["startDate"]
    assert _executions(stack, ends) == {}
    record = json.loads((tmp_path / "data" / EXECUTIONS).read_text())
    assert "finished" not in {execution["name"] for execution in record["running"]}


def test_an_execution_that_ended_leaves_the_record_and_a_new_one_enters_it_without_a_stop(
    stack, state_machines, tmp_path
):
    # Given a store recording every 50 ms, and an execution running
    waits = state_machines(_WAITS)
    store = LocalStore.open(tmp_path / "data", REGION, snapshot_interval_s=0.05)
    store.restore()
    store.attach()
    try:
        started = stack.sfn.start_execution(stateMachineArn=waits, name="first", input="{}")
        record = tmp_path / "data" / EXECUTIONS

        def recorded() -> set[str]:
            return {e["name"] for e in json.loads(record.read_text())["running"]} if record.exists() else set()

        for _ in range(100):
            if "first" in recorded():
                break
            time.sleep(0.05)
        assert "first" in recorded()  # a kill -9 from now on keeps it

        # When it ends (stopped) and another starts, with no stop of the stack
        stack.sfn.stop_execution(executionArn=started["executionArn"])
        stack.sfn.start_execution(stateMachineArn=waits, name="second", input="{}")
        for _ in range(100):
            if "first" not in recorded() and "second" in recorded():
                break
            time.sleep(0.05)

        # Then the record says so
        names = recorded()
        assert "first" not in names and "second" in names
    finally:
        store.close()


def test_a_damaged_record_of_executions_is_refused_with_its_path(stack, restartable, tmp_path):
    restartable.stop()
    record = tmp_path / "data" / EXECUTIONS
    record.write_text(
        json.dumps({"format": "tracklane-local-store", "version": 1, "of": "stepfunctions", "running": [{"name": 1}]})
    )

    with pytest.raises(StoreUnusable) as refused:
        LocalStore.open(tmp_path / "data", REGION)
    assert str(record) in str(refused.value)


def test_an_objects_first_etag_is_computed_under_its_lock(stack):
    """moto computes a first ETag by reading the object's shared buffer; unlocked, a HEAD doing it
    moved the buffer under the store copying it (local.moto_s3), which kept 24 MiB of a 31 MB file."""
    import threading

    from moto.s3.models import s3_backends

    body = os.urandom(256 * 1024)
    stack.s3.put_object(Bucket=stack.resources.bucket, Key="etag/locked.bin", Body=body)
    key = s3_backends[DEFAULT_ACCOUNT_ID]["global"].get_object(stack.resources.bucket, "etag/locked.bin")
    key._etag = None  # as after a copy or a restore: not computed yet
    answers: list[str] = []
    with key.lock:  # what the store holds while it copies the bytes
        reader = threading.Thread(target=lambda: answers.append(key.etag))
        reader.start()
        reader.join(0.5)
        assert reader.is_alive() and answers == []  # waits for the lock instead of reading now
    reader.join(10)
    assert answers == [f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"']
