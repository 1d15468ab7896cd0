"""The sync operation in flight (Argo CD's "operation"): the revision, the phase and wave reached,
hook executions started and tasks completed, the resources not yet synced to the revision, and the
retries of a failed sync. Kept in the state table so the next pass — timer or webhook, on any
instance — resumes it; a new revision starts a new operation."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from azure.data.tables import TableClient

from synoscd.state import table as t

PK, RK = "operation", "current"


@dataclass
class Operation:
    revision: str
    status: str = "Running"  # Running | Succeeded | Failed
    phase: str | None = None
    wave: int | None = None
    done: set[str] = field(default_factory=set)  # task keys completed (hooks)
    executions: dict[str, str] = field(default_factory=dict)  # task key -> job execution name
    message: str = ""
    started_at: float = field(default_factory=time.time)
    updated_at: float | None = None
    # Resources ("Kind/name", name in lower case) the sync has to write and has not written yet.
    # While a failed sync waits for its retry only these wait; every other resource is healed.
    pending: set[str] = field(default_factory=set)
    attempts: int = 0  # failed attempts of this sync
    next_retry_at: float | None = None  # when the failed sync is retried; None: not failed, or exhausted
    retry_limit: int | None = None  # the retry limit in force when it last failed

    @property
    def exhausted(self) -> bool:
        return self.status == "Failed" and self.next_retry_at is None

    def retried(self) -> Operation:
        """The failed operation running again: hooks that succeeded stay done; the failed ones and the
        SyncFail hooks get fresh executions."""
        return dataclasses.replace(
            self,
            status="Running",
            phase=None,
            wave=None,
            done=set(self.done),
            executions={k: v for k, v in self.executions.items() if k in self.done},
            pending=set(self.pending),
            next_retry_at=None,
            message=f"retry {self.attempts}"
            + (f"/{self.retry_limit}" if self.retry_limit is not None else ""),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "status": self.status,
            "phase": self.phase,
            "wave": self.wave,
            "done": sorted(self.done),
            "executions": dict(self.executions),
            "message": self.message,
            "startedAt": self.started_at,
            "updatedAt": self.updated_at,
            "pending": sorted(self.pending),
            "attempts": self.attempts,
            "retryLimit": self.retry_limit,
            "nextRetryAt": self.next_retry_at,
        }


def load(table: TableClient) -> Operation | None:
    row = t.get(table, PK, RK)
    if not row:
        return None
    op = Operation(
        revision=row["revision"],
        status=row.get("status", "Running"),
        phase=row.get("phase"),
        wave=row.get("wave"),
        done=set(t.get_json(row, "done", [])),
        executions=dict(t.get_json(row, "executions", {})),
        message=row.get("message", ""),
        started_at=row.get("started_at") or time.time(),
        updated_at=row.get("updated_at"),
        pending=set(t.get_json(row, "pending", [])),
        attempts=int(row.get("attempts") or 0),
        next_retry_at=row.get("next_retry_at"),
        retry_limit=row.get("retry_limit"),
    )
    if op.status == "Failed" and "pendingParts" not in row:
        # Failed before retries existed: what it had still to write is unknown, so heal-only passes
        # could write it behind its hooks' back. Retry it now instead; from then on it is tracked.
        op.attempts, op.next_retry_at = max(op.attempts, 1), 0.0
    return op


def save(table: TableClient, op: Operation) -> None:
    op.updated_at = time.time()
    row: dict[str, Any] = {
        "revision": op.revision,
        "status": op.status,
        "phase": op.phase,
        "wave": op.wave,
        "message": op.message[:2000],
        "started_at": op.started_at,
        "updated_at": op.updated_at,
        "attempts": op.attempts,
        "next_retry_at": op.next_retry_at,
        "retry_limit": op.retry_limit,
    }
    t.put_json(row, "done", sorted(op.done))
    t.put_json(row, "pending", sorted(op.pending))
    t.put_json(row, "executions", op.executions)
    t.update(table, PK, RK, lambda _old: row)
