"""The bytes: one signed PUT, or the parts of a multipart plan PUT in parallel.

Part *n* is bytes ``[(n-1)·partSize, +size)`` of the file, and its URL is signed over exactly that
Content-Length: the body is streamed from the file in chunks with that length declared (never
chunked encoding, which the signature does not cover). Streaming from the file keeps memory flat
whatever the part size, reports bytes as they go (the progress bars), and lets a stop request
(Ctrl-C) end a part mid-way instead of waiting for it to finish.

A part that fails on the way (a dropped connection, a 5xx, an expired URL) is sent again with a
fresh URL, a few times; then the whole run stops and says so, and the parts already stored are
what the next run does not send again.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from client.api import Api, ApiError, Unreachable

CHUNK_BYTES = 256 * 1024
PART_ATTEMPTS = 4
# A URL this close to its expiry is signed again before use: a part may take a while to send.
URL_MARGIN_S = 60.0
MAX_PART_URLS = 100

BytesCallback = Callable[[int], None]


class Interrupted(Exception):
    """The run was asked to stop (Ctrl-C, or the test hook that stops after a number of parts)."""


class FileChanged(Exception):
    """The file is shorter than when the upload began: its parts would not be the planned ones."""

    code = "file_changed"


class StopFlag:
    """Set once, from the main thread (Ctrl-C) or a worker; every part checks it between chunks.
    A child flag is also set when its parent is: one file's failed part stops that file's other
    parts, Ctrl-C stops everything."""

    def __init__(self, parent: StopFlag | None = None) -> None:
        self._event = threading.Event()
        self._reason = ""
        self.parent = parent

    def set(self, reason: str) -> None:
        if not self._event.is_set():
            self._reason = reason
            self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set() or (self.parent is not None and self.parent.is_set())

    @property
    def reason(self) -> str:
        if self.parent is not None and self.parent.is_set():
            return self.parent.reason
        return self._reason


@dataclass(frozen=True)
class Part:
    number: int
    offset: int
    size: int


def plan(byte_size: int, part_size: int, part_count: int) -> list[Part]:
    """Every part of a plan: all ``part_size`` long but the last, which holds the rest."""
    parts = []
    for number in range(1, part_count + 1):
        offset = (number - 1) * part_size
        parts.append(Part(number, offset, min(part_size, byte_size - offset)))
    return parts


def file_chunks(path: Path, offset: int, size: int, on_bytes: BytesCallback, stop: StopFlag) -> Iterator[bytes]:
    with path.open("rb") as source:
        source.seek(offset)
        remaining = size
        while remaining:
            if stop.is_set():
                raise Interrupted(stop.reason)
            chunk = source.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                raise FileChanged(f"{path} is shorter than when the upload began")
            remaining -= len(chunk)
            on_bytes(len(chunk))
            yield chunk


def storage_error(response: httpx.Response) -> ApiError:
    """S3 answers XML: its ``<Code>`` and ``<Message>`` as an ApiError."""
    text = response.text
    code = re.search(r"<Code>([^<]+)</Code>", text)
    message = re.search(r"<Message>([^<]+)</Message>", text)
    return ApiError(
        response.status_code,
        f"storage_{code.group(1)}" if code else f"storage_http_{response.status_code}",
        message.group(1) if message else text.strip()[:200],
    )


def put_range(
    storage: httpx.Client,
    url: str,
    path: Path,
    offset: int,
    size: int,
    *,
    headers: dict[str, str],
    on_bytes: BytesCallback,
    stop: StopFlag,
) -> str:
    """PUTs ``size`` bytes of ``path`` from ``offset``; the ETag storage answers. Bytes reported
    for an attempt that fails are taken back, so a progress bar never counts a byte twice."""
    sent = 0

    def counted(n: int) -> None:
        nonlocal sent
        sent += n
        on_bytes(n)

    request_headers = {**headers, "Content-Length": str(size)}
    try:
        response = storage.put(url, content=file_chunks(path, offset, size, counted, stop), headers=request_headers)
    except BaseException:
        on_bytes(-sent)
        raise
    if not response.is_success:
        on_bytes(-sent)
        raise storage_error(response)
    return str(response.headers.get("ETag", "")).strip('"')


def _retriable(error: Exception) -> bool:
    if isinstance(error, httpx.TransportError):
        return True
    # 403: the URL expired (or was signed for another size: then the fresh one fails the same way).
    return isinstance(error, ApiError) and (error.status >= 500 or error.status in {403, 408, 429})


def put_whole(
    api: Api,
    url: str,
    path: Path,
    size: int,
    *,
    headers: dict[str, str],
    on_bytes: BytesCallback,
    stop: StopFlag,
) -> None:
    """One signed PUT of the whole file, sent again on a dropped connection or a 5xx."""
    for attempt in range(PART_ATTEMPTS):
        try:
            put_range(api.storage, url, path, 0, size, headers=headers, on_bytes=on_bytes, stop=stop)
            return
        except (httpx.TransportError, ApiError) as error:
            if not _retriable(error) or attempt == PART_ATTEMPTS - 1:
                if isinstance(error, httpx.TransportError):
                    raise Unreachable(f"PUT to storage failed: {error}") from error
                raise
            api.sleep(0.5 * 2**attempt)


def _parse_time(value: str | None) -> float:
    if not value:
        return 0.0
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC).timestamp()


class PartUrls:
    """Signed part URLs, from the intent's first batch, then ``parts/urls`` as they run out or
    near their expiry (15 minutes at most: a big file outlives its first URLs)."""

    def __init__(
        self,
        api: Api,
        upload_id: str,
        initial: list[dict[str, Any]] | None = None,
        expires_at: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.api = api
        self.upload_id = upload_id
        self.clock = clock
        self._lock = threading.Lock()
        self._urls: dict[int, tuple[str, int, float]] = {}
        self.fetches = 0
        if initial:
            self._add(initial, expires_at)

    def _add(self, parts: list[dict[str, Any]], expires_at: str | None) -> None:
        expiry = _parse_time(expires_at)
        for part in parts:
            self._urls[int(part["partNumber"])] = (str(part["url"]), int(part["size"]), expiry)

    def get(self, number: int) -> tuple[str, int]:
        with self._lock:
            known = self._urls.get(number)
            if known is None or known[2] - self.clock() < URL_MARGIN_S:
                fresh = self.api.part_urls(self.upload_id, number, MAX_PART_URLS)
                self.fetches += 1
                self._add(fresh.get("parts", []), fresh.get("expiresAt"))
                known = self._urls.get(number)
                if known is None:
                    raise ApiError(0, "part_url_missing", f"the API signed no URL for part {number}")
            return known[0], known[1]

    def forget(self, number: int) -> None:
        with self._lock:
            self._urls.pop(number, None)


@dataclass
class PartsOutcome:
    uploaded: list[int]


def upload_parts(
    api: Api,
    path: Path,
    parts: list[Part],
    urls: PartUrls,
    *,
    parallel: int,
    on_bytes: BytesCallback,
    stop: StopFlag,
    on_part: Callable[[int], None] = lambda _: None,
) -> PartsOutcome:
    """PUTs ``parts`` with up to ``parallel`` in flight. Returns when all are stored; raises
    Interrupted when ``stop`` is set (Ctrl-C: the parts in flight are abandoned mid-way), or the
    first part's error once its attempts are used up (the other parts are stopped too)."""
    sender = _PartSender(api, path, urls, on_bytes=on_bytes, on_part=on_part, stop=stop)
    executor = ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="part")
    pending: set[Future[None]] = {executor.submit(sender.send, part) for part in parts}
    try:
        while pending:
            # A timeout keeps the main thread responsive to Ctrl-C on every platform.
            done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            failed = next((f for f in done if f.exception() is not None), None)
            if failed is not None:
                sender.batch.set("a part failed")
                # Ctrl-C (or the stop hook) is what the caller needs to hear, not a part it cut short.
                if stop.is_set():
                    raise Interrupted(stop.reason)
                raise sender.fatal[0] if sender.fatal else failed.exception() or Interrupted("a part failed")
    except KeyboardInterrupt:
        stop.set("interrupted")
        raise Interrupted("interrupted") from None
    finally:
        executor.shutdown(wait=True, cancel_futures=sender.batch.is_set())
    if stop.is_set():
        raise Interrupted(stop.reason)
    return PartsOutcome(sorted(sender.uploaded))


