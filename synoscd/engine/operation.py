"""Run a plan as a sync operation: phase by phase (PreSync, Sync, PostSync), wave by wave.

A wave's writes and hook runs go out together; the next wave starts only when every task of this one
is complete and healthy and its deletes are gone. What is not finished when the time budget runs out
is left to the next pass, which resumes from the operation kept in the state table (hook executions
already started are polled, never started twice). A failed task fails the sync: HookFailed hooks are
deleted, then every SyncFail hook runs. When the sync succeeds, HookSucceeded hooks are deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import groupby
from typing import Any

from synoscd.azure.arm import Arm, describe
from synoscd.engine.execute import FAILED, OK, PROGRESSING, Outcome, execute
from synoscd.engine.health import HEALTHY
from synoscd.engine.plan import Action, Plan
from synoscd.state.operation import Operation

RUNNING_PHASES = ("PreSync", "Sync", "PostSync")
DONE_STATES = {"Succeeded": OK, "Failed": FAILED, "Stopped": FAILED, "Degraded": FAILED}
HOOK_POLL = 0.25


BLOCKING_SKIPS = ("backoff", "in-progress")


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
    ) -> None:
        self.arm = arm
        self.op = op
        self.max_concurrent = max_concurrent
        self.deadline = deadline
        self.before_delete = before_delete
        self.save = save
        self.health_of = health_of
        self.say = say
        self.plan = plan
        self.outcomes: list[Outcome] = []
        self.sync_fail_hooks = [a for a in plan.actions if a.phase == "SyncFail" and a.action == "run-hook"]

    # -- the operation ----------------------------------------------------------------------------
    def run(self) -> list[Outcome]:
        tasks = [a for a in self.plan.actions if a.phase in RUNNING_PHASES]
        for (phase, wave), group in groupby(tasks, key=lambda a: (a.phase, a.wave)):
            acts = list(group)
            if self.op.status == "Running":
                self.op.phase, self.op.wave = phase, wave
            if not self._wave(acts):
                self.save(self.op)
                return self.outcomes
        self._finish()
        return self.outcomes

    def _wave(self, acts: list[Action]) -> bool:
        """Run one wave; True when it is complete and healthy (the next may start)."""
        writes = [a for a in acts if a.writes]
        hooks = [a for a in acts if a.action == "run-hook"]
        if writes or hooks:
            self.say(f"{acts[0].phase} wave {acts[0].wave}: {len(writes)} writes, {len(hooks)} hooks")
            outcomes = self._execute(writes, hooks)
            self.outcomes += outcomes
            failed = [o for o in outcomes if o.result == FAILED]
            if failed:
                self._fail(failed)
                return False
            if any(o.result == PROGRESSING for o in outcomes):
                return False
            unhealthy = [
                o
                for o in outcomes
                if o.action.writes and o.action.action != "delete" and self.health_of(o).status != HEALTHY
            ]
            if unhealthy:
                self.op.message = f"waiting for {unhealthy[0].action.name} to become healthy"
                return False
            self.op.done.update(o.action.task for o in outcomes if o.action.action == "run-hook")
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
        with ThreadPoolExecutor(max_workers=max(1, len(hooks))) as pool:
            hook_futures = [pool.submit(self._hook, a) for a in hooks]
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
                if time.monotonic() >= self.deadline:
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
        self.say(self.op.message)
        self._delete_hooks([o.action for o in failed if o.action.action == "run-hook"], "HookFailed")
        if self.sync_fail_hooks:
            self.outcomes += self._execute([], self.sync_fail_hooks)
        self.save(self.op)

    def _finish(self) -> None:
        if self.op.status == "Running":
            self.op.status, self.op.phase, self.op.wave = "Succeeded", None, None
            self.op.message = ""
            self._delete_hooks(self.plan.actions, "HookSucceeded")
            self.save(self.op)
