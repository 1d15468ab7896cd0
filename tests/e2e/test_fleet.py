"""A fleet end to end on the local stack: the Functions app on the local host with two queue-worker
processes against Azurite's queue, the GitHub stand-in's repository declaring three targets
(`targets/*.yaml`) in two subscriptions of the ARM stand-in.

- the timer queues one message per due target; a target that fails (its environment does not exist
  yet) fails alone — its message is retried and poisoned — while the other two converge;
- a push touching one target's folder runs that target's pass and no other;
- a worker killed (SIGKILL) in the middle of a pass: its message comes back, another worker takes
  over the dead pass's lease once it expires, and the target converges with one write per app.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from synoscd.fleet.targets import table_name
from synoscd.state import history, lease
from synoscd.state import table as t
from tests.conftest import TARGET_MANIFEST, LaunchedStack, pid_alive
from tests.e2e.conftest import Host

pytestmark = pytest.mark.e2e

OWNER = "synoscd-fleet"
SUB_B = "00000000-0000-0000-0000-0000000000fb"
APP = """apiVersion: synoscd.io/v1alpha1
kind: App
metadata:
  name: {name}
  annotations:
    synoscd.io/sync-wave: "{wave}"
spec:
  containers:
    - name: web
      image: nginx:{tag}
      cpu: 0.25
      memory: 0.5Gi
