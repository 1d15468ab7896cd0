"""Issue 12 against Azurite and the stand-ins with the real SDKs, `run_pass` unpatched:

- operator guardrails in the runtime settings bind every app and job;
- failures are isolated (one app's failure never stops the healing of others) and a failed sync is
  retried with exponential backoff up to a limit;
- a suspension is one flag whatever the case of the name;
- inputs that reach out (Key Vault hosts) or blow up (links, special files, huge files, annotation
  typos, the config path) are errors that block prune, never silent skips.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synoscd.engine.reconcile import run_pass
from synoscd.sources.local import LocalSource
from synoscd.state import apps, operation, runtime
from synoscd.state import table as t
from tests.conftest import app_yaml
from tests.integration.test_hooks import app, calls, executions, hook
from tests.integration.test_reconcile import DRIFTS, Ops, actions, manifest, ops  # noqa: F401  (fixture)

pytestmark = pytest.mark.integration


def errors_at(result: Any) -> list[tuple[str, str]]:
    return [(e["file"], e["field"]) for e in result.errors]


# -- 1. guardrails Git cannot switch off --------------------------------------------------------------


def test_operator_guardrails_in_the_table_bind_apps_and_jobs_and_block_prune(ops: Ops) -> None:  # noqa: F811
    for name in ("web", "old"):
        ops.write(name, manifest(name))
    runtime.save(ops.rt.table, {"prune_enabled": True}, who="test")
    assert ops.sync().outcome == "succeeded"
    ops.remove("old")
    ops.write("web", manifest("web", image="nginx:1.26"))
    task = manifest("task", image="team.azurecr.io/task:1", kind="Job")
    ops.write("task", task.replace("cpu: 0.25\n      memory: 0.5Gi", "cpu: 2\n      memory: 4Gi"))
    runtime.save(
        ops.rt.table,
        {"allowed_registries": ("*.azurecr.io",), "max_cpu": 1.0, "max_memory": "4Gi"},
        who="sec",
    )
    ops.stack.admin("arm", "DELETE", "calls")
    result = ops.sync()
    assert sorted(errors_at(result)) == [
        ("apps/task.yaml", "spec.containers[0].cpu"),
        ("apps/web.yaml", "spec.containers[0].image"),
    ]
    assert all(e["line"] > 1 for e in result.errors)
    assert ops.writes() == [], "neither the blocked app nor the blocked job was written"
    assert actions(result)["old"] == ("skip", "prune-blocked"), "an incomplete desired set prunes nothing"
    assert ops.live("web")["body"]["properties"]["template"]["containers"][0]["image"] == "nginx:1.25"
    assert result.outcome == "partial"
    runtime.save(ops.rt.table, {"allowed_registries": None, "max_cpu": None, "max_memory": None}, who="sec")
    assert runtime.load(ops.rt.table, ops.rt.settings).allowed_registries is None
    assert ops.sync().outcome == "succeeded", "lifting the guardrails lets the same revision through"


def test_guardrail_and_retry_settings_are_checked_kept_and_cleared(ops: Ops) -> None:  # noqa: F811
    table, env = ops.rt.table, ops.rt.settings
    runtime.save(table, {"max_memory": "2048Mi", "retry_limit": 2}, who="alice")
    runtime.save(table, {"allowed_registries": ("ghcr.io", "*.azurecr.io")}, who="bob")
    got = runtime.load(table, env)
    assert (got.max_memory, got.retry_limit, got.allowed_registries, got.max_cpu) == (
        "2Gi",
        2,
        ("*.azurecr.io", "ghcr.io"),
        None,
    )
    assert got.overridden == ("allowed_registries", "max_memory", "retry_limit")
    policy = got.guardrails(("v.vault.azure.net",))
    assert (policy.policy.max_memory, policy.vault_hosts) == ("2Gi", ("v.vault.azure.net",))
    for bad in ({"max_memory": "2GB"}, {"max_cpu": -1}, {"retry_factor": 0.5}, {"retry_limit": 101}):
        with pytest.raises(ValueError):
            runtime.save(table, bad, who="mallory")
    assert runtime.load(table, env) == got, "a refused value changes nothing"
    runtime.save(table, {"max_memory": None, "allowed_registries": None}, who="alice")
    cleared = runtime.load(table, env)
    assert (cleared.max_memory, cleared.allowed_registries, cleared.retry_limit) == (None, None, 2)
    assert cleared.guardrails().empty


# -- 2. failures are isolated and retried ---------------------------------------------------------------


def _fail_lro(o: Ops, name: str, count: int = 1) -> None:
    o.arm(
        "POST",
        "lro-failures",
        # Any write of the app: a create is a PUT, an update a PATCH (a merge patch of the owned fields).
        {"method": "*", "path": f"/containerApps/{name}$", "count": count, "message": "quota exceeded"},
    )


def test_a_failed_operation_stops_no_healing_of_other_apps(ops: Ops) -> None:  # noqa: F811
    for name in ("good", "doomed"):
        ops.write(name, manifest(name))
    _fail_lro(ops, "doomed")
    first = ops.sync()
    assert {o.action.name: o.result for o in first.outcomes} == {"doomed": "failed", "good": "ok"}
    op = operation.load(ops.rt.table)
    assert op.status == "Failed" and op.attempts == 1 and op.next_retry_at > time.time()
    assert op.pending == {"App/doomed"}
    ops.arm("PATCH", "apps/good", DRIFTS["image"][0])  # out-of-band drift on the app that synced
    ops.stack.admin("arm", "DELETE", "calls")
    timer = run_pass("timer", rt=ops.rt, wait_seconds=10)
    assert actions(timer)["good"] == ("update", "drift"), "the app that synced is healed"
    assert actions(timer)["doomed"] == ("skip", "sync-failed")
    assert ops.writes() == ["PATCH good"]
    assert timer.outcome != "succeeded"
    doomed = ops.status("doomed")
    assert doomed.sync_state == "Failed" and "retry 1/5" in doomed.message, doomed


def test_a_failed_heal_in_steady_state_fails_no_operation_and_backs_off_that_app_only(ops: Ops) -> None:  # noqa: F811
    for name in ("aaa", "bbb"):
        ops.write(name, manifest(name))
    assert ops.sync().outcome == "succeeded"
    ops.arm("PATCH", "apps/aaa", DRIFTS["image"][0])
    ops.arm("PATCH", "apps/bbb", DRIFTS["image"][0])
    _fail_lro(ops, "aaa")
    healed = run_pass("timer", rt=ops.rt, wait_seconds=10)
    assert {o.action.name: o.result for o in healed.outcomes} == {"aaa": "failed", "bbb": "ok"}
    assert operation.load(ops.rt.table).status == "Succeeded", "steady-state healing is no new sync"
    ops.arm("PATCH", "apps/bbb", DRIFTS["image"][0])
    again = run_pass("timer", rt=ops.rt, wait_seconds=10)
    assert actions(again)["bbb"] == ("update", "drift")
    assert actions(again)["aaa"][1] == "backoff"
    assert again.outcome == "partial", "a pass that skipped a drifted app is never 'succeeded'"


def starts(o: Ops) -> int:
    """Job starts since the call log was last cleared (it is cleared here)."""
    n = calls(o).count(("POST", "jobs/migrate/start"))
    o.stack.admin("arm", "DELETE", "calls")
    return n


def _make_retry_due(o: Ops) -> None:
    """Time passes: the failed sync's retry falls due now (no sleeping on a shared, noisy machine)."""
    t.update(o.rt.table, "operation", "current", lambda row: {**row, "next_retry_at": time.time() - 1})


