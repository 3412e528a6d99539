"""Limits on what one account may do at once (issue 16 step 2, docs/limits.md): at most
``max_pending_intents`` audio intents waiting for their file, and a token bucket on write
requests that holds across Lambda instances (it lives in DynamoDB). Time is moved by hand
(``rate_limits.clock``), never slept."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from functions import clients
from functions.data import rate_buckets
from functions.data.models import RateBucketModel
from functions.domain import rate_limits
from functions.domain.catalog import usage
from functions.domain.intake import uploads
from functions.errors import TooManyPendingUploads
from functions.settings import settings

from .conftest import Stack, as_user
from .test_storage_quota import counted_pending, expire, intent
from .test_workflow import upload_and_finalize


class Clock:
    """The rate limiter's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    frozen = Clock()
    monkeypatch.setattr(rate_limits, "clock", frozen)
    return frozen


@pytest.fixture
def configure(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    def set_(**values: Any) -> None:
        for name, value in values.items():
            monkeypatch.setenv(f"TRACKLANE_{name.upper()}", str(value))
        clients.reset()

    yield set_


def new_intent(stack: Stack, user: str, wav: Path) -> Any:
    body = {"fileName": wav.name, "contentType": "audio/wav", "byteSize": wav.stat().st_size}
    return stack.api.post("/v1/uploads", json=body, headers=as_user(user))


# --- the write rate -------------------------------------------------------------------------------


def test_a_write_past_the_burst_is_refused_with_retry_after_and_the_buckets_numbers_then_allowed_again(
    stack, artist, wav_3s, clock, configure
):
    # Given a bucket of 3 writes refilled at one every 2 s
    configure(write_burst=3, write_rate_per_s=0.5)
    for _ in range(3):
        assert new_intent(stack, artist, wav_3s).status_code == 201

    # When a fourth write comes at the same moment
    refused = new_intent(stack, artist, wav_3s)

    # Then it is refused, told when to come back, and shown the bucket
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"
    error = refused.json()["error"]
    assert error["code"] == "rate_limited"
    assert (error["limit"], error["ratePerSecond"], error["remaining"], error["retryAfterSeconds"]) == (3, 0.5, 0, 2)
    # ... nothing of it was written
    assert counted_pending(artist) == (3, 3)

    # When less than the window has passed it is still refused, with less to wait
    clock.advance(1.5)
    again = new_intent(stack, artist, wav_3s)
    assert (again.status_code, again.headers["retry-after"]) == (429, "1")

    # When the window has passed one write gets through, and one only
    clock.advance(0.5)
    assert new_intent(stack, artist, wav_3s).status_code == 201
    assert new_intent(stack, artist, wav_3s).status_code == 429

    # When the bucket has had time to fill, the whole burst is back (and no more)
    clock.advance(60)
    assert [new_intent(stack, artist, wav_3s).status_code for _ in range(4)] == [201, 201, 201, 429]


def test_every_owner_write_method_takes_a_token_and_reads_take_none(stack, artist, wav_3s, clock, configure):
    # Given a bucket of one write, spent on an intent
    configure(write_burst=1, write_rate_per_s=0.01)
    created = new_intent(stack, artist, wav_3s)
    assert created.status_code == 201
    upload_id, track_id = created.json()["uploadId"], created.json()["trackId"]
    headers = as_user(artist)

    # When the artist reads, polls and watches as much as it likes
    reads = [
        stack.api.get("/v1/me/usage", headers=headers),
        stack.api.get("/v1/me/tracks", headers=headers),
        stack.api.get(f"/v1/tracks/{track_id}", headers=headers),
        stack.api.get(f"/v1/tracks/{track_id}/processing-status", headers=headers),
        stack.api.get("/v1/artists/me", headers=headers),
        stack.api.get("/v1/artists/alice", headers=headers),
    ] * 3

    # Then every read is answered
    assert {response.status_code for response in reads} == {200}, [r.text for r in reads if r.status_code != 200]

    # And every kind of write is refused until a token is back
    writes = [
        stack.api.post(f"/v1/uploads/{upload_id}/finalize", json={}, headers=headers),
        stack.api.patch(f"/v1/tracks/{track_id}", json={"title": "New"}, headers=headers),
        stack.api.put("/v1/artists/me", json={"handle": "alice", "displayName": "A"}, headers=headers),
        stack.api.delete(f"/v1/uploads/{upload_id}", headers=headers),
    ]
    assert [response.status_code for response in writes] == [429] * 4
    # ... another caller's bucket is its own
    bob = stack.api.put("/v1/artists/me", json={"handle": "bob", "displayName": "Bob"}, headers=as_user("bob"))
    assert bob.status_code == 200, bob.text


def test_an_anonymous_write_is_refused_as_unauthorized_and_takes_no_token(stack, artist, wav_3s, clock, configure):
    configure(write_burst=1, write_rate_per_s=0.01)
    body = {"fileName": wav_3s.name, "contentType": "audio/wav", "byteSize": 1}

    assert stack.api.post("/v1/uploads", json=body).status_code == 401
    assert new_intent(stack, artist, wav_3s).status_code == 201


def test_racing_writes_from_many_instances_never_take_more_than_the_bucket_holds(stack, configure):
    # Given a bucket of 5 and a moment when no token comes back
    configure(write_burst=5, write_rate_per_s=0.001)
    bucket = rate_limits.write_bucket()
    now_ms = 1_800_000_000_000

    # When 40 requests race for it, each from an instance guessing the bucket's state its own way
    def attempt(n: int) -> rate_buckets.Taken:
        return rate_buckets.take(
            "racer",
            now_ms=now_ms,
            interval_ms=bucket.interval_ms,
            tolerance_ms=bucket.tolerance_ms,
            idle_guess=n % 2 == 0,
        )

    with ThreadPoolExecutor(max_workers=16) as pool:
        taken = list(pool.map(attempt, range(40)))

    # Then exactly five get a token, and no request needed more than three updates
    assert sum(t.allowed for t in taken) == 5
    assert max(t.updates for t in taken) <= rate_buckets.MAX_UPDATES
    allowed_until = sorted(t.full_at_ms for t in taken if t.allowed)
    assert allowed_until == [now_ms + bucket.interval_ms * k for k in range(1, 6)]


def test_a_stale_guess_costs_one_more_update_never_a_wrong_answer(stack, configure):
    configure(write_burst=2, write_rate_per_s=1)
    bucket = rate_limits.write_bucket()

    def take(now_ms: int, idle_guess: bool) -> rate_buckets.Taken:
        return rate_buckets.take(
            "guesser",
            now_ms=now_ms,
            interval_ms=bucket.interval_ms,
            tolerance_ms=bucket.tolerance_ms,
            idle_guess=idle_guess,
        )

    # A draining guess on a bucket never used: refused by its condition, then the idle update
    first = take(10_000, idle_guess=False)
    assert (first.allowed, first.updates, first.full_at_ms) == (True, 2, 11_000)
    # An idle guess on a draining bucket: refused, then the draining update
    second = take(10_000, idle_guess=True)
    assert (second.allowed, second.updates, second.full_at_ms) == (True, 2, 12_000)
    # Empty: the refused guess's answer shows it, no further update
    third = take(10_000, idle_guess=True)
    assert (third.allowed, third.updates, third.full_at_ms) == (False, 1, 12_000)
    # Long idle: a draining guess is refused, then the bucket starts over (no credit for idling)
    fourth = take(100_000, idle_guess=False)
    assert (fourth.allowed, fourth.updates, fourth.full_at_ms) == (True, 2, 101_000)


def _stored_bucket(user: str) -> RateBucketModel:
    return RateBucketModel.get(*RateBucketModel.key(user), consistent_read=True)


def _expiry_s(user: str) -> int:
    """The bucket item's TTL as stored (epoch seconds)."""
    raw = _stored_bucket(user).expires_at_epoch
    assert raw is not None
    return int(raw.timestamp())


def test_every_update_sets_the_buckets_expiry_past_the_moment_it_is_full_again(stack, configure):
    # Given a bucket of 3 refilled at one every 2 s
    configure(write_burst=3, write_rate_per_s=0.5)
    bucket = rate_limits.write_bucket()
    now_ms = 1_800_000_000_250

    def take() -> rate_buckets.Taken:
        return rate_buckets.take(
            "idler", now_ms=now_ms, interval_ms=bucket.interval_ms, tolerance_ms=bucket.tolerance_ms
        )

    # When a first write takes a token (the idle update)
    first = take()

    # Then DynamoDB may delete the item a margin after the bucket is full again, not before
    assert _expiry_s("idler") == -(-first.full_at_ms // 1000) + rate_buckets.TTL_MARGIN_S

    # When more writes drain it (the draining update)
    for _ in range(2):
        last = take()
    assert last.allowed

    # Then the expiry moved along with it: never before the bucket is full again plus the margin,
    # at most one burst's refill later
    expiry_ms = _expiry_s("idler") * 1000
    assert last.full_at_ms + rate_buckets.TTL_MARGIN_S * 1000 <= expiry_ms
    assert expiry_ms <= now_ms + bucket.burst * bucket.interval_ms + (rate_buckets.TTL_MARGIN_S + 1) * 1000


@pytest.mark.parametrize("deleted", [False, True], ids=["still-stored", "deleted-by-ttl"])
def test_a_bucket_past_its_expiry_is_a_full_one(stack, configure, deleted):
    # Given a bucket of 3 that a caller emptied
    configure(write_burst=3, write_rate_per_s=0.5)
    bucket = rate_limits.write_bucket()

    def take(now_ms: int) -> rate_buckets.Taken:
        return rate_buckets.take(
            "sleeper", now_ms=now_ms, interval_ms=bucket.interval_ms, tolerance_ms=bucket.tolerance_ms
        )

    start_ms = 1_800_000_000_000
    assert [take(start_ms).allowed for _ in range(4)] == [True, True, True, False]

    # When its expiry passes, and DynamoDB has deleted the item or not yet (TTL runs late)
    expired_ms = _expiry_s("sleeper") * 1000
    if deleted:
        RateBucketModel(*RateBucketModel.key("sleeper")).delete()

    # Then the caller has the whole burst again, and no more
    assert [take(expired_ms).allowed for _ in range(4)] == [True, True, True, False]


# --- pending intents --------------------------------------------------------------------------------


def test_an_intent_past_the_pending_limit_is_refused_until_one_is_finished_or_cancelled(
    stack, artist, wav_3s, configure, runner
):
    # Given an artist with two intents waiting for their file, at a limit of two
    configure(max_pending_intents=2)
    first, second = (new_intent(stack, artist, wav_3s).json() for _ in range(2))

    # When it asks for a third
    refused = new_intent(stack, artist, wav_3s)

    # Then it is refused, with the count and the limit, and nothing is written
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert (error["code"], error["pendingIntents"], error["maxPendingIntents"]) == ("too_many_pending_uploads", 2, 2)
    assert counted_pending(artist) == (2, 2)
    assert stack.api.get("/v1/me/usage", headers=as_user(artist)).json()["maxPendingIntents"] == 2

    # When one is cancelled, there is room for one more
    assert stack.api.delete(f"/v1/uploads/{first['uploadId']}", headers=as_user(artist)).status_code == 204
    assert counted_pending(artist) == (1, 1)
    third = new_intent(stack, artist, wav_3s)
    assert third.status_code == 201
    assert new_intent(stack, artist, wav_3s).status_code == 409

    # When one is finalized (its file stored), there is room again
    assert stack.put(second["signedUrl"], wav_3s, content_type="audio/wav") == 200
    finalized = stack.api.post(f"/v1/uploads/{second['uploadId']}/finalize", json={}, headers=as_user(artist))
    assert finalized.status_code == 200, finalized.text
    assert counted_pending(artist) == (1, 1)
    assert new_intent(stack, artist, wav_3s).status_code == 201
    assert counted_pending(artist) == (2, 2)


def test_an_expired_intent_never_holds_a_pending_slot(stack, artist, wav_3s, configure):
    configure(max_pending_intents=1)
    waiting = new_intent(stack, artist, wav_3s).json()
    assert new_intent(stack, artist, wav_3s).status_code == 409

    # When the intent expires, the next one releases its slot before it is refused
    expire(waiting, artist)
    assert new_intent(stack, artist, wav_3s).status_code == 201
    assert counted_pending(artist) == (1, 1)


def test_a_rejected_file_and_a_duplicate_give_their_slot_back(stack, artist, wav_3s, configure, runner):
    configure(max_pending_intents=5)
    upload_and_finalize(stack, artist, wav_3s)
    assert counted_pending(artist) == (0, 0)

    # A duplicate of what the artist has: its intent ends without a track
    duplicate = new_intent(stack, artist, wav_3s).json()
    assert stack.put(duplicate["signedUrl"], wav_3s, content_type="audio/wav") == 200
    stack.api.post(f"/v1/uploads/{duplicate['uploadId']}/finalize", json={}, headers=as_user(artist))
    # A file that is not what was promised: rejected
    rejected = new_intent(stack, artist, wav_3s).json()
    stack.put(rejected["signedUrl"], wav_3s, content_type="audio/wav", body=b"not the promised file")
    stack.api.post(f"/v1/uploads/{rejected['uploadId']}/finalize", json={}, headers=as_user(artist))

    assert counted_pending(artist) == (0, 0)


def test_racing_intents_never_pass_the_pending_limit(stack, artist, configure):
    # Given a limit of four pending intents and plenty of storage
    configure(max_pending_intents=4)

    def attempt(_: int) -> str:
        try:
            uploads.create(artist, intent(1000))
        except TooManyPendingUploads:
            return "refused"
        return "created"

    # When thirty intents race
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(attempt, range(30)))

    # Then four get in
    assert (outcomes.count("created"), outcomes.count("refused")) == (4, 26)
    assert counted_pending(artist) == (4, 4)
    assert usage.of(artist).pending_intents == 4 == settings().max_pending_intents


def test_no_polled_route_takes_a_write_token():
    from functions.api.auth import WRITE_METHODS
    from functions.api.polled_routes import POLLED_ROUTES

    assert not {method for method, _ in POLLED_ROUTES} & WRITE_METHODS
