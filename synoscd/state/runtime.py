"""Runtime settings: what `synos set` changes on a running SynosCD. The environment gives the
defaults; a value stored in the table wins."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from azure.data.tables import TableClient

from synoscd.config import Settings
from synoscd.state import table as t

PK, RK = "settings", "runtime"
FIELDS = ("interval_seconds", "prune_enabled", "protected_apps", "max_concurrent")


@dataclass(frozen=True)
class RuntimeSettings:
    interval_seconds: int
    prune_enabled: bool
    protected_apps: tuple[str, ...]
    max_concurrent: int
    # Which fields the table overrides, and who changed them last.
    overridden: tuple[str, ...] = ()
    updated_by: str | None = None
    updated_at: float | None = None

    @classmethod
    def defaults(cls, settings: Settings) -> RuntimeSettings:
        return cls(
            interval_seconds=settings.reconcile_interval_seconds,
            prune_enabled=settings.prune_enabled,
            protected_apps=tuple(sorted(settings.protected_apps)),
            max_concurrent=settings.max_concurrent,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "intervalSeconds": self.interval_seconds,
            "prune": self.prune_enabled,
            "protectedApps": list(self.protected_apps),
            "maxConcurrent": self.max_concurrent,
            "overridden": list(self.overridden),
            "updatedBy": self.updated_by,
            "updatedAt": self.updated_at,
        }


def load(table: TableClient, settings: Settings) -> RuntimeSettings:
    base = RuntimeSettings.defaults(settings)
    row = t.get(table, PK, RK)
    if not row:
        return base
    values: dict[str, Any] = {}
    for name in FIELDS:
        if name in row and row[name] is not None:
            raw = row[name]
            values[name] = tuple(a for a in raw.split(",") if a) if name == "protected_apps" else raw
    return replace(
        base,
        **values,
        overridden=tuple(sorted(values)),
        updated_by=row.get("updated_by"),
        updated_at=row.get("updated_at"),
    )


def save(table: TableClient, changes: dict[str, Any], who: str) -> None:
    """Override some fields; ETag-guarded, so a concurrent `synos set` of another field is kept."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown runtime setting(s): {', '.join(sorted(unknown))}")

    def mutate(row: dict[str, Any] | None) -> dict[str, Any]:
        row = dict(row or {})
        for name, value in changes.items():
            row[name] = ",".join(sorted(value)) if name == "protected_apps" else value
        row["updated_by"] = who
        row["updated_at"] = time.time()
        return row

    t.update(table, PK, RK, mutate)
