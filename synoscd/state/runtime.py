"""Runtime settings: what `synos set` changes on a running SynosCD. The environment gives the
defaults; a value stored in the table wins.

Besides the knobs of a pass (interval, prune, protected apps, concurrency) they hold the retry policy
of failed syncs (Argo CD's limit, duration, factor, max duration) and the operator guardrails: allowed
registries, max cpu and max memory for every App and Job, which no manifest can switch off. The
guardrails have no environment default: they exist only once an operator sets them."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from azure.data.tables import TableClient
from pydantic import ValidationError

from synoscd.config import Settings
from synoscd.manifests.policy import Guardrails
from synoscd.manifests.schema import Policy
from synoscd.state import table as t

PK, RK = "settings", "runtime"
GUARDRAIL_FIELDS = ("allowed_registries", "max_cpu", "max_memory")
RETRY_FIELDS = ("retry_limit", "retry_duration_seconds", "retry_factor", "retry_max_duration_seconds")
SYNTH_FIELDS = ("allow_exec_synthesizers", "rollout_cooldown_seconds")
FIELDS = (
    "interval_seconds",
    "prune_enabled",
    "protected_apps",
    "max_concurrent",
    "applied_history",
    *RETRY_FIELDS,
    *GUARDRAIL_FIELDS,
    *SYNTH_FIELDS,
)
_CSV = ("protected_apps", "allowed_registries")


@dataclass(frozen=True)
class RuntimeSettings:
    interval_seconds: int
    prune_enabled: bool
    protected_apps: tuple[str, ...]
    max_concurrent: int
    retry_limit: int = 5
    retry_duration_seconds: float = 60.0
    retry_factor: float = 2.0
    retry_max_duration_seconds: float = 3600.0
    applied_history: int = 10  # applied bodies kept per app and job for `synos rollback`
    # Operator guardrails; None: no limit.
    allowed_registries: tuple[str, ...] | None = None
    max_cpu: float | None = None
    max_memory: str | None = None
    # Synthesizers: executor exec allowed (off by default), seconds between deferred rollout steps.
    allow_exec_synthesizers: bool = False
    rollout_cooldown_seconds: float = 60.0
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
            retry_limit=settings.retry_limit,
            retry_duration_seconds=settings.retry_duration_seconds,
            retry_factor=settings.retry_factor,
            retry_max_duration_seconds=settings.retry_max_duration_seconds,
            applied_history=settings.applied_history,
            allow_exec_synthesizers=settings.allow_exec_synthesizers,
            rollout_cooldown_seconds=settings.rollout_cooldown_seconds,
        )

    def guardrails(self, vault_hosts: tuple[str, ...] | None = None) -> Guardrails:
        """The guardrails every App and Job must keep; `vault_hosts` (from the environment, never the
        table: operators must not point SynosCD at a host of their choosing) bounds secret URLs."""
        return Guardrails(_policy(self.allowed_registries, self.max_cpu, self.max_memory), vault_hosts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "intervalSeconds": self.interval_seconds,
            "prune": self.prune_enabled,
            "protectedApps": list(self.protected_apps),
            "maxConcurrent": self.max_concurrent,
            "retryLimit": self.retry_limit,
            "retryDurationSeconds": self.retry_duration_seconds,
            "retryFactor": self.retry_factor,
            "retryMaxDurationSeconds": self.retry_max_duration_seconds,
            "appliedHistory": self.applied_history,
            "allowedRegistries": None if self.allowed_registries is None else list(self.allowed_registries),
            "maxCpu": self.max_cpu,
            "maxMemory": self.max_memory,
            "allowExecSynthesizers": self.allow_exec_synthesizers,
            "rolloutCooldownSeconds": self.rollout_cooldown_seconds,
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
            values[name] = tuple(a for a in raw.split(",") if a) if name in _CSV else raw
    loaded = replace(
        base,
        **values,
        overridden=tuple(sorted(values)),
        updated_by=row.get("updated_by"),
        updated_at=row.get("updated_at"),
    )
    loaded.guardrails()  # a value written around `save` fails the pass here, loudly, not open
    return loaded


def save(table: TableClient, changes: dict[str, Any], who: str) -> None:
    """Override some fields (None: back to the default, for a guardrail: no limit); ETag-guarded, so a
    concurrent `synos set` of another field is kept. Values are checked first: ValueError says why."""
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise ValueError(f"unknown runtime setting(s): {', '.join(sorted(unknown))}")
    changes = _checked(changes)

    def mutate(row: dict[str, Any] | None) -> dict[str, Any]:
        row = dict(row or {})
        for name, value in changes.items():
            if value is None:
                row.pop(name, None)
            else:
                row[name] = ",".join(sorted(value)) if name in _CSV else value
        row["updated_by"] = who
        row["updated_at"] = time.time()
        return row

    t.update(table, PK, RK, mutate)


def _checked(changes: dict[str, Any]) -> dict[str, Any]:
    out = dict(changes)
    guards = {name: changes[name] for name in GUARDRAIL_FIELDS if changes.get(name) is not None}
    if guards:
        policy = _policy(guards.get("allowed_registries"), guards.get("max_cpu"), guards.get("max_memory"))
        if "max_cpu" in guards:
            out["max_cpu"] = float(policy.max_cpu or 0)
        if "max_memory" in guards:
            out["max_memory"] = policy.max_memory  # normalised: 2048Mi -> 2Gi
    limits = {
        "retry_limit": (0, 100),
        "retry_duration_seconds": (0.001, 86400),
        "retry_factor": (1, 100),
        "retry_max_duration_seconds": (0.001, 7 * 86400),
        "applied_history": (1, 100),
        "rollout_cooldown_seconds": (0, 86400),
    }
    for name, (low, high) in limits.items():
        value = changes.get(name)
        if value is not None and not low <= value <= high:
            raise ValueError(f"{name} {value} is out of range; use a value from {low} to {high}")
    return out


def _policy(registries: Any, max_cpu: Any, max_memory: Any) -> Policy:
    data = {
        "allowedRegistries": None if registries is None else list(registries),
        "maxCpu": max_cpu,
        "maxMemory": max_memory,
    }
    try:
        return Policy.model_validate({k: v for k, v in data.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"guardrail {first['loc'][0] if first['loc'] else ''}: {first['msg']}") from exc