def test_a_failed_sync_is_retried_with_exponential_backoff_up_to_the_limit(ops: Ops) -> None:  # noqa: F811
    ops.write("steady", app("steady"))
    assert ops.sync().outcome == "succeeded"
    runtime.save(
        ops.rt.table,
        {
            "retry_limit": 2,
            "retry_duration_seconds": 60.0,
            "retry_factor": 2.0,
            "retry_max_duration_seconds": 3600.0,
        },
        who="test",
    )
    ops.arm("PUT", "config", {"executionDuration": 0.1})
    ops.arm("POST", "failing-jobs", {"job": "migrate"})
    ops.write("migrate", hook("migrate", "PreSync"))
    ops.write("web", app("web"))
    first = ops.sync()
    assert first.outcome == "failed" and ops.live("web") is None
    op = operation.load(ops.rt.table)
    assert (op.status, op.attempts, op.pending) == ("Failed", 1, {"App/web"})
    assert op.next_retry_at == pytest.approx(op.updated_at + 60.0, abs=1.0), "the first wait: the duration"

    # before the retry is due: the synced app is healed, the hook is not run again, web waits
    ops.arm("PATCH", "apps/steady", DRIFTS["image"][0])
    ops.stack.admin("arm", "DELETE", "calls")
    waiting = run_pass("timer", rt=ops.rt, wait_seconds=10)
    assert calls(ops) == [("PATCH", "containerApps/steady")]
    assert actions(waiting)["web"] == ("skip", "sync-failed")
    assert "retry 1/2" in ops.status("web").message

    _make_retry_due(ops)
    retried = run_pass("timer", rt=ops.rt, wait_seconds=10)
    assert retried.outcome == "failed"
    assert starts(ops) == 1, "the due retry ran the failed hook again"
    op = operation.load(ops.rt.table)
    assert op.attempts == 2
    assert op.next_retry_at == pytest.approx(op.updated_at + 120.0, abs=1.0), "the backoff doubled"

    _make_retry_due(ops)
    run_pass("timer", rt=ops.rt, wait_seconds=10)
    op = operation.load(ops.rt.table)
    assert starts(ops) == 1 and op.attempts == 3 and op.next_retry_at is None
    assert "retries exhausted" in op.message
    exhausted = run_pass("timer", rt=ops.rt, wait_seconds=10)
    assert ops.writes() == [] and starts(ops) == 0, "no retry past the limit"
    assert "exhausted" in (exhausted.operation_error or "")
    manual = ops.sync()  # `synos sync` starts the revision's sync afresh
    assert starts(ops) == 1 and manual.outcome == "failed"
    assert operation.load(ops.rt.table).attempts == 1


