"""Sync waves and PreSync/Sync/PostSync/SyncFail hooks as Container Apps Jobs, against the ARM
stand-in: order of work from its call log, operations kept in the state table across passes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from synoscd.engine.reconcile import run_pass
from synoscd.state import operation
from tests.conftest import REPO_ROOT
from tests.integration.test_reconcile import Ops, manifest, ops  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration


def hook(
    name: str, phases: str, image: str = "tools:1", policy: str | None = None, wave: int | None = None
) -> str:
    notes = f"  annotations:\n    synoscd.io/hook: {phases}\n"
    if policy:
        notes += f"    synoscd.io/hook-delete-policy: {policy}\n"
    if wave is not None:
        notes += f"    synoscd.io/sync-wave: '{wave}'\n"
    return manifest(name, image, kind="Job").replace(f"  name: {name}\n", f"  name: {name}\n{notes}", 1)


def app(name: str, wave: int | None = None, image: str = "nginx:1.25") -> str:
    text = manifest(name, image)
    if wave is None:
        return text
    return text.replace(
        f"  name: {name}\n", f"  name: {name}\n  annotations:\n    synoscd.io/sync-wave: '{wave}'\n", 1
    )


def calls(o: Ops) -> list[tuple[str, str]]:
    return [
        (c["method"], c["path"].split("/providers/Microsoft.App/")[-1])
        for c in o.stack.calls("arm")
        if c["method"] in ("PUT", "PATCH", "POST", "DELETE")
    ]


def executions(o: Ops, job: str) -> list[dict[str, Any]]:
    live = o.live(job, "jobs")
    return live["executions"] if live else []


def test_failed_presync_hook_stops_the_sync_runs_syncfail_and_leaves_apps_untouched(ops: Ops) -> None:  # noqa: F811
    ops.write("migrate", hook("migrate", "PreSync", policy="HookFailed"))
    ops.write("cleanup", hook("cleanup", "SyncFail"))
    ops.write("web", app("web"))
    ops.arm("PUT", "config", {"executionDuration": 0.2})
    ops.arm("POST", "failing-jobs", {"job": "migrate"})
    ops.stack.admin("arm", "DELETE", "calls")
    result = ops.sync()
    assert result.outcome == "failed", json.dumps(result.to_dict())
    done = calls(ops)
    assert ("POST", "jobs/migrate/start") in done and ("POST", "jobs/cleanup/start") in done
    assert not [c for c in done if c[1].startswith("containerApps/")], "the apps were not touched"
    assert ops.live("web") is None
    assert ops.live("migrate", "jobs") is None, "HookFailed deleted the failed hook"
    assert [e["properties"]["status"] for e in executions(ops, "cleanup")] == ["Succeeded"]
    op = operation.load(ops.rt.table)
    assert op.status == "Failed" and "migrate" in op.message
    # the timer does not retry a failed revision behind the hooks' back
    ops.stack.admin("arm", "DELETE", "calls")
    again = run_pass("timer", rt=ops.rt, wait_seconds=10)
    assert again.outcome == "failed" and "failed" in again.operation_error
    assert calls(ops) == []


def test_presync_then_waves_in_order_then_postsync_and_hook_succeeded_deletes(ops: Ops) -> None:  # noqa: F811
    ops.write("migrate", hook("migrate", "PreSync", policy="HookSucceeded"))
    ops.write("db", app("db", wave=-1))
    ops.write("web", app("web", wave=0))
    ops.write("notify", hook("notify", "PostSync"))
    ops.arm("PUT", "config", {"executionDuration": 0.2, "provisioningDelay": 0.2})
    ops.stack.admin("arm", "DELETE", "calls")
    dry = run_pass("cli", dry_run=True, rt=ops.rt)
    assert [(a.phase, a.wave, a.name, a.action) for a in dry.plan.actions] == [
        ("PreSync", 0, "migrate", "run-hook"),
        ("Sync", -1, "db", "create"),
        ("Sync", 0, "web", "create"),
        ("PostSync", 0, "notify", "run-hook"),
    ]
    assert calls(ops) == []
    result = ops.sync(wait_seconds=30)
    assert result.outcome == "succeeded", result.to_dict()
    done = calls(ops)
    order = [
        done.index(c)
        for c in (
            ("POST", "jobs/migrate/start"),
            ("PUT", "containerApps/db"),
            ("PUT", "containerApps/web"),
            ("POST", "jobs/notify/start"),
        )
    ]
    assert order == sorted(order), done
    assert ("DELETE", "jobs/migrate") in done and done.index(("DELETE", "jobs/migrate")) > order[-1]
    assert ops.live("migrate", "jobs") is None and ops.live("notify", "jobs") is not None
    assert operation.load(ops.rt.table).status == "Succeeded"
    ops.stack.admin("arm", "DELETE", "calls")
    steady = ops.sync()
    assert calls(ops) == [], "hooks ran once for this revision; the apps are in sync"
    assert {a.reason for a in steady.plan.actions} == {"in-sync", "hook-done"}


def test_a_new_revision_starts_a_new_operation(ops: Ops) -> None:  # noqa: F811
    ops.write("migrate", hook("migrate", "PreSync"))
    ops.write("web", app("web"))
    ops.arm("PUT", "config", {"executionDuration": 0.1})
    ops.sync(wait_seconds=30)
    first = operation.load(ops.rt.table)
    ops.write("web", app("web", image="nginx:2"))
    ops.sync(wait_seconds=30)
    second = operation.load(ops.rt.table)
    assert second.revision != first.revision and second.status == "Succeeded"
    assert len(executions(ops, "migrate")) == 1, (
        "BeforeHookCreation: the job was re-created for the new revision"
    )
    assert ops.live("web")["body"]["properties"]["template"]["containers"][0]["image"] == "nginx:2"


def test_an_operation_interrupted_between_waves_resumes_from_the_state_table(ops: Ops) -> None:  # noqa: F811
    ops.write("migrate", hook("migrate", "PreSync"))
    ops.write("web", app("web"))
    ops.arm("PUT", "config", {"executionDuration": 2.5, "provisioningDelay": 0.1})
    env = {
        **os.environ,
        **{
            f"SYNOSCD_{k.upper()}": str(v)
            for k, v in (
                ("source_path", ops.root),
                ("github_config_path", "apps"),
                ("state_table", ops.table_name),
                ("lease_seconds", 2),
            )
        },
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "synoscd", "sync", "--yes", "--wait", "30"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not executions(ops, "migrate"):
        time.sleep(0.1)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)  # the process dies mid-operation, holding the lease
    proc.wait(timeout=10)
    assert ops.live("web") is None
    op = operation.load(ops.rt.table)
    assert op.status == "Running" and op.phase == "PreSync" and "PreSync/Job/migrate" in op.executions
    time.sleep(2.2)  # the dead holder's lease expires
    resumed = run_pass("timer", rt=ops.runtime(lease_seconds=2), wait_seconds=30)
    assert resumed.outcome == "succeeded", resumed.to_dict()
    assert len(executions(ops, "migrate")) == 1, "the started execution was awaited, not started again"
    assert ops.live("web") is not None
    assert operation.load(ops.rt.table).status == "Succeeded"
