"""Run a plan as a sync operation: phase by phase (PreSync, Sync, PostSync), wave by wave.

While the operation is Running (a new revision, or a due retry): a wave's writes and hook runs go out
together; the next wave starts only when every task of this one is complete and healthy and its
deletes are gone. What is not finished when the time budget runs out is left to the next pass, which
resumes from the operation kept in the state table (hook executions already started are polled,
never started twice). A failed task or a Degraded resource fails the sync: HookFailed hooks are
deleted, every SyncFail hook runs, and the sync is retried with exponential backoff up to the retry
limit (Argo CD's retry). When the sync succeeds, HookSucceeded hooks are deleted.

Otherwise (the sync succeeded, or failed and waits for its retry) a pass only heals: writes go out
wave by wave in order, but nothing waits and nothing fails the operation; a resource that fails is
backed off on its own (see record.py) and every other resource is still healed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from synoscd import telemetry
from synoscd.azure.arm import Arm, describe
from synoscd.engine.execute import FAILED, OK, PROGRESSING, Outcome, execute
from synoscd.engine.health import DEGRADED, HEALTHY
from synoscd.engine.plan import Action, Backoff, Plan, resource_key
from synoscd.state.operation import Operation

RUNNING_PHASES = ("PreSync", "Sync", "PostSync")
DONE_STATES = {"Succeeded": OK, "Failed": FAILED, "Stopped": FAILED, "Degraded": FAILED}
HOOK_POLL = 0.25


BLOCKING_SKIPS = ("backoff", "in-progress")


@dataclass(frozen=True)
class Retry:
    """Argo CD's sync retry: at most `limit` retries of a failed sync, waiting `backoff` between."""

    limit: int = 5
    backoff: Backoff = field(default_factory=Backoff)


def retry_of(settings: Any) -> Retry:
    """The retry policy of the runtime settings (state/runtime.py RuntimeSettings)."""
    return Retry(
        settings.retry_limit,
        Backoff(settings.retry_duration_seconds, settings.retry_factor, settings.retry_max_duration_seconds),
    )


def select(current: Operation | None, revision: str | None, trigger: str, now: float) -> Operation:
    """The operation this pass works on: a new one for a new revision (and for a manual sync of a
    revision whose sync failed), the failed one running again when its retry is due, else the
    current one."""
    if current is None or current.revision != revision or (current.status == "Failed" and trigger == "cli"):
        return Operation(revision=revision or "unknown")
    if current.status == "Failed" and current.next_retry_at is not None and now >= current.next_retry_at:
        return current.retried()
    return current


def failure_note(op: Operation) -> str:
    """Why the revision is not synced and what happens next, for the pass and each waiting resource."""
    what = f"the sync of {op.revision[:12]} failed ({op.message})"
    if op.next_retry_at is not None:
        at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(op.next_retry_at))
        return f"{what}; retry {op.attempts}/{op.retry_limit} at {at}"
    return f"{what}; retries exhausted: push a new commit, or run `synos sync` to try this revision again"


