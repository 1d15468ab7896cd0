"""The sync operation in flight (Argo CD's "operation"): the revision, the phase and wave reached,
hook executions started and tasks completed. Kept in the state table so the next pass — timer or
webhook, on any instance — resumes it; a new revision starts a new operation."""

from __future__ import annotations

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
        }


def load(table: TableClient) -> Operation | None:
    row = t.get(table, PK, RK)
    if not row:
        return None
    return Operation(
        revision=row["revision"],
        status=row.get("status", "Running"),
        phase=row.get("phase"),
        wave=row.get("wave"),
        done=set(t.get_json(row, "done", [])),
        executions=dict(t.get_json(row, "executions", {})),
        message=row.get("message", ""),
        started_at=row.get("started_at") or time.time(),
        updated_at=row.get("updated_at"),
    )


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
    }
    t.put_json(row, "done", sorted(op.done))
    t.put_json(row, "executions", op.executions)
    t.update(table, PK, RK, lambda _old: row)
