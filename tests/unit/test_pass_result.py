"""A partial pass says why in its history row, even when no error does."""

from __future__ import annotations

from synoscd.engine.execute import Outcome
from synoscd.engine.plan import Action, Plan
from synoscd.engine.reconcile import PassResult, _record_errors


def _result(*actions: Action, outcomes: tuple[Outcome, ...] = ()) -> PassResult:
    result = PassResult(id="p1", trigger="timer", dry_run=False)
    result.plan = Plan(revision="r1", actions=actions, prune_enabled=False, prune_blocked=None)
    result.outcomes = list(outcomes)
    return result


def test_a_pass_that_skipped_apps_is_partial_and_its_record_names_them_by_reason() -> None:
    result = _result(
        Action("App", "web", "skip", "backoff"),
        Action("App", "api", "skip", "backoff"),
        Action("Job", "etl", "skip", "rollout-pending"),
        Action("App", "ok", "noop", "in-sync"),
    )
    assert result.outcome == "partial"
    assert _record_errors(result) == [
        "skipped (backoff): App web, App api",
        "skipped (rollout-pending): Job etl",
    ]


def test_still_progressing_and_work_not_run_are_said_too() -> None:
    slow = Action("App", "slow", "update", "drift")
    later = Action("App", "later", "create", "missing", wave=2)
    result = _result(slow, later, outcomes=(Outcome(slow, "progressing"),))
    assert result.outcome == "partial"
    assert _record_errors(result) == ["still progressing: App slow", "not run yet (a later wave): App later"]


def test_a_long_list_is_cut_with_a_count_and_errors_come_first() -> None:
    result = _result(*(Action("App", f"a{i}", "skip", "backoff") for i in range(13)))
    (line,) = _record_errors(result)
    assert line.endswith("App a9 and 3 more") and line.count("App ") == 10
    result.errors.append({"message": "apps/x.yaml:3:spec: bad"})
    assert _record_errors(result) == ["apps/x.yaml:3:spec: bad"]


def test_a_succeeded_pass_records_no_errors() -> None:
    done = Action("App", "web", "update", "drift")
    result = _result(done, Action("App", "ok", "noop", "in-sync"), outcomes=(Outcome(done, "ok"),))
    assert result.outcome == "succeeded" and _record_errors(result) == []
