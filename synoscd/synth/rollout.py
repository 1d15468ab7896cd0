"""Deferred, health-gated rollouts (Eno's deferred synthesis with a global cooldown, plus a health
gate). Pure: state, pending compositions and live health in; the composition that may take its
deferred change now (at most one per pass) and the new state out.

A change of a synthesizer or of an input bound with `defer: true` can touch many compositions at once.
They roll one composition at a time: the next step only when the last step's apps are all Healthy
and `rollout-cooldown` seconds have passed since it. A Degraded app (or a failed synthesis) stops the
rollout, with the reason, until a new commit or `synos rollout resume`; `synos rollout pause` holds it.

The same machine rolls a change of a Project's defaults one app at a time (defaults_rollout.py, with
a state of its own): there a step is an app, and `label` names it in the reasons.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from synoscd.synth.state import RolloutState

HEALTHY, DEGRADED = "Healthy", "Degraded"


@dataclass(frozen=True)
class Decision:
    go: str | None  # the composition that takes its deferred change this pass
    state: RolloutState
    wait: str = ""  # why nothing goes now (shown in status)


def decide(
    state: RolloutState,
    pending: list[str],
    health: Callable[[str], tuple[str, str]],
    now: float,
    cooldown: float,
    revision: str | None,
    cause: str = "",
    label: Callable[[str], str] = lambda step: f"composition {step}",
) -> Decision:
    """`pending`: compositions with a deferred change, in the order they should go. `health(app)` ->
    (status, message) of a live resource ("Kind/name"), ("Missing", "") when absent. `label(step)`:
    how reasons name a step."""
    s = dataclasses.replace(state, pending=list(pending), cause=cause or state.cause)
    if s.status == "Stopped" and revision is not None and s.stopped_revision not in (None, revision):
        # A new commit (a fix, most likely): go on at once, gated neither on the step that stopped it
        # nor on the cooldown since that step (the broken composition should get the fix first).
        s = dataclasses.replace(
            s, status="Progressing", reason="", acknowledged=True, stopped_revision=None, last_step_at=None
        )
    if s.paused:
        return Decision(None, dataclasses.replace(s, status="Paused", reason="paused (synos rollout resume)"))
    if s.status == "Stopped":
        return Decision(None, s, s.reason)
    if not pending:
        return Decision(None, dataclasses.replace(s, status="Idle", reason="", cause=""))
    s = dataclasses.replace(s, status="Progressing")
    if s.last_step and not s.acknowledged:
        unwell = [(app, *health(app)) for app in s.last_apps]
        broken = [(app, message) for app, status, message in unwell if status == DEGRADED]
        if broken:
            app, message = broken[0]
            reason = (
                f"stopped: {app} of {label(s.last_step)} is unhealthy ({message}); fix it and push "
                "a commit, or synos rollout resume"
            )
            return Decision(
                None,
                dataclasses.replace(s, status="Stopped", reason=reason, stopped_revision=revision),
                reason,
            )
        waiting = [f"{app}: {status}" for app, status, _m in unwell if status != HEALTHY]
        if waiting:
            reason = f"waiting for {label(s.last_step)} to become healthy ({', '.join(waiting[:3])})"
            return Decision(None, dataclasses.replace(s, reason=reason), reason)
    if s.last_step_at is not None and now < s.last_step_at + cooldown:
        reason = (
            f"next step in {int(s.last_step_at + cooldown - now) + 1} s (rollout-cooldown {cooldown:g} s)"
        )
        return Decision(None, dataclasses.replace(s, reason=reason), reason)
    return Decision(pending[0], dataclasses.replace(s, reason=f"rolling {pending[0]}"))


def stepped(state: RolloutState, composition: str, apps: list[str], now: float) -> RolloutState:
    """The composition (or app) took its deferred change: its apps gate the next step."""
    rest = [p for p in state.pending if p != composition]
    return dataclasses.replace(
        state,
        status="Progressing" if rest else "Idle",
        reason="" if rest else f"done: {composition} was the last",
        pending=rest,
        last_step=composition,
        last_apps=list(apps),
        last_step_at=now,
        acknowledged=False,
    )


def stopped_by_failure(
    state: RolloutState, composition: str, error: str, revision: str | None
) -> RolloutState:
    reason = (
        f"stopped: synthesis of composition {composition} failed ({error}); fix it and push a commit, or "
        "synos rollout resume"
    )
    return dataclasses.replace(state, status="Stopped", reason=reason, stopped_revision=revision)


def resumed(state: RolloutState, who: str) -> RolloutState:
    """`synos rollout resume`: go on past a stop (the last step no longer gates) or a pause."""
    return dataclasses.replace(
        state,
        status="Progressing" if state.pending else "Idle",
        reason=f"resumed by {who}",
        acknowledged=True,
        paused=False,
        stopped_revision=None,
        updated_by=who,
    )


def paused(state: RolloutState, who: str) -> RolloutState:
    return dataclasses.replace(
        state, status="Paused", paused=True, reason=f"paused by {who} (synos rollout resume)", updated_by=who
    )
