"""Pass history (bounded retention), webhook deliveries seen (with expiry), and tombstones: the last
live ARM body of anything SynosCD deleted, so `synos restore` can bring it back."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient

from synoscd.state import table as t

PASSES, DELIVERIES, TOMBSTONES = "passes", "deliveries", "tombstones"
PASSES_KEPT = 200


def _inverted(at: float) -> str:
    return f"{10**11 - at:017.6f}"  # newest first in RowKey order


@dataclass
class PassRecord:
    id: str
    trigger: str
    started_at: float
    finished_at: float | None = None
    revision: str | None = None
    dry_run: bool = False
    outcome: str = "running"  # succeeded | failed | partial | source-error | running
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    prune: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the source said, e.g. a force-push applied

    @property
    def duration_ms(self) -> int | None:
        return None if self.finished_at is None else int((self.finished_at - self.started_at) * 1000)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "trigger": self.trigger,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "durationMs": self.duration_ms,
            "revision": self.revision,
            "dryRun": self.dry_run,
            "outcome": self.outcome,
            "counts": self.counts,
            "errors": self.errors,
            "prune": self.prune,
            "notes": self.notes,
        }


def record_pass(table: TableClient, rec: PassRecord) -> None:
    row: dict[str, Any] = {
        "PartitionKey": PASSES,
        "RowKey": _inverted(rec.started_at) + "-" + rec.id,
        "id": rec.id,
        "trigger": rec.trigger,
        "started_at": rec.started_at,
        "finished_at": rec.finished_at,
        "revision": rec.revision,
        "dry_run": rec.dry_run,
        "outcome": rec.outcome,
    }
    t.put_json(row, "counts", rec.counts)
    t.put_json(row, "errors", rec.errors)
    t.put_json(row, "prune", rec.prune)
    if rec.notes:
        t.put_json(row, "notes", rec.notes)
    table.upsert_entity(row)  # a pass writes only its own row (unique key): no other writer exists


def _pass(row: dict[str, Any]) -> PassRecord:
    return PassRecord(
        id=row["id"],
        trigger=row["trigger"],
        started_at=row["started_at"],
        finished_at=row.get("finished_at"),
        revision=row.get("revision"),
        dry_run=bool(row.get("dry_run")),
        outcome=row.get("outcome", "running"),
        counts=t.get_json(row, "counts", {}),
        errors=t.get_json(row, "errors", []),
        prune=t.get_json(row, "prune", {}),
        notes=t.get_json(row, "notes", []),
    )


def list_passes(table: TableClient, limit: int = 20) -> list[PassRecord]:
    out = []
    # Newest first by RowKey; ask for no more rows than wanted (a page is otherwise up to 1,000).
    for row in table.query_entities(f"PartitionKey eq '{PASSES}'", results_per_page=min(limit, 1000)):
        out.append(_pass(dict(row)))
        if len(out) >= limit:
            break
    return out


def trim_passes(table: TableClient, keep: int = PASSES_KEPT) -> int:
    rows = list(table.query_entities(f"PartitionKey eq '{PASSES}'", select=["RowKey"]))
    for row in rows[keep:]:
        t.delete(table, PASSES, row["RowKey"])
    return max(0, len(rows) - keep)


def purge_deliveries(table: TableClient, now: float | None = None) -> int:
    """Forget delivery ids whose de-duplication window has passed."""
    now = now or time.time()
    stale = [
        r["RowKey"]
        for r in table.query_entities(f"PartitionKey eq '{DELIVERIES}'", select=["RowKey", "expires_at"])
        if float(r.get("expires_at") or 0) < now
    ]
    for rk in stale:
        t.delete(table, DELIVERIES, rk)
    return len(stale)


def seen_delivery(table: TableClient, delivery_id: str, ttl: float = 7 * 86400) -> bool:
    """Record a webhook delivery; True when it was already recorded (and not expired): a redelivery."""
    now = time.time()
    try:
        table.create_entity(
            {"PartitionKey": DELIVERIES, "RowKey": delivery_id, "seen_at": now, "expires_at": now + ttl}
        )
        return False
    except ResourceExistsError:
        row = t.get(table, DELIVERIES, delivery_id) or {}
        if float(row.get("expires_at") or 0) > now:
            return True
        t.update(
            table, DELIVERIES, delivery_id, lambda r: {**(r or {}), "seen_at": now, "expires_at": now + ttl}
        )
        return False


def put_tombstone(table: TableClient, kind: str, name: str, body: dict[str, Any], pass_id: str) -> str:
    now = time.time()
    rk = f"{name}|{_inverted(now)}"
    row: dict[str, Any] = {
        "PartitionKey": TOMBSTONES,
        "RowKey": rk,
        "name": name,
        "kind": kind,
        "deleted_at": now,
        "pass_id": pass_id,
    }
    t.put_json(row, "body", body)
    table.create_entity(row)
    return rk


def latest_tombstone(table: TableClient, name: str) -> dict[str, Any] | None:
    rows = table.query_entities(
        "PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi",
        parameters={"pk": TOMBSTONES, "lo": f"{name}|", "hi": f"{name}|~"},
    )
    for row in rows:
        row = dict(row)
        return {
            "name": row["name"],
            "kind": row["kind"],
            "deletedAt": row["deleted_at"],
            "passId": row.get("pass_id"),
            "body": t.get_json(row, "body"),
        }
    return None
