"""How long a pass may still wait, and whether it may still write (invariant 11).

A pass has a time budget and a lease (renewed by a heartbeat, `state/lease.py`). Every wait the
adapters make — an SDK retry's Retry-After or backoff, a long-running operation, a hook poll — is
bounded by `remaining()`; every write asks `check()` first. Outside a pass (the CLI's reads) nothing
is bound: only each policy's own cap applies.

`BoundedRetry` is the piece azure-core retry policies (ARM, Table Storage) mix in: jittered backoff,
and no retry whose wait (the server's Retry-After, or the backoff) does not fit the budget — the
caller gets the throttled answer at once instead of a sleep past its budget or its lease.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from typing import Any


class LeaseLost(BaseException):  # a signal to stop, like SystemExit
    """The pass no longer holds its lease: it must write nothing more.

    A BaseException on purpose: the workers of a wave turn every `Exception` into a failed outcome of
    their resource; losing the lease is no resource's failure and must stop the whole pass."""


class Budget:
    """The running pass's deadline and lease, shared by the adapters of one Runtime (one pass at a
    time per Runtime: the lease serialises them)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deadline: float | None = None  # time.monotonic() when the pass's budget is spent
        self._held_until: float | None = None  # time.monotonic() until which the lease is surely ours
        self._lost: str | None = None
        self.pass_id: str | None = None  # the pass spending it: named on its ARM writes (Arm.write_headers)

    def begin(self, seconds: float, pass_id: str | None = None) -> None:
        """A pass (or its coalesced re-run) starts with `seconds` to spend."""
        with self._lock:
            self._deadline = time.monotonic() + max(0.0, seconds)
            self.pass_id = pass_id

    def hold(self, until: float) -> None:
        """The lease is ours until `until` (time.monotonic()); called on acquire and each renewal."""
        with self._lock:
            if self._lost is None:
                self._held_until = until

    def lose(self, reason: str) -> None:
        with self._lock:
            self._lost = reason

    def end(self) -> None:
        with self._lock:
            self._deadline = self._held_until = None
            self._lost = None
            self.pass_id = None

    @property
    def lost(self) -> str | None:
        """Why the lease is no longer ours (None: still held, or no lease)."""
        with self._lock:
            if self._lost is None and self._held_until is not None and time.monotonic() >= self._held_until:
                return "the lease could not be renewed in time (is the state store answering?)"
            return self._lost

    def remaining(self) -> float:
        """Seconds a wait may still take: the budget's and the lease's end, whichever is first."""
        if self.lost:
            return 0.0
        with self._lock:
            bounds = [b for b in (self._deadline, self._held_until) if b is not None]
        return max(0.0, min(bounds) - time.monotonic()) if bounds else math.inf

    def check(self) -> None:
        """Before a write: raise LeaseLost unless the lease is (still) ours."""
        reason = self.lost
        if reason:
            raise LeaseLost(reason)


UNBOUNDED = Budget()  # for adapters used outside any pass


class BoundedRetry:
    """Mixed into an azure-core RetryPolicy subclass: `class P(BoundedRetry, RetryPolicy)`.

    - the backoff between attempts is jittered (half to all of the exponential value), so instances
      that failed together do not retry together;
    - a retry happens only while budget is left and its wait — the server's Retry-After, else that
      backoff — is at most `max_wait` and fits in `budget()`; otherwise the policy gives up and the
      caller sees the answer (a 429 with its Retry-After, a 503) or the connection error at once.
    """

    def __init__(
        self, *, budget: Callable[[], float] | None = None, max_wait: float = 20.0, **kw: Any
    ) -> None:
        super().__init__(**kw)  # type: ignore[call-arg]
        self._budget = budget or (lambda: math.inf)
        self._max_wait = max_wait

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        backoff = float(super().get_backoff_time(settings))  # type: ignore[misc]
        return random.uniform(backoff / 2, backoff) if backoff > 0 else 0.0

    def increment(self, settings: dict[str, Any], response: Any = None, error: Any = None) -> bool:
        if not super().increment(settings, response=response, error=error):  # type: ignore[misc]
            return False
        retry_after = None
        if error is None and response is not None and hasattr(response, "http_response"):
            retry_after = self.get_retry_after(response)  # type: ignore[attr-defined]
        wait = float(retry_after) if retry_after else self.get_backoff_time(settings)
        left = self._budget()
        if left <= 0 or wait > min(self._max_wait, left):
            return False
        settings["bounded_wait"] = wait
        return True

    def sleep(self, settings: dict[str, Any], transport: Any, response: Any = None) -> None:
        wait = settings.pop("bounded_wait", None)
        if wait is None:  # not decided by increment (a caller outside send): the library's own way
            super().sleep(settings, transport, response=response)  # type: ignore[misc]
        elif wait > 0:
            transport.sleep(wait)
