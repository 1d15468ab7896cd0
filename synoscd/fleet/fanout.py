"""The fleet's passes over the Storage Queue (Azure Functions spreads the messages over instances):

- the timer reads the fleet (one conditional GitHub request on a warm instance) and puts one message
  on the queue for each target that is due: its interval passed, a pass was requested, or it never
  ran; a target whose message is still waiting is not queued again (`lease.mark_queued`);
- a webhook's message (no target named) is fanned out here to the targets whose folders — or files
  their manifests read — the push touched, and to targets the push declared or changed;
- a message naming a target runs that target's pass (functions/handlers.py).

Every message carries the commit to sync when the source is GitHub (the timer's head, the push's
`after`), so a target's pass reads no branch ref of its own: the fleet's tick costs one conditional
request, not one per target. One target's failure fails only its own message (retried by the host,
poisoned after maxDequeueCount); the other targets' messages run as if nothing happened.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from synoscd import telemetry
from synoscd.fleet import catalog, summary
from synoscd.fleet.targets import TargetDef, touched

log = logging.getLogger("synoscd.fleet")

# A message waiting this long without its pass having started is taken for lost: queued again.
QUEUED_GRACE_SECONDS = 600.0


def due(
    now: float,
    last_started: float | None,
    interval: float,
    pending: int,
    queued_at: float | None = None,
) -> str | None:
    """Why a timer tick should queue a target's pass (None: it should not). Pure."""
    waiting = queued_at is not None and (last_started is None or queued_at > last_started)
    if waiting and now - queued_at < QUEUED_GRACE_SECONDS:  # type: ignore[operator]
        return None  # its message is on the queue: not twice
    if pending:
        return f"{pending} requested"
    if last_started is None:
        return "first pass"
    if now - last_started >= interval:
        return f"interval {int(interval)} s passed"
    return None


def message(target: str, trigger: str, after: str | None, **extra: Any) -> dict[str, Any]:
    return {"target": target, "trigger": trigger, "after": after, "queuedAt": time.time(), **extra}


def _send(rt: Any, doc: dict[str, Any]) -> str:
    from synoscd.state import queue as passes

    return passes.send(rt.deployment.passes_queue, doc)


def _check(rt: Any, now: float) -> tuple[str | None, str]:
    """(why the target is due or None, what was read), from its own table: 3 reads."""
    from synoscd.state import history, lease, runtime

    settings = runtime.load(rt.table, rt.settings)
    latest = history.list_passes(rt.table, limit=1)
    held = lease.view(rt.table)
    started = latest[0].started_at if latest else None
    reason = due(now, started, settings.interval_seconds, held.pending, held.queued_at)
    if reason is None:
        return (
            None,
            f"next pass in {settings.interval_seconds} s interval" if not held.queued_at else "queued",
        )
    if latest and int(latest[0].started_at // 3600) != int(now // 3600):
        from synoscd.state import retention

        retention.apply(rt.table)  # once an hour: bounded history, timeline and delivery ids
    return reason, ""


def tick(rt: Any, now: float | None = None) -> dict[str, Any]:
    """The timer: queue one pass per due target; returns what it decided per target."""
    from synoscd.state import lease

    now = now or time.time()
    fleet = catalog.load(rt)
    decided: dict[str, str] = {}

    def one(target: TargetDef) -> tuple[str, str]:
        try:
            trt = rt.for_target(target.name, target)
            reason, why_not = _check(trt, now)
            if reason is None:
                return target.name, why_not
            _send(rt, message(target.name, "timer", fleet.revision, trace=telemetry.carrier()))
            lease.mark_queued(trt.table, now)
            return target.name, f"queued: {reason}"
        except Exception as exc:  # one target's state store trouble never stops the others
            log.error("timer: target %s not queued: %s", target.name, str(exc).splitlines()[0][:200])
            return target.name, f"error: {str(exc).splitlines()[0][:200]}"

    with ThreadPoolExecutor(max_workers=min(8, max(1, len(fleet.targets)))) as pool:
        decided = dict(pool.map(one, fleet.targets))
    for error in fleet.errors:
        log.warning("fleet: %s", error)
    queued = sorted(n for n, d in decided.items() if d.startswith("queued"))
    return {
        "ran": False,
        "queued": queued,
        "targets": decided,
        "revision": fleet.revision,
        "errors": fleet.errors,
        "reason": f"{len(queued)} of {len(fleet.targets)} targets queued",
    }


def _touches_targets_path(rt: Any, paths: tuple[str, ...] | None) -> bool:
    folder = rt.settings.targets_path.strip().strip("/")
    if not folder:
        return False
    return paths is None or any(p == folder or p.startswith(folder + "/") for p in paths)


def plan_fanout(
    before: list[TargetDef],
    after: list[TargetDef],
    paths: tuple[str, ...] | None,
    watch: Mapping[str, list[str]],
) -> list[TargetDef]:
    """The targets a push runs: those whose folder or watched files it touched, and those it declared
    or changed (a new target's first pass, a moved one's). Pure."""
    known = {t.name: t for t in before}
    changed = [t for t in after if known.get(t.name) != t]
    chosen = {t.name for t in touched(after, paths, watch)} | {t.name for t in changed}
    return [t for t in after if t.name in chosen]


def fan_out(rt: Any, doc: Mapping[str, Any]) -> tuple[list[TargetDef], dict[str, Any]]:
    """A webhook's message: which targets its push touched. The fleet is read at the pushed commit
    only when the push touched the targets path (or did not list its files); else the catalog the
    timer keeps serves, without a GitHub request."""
    after = doc.get("after") if isinstance(doc.get("after"), str) else None
    raw_paths = doc.get("paths")
    paths = tuple(str(p) for p in raw_paths) if isinstance(raw_paths, list) else None
    before = catalog.cached(rt)
    fleet = catalog.load(rt, at=after) if _touches_targets_path(rt, paths) else before
    chosen = plan_fanout(before.targets, fleet.targets, paths, summary.watched(rt))
    return chosen, {"revision": after, "errors": fleet.errors}


def enqueue(rt: Any, targets: list[TargetDef], trigger: str, after: str | None, **extra: Any) -> list[str]:
    """One message per target, sent side by side."""
    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        list(pool.map(lambda t: _send(rt, message(t.name, trigger, after, **extra)), targets))
    return [t.name for t in targets]
