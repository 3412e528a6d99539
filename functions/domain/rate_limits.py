"""A per-caller rate on write requests (issue 16; docs/limits.md): a token bucket of
``write_burst`` tokens refilled at ``write_rate_per_s``, kept in DynamoDB so that it holds across
Lambda instances (``functions.data.rate_buckets``). Each write request takes a token; an empty
bucket refuses it with ``429 rate_limited`` and the seconds until a token is back.

The API applies it in one place, ``functions.api.auth.current_user``, to every owner route's write
methods; reads (GET, HEAD) and progress streams take nothing.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from functions.data import rate_buckets
from functions.errors import RateLimited
from functions.settings import settings

# The wall clock, in seconds; tests move it instead of sleeping.
clock: Callable[[], float] = time.time

# Each bucket's ``full_at_ms`` as this process last saw it: the guess of which update applies (a
# caller writing in a burst usually reaches the same warm instance). A wrong guess costs one more
# UpdateItem, never a wrong answer.
_LAST_SEEN_MAX = 10_000
_last_seen: OrderedDict[str, int] = OrderedDict()
_last_seen_lock = threading.Lock()


@dataclass(frozen=True)
class Bucket:
    burst: int
    rate_per_s: float

    @property
    def interval_ms(self) -> int:
        return max(1, round(1000 / self.rate_per_s))

    @property
    def tolerance_ms(self) -> int:
        return (self.burst - 1) * self.interval_ms

    def remaining(self, full_at_ms: int, now_ms: int) -> int:
        """Tokens left at ``now_ms`` in a bucket full again at ``full_at_ms``."""
        return max(0, min(self.burst, (now_ms + self.tolerance_ms - full_at_ms) // self.interval_ms + 1))


def write_bucket() -> Bucket:
    current = settings()
    return Bucket(burst=current.write_burst, rate_per_s=current.write_rate_per_s)


def spend_write(user_id: str) -> int:
    """Takes one token from the caller's write bucket: the tokens left, or ``RateLimited`` with the
    whole seconds until one is back (at least 1)."""
    bucket = write_bucket()
    now_ms = int(clock() * 1000)
    with _last_seen_lock:
        last = _last_seen.get(user_id)
    taken = rate_buckets.take(
        user_id,
        now_ms=now_ms,
        interval_ms=bucket.interval_ms,
        tolerance_ms=bucket.tolerance_ms,
        idle_guess=last is None or last <= now_ms,
    )
    _remember(user_id, taken.full_at_ms)
    if taken.allowed:
        return bucket.remaining(taken.full_at_ms, now_ms)
    # A token is back once full_at <= now + tolerance.
    retry_after_s = max(1, math.ceil((taken.full_at_ms - bucket.tolerance_ms - now_ms) / 1000))
    raise RateLimited(
        f"Too many write requests: at most {bucket.burst} at once, then {bucket.rate_per_s:g} a second."
        f" Try again in {retry_after_s} s.",
        retry_after_s=retry_after_s,
        limit=bucket.burst,
        ratePerSecond=bucket.rate_per_s,
        remaining=0,
    )


def _remember(user_id: str, full_at_ms: int) -> None:
    with _last_seen_lock:
        _last_seen[user_id] = full_at_ms
        _last_seen.move_to_end(user_id)
        while len(_last_seen) > _LAST_SEEN_MAX:
            _last_seen.popitem(last=False)


def forget() -> None:
    """Drops this process's view of every bucket (tests start from nothing)."""
    with _last_seen_lock:
        _last_seen.clear()