def test_a_retry_that_succeeds_completes_the_sync(ops: Ops) -> None:  # noqa: F811
    ops.write("web", app("web"))
    ops.write("notify", hook("notify", "PostSync"))
    runtime.save(ops.rt.table, {"retry_duration_seconds": 0.5}, who="test")
    ops.arm("PUT", "config", {"executionDuration": 0.1})
    _fail_lro(ops, "web")
    assert ops.sync().outcome == "failed"
    assert executions(ops, "notify") == [], "no PostSync after a failed Sync wave"
    time.sleep(0.6)
    retried = run_pass("timer", rt=ops.rt, wait_seconds=10)
    assert retried.outcome == "succeeded", retried.to_dict()
    op = operation.load(ops.rt.table)
    assert (op.status, op.pending, op.next_retry_at) == ("Succeeded", set(), None)
    assert len(executions(ops, "notify")) == 1


def test_a_sync_that_failed_before_retries_existed_is_retried_once_not_healed_around(ops: Ops) -> None:  # noqa: F811
    ops.write("web", manifest("web"))
    revision = run_pass("cli", dry_run=True, rt=ops.rt).revision
    legacy = {
        "revision": revision,
        "status": "Failed",
        "message": "PreSync wave 0 failed: old",
        "started_at": 1.0,
    }
    t.update(ops.rt.table, "operation", "current", lambda _row: legacy)
    retried = run_pass("timer", rt=ops.rt, wait_seconds=10)
    assert actions(retried)["web"] == ("create", "missing") and retried.outcome == "succeeded"
    assert operation.load(ops.rt.table).status == "Succeeded"


# -- hidden suspension -----------------------------------------------------------------------------------


def test_suspend_and_resume_with_names_in_another_case_are_one_flag(ops: Ops) -> None:  # noqa: F811
    ops.write("demo-app", manifest("demo-app"))
    apps.set_suspended(ops.rt.table, "Demo-App", True, "alice", "incident")
    assert actions(ops.sync())["demo-app"] == ("skip", "suspended")
    apps.set_suspended(ops.rt.table, "demo-app", False, "bob", None)
    flags = apps.get_flags(ops.rt.table)
    assert not flags["demo-app"].suspended and not flags.get("DEMO-APP").suspended
    assert actions(ops.sync())["demo-app"] == ("create", "missing"), "resumed means resumed"


def test_a_flag_row_written_in_another_case_by_an_older_version_is_read_and_replaced(ops: Ops) -> None:  # noqa: F811
    ops.write("demo-app", manifest("demo-app"))
    t.update(ops.rt.table, apps.FLAGS, "Demo-App", lambda _row: {"suspended": True, "by": "old", "at": 1.0})
    assert apps.get_flags(ops.rt.table).get("demo-app").suspended
    apps.set_suspended(ops.rt.table, "DEMO-APP", False, "bob", None)
    rows = [r["RowKey"] for r in t.query(ops.rt.table, apps.FLAGS)]
    assert rows == ["demo-app"]
    assert actions(ops.sync())["demo-app"] == ("create", "missing")


