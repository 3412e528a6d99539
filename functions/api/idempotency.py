"""``Idempotency-Key`` on every POST route: one ASGI middleware over the whole app, backed by
powertools' idempotency persistence layer on DynamoDB (``IdempotencyRecordModel``'s table).

A POST carrying the header, from an authenticated caller, is identified by (caller, method, path,
key) and fingerprinted by its body and query string:

- the first request takes the key (a conditional put: ``INPROGRESS``) and runs as usual;
- a 2xx answer is stored (status, the headers in ``REPLAYED_RESPONSE_HEADERS``, body) for
  ``idempotency_ttl_s``; a repeat with the same fingerprint gets it back, byte for byte, with
  ``Idempotency-Replayed: true``, and nothing runs again;
- any other answer (4xx, 5xx, an exception) releases the key: nothing was done that a repeat could
  duplicate, so the client may fix the body and send it again under the same key;
- the same key with another fingerprint: 422 ``idempotency_key_reused`` (also while the first runs);
- the same key and fingerprint while the first is still running: 409
  ``idempotency_key_in_progress`` with ``Retry-After``, never a second run. Answering at once
  (rather than waiting for the first to finish) keeps a Lambda from idling on another's work;
  the client repeats and gets the replay.

Requests without the header, anonymous requests (the route answers 401 as always) and other
methods pass straight through. The body-size limit runs outside this middleware, so the body
buffered here for the fingerprint is already bounded.
"""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import anyio
from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import STATUS_CONSTANTS, DataRecord
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from functions.data import idempotency_records
from functions.errors import DomainError, IdempotencyKeyInProgress, IdempotencyKeyReused, InvalidIdempotencyKey
from functions.observability import logger
from functions.settings import settings

HEADER = b"idempotency-key"
REPLAYED_HEADER = b"idempotency-replayed"
MAX_KEY_LENGTH = 255
# Printable ASCII, spaces allowed inside (HTTP already strips them around a header value).
_KEY = re.compile(rf"[\x21-\x7e](?:[\x20-\x7e]{{0,{MAX_KEY_LENGTH - 2}}}[\x21-\x7e])?")
# What a replay repeats besides status and body; the rest (date, server, content-length) is the
# replay's own.
REPLAYED_RESPONSE_HEADERS = frozenset({"content-type", "location", "etag", "last-modified", "cache-control", "link"})
# A DynamoDB item holds at most 400 KB; POST answers here are a few KB. A bigger one is answered but
# not stored (the key is released and a warning logged).
MAX_STORED_BODY_BYTES = 256 * 1024
# How long an unanswered request holds its key before another may take it over (it crashed or was
# killed). In Lambda that is the invocation's remaining time; the local stack has no Lambda context,
# so it gets as long as the deployed API function may run.
LOCAL_IN_PROGRESS_MS = 29_000
RETRY_AFTER_S = 1
# powertools' own handler retries a state that changed between its put and its get this often.
_CLAIM_ATTEMPTS = 3
# The idempotency record id is "api#<sha256 of the request's identity>".
KEY_PREFIX = "api"


def parse_key(values: list[bytes]) -> str:
    """The key from the header's raw values, or ``InvalidIdempotencyKey``."""
    if len(values) != 1:
        raise InvalidIdempotencyKey("Send one Idempotency-Key header, not several.")
    try:
        key = values[0].decode("ascii").strip()
    except UnicodeDecodeError:
        key = ""
    if not _KEY.fullmatch(key):
        raise InvalidIdempotencyKey(
            f"An Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable ASCII characters (a UUID is a good choice).",
            maxLength=MAX_KEY_LENGTH,
        )
    return key


def _canonical_body(body: bytes) -> bytes:
    try:
        value = json.loads(body)
        # Clients re-serialize on retry: key order and whitespace must not make it another request.
        return b"json:" + json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    except (ValueError, RecursionError):  # not JSON (or nested beyond what json handles): the bytes
        return b"raw:" + body


