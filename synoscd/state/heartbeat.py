"""Is a Functions host serving pass requests? The timer function writes one row on every tick
(`beat`); `synos reconcile` reads it (`serving`) to fail fast instead of waiting for a pass nobody
will run. The row also measures the timer's period: the gap between two ticks, so no NCRONTAB
parsing is needed here and the check follows whatever SYNOSCD_TIMER_SCHEDULE the host uses."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from azure.data.tables import TableClient

from synoscd.state import table as t

PK, RK = "heartbeat", "timer"
FIRST_PERIOD = 60.0  # until a second tick measures it: the default schedule ticks every minute
MAX_PERIOD = 3600.0


@dataclass(frozen=True)
class Beat:
    at: float
    period: float
    by: str = ""

    def age(self, now: float) -> float:
        return max(0.0, now - self.at)

    def fresh(self, now: float) -> bool:
        """Two missed ticks (and a little slack for a slow tick) mean nobody is serving."""
        return self.age(now) <= 2 * self.period + 5


def beat(table: TableClient, by: str, now: float | None = None) -> Beat:
    now = time.time() if now is None else now

    def mutate(row: dict[str, Any] | None) -> dict[str, Any]:
        previous = float((row or {}).get("at") or 0)
        gap = now - previous
        period = gap if 0 < gap <= MAX_PERIOD else float((row or {}).get("period") or FIRST_PERIOD)
        return {"at": now, "period": period, "by": by}

    row = t.update(table, PK, RK, mutate) or {}
    return Beat(float(row.get("at") or now), float(row.get("period") or FIRST_PERIOD), str(row.get("by", "")))


def read(table: TableClient) -> Beat | None:
    row = t.get(table, PK, RK)
    if not row or not row.get("at"):
        return None
    return Beat(float(row["at"]), float(row.get("period") or FIRST_PERIOD), str(row.get("by", "")))


def serving(last: Beat | None, lease_held: bool, now: float) -> tuple[bool, str]:
    """(is someone serving requests, what we know) from the last beat and the lease. Pure."""
    if lease_held:
        return True, "a pass is running"
    if last is None:
        return False, "no Functions host has ever ticked against this state table"
    if last.fresh(now):
        return True, f"the timer ticked {last.age(now):.0f} s ago (every ~{last.period:.0f} s)"
    return False, (
        f"the timer last ticked {last.age(now):.0f} s ago but ticks every ~{last.period:.0f} s: "
        "no Functions host is running"
    )
