"""The reconcile pass against Azurite and the ARM stand-in with the real SDKs: convergence, drift,
health, every safety invariant, and faults. The source is a local folder (the GitHub source has its
own tests); `run_pass` and everything under it run unpatched."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from synoscd.config import Settings
from synoscd.engine.reconcile import PassResult, run_pass
from synoscd.engine.runtime import Runtime
from synoscd.state import apps, history, lease, runtime
from tests.conftest import LaunchedStack

pytestmark = pytest.mark.integration


def manifest(name: str, image: str = "nginx:1.25", kind: str = "App", extra: str = "") -> str:
    if kind == "Job":
        return (
            f"apiVersion: synoscd.io/v1alpha1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n"
            f"  containers:\n    - name: main\n      image: {image}\n      cpu: 0.25\n      memory: 0.5Gi\n"
            f"  triggerType: Manual\n  replicaTimeout: 60\n{extra}"
        )
    return (
        f"apiVersion: synoscd.io/v1alpha1\nkind: App\nmetadata:\n  name: {name}\nspec:\n"
        f"  containers:\n    - name: web\n      image: {image}\n      cpu: 0.25\n      memory: 0.5Gi\n"
        f"  ingress:\n    enabled: true\n    external: true\n    targetPort: 80\n"
        f"  scale:\n    minReplicas: 1\n    maxReplicas: 3\n{extra}"
    )


class Ops:
    """A local ops folder plus a Runtime on a fresh state table."""

    def __init__(self, stack: LaunchedStack, root: Path) -> None:
        self.stack = stack
        self.root = root
        (root / "apps").mkdir(parents=True, exist_ok=True)
        self.table_name = f"t{uuid.uuid4().hex[:20]}"
        self.rt = self.runtime()

    def runtime(self, **overrides: Any) -> Runtime:
        env = {
            k.removeprefix("SYNOSCD_").lower(): v
            for k, v in self.stack.env.items()
            if k.startswith("SYNOSCD_")
        }
        known = set(Settings.model_fields)
        values = {k: v for k, v in env.items() if k in known}
        values.update(
            source_path=str(self.root),
            github_config_path="apps",
            state_table=self.table_name,
            reconcile_interval_seconds=60,
            protected_apps_csv="synoscd-operator",
        )
        values.update(overrides)
        return Runtime(Settings(**values))

    def write(self, name: str, text: str) -> None:
        (self.root / "apps" / f"{name}.yaml").write_text(text)

    def remove(self, name: str) -> None:
        (self.root / "apps" / f"{name}.yaml").unlink()

    def sync(self, **kw: Any) -> PassResult:
        kw.setdefault("wait_seconds", 10.0)
        return run_pass("cli", rt=self.rt, **kw)

    def arm(self, method: str, path: str, body: Any = None) -> Any:
        return self.stack.admin("arm", method, path, body)

    def writes(self) -> list[str]:
        return [
            f"{c['method']} {c['path'].rsplit('/', 1)[-1]}"
            for c in self.stack.calls("arm")
            if c["method"] in ("PUT", "DELETE", "PATCH")
        ]

    def live(self, name: str, kind: str = "containerApps") -> dict[str, Any] | None:
        for r in self.arm("GET", "state")["resources"]:
            if r["kind"] == kind and r["name"] == name:
                return r
        return None

    def status(self, name: str, kind: str = "App") -> apps.AppStatus:
        status = apps.get_status(self.rt.table, kind, name)
        assert status is not None, f"no status for {kind} {name}"
        return status


@pytest.fixture
def ops(fresh_stack: LaunchedStack, tmp_path: Path) -> Iterator[Ops]:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.05})
    o = Ops(fresh_stack, tmp_path / "ops")
    yield o
    o.rt.table.delete_table()


def actions(result: PassResult) -> dict[str, tuple[str, str]]:
    assert result.plan is not None
    return {a.name: (a.action, a.reason) for a in result.plan.actions}


# -- convergence ---------------------------------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9]{2,8}", fullmatch=True)


@st.composite
def manifest_sets(draw: Any) -> dict[str, str]:
    out = {}
    for name in draw(st.lists(names, min_size=1, max_size=5, unique=True)):
        image = f"{draw(names)}:{draw(st.integers(1, 9))}"
        if draw(st.booleans()):
            out[name] = manifest(name, image, kind="Job")
            continue
        extra = ""
        if draw(st.booleans()):
            extra += "  environment:\n    - name: MODE\n      value: " + draw(names) + "\n"
        if draw(st.booleans()):
            extra += "  tags:\n    team: " + draw(names) + "\n"
        out[name] = manifest(name, image, extra=extra)
    return out


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(manifest_sets())
def test_property_second_pass_on_the_same_revision_writes_nothing(ops: Ops, files: dict[str, str]) -> None:
    for path in (ops.root / "apps").glob("*.yaml"):
        path.unlink()
    for name, text in files.items():
        ops.write(name, text)
    first = ops.sync()
    assert first.outcome == "succeeded", first.to_dict()
    ops.stack.admin("arm", "DELETE", "calls")
    second = ops.sync()
    assert second.revision == first.revision
    assert [a for a in second.plan.actions if a.writes] == [], second.plan.to_dict()
    assert ops.writes() == [], "no PUT or DELETE in the second pass"
    ops.stack.admin("arm", "POST", "reset")
    ops.stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.05})


# -- drift ------------------------------------------------------------------------------------------------

DRIFTS = {
    "image": (
        {
            "properties": {
                "template": {
                    "containers": [
                        {"name": "web", "image": "evil:6", "resources": {"cpu": 0.25, "memory": "0.5Gi"}}
                    ]
                }
            }
        },
        "template.containers[0].image",
    ),
    "env": (
        {
            "properties": {
                "template": {
                    "containers": [
                        {
                            "name": "web",
                            "image": "nginx:1.25",
                            "env": [{"name": "X", "value": "1"}],
                            "resources": {"cpu": 0.25, "memory": "0.5Gi"},
                        }
                    ]
                }
            }
        },
        "template.containers[0].env",
    ),
    "scale": ({"properties": {"template": {"scale": {"maxReplicas": 9}}}}, "template.scale.maxReplicas"),
    "ingress": (
        {"properties": {"configuration": {"ingress": {"targetPort": 8080}}}},
        "configuration.ingress.targetPort",
    ),
    "tags": ({"tags": {"team": "b"}}, "tags.team"),
}


@pytest.mark.parametrize("what", list(DRIFTS))
def test_out_of_band_change_to_an_owned_field_is_healed_in_one_pass(ops: Ops, what: str) -> None:
    ops.write("web", manifest("web", extra="  tags:\n    team: a\n"))
    assert ops.sync().outcome == "succeeded"
    patch, field = DRIFTS[what]
    ops.arm("PATCH", "apps/web", patch)
    healed = ops.sync()
    action = next(a for a in healed.plan.actions if a.name == "web")
    assert (action.action, action.reason) == ("update", "drift")
    assert [c["field"] for c in action.changes] == [field]
    assert healed.outcome == "succeeded"
    again = ops.sync()
    assert actions(again) == {"web": ("noop", "in-sync")}
    assert ops.status("web").sync_state == "Synced"


def test_read_only_and_server_defaulted_fields_are_not_drift(ops: Ops) -> None:
    ops.write("web", manifest("web"))
    ops.sync()
    ops.arm(
        "PATCH",
        "apps/web",
        {
            "tags": {"added-by-policy": "yes"},
            "properties": {
                "configuration": {
                    "maxInactiveRevisions": 5,
                    "ingress": {"stickySessions": {"affinity": "sticky"}, "allowInsecure": False},
                },
                "template": {"scale": {"cooldownPeriod": 120}},
            },
        },
    )
    assert actions(ops.sync()) == {"web": ("noop", "in-sync")}


# -- health -------------------------------------------------------------------------------------------------


def test_crashing_image_is_re_applied_with_backoff_and_status_says_why(ops: Ops) -> None:
    ops.arm("POST", "crashing-images", {"image": "broken:1"})
    ops.write("web", manifest("web", image="broken:1"))
    first = ops.sync()
    assert actions(first)["web"] == ("create", "missing")
    status = ops.status("web")
    assert status.health == "Degraded" and "failing" in status.message, status
    assert status.attempts == 1 and status.next_retry_at > time.time() + 30
    # the Degraded wave failed the sync; timer passes heal the app on its own backoff meanwhile
    # (a manual `synos sync` would retry the failed sync at once)
    second = run_pass("timer", rt=ops.rt, wait_seconds=10)
    assert actions(second)["web"] == ("skip", "backoff")
    assert "next try in" in second.plan.actions[0].message
    assert second.outcome != "succeeded"
    # once the backoff is due, exactly one re-apply
    apps.put_statuses(ops.rt.table, [_due(ops.status("web"))])
    ops.stack.admin("arm", "DELETE", "calls")
    third = run_pass("timer", rt=ops.rt, wait_seconds=10)
    assert actions(third)["web"] == ("heal", "unhealthy")
    assert ops.status("web").attempts == 2
    assert actions(run_pass("timer", rt=ops.rt, wait_seconds=10))["web"] == ("skip", "backoff")


def _due(status: apps.AppStatus) -> apps.AppStatus:
    status.next_retry_at = time.time() - 1
    return status


# -- safety invariants ---------------------------------------------------------------------------------------


def test_unmanaged_name_clash_is_untouched_and_reported(ops: Ops) -> None:
    ops.arm(
        "POST",
        "apps",
        {
            "name": "legacy",
            "envelope": {
                "tags": {"owner": "ops-team"},
                "properties": {
                    "template": {
                        "containers": [
                            {"name": "c", "image": "legacy:1", "resources": {"cpu": 0.25, "memory": "0.5Gi"}}
                        ]
                    }
                },
            },
        },
    )
    ops.write("legacy", manifest("legacy", image="new:2"))
    ops.stack.admin("arm", "DELETE", "calls")
    result = ops.sync()
    assert actions(result)["legacy"] == ("skip", "unmanaged-conflict")
    assert ops.writes() == []
    assert ops.live("legacy")["body"]["properties"]["template"]["containers"][0]["image"] == "legacy:1"
    assert "synoscd-managed=true" in ops.status("legacy").message


def _three_apps_then_drop(ops: Ops) -> None:
    for n in ("aaa", "bbb", "ccc", "ddd"):
        ops.write(n, manifest(n))
    runtime.save(ops.rt.table, {"prune_enabled": True}, who="test")
    assert ops.sync().outcome == "succeeded"


def test_prune_deletes_only_with_prune_enabled_and_keeps_a_tombstone(ops: Ops) -> None:
    _three_apps_then_drop(ops)
    ops.remove("ddd")
    result = ops.sync()
    assert actions(result)["ddd"] == ("delete", "pruned")
    assert ops.live("ddd") is None
    tomb = history.latest_tombstone(ops.rt.table, "ddd")
    assert tomb["body"]["properties"]["template"]["containers"][0]["image"] == "nginx:1.25"
    assert ops.status("ddd").sync_state == "Pruned"


def test_prune_blocked_on_a_parse_error(ops: Ops) -> None:
    _three_apps_then_drop(ops)
    ops.remove("ddd")
    ops.write("broken", "apiVersion: synoscd.io/v1alpha1\nkind: App\nmetadata: [unclosed\n")
    result = ops.sync()
    assert actions(result)["ddd"] == ("skip", "prune-blocked")
    assert result.plan.prune_blocked and "incomplete" in result.plan.prune_blocked
    assert result.errors and result.errors[0]["file"] == "apps/broken.yaml"
    assert ops.live("ddd") is not None


def test_prune_blocked_on_an_empty_desired_set(ops: Ops) -> None:
    _three_apps_then_drop(ops)
    for n in ("aaa", "bbb", "ccc", "ddd"):
        ops.remove(n)
    result = ops.sync()
    assert {a.reason for a in result.plan.actions} == {"prune-blocked"}
    assert "empty" in result.plan.prune_blocked
    assert all(ops.live(n) for n in ("aaa", "bbb", "ccc", "ddd"))


def test_prune_blocked_above_the_fraction_unless_forced(ops: Ops) -> None:
    _three_apps_then_drop(ops)
    for n in ("bbb", "ccc", "ddd"):
        ops.remove(n)
    result = ops.sync()
    assert "3 of 4" in result.plan.prune_blocked
    assert all(ops.live(n) for n in ("bbb", "ccc", "ddd"))
    forced = ops.sync(force_prune=True)
    assert [a.name for a in forced.plan.actions if a.action == "delete"] == ["bbb", "ccc", "ddd"]


def test_prune_blocked_on_a_source_error(ops: Ops) -> None:
    _three_apps_then_drop(ops)
    ops.root.rename(ops.root.with_name("moved-away"))  # the same source, now unreadable
    result = ops.sync()
    assert result.outcome == "source-error" and "does not exist" in result.source_error
    assert {a.action for a in result.plan.actions} == {"skip"}
    assert all(ops.live(n) for n in ("aaa", "bbb", "ccc", "ddd"))


def test_protected_and_suspended_apps_are_untouched(ops: Ops) -> None:
    ops.write("guarded", manifest("guarded"))
    ops.write("paused", manifest("paused"))
    ops.sync()
    ops.arm("PATCH", "apps/guarded", DRIFTS["image"][0])
    ops.arm("PATCH", "apps/paused", DRIFTS["image"][0])
    runtime.save(ops.rt.table, {"protected_apps": ("guarded",), "prune_enabled": True}, who="test")
    apps.set_suspended(ops.rt.table, "paused", True, who="alice", reason="incident 42")
    ops.stack.admin("arm", "DELETE", "calls")
    result = ops.sync()
    assert actions(result) == {"guarded": ("skip", "protected"), "paused": ("skip", "suspended")}
    assert ops.writes() == []
    assert ops.status("paused").sync_state == "Suspended"
    ops.remove("guarded")
    ops.remove("paused")
    pruned = ops.sync(force_prune=True)
    assert actions(pruned) == {"guarded": ("skip", "protected"), "paused": ("skip", "suspended")}
    assert ops.writes() == []


def test_two_concurrent_passes_one_runs_the_other_is_coalesced_into_one_rerun(ops: Ops) -> None:
    ops.write("web", manifest("web"))
    ops.stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.5})
    results: list[PassResult] = []
    barrier = threading.Barrier(2)

    def go() -> None:
        rt = ops.runtime()  # two instances of the Function App (one instance runs one pass at a time)
        barrier.wait()
        results.append(run_pass("cli", rt=rt, wait_seconds=10))

    threads = [threading.Thread(target=go) for _ in range(2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    queued = [r for r in results if r.queued]
    ran = [r for r in results if not r.queued]
    assert len(queued) == 1 and len(ran) == 1
    passes = history.list_passes(ops.rt.table)
    assert [p.trigger for p in passes] == ["coalesced", "cli"], "the holder ran once more for the request"
    assert lease.read(ops.rt.table) == (None, 0)
    assert len([w for w in ops.writes() if w.startswith("PUT")]) == 1


def test_a_flag_written_during_a_pass_is_not_lost(ops: Ops) -> None:
    ops.write("web", manifest("web"))
    ops.stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.6})
    done = threading.Event()

    def suspend_midway() -> None:
        time.sleep(0.2)
        apps.set_suspended(ops.rt.table, "web", True, who="bob", reason="during the pass")
        runtime.save(ops.rt.table, {"interval_seconds": 120}, who="bob")
        done.set()

    th = threading.Thread(target=suspend_midway)
    th.start()
    ops.sync()
    th.join()
    assert done.is_set()
    assert apps.get_flags(ops.rt.table)["web"].suspended is True
    assert runtime.load(ops.rt.table, ops.rt.settings).interval_seconds == 120
    assert actions(ops.sync())["web"] == ("skip", "suspended")


# -- faults ------------------------------------------------------------------------------------------


def test_429_and_503_bursts_are_survived(ops: Ops) -> None:
    ops.write("web", manifest("web"))
    ops.arm(
        "POST",
        "faults",
        {"method": "GET", "path": "/containerApps$", "count": 2, "status": 429, "retryAfter": 0.1},
    )
    ops.arm("POST", "faults", {"method": "PUT", "path": "/containerApps/web$", "count": 2, "status": 503})
    result = ops.sync()
    assert result.outcome == "succeeded", result.to_dict()
    assert ops.live("web") is not None


def test_an_operation_ending_failed_is_recorded_for_its_app_only(ops: Ops) -> None:
    for n in ("good", "doomed"):
        ops.write(n, manifest(n))
    ops.arm(
        "POST",
        "lro-failures",
        {
            "method": "PUT",
            "path": "/containerApps/doomed$",
            "code": "ContainerAppProvisioningFailed",
            "message": "quota exceeded",
        },
    )
    result = ops.sync()
    outcome = {o.action.name: o.result for o in result.outcomes}
    assert outcome == {"doomed": "failed", "good": "ok"}
    doomed = ops.status("doomed")
    assert doomed.sync_state == "Failed" and "quota exceeded" in (doomed.last_error or "")
    assert ops.status("good").sync_state == "Synced"


def test_a_dropped_connection_mid_pass_leaves_state_consistent_and_the_next_pass_converges(ops: Ops) -> None:
    for n in ("aaa", "bbb"):
        ops.write(n, manifest(n))
    ops.arm("POST", "faults", {"method": "PUT", "path": "/containerApps/bbb$", "count": 10, "drop": True})
    first = ops.sync()
    assert {o.action.name: o.result for o in first.outcomes}["aaa"] == "ok"
    assert lease.read(ops.rt.table) == (None, 0), "the lease was released"
    ops.arm("DELETE", "faults")
    second = ops.sync()
    assert second.outcome == "succeeded"
    third = ops.sync()
    assert [a for a in third.plan.actions if a.writes] == []


def test_an_in_progress_app_is_left_alone_and_picked_up_by_the_next_pass(ops: Ops) -> None:
    ops.write("slow", manifest("slow"))
    ops.stack.admin("arm", "PUT", "config", {"provisioningDelay": 1.5})
    first = ops.sync(wait_seconds=0.2)
    assert {o.action.name: o.result for o in first.outcomes} == {"slow": "progressing"}
    assert ops.status("slow").sync_state == "Progressing"
    ops.write("slow", manifest("slow", image="nginx:2"))
    second = ops.sync(wait_seconds=0)
    assert actions(second)["slow"] == ("skip", "in-progress")
    time.sleep(1.5)
    third = ops.sync()
    assert actions(third)["slow"] == ("update", "drift")
    assert ops.status("slow").sync_state == "Synced"


def test_a_changed_config_file_rolls_a_new_revision_through_the_config_hash(ops: Ops) -> None:
    (ops.root / "config").mkdir()
    (ops.root / "config" / "web.json").write_text('{"feature": false}')
    ops.write("web", manifest("web", extra="  configFrom:\n    - config/web.json\n"))
    assert ops.sync().outcome == "succeeded"
    first = ops.live("web")
    env = first["body"]["properties"]["template"]["containers"][0]["env"]
    hash1 = next(e["value"] for e in env if e["name"] == "SYNOSCD_CONFIG_HASH")
    assert actions(ops.sync()) == {"web": ("noop", "in-sync")}, "an unchanged file changes nothing"
    (ops.root / "config" / "web.json").write_text('{"feature": true}')
    rolled = ops.sync()
    action = rolled.plan.actions[0]
    assert (action.action, action.reason) == ("update", "drift")
    assert action.changes[0]["field"] == "template.containers[0].env[0].value"
    second = ops.live("web")
    hash2 = next(
        e["value"]
        for e in second["body"]["properties"]["template"]["containers"][0]["env"]
        if e["name"] == "SYNOSCD_CONFIG_HASH"
    )
    assert hash2 != hash1
    assert len(second["revisions"]) == len(first["revisions"]) + 1, "a template change: a new revision"


def test_a_pass_that_fails_lets_go_of_the_lease(ops: Ops) -> None:
    from synoscd.azure.arm import ArmError

    ops.write("web", manifest("web"))
    broken = ops.runtime(arm_endpoint="https://127.0.0.1:9")
    with pytest.raises(ArmError) as err:
        run_pass("timer", rt=broken, wait_seconds=1)
    assert "SYNOSCD_ARM_ENDPOINT" in str(err.value)
    assert lease.read(ops.rt.table) == (None, 0), "the next pass is not blocked"
    assert ops.sync().outcome == "succeeded"