def fingerprint(body: bytes, query_string: bytes = b"") -> str:
    """What has to match for a repeat to be the same request: the body as a JSON value (else byte
    for byte) and the query parameters, in any order."""
    query = sorted(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    digest = hashlib.sha256(json.dumps(query).encode())
    digest.update(b"\n")
    digest.update(_canonical_body(body))
    return digest.hexdigest()


def request_data(*, caller: str, method: str, path: str, key: str, body_fingerprint: str) -> dict[str, Any]:
    """The payload handed to the persistence layer: ``identity`` names the record (the key is
    scoped per caller and per route), ``fingerprint`` is what a repeat must match."""
    return {
        "identity": {"caller": caller, "method": method, "path": path, "key": key},
        "fingerprint": body_fingerprint,
    }


@dataclass(frozen=True)
class StoredResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def to_record(self) -> dict[str, Any]:
        try:
            body: dict[str, str] = {"body": self.body.decode("utf-8")}
        except UnicodeDecodeError:
            body = {"bodyBase64": base64.b64encode(self.body).decode("ascii")}
        return {"status": self.status, "headers": [list(h) for h in self.headers], **body}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> StoredResponse:
        if "bodyBase64" in record:
            body = base64.b64decode(record["bodyBase64"])
        else:
            body = str(record.get("body", "")).encode("utf-8")
        return cls(int(record["status"]), [(str(k), str(v)) for k, v in record.get("headers", [])], body)

    def messages(self) -> list[Message]:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.headers]
        headers += [(b"content-length", str(len(self.body)).encode()), (REPLAYED_HEADER, b"true")]
        return [
            {"type": "http.response.start", "status": self.status, "headers": headers},
            {"type": "http.response.body", "body": self.body, "more_body": False},
        ]


def configure(layer: BasePersistenceLayer, *, expires_after_s: int) -> None:
    """What identifies a request (``identity``), what a repeat must match (``fingerprint``) and how
    long a record lives."""
    layer.configure(
        IdempotencyConfig(
            event_key_jmespath="identity",
            payload_validation_jmespath="fingerprint",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=expires_after_s,
            hash_function="sha256",
        ),
        key_prefix=KEY_PREFIX,
    )


def persistence_layer() -> DynamoDBPersistenceLayer:
    return idempotency_records.persistence_layer(
        lambda layer: configure(layer, expires_after_s=settings().idempotency_ttl_s)
    )


def _replay_or_wait(record: DataRecord) -> StoredResponse | None:
    """The answer to replay for a record another request holds; None when the record turned out to
    be dead (expired, or its request ran out of time) and the key may be taken again."""
    status = record.status
    if status == STATUS_CONSTANTS["EXPIRED"]:
        return None
    if status == STATUS_CONSTANTS["INPROGRESS"]:
        expiry_ms = record.in_progress_expiry_timestamp
        if expiry_ms is not None and expiry_ms < int(time.time() * 1000):
            return None
        raise IdempotencyKeyInProgress(
            "A request with this Idempotency-Key is still being processed; repeat it shortly to get its answer.",
            retryAfterSeconds=RETRY_AFTER_S,
        )
    stored = record.response_json_as_dict()
    if stored is None:  # a COMPLETED record always carries its answer; treat a blank one as dead
        return None
    return StoredResponse.from_record(stored)


def claim(layer: BasePersistenceLayer, data: dict[str, Any], in_progress_ms: int) -> StoredResponse | None:
    """Take the key for this request (None: go ahead and run it) or return the stored answer to
    replay. Raises ``IdempotencyKeyReused`` / ``IdempotencyKeyInProgress``. Blocking (DynamoDB)."""
    for _ in range(_CLAIM_ATTEMPTS):
        try:
            # A conditional put: it succeeds when the key is new, its record expired, or the request
            # holding it ran out of time -- so of concurrent duplicates exactly one gets here.
            layer.save_inprogress(data=data, remaining_time_in_millis=in_progress_ms)
            return None
        except IdempotencyValidationError as error:
            raise _reused() from error
        except IdempotencyItemAlreadyExistsError as taken:
            try:
                # The put returns the record that refused it (ReturnValuesOnConditionCheckFailure).
                record = taken.old_data_record or layer.get_record(data=data)
            except IdempotencyValidationError as error:
                raise _reused() from error
            except IdempotencyItemNotFoundError:
                continue  # released between the put and the get: try to take it again
            if record is None:
                continue
            answer = _replay_or_wait(record)
            if answer is not None:
                return answer
    # The record kept changing under us (released and taken again by others): behave as if busy.
    raise IdempotencyKeyInProgress(
        "A request with this Idempotency-Key is still being processed; repeat it shortly to get its answer.",
        retryAfterSeconds=RETRY_AFTER_S,
    )


def _reused() -> IdempotencyKeyReused:
    return IdempotencyKeyReused(
        "This Idempotency-Key was already used for a request with a different body on this route; "
        "use a new key for a new request."
    )


def in_progress_budget_ms(scope: Scope) -> int:
    context = scope.get("aws.context")  # Mangum passes the Lambda context here
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return int(remaining()) if callable(remaining) else LOCAL_IN_PROGRESS_MS


