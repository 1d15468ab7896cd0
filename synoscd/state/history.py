"""Pass history (bounded retention), webhook deliveries seen (with expiry), and tombstones: the last
live ARM body of anything SynosCD deleted, so `synos restore` can bring it back.

Every pass leaves a history row, also one that failed: when the state store itself is down, the
record is kept in memory and written as soon as the store answers again (a background retry, and the
next pass of this instance first of all); a pass that died is recorded by whoever takes its expired
lease (`record_abandoned`)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import ResourceExistsError
from azure.data.tables import TableClient

from synoscd.state import table as t

PASSES, DELIVERIES, TOMBSTONES = "passes", "deliveries", "tombstones"
PASSES_KEPT = 200
log = logging.getLogger("synoscd.history")


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
    trace_id: str | None = None  # the pass's OpenTelemetry trace (Application Insights operation id)

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
            "traceId": self.trace_id,
        }


def _pass_key(started_at: float, pass_id: str) -> str:
    return _inverted(started_at) + "-" + pass_id


def record_pass(table: TableClient, rec: PassRecord) -> None:
    row: dict[str, Any] = {
        "PartitionKey": PASSES,
        "RowKey": _pass_key(rec.started_at, rec.id),
        "id": rec.id,
        "trigger": rec.trigger,
        "started_at": rec.started_at,
        "finished_at": rec.finished_at,
        "revision": rec.revision,
        "dry_run": rec.dry_run,
        "outcome": rec.outcome,
        "trace_id": rec.trace_id,
    }
    t.put_json(row, "counts", rec.counts)
    t.put_json(row, "errors", rec.errors)
    t.put_json(row, "prune", rec.prune)
    if rec.notes:
        t.put_json(row, "notes", rec.notes)
    table.upsert_entity(row)  # a pass writes only its own row (unique key): no other writer exists


# -- records kept while the state store is down ------------------------------------------------------

KEEP_UNSENT_SECONDS = 3600.0
RETRY_UNSENT_EVERY = 2.0
_unsent: list[tuple[TableClient, PassRecord, float]] = []
_unsent_lock = threading.Lock()
_flusher: threading.Thread | None = None


def record_pass_or_keep(table: TableClient, rec: PassRecord) -> bool:
    """Record the pass; when the store does not answer, keep the record and write it once it does.
    False when it was kept."""
    try:
        record_pass(table, rec)
        return True
    except Exception as exc:
        log.warning(
            "state store unreachable: pass %s is recorded when it answers again (%s)",
            rec.id,
            str(exc).splitlines()[0][:200],
        )
    global _flusher
    with _unsent_lock:
        _unsent.append((table, rec, time.monotonic()))
        if _flusher is None or not _flusher.is_alive():
            _flusher = threading.Thread(target=_flush_loop, name="history-flush", daemon=True)
            _flusher.start()
    return False


def flush_unsent() -> int:
    """Write the records kept while the store was down; those that still fail stay (for an hour).
    Returns how many are left."""
    with _unsent_lock:
        pending = list(_unsent)
        _unsent.clear()
    left = []
    for table, rec, kept_at in pending:
        try:
            record_pass(table, rec)
        except Exception:
            if time.monotonic() - kept_at < KEEP_UNSENT_SECONDS:
                left.append((table, rec, kept_at))
            else:
                log.error("pass %s could not be recorded within an hour; dropped", rec.id)
    with _unsent_lock:
        _unsent[:0] = left
        return len(_unsent)


def _flush_loop() -> None:
    while True:
        time.sleep(RETRY_UNSENT_EVERY)
        if flush_unsent() == 0:
            return


def record_abandoned(
    table: TableClient, pass_id: str, trigger: str, started_at: float, expired_at: float
) -> bool:
    """A failed history row for a pass that stopped without recording itself (its lease expired while
    held). Never replaces the pass's own row, should it exist (or arrive later: that one wins)."""
    when = time.strftime("%H:%M:%S UTC", time.gmtime(expired_at))
    row: dict[str, Any] = {
        "PartitionKey": PASSES,
        "RowKey": _pass_key(started_at, pass_id),
        "id": pass_id,
        "trigger": trigger,
        "started_at": started_at,
        "finished_at": None,
        "revision": None,
        "dry_run": False,
        "outcome": "failed",
    }
    t.put_json(row, "counts", {})
    t.put_json(
        row,
        "errors",
        [
            f"the pass did not finish: its lease expired at {when} while it was held (the instance "
            "stopped or lost the state store); the next pass took over"
        ],
    )
    t.put_json(row, "prune", {})
    try:
        table.create_entity(row)
    except ResourceExistsError:
        return False
    return True


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
        trace_id=row.get("trace_id"),
    )


