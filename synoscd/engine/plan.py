"""The plan: a pure function from (desired, live, settings, flags, history) to ordered actions, each
with a reason. No I/O. Every safety invariant that can be decided here is decided here:

- never write or delete a live resource that is not ours: tagged `synoscd-managed=true`, in our
  environment, from our source and of our target (anything else a manifest names is a clash:
  unmanaged-conflict or foreign-owner; it is never pruned);
- a write to a resource that exists is a merge patch of the owned fields that differ (azure/merge.py):
  what the manifest does not own stays as it is;
- protected and suspended resources are never written or deleted;
- an app whose turn in a rollout of its Project's new defaults has not come is not updated
  (rollout-pending; synth/defaults_rollout.py decides which);
- an InProgress resource is never PUT again;
- prune is off unless enabled, and blocked when the desired set is incomplete or empty, or when it
  would delete more than the allowed fraction of the managed resources;
- a broken resource is re-applied with exponential backoff, not every pass;
- while a failed sync waits for its retry, only the resources it has not synced yet wait with it
  (reason sync-failed); every other resource keeps being healed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from synoscd.azure.merge import write_patch
from synoscd.azure.translate import HOOK_TAG, OPTIONS_TAG, WAVE_TAG, Ownership, diff, is_managed, ownership
from synoscd.engine.health import DEGRADED, MISSING, Health, in_progress
from synoscd.manifests.syncspec import options_from_tag, parse_wave

PHASES = ("PreSync", "Sync", "PostSync", "SyncFail")
KIND_ORDER = {"App": 0, "Job": 1}
BACKOFF_BASE = 60.0
BACKOFF_MAX = 3600.0


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff like Argo CD's retry: `duration`, then times `factor`, at most
    `max_duration` (seconds). Runtime settings (`synos set --retry-*`) give the values."""

    duration: float = BACKOFF_BASE
    factor: float = 2.0
    max_duration: float = BACKOFF_MAX

    def seconds(self, attempts: int) -> float:
        """Wait after the `attempts`-th failure: duration, duration x factor, ... capped."""
        try:
            wait = self.duration * self.factor ** max(attempts - 1, 0)
        except OverflowError:
            return self.max_duration
        return min(wait, self.max_duration)


def backoff_seconds(attempts: int, backoff: Backoff | None = None) -> float:
    """1, 2, 4 ... minutes, at most an hour (with the default backoff)."""
    return (backoff or Backoff()).seconds(attempts)


def resource_key(kind: str, name: str) -> str:
    """How an operation names a resource it has still to sync: `Kind/name`, the name in lower case."""
    return f"{kind}/{name.lower()}"


def body_hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class DesiredItem:
    kind: str
    name: str
    body: Mapping[str, Any]  # the ARM envelope to PUT
    file: str = ""
    line: int = 0
    suspend: bool = False  # spec.suspend
    wave: int = 0
    phase: str = "Sync"
    hooks: tuple[str, ...] = ()  # hook phases (Jobs only); ("Skip",) alone: neither applied nor pruned
    policies: frozenset[str] = frozenset({"BeforeHookCreation"})  # hook delete policies

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name.lower())


@dataclass(frozen=True)
class LiveItem:
    kind: str
    name: str
    body: Mapping[str, Any]
    health: Health

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name.lower())

    @property
    def managed(self) -> bool:
        """Tagged managed (by some SynosCD); whether it is *ours* is `ownership(...)`."""
        return is_managed(self.body)

    def owner(self, inp: PlanInput) -> Ownership:
        return ownership(self.kind, self.name, self.body, inp.environment_id, inp.source, inp.target)

    @property
    def hook(self) -> bool:
        """Hooks are never pruned: their delete policies remove them."""
        return bool((self.body.get("tags") or {}).get(HOOK_TAG))


@dataclass(frozen=True)
class Memory:
    """What earlier passes recorded for a resource (from its status row)."""

    attempts: int = 0
    next_retry_at: float | None = None
    failed_hash: str | None = None  # body hash of a write that failed; unchanged -> wait for backoff


