"""An upload's processing, followed over ``GET /v1/uploads/{uploadId}/progress`` (Server-Sent
Events) until its terminal event: ``ready``, ``failed`` (with ``code`` and ``message``) or
``duplicate`` (with the track that already has these bytes).

The local stack streams one long response; a deployed API answers the events not seen yet and
closes, asking the client (``retry:``) to come back. Both are the same loop here: read what comes,
remember the last event's ``id``, reconnect after ``retry`` ms with ``Last-Event-ID``, and so get
only what has not been seen (the server keeps no state per connection). A dropped connection is
reconnected the same way, with a growing pause; only a refusal (``ApiError``), the deadline or a
stop request ends the loop early.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from client.api import Api, Unreachable
from client.transfer import Interrupted, StopFlag

DEFAULT_RETRY_MS = 2000
# Consecutive connection failures tolerated before giving up (any event received resets the count).
MAX_FAILURES = 8
TERMINAL_PHASES = {"ready", "failed", "duplicate"}


@dataclass
class Event:
    """One dispatched SSE event: the last ``id`` seen so far, its ``event`` type and ``data``."""

    data: str
    id: str | None = None
    event: str = "message"


@dataclass
class SseParser:
    """The event-stream format (WHATWG HTML, "Server-sent events"), line by line: ``field: value``
    lines accumulate until a blank line dispatches them; ``:`` starts a comment (the keep-alive);
    ``data`` lines join with newlines; ``id`` persists to later events; ``retry`` sets the
    reconnection delay."""

    last_id: str | None = None
    retry_ms: int = DEFAULT_RETRY_MS
    _data: list[str] = field(default_factory=list)
    _event: str = ""

    def feed(self, line: str) -> Event | None:
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self.last_id = value
        elif name == "event":
            self._event = value
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def feed_all(self, lines: Iterable[str]) -> list[Event]:
        return [event for line in lines if (event := self.feed(line)) is not None]

    def _dispatch(self) -> Event | None:
        data, event_type = self._data, self._event or "message"
        self._data, self._event = [], ""
        if not data:
            return None
        return Event(data="\n".join(data), id=self.last_id, event=event_type)


class ProgressTimeout(Exception):
    code = "progress_timeout"


def follow(
    api: Api,
    upload_id: str,
    *,
    on_event: Callable[[dict[str, Any]], None],
    stop: StopFlag,
    timeout_s: float,
    last_event_id: str | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """The terminal event's data; every event's data goes to ``on_event`` first."""
    reader = _Reader(SseParser(last_id=last_event_id), on_event, stop)
    deadline = clock() + timeout_s
    failures = 0
    while True:
        if stop.is_set():
            raise Interrupted(stop.reason)
        if clock() > deadline:
            raise ProgressTimeout(f"no terminal progress event within {timeout_s:.0f} s")
        headers = {"Accept": "text/event-stream"}
        if reader.parser.last_id:
            headers["Last-Event-ID"] = reader.parser.last_id
        try:
            with api.stream(f"/v1/uploads/{upload_id}/progress", headers=headers) as response:
                if response.status_code == 204:
                    # The terminal event was seen already (by this loop, or by the id it was given):
                    # without it in hand, read the whole story again.
                    if reader.last is not None:
                        return reader.last
                    reader.parser.last_id = None
                    continue
                terminal = reader.read(response.iter_lines())
        except httpx.TransportError as error:
            failures = 0 if reader.received else failures + 1
            reader.received = False
            if failures >= MAX_FAILURES:
                raise Unreachable(f"progress of {upload_id}: {error}") from error
            sleep(min(30.0, reader.parser.retry_ms / 1000 * 2 ** max(0, failures - 1)))
            continue
        if terminal is not None:
            return terminal
        # The server closed without a terminal event (its bound, or a deployed API's one answer).
        failures, reader.received = 0, False
        sleep(reader.parser.retry_ms / 1000)


@dataclass
class _Reader:
    parser: SseParser
    on_event: Callable[[dict[str, Any]], None]
    stop: StopFlag
    last: dict[str, Any] | None = None
    # Whether the current connection delivered any event (a connection that does resets failures).
    received: bool = False

    def read(self, lines: Iterable[str]) -> dict[str, Any] | None:
        """Events from one connection until its terminal event (returned) or its end (None)."""
        for line in lines:
            if self.stop.is_set():
                raise Interrupted(self.stop.reason)
            event = self.parser.feed(line)
            if event is None:
                continue
            data = json.loads(event.data)
            if not isinstance(data, dict):
                continue
            self.received, self.last = True, data
            self.on_event(data)
            if data.get("terminal") or data.get("phase") in TERMINAL_PHASES:
                return data
        return None