@dataclass
class _Capture:
    """The app's answer, held back until it is stored (or the key released)."""

    messages: list[Message] = field(default_factory=list)

    async def send(self, message: Message) -> None:
        self.messages.append(message)

    def response(self) -> StoredResponse | None:
        start = next((m for m in self.messages if m["type"] == "http.response.start"), None)
        if start is None:
            return None
        headers = [
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in start.get("headers", [])
            if name.decode("latin-1").lower() in REPLAYED_RESPONSE_HEADERS
        ]
        body = b"".join(m.get("body", b"") for m in self.messages if m["type"] == "http.response.body")
        return StoredResponse(int(start["status"]), headers, body)


class _Released(Exception):
    """Why a key was released (powertools' ``delete_record`` logs the exception's type)."""


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A receive that hands the app the buffered body first, so FastAPI reads it as usual."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_error(scope: Scope, receive: Receive, send: Send, error: DomainError) -> None:
    """Answer through the app's own DomainError handler (``functions.api.errors``), so these errors
    have the one shape every other has; this middleware runs outside FastAPI's exception handling."""
    app: Starlette = scope["app"]
    handler = next((app.exception_handlers[c] for c in type(error).__mro__ if c in app.exception_handlers), None)
    if handler is None:
        raise error
    response = handler(Request(scope, receive), error)
    if inspect.isawaitable(response):
        response = await response
    if isinstance(error, IdempotencyKeyInProgress):
        response.headers["Retry-After"] = str(RETRY_AFTER_S)
    await response(scope, receive, send)


class Idempotency:
    """The ASGI middleware. Register it inside ``BodySizeLimit`` (add it first)."""

    def __init__(self, app: ASGIApp, methods: frozenset[str] = frozenset({"POST"})) -> None:
        self.app = app
        self.methods = methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        keyed = self._keyed(scope, receive)
        if keyed is None:
            await self.app(scope, receive, send)
            return
        caller, values = keyed
        try:
            key = parse_key(values)
            body = await _read_body(receive)
            if body is None:  # the client went away
                return
            data = request_data(
                caller=caller,
                method=scope["method"],
                path=scope["path"],
                key=key,
                body_fingerprint=fingerprint(body, scope.get("query_string", b"")),
            )
            layer = persistence_layer()
            stored = await run_in_threadpool(claim, layer, data, in_progress_budget_ms(scope))
        except DomainError as error:
            await _send_error(scope, receive, send, error)
            return
        if stored is not None:
            logger.info("idempotent replay", extra={"idempotency_path": scope["path"], "status": stored.status})
            for message in stored.messages():
                await send(message)
            return
        await self._run_once(scope, _replaying(body, receive), send, layer, data)

    def _keyed(self, scope: Scope, receive: Receive) -> tuple[str, list[bytes]] | None:
        """(caller, the header's raw values) when this request is idempotency-keyed, else None."""
        if scope["type"] != "http" or scope["method"] not in self.methods:
            return None
        values = [value for name, value in scope.get("headers") or [] if name.lower() == HEADER]
        if not values:
            return None
        principal = scope["app"].state.authenticator.authenticate(Request(scope, receive))
        # Keys are scoped per caller; an anonymous request has no scope (and its route answers 401).
        return (principal.user_id, values) if principal is not None else None

    async def _run_once(
        self, scope: Scope, receive: Receive, send: Send, layer: DynamoDBPersistenceLayer, data: dict[str, Any]
    ) -> None:
        """Run the request that took the key; store a 2xx answer, release the key on anything else."""
        capture = _Capture()
        try:
            await self.app(scope, receive, capture.send)
        except BaseException as error:
            with anyio.CancelScope(shield=True):
                await _release(layer, data, _Released(f"the request raised {type(error).__name__}"))
            raise
        answer = capture.response()
        if answer is not None and 200 <= answer.status < 300 and len(answer.body) <= MAX_STORED_BODY_BYTES:
            await _store(layer, data, answer)
        else:
            if answer is not None and 200 <= answer.status < 300:
                logger.warning(
                    "idempotent answer too large to store; key released",
                    extra={"idempotency_path": scope["path"], "bytes": len(answer.body)},
                )
            status = answer.status if answer is not None else None
            await _release(layer, data, _Released(f"answered {status}"))
        for message in capture.messages:
            await send(message)


async def _store(layer: DynamoDBPersistenceLayer, data: dict[str, Any], answer: StoredResponse) -> None:
    try:
        await run_in_threadpool(layer.save_success, data, answer.to_record())
    except Exception:
        # The work is done and its answer goes out; the key stays in progress until its in-progress
        # expiry, after which a repeat would run again. Nothing better is possible without the store.
        logger.exception("could not store an idempotent answer")


async def _release(layer: DynamoDBPersistenceLayer, data: dict[str, Any], reason: _Released) -> None:
    try:
        await run_in_threadpool(layer.delete_record, data, reason)
    except Exception:
        # The key then stays taken until its in-progress expiry; repeats get 409 until then.
        logger.exception("could not release an idempotency key")
