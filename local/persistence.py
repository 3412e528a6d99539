"""The local stack's store on disk: what moto holds survives a stop and a restart (issue 17).

moto keeps everything in memory and has no persistence of its own that fits: its recorder replays
every request (each upload's bytes again, on every start) and its pickled state would copy every
object into memory and into one file. So the store keeps each service's state in the form that
service's data is cheapest to write and to bring back, in one directory (``LocalSettings.data_dir``,
``.tracklane/data`` by default) that nothing else writes to:

``store.json``
    The marker: this directory is a tracklane store, in this format. A directory without it that is
    not empty is refused, and ``--fresh`` only ever removes the store's own entries, so pointing
    ``TRACKLANE_DATA_DIR`` at the wrong directory cannot empty it.

DynamoDB: ``dynamodb.jsonl``
    Every item of every table, as DynamoDB JSON (what GetItem answers), one per line between a
    header and a trailer that counts them. Written whole as a snapshot: taken while moto's writes
    are held (``local.moto_atomic`` serializes them already), so a transaction is in it entirely or
    not at all; written to a temporary file, fsynced and renamed over the previous one, so a crash
    at any moment leaves the previous snapshot or the new one, never half of one. Taken every
    ``snapshot_interval_s`` when a write happened since the last, and on a clean stop. Restored
    after provisioning through moto's own ``Table.put_item`` (its key and type checks), with the
    table's stream detached meanwhile: restored items are not new writes and must not raise domain
    events again.

DynamoDB writes since the snapshot: ``dynamodb-journal/<generation>.jsonl``
    Each write moto makes (PutItem, UpdateItem, DeleteItem, a batch's requests, a transaction once
    it committed) appends the written items as they are after it, or their deletion, while writes
    are held, so the journal's order is the writes' order. A snapshot starts a new generation at
    the instant it copies the items and names it in its header; once the snapshot is in place the
    older generations are removed. A start replays the generations from the snapshot's on, after
    its items. Appended with one ``write``, not fsynced: a ``kill -9`` loses only the writes in
    flight (a record cut short is the last line of its file and is dropped); a machine crash may
    lose what the kernel had not written out since the last snapshot, which is fsynced.

S3: ``s3/<bucket>/<key>.json`` and ``s3/<bucket>/<key>.<token>.data``
    One file per object with its bytes, and a small record beside it (size, ETag, content type and
    user metadata, last modified, checksum) naming that file. Written when a request that created or
    deleted an object has been handled (moto's ``put_object`` and ``delete_object`` mark the key;
    PUT, CopyObject, CompleteMultipartUpload, POST uploads and DeleteObjects all go through them):
    the bytes go to a new file, fsynced, then the record is renamed into place, which is the
    commit; the replaced bytes are removed after. A crash leaves at most an unreferenced ``.data``
    file, which the next start removes. A ``kill -9`` loses only the requests in flight.
    Restored without reading the bytes: each key gets moto's own ``FakeKey`` whose value buffer is a
    file-backed stand-in (``_StoredValue``) that opens the file when moto reads it, with the
    recorded ETag and size, so starting with gigabytes of audio costs a stat per object. The ETag
    is the recorded one, never recomputed: the app compares ETags across a restart.

Step Functions executions running: ``executions.json``
    moto cannot restore an execution (its interpreter's state lives in threads), so the store keeps
    what starts one: each execution that is running, its state machine's ARN, its name and its
    input, in one small file written whole (temporary file, fsync, rename) whenever that set
    changed, checked with each table snapshot, and at a clean stop. A start, once provisioning has
    made the state machines, starts each one again from its beginning under the same name with the
    same input (``LocalStore.resume_executions``): every kind of run, an original's, a new
    version's, a track's artwork, an album cover, with no knowledge of what they do. Steps are
    idempotent (on AWS they are retried too), so a run started again from the beginning ends as it
    would have. A name moto knows already is left alone: something started it again first. An
    execution that ended is not in the record, so nothing that finished runs again. The stop takes
    its record after the workflow runner has stopped and while moto still runs: the steps the stop
    cut short are left unanswered, so their executions are recorded running, as they were. A
    ``kill -9`` loses the executions started since the last check (an original's is still started
    again by the sweeper's "execution never started" path, ``local.sweeper``), and starts again one
    that ended since it (its steps run again, idempotent as they are for AWS's retries).

Not kept: SQS messages (moto cannot restore them); what they carried is recovered from the tables
and objects instead, at start: an upload PUT whose ObjectCreated was lost gets it raised again
(``local.pending_uploads``). Nor multipart uploads in progress, object versions, tags and ACLs, and
the DynamoDB streams' records.

Any file of the store that cannot be read or does not say what it should is reported with its path
(``StoreUnusable``) and the stack does not start; nothing is ever replaced or removed to get past
it (``tracklane run --fresh`` starts from an empty store deliberately).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from functions.observability import logger
from local import moto_atomic

FORMAT = "tracklane-local-store"
VERSION = 1
MARKER = "store.json"
TABLES = "dynamodb.jsonl"
JOURNAL = "dynamodb-journal"
OBJECTS = "s3"
EXECUTIONS = "executions.json"
# The store's own entries: all that ``--fresh`` removes.
_ENTRIES = (MARKER, TABLES, JOURNAL, OBJECTS, EXECUTIONS)
_RECORD = ".json"
_DATA = ".data"
_PARTIAL = ".partial-"
_COPY_CHUNK = 8 * 1024 * 1024
# File names stay well below the 255 bytes file systems allow, with room for the token.
_LONGEST_NAME = 180


class StoreUnusable(Exception):
    """The store cannot be used as it is; the message names the file and what is wrong with it."""


@dataclass
class RestoreReport:
    items: int = 0
    objects: int = 0
    object_bytes: int = 0
    # Items of tables, objects of buckets, that provisioning no longer creates: not restored.
    skipped: dict[str, int] = field(default_factory=dict)
    # Table writes after the snapshot, replayed from the journal.
    journaled: int = 0
    # Executions the store recorded running, to be started again (``LocalStore.resume_executions``).
    executions: int = 0
    seconds: float = 0.0


# --- the files -------------------------------------------------------------------------------------


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _write_atomically(path: Path, write: Callable[[Any], None]) -> None:
    """``write(file)`` into a temporary file beside ``path``, then fsync and rename it over ``path``:
    whoever reads ``path``, now or after a crash, sees the old contents or the new, whole."""
    partial = path.with_name(f"{_PARTIAL}{path.name}.{uuid.uuid4().hex}")
    try:
        with partial.open("wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except OSError as error:
        raise StoreUnusable(f"cannot read {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise StoreUnusable(f"{path} is not valid JSON ({error})") from None


def _stem(name: str) -> str:
    """A file name for a bucket or key: readable when it can be, a digest when it is too long."""
    quoted = quote(name, safe="")
    if len(quoted) <= _LONGEST_NAME and not quoted.startswith("."):
        return quoted
    return "~" + hashlib.sha256(name.encode()).hexdigest()


def clear(root: Path) -> None:
    """Removes the store in ``root`` (``--fresh``): its own entries only, and only from a directory
    that is a store or empty."""
    _check_is_store(root)
    for name in _ENTRIES:
        path = root / name
        if path.is_dir():
            import shutil

            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def _check_is_store(root: Path) -> None:
    if root.exists() and not root.is_dir():
        raise StoreUnusable(f"the data directory {root} is not a directory")
    if root.is_dir() and not (root / MARKER).exists() and any(root.iterdir()):
        raise StoreUnusable(
            f"{root} is not empty and is not a tracklane store (no {MARKER}); "
            "set TRACKLANE_DATA_DIR to an empty or new directory"
        )


# --- S3 objects --------------------------------------------------------------------------------------


class _StoredValue:
    """Stands in for a FakeKey's value buffer (a SpooledTemporaryFile): reads come from the stored
    file, opened for each read, so restoring a key reads nothing and keeps no file open. moto only
    seeks and reads a key's buffer after creating it; should anything write to it, the write goes
    to a temporary file of its own and never into the store."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._position = 0
        self._replaced: Any = None
        self.closed = False

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if self._replaced is not None:
            return int(self._replaced.seek(offset, whence))
        if whence == os.SEEK_SET:
            self._position = offset
        elif whence == os.SEEK_CUR:
            self._position += offset
        else:
            self._position = self.path.stat().st_size + offset
        return self._position

    def tell(self) -> int:
        return int(self._replaced.tell()) if self._replaced is not None else self._position

    def read(self, size: int = -1) -> bytes:
        if self._replaced is not None:
            return bytes(self._replaced.read(size))
        with self.path.open("rb") as stored:
            stored.seek(self._position)
            data = stored.read(size)
        self._position += len(data)
        return data

    def truncate(self, size: int | None = None) -> int:
        if self._replaced is None:
            # Kept as the buffer from now on; close() closes it, as moto's dispose() closes its own.
            self._replaced = tempfile.SpooledTemporaryFile()  # noqa: SIM115
        return int(self._replaced.truncate(size))

    def write(self, data: bytes) -> int:
        if self._replaced is None:
            self.truncate(0)
        return int(self._replaced.write(data))

    def close(self) -> None:
        if self._replaced is not None:
            self._replaced.close()
        self.closed = True


