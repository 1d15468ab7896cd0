"""Bounded state: the timer applies this once an hour so the table does not grow without end."""

from __future__ import annotations

import time

from azure.data.tables import TableClient

from synoscd.notify import store
from synoscd.state import apps, history, previews

TIMELINE_DAYS = 14


def apply(table: TableClient, now: float | None = None) -> dict[str, int]:
    now = now or time.time()
    return {
        "passes": history.trim_passes(table),
        "events": apps.prune_events(table, now - TIMELINE_DAYS * 86400),
        "deliveries": history.purge_deliveries(table, now),
        "syncevents": store.prune(table, now),
        "previews": previews.purge(table, now),
    }
