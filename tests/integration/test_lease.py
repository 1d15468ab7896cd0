"""A lease that holds (issue 12, item 5), against Azurite, the ARM and GitHub stand-ins and a storage
proxy that can be cut: the holder renews its lease while it works and stops writing once it no longer
holds it; every wait is bounded by the pass's budget; a pass that fails anywhere leaves a history row,
and a pass that dies leaves only a short lease behind."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.storage_proxy import StorageProxy, proxy_in_front
from synoscd.engine.reconcile import PassResult, run_pass
from synoscd.state import history, lease
from synoscd.state import table as t
from tests.conftest import REPO_ROOT, LaunchedStack
from tests.integration.test_reconcile import Ops, manifest

pytestmark = pytest.mark.integration


@pytest.fixture
def ops(fresh_stack: LaunchedStack, tmp_path: Path) -> Iterator[Ops]:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.05})
    o = Ops(fresh_stack, tmp_path / "ops")
    yield o
    o.rt.table.delete_table()


def puts(ops: Ops, name: str) -> list[dict[str, Any]]:
    return [
        c
        for c in ops.stack.calls("arm")
        if c["method"] == "PUT" and c["path"].endswith(f"/containerApps/{name}")
    ]


def overlapping(calls: list[dict[str, Any]]) -> bool:
    spans = sorted((c["time"], c["time"] + c["ms"] / 1000) for c in calls)
    return any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans))


def in_thread(fn: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:  # the test inspects it
            out.append(exc)

    th = threading.Thread(target=run)
    th.start()
    return th, out


def with_wave(name: str, wave: int) -> str:
    return manifest(name).replace(
        f"  name: {name}\n", f"  name: {name}\n  annotations:\n    synoscd.io/sync-wave: '{wave}'\n", 1
    )


# -- the lease holds while the pass works ------------------------------------------------------------


def test_a_pass_outliving_a_short_lease_keeps_it_and_no_second_pass_puts_concurrently(ops: Ops) -> None:
    ops.write("web", manifest("web"))
    # The PUT takes 2.5 s, far beyond the 1 s lease: without renewal a second pass takes the lease.
    ops.arm("POST", "faults", {"method": "PUT", "path": "/containerApps/web$", "count": 1, "latency": 2.5})
    first, first_out = in_thread(lambda: run_pass("timer", rt=ops.runtime(lease_seconds=1), wait_seconds=10))
    time.sleep(1.5)
    second: PassResult = run_pass("cli", rt=ops.runtime(lease_seconds=1), wait_seconds=10)
    first.join()
    assert second.queued, "the first pass still held its (renewed) lease"
    web_puts = puts(ops, "web")
    assert not overlapping(web_puts), f"two passes PUT web at once: {web_puts}"
    assert len(web_puts) == 1
    assert isinstance(first_out[0], PassResult) and first_out[0].outcome == "succeeded"


def test_a_pass_whose_lease_was_taken_stops_before_its_next_write(ops: Ops) -> None:
    ops.write("first", with_wave("first", 0))
    ops.write("second", with_wave("second", 1))
    ops.arm("POST", "faults", {"method": "PUT", "path": "/containerApps/first$", "count": 1, "latency": 2.0})
    rt = ops.runtime(lease_seconds=1)
    th, out = in_thread(lambda: run_pass("timer", rt=rt, wait_seconds=10))
    time.sleep(0.5)

    def steal(row: dict[str, Any] | None) -> dict[str, Any]:
        return {**(row or {}), "holder": "thief", "expires_at": time.time() + 60, "pending": 0}

    t.update(ops.rt.table, lease.PK, lease.RK, steal)  # as if our lease had expired and another took it
    th.join()
    result = out[0]
    assert isinstance(result, PassResult), result
    assert puts(ops, "second") == [], "nothing is written once the lease is lost"
    assert result.outcome == "failed" and "lease" in (result.failure or "")
    row = t.get(ops.rt.table, lease.PK, lease.RK) or {}
    assert row["holder"] == "thief", "the new holder's lease is left alone"
    recorded = history.list_passes(ops.rt.table, limit=1)[0]
    assert recorded.id == result.id and recorded.outcome == "failed"
    assert any("lease" in e for e in recorded.errors)


def test_every_arm_write_names_the_pass_that_made_it(ops: Ops) -> None:
    ops.write("web", manifest("web"))
    ops.write("old", manifest("old"))
    first = ops.sync()
    ops.remove("old")
    ops.arm("PATCH", "apps/web", {"properties": {"template": {"scale": {"maxReplicas": 9}}}})  # drift
    second = run_pass("cli", rt=ops.runtime(prune_enabled=True), wait_seconds=10)
    writes = [c for c in ops.stack.calls("arm") if c["method"] in ("PUT", "PATCH", "DELETE")]
    assert {(c["method"], c["path"].rsplit("/", 1)[-1], c.get("pass")) for c in writes} == {
        ("PUT", "web", first.id),
        ("PUT", "old", first.id),
        ("PATCH", "web", second.id),
        ("DELETE", "old", second.id),
    }
    reads = [c for c in ops.stack.calls("arm") if c["method"] == "GET"]
    assert reads and not any("pass" in c for c in reads), "only writes are named"


def test_two_passes_of_one_instance_never_write_side_by_side(ops: Ops) -> None:
    """One Function App instance runs its timer and queue triggers in one process, on one Runtime: its
    adapters and the running pass's budget (deadline, lease) are shared. Were the lease of the first
    pass to lapse in the store while it still works (its renewals lost with the store), a second pass
    of that instance must not start beside it: the shared budget would let both write."""
    ops.write("first", with_wave("first", 0))
    ops.write("second", with_wave("second", 1))
    ops.arm("POST", "faults", {"method": "PUT", "path": "/containerApps/first$", "count": 1, "latency": 2.0})
    rt = ops.runtime(lease_seconds=30)  # no renewal within the test: the row alone says who holds it
    th, out = in_thread(lambda: run_pass("timer", rt=rt, wait_seconds=10))
    time.sleep(0.6)  # the first pass is in its slow PUT

    def lapse(row: dict[str, Any] | None) -> dict[str, Any]:
        return {**(row or {}), "expires_at": time.time() - 1}

    t.update(ops.rt.table, lease.PK, lease.RK, lapse)
    second = run_pass("webhook", rt=rt, wait_seconds=10)
    th.join()
    assert second.queued, "the instance's first pass still runs: the second is requested, not run beside it"
    assert len(puts(ops, "first")) == 1, f"two passes PUT first: {puts(ops, 'first')}"
    assert isinstance(out[0], PassResult) and out[0].outcome == "succeeded", out[0]
    runs = [r.outcome for r in history.list_passes(ops.rt.table, limit=5)]
    assert "failed" not in runs, runs


# -- every wait is bounded -------------------------------------------------------------------------------


def test_an_arm_retry_after_beyond_what_a_pass_waits_is_not_slept(ops: Ops) -> None:
    ops.write("web", manifest("web"))
    ops.arm(
        "POST",
        "faults",
        {"method": "GET", "path": "/containerApps$", "count": 5, "status": 429, "retryAfter": 15},
    )
    started = time.monotonic()
    with pytest.raises(Exception) as err:
        ops.sync(wait_seconds=2)
    waited = time.monotonic() - started
    listings = [
        c for c in ops.stack.calls("arm") if c["method"] == "GET" and c["path"].endswith("/containerApps")
    ]
    assert len(listings) == 1, "no retry: ARM's Retry-After (15 s) is beyond what a pass waits (10 s)"
    assert "429" in str(err.value)
    assert waited < 15, f"slept ARM's Retry-After anyway ({waited:.1f} s)"
    failed = history.list_passes(ops.rt.table, limit=1)[0]
    assert failed.outcome == "failed" and "429" in " ".join(failed.errors)


def test_a_github_retry_after_above_the_cap_is_not_slept(fresh_stack: LaunchedStack) -> None:
    from synoscd.sources.factory import build_source, forget_warm_sources
    from synoscd.sources.snapshot import SourceError
    from tests.integration.test_sources import new_repo, settings_for

    forget_warm_sources()
    repo = new_repo(fresh_stack, {"apps/web.yaml": manifest("web")})
    source = build_source(settings_for(fresh_stack, repo))
    fresh_stack.admin(
        "github",
        "POST",
        "faults",
        {"method": "GET", "path": "/git/ref/heads/main$", "count": 5, "status": 429, "retryAfter": 60},
    )
    started = time.monotonic()
    with pytest.raises(SourceError) as err:
        source.snapshot()
    waited = time.monotonic() - started
    refs = [c for c in fresh_stack.calls("github") if c["path"].endswith("/git/ref/heads/main")]
    forget_warm_sources()
    assert len(refs) == 1, "a secondary limit asking for 60 s is not retried within a pass"
    assert "60" in str(err.value) and "rate limit" in str(err.value)
    assert waited < 30, f"slept GitHub's Retry-After anyway ({waited:.1f} s)"


# -- failures leave a history row; a dead pass leaves a short lease ---------------------------------------


def test_a_pass_failing_before_it_records_leaves_a_failed_history_row(ops: Ops) -> None:
    from synoscd.azure.arm import ArmError

    ops.write("web", manifest("web"))
    assert ops.sync().outcome == "succeeded"
    broken = ops.runtime(arm_endpoint="https://127.0.0.1:9")
    with pytest.raises(ArmError):
        run_pass("timer", rt=broken, wait_seconds=1)
    latest = history.list_passes(ops.rt.table, limit=1)[0]
    assert (latest.trigger, latest.outcome) == ("timer", "failed")
    assert any("SYNOSCD_ARM_ENDPOINT" in e for e in latest.errors)
    # `synos get status` shows it, not the success before it.
    env = {
        **os.environ,
        **ops.stack.env,
        "SYNOSCD_SOURCE_PATH": str(ops.root),
        "SYNOSCD_STATE_TABLE": ops.table_name,
    }
    out = subprocess.run(
        [sys.executable, "-m", "synoscd", "get", "status", "-o", "json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode in (0, 1), out.stderr
    last = json.loads(out.stdout)["lastPass"]
    assert (last["id"], last["outcome"]) == (latest.id, "failed")


@pytest.fixture
def proxied(ops: Ops) -> Iterator[tuple[Ops, StorageProxy, str]]:
    """Ops whose state store is reached through a storage proxy that the test can cut."""
    proxy, through_proxy = proxy_in_front(ops.stack.env["SYNOSCD_STATE_STORE"], "Table")
    try:
        yield ops, proxy.emulator, through_proxy  # type: ignore[misc]
    finally:
        proxy.stop()


def outage(proxy: StorageProxy, down: bool) -> None:
    proxy.down = down


def test_storage_cut_mid_pass_leaves_a_short_lease_and_a_history_row(
    proxied: tuple[Ops, StorageProxy, str],
) -> None:
    ops, proxy, store = proxied
    ops.write("web", manifest("web"))
    rt = ops.runtime(state_store=store)  # the default lease settings
    ops.arm("POST", "faults", {"method": "PUT", "path": "/containerApps/web$", "count": 1, "latency": 1.5})
    th, _ = in_thread(lambda: run_pass("timer", rt=rt, wait_seconds=10))
    deadline = time.monotonic() + 10
    while not puts(ops, "web") and time.monotonic() < deadline:
        time.sleep(0.05)
    cut_at = time.time()
    outage(proxy, True)
    th.join(timeout=90)
    assert not th.is_alive()
    row = t.get(ops.rt.table, lease.PK, lease.RK) or {}  # read past the proxy
    assert row.get("holder"), "the dead pass could not release its lease"
    assert float(row["expires_at"]) - cut_at <= 60, "a short lease, not the old 10 minutes"
    assert history.list_passes(ops.rt.table) == [], "nothing could be recorded while storage was down"
    outage(proxy, False)
    deadline = time.monotonic() + 30
    while not history.list_passes(ops.rt.table) and time.monotonic() < deadline:
        time.sleep(0.2)
    recorded = history.list_passes(ops.rt.table)
    assert len(recorded) == 1, "the pass record is written once storage is back"
    assert recorded[0].outcome == "failed" and recorded[0].trigger == "timer"
    assert any("state store" in e for e in recorded[0].errors), recorded[0].errors


def test_a_killed_pass_is_recorded_by_the_next_one(ops: Ops) -> None:
    ops.write("web", manifest("web"))
    ops.arm("PUT", "config", {"provisioningDelay": 20})  # the pass waits on the operation: kill it there
    env = {
        **os.environ,
        "SYNOSCD_SOURCE_PATH": str(ops.root),
        "SYNOSCD_GITHUB_CONFIG_PATH": "apps",
        "SYNOSCD_STATE_TABLE": ops.table_name,
        "SYNOSCD_LEASE_SECONDS": "2",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "synoscd", "sync", "--yes", "--wait", "30"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while not puts(ops, "web") and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    killed_at = time.time()
    row = t.get(ops.rt.table, lease.PK, lease.RK) or {}
    assert row.get("holder") and float(row["expires_at"]) - killed_at <= 2.0, "at most a short lease is left"
    time.sleep(max(0.0, float(row["expires_at"]) - time.time()) + 0.1)
    nxt = run_pass("timer", rt=ops.runtime(lease_seconds=2), wait_seconds=10)
    assert not nxt.queued
    passes = history.list_passes(ops.rt.table)
    dead = [p for p in passes if p.id != nxt.id]
    assert len(dead) == 1 and dead[0].trigger == "cli" and dead[0].outcome == "failed"
    assert "did not finish" in " ".join(dead[0].errors)