def list_passes(table: TableClient, limit: int = 20) -> list[PassRecord]:
    out = []
    # Newest first by RowKey; ask for no more rows than wanted (a page is otherwise up to 1,000).
    for row in table.query_entities(f"PartitionKey eq '{PASSES}'", results_per_page=min(limit, 1000)):
        out.append(_pass(dict(row)))
        if len(out) >= limit:
            break
    return out


def get_pass(table: TableClient, pass_id: str) -> PassRecord | None:
    """One pass record by id (history is bounded: at most PASSES_KEPT rows are searched)."""
    rows = table.query_entities(
        "PartitionKey eq @pk and id eq @id", parameters={"pk": PASSES, "id": pass_id}, results_per_page=1
    )
    for row in rows:
        return _pass(dict(row))
    return None


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


DELIVERY_TTL = 7 * 86400.0


def delivery_key(delivery_id: str) -> str:
    """The row key of a delivery id: a hash, so no id can break a row key (`/`, `#`, `?`, `\\`,
    control characters, 1 KiB limit) whatever GitHub or an attacker sends."""
    return hashlib.sha256(delivery_id.encode("utf-8")).hexdigest()


def delivery_state(table: TableClient, delivery_id: str, **options: Any) -> str | None:
    """What happened to a delivery: queued, done or failed (None: never seen, or expired)."""
    row = t.get(table, DELIVERIES, delivery_key(delivery_id), **options)
    if row is None or float(row.get("expires_at") or 0) <= time.time():
        return None
    return str(row.get("state") or "queued")


def mark_delivery(
    table: TableClient, delivery_id: str, state: str, ttl: float = DELIVERY_TTL, **options: Any
) -> None:
    """Record a delivery's state (queued once its message is on the queue; done or failed by the
    pass it ran). A failed delivery counts as new when GitHub redelivers it."""
    now = time.time()
    table.upsert_entity(
        {
            "PartitionKey": DELIVERIES,
            "RowKey": delivery_key(delivery_id),
            "delivery": delivery_id[:200],
            "state": state,
            "seen_at": now,
            "expires_at": now + ttl,
        },
        **options,
    )


def mark_delivery_outcome(table: TableClient, delivery_id: str, ok: bool, ttl: float = DELIVERY_TTL) -> None:
    """A target's pass of a delivery ended: `failed` sticks (so GitHub's redelivery runs again,
    whichever of the delivery's targets failed), `done` only where nothing failed."""
    if not ok:
        mark_delivery(table, delivery_id, "failed", ttl)
        return

    def mutate(row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row is not None and row.get("state") == "failed":
            return None
        now = time.time()
        return {"delivery": delivery_id[:200], "state": "done", "seen_at": now, "expires_at": now + ttl}

    t.update(table, DELIVERIES, delivery_key(delivery_id), mutate)


def seen_delivery(table: TableClient, delivery_id: str, ttl: float = DELIVERY_TTL) -> bool:
    """Record a webhook delivery; True when it was already recorded (and not expired): a redelivery."""
    if delivery_state(table, delivery_id) is not None:
        return True
    mark_delivery(table, delivery_id, "queued", ttl)
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
