"""A fleet's targets against Azurite and the ARM stand-in (two subscriptions), the real SDKs and
`run_pass` unpatched:

- the default target is today's deployment: its state table and keys are the ones single-environment
  SynosCD wrote, so every existing row is read as it is, and its live resources (no target tag) are
  not rewritten;
- each other target keeps to its own environment (in its own subscription) and its own table: lease,
  runtime settings, flags, statuses, history and tombstones of one are invisible to another;
- one target failing leaves the others' passes and records untouched.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synoscd.engine.reconcile import run_pass
from synoscd.engine.runtime import Runtime
from synoscd.fleet.targets import table_name
from synoscd.state import apps, history, lease, operation, runtime
from tests.conftest import LaunchedStack
from tests.integration.test_reconcile import Ops, manifest

pytestmark = pytest.mark.integration

SUB_B = "00000000-0000-0000-0000-0000000000bb"


class Fleet(Ops):
    """The default target (folder apps/ of the stack's environment) and target `blue` (folder
    blue/ of environment env-blue in rg-blue of a second subscription)."""

    def __init__(self, stack: LaunchedStack, root: Path, **blue: Any) -> None:
        (root / "blue").mkdir(parents=True, exist_ok=True)
        self.blue_spec = {
            "name": "blue",
            "subscriptionId": SUB_B,
            "resourceGroup": "rg-blue",
            "environment": "env-blue",
            "path": "blue",
            **blue,
        }
        super().__init__(stack, root)
        env = {"name": "env-blue", "resourceGroup": "rg-blue", "subscription": SUB_B}
        stack.admin("arm", "POST", "environments", env)

    def runtime(self, **overrides: Any) -> Runtime:
        overrides.setdefault("targets", json.dumps([self.blue_spec]))
        overrides.setdefault("targets_path", "")
        return super().runtime(**overrides)

    @property
    def blue(self) -> Runtime:
        return self.rt.for_target("blue")

    def write_blue(self, name: str, text: str) -> None:
        (self.root / "blue" / f"{name}.yaml").write_text(text)

    def resources(self) -> list[dict[str, Any]]:
        return self.arm("GET", "state")["resources"]


@pytest.fixture
def fleet(fresh_stack: LaunchedStack, tmp_path: Path) -> Iterator[Fleet]:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.05})
    f = Fleet(fresh_stack, tmp_path / "ops")
    yield f
    for rt in (f.rt, f.blue):
        rt.table.delete_table()


def test_the_default_target_reads_every_row_a_single_environment_deployment_wrote(fleet: Fleet) -> None:
    # What SynosCD wrote before fleets existed, through the same state modules, in the same table.
    before = fleet.runtime(targets="")
    runtime.save(before.table, {"interval_seconds": 42, "prune_enabled": True}, who="ops")
    apps.set_suspended(before.table, "Legacy", True, "ops", "frozen")
    history.record_pass(before.table, history.PassRecord(id="old-pass", trigger="timer", started_at=1000.0))
    history.put_tombstone(before.table, "App", "gone", {"name": "gone"}, "old-pass")
    lease.request(before.table, "cli")
    fleet.write("web", manifest("web"))
    first = run_pass("cli", rt=before, wait_seconds=10)
    assert first.outcome == "succeeded"

    # The same deployment with a fleet declared: the default target is that deployment.
    rt = fleet.rt
    assert rt.for_target(None) is rt and rt.for_target("default") is rt and rt.target_name == "default"
    assert rt.settings.state_table == fleet.table_name, "the default target keeps its table"
    loaded = runtime.load(rt.table, rt.settings)
    assert (loaded.interval_seconds, loaded.prune_enabled) == (42, True)
    assert apps.get_flags(rt.table)["legacy"].suspended
    assert [p.id for p in history.list_passes(rt.table)] == [first.id, "old-pass"]
    assert history.latest_tombstone(rt.table, "gone") is not None
    assert apps.get_status(rt.table, "App", "web") is not None
    assert operation.load(rt.table) is not None
    # ... and its live app, written without a target tag, is still its own: no write at all.
    fleet.stack.admin("arm", "DELETE", "calls")
    again = fleet.sync()
    assert again.outcome == "succeeded" and fleet.writes() == []
    assert "synoscd-target" not in (fleet.live("web") or {})["body"]["tags"]

    # Target blue sees none of it: another table, nothing read across.
    blue = fleet.blue
    assert blue.settings.state_table == table_name(fleet.table_name, "blue") != fleet.table_name
    assert runtime.load(blue.table, blue.settings).overridden == ()
    assert apps.get_flags(blue.table) == {} and apps.get_statuses(blue.table) == {}
    assert history.list_passes(blue.table) == [] and history.latest_tombstone(blue.table, "gone") is None
    assert lease.read(blue.table) == (None, 0) and operation.load(blue.table) is None


def test_each_target_keeps_to_its_environment_its_subscription_and_its_table(fleet: Fleet) -> None:
    fleet.write("web", manifest("web"))
    fleet.write_blue("api", manifest("api", "nginx:2"))
    fleet.write_blue("web", manifest("web", "nginx:3"))  # the same name in another environment
    runtime.save(fleet.blue.table, {"prune_enabled": True}, who="ops")
    blue = run_pass("cli", rt=fleet.blue, wait_seconds=10)
    default = fleet.sync()
    assert (blue.outcome, default.outcome) == ("succeeded", "succeeded")
    placed = {(r["subscription"].lower(), r["resourceGroup"], r["name"]): r for r in fleet.resources()}
    sub_a = fleet.stack.env["SYNOSCD_AZURE_SUBSCRIPTION_ID"].lower()
    rg_a = fleet.stack.env["SYNOSCD_AZURE_RESOURCE_GROUP"]
    assert set(placed) == {(sub_a, rg_a, "web"), (SUB_B, "rg-blue", "api"), (SUB_B, "rg-blue", "web")}
    assert placed[(SUB_B, "rg-blue", "web")]["body"]["tags"]["synoscd-target"] == "blue"
    assert "synoscd-target" not in placed[(sub_a, rg_a, "web")]["body"]["tags"]
    assert set(apps.get_statuses(fleet.blue.table)) == {"App.api", "App.web"}
    assert set(apps.get_statuses(fleet.rt.table)) == {"App.web"}
    assert [p.id for p in history.list_passes(fleet.blue.table)] == [blue.id]
    assert [p.id for p in history.list_passes(fleet.rt.table)] == [default.id]

    # Blue prunes what left its folder, and only that: the default target's app of the same name stays.
    (fleet.root / "blue" / "web.yaml").unlink()
    pruned = run_pass("cli", rt=fleet.blue, wait_seconds=10)
    assert [(a.action, a.name) for a in pruned.plan.writes] == [("delete", "web")]  # type: ignore[union-attr]
    names = {(r["subscription"].lower(), r["name"]) for r in fleet.resources()}
    assert names == {(sub_a, "web"), (SUB_B, "api")}
    assert history.latest_tombstone(fleet.blue.table, "web") is not None
    assert history.latest_tombstone(fleet.rt.table, "web") is None
    assert lease.read(fleet.rt.table)[0] is None and lease.read(fleet.blue.table)[0] is None


def test_one_target_failing_leaves_the_others_alone(fresh_stack: LaunchedStack, tmp_path: Path) -> None:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.05})
    fleet = Fleet(fresh_stack, tmp_path / "ops", environment="env-missing")
    try:
        fleet.write("web", manifest("web"))
        fleet.write_blue("api", manifest("api"))
        with pytest.raises(Exception, match="env-missing"):
            run_pass("cli", rt=fleet.blue, wait_seconds=5)
        ok = fleet.sync()
        assert ok.outcome == "succeeded" and fleet.live("web") is not None
        assert [p.outcome for p in history.list_passes(fleet.blue.table)] == ["failed"]
        assert [p.outcome for p in history.list_passes(fleet.rt.table)] == ["succeeded"]
        assert lease.read(fleet.rt.table)[0] is None, "the failed target's lease is its own"
    finally:
        fleet.rt.table.delete_table()
        fleet.blue.table.delete_table()


def test_an_unknown_target_is_named_with_the_declared_ones(fleet: Fleet) -> None:
    from synoscd.engine.runtime import UnknownTarget

    with pytest.raises(UnknownTarget, match=r"'green' is not declared \(targets: default, blue\)"):
        fleet.rt.for_target("green")


# -- the ARM write budget, shared per subscription -----------------------------------------------------


def test_two_instances_share_one_subscriptions_write_budget_fairly(fleet: Fleet) -> None:
    from synoscd.fleet.writes import WriteBudget

    table = fleet.rt.budget_table
    rate, burst = 20.0, 10
    # Two instances (two processes in Azure): each its own WriteBudget on the same row.
    one, two = (WriteBudget(lambda: table, SUB_B, rate, burst) for _ in range(2))
    taken: dict[str, list[float]] = {"one": [], "two": []}

    def writer(name: str, budget: WriteBudget, n: int) -> None:
        for _ in range(n):
            budget.take()
            taken[name].append(time.monotonic())

    started = time.monotonic()
    threads = [
        threading.Thread(target=writer, args=(name, budget, 25))
        for name, budget in (("one", one), ("two", two))
        for _ in range(2)
    ]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - started
    assert len(taken["one"]) == len(taken["two"]) == 50
    # 100 writes from a bucket of 10 refilled at 20/s, whoever asked: the last draw (of at most 16 at
    # once, by either instance) came no sooner than (100 - 10 - 2 x 16) / 20 s.
    assert elapsed >= (100 - burst - 2 * 16) / rate, elapsed
    # Both instances wrote all along: neither waited for the other to finish.
    assert min(taken["two"]) < max(taken["one"]) and min(taken["one"]) < max(taken["two"])
    other = WriteBudget(lambda: table, fleet.stack.env["SYNOSCD_AZURE_SUBSCRIPTION_ID"], rate, burst)
    quick = time.monotonic()
    for _ in range(burst):
        other.take()
    assert time.monotonic() - quick < 2.0, "another subscription's budget is its own"


def test_a_write_arm_throttles_closes_the_budget_for_every_instance(fleet: Fleet) -> None:
    from synoscd.fleet.writes import PK, WriteBudget
    from synoscd.state import table as t

    fleet.write("web", manifest("web"))
    assert fleet.sync().outcome == "succeeded"
    fleet.write("web", manifest("web", "nginx:9"))
    # ARM answers the PATCH 429 (Retry-After 2 s) once; the SDK's retry then succeeds.
    fleet.arm(
        "POST",
        "faults",
        {"method": "PATCH", "path": "/containerApps/web$", "count": 1, "status": 429, "retryAfter": 2},
    )
    sub = fleet.stack.env["SYNOSCD_AZURE_SUBSCRIPTION_ID"].lower()
    before_pass = time.time()
    result = fleet.sync()
    assert (
        result.outcome == "succeeded"
        and fleet.live("web")["body"]["properties"]["template"]["containers"][0]["image"] == "nginx:9"
    )  # type: ignore[index]
    row = t.get(fleet.rt.budget_table, PK, sub)
    assert row is not None and row["closed_until"] >= before_pass + 1.5, (
        "the 429 closed the subscription's bucket"
    )
    # Another instance asking for a write right after waits out what is left of the Retry-After.
    closed_until = float(row["closed_until"])
    t.update(
        fleet.rt.budget_table,
        PK,
        sub,
        lambda r: {**(r or {}), "closed_until": time.time() + 1.5, "tokens": 0.0},
    )
    other = WriteBudget(lambda: fleet.rt.budget_table, sub, 10.0, 10)
    before = time.monotonic()
    other.take()
    assert time.monotonic() - before >= 1.3 and closed_until >= before_pass + 1.5


def test_writes_the_budget_cannot_allow_in_time_are_left_for_the_next_pass_not_failed(fleet: Fleet) -> None:
    from synoscd.fleet.writes import PK
    from synoscd.state import table as t

    # Two writes at once, then one every 50 s: a pass allowed ~31 s (wait 1 s + overhead) sends two.
    fleet.rt = fleet.runtime(arm_write_rate=0.02, arm_write_burst=2)
    for name in ("a1", "a2", "a3"):
        fleet.write(name, manifest(name))
    first = fleet.sync(wait_seconds=1.0)
    assert first.outcome == "partial", first.outcome
    # The three writes run concurrently: which two take the tokens is up to the scheduler.
    written = {w.split()[1] for w in fleet.writes() if w.startswith("PUT")}
    assert len(written) == 2 and written < {"a1", "a2", "a3"}, written
    (deferred,) = {"a1", "a2", "a3"} - written
    assert fleet.live(deferred) is None
    assert not any(o.result == "failed" for o in first.outcomes), "deferred, not failed"
    assert fleet.rt.write_budget(fleet.stack.env["SYNOSCD_AZURE_SUBSCRIPTION_ID"]).deferred == 1
    left = apps.get_status(fleet.rt.table, "App", deferred)
    assert left is None or left.last_result != "failed", "no backoff for a write that was never sent"
    # The bucket refills (here: at once); the next pass writes what was left, and only that.
    sub = fleet.stack.env["SYNOSCD_AZURE_SUBSCRIPTION_ID"].lower()
    t.update(fleet.rt.budget_table, PK, sub, lambda r: {**(r or {}), "tokens": 2.0})
    fleet.stack.admin("arm", "DELETE", "calls")
    assert fleet.sync(wait_seconds=5.0).outcome == "succeeded"
    assert [w for w in fleet.writes() if w.startswith("PUT")] == [f"PUT {deferred}"]
