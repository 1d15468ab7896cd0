"""What a no-change timer tick of a fleet costs (issue 19): the timer and the passes it queues, for 6
targets in two subscriptions, counted at the stand-ins and at a proxy in front of Azurite's tables:
one conditional GitHub request for the whole fleet, and per target only its ARM list pages and its
table requests — the same for every target, and no write to ARM. bench/fleet_bench.py measures the same
for 20 targets x 200 apps (bench/RESULTS.md)."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from emulators.storage_proxy import proxy_in_front
from synoscd.engine.runtime import Runtime, get_runtime, reset_runtime
from synoscd.fleet.targets import table_name
from synoscd.functions import handlers
from synoscd.state import lease
from tests.conftest import TARGET_MANIFEST, LaunchedStack
from tests.integration.test_reconcile import manifest
from tests.integration.test_webhook_queue import settings

pytestmark = pytest.mark.integration

OWNER = "synoscd-tick"
SUB_B = "00000000-0000-0000-0000-0000000000cc"
TARGETS = [f"t{i}" for i in range(6)]


class Tick:
    def __init__(self, stack: LaunchedStack) -> None:
        self.stack = stack
        sub_a = stack.env["SYNOSCD_AZURE_SUBSCRIPTION_ID"]
        self.subs = {n: (sub_a if i % 2 else SUB_B) for i, n in enumerate(TARGETS)}
        files = {f"targets/{n}.yaml": TARGET_MANIFEST.format(name=n, sub=s) for n, s in self.subs.items()}
        for n in TARGETS:
            files.update({f"envs/{n}/{n}-a{i}.yaml": manifest(f"{n}-a{i}") for i in range(3)})
            env = {"name": f"env-{n}", "resourceGroup": f"rg-{n}", "subscription": self.subs[n]}
            stack.admin("arm", "POST", "environments", env)
        repo = f"tick-{uuid.uuid4().hex[:8]}"
        stack.admin("github", "POST", "repos", {"owner": OWNER, "name": repo, "files": files})
        store = stack.env["SYNOSCD_STATE_STORE"]
        self.proxy, self.store = proxy_in_front(store, "Table")
        self.rt: Runtime = get_runtime(
            settings(
                stack,
                state_store=self.store,
                github_repo_owner=OWNER,
                github_repo_name=repo,
                azure_subscription_id="",  # no default target: the fleet is the six declared
                azure_resource_group="",
                azure_container_app_environment="",
            )
        )
        self.queue = QueueClient.from_connection_string(
            store, self.rt.settings.queue_name, message_decode_policy=TextBase64DecodePolicy()
        )

    def tick(self) -> list[dict[str, Any]]:
        """The timer function, then every message it queued, as the queue trigger would run them."""
        decided = handlers.on_timer()
        assert sorted(decided["queued"]) == TARGETS, decided
        ran = []
        while True:
            batch = list(self.queue.receive_messages(messages_per_page=32, max_messages=32))
            if not batch:
                return ran
            for m in batch:
                ran.append(handlers.on_queue_message(m.content, m.dequeue_count))
                self.queue.delete_message(m)

    def clear(self) -> None:
        for service in ("arm", "github"):
            self.stack.admin(service, "DELETE", "calls")
        self.proxy.emulator.calls.clear()  # type: ignore[attr-defined]

    def close(self) -> None:
        for n in TARGETS:
            self.rt.for_target(n).table.delete_table()
        self.rt.table.delete_table()
        self.proxy.stop()  # type: ignore[attr-defined]


@pytest.fixture
def fleet(fresh_stack: LaunchedStack) -> Iterator[Tick]:
    f = Tick(fresh_stack)
    yield f
    try:
        f.close()
    finally:
        reset_runtime()


def _table_of(path: str) -> str:
    parts = path.split("/")
    return re.split(r"[(?]", parts[2])[0].lower() if len(parts) > 2 else ""


def test_a_no_change_tick_costs_one_github_request_and_per_target_list_pages_and_table_reads(
    fleet: Tick,
) -> None:
    first = fleet.tick()  # creates every target's apps
    assert {r.get("outcome") for r in first} == {"succeeded"}, first
    for round_ in range(2):  # then a no-change tick, caches written; the third is measured
        for n in TARGETS:  # due now (as `synos reconcile --target NAME` makes it), not in 10 s
            lease.request(fleet.rt.for_target(n).table, "cli")
        if round_ == 1:
            fleet.clear()
        ran = fleet.tick()
        assert sorted(r["target"] for r in ran) == TARGETS and {r["outcome"] for r in ran} == {"succeeded"}
    github = fleet.stack.calls("github")
    arm = fleet.stack.calls("arm")
    table = fleet.proxy.emulator.calls  # type: ignore[attr-defined]
    assert [(c["method"], c["status"]) for c in github] == [("GET", 304)], (
        "one conditional request for the whole fleet: the branch head, unchanged"
    )
    assert all(c["method"] == "GET" for c in arm), "a no-change tick writes nothing"
    per_target_arm = Counter(c["path"].split("/resourceGroups/")[1].split("/")[0] for c in arm)
    listings = {c["path"].rsplit("/", 1)[-1] for c in arm}
    assert listings == {"containerApps", "jobs"}, "only the listings: no environment or app GET"
    assert per_target_arm == {f"rg-{n}": 2 for n in TARGETS}, "one App page and one Job page each"
    base = fleet.rt.settings.state_table.lower()
    per_target = {n: Counter() for n in TARGETS}
    deployment: Counter[str] = Counter()
    names = {table_name(base, n).lower(): n for n in TARGETS}
    for c in table:
        kind = "reads" if c["method"] == "GET" else "writes"
        name = _table_of(c["path"])
        if name in names:
            per_target[names[name]][kind] += 1
        else:
            assert name == base, f"a request to table {name}"
            deployment[kind] += 1
    reads = {p["reads"] for p in per_target.values()}
    assert len(reads) == 1, f"every target reads its table alike: {per_target}"
    shared = sum(deployment.values())
    # Recorded in bench/RESULTS.md; a bound so that a new read per pass is noticed.
    assert reads.pop() <= 16 and shared <= 4 + 2 * len(TARGETS), (per_target, deployment)
    print(f"per target: {per_target[TARGETS[0]]}; deployment's table: {deployment}")