# -- 7. inputs that reach out or blow up -----------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[tuple[int, list[Any]]]:
    """A loopback TCP port that records every connection made to it (and answers nothing)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    seen: list[Any] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, peer = server.accept()
            except TimeoutError:
                continue
            seen.append(peer)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_a_manifest_given_vault_host_is_an_error_and_a_dry_run_does_not_call_it(
    ops: Ops,  # noqa: F811
    listener: tuple[int, list[Any]],
) -> None:
    port, seen = listener
    (ops.root / "config").mkdir()
    (ops.root / "config" / "web.json").write_text("{}")
    extra = f"  configFrom:\n    - config/web.json\n  secrets:\n    s: https://127.0.0.1:{port}/secrets/s\n"
    ops.write("web", manifest("web", extra=extra))
    ops.write("ok", manifest("ok"))
    dry = run_pass("cli", dry_run=True, rt=ops.rt)
    assert errors_at(dry) == [("apps/web.yaml", "spec.secrets.s")]
    assert "not allowed" in dry.errors[0]["message"] and dry.errors[0]["line"] == 21
    assert "web" not in actions(dry)
    time.sleep(0.3)
    assert seen == [], "no outbound call to a host a manifest named"
    ops.stack.admin("arm", "DELETE", "calls")
    real = ops.sync()
    assert ops.writes() == ["PUT ok"] and seen == [] and real.outcome == "partial"


def _four_apps_with_prune(o: Ops) -> None:
    for n in ("aaa", "bbb", "ccc", "ddd"):
        o.write(n, manifest(n))
    runtime.save(o.rt.table, {"prune_enabled": True}, who="test")
    assert o.sync().outcome == "succeeded"


def _link_out(o: Ops, name: str) -> None:
    outside = o.root.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / f"{name}.yaml").write_text(manifest(name))
    path = o.root / "apps" / f"{name}.yaml"
    path.unlink()
    path.symlink_to(outside / f"{name}.yaml")


def _broken_link(o: Ops, name: str) -> None:
    path = o.root / "apps" / f"{name}.yaml"
    path.unlink()
    path.symlink_to(o.root / "apps" / "gone.yaml")


def _fifo(o: Ops, name: str) -> None:
    path = o.root / "apps" / f"{name}.yaml"
    path.unlink()
    os.mkfifo(path)


def _folder_link(o: Ops, name: str) -> None:
    outside = o.root.parent / "elsewhere"
    outside.mkdir(exist_ok=True)
    (outside / f"{name}.yaml").write_text(manifest(name))
    (o.root / "apps" / f"{name}.yaml").unlink()
    (o.root / "apps" / "linked").symlink_to(outside, target_is_directory=True)


@pytest.mark.parametrize(
    "spoil,path,words",
    [
        (_link_out, "apps/ddd.yaml", "outside the repository"),
        (_broken_link, "apps/ddd.yaml", "broken link"),
        (_fifo, "apps/ddd.yaml", "not a regular file"),
        (_folder_link, "apps/linked", "link to a folder"),
    ],
)
def test_a_manifest_the_local_source_cannot_read_blocks_prune_with_a_clear_error(
    ops: Ops,  # noqa: F811
    spoil: Any,
    path: str,
    words: str,
) -> None:
    _four_apps_with_prune(ops)
    spoil(ops, "ddd")
    result = ops.sync()
    assert ops.live("ddd") is not None, "never pruned while a manifest could not be read"
    assert actions(result)["ddd"] == ("skip", "prune-blocked")
    [error] = result.errors
    assert error["file"] == path and words in error["message"], error
    assert result.outcome == "partial"


def test_an_oversized_manifest_is_reported_and_never_read_whole(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "web.yaml").write_text(app_yaml("web"))
    with (tmp_path / "apps" / "big.yaml").open("wb") as f:
        f.truncate(64 * 1024 * 1024)  # sparse: costs no disk, 64 MiB to anyone who reads it
    tracemalloc.start()
    try:
        snapshot = LocalSource(tmp_path, "apps").snapshot()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024, f"read {peak} bytes: the file was read past the size limit"
    assert list(snapshot.files) == ["apps/web.yaml"]
    assert "larger than 1 MiB" in snapshot.problems["apps/big.yaml"]


@pytest.mark.parametrize("config_path", [".", "/"])
def test_config_path_dot_or_slash_reads_the_whole_repository(tmp_path: Path, config_path: str) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "web.yaml").write_text(app_yaml("web"))
    (tmp_path / "top.yaml").write_text(app_yaml("top"))
    assert sorted(LocalSource(tmp_path, config_path).snapshot().files) == ["apps/web.yaml", "top.yaml"]


def test_a_misspelt_hook_is_an_error_and_the_job_is_not_applied(ops: Ops) -> None:  # noqa: F811
    ops.write("notify", hook("notify", "PostSnyc"))
    ops.write("web", app("web"))
    result = ops.sync()
    assert errors_at(result) == [("apps/notify.yaml", 'metadata.annotations["synoscd.io/hook"]')]
    assert result.errors[0]["line"] == 6 and "did you mean 'PostSync'" in result.errors[0]["message"]
    assert ops.live("notify", "jobs") is None, "not applied as an ordinary Job in the Sync phase"
    assert ops.live("web") is not None and result.outcome == "partial"
