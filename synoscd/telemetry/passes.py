"""A pass's trace and metrics, kept out of engine/reconcile.py: `traced_pass` wraps one pass in its
root span and counts it; `after_record` turns what the pass recorded into metric points. Both cost
nothing when telemetry is off."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from synoscd import telemetry
from synoscd.notify import events

F = TypeVar("F", bound=Callable[..., Any])


def traced_pass(fn: F) -> F:
    """Decorates `_one_pass(rt, result, ...)`: starts telemetry on the first pass of the process (a
    no-op when nothing is configured), runs the pass as the root span of a new trace and counts it
    (synoscd.passes, synoscd.pass.duration) with its outcome ("error" when it raised)."""

    @functools.wraps(fn)
    def inner(rt: Any, result: Any, *args: Any, **kwargs: Any) -> Any:
        if not telemetry.ensure(getattr(rt, "settings", None)):
            return fn(rt, result, *args, **kwargs)
        trigger, dry_run = result.trigger, result.dry_run
        started = time.monotonic()
        outcome = "error"
        with telemetry.pass_span(trigger, {"synoscd.dry_run": dry_run}) as span:
            try:
                done = fn(rt, result, *args, **kwargs)
                outcome = done.outcome
                span.set("synoscd.outcome", outcome)
                span.set("synoscd.counts", done.counts)
                if outcome in ("failed", "source-error"):
                    span.fail(done.operation_error or done.source_error or "the pass failed")
                return done
            finally:
                if not dry_run:
                    attrs = {"trigger": trigger, "outcome": outcome}
                    telemetry.count("synoscd.passes", 1, attrs)
                    telemetry.observe("synoscd.pass.duration", time.monotonic() - started, attrs)

    return inner  # type: ignore[return-value]


def after_record(result: Any, statuses: Mapping[str, Any], changed: Sequence[Any], healing: bool) -> None:
    """Metric points of a recorded pass: writes, drift, prune blocks, and apps and jobs by state."""
    if not telemetry.enabled():
        return
    for o in result.outcomes:
        if o.action.writes:
            attrs = {"kind": o.action.kind, "action": o.action.action, "result": o.result}
            telemetry.count("synoscd.writes", 1, attrs)
    drift = events.drift_writes(result, healing)
    healed = {id(o.action) for o in result.outcomes if o.result == "ok"}
    for action in drift:
        telemetry.count("synoscd.drift.detected", 1, {"kind": action.kind})
        if id(action) in healed:
            telemetry.count("synoscd.drift.healed", 1, {"kind": action.kind})
    plan = result.plan
    if plan is not None and plan.prune_blocked and any(a.reason == "prune-blocked" for a in plan.actions):
        telemetry.count("synoscd.prune.blocked", 1, {"reason": events.prune_reason(plan.prune_blocked)})
    # The gauge: every status row as this pass left it (unchanged rows are as they were read).
    merged = dict(statuses)
    merged.update({s.row_key: s for s in changed})
    totals: dict[tuple[str, str, str], int] = {}
    for s in merged.values():
        key = (s.kind, s.sync_state, s.health)
        totals[key] = totals.get(key, 0) + 1
    seen = _last_gauge_keys.copy()
    for (kind, sync_state, health), n in totals.items():
        telemetry.observe("synoscd.resources", n, {"kind": kind, "sync_state": sync_state, "health": health})
        seen.discard((kind, sync_state, health))
    for kind, sync_state, health in seen:  # a state nobody is in any more reads 0, not its last count
        telemetry.observe("synoscd.resources", 0, {"kind": kind, "sync_state": sync_state, "health": health})
    _last_gauge_keys.clear()
    _last_gauge_keys.update(totals)


_last_gauge_keys: set[tuple[str, str, str]] = set()
