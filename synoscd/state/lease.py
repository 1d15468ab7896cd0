"""One pass at a time per environment, across timer, webhook and CLI (invariant 4).

The lease is one row. Taking it is an ETag-guarded write, so two contenders cannot both win; a
crashed holder's lease simply expires. A pass requested while another runs is recorded on the row
(`pending`), and the holder runs once more before it lets go — so requests coalesce into one re-run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from azure.data.tables import TableClient

from synoscd.state import table as t

PK, RK = "lease", "reconcile"


@dataclass(frozen=True)
class Lease:
    holder: str
    expires_at: float
    pending: int = 0
    trigger: str | None = None


class LeaseLost(Exception):
    """Our lease expired and someone else took it: stop writing."""


def _lease(row: dict[str, Any] | None) -> Lease | None:
    if not row or not row.get("holder"):
        return None
    return Lease(
        row["holder"], float(row.get("expires_at") or 0), int(row.get("pending") or 0), row.get("trigger")
    )


def read(table: TableClient) -> tuple[Lease | None, int]:
    """The current lease (None when free or expired) and the number of pending requests."""
    row = t.get(table, PK, RK) or {}
    lease = _lease(row)
    if lease and lease.expires_at < time.time():
        lease = None
    return lease, int(row.get("pending") or 0)


def acquire(table: TableClient, holder: str, ttl: float, trigger: str) -> Lease | None:
    """Take the lease, or record a pending request and return None when someone else holds it."""
    won = False

    def mutate(row: dict[str, Any] | None) -> dict[str, Any]:
        nonlocal won
        row = dict(row or {})
        current = _lease(row)
        now = time.time()
        if current is None or current.expires_at < now or current.holder == holder:
            won = True
            row.update(holder=holder, expires_at=now + ttl, acquired_at=now, trigger=trigger, pending=0)
        else:
            won = False
            row["pending"] = int(row.get("pending") or 0) + 1
            row["last_request"] = trigger
        return row

    row = t.update(table, PK, RK, mutate)
    return _lease(row) if won else None


def request(table: TableClient, trigger: str) -> None:
    """Ask for a pass without running one: the holder (or the next timer tick) picks it up."""

    def mutate(row: dict[str, Any] | None) -> dict[str, Any]:
        row = dict(row or {})
        row["pending"] = int(row.get("pending") or 0) + 1
        row["last_request"] = trigger
        return row

    t.update(table, PK, RK, mutate)


def renew(table: TableClient, lease: Lease, ttl: float) -> Lease:
    def mutate(row: dict[str, Any] | None) -> dict[str, Any]:
        current = _lease(row)
        if current is None or current.holder != lease.holder:
            raise LeaseLost(f"lease taken by {current.holder if current else 'nobody'}")
        return {**(row or {}), "expires_at": time.time() + ttl}

    return _lease(t.update(table, PK, RK, mutate)) or lease


def release(table: TableClient, lease: Lease, ttl: float) -> bool:
    """Let go, unless passes were requested meanwhile: then keep the lease, clear the requests and
    return True — the caller runs once more (the coalesced re-run)."""
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
        else:
            rerun = False
            row.update(holder="", expires_at=0.0, released_at=time.time())
        return row

    t.update(table, PK, RK, mutate)
    return rerun
