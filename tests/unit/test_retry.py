"""Failures isolated and retried, the pure parts: the backoff, which operation a pass works on, and
what a plan holds back while a failed sync waits for its retry (everything else is healed)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synoscd.engine.operation import failure_note, select
from synoscd.engine.plan import Backoff, PlanInput, plan, resource_key
from synoscd.state.operation import Operation
from tests.unit.test_plan import NOW, OURS, desired, live_of
from tests.unit.test_waves import item

# -- backoff ---------------------------------------------------------------------------------------------


@given(
    duration=st.floats(0.001, 3600),
    factor=st.floats(1, 10),
    cap=st.floats(0.001, 86400),
    attempts=st.integers(1, 10_000),
)
def test_backoff_grows_from_duration_by_factor_and_never_passes_the_cap(
    duration: float, factor: float, cap: float, attempts: int
) -> None:
    backoff = Backoff(duration, factor, cap)
    wait = backoff.seconds(attempts)
    assert math.isfinite(wait) and 0 < wait <= cap
    assert backoff.seconds(1) == min(duration, cap)
    assert backoff.seconds(attempts + 1) >= wait


def test_the_default_backoff_is_one_two_four_minutes_up_to_an_hour() -> None:
    assert [Backoff().seconds(n) for n in (1, 2, 3, 7, 8, 500)] == [60, 120, 240, 3600, 3600, 3600]


# -- which operation a pass works on ---------------------------------------------------------------------


def failed(next_retry_at: float | None, **kw: object) -> Operation:
    return Operation(
        revision="rev1",
        status="Failed",
        message="Sync wave 0 failed: quota exceeded",
        attempts=2,
        retry_limit=5,
        next_retry_at=next_retry_at,
        done={"PreSync/Job/migrate"},
        executions={"PreSync/Job/migrate": "exec-1", "PreSync/Job/seed": "exec-2", "SyncFail/Job/page": "x"},
        pending={"App/web"},
        **kw,  # type: ignore[arg-type]
    )


def test_a_due_retry_runs_the_failed_sync_again_keeping_what_succeeded() -> None:
    op = select(failed(NOW - 1), "rev1", "timer", NOW)
    assert (op.status, op.attempts, op.pending, op.done) == (
        "Running",
        2,
        {"App/web"},
        {"PreSync/Job/migrate"},
    )
    assert op.executions == {"PreSync/Job/migrate": "exec-1"}, "failed and SyncFail hooks start afresh"
    assert op.message == "retry 2/5" and op.next_retry_at is None


@pytest.mark.parametrize("trigger", ["timer", "webhook", "coalesced"])
def test_a_retry_not_yet_due_or_exhausted_leaves_the_failed_sync_as_it_is(trigger: str) -> None:
    waiting = failed(NOW + 30)
    assert select(waiting, "rev1", trigger, NOW) is waiting
    exhausted = failed(None)
    assert select(exhausted, "rev1", trigger, NOW) is exhausted and exhausted.exhausted


def test_a_manual_sync_or_a_new_revision_starts_a_new_operation() -> None:
    for op in (select(failed(NOW + 30), "rev1", "cli", NOW), select(failed(None), "rev2", "timer", NOW)):
        assert (op.status, op.attempts, op.pending, op.done) == ("Running", 0, set(), set())


def test_the_failure_note_says_which_retry_comes_when_or_that_none_is_left() -> None:
    assert failure_note(failed(0.0)) == (
        "the sync of rev1 failed (Sync wave 0 failed: quota exceeded); retry 2/5 at 1970-01-01T00:00:00Z"
    )
    assert "retries exhausted: push a new commit, or run `synos sync`" in failure_note(failed(None))


# -- what a plan holds back while a failed sync waits ---------------------------------------------------


def test_only_what_the_failed_sync_has_still_to_write_waits_and_no_hook_runs() -> None:
    pending_new = desired("new")  # never written by the failed sync
    synced = desired("synced", image="nginx:2")  # written by the sync, then changed out of band
    steady = desired("steady")
    hook = item("migrate", kind="Job", **{"synoscd.io/hook": "PreSync"})
    inp = PlanInput(
        **OURS,
        desired=(pending_new, synced, steady, hook),
        complete=True,
        live={x.key: x for x in (live_of(desired("synced", image="evil:6")), live_of(steady))},
        now=NOW,
        sync_failed="the sync of rev1 failed (...); retry 1/5 at ...",
        held=frozenset({resource_key("App", "new"), resource_key("App", "steady")}),
    )
    got = {a.name: (a.action, a.reason, a.message) for a in plan(inp, "rev1").actions}
    assert got["new"] == ("skip", "sync-failed", inp.sync_failed)
    assert got["synced"][:2] == ("update", "drift"), "healed toward the revision"
    assert got["steady"][:2] == ("noop", "in-sync"), "nothing to write: nothing to hold"
    assert got["migrate"][:2] == ("skip", "sync-failed"), "hooks run only in a running sync"


def test_without_a_failed_sync_nothing_is_held() -> None:
    inp = PlanInput(
        desired=(desired("new"),),
        complete=True,
        live={},
        now=NOW,
        held=frozenset({resource_key("App", "new")}),
    )
    assert [(a.action, a.reason) for a in plan(inp, "rev1").actions] == [("create", "missing")]
