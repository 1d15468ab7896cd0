"""One pass at a time per environment, across timer, webhook and CLI (invariants 4 and 11).

The lease is one row. Taking it is an ETag-guarded write, so two contenders cannot both win. While a
pass works, a heartbeat renews the lease every half of its lifetime, and the pass's `Budget` learns
until when the lease is surely its own; a renewal that finds another holder, or that cannot reach the
store before that time, means the lease is lost and the pass writes nothing more. A holder that dies
leaves at most one lifetime (two heartbeats) of lease behind.

A pass requested while another runs is recorded on the row (`pending`), and the holder runs once more
before it lets go — so requests coalesce into one re-run. The row also names the pass at work
(`pass_id`, `pass_started_at`): whoever next takes over an expired, unreleased lease records that pass
as failed (`Lease.abandoned`), so a pass that died still leaves a history row.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from azure.data.tables import TableClient

from synoscd.budget import Budget, LeaseLost
from synoscd.state import table as t

PK, RK = "lease", "reconcile"
# Who holds a lease, for operators (synos get targets) and for tests that stop a worker mid-pass.
INSTANCE = f"{socket.gethostname()}:{os.getpid()}"
log = logging.getLogger("synoscd.lease")

__all__ = [
    "Abandoned",
    "Heartbeat",
    "Lease",
    "LeaseLost",
    "LeaseView",
    "acquire",
    "mark_queued",
    "read",
    "release",
    "renew",
    "request",
    "view",
]


@dataclass(frozen=True)
class Abandoned:
    """A pass whose lease expired while it still held it: it died, or lost the state store."""

    pass_id: str
    trigger: str
    started_at: float
    expired_at: float


@dataclass(frozen=True)
class Lease:
    holder: str
    expires_at: float
    pending: int = 0
    trigger: str | None = None
    abandoned: Abandoned | None = None  # set by acquire when it took over a dead holder's lease


def skew_margin(ttl: float) -> float:
    """How much earlier than the row says we stop trusting our lease: clocks of instances differ."""
    return min(2.0, ttl * 0.1)


def _lease(row: dict[str, Any] | None) -> Lease | None:
    if not row or not row.get("holder"):
        return None
    return Lease(
        row["holder"], float(row.get("expires_at") or 0), int(row.get("pending") or 0), row.get("trigger")
    )


def _abandoned(row: dict[str, Any], now: float) -> Abandoned | None:
    current = _lease(row)
    if current is None or current.expires_at >= now or not row.get("pass_id"):
        return None
    return Abandoned(
        str(row["pass_id"]),
        str(row.get("trigger") or "unknown"),
        float(row.get("pass_started_at") or row.get("acquired_at") or 0),
        current.expires_at,
    )


def read(table: TableClient) -> tuple[Lease | None, int]:
    """The current lease (None when free or expired) and the number of pending requests."""
    row = t.get(table, PK, RK) or {}
    lease = _lease(row)
    if lease and lease.expires_at < time.time():
        lease = None
    return lease, int(row.get("pending") or 0)


@dataclass(frozen=True)
class LeaseView:
    """The lease row as the timer and `synos get targets` see it."""

    holder: str | None  # None: free (or expired)
    expires_at: float
    pending: int
    queued_at: float | None  # when the timer last put a pass of this target on the queue
    instance: str | None  # host:pid of the holder
    trigger: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "holder": self.holder,
            "expiresAt": self.expires_at or None,
            "pending": self.pending,
            "queuedAt": self.queued_at,
            "instance": self.instance if self.holder else None,
            "trigger": self.trigger if self.holder else None,
        }


def view(table: TableClient, **options: Any) -> LeaseView:
    row = t.get(table, PK, RK, **options) or {}
    lease = _lease(row)
    held = lease is not None and lease.expires_at >= time.time()
    return LeaseView(
        lease.holder if held and lease else None,
        float(row.get("expires_at") or 0),
        int(row.get("pending") or 0),
        float(row["queued_at"]) if row.get("queued_at") else None,
        row.get("instance") or None,
        row.get("trigger") or None,
    )


def mark_queued(table: TableClient, at: float) -> None:
    """Note that a pass of this target was put on the queue (the timer does not queue it again
    until it has started, or the message is given up for lost)."""

    def mutate(row: dict[str, Any] | None) -> dict[str, Any]:
        return {**(row or {}), "queued_at": at}

    t.update(table, PK, RK, mutate)


def acquire(
    table: TableClient,
    holder: str,
    ttl: float,
    trigger: str,
    *,
    pass_id: str | None = None,
    started_at: float | None = None,
) -> Lease | None:
    """Take the lease, or record a pending request and return None when someone else holds it."""
    won = False
    abandoned: Abandoned | None = None

    def mutate(row: dict[str, Any] | None) -> dict[str, Any]:
        nonlocal won, abandoned
        row = dict(row or {})
        current = _lease(row)
        now = time.time()
        if current is None or current.expires_at < now or current.holder == holder:
            won = True
            abandoned = _abandoned(row, now) if current and current.holder != holder else None
            row.update(
                holder=holder,
                expires_at=now + ttl,
                acquired_at=now,
                trigger=trigger,
                pending=0,
                pass_id=pass_id or "",
                pass_started_at=started_at or now,
                instance=INSTANCE,
            )
        else:
            won = False
            row["pending"] = int(row.get("pending") or 0) + 1
            row["last_request"] = trigger
        return row

    row = t.update(table, PK, RK, mutate)
    lease = _lease(row) if won else None
    if lease is not None and abandoned is not None:
        lease = Lease(lease.holder, lease.expires_at, lease.pending, lease.trigger, abandoned)
    return lease


def request(table: TableClient, trigger: str) -> None:
    """Ask for a pass without running one: the holder (or the next timer tick) picks it up."""

    def mutate(row: dict[str, Any] | None) -> dict[str, Any]:
        row = dict(row or {})
        row["pending"] = int(row.get("pending") or 0) + 1
        row["last_request"] = trigger
        return row

    t.update(table, PK, RK, mutate)


def renew(table: TableClient, lease: Lease, ttl: float, **options: Any) -> Lease:
    """Extend our lease by `ttl` from now; LeaseLost when another holder has it."""

    def mutate(row: dict[str, Any] | None) -> dict[str, Any]:
        current = _lease(row)
        if current is None or current.holder != lease.holder:
            raise LeaseLost(f"the lease was taken by {current.holder if current else 'nobody'}")
        return {**(row or {}), "expires_at": time.time() + ttl}

    return _lease(t.update(table, PK, RK, mutate, **options)) or lease


def release(
    table: TableClient,
    lease: Lease,
    ttl: float,
    *,
    next_pass: tuple[str, float] | None = None,
) -> bool:
    """Let go, unless passes were requested meanwhile: then keep the lease, clear the requests and
    return True — the caller runs once more (the coalesced re-run, recorded on the row as
    `next_pass` = (pass id, start time))."""
    rerun = False

    def mutate(row: dict[str, Any] | None) -> dict[str, Any] | None:
        nonlocal rerun
        current = _lease(row)
        if current is None or current.holder != lease.holder:
            rerun = False
            return None  # expired and taken: nothing of ours to release
        row = dict(row or {})
        if int(row.get("pending") or 0) > 0:
            rerun = True
            row.update(
                pending=0, expires_at=time.time() + ttl, trigger=row.get("last_request") or "coalesced"
            )
            if next_pass is not None:
                row.update(pass_id=next_pass[0], pass_started_at=next_pass[1])
        else:
            rerun = False
            row.update(holder="", expires_at=0.0, released_at=time.time(), pass_id="")
        return row

    t.update(table, PK, RK, mutate)
    return rerun


class Heartbeat:
    """Renews a held lease every `ttl / 2` while the pass works, and tells the pass's `budget` until
    when the lease is surely its own (the time the renewal was sent, plus `ttl`, minus a margin for
    clock skew). A failed renewal is retried sooner; if none succeeds before that time, or the row
    names another holder, the budget learns the lease is lost."""

    def __init__(self, table: TableClient, lease: Lease, ttl: float, budget: Budget, acquired: float) -> None:
        self.table = table
        self.lease = lease
        self.ttl = ttl
        self.budget = budget
        self.interval = ttl / 2
        self.margin = skew_margin(ttl)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)
        budget.hold(acquired + ttl - self.margin)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=self.ttl)

    def _run(self) -> None:
        delay = self.interval
        while not self._stop.wait(delay):
            sent = time.monotonic()
            # Each attempt may take no longer than what is left of a heartbeat.
            limit = max(0.2, self.interval / 2)
            try:
                renew(
                    self.table,
                    self.lease,
                    self.ttl,
                    connection_timeout=limit,
                    read_timeout=limit,
                    retry_total=0,
                )
            except LeaseLost as lost:
                log.warning("lease lost: %s; the pass stops writing", lost)
                self.budget.lose(str(lost))
                return
            except Exception as exc:  # storage unreachable: try again soon, until the lease runs out
                log.warning("could not renew the lease: %s", str(exc).splitlines()[0][:200])
                delay = max(0.1, self.interval / 4)
                continue
            self.budget.hold(sent + self.ttl - self.margin)
            delay = self.interval