@dataclass(frozen=True)
class PlanInput:
    desired: tuple[DesiredItem, ...]
    complete: bool  # False on any source, parse, validation or render error
    live: Mapping[tuple[str, str], LiveItem]
    now: float
    prune_enabled: bool = False
    protected: frozenset[str] = frozenset()
    suspended: frozenset[str] = frozenset()  # names, lower case, from the flags table
    memory: Mapping[tuple[str, str], Memory] = field(default_factory=dict)
    max_prune_fraction: float = 0.5
    force_prune: bool = False
    incomplete_reason: str = ""
    only: tuple[str, str] | None = None  # (kind or "", name): plan one resource
    done: frozenset[str] = frozenset()  # hook tasks the current operation completed
    prune_last: bool = False  # sync-wide PruneLast
    # The sync of this revision failed and waits for its retry (the reason, shown with each held
    # action): its hooks do not run, and the resources it has not synced yet (`held`, resource_key)
    # are not written. Everything else is healed as usual.
    sync_failed: str | None = None
    held: frozenset[str] = frozenset()
    # Apps (names, lower case) that wait for their turn in a rollout of their Project's new defaults,
    # with why: their update waits (a create does not: nothing is there to protect).
    rollout_pending: Mapping[str, str] = field(default_factory=dict)
    environment_id: str = ""  # ours: in this environment ...
    source: str = ""  # ... and tagged with this source (both required to own anything)
    target: str = "default"  # ... and written by this target of the fleet (no tag: the default one)


@dataclass(frozen=True)
class Action:
    kind: str
    name: str
    action: str  # create | update | heal | delete | skip | noop | run-hook
    reason: str
    phase: str = "Sync"
    wave: int = 0
    changes: tuple[dict[str, Any], ...] = ()
    message: str = ""
    order: int = 0
    body: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)  # the desired envelope
    live: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    health: str = ""
    policies: frozenset[str] = field(default=frozenset(), compare=False)
    # What a write sends: PUT of `body` (create), or PATCH of `request` (a merge patch of the owned
    # fields, for a resource that exists) with `fill_secrets` filled from listSecrets first.
    method: str = field(default="", compare=False)
    request: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)
    fill_secrets: tuple[str, ...] = field(default=(), compare=False)

    @property
    def writes(self) -> bool:
        return self.action in ("create", "update", "heal", "delete")

    @property
    def task(self) -> str:
        """A task's identity within an operation: a hook runs once per phase it lists."""
        return f"{self.phase}/{self.kind}/{self.name.lower()}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "order": self.order,
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "phase": self.phase,
            "wave": self.wave,
            "reason": self.reason,
        }
        if self.changes:
            out["changes"] = list(self.changes)
        if self.message:
            out["message"] = self.message
        return out


@dataclass(frozen=True)
class Plan:
    revision: str
    actions: tuple[Action, ...]
    prune_enabled: bool
    prune_blocked: str | None

    @property
    def writes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.writes or a.action == "run-hook")

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "prune": {"enabled": self.prune_enabled, "blocked": self.prune_blocked},
            "actions": [a.to_dict() for a in self.actions],
        }


def sort_key(a: Action) -> tuple[int, int, int, bytes]:
    """(phase, wave, kind, name) with names compared byte by byte."""
    return (PHASES.index(a.phase), a.wave, KIND_ORDER.get(a.kind, 9), a.name.encode())


def plan(inp: PlanInput, revision: str) -> Plan:
    actions: list[Action] = []
    for d in inp.desired:
        if not _selected(inp, d.kind, d.name):
            continue
        if d.hooks:
            actions += _plan_hook(d, inp)
        else:
            actions.append(_plan_desired(d, inp))
    prunes, blocked = _plan_prune(inp)
    actions += prune_waves(prunes, actions, inp.prune_last)
    if inp.sync_failed is not None:
        actions = [_held(a, inp) for a in actions]
    ordered = sorted(actions, key=sort_key)
    numbered = tuple(replace(a, order=i) for i, a in enumerate(ordered, start=1))
    return Plan(revision, numbered, inp.prune_enabled, blocked)