"""


class FleetRepo:
    def __init__(self, stack: LaunchedStack, host_factory: Callable[..., Host]) -> None:
        self.stack = stack
        self.sub_a = stack.env["SYNOSCD_AZURE_SUBSCRIPTION_ID"]
        self.subs = {"alpha": self.sub_a, "bravo": self.sub_a, "charlie": SUB_B}
        files = {f"targets/{n}.yaml": TARGET_MANIFEST.format(name=n, sub=s) for n, s in self.subs.items()}
        for n in self.subs:
            files.update(
                {
                    f"envs/{n}/app{i}.yaml": APP.format(name=f"{n}-app{i}", tag="1", wave=i // 2)
                    for i in range(4)
                }
            )
        self.repo = f"fleet-{uuid.uuid4().hex[:8]}"
        stack.admin("github", "POST", "repos", {"owner": OWNER, "name": self.repo, "files": files})
        for n in ("alpha", "bravo"):  # env-charlie is made later: target charlie fails until then
            self.environment(n)
        stack.admin(
            "arm", "POST", "environments", {"name": "other", "resourceGroup": "rg-x", "subscription": SUB_B}
        )
        self.host = host_factory(
            workers=2,
            SYNOSCD_GITHUB_REPO_OWNER=OWNER,
            SYNOSCD_GITHUB_REPO_NAME=self.repo,
            SYNOSCD_AZURE_SUBSCRIPTION_ID="",  # no default target: the fleet is the three declared
            SYNOSCD_AZURE_RESOURCE_GROUP="",
            SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT="",
            SYNOSCD_TIMER_SCHEDULE="*/2 * * * * *",
            SYNOSCD_RECONCILE_INTERVAL_SECONDS=3600,
            SYNOSCD_LEASE_SECONDS=6,
            SYNOSCD_MAX_CONCURRENT=2,
            FUNCTIONS_HOST_MESSAGE_LEASE=6,
        )
        store = self.host.env["SYNOSCD_STATE_STORE"]
        base = self.host.env["SYNOSCD_STATE_TABLE"]
        self.tables = {n: t.open_table(store, table_name=table_name(base, n)) for n in self.subs}

    def environment(self, name: str) -> None:
        spec = {"name": f"env-{name}", "resourceGroup": f"rg-{name}", "subscription": self.subs[name]}
        self.stack.admin("arm", "POST", "environments", spec)

    def passes(self, name: str) -> list[history.PassRecord]:
        return history.list_passes(self.tables[name], limit=100)

    def commit(self, files: dict[str, str]) -> str:
        return self.stack.admin("github", "POST", f"repos/{OWNER}/{self.repo}/commits", {"files": files})[
            "sha"
        ]

    def deliver(self) -> dict[str, Any]:
        spec = {
            "url": f"{self.host.url}/api/github/webhook",
            "secret": self.stack.env["SYNOSCD_GITHUB_WEBHOOK_SECRET"],
            "event": "push",
            "owner": OWNER,
            "name": self.repo,
            "delivery_id": uuid.uuid4().hex,
        }
        answer = self.stack.admin("github", "POST", "webhooks/deliver", spec)
        assert answer["status"] == 202, answer
        return answer

    def images(self, name: str) -> dict[str, str]:
        out = {}
        for r in self.stack.admin("arm", "GET", "state")["resources"]:
            if r["resourceGroup"] == f"rg-{name}" and r["kind"] == "containerApps":
                out[r["name"]] = r["body"]["properties"]["template"]["containers"][0]["image"]
        return out

    def patches(self, name: str, by: set[str] | None = None) -> list[str]:
        """Apps of target NAME written (PUT or PATCH), by the passes `by` names when given (each write
        names its pass in the x-synoscd-pass header, which the stand-in logs)."""
        return [
            c["path"].rsplit("/", 1)[-1]
            for c in self.stack.calls("arm")
            if c["method"] in ("PUT", "PATCH")
            and f"/resourceGroups/rg-{name}/" in c["path"]
            and (by is None or c.get("pass") in by)
        ]


def wait(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def fleet(fresh_stack: LaunchedStack, host_factory: Callable[..., Host]) -> FleetRepo:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.2})
    return FleetRepo(fresh_stack, host_factory)


def test_a_fleet_of_three_targets_in_two_subscriptions(fleet: FleetRepo) -> None:
    # The timer queues all three; a and b converge while c (no environment yet) fails on its own.
    for n in ("alpha", "bravo"):
        wait(
            f"target {n} converged",
            lambda n=n: fleet.images(n) == {f"{n}-app{i}": "nginx:1" for i in range(4)},
        )
        wait(f"target {n}'s pass recorded", lambda n=n: [p.outcome for p in fleet.passes(n)] == ["succeeded"])
    failed = wait(
        "target charlie failed", lambda: [p for p in fleet.passes("charlie") if p.outcome == "failed"]
    )
    # Its resource group and environment do not exist yet: the error names where it looked.
    assert "rg-charlie" in failed[0].errors[0] or "env-charlie" in failed[0].errors[0], failed[0].errors
    assert fleet.images("charlie") == {}
    assert [p.trigger for p in fleet.passes("alpha")] == ["timer"]

    # A push touching bravo's folder runs bravo's pass only.
    fleet.environment("charlie")
    fleet.stack.admin("arm", "DELETE", "calls")
    before = {n: len(fleet.passes(n)) for n in fleet.subs}
    fleet.commit({"envs/bravo/app0.yaml": APP.format(name="bravo-app0", tag="2", wave=0)})
    fleet.deliver()
    wait("bravo's webhook pass", lambda: any(p.trigger == "webhook" for p in fleet.passes("bravo")))
    time.sleep(3.0)  # longer than the queue's polling interval: any other message would have run by now
    # The push ran no other target: their passes since are the timer's alone (a loaded machine can
    # bring a tick, and charlie's failed pass falls due again), never the push's.
    for n in ("alpha", "charlie"):
        since = fleet.passes(n)[: len(fleet.passes(n)) - before[n]]
        assert all(p.trigger != "webhook" for p in since), (n, [p.trigger for p in since])
    pushed = {p.id for n in fleet.subs for p in fleet.passes(n) if p.trigger == "webhook"}
    assert (
        fleet.patches("bravo", by=pushed) == ["bravo-app0"]
        and fleet.patches("alpha", by=pushed) == []
        and fleet.patches("charlie", by=pushed) == []
    )
    assert fleet.patches("alpha") == [], "alpha had converged: no pass of any trigger writes it"
    assert fleet.images("bravo")["bravo-app0"] == "nginx:2"

    # charlie's folder: c runs, now that its environment exists, in its own subscription.
    fleet.commit(
        {"envs/charlie/app0.yaml": APP.format(name="charlie-app0", tag="1", wave=0) + "  # touched\n"}
    )
    fleet.deliver()
    wait(
        "target charlie converged",
        lambda: fleet.images("charlie") == {f"charlie-app{i}": "nginx:1" for i in range(4)},
    )
    placed = {r["subscription"].lower() for r in fleet.stack.admin("arm", "GET", "state")["resources"]}
    assert placed == {fleet.sub_a.lower(), SUB_B}

    # Kill the worker running alpha's pass, in the middle of it (wave 0 written, its 2 s operations
    # running, wave 1 not yet): the message comes back, the next worker takes over once the dead
    # pass's lease ran out, and every app is written exactly once.
    fleet.stack.admin("arm", "PUT", "config", {"provisioningDelay": 2.0})
    fleet.stack.admin("arm", "DELETE", "calls")
    fleet.commit(
        {f"envs/alpha/app{i}.yaml": APP.format(name=f"alpha-app{i}", tag="3", wave=i // 2) for i in range(4)}
    )
    fleet.deliver()
    held = wait("alpha's pass holds its lease", lambda: lease.view(fleet.tables["alpha"]).holder, timeout=30)
    assert held
    wait("alpha's first write", lambda: fleet.patches("alpha"), timeout=30)
    instance = lease.view(fleet.tables["alpha"]).instance or ""
    pid = int(instance.rsplit(":", 1)[1])
    assert pid != os.getpid() and pid_alive(pid)
    os.kill(pid, signal.SIGKILL)
    assert set(fleet.patches("alpha")) == {"alpha-app0", "alpha-app1"}, "killed mid-pass: wave 0 only"
    wait(
        "a converged after the kill",
        lambda: fleet.images("alpha") == {f"alpha-app{i}": "nginx:3" for i in range(4)},
        timeout=90,
    )
    writes = fleet.patches("alpha")
    assert sorted(writes) == [f"alpha-app{i}" for i in range(4)], (
        f"one write per app, no double write: {writes}"
    )
    retried = wait(
        "the retried pass recorded",
        lambda: [p for p in fleet.passes("alpha") if p.trigger == "webhook" and p.outcome != "failed"],
    )
    assert retried[0].outcome == "succeeded", retried[0].errors
    outcomes = [(p.trigger, p.outcome) for p in fleet.passes("alpha")]
    assert outcomes == [("webhook", "succeeded"), ("webhook", "failed"), ("timer", "succeeded")], (
        "the killed pass is recorded failed by the one that took over"
    )
    assert sorted(fleet.patches("alpha")) == [f"alpha-app{i}" for i in range(4)]
    assert not pid_alive(pid)