def _record_of(key: Any, data_name: str, etag: str) -> dict[str, Any]:
    return {
        "key": key.name,
        "data": data_name,
        "size": key.size,
        "etag": etag,
        "last_modified": key.last_modified.isoformat(),
        "metadata": dict(key.metadata),
        "storage_class": key.storage_class,
        "checksum": {
            "algorithm": key.checksum_algorithm,
            "value": key.checksum_value,
            "type": key.checksum_type,
            "parts": key.checksum_parts,
        },
    }


@dataclass(frozen=True)
class _StoredObject:
    bucket: str
    record_path: Path
    record: dict[str, Any]

    @property
    def data_path(self) -> Path:
        return self.record_path.with_name(self.record["data"])


class _Objects:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def _lock(self, bucket: str, key: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault((bucket, key), threading.Lock())

    def record_path(self, bucket: str, key: str) -> Path:
        return self.root / _stem(bucket) / (_stem(key) + _RECORD)

    def sync(self, backend: Any, bucket_name: str, key_name: str, owner: object) -> None:
        """Makes the files of ``key_name`` say what moto holds for it now (whichever request
        changed it last, the files end as moto is)."""
        with self._lock(bucket_name, key_name):
            bucket = backend.buckets.get(bucket_name)
            current = bucket.keys.get(key_name) if bucket is not None else None
            record_path = self.record_path(bucket_name, key_name)
            if current is None or not hasattr(current, "_value_buffer"):  # gone, or a delete marker
                self._remove(record_path)
            elif getattr(current, "_tracklane_store", None) is not owner:
                self._write(current, record_path)
                current._tracklane_store = owner

    def _previous_data(self, record_path: Path) -> Path | None:
        try:
            return record_path.with_name(json.loads(record_path.read_bytes())["data"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _write(self, key: Any, record_path: Path) -> None:
        record_path.parent.mkdir(parents=True, exist_ok=True)
        previous = self._previous_data(record_path)
        data_name = f"{record_path.name[: -len(_RECORD)]}.{uuid.uuid4().hex[:12]}{_DATA}"
        data_path = record_path.with_name(data_name)
        digest = hashlib.md5(usedforsecurity=False) if key._etag is None else None
        with key.lock, data_path.open("wb") as out:
            buffer = key._value_buffer
            buffer.seek(0)
            while block := buffer.read(_COPY_CHUNK):
                out.write(block)
                if digest is not None:
                    digest.update(block)
            out.flush()
            os.fsync(out.fileno())
        if digest is not None:
            key._etag = digest.hexdigest()
        record = _record_of(key, data_name, key.etag.strip('"'))
        _write_atomically(record_path, lambda out: out.write(json.dumps(record).encode()))
        if previous is not None and previous != data_path:
            previous.unlink(missing_ok=True)

    def _remove(self, record_path: Path) -> None:
        previous = self._previous_data(record_path)
        if not record_path.exists():
            return
        record_path.unlink()
        _fsync_directory(record_path.parent)
        if previous is not None:
            previous.unlink(missing_ok=True)

    def load(self) -> list[_StoredObject]:
        """Every stored object's record, checked against its data file (by size: reading the bytes
        is what the store avoids); files no record names, left by a crash, are removed."""
        stored: list[_StoredObject] = []
        if not self.root.is_dir():
            return stored
        for bucket_dir in sorted(self.root.iterdir()):
            if not bucket_dir.is_dir():
                continue
            referenced: set[str] = set()
            for record_path in sorted(bucket_dir.glob(f"*{_RECORD}")):
                if record_path.name.startswith(_PARTIAL):
                    continue
                record = _read_json(record_path)
                if not isinstance(record, dict) or not {"key", "data", "size", "etag"} <= record.keys():
                    raise StoreUnusable(f"{record_path} is not an object record of this store")
                entry = _StoredObject(unquote(bucket_dir.name), record_path, record)
                try:
                    size = entry.data_path.stat().st_size
                except OSError:
                    raise StoreUnusable(f"{record_path} names {entry.data_path.name}, which is missing") from None
                if size != record["size"]:
                    raise StoreUnusable(
                        f"{entry.data_path} holds {size} bytes where its record "
                        f"{record_path.name} says {record['size']}"
                    )
                referenced.add(record["data"])
                stored.append(entry)
            for leftover in bucket_dir.iterdir():
                if leftover.name.startswith(_PARTIAL) or (
                    leftover.name.endswith(_DATA) and leftover.name not in referenced
                ):
                    leftover.unlink()
        return stored

    def restore(self, backend: Any, stored: list[_StoredObject], owner: object, report: RestoreReport) -> None:
        from moto.s3.models import FakeKey

        for entry in stored:
            bucket = backend.buckets.get(entry.bucket)
            if bucket is None:
                report.skipped[f"s3://{entry.bucket}"] = report.skipped.get(f"s3://{entry.bucket}", 0) + 1
                continue
            record = entry.record
            checksum = record.get("checksum") or {}
            key = FakeKey(
                name=record["key"],
                value=b"",
                account_id=backend.account_id,
                region_name=backend.region_name,
                storage=record.get("storage_class") or "STANDARD",
                etag=record["etag"],
                version_id="null",
                bucket_name=entry.bucket,
                checksum_value=checksum.get("value"),
                checksum_type=checksum.get("type"),
                checksum_parts=checksum.get("parts"),
            )
            key.checksum_algorithm = checksum.get("algorithm")
            key._value_buffer.close()
            key._value_buffer = _StoredValue(entry.data_path)  # type: ignore[assignment]
            key.contentsize = record["size"]
            key.last_modified = datetime.fromisoformat(record["last_modified"])
            key.set_metadata(dict(record.get("metadata") or {}))
            key._tracklane_store = owner  # type: ignore[attr-defined]
            # Straight into the bucket: a restored object is not a new one, so no ObjectCreated.
            bucket.keys[record["key"]] = key
            report.objects += 1
            report.object_bytes += record["size"]


# --- DynamoDB tables -----------------------------------------------------------------------------------


def _write_table_lines(out: Any, lines: list[str], journal: int) -> None:
    # ``journal``: the first journal generation whose writes this snapshot does not hold.
    header = {"format": FORMAT, "version": VERSION, "of": "dynamodb", "items": len(lines), "journal": journal}
    out.write((json.dumps(header) + "\n").encode())
    for line in lines:
        out.write(line.encode())
        out.write(b"\n")
    out.write((json.dumps({"end": len(lines)}) + "\n").encode())


def _load_tables(path: Path) -> tuple[list[tuple[str, dict[str, Any]]], int]:
    """The snapshot's items, all of them or StoreUnusable: never a part of it; and the first
    journal generation to replay after them."""
    if not path.exists():
        return [], 0
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise StoreUnusable(f"cannot read the table snapshot {path}: {error}") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    try:
        header = json.loads(lines[0]) if lines else None
        if not isinstance(header, dict) or header.get("format") != FORMAT or header.get("of") != "dynamodb":
            raise StoreUnusable(f"{path} is not a table snapshot of this store (its first line says otherwise)")
        if header.get("version") != VERSION:
            raise StoreUnusable(f"{path} is in format version {header.get('version')}; this stack reads {VERSION}")
        trailer = json.loads(lines[-1]) if len(lines) > 1 else None
        if (
            not isinstance(trailer, dict)
            or trailer.get("end") != header.get("items")
            or len(lines) - 2 != trailer["end"]
        ):
            raise StoreUnusable(f"the table snapshot {path} is truncated (it does not end as its first line announces)")
        items = []
        for number, line in enumerate(lines[1:-1], start=2):
            entry = json.loads(line)
            if not isinstance(entry, dict) or not isinstance(entry.get("item"), dict):
                raise StoreUnusable(f"{path}, line {number}: not an item")
            items.append((str(entry["table"]), entry["item"]))
    except ValueError as error:
        raise StoreUnusable(f"the table snapshot {path} is damaged: {error}") from None
    return items, int(header.get("journal", 0))


# --- the journal of table writes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Written:
    """A journal record: what an item is after a write (``item`` None: deleted)."""

    table: str
    key: dict[str, Any]
    item: dict[str, Any] | None


class _Journal:
    """Table writes since the last snapshot, appended as each one is made: the item after the write,
    or its deletion (after-images, not requests: replaying one needs no condition or expression
    evaluated again, and replaying it twice changes nothing). One file per generation; a snapshot
    starts a new generation while writes are held, names it in its header, and once it is renamed
    into place the generations before it are removed. Records are appended with one ``write`` to a
    file opened for appending, not fsynced: a killed process loses none the kernel took, only a
    machine crash can (the snapshot every interval is fsynced)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.generation = 0
        self._descriptor: int | None = None

    def _path(self, generation: int) -> Path:
        return self.directory / f"{generation:012d}.jsonl"

    def generations(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        return sorted(int(path.stem) for path in self.directory.glob("*.jsonl") if path.stem.isdigit())

    def start_generation(self) -> int:
        """Call with writes held: every write from now on goes to the new generation."""
        self.close()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.generation = max([self.generation, *self.generations()]) + 1
        self._descriptor = os.open(self._path(self.generation), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        _fsync_directory(self.directory)
        return self.generation

    def append(self, records: list[_Written]) -> None:
        from moto.dynamodb.models.utilities import DynamoJsonEncoder

        if self._descriptor is None or not records:
            return
        data = "".join(
            json.dumps({"table": r.table, "key": r.key, "item": r.item}, cls=DynamoJsonEncoder) + "\n" for r in records
        ).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(self._descriptor, view) :]

    def remove_before(self, generation: int) -> None:
        for older in self.generations():
            if older < generation:
                self._path(older).unlink(missing_ok=True)

    def close(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def load(self, first: int) -> list[_Written]:
        """The records of generation ``first`` and later, in order. A generation's last line may be
        cut short: its process was killed while appending it, so that write was in flight, and it
        is dropped (each start appends to a generation of its own, so a cut line stays the last of
        its file). Any other line that is not a record is StoreUnusable."""
        records: list[_Written] = []
        for generation in self.generations():
            if generation < first:
                continue  # a snapshot holds it; left by a stop between the snapshot and its removal
            path = self._path(generation)
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as error:
                raise StoreUnusable(f"cannot read the table journal {path}: {error}") from None
            lines = text.split("\n")
            lines.pop()  # "" after a whole last record, else the record the kill cut short
            for number, line in enumerate(lines, start=1):
                try:
                    entry = json.loads(line)
                    records.append(_Written(str(entry["table"]), dict(entry["key"]), entry["item"]))
                except (ValueError, KeyError, TypeError):
                    raise StoreUnusable(f"{path}, line {number}: not a journal record") from None
            self.generation = max(self.generation, generation)
        return records


# --- moto hooks ------------------------------------------------------------------------------------------


class _HookState:
    # The store moto's hooks report to; None (tests, a stack without a data directory): they do nothing.
    attached: LocalStore | None = None
    # Table writes since the process started; a snapshot is due when it moved.
    changes = 0


_hooks = _HookState()
_pending = threading.local()
# The items a transaction in progress on this thread wrote: journaled once it committed, never if
# it was cancelled (moto then puts the tables back as they were).
_transaction = threading.local()


def _count_table_writes(method: Callable[..., Any], name: str) -> Callable[..., Any]:
    import inspect

    signature = inspect.signature(method)

    @functools.wraps(method)
    def counted(backend: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            store = _hooks.attached
            if store is None:
                return method(backend, *args, **kwargs)
            # The write and its record under the same hold (moto_atomic's lock, reentrant): the
            # journal's order is the order the writes were made in, and a snapshot, which holds
            # writes too, starts its generation between two writes, never inside one.
            with moto_atomic.writes_held():
                if name == "transact_write_items":
                    _transaction.written = written = []
                    try:
                        result = method(backend, *args, **kwargs)
                    finally:
                        _transaction.written = None
                else:
                    result = method(backend, *args, **kwargs)
                    written = [_written_key(backend, name, signature.bind(backend, *args, **kwargs).arguments)]
                    in_transaction = getattr(_transaction, "written", None)
                    if in_transaction is not None:
                        in_transaction.extend(written)
                        return result
                store.journal_writes(backend, written)
                return result
        finally:
            # After the write: a snapshot that read the old count took its items before it, and the
            # next one is taken because the count moved.
            _hooks.changes += 1

    counted.__tracklane_counted__ = True  # type: ignore[attr-defined]
    return counted


def _written_key(backend: Any, name: str, arguments: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    table_name = arguments["table_name"]
    if name == "put_item":
        table = backend.get_table(table_name)
        return table_name, {attribute: arguments["item_attrs"][attribute] for attribute in table.table_key_attrs}
    return table_name, dict(arguments["key"])


def _after_images(backend: Any, written: list[tuple[str, dict[str, Any]]]) -> list[_Written]:
    records = []
    for table_name, key in written:
        table = backend.get_table(table_name)
        item = table.get_item(*backend.get_keys_value(table, key))
        records.append(_Written(table_name, key, item.to_json()["Attributes"] if item is not None else None))
    return records


def _mark_object(method: Callable[..., Any], key_argument: str) -> Callable[..., Any]:
    import inspect

    signature = inspect.signature(method)

    @functools.wraps(method)
    def marked(backend: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(backend, *args, **kwargs)
        finally:
            if _hooks.attached is not None:
                bound = signature.bind(backend, *args, **kwargs)
                touched = getattr(_pending, "keys", None)
                if touched is None:
                    touched = _pending.keys = []
                touched.append((backend, bound.arguments["bucket_name"], bound.arguments[key_argument]))

    marked.__tracklane_marked__ = True  # type: ignore[attr-defined]
    return marked


def _flush_after(handle: Callable[..., Any]) -> Callable[..., Any]:
    """After an S3 request is handled (its metadata, ACL and tags set, which moto does after
    ``put_object``), the keys it touched are written to the store."""

    @functools.wraps(handle)
    def handled(*args: Any, **kwargs: Any) -> Any:
        try:
            return handle(*args, **kwargs)
        finally:
            touched = getattr(_pending, "keys", None)
            if touched:
                _pending.keys = []
                store = _hooks.attached
                if store is not None:
                    for backend, bucket_name, key_name in _unique(touched):
                        store.objects.sync(backend, bucket_name, key_name, store)

    handled.__tracklane_flushed__ = True  # type: ignore[attr-defined]
    return handled


def _unique(touched: list[tuple[Any, str, str]]) -> Iterator[tuple[Any, str, str]]:
    seen: set[tuple[int, str, str]] = set()
    for backend, bucket, key in touched:
        if (id(backend), bucket, key) not in seen:
            seen.add((id(backend), bucket, key))
            yield backend, bucket, key


def install_hooks() -> None:
    """Idempotent. Inert until a store is attached."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.s3.models import S3Backend
    from moto.s3.responses import S3Response

    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        method = getattr(DynamoDBBackend, name)
        if not getattr(method, "__tracklane_counted__", False):
            setattr(DynamoDBBackend, name, _count_table_writes(method, name))
    for name in ("put_object", "delete_object"):
        method = getattr(S3Backend, name)
        if not getattr(method, "__tracklane_marked__", False):
            setattr(S3Backend, name, _mark_object(method, "key_name"))
    for name in ("key_response", "bucket_response"):
        method = getattr(S3Response, name)
        if not getattr(method, "__tracklane_flushed__", False):
            setattr(S3Response, name, _flush_after(method))


# --- Step Functions executions ---------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class RecordedExecution:
    """An execution that was running when the store recorded it."""

    state_machine_arn: str
    name: str
    input: str

    def to_json(self) -> dict[str, str]:
        return {"stateMachineArn": self.state_machine_arn, "name": self.name, "input": self.input}


def _executions_backend(region: str) -> Any:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    return stepfunctions_parser_backends[DEFAULT_ACCOUNT_ID][region]


def _running_executions(region: str) -> list[RecordedExecution]:
    running = []
    for machine in list(_executions_backend(region).state_machines):
        for execution in list(machine.executions):
            # moto lists an execution just before its worker marks it RUNNING (until then its
            # ``status`` raises): one being started counts as running.
            if getattr(execution, "status", None) in (None, "RUNNING"):
                running.append(RecordedExecution(machine.arn, execution.name, execution.execution_input))
    return sorted(running)


def _write_executions(out: Any, executions: list[RecordedExecution]) -> None:
    body = {
        "format": FORMAT,
        "version": VERSION,
        "of": "stepfunctions",
        "running": [execution.to_json() for execution in executions],
    }
    out.write(json.dumps(body).encode())


def _load_executions(path: Path) -> list[RecordedExecution]:
    if not path.exists():
        return []
    described = _read_json(path)
    if not isinstance(described, dict) or described.get("format") != FORMAT or described.get("of") != "stepfunctions":
        raise StoreUnusable(f"{path} is not a record of executions of this store")
    if described.get("version") != VERSION:
        raise StoreUnusable(f"{path} is in format version {described.get('version')}; this stack reads {VERSION}")
    running = described.get("running")
    if not isinstance(running, list):
        raise StoreUnusable(f"{path} lists no running executions")
    executions = []
    for number, entry in enumerate(running, start=1):
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(name), str) for name in ("stateMachineArn", "name", "input")
        ):
            raise StoreUnusable(f"{path}, execution {number}: not a recorded execution")
        executions.append(RecordedExecution(entry["stateMachineArn"], entry["name"], entry["input"]))
    return sorted(executions)


# --- the store ---------------------------------------------------------------------------------------------


class LocalStore:
    """One data directory. ``open`` reads and checks all of it (StoreUnusable before anything
    starts), ``restore`` puts it into moto once provisioning has made the tables and buckets,
    ``attach`` makes moto's writes go to disk from then on, ``resume_executions`` starts the
    recorded executions again, ``close`` takes the last snapshot."""

    def __init__(self, root: Path, region: str, *, snapshot_interval_s: float = 2.0) -> None:
        self.root = root
        self.region = region
        self.objects = _Objects(root / OBJECTS)
        self.journal = _Journal(root / JOURNAL)
        self._snapshot_interval_s = snapshot_interval_s
        self._items: list[tuple[str, dict[str, Any]]] = []
        self._journaled: list[_Written] = []
        self._stored_objects: list[_StoredObject] = []
        self._snapshot_lock = threading.Lock()
        self._snapshot_changes = -1
        # Recorded running at the last stop, not started again yet; and what the record says now.
        self._to_resume: list[RecordedExecution] = []
        self._executions_recorded: list[RecordedExecution] = []
        self._executions_lock = threading.Lock()
        self._stop = threading.Event()
        self._snapshotter: threading.Thread | None = None

    @classmethod
    def open(cls, root: Path, region: str, *, fresh: bool = False, snapshot_interval_s: float = 2.0) -> LocalStore:
        root = root.resolve()
        if fresh:
            clear(root)
        _check_is_store(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StoreUnusable(f"cannot create the data directory {root}: {error.strerror or error}") from None
        marker = root / MARKER
        if marker.exists():
            described = _read_json(marker)
            if not isinstance(described, dict) or described.get("format") != FORMAT:
                raise StoreUnusable(f"{marker} does not describe a tracklane store")
            if described.get("version") != VERSION:
                raise StoreUnusable(f"{marker}: format version {described.get('version')}; this stack reads {VERSION}")
        else:
            body = json.dumps({"format": FORMAT, "version": VERSION}).encode()
            _write_atomically(marker, lambda out: out.write(body))
        store = cls(root, region, snapshot_interval_s=snapshot_interval_s)
        store._items, first_generation = _load_tables(root / TABLES)
        store._journaled = store.journal.load(first_generation)
        store._stored_objects = store.objects.load()
        store._to_resume = store._executions_recorded = _load_executions(root / EXECUTIONS)
        return store

    def restore(self) -> RestoreReport:
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends
        from moto.s3.models import s3_backends

        started = time.perf_counter()
        report = RestoreReport()
        tables = dynamodb_backends[DEFAULT_ACCOUNT_ID][self.region].tables
        detached: dict[str, Any] = {}
        try:
            for name, item in self._items:
                table = tables.get(name)
                if table is None:
                    report.skipped[name] = report.skipped.get(name, 0) + 1
                    continue
                if name not in detached:
                    detached[name], table.stream_shard = table.stream_shard, None
                table.put_item(item, overwrite=True)
                report.items += 1
            for written in self._journaled:
                table = tables.get(written.table)
                if table is None:
                    report.skipped[written.table] = report.skipped.get(written.table, 0) + 1
                    continue
                if written.table not in detached:
                    detached[written.table], table.stream_shard = table.stream_shard, None
                if written.item is not None:
                    table.put_item(written.item, overwrite=True)
                else:
                    table.delete_item(
                        *dynamodb_backends[DEFAULT_ACCOUNT_ID][self.region].get_keys_value(table, written.key)
                    )
                report.journaled += 1
        finally:
            for name, shard in detached.items():
                tables[name].stream_shard = shard
        self.objects.restore(s3_backends[DEFAULT_ACCOUNT_ID]["global"], self._stored_objects, self, report)
        self._items, self._stored_objects, self._journaled = [], [], []
        report.executions = len(self._to_resume)
        report.seconds = time.perf_counter() - started
        if report.skipped:
            logger.warning("store: not restored (no such table or bucket now)", extra={"skipped": report.skipped})
        return report

    def attach(self) -> None:
        install_hooks()
        with moto_atomic.writes_held():
            self.journal.start_generation()
            # Writes replayed from the journal are folded into a snapshot at the first interval.
            replayed = bool(self.journal.generations()[:-1])
            self._snapshot_changes = -1 if replayed else _hooks.changes
            _hooks.attached = self
        self._snapshotter = threading.Thread(target=self._snapshot_periodically, name="store-snapshots", daemon=True)
        self._snapshotter.start()

    def resume_executions(self) -> list[str]:
        """Starts each execution recorded running at the last stop again, from its beginning,
        under the same name with the same input; returns their names. Call after ``attach``, once
        provisioning has made the state machines. A name moto knows already is left alone (it was
        started again by something else first: the sweeper starts an original's); an execution of
        a state machine that provisioning no longer makes is not started."""
        from moto.stepfunctions.exceptions import ExecutionAlreadyExists

        backend = _executions_backend(self.region)
        resumed, skipped = [], []
        for recorded in self._to_resume:
            machine = next((m for m in backend.state_machines if m.arn == recorded.state_machine_arn), None)
            if machine is None:
                skipped.append(recorded.name)
                continue
            if any(execution.name == recorded.name for execution in list(machine.executions)):
                continue
            try:
                backend.start_execution(recorded.state_machine_arn, name=recorded.name, execution_input=recorded.input)
            except ExecutionAlreadyExists:
                continue  # started by someone else meanwhile
            resumed.append(recorded.name)
        with self._executions_lock:
            self._to_resume = []
        if skipped:
            logger.warning("store: executions not started again (no such state machine now)", extra={"names": skipped})
        return resumed

    def close(self) -> None:
        """The last snapshot; call once nothing writes any more (moto may still be running: the
        executions it still runs are recorded as they are then)."""
        self._stop.set()
        if self._snapshotter is not None:
            self._snapshotter.join(timeout=30)
        if _hooks.attached is self:
            _hooks.attached = None
        self.snapshot_tables(only_if_changed=True)
        self.record_executions()
        self.journal.close()

    def journal_writes(self, backend: Any, written: list[tuple[str, dict[str, Any]]]) -> None:
        """Called by moto's write methods, writes held, once a write has been made."""
        try:
            self.journal.append(_after_images(backend, written))
        except Exception:
            # The write is made (moto answers it); the next snapshot holds it.
            logger.exception("store: a table write could not be journaled")

    def _snapshot_periodically(self) -> None:
        while not self._stop.wait(self._snapshot_interval_s):
            try:
                self.snapshot_tables(only_if_changed=True)
            except Exception:
                logger.exception("store: table snapshot failed; the previous one stays")
            try:
                self.record_executions()
            except Exception:
                logger.exception("store: recording the running executions failed; the previous record stays")

    def record_executions(self) -> bool:
        """Writes which executions run now (their state machine, name and input), when that changed
        since the last record; returns whether it wrote. Those recorded but not started again yet
        are still to be resumed, and stay in the record."""
        with self._executions_lock:
            running = sorted({*_running_executions(self.region), *self._to_resume})
            if running == self._executions_recorded:
                return False
            _write_atomically(self.root / EXECUTIONS, lambda out: _write_executions(out, running))
            self._executions_recorded = running
            return True

    def snapshot_tables(self, *, only_if_changed: bool = False) -> int | None:
        """Writes every table's items; returns how many (None when nothing changed)."""
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.utilities import DynamoJsonEncoder

        with self._snapshot_lock:
            tables = dynamodb_backends[DEFAULT_ACCOUNT_ID][self.region].tables
            with moto_atomic.writes_held():
                changes = _hooks.changes
                if only_if_changed and changes == self._snapshot_changes:
                    return None
                lines = [
                    json.dumps({"table": name, "item": item.to_json()["Attributes"]}, cls=DynamoJsonEncoder)
                    for name, table in tables.items()
                    for item in table.all_items()
                ]
                generation = self.journal.start_generation()
            _write_atomically(self.root / TABLES, lambda out: _write_table_lines(out, lines, generation))
            self.journal.remove_before(generation)
            self._snapshot_changes = changes
            return len(lines)


@contextlib.contextmanager
def attached(store: LocalStore) -> Iterator[LocalStore]:
    store.attach()
    try:
        yield store
    finally:
        store.close()
