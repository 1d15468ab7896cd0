"""What a pass records about each resource (synoscd/engine/record.py): the memory the next plan reads."""

from __future__ import annotations

from typing import Any

from synoscd.engine import record
from synoscd.engine.execute import Outcome
from synoscd.engine.plan import Action, Backoff, Plan
from synoscd.state.apps import AppStatus

NOW = 1_000.0


def _record(action: Action, result: str, previous: AppStatus | None = None) -> AppStatus:
    plan = Plan("rev-2", (action,), False, None)
    prior = {record.status_key(action.kind, action.name): previous} if previous else {}
    (status,) = record.statuses(
        plan,
        [Outcome(action, result)],
        prior,
        "rev-2",
        "pass-1",
        NOW,
        revision_reader=lambda _app, _rev: None,
        backoff=Backoff(duration=60.0),
    )
    return status


def _heal() -> Action:
    body: dict[str, Any] = {"properties": {"template": {"containers": [{"image": "nginx:1"}]}}}
    return Action("App", "web", "heal", "unhealthy", body=body)


def test_a_heal_still_running_at_the_end_of_the_pass_backs_off() -> None:
    # A crashing image's re-apply often outlives the pass: without a backoff it was re-applied on
    # every pass, never waiting (the heal proves nothing until the app is healthy).
    status = _record(_heal(), "progressing", AppStatus("web", sync_state="Synced", health="Degraded"))
    assert status.attempts == 1 and status.next_retry_at == NOW + 60.0


def test_the_backoff_doubles_on_each_heal_that_does_not_prove_health() -> None:
    before = AppStatus("web", sync_state="Synced", health="Degraded", attempts=2, next_retry_at=NOW - 1)
    status = _record(_heal(), "progressing", before)
    assert status.attempts == 3 and status.next_retry_at == NOW + 240.0


def test_a_create_still_running_does_not_back_off() -> None:
    # A first write that is simply slow is checked by the next pass, not delayed.
    status = _record(Action("App", "web", "create", "missing", body={}), "progressing")
    assert status.attempts == 0 and status.next_retry_at is None
