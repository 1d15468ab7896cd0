"""Execute a plan's writes: submit them with bounded concurrency, then wait on their long-running
operations within a time budget. An operation still running at the budget is reported as
progressing (the next pass sees it InProgress and leaves it alone); a failure is recorded for its
resource and stops no other. Losing the lease (`LeaseLost`, raised before each write) stops them all."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from synoscd import telemetry
from synoscd.azure.arm import Arm, ArmError, describe
from synoscd.azure.merge import fill_secrets
from synoscd.engine.plan import Action

OK, FAILED, PROGRESSING = "ok", "failed", "progressing"


@dataclass
class Outcome:
    action: Action
    result: str  # ok | failed | progressing
    error: str | None = None
    body: dict[str, Any] | None = None  # the resource after the operation, when it finished

    @property
    def key(self) -> tuple[str, str]:
        return (self.action.kind, self.action.name.lower())


def _spans(name: str) -> Callable[[Any], Any]:
    """Each ARM write and its long-running operation is a span: `synoscd.write` around the request
    (the SDK's HTTP spans below it), `synoscd.lro` around the wait, with the outcome."""

    def wrap(fn: Any) -> Any:
        def inner(*args: Any) -> Any:
            action = next(a for a in args if isinstance(a, Action))
            attrs = {"synoscd.kind": action.kind, "synoscd.app": action.name, "synoscd.action": action.action}
            with telemetry.span(name, attrs) as span:
                out = fn(*args)
                if isinstance(out, Outcome):
                    span.set("synoscd.result", out.result)
                    if out.error:
                        span.fail(out.error)
                return out

        return inner

    return wrap


@_spans("synoscd.write")
def _submit(arm: Arm, action: Action, before_delete: Callable[[Action], None]) -> Any:
    arm.budget.check()  # a pass that lost its lease writes nothing more, not even a tombstone
    if action.action == "delete":
        before_delete(action)  # the tombstone is written before anything is deleted
        return arm.begin_delete(action.kind, action.name)
    if action.method == "PATCH":
        assert action.request is not None
        body = action.request
        if action.fill_secrets:
            # Value secrets set outside Git go back with their values (listSecrets), or the write
            # would erase them; the values live only in this request.
            values = arm.list_secrets(action.kind, action.name)
            missing = [n for n in action.fill_secrets if n not in values]
            if missing:
                raise ArmError(
                    f"{action.kind} {action.name}: listSecrets did not return secret(s) "
                    f"{', '.join(missing)}; not writing, so they are not erased"
                )
            body = fill_secrets(body, values)
        return arm.begin_patch(action.kind, action.name, body)
    assert action.body is not None
    return arm.begin_put(action.kind, action.name, action.body)


def execute(
    actions: Sequence[Action],
    arm: Arm,
    *,
    max_concurrent: int,
    wait_seconds: float,
    before_delete: Callable[[Action], None],
    on_outcome: Callable[[int, int, Outcome], None] = lambda done, total, outcome: None,
) -> list[Outcome]:
    writes = [a for a in actions if a.writes]
    if not writes:
        return []
    submitted: list[tuple[Action, Any]] = []
    outcomes: list[Outcome] = []
    with ThreadPoolExecutor(max_workers=max(1, min(max_concurrent, len(writes)))) as pool:
        submit = telemetry.bind(_submit)
        futures = [(a, pool.submit(submit, arm, a, before_delete)) for a in writes]
        for action, future in futures:
            try:
                submitted.append((action, future.result()))
            except Exception as exc:
                if getattr(exc, "code", None) == "WriteBudgetExhausted":
                    continue  # not written, not failed: left for the next pass (fleet/writes.py)
                outcomes.append(
                    Outcome(
                        action,
                        FAILED,
                        str(describe(exc, f"{action.action} {action.kind} {action.name}", arm.endpoint)),
                    )
                )
    for outcome in outcomes:
        on_outcome(len(outcomes), len(writes), outcome)
    deadline = time.monotonic() + wait_seconds
    for action, poller in submitted:
        outcomes.append(_wait(action, poller, deadline, arm.endpoint))
        on_outcome(len(outcomes), len(writes), outcomes[-1])
    order = {id(a): i for i, a in enumerate(writes)}
    return sorted(outcomes, key=lambda o: order[id(o.action)])


@_spans("synoscd.lro")
def _wait(action: Action, poller: Any, deadline: float, endpoint: str) -> Outcome:
    try:
        poller.wait(timeout=max(0.0, deadline - time.monotonic()))
        if not poller.done():
            return Outcome(action, PROGRESSING)
        result = poller.result()
    except Exception as exc:
        return Outcome(
            action, FAILED, str(describe(exc, f"{action.action} {action.kind} {action.name}", endpoint))
        )
    body = result.as_dict() if hasattr(result, "as_dict") else None
    return Outcome(action, OK, body=body)