class _PartSender:
    """One part at a time per worker thread, its attempts, and what all of them have stored."""

    def __init__(
        self,
        api: Api,
        path: Path,
        urls: PartUrls,
        *,
        on_bytes: BytesCallback,
        on_part: Callable[[int], None],
        stop: StopFlag,
    ) -> None:
        self.api, self.path, self.urls = api, path, urls
        self.on_bytes, self.on_part = on_bytes, on_part
        # This file's parts stop together when one fails; Ctrl-C (the parent) stops them too.
        self.batch = StopFlag(parent=stop)
        self.uploaded: list[int] = []
        self.fatal: list[BaseException] = []
        self._lock = threading.Lock()

    def send(self, part: Part) -> None:
        try:
            self._attempts(part)
        except Interrupted:
            raise
        except BaseException as error:
            # The first failure is the one to report; the parts it cut short stop at once.
            with self._lock:
                self.fatal.append(error)
            self.batch.set("a part failed")
            raise

    def _attempts(self, part: Part) -> None:
        for attempt in range(PART_ATTEMPTS):
            if self.batch.is_set():
                raise Interrupted(self.batch.reason)
            url, size = self.urls.get(part.number)
            if size != part.size:
                raise ApiError(0, "part_size_mismatch", f"part {part.number}: the API signed {size} bytes")
            try:
                put_range(
                    self.api.storage, url, self.path, part.offset, part.size,
                    headers={}, on_bytes=self.on_bytes, stop=self.batch,
                )  # fmt: skip
            except (httpx.TransportError, ApiError) as error:
                if not _retriable(error) or attempt == PART_ATTEMPTS - 1:
                    if isinstance(error, httpx.TransportError):
                        raise Unreachable(f"part {part.number} could not be sent: {error}") from error
                    raise
                self.urls.forget(part.number)
                self.api.sleep(0.5 * 2**attempt)
                continue
            with self._lock:
                self.uploaded.append(part.number)
            self.on_part(part.number)
            return
