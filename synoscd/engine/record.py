"""From a plan and its outcomes to the per-app status rows (only those that changed), and from the
status rows back to what the next plan needs to know (attempts, backoff)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from synoscd.engine.execute import FAILED, OK, PROGRESSING, Outcome
from synoscd.engine.health import HEALTHY, MISSING, app_health, job_health, needs_revision
from synoscd.engine.health import PROGRESSING as HEALTH_PROGRESSING
from synoscd.engine.plan import Action, Backoff, Memory, Plan, body_hash
from synoscd.state.applied import AppliedBody
from synoscd.state.apps import AppStatus, status_key

SKIP_STATE = {
    "suspended": "Suspended",
    "protected": "Skipped",
    "in-progress": "Progressing",
    "unmanaged-conflict": "OutOfSync",
    "prune-disabled": "OutOfSync",
    "prune-blocked": "OutOfSync",
}
# What a status change is about; bookkeeping fields alone are no change worth a write.
COMPARED = (
    "kind",
    "desired_revision",
    "applied_revision",
    "sync_state",
    "health",
    "message",
    "last_action",
    "last_result",
    "last_error",
    "attempts",
    "next_retry_at",
    "extra",
)


def memory_of(statuses: Mapping[str, AppStatus]) -> dict[tuple[str, str], Memory]:
    return {
        (s.kind, s.name.lower()): Memory(s.attempts, s.next_retry_at, s.extra.get("failed_hash"))
        for s in statuses.values()
    }


def statuses(
    plan: Plan,
    outcomes: Sequence[Outcome],
    previous: Mapping[str, AppStatus],
    revision: str | None,
    pass_id: str,
    now: float,
    revision_reader: Callable[[str, str], Any],
    backoff: Backoff | None = None,
) -> list[AppStatus]:
    by_key = {o.key: o for o in outcomes}
    backoff = backoff or Backoff()
    changed = []
    for action in plan.actions:
        old = previous.get(status_key(action.kind, action.name))
        new = dataclasses.replace(old) if old else AppStatus(action.name, action.kind)
        new.kind = action.kind
        outcome = by_key.get((action.kind, action.name.lower()))
        _apply(new, action, outcome, revision, now, revision_reader, backoff)
        if old is None or any(getattr(old, f) != getattr(new, f) for f in COMPARED):
            new.last_pass = pass_id
            changed.append(new)
    return changed


def _apply(
    s: AppStatus,
    action: Action,
    outcome: Outcome | None,
    revision: str | None,
    now: float,
    revision_reader: Callable[[str, str], Any],
    backoff: Backoff,
) -> None:
    """Revisions are recorded when a resource is written (or first seen), not on every new commit:
    a commit that touches one manifest must not rewrite a thousand status rows."""
    first_seen = s.sync_state == "Unknown"
    s.message = action.message
    if action.action != "delete":  # the dashboard filters by wave (prunes run in mirrored waves)
        wave = {"wave": action.wave} if action.wave else {}
        s.extra = {k: v for k, v in s.extra.items() if k != "wave"} | wave
    if action.action == "noop":
        _synced(s, action.health, revision if first_seen or s.sync_state != "Synced" else None)
        if first_seen or s.desired_revision is None:
            s.desired_revision = revision
        s.message = ""
        return
    if action.action == "skip":
        # Backoff keeps the state that caused it; so does a failed write waiting for the sync's retry.
        keep = action.reason == "backoff" or (action.reason == "sync-failed" and s.sync_state == "Failed")
        s.sync_state = SKIP_STATE.get(action.reason, s.sync_state if keep else "OutOfSync")
        if action.health:
            s.health = action.health
        return
    if action.action != "delete":
        s.desired_revision = revision
    s.last_action = action.action
    s.extra = {k: v for k, v in s.extra.items() if k != "changes"}
    if action.changes:
        s.extra["changes"] = list(action.changes)[:20]
    if outcome is None:
        return
    if outcome.result == FAILED:
        s.sync_state, s.last_result, s.last_error = "Failed", FAILED, outcome.error
        s.message = outcome.error or ""
        _back_off(s, now, backoff)
        if action.body is not None:
            s.extra["failed_hash"] = body_hash(action.body)
        return
    s.extra.pop("failed_hash", None)
    s.last_error = None
    if outcome.result == PROGRESSING:
        s.sync_state, s.last_result = "Progressing", PROGRESSING
        s.health = HEALTH_PROGRESSING if action.action != "delete" else s.health
        s.message = (
            "deleting" if action.action == "delete" else "operation still running; the next pass checks it"
        )
        if action.action == "heal":  # a re-apply proves nothing until the app is healthy: wait first
            _back_off(s, now, backoff)
        return
    s.last_result = OK
    s.last_synced_at = now
    if action.action == "delete":
        s.sync_state, s.health, s.applied_revision = "Pruned", MISSING, None
        s.attempts, s.next_retry_at = 0, None
        return
    _note_applied(s, revision)
    health = health_after(action, outcome, revision_reader)
    _synced(s, health.status, revision)
    s.message = health.message
    if action.action == "heal" or not health.healthy:
        _back_off(s, now, backoff)  # a re-apply does not prove health: wait before the next one


def _note_applied(s: AppStatus, revision: str | None) -> None:
    """Count the revisions written (rollback keeps one body per revision): a new one takes the next slot."""
    seq, at = s.extra.get("applied") or (0, None)
    s.extra["applied"] = [seq if seq and at == revision else seq + 1, revision]


def applied_bodies(
    outcomes: Sequence[Outcome], statuses: Mapping[str, AppStatus], pass_id: str, now: float
) -> list[AppliedBody]:
    """The bodies this pass wrote successfully, each with its slot number from the status row."""
    out = []
    for o in outcomes:
        a = o.action
        s = statuses.get(status_key(a.kind, a.name))
        if o.result != OK or a.action not in ("create", "update", "heal") or a.body is None or s is None:
            continue
        seq, revision = s.extra.get("applied") or (0, None)
        if seq and revision:
            out.append(AppliedBody(a.kind, a.name, int(seq), revision, now, pass_id, dict(a.body)))
    return out


def health_after(action: Action, outcome: Outcome, revision_reader: Callable[[str, str], Any]) -> Any:
    body = outcome.body or {}
    if action.kind == "Job":
        return job_health(body)
    revision = None
    if needs_revision(body):
        revision = revision_reader(action.name, body["properties"]["latestRevisionName"])
    return app_health(body, revision)


def _synced(s: AppStatus, health: str, revision: str | None) -> None:
    s.sync_state, s.health = "Synced", health or s.health
    if revision is not None:
        s.applied_revision = revision
    s.last_result = s.last_result or OK
    if health == HEALTHY:
        s.attempts, s.next_retry_at = 0, None


def _back_off(s: AppStatus, now: float, backoff: Backoff) -> None:
    s.attempts += 1
    s.next_retry_at = now + backoff.seconds(s.attempts)