class Runner:
    def __init__(
        self,
        plan: Plan,
        arm: Arm,
        op: Operation,
        *,
        max_concurrent: int,
        deadline: float,
        before_delete: Callable[[Action], None],
        save: Callable[[Operation], None],
        health_of: Callable[[Outcome], Any],
        say: Callable[[str], None],
        retry: Retry | None = None,
    ) -> None:
        self.arm = arm
        self.op = op
        self.max_concurrent = max_concurrent
        self.deadline = deadline
        self.before_delete = before_delete
        self.save = save
        self.health_of = health_of
        self.say = say
        self.retry = retry or Retry()
        self.plan = plan
        self.outcomes: list[Outcome] = []
        self.sync_fail_hooks = [a for a in plan.actions if a.phase == "SyncFail" and a.action == "run-hook"]

    # -- the operation ----------------------------------------------------------------------------
    def run(self) -> list[Outcome]:
        tasks = [a for a in self.plan.actions if a.phase in RUNNING_PHASES]
        if self.op.status != "Running":
            return self._heal(tasks)
        # What this sync has to write; a resource leaves the set once written (or found in sync).
        self.op.pending |= {
            resource_key(a.kind, a.name)
            for a in tasks
            if a.writes or (a.action == "skip" and a.reason in BLOCKING_SKIPS)
        }
        for (phase, wave), group in groupby(tasks, key=lambda a: (a.phase, a.wave)):
            acts = list(group)
            self.op.phase, self.op.wave = phase, wave
            if not self._wave(acts):
                self.save(self.op)
                return self.outcomes
        self._finish()
        return self.outcomes

    def _heal(self, tasks: list[Action]) -> list[Outcome]:
        """The sync is over (succeeded, or failed and waiting for its retry): write what drifted, wave
        by wave in order, without waiting for health and without failing the operation."""
        for (phase, wave), group in groupby(tasks, key=lambda a: (a.phase, a.wave)):
            writes = [a for a in group if a.writes]
            if writes:
                self.say(f"{phase} wave {wave}: healing {len(writes)}")
                self.outcomes += self._execute(writes, [])
        return self.outcomes

    def _wave(self, acts: list[Action]) -> bool:
        """Run one wave; True when it is complete and healthy (the next may start)."""
        writes = [a for a in acts if a.writes]
        hooks = [a for a in acts if a.action == "run-hook"]
        if writes or hooks:
            self.say(f"{acts[0].phase} wave {acts[0].wave}: {len(writes)} writes, {len(hooks)} hooks")
            outcomes = self._execute(writes, hooks)
            self.outcomes += outcomes
            self.op.pending -= {
                resource_key(o.action.kind, o.action.name)
                for o in outcomes
                if o.result == OK and o.action.writes
            }
            failed = [o for o in outcomes if o.result == FAILED]
            if failed:
                self._fail(failed)
                return False
            if any(o.result == PROGRESSING for o in outcomes):
                return False
            health = {
                id(o): self.health_of(o) for o in outcomes if o.action.writes and o.action.action != "delete"
            }
            degraded = [o for o in outcomes if id(o) in health and health[id(o)].status == DEGRADED]
            if degraded:  # the wave cannot become healthy by waiting: the sync failed
                first = degraded[0]
                first.error = f"{first.action.name} is {DEGRADED}: {health[id(first)].message}"
                self._fail(degraded)
                return False
            unhealthy = [o for o in outcomes if id(o) in health and health[id(o)].status != HEALTHY]
            if unhealthy:
                self.op.message = f"waiting for {unhealthy[0].action.name} to become healthy"
                return False
            self.op.done.update(o.action.task for o in outcomes if o.action.action == "run-hook")
        self.op.pending -= {resource_key(a.kind, a.name) for a in acts if a.action == "noop"}
        waiting = [
            a
            for a in acts
            if (a.action == "noop" and a.health not in (HEALTHY, ""))
            or (a.action == "skip" and a.reason in BLOCKING_SKIPS)
        ]
        if waiting:
            self.op.message = (
                f"waiting for {waiting[0].name} ({waiting[0].health or waiting[0].reason}) to settle"
            )
            return False
        return True

    def _execute(self, writes: list[Action], hooks: list[Action]) -> list[Outcome]:
        remaining = max(0.0, self.deadline - time.monotonic())
        first = (writes or hooks)[0]
        wave = {"synoscd.phase": first.phase, "synoscd.wave": first.wave, "synoscd.writes": len(writes)}
        with (
            telemetry.span("synoscd.wave", {**wave, "synoscd.hooks": len(hooks)}),
            ThreadPoolExecutor(max_workers=max(1, len(hooks))) as pool,
        ):
            hook_futures = [pool.submit(telemetry.bind(self._hook), a) for a in hooks]
            applied = execute(
                writes,
                self.arm,
                max_concurrent=self.max_concurrent,
                wait_seconds=remaining,
                before_delete=self.before_delete,
                on_outcome=lambda done, total, o: self.say(
                    f"{done}/{total} {o.action.action} {o.action.name}: {o.result}"
                ),
            )
            return applied + [f.result() for f in hook_futures]

    # -- hooks ------------------------------------------------------------------------------------------
    def _hook(self, action: Action) -> Outcome:
        with telemetry.span(
            "synoscd.hook", {"synoscd.app": action.name, "synoscd.phase": action.phase}
        ) as span:
            outcome = self._run_hook(action)
            span.set("synoscd.result", outcome.result)
            if outcome.error:
                span.fail(outcome.error)
            return outcome

    def _run_hook(self, action: Action) -> Outcome:
        """Apply the hook Job (BeforeHookCreation: delete an existing one first), start it once per
        operation, and wait for its execution within the budget."""
        try:
            execution = self.op.executions.get(action.task)
            if execution is None:
                if "BeforeHookCreation" in action.policies and self.arm.get("Job", action.name) is not None:
                    self.arm.begin_delete("Job", action.name).result()
                assert action.body is not None
                self.arm.begin_put("Job", action.name, action.body).result()
                execution = self.arm.start_job(action.name)
                self.op.executions[action.task] = execution
                self.save(self.op)
            while True:
                status = self.arm.execution_status(action.name, execution)
                if status in DONE_STATES:
                    result = DONE_STATES[status]
                    error = (
                        None
                        if result == OK
                        else f"hook {action.name} ({action.phase}) execution {execution} {status}"
                    )
                    return Outcome(action, result, error)
                if time.monotonic() >= self.deadline or self.arm.remaining() <= 0:  # budget or lease gone
                    return Outcome(action, PROGRESSING)
                time.sleep(HOOK_POLL)
        except Exception as exc:
            return Outcome(
                action, FAILED, str(describe(exc, f"hook {action.name} ({action.phase})", self.arm.endpoint))
            )

    def _delete_hooks(self, actions: Sequence[Action], policy: str) -> None:
        names = sorted(
            {
                a.name
                for a in actions
                if a.action in ("run-hook", "noop")
                and policy in a.policies
                and a.reason in ("hook", "hook-done")
            }
        )
        for name in names:
            try:
                self.arm.begin_delete("Job", name).result()
            except Exception as exc:  # a hook left behind is reported, it does not fail the sync
                self.op.message += f"; could not delete hook {name}: {exc}"

    def _fail(self, failed: list[Outcome]) -> None:
        first = failed[0]
        self.op.status = "Failed"
        self.op.message = f"{first.action.phase} wave {first.action.wave} failed: {first.error}"
        self.op.attempts += 1
        self.op.retry_limit = self.retry.limit
        if self.op.attempts - 1 < self.retry.limit:  # retries done so far
            self.op.next_retry_at = time.time() + self.retry.backoff.seconds(self.op.attempts)
        else:
            self.op.next_retry_at = None
            self.op.message += f"; retries exhausted ({self.retry.limit})"
        self.say(self.op.message)
        self._delete_hooks([o.action for o in failed if o.action.action == "run-hook"], "HookFailed")
        if self.sync_fail_hooks:
            self.outcomes += self._execute([], self.sync_fail_hooks)
        self.save(self.op)

    def _finish(self) -> None:
        if self.op.status == "Running":
            self.op.status, self.op.phase, self.op.wave = "Succeeded", None, None
            self.op.message, self.op.next_retry_at = "", None
            self.op.pending.clear()
            self._delete_hooks(self.plan.actions, "HookSucceeded")
            self.save(self.op)
