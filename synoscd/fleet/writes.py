"""ARM's write limit, shared: one token bucket per subscription in the deployment's table
(partition `armwrites`, row = the subscription id), drawn from by every instance and every target of
that subscription before each ARM write (PUT, PATCH, DELETE, a job start).

ARM throttles writes per subscription and principal with a bucket of 200 refilled at 10 per second.
Left alone, a fleet-wide change (one image bumped in every target) would have every instance write as
fast as it can until ARM answers 429 to all of them at once. Here the bucket refills at
SYNOSCD_ARM_WRITE_RATE per second up to SYNOSCD_ARM_WRITE_BURST (below ARM's, leaving room for other
clients of the subscription), so writes are spread over the instances as ARM would allow them; an
instance draws at most CHUNK tokens at a time (one ETag-guarded row update per CHUNK writes), so
instances take turns when the bucket runs low. A 429 that ARM answers anyway (its Retry-After) closes
the bucket for everyone until then.

The bucket never fails a pass by itself: if the table cannot be read, a write goes ahead (ARM's own
limit and retry policy still apply). A write that would have to wait longer than the pass may is not
sent (`WriteBudgetExhausted`): it is neither written nor failed (no backoff), the pass ends `partial`,
and the queue function puts the target's next pass on the queue at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PK = "armwrites"
CHUNK = 16  # tokens an instance draws at once (never more than the burst)
log = logging.getLogger("synoscd.fleet")


class WriteBudgetExhausted(Exception):
    """The subscription's write budget would not allow this write before the pass must end."""


@dataclass(frozen=True)
class Bucket:
    tokens: float
    updated: float
    closed_until: float = 0.0


def grant(bucket: Bucket | None, want: int, now: float, rate: float, burst: int) -> tuple[int, Bucket, float]:
    """Pure: how many of `want` writes may go now, the bucket after, and (when none may) how long
    until one may."""
    bucket = bucket or Bucket(float(burst), now)
    tokens = min(float(burst), bucket.tokens + max(0.0, now - bucket.updated) * rate)
    if now < bucket.closed_until:
        return 0, Bucket(tokens, now, bucket.closed_until), bucket.closed_until - now
    granted = min(want, int(tokens))
    if granted <= 0:
        return 0, Bucket(tokens, now, bucket.closed_until), (1.0 - tokens) / rate
    return granted, Bucket(tokens - granted, now, bucket.closed_until), 0.0


def close(bucket: Bucket | None, now: float, retry_after: float) -> Bucket:
    """Pure: ARM said 429 (Retry-After): nobody writes until then, and the bucket starts empty."""
    until = now + max(0.0, retry_after)
    return Bucket(0.0, now, max(until, bucket.closed_until if bucket else 0.0))


class WriteBudget:
    """The budget of one subscription, as one process draws from it."""

    def __init__(
        self,
        table: Callable[[], Any],
        subscription: str,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table
        self.subscription = subscription.lower()
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._reserve = 0
        self._lock = threading.Lock()
        self.waited = 0.0  # seconds writes waited for the budget in this process (for telemetry, bench)
        self.drawn = 0  # row updates made
        self.deferred = 0  # writes left for a later pass: the budget would not allow them in time

    def take(self, remaining: Callable[[], float] = lambda: float("inf")) -> None:
        """One write's token; waits while the bucket is empty or closed, at most `remaining()`."""
        while True:
            with self._lock:
                if self._reserve > 0:
                    self._reserve -= 1
                    return
                granted, wait = self._draw(min(CHUNK, self.burst))
                if granted > 0:
                    self._reserve = granted - 1
                    return
            if wait > remaining():
                self.deferred += 1
                raise WriteBudgetExhausted(
                    f"the ARM write budget of subscription {self.subscription} allows the next write in "
                    f"{wait:.1f} s, later than this pass may wait; the next pass writes it"
                )
            slept = min(wait, 1.0)
            self.waited += slept
            self._sleep(slept)

    def _draw(self, want: int) -> tuple[int, float]:
        from synoscd.state import table as t

        outcome: tuple[int, float] = (0, 0.0)

        def mutate(row: dict[str, Any] | None) -> dict[str, Any]:
            nonlocal outcome
            granted, bucket, wait = grant(_bucket(row), want, self._clock(), self.rate, self.burst)
            outcome = (granted, wait)
            return _row(bucket)

        try:
            t.update(self._table(), PK, self.subscription, mutate)
        except Exception as exc:  # the bucket is a courtesy: ARM's own limit still holds
            log.warning("ARM write budget unreadable, writing without it: %s", str(exc).splitlines()[0][:200])
            return 1, 0.0
        self.drawn += 1
        return outcome

    def throttled(self, retry_after: float) -> None:
        """ARM answered a write 429: close the bucket for every instance until its Retry-After."""
        from synoscd.state import table as t

        with self._lock:
            self._reserve = 0
        try:
            t.update(
                self._table(),
                PK,
                self.subscription,
                lambda row: _row(close(_bucket(row), self._clock(), retry_after)),
            )
        except Exception as exc:
            log.warning("could not close the ARM write budget: %s", str(exc).splitlines()[0][:200])


def _bucket(row: dict[str, Any] | None) -> Bucket | None:
    if not row or row.get("tokens") is None:
        return None
    return Bucket(float(row["tokens"]), float(row.get("updated") or 0), float(row.get("closed_until") or 0))


def _row(bucket: Bucket) -> dict[str, Any]:
    return {"tokens": bucket.tokens, "updated": bucket.updated, "closed_until": bucket.closed_until}


def retry_after_of(headers: Any) -> float:
    """Seconds from a 429's Retry-After (or retry-after-ms); 10 s when it gives none."""
    lowered = {str(k).lower(): v for k, v in dict(headers).items()}
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value:
            try:
                return float(value) * scale
            except ValueError:
                continue
    return 10.0