def _plan_hook(d: DesiredItem, inp: PlanInput) -> list[Action]:
    """A hook Job gets one task per phase it lists; `Skip` alone means it is neither applied nor pruned."""
    live = inp.live.get(d.key)
    phases = [p for p in d.hooks if p != "Skip"]
    if not phases:
        return [Action(d.kind, d.name, "skip", "sync-skip", wave=d.wave, message="synoscd.io/hook: Skip")]
    out = []
    for phase in phases:
        base = Action(
            d.kind,
            d.name,
            "run-hook",
            "hook",
            phase=phase,
            wave=d.wave,
            body=d.body,
            live=live.body if live else None,
            health=live.health.status if live else MISSING,
            policies=d.policies,
        )
        name = d.name.lower()
        if name in inp.protected:
            out.append(replace(base, action="skip", reason="protected", message="listed in protected apps"))
        elif d.suspend or name in inp.suspended:
            out.append(replace(base, action="skip", reason="suspended"))
        elif live is not None and not (owner := live.owner(inp)).ours:
            out.append(replace(base, action="skip", reason=owner.reason, message=owner.message))
        elif base.task in inp.done:
            out.append(replace(base, action="noop", reason="hook-done", message="ran for this revision"))
        else:
            out.append(base)
    return out


def prune_waves(prunes: list[Action], others: list[Action], prune_last: bool) -> list[Action]:
    """Deletions run in reverse: the distinct waves of prune tasks are mirrored (what was created first
    is deleted last). A PruneLast delete runs in one extra wave after everything else. Waves and
    options come from the live resource's tags (ARM resources have no annotations)."""
    if not prunes:
        return []
    tags = [dict((a.live or {}).get("tags") or {}) for a in prunes]
    waves = [parse_wave(t.get(WAVE_TAG)) for t in tags]
    distinct = sorted(set(waves))
    mirror = {w: distinct[len(distinct) - 1 - i] for i, w in enumerate(distinct)}
    out = []
    for action, tag, wave in zip(prunes, tags, waves, strict=True):
        options = options_from_tag(tag.get(OPTIONS_TAG))
        action = replace(action, wave=mirror[wave])
        if "Prune=false" in options and action.reason not in ("protected", "suspended"):
            action = replace(
                action, action="skip", reason="prune-disabled", message="sync option Prune=false"
            )
        out.append((action, prune_last or "PruneLast=true" in options))
    sync_waves = [a.wave for a in others if a.phase == "Sync"] + [a.wave for a, _ in out]
    last = max(sync_waves) + 1
    return [replace(a, wave=last) if is_last else a for a, is_last in out]


def _selected(inp: PlanInput, kind: str, name: str) -> bool:
    if inp.only is None:
        return True
    only_kind, only_name = inp.only
    return name.lower() == only_name.lower() and (not only_kind or only_kind == kind)


def _plan_desired(d: DesiredItem, inp: PlanInput) -> Action:
    live = inp.live.get(d.key)
    base = Action(
        d.kind,
        d.name,
        "noop",
        "in-sync",
        phase=d.phase,
        wave=d.wave,
        body=d.body,
        live=live.body if live else None,
        health=live.health.status if live else MISSING,
    )
    name = d.name.lower()
    if name in inp.protected:
        return replace(base, action="skip", reason="protected", message="listed in protected apps")
    if d.suspend or name in inp.suspended:
        why = "spec.suspend is true" if d.suspend else "suspended at runtime (synos resume to undo)"
        return replace(base, action="skip", reason="suspended", message=why)
    if live is None:
        return _unless_backoff(replace(base, action="create", reason="missing", method="PUT"), d, inp)
    owner = live.owner(inp)
    if not owner.ours:
        return replace(base, action="skip", reason=owner.reason, message=owner.message)
    if in_progress(live.body):
        return replace(base, action="skip", reason="in-progress", message=live.health.message)
    changes = tuple(diff(d.body, live.body))
    if changes and d.kind == "App" and name in inp.rollout_pending:
        return replace(
            base, action="skip", reason="rollout-pending", changes=changes, message=inp.rollout_pending[name]
        )
    if changes:
        write = write_patch(d.body, live.body)
        update = replace(
            base,
            action="update",
            reason="drift",
            changes=changes,
            method="PATCH",
            request=write.body,
            fill_secrets=write.fill_secrets,
        )
        return _unless_backoff(update, d, inp)
    if live.health.status == DEGRADED:
        write = write_patch(d.body, live.body, full=True)  # re-apply everything owned
        heal = replace(
            base,
            action="heal",
            reason="unhealthy",
            message=live.health.message,
            method="PATCH",
            request=write.body,
            fill_secrets=write.fill_secrets,
        )
        return _unless_backoff(heal, d, inp, heal=True)
    return base


