"""Order of work: phases, waves, kinds, byte-wise names, hooks, Skip, prune-wave mirroring and
PruneLast — Argo CD's gitops-engine semantics on ACA."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from synoscd.azure.translate import Target, app_envelope, job_envelope, sync_tags
from synoscd.engine.health import HEALTHY, Health
from synoscd.engine.plan import DesiredItem, LiveItem, PlanInput, plan
from synoscd.manifests.schema import App, Job
from synoscd.manifests.syncspec import parse_wave, sync_spec

TARGET = Target(
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/managedEnvironments/env",
    "East US",
    "o/r:apps",
    "rev",
)
# The plan owns only resources in this environment, tagged with this source.
OURS = {"environment_id": TARGET.environment_id, "source": TARGET.source}


def item(name: str, kind: str = "App", **annotations: str) -> DesiredItem:
    spec_doc: dict[str, Any] = {"containers": [{"name": "c", "image": "x:1", "cpu": 0.25, "memory": "0.5Gi"}]}
    if kind == "Job":
        spec_doc["replicaTimeout"] = 60
    doc = {
        "apiVersion": "synoscd.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "placeholder", "annotations": annotations},
        "spec": spec_doc,
    }
    manifest = (App if kind == "App" else Job).model_validate(doc, strict=False)
    spec = sync_spec(annotations)
    tags = sync_tags(spec.wave if spec.wave_set else None, spec.options, spec.hook_phases)
    body = (
        app_envelope(manifest, TARGET, None, tags)
        if kind == "App"
        else job_envelope(manifest, TARGET, None, tags, manual=spec.is_hook)
    )  # type: ignore[arg-type]
    return DesiredItem(kind, name, body, wave=spec.wave, hooks=spec.hooks, policies=spec.delete_policies)


def live(d: DesiredItem) -> LiveItem:
    body = copy.deepcopy(dict(d.body))
    body["name"] = d.name
    body["properties"]["provisioningState"] = "Succeeded"
    return LiveItem(d.kind, d.name, body, Health(HEALTHY))


def order(items: list[DesiredItem], lives: list[LiveItem] | None = None, **kw: Any) -> list[tuple[str, ...]]:
    inp = PlanInput(
        **OURS,
        desired=tuple(items),
        complete=True,
        live={x.key: x for x in lives or []},
        now=0.0,
        prune_enabled=kw.pop("prune_enabled", True),
        force_prune=True,
        **kw,
    )
    return [(a.phase, str(a.wave), a.kind, a.name, a.action) for a in plan(inp, "rev").actions]


@pytest.mark.parametrize(
    "text,wave",
    [
        ("5", 5),
        ("-3", -3),
        ("+2", 2),
        ("0", 0),
        (" 1", 0),
        ("1 ", 0),
        ("1.5", 0),
        ("1_0", 0),
        ("\u0663", 0),
        ("", 0),
        (None, 0),
        ("x", 0),
        ("--1", 0),
    ],
)
def test_wave_is_parsed_strictly(text: str | None, wave: int) -> None:
    assert parse_wave(text) == wave


def test_negative_waves_go_first() -> None:
    got = order(
        [
            item("web"),
            item("db", **{"synoscd.io/sync-wave": "-1"}),
            item("edge", **{"synoscd.io/sync-wave": "2"}),
        ]
    )
    assert [(w, n) for _, w, _, n, _ in got] == [("-1", "db"), ("0", "web"), ("2", "edge")]


def test_names_compare_byte_by_byte() -> None:
    got = order([item("web-2"), item("web-10"), item("web"), item("Web")])
    assert [n for *_, n, _ in got] == ["Web", "web", "web-10", "web-2"]


def test_apps_before_jobs_in_a_wave() -> None:
    got = order([item("aaa", kind="Job"), item("zzz")])
    assert [(k, n) for _, _, k, n, _ in got] == [("App", "zzz"), ("Job", "aaa")]


def test_phases_order_presync_sync_postsync_syncfail() -> None:
    got = order(
        [
            item("notify", kind="Job", **{"synoscd.io/hook": "PostSync"}),
            item("web"),
            item("cleanup", kind="Job", **{"synoscd.io/hook": "SyncFail"}),
            item("migrate", kind="Job", **{"synoscd.io/hook": "PreSync"}),
            item("smoke", kind="Job", **{"synoscd.io/hook": "Sync"}),
        ]
    )
    assert [(p, n, a) for p, _, _, n, a in got] == [
        ("PreSync", "migrate", "run-hook"),
        ("Sync", "web", "create"),
        ("Sync", "smoke", "run-hook"),
        ("PostSync", "notify", "run-hook"),
        ("SyncFail", "cleanup", "run-hook"),
    ]


def test_a_hook_in_several_phases_gets_one_task_each() -> None:
    got = order([item("check", kind="Job", **{"synoscd.io/hook": "PreSync,PostSync"})])
    assert [(p, a) for p, _, _, _, a in got] == [("PreSync", "run-hook"), ("PostSync", "run-hook")]


def test_hook_waves_order_within_a_phase() -> None:
    got = order(
        [
            item("b", kind="Job", **{"synoscd.io/hook": "PreSync", "synoscd.io/sync-wave": "1"}),
            item("a", kind="Job", **{"synoscd.io/hook": "PreSync", "synoscd.io/sync-wave": "-1"}),
        ]
    )
    assert [n for *_, n, _ in got] == ["a", "b"]


def test_skip_alone_is_neither_applied_nor_pruned() -> None:
    skipped = item("legacy", kind="Job", **{"synoscd.io/hook": "Skip"})
    got = order([skipped], [live(item("legacy", kind="Job"))])
    assert got == [("Sync", "0", "Job", "legacy", "skip")]


def test_hooks_are_never_pruned() -> None:
    old_hook = live(item("migrate", kind="Job", **{"synoscd.io/hook": "PreSync"}))
    assert order([item("web")], [old_hook, live(item("web"))]) == [("Sync", "0", "App", "web", "noop")]


def test_hook_done_in_this_operation_is_not_run_again() -> None:
    hook = item("migrate", kind="Job", **{"synoscd.io/hook": "PreSync"})
    assert order([hook], done=frozenset({"PreSync/Job/migrate"})) == [
        ("PreSync", "0", "Job", "migrate", "noop")
    ]


def test_prune_waves_are_mirrored() -> None:
    gone = [
        live(item(n, **{"synoscd.io/sync-wave": w}))
        for n, w in (("first", "-1"), ("mid", "0"), ("last", "3"))
    ]
    got = order([item("keep")], [*gone, live(item("keep"))], max_prune_fraction=1.0)
    deletes = {n: w for _, w, _, n, a in got if a == "delete"}
    assert deletes == {"first": "3", "mid": "0", "last": "-1"}, "created first, deleted last"
    assert [n for *_, n, a in got if a == "delete"] == ["last", "mid", "first"]


def test_prune_last_runs_in_one_extra_wave_after_everything() -> None:
    gone = live(item("old", **{"synoscd.io/sync-options": "PruneLast=true"}))
    got = order([item("web", **{"synoscd.io/sync-wave": "4"})], [gone])
    assert got[-1] == ("Sync", "5", "App", "old", "delete")
    sync_wide = order([item("web", **{"synoscd.io/sync-wave": "2"})], [live(item("old"))], prune_last=True)
    assert sync_wide[-1] == ("Sync", "3", "App", "old", "delete")


def test_prune_false_is_never_deleted() -> None:
    gone = live(item("keepme", **{"synoscd.io/sync-options": "Prune=false"}))
    inp = PlanInput(
        **OURS,
        desired=(item("web"),),
        complete=True,
        live={gone.key: gone},
        now=0.0,
        prune_enabled=True,
        force_prune=True,
    )
    action = next(a for a in plan(inp, "r").actions if a.name == "keepme")
    assert (action.action, action.reason) == ("skip", "prune-disabled")


def test_sync_tags_only_when_set_and_hooks_are_manual() -> None:
    plain = item("web")
    assert set(plain.body["tags"]) == {"synoscd-managed", "synoscd-source", "synoscd-revision"}
    waved = item(
        "web", **{"synoscd.io/sync-wave": "0", "synoscd.io/sync-options": "Prune=false,PruneLast=true"}
    )
    assert waved.body["tags"]["synoscd-sync-wave"] == "0"
    assert waved.body["tags"]["synoscd-sync-options"] == "Prune=false,PruneLast=true"
    hook = item("migrate", kind="Job", **{"synoscd.io/hook": "PreSync,PostSync"})
    assert hook.body["properties"]["configuration"]["triggerType"] == "Manual"
    assert hook.body["tags"]["synoscd-hook"] == "PreSync,PostSync"


def test_delete_policy_defaults_to_before_hook_creation() -> None:
    assert sync_spec({}).delete_policies == frozenset({"BeforeHookCreation"})
    assert sync_spec(
        {"synoscd.io/hook-delete-policy": "HookSucceeded, HookFailed"}
    ).delete_policies == frozenset({"HookSucceeded", "HookFailed"})
    assert sync_spec({"synoscd.io/hook": "PreSync, Bogus"}).hooks == ("PreSync",)


def test_mixed_kinds_waves_and_phases_in_full() -> None:
    got = order(
        [
            item("frontend", **{"synoscd.io/sync-wave": "1"}),
            item("backend"),
            item("seed", kind="Job", **{"synoscd.io/sync-wave": "1"}),
            item("migrate", kind="Job", **{"synoscd.io/hook": "PreSync", "synoscd.io/sync-wave": "-5"}),
            item("db", **{"synoscd.io/sync-wave": "-1"}),
        ]
    )
    assert [(p, w, k, n) for p, w, k, n, _ in got] == [
        ("PreSync", "-5", "Job", "migrate"),
        ("Sync", "-1", "App", "db"),
        ("Sync", "0", "App", "backend"),
        ("Sync", "1", "App", "frontend"),
        ("Sync", "1", "Job", "seed"),
    ]
