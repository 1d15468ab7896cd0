"""Per-app records. Flags (suspended, by whom, when, why) are written by operators; status (what the
last pass did) is written by passes. They live in separate rows so neither writer can lose the
other's change, and both are ETag-guarded against writers of their own kind.

Names are normalised in one place, `app_key`: ACA names are lower case and ARM matches them without
case, so `synos suspend Demo-App` and `synos resume demo-app` must touch the same row."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.data.tables import TableClient, TableTransactionError, UpdateMode

from synoscd.state import table as t

FLAGS, STATUS, EVENTS = "flags", "status", "events"


@dataclass(frozen=True)
class AppFlags:
    name: str
    suspended: bool = False
    by: str | None = None
    at: float | None = None
    reason: str | None = None


@dataclass
class AppStatus:
    name: str
    kind: str = "App"
    desired_revision: str | None = None
    applied_revision: str | None = None
    sync_state: str = "Unknown"  # Synced, OutOfSync, Progressing, Failed, Suspended, Skipped
    health: str = "Unknown"  # Healthy, Progressing, Degraded, Missing, Unknown
    message: str = ""
    last_action: str | None = None
    last_result: str | None = None  # ok | failed | progressing | skipped
    last_error: str | None = None
    attempts: int = 0
    next_retry_at: float | None = None
    last_synced_at: float | None = None
    updated_at: float | None = None
    last_pass: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. field-level changes, backoff details
    etag: str | None = field(default=None, compare=False)  # as read; guards the next write

    def to_entity(self) -> dict[str, Any]:
        row = {k: v for k, v in asdict(self).items() if k not in ("name", "extra", "etag")}
        t.put_json(row, "extra", self.extra)
        return row

    @property
    def row_key(self) -> str:
        return status_key(self.kind, self.name)

    @classmethod
    def from_entity(cls, row: dict[str, Any], name: str | None = None) -> AppStatus:
        known = {f.name for f in fields(cls)} - {"name", "extra", "etag"}
        return cls(
            name=name or row["RowKey"].partition(".")[2],
            extra=t.get_json(row, "extra", {}) or {},
            etag=row.get("_etag"),
            **{k: row[k] for k in known if k in row},
        )


def app_key(name: str) -> str:
    """The one spelling of an app or job name in row keys and lookups."""
    return name.strip().lower()


def status_key(kind: str, name: str) -> str:
    """App and Job names may repeat across kinds (they are different ARM types): key by both."""
    return f"{kind}.{app_key(name)}"


class Flags(dict[str, AppFlags]):
    """Flags by normalised name: any spelling of a name finds its flag."""

    def __getitem__(self, name: str) -> AppFlags:
        return super().__getitem__(app_key(name))

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(app_key(name), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(app_key(name))


def get_flags(table: TableClient) -> Flags:
    flags = Flags()
    # Oldest first: where an older version left rows in several spellings, the latest change wins.
    for row in sorted(t.query(table, FLAGS), key=lambda r: r.get("at") or 0):
        key = app_key(row["RowKey"])
        flags[key] = AppFlags(
            key, bool(row.get("suspended")), row.get("by"), row.get("at"), row.get("reason")
        )
    return flags


def set_suspended(table: TableClient, name: str, suspended: bool, who: str, reason: str | None) -> AppFlags:
    key = app_key(name)

    def mutate(row: dict[str, Any] | None) -> dict[str, Any]:
        return {**(row or {}), "suspended": suspended, "by": who, "at": time.time(), "reason": reason or ""}

    row = t.update(table, FLAGS, key, mutate) or {}
    # Rows an older version keyed as typed ("Demo-App") would shadow this change: drop them.
    for old in t.query(table, FLAGS):
        if old["RowKey"] != key and app_key(old["RowKey"]) == key:
            t.delete(table, FLAGS, old["RowKey"])
    return AppFlags(key, suspended, row.get("by"), row.get("at"), row.get("reason"))


def get_statuses(table: TableClient) -> dict[str, AppStatus]:
    """Every status, keyed by `Kind.name`."""
    return {row["RowKey"]: AppStatus.from_entity(row) for row in t.query(table, STATUS)}


def get_status(table: TableClient, kind: str, name: str) -> AppStatus | None:
    row = t.get(table, STATUS, status_key(kind, name))
    return AppStatus.from_entity(row) if row else None


def put_statuses(table: TableClient, statuses: list[AppStatus]) -> None:
    """Write changed statuses (and one timeline event each) in batches of 100 per partition.

    Each status row is written with the ETag it was read with (or created if new), so a batch that
    meets a concurrent writer fails whole and falls back to one ETag-guarded update per row."""
    now = time.time()
    for status in statuses:
        status.updated_at = now
    rows = []
    for status in statuses:
        etag = status.etag
        row = {"PartitionKey": STATUS, "RowKey": status.row_key, **status.to_entity()}
        rows.append(
            (
                "update",
                row,
                {"etag": etag, "match_condition": MatchConditions.IfNotModified, "mode": UpdateMode.REPLACE},
            )
            if etag
            else ("create", row)
        )
    events = [
        ("upsert", {"PartitionKey": EVENTS, "RowKey": _event_key(s.row_key, now), **s.to_entity()})
        for s in statuses
    ]
    batches = [lambda c=c: _submit_statuses(table, c) for c in _chunks(rows, 100)]
    batches += [lambda c=c: table.submit_transaction(c) for c in _chunks(events, 100)]
    if len(batches) <= 1:
        for batch in batches:
            batch()
        return
    # Independent partitions and rows: the batches go out side by side.
    with ThreadPoolExecutor(max_workers=min(4, len(batches))) as pool:
        for future in [pool.submit(batch) for batch in batches]:
            future.result()


def _submit_statuses(table: TableClient, chunk: list[Any]) -> None:
    try:
        table.submit_transaction(chunk)
    except (TableTransactionError, ResourceExistsError, ResourceModifiedError):
        for _op, row, *_ in chunk:
            t.update(table, STATUS, row["RowKey"], lambda _old, row=row: dict(row))


def _event_key(key: str, at: float) -> str:
    # Newest first within an app: Table Storage returns rows in RowKey order.
    return f"{key}|{10**11 - at:017.6f}"


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def get_events(table: TableClient, kind: str, name: str, limit: int = 50) -> list[AppStatus]:
    key = status_key(kind, name)
    rows = table.query_entities(
        "PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi",
        parameters={"pk": EVENTS, "lo": f"{key}|", "hi": f"{key}|~"},
    )
    out = []
    for row in rows:
        out.append(AppStatus.from_entity(dict(row), name=name))
        if len(out) >= limit:
            break
    return out


def prune_events(table: TableClient, older_than: float) -> int:
    """Drop timeline events older than `older_than` (epoch seconds); returns how many."""
    stale = [
        r
        for r in table.query_entities(f"PartitionKey eq '{EVENTS}'", select=["RowKey", "updated_at"])
        if (r.get("updated_at") or 0) < older_than
    ]
    for chunk in _chunks([("delete", {"PartitionKey": EVENTS, "RowKey": r["RowKey"]}) for r in stale], 100):
        table.submit_transaction(chunk)
    return len(stale)