def _unless_backoff(action: Action, d: DesiredItem, inp: PlanInput, heal: bool = False) -> Action:
    """A heal, or a write that failed before with the same body, waits for its backoff."""
    mem = inp.memory.get(d.key)
    if mem is None or mem.next_retry_at is None or inp.now >= mem.next_retry_at:
        return action
    if heal or mem.failed_hash == body_hash(d.body):
        wait = int(mem.next_retry_at - inp.now)
        detail = action.message or action.reason
        return replace(
            action,
            action="skip",
            reason="backoff",
            message=f"{detail}; attempt {mem.attempts} failed, next try in {wait} s",
        )
    return action


HELD_SKIPS = ("backoff", "in-progress")


def _held(action: Action, inp: PlanInput) -> Action:
    """While the failed sync waits for its retry: no hook runs, and what it has still to write waits."""
    assert inp.sync_failed is not None
    waits = action.action == "run-hook" or (
        resource_key(action.kind, action.name) in inp.held
        and (action.writes or (action.action == "skip" and action.reason in HELD_SKIPS))
    )
    if not waits:
        return action
    return replace(action, action="skip", reason="sync-failed", message=inp.sync_failed)


def _plan_prune(inp: PlanInput) -> tuple[list[Action], str | None]:
    desired = {d.key for d in inp.desired}
    ours = {key: live for key, live in inp.live.items() if not live.hook and live.owner(inp).ours}
    candidates = [
        live
        for key, live in sorted(ours.items())
        if key not in desired and _selected(inp, live.kind, live.name)
    ]
    if not candidates:
        return [], None
    managed_total = len(ours)
    blocked = _prune_blocked(inp, len(candidates), managed_total)
    actions = []
    for live in candidates:
        base = Action(live.kind, live.name, "delete", "pruned", live=live.body, health=live.health.status)
        name = live.name.lower()
        if name in inp.protected:
            actions.append(
                replace(base, action="skip", reason="protected", message="not in Git, but protected")
            )
        elif name in inp.suspended:
            actions.append(
                replace(base, action="skip", reason="suspended", message="not in Git, but suspended")
            )
        elif not inp.prune_enabled:
            actions.append(
                replace(
                    base,
                    action="skip",
                    reason="prune-disabled",
                    message="not in Git; prune is off (synos set --prune to enable)",
                )
            )
        elif blocked:
            actions.append(replace(base, action="skip", reason="prune-blocked", message=blocked))
        elif in_progress(live.body):
            actions.append(replace(base, action="skip", reason="in-progress", message=live.health.message))
        else:
            actions.append(base)
    return actions, (blocked if inp.prune_enabled else None)


def _prune_blocked(inp: PlanInput, candidates: int, managed_total: int) -> str | None:
    if not inp.complete:
        reason = inp.incomplete_reason or "errors in this pass"
        return f"desired state is incomplete ({reason}); no prune this pass"
    if not inp.desired and inp.only is None:
        return "the desired set is empty; refusing to prune everything (check the source path)"
    if managed_total and candidates / managed_total > inp.max_prune_fraction and not inp.force_prune:
        return (
            f"would delete {candidates} of {managed_total} managed resources, more than "
            f"{inp.max_prune_fraction:.0%}; prune with force to allow it"
        )
    return None
