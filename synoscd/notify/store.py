"""Sync events in the state table: the log `synos get events` reads (partition syncevents, newest
first) and the keys already notified (partition notified: one row per event type, app and revision,
created once; the create that finds the row is a duplicate)."""

from __future__ import annotations

import time
from typing import Any

from azure.core.exceptions import ResourceExistsError

from synoscd.notify.events import Event
from synoscd.state import table as t

EVENTS, NOTIFIED = "syncevents", "notified"
KEPT_DAYS = 14


def _inverted(at: float) -> str:
    return f"{10**11 - at:017.6f}"


def claim(table: Any, event: Event) -> bool:
    """True the first time this event (type, app, revision) is seen: record it; False: a duplicate."""
    try:
        table.create_entity(
            {"PartitionKey": NOTIFIED, "RowKey": event.key, "at": event.at, "type": event.type}
        )
    except ResourceExistsError:
        return False
    row: dict[str, Any] = {"PartitionKey": EVENTS, "RowKey": f"{_inverted(event.at)}-{event.key}"}
    row.update({k: v for k, v in event.to_dict().items() if v is not None})
    table.upsert_entity(row)
    return True


def list_events(table: Any, since: float | None = None, limit: int = 100) -> list[Event]:
    query = "PartitionKey eq @pk"
    params: dict[str, Any] = {"pk": EVENTS}
    if since is not None:  # newest first: rows before the inverted `since`
        query += " and RowKey lt @hi"
        params["hi"] = _inverted(since) + "~"
    out: list[Event] = []
    for row in table.query_entities(query, parameters=params, results_per_page=min(limit, 1000)):
        out.append(Event.from_dict(dict(row)))
        if len(out) >= limit:
            break
    return out


def prune(table: Any, now: float | None = None, days: int = KEPT_DAYS) -> int:
    """Drop events and notified keys older than `days` (a revision that old is not synced again)."""
    cutoff = (now or time.time()) - days * 86400
    dropped = 0
    for pk in (EVENTS, NOTIFIED):
        for row in table.query_entities(f"PartitionKey eq '{pk}'", select=["RowKey", "at"]):
            if float(row.get("at") or 0) < cutoff:
                t.delete(table, pk, row["RowKey"])
                dropped += 1
    return dropped
