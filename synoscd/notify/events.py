"""What a pass did that an operator wants to hear about, as events. Pure: from the pass result and the
status rows it recorded.

- sync-failed     the pass failed (a write or hook failed, or the revision's sync is failed)
- drift-healed    a resource changed outside Git was written back (a healing pass: the revision was
                  already synced, so a write can only undo drift)
- app-unhealthy   a write succeeded but the app is Degraded afterwards
- prune-executed  a resource that left Git was deleted
- prune-blocked   prune was held back (incomplete desired state, empty set, too large a share)
- hook-failed     a hook Job's execution failed
- rollout-stopped a progressive rollout stopped (produced once rollouts exist)

An event's key is (type, kind, app, revision): the same event for the same app and revision is sent
once (sender.py keeps the keys in the state table).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SYNC_FAILED = "sync-failed"
DRIFT_HEALED = "drift-healed"
APP_UNHEALTHY = "app-unhealthy"
PRUNE_EXECUTED = "prune-executed"
PRUNE_BLOCKED = "prune-blocked"
HOOK_FAILED = "hook-failed"
ROLLOUT_STOPPED = "rollout-stopped"
TYPES = (
    SYNC_FAILED,
    DRIFT_HEALED,
    APP_UNHEALTHY,
    PRUNE_EXECUTED,
    PRUNE_BLOCKED,
    HOOK_FAILED,
    ROLLOUT_STOPPED,
)
SEVERITY = {
    SYNC_FAILED: "error",
    HOOK_FAILED: "error",
    APP_UNHEALTHY: "error",
    ROLLOUT_STOPPED: "error",
    PRUNE_BLOCKED: "warning",
    DRIFT_HEALED: "info",
    PRUNE_EXECUTED: "info",
}
TITLES = {
    SYNC_FAILED: "Sync failed",
    DRIFT_HEALED: "Drift healed",
    APP_UNHEALTHY: "App unhealthy after a write",
    PRUNE_EXECUTED: "Pruned",
    PRUNE_BLOCKED: "Prune blocked",
    HOOK_FAILED: "Hook failed",
    ROLLOUT_STOPPED: "Rollout stopped",
}


@dataclass(frozen=True)
class Event:
    type: str
    revision: str
    message: str
    pass_id: str
    at: float
    app: str = ""  # "" for what concerns the whole pass (sync-failed, prune-blocked)
    kind: str = ""
    trace_id: str | None = None

    @property
    def severity(self) -> str:
        return SEVERITY.get(self.type, "info")

    @property
    def title(self) -> str:
        what = TITLES.get(self.type, self.type)
        return f"{what}: {self.kind} {self.app}" if self.app else what

    @property
    def key(self) -> str:
        """The de-duplication key: one notification per event type, app and revision."""
        raw = f"{self.type}|{self.kind}|{self.app.lower()}|{self.revision}"
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "severity": self.severity,
            "kind": self.kind,
            "app": self.app,
            "revision": self.revision,
            "message": self.message,
            "passId": self.pass_id,
            "traceId": self.trace_id,
            "at": self.at,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Event:
        return cls(
            type=str(d["type"]),
            revision=str(d.get("revision") or ""),
            message=str(d.get("message") or ""),
            pass_id=str(d.get("passId") or ""),
            at=float(d.get("at") or 0),
            app=str(d.get("app") or ""),
            kind=str(d.get("kind") or ""),
            trace_id=d.get("traceId"),
        )


def of_pass(
    result: Any, recorded: Sequence[Any], trace_id: str | None, now: float, healing: bool | None = None
) -> list[Event]:
    """The events of a finished (not dry-run) pass. `recorded`: the status rows the pass wrote (the
    health a write left). `healing`: the pass only healed (the revision was already synced), so
    every drift write undid a change made outside Git; None reads it from `result.mode`."""
    plan = getattr(result, "plan", None)
    if plan is None or getattr(result, "dry_run", False):
        return []
    if healing is None:
        healing = getattr(result, "mode", "") == "heal"
    revision = result.revision or "unknown"
    base = {"revision": revision, "pass_id": result.id, "at": now, "trace_id": trace_id}
    events: list[Event] = []
    after = {(s.kind, s.name.lower()): s for s in recorded}
    for o in result.outcomes:
        a = o.action
        where = {"app": a.name, "kind": a.kind}
        if a.action == "run-hook" and o.result == "failed":
            events.append(Event(HOOK_FAILED, message=o.error or "the hook failed", **where, **base))
        elif a.action == "delete" and o.result == "ok":
            events.append(
                Event(PRUNE_EXECUTED, message=f"deleted: {a.message or 'not in Git'}", **where, **base)
            )
        elif a.writes and o.result == "ok":
            status = after.get((a.kind, a.name.lower()))
            if status is not None and status.health == "Degraded":
                why = status.message or "Degraded"
                events.append(Event(APP_UNHEALTHY, message=f"{a.action} applied, but {why}", **where, **base))
            elif healing and a.action == "update" and a.reason == "drift":
                fields = [str(c.get("field", c)) if isinstance(c, dict) else str(c) for c in a.changes]
                changed = ", ".join(fields[:5]) or "live differed from Git"
                events.append(Event(DRIFT_HEALED, message=f"written back: {changed}", **where, **base))
    if plan.prune_blocked and any(a.reason == "prune-blocked" for a in plan.actions):
        held = sum(1 for a in plan.actions if a.reason == "prune-blocked")
        events.append(
            Event(PRUNE_BLOCKED, message=f"{held} resource(s) not pruned: {plan.prune_blocked}", **base)
        )
    if result.outcome == "failed":
        failed = [o for o in result.outcomes if o.result == "failed"]
        why = result.operation_error or (failed[0].error if failed else "") or "the pass failed"
        names = ", ".join(o.action.name for o in failed[:5])
        events.append(Event(SYNC_FAILED, message=f"{why}" + (f" (failed: {names})" if names else ""), **base))
    return events


def prune_reason(blocked: str | None) -> str:
    """A short category of a prune block message (engine/plan.py's wording), for metrics."""
    text = (blocked or "").lower()
    if "incomplete" in text:
        return "incomplete"
    if "empty" in text:
        return "empty"
    if "would delete" in text:
        return "fraction"
    return "other"


def drift_writes(result: Any, healing: bool) -> list[Any]:
    """The planned writes that undo drift (for metrics): updates for drift in a healing pass."""
    plan = getattr(result, "plan", None)
    if plan is None or not healing:
        return []
    return [a for a in plan.actions if a.action == "update" and a.reason == "drift"]


def summarize(events: Sequence[Event]) -> Mapping[str, int]:
    out: dict[str, int] = {}
    for e in events:
        out[e.type] = out.get(e.type, 0) + 1
    return out
