"""The pure plan and health rules: one test per safety rule, with the reasons the contract names."""

from __future__ import annotations

import copy
from typing import Any

from synoscd.azure.translate import Target, app_envelope
from synoscd.engine.health import (
    DEGRADED,
    HEALTHY,
    PROGRESSING,
    Health,
    app_health,
    job_health,
    needs_revision,
)
from synoscd.engine.plan import (
    DesiredItem,
    LiveItem,
    Memory,
    PlanInput,
    backoff_seconds,
    body_hash,
    plan,
)
from synoscd.manifests.schema import App

TARGET = Target(
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/managedEnvironments/env",
    "East US",
    "o/r:apps",
    "rev1",
)
# The plan owns only resources in this environment, tagged with this source.
OURS = {"environment_id": TARGET.environment_id, "source": TARGET.source}
NOW = 1_000_000.0


def desired(name: str, image: str = "nginx:1", suspend: bool = False) -> DesiredItem:
    app = App.model_validate(
        {
            "apiVersion": "synoscd.io/v1alpha1",
            "kind": "App",
            "metadata": {"name": f"app-{name}"},  # the plan keys by DesiredItem.name
            "spec": {"containers": [{"name": "c", "image": image, "cpu": 0.25, "memory": "0.5Gi"}]},
        },
        strict=False,
    )
    return DesiredItem("App", name, app_envelope(app, TARGET), f"apps/{name}.yaml", 1, suspend=suspend)


def live_of(
    item: DesiredItem, managed: bool = True, state: str = "Succeeded", health: str = HEALTHY
) -> LiveItem:
    body = copy.deepcopy(dict(item.body))
    body["name"] = item.name
    body["properties"]["provisioningState"] = state
    if not managed:
        body["tags"] = {"owner": "someone-else"}
    return LiveItem(item.kind, item.name, body, Health(health, "" if health == HEALTHY else "bad"))


def run(items: list[DesiredItem], live: list[LiveItem], **kw: Any) -> dict[str, tuple[str, str]]:
    inp = PlanInput(
        **OURS,
        desired=tuple(items),
        complete=kw.pop("complete", True),
        live={x.key: x for x in live},
        now=NOW,
        **kw,
    )
    result = plan(inp, "rev1")
    return {a.name: (a.action, a.reason) for a in result.actions}


def test_missing_is_created_and_in_sync_is_noop() -> None:
    a, b = desired("a"), desired("b")
    assert run([a, b], [live_of(b)]) == {"a": ("create", "missing"), "b": ("noop", "in-sync")}


def test_drift_is_an_update_with_changes() -> None:
    item = desired("web", image="nginx:2")
    live = live_of(desired("web", image="nginx:1"))
    inp = PlanInput(**OURS, desired=(item,), complete=True, live={live.key: live}, now=NOW)
    action = plan(inp, "rev1").actions[0]
    assert (action.action, action.reason) == ("update", "drift")
    assert action.changes[0]["field"] == "template.containers[0].image"
    assert action.to_dict()["changes"][0] == {
        "field": "template.containers[0].image",
        "live": "nginx:1",
        "desired": "nginx:2",
    }


def test_unmanaged_name_clash_is_reported_never_written() -> None:
    item = desired("web", image="nginx:2")
    assert run([item], [live_of(item, managed=False)]) == {"web": ("skip", "unmanaged-conflict")}


def test_protected_and_suspended_are_never_written() -> None:
    a, b, c = desired("a", image="x:2"), desired("b", image="x:2"), desired("c", suspend=True)
    live = [live_of(desired("a")), live_of(desired("b")), live_of(desired("c"))]
    got = run([a, b, c], live, protected=frozenset({"a"}), suspended=frozenset({"b"}))
    assert got == {"a": ("skip", "protected"), "b": ("skip", "suspended"), "c": ("skip", "suspended")}


def test_in_progress_is_never_put_again() -> None:
    item = desired("web", image="nginx:2")
    assert run([item], [live_of(desired("web"), state="InProgress", health=PROGRESSING)]) == {
        "web": ("skip", "in-progress")
    }


def test_unhealthy_is_healed_with_backoff() -> None:
    item = desired("web")
    live = [live_of(item, health=DEGRADED)]
    assert run([item], live) == {"web": ("heal", "unhealthy")}
    waiting = {("App", "web"): Memory(attempts=2, next_retry_at=NOW + 60)}
    assert run([item], live, memory=waiting) == {"web": ("skip", "backoff")}
    due = {("App", "web"): Memory(attempts=2, next_retry_at=NOW - 1)}
    assert run([item], live, memory=due) == {"web": ("heal", "unhealthy")}


def test_a_failed_write_waits_unless_the_manifest_changed() -> None:
    item = desired("web", image="nginx:2")
    failed = {("App", "web"): Memory(attempts=1, next_retry_at=NOW + 60, failed_hash=body_hash(item.body))}
    assert run([item], [], memory=failed) == {"web": ("skip", "backoff")}
    changed = desired("web", image="nginx:3")
    assert run([changed], [], memory=failed) == {"web": ("create", "missing")}


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert backoff_seconds(20) == 3600


def test_prune_is_off_unless_enabled() -> None:
    stale = live_of(desired("old"))
    assert run([desired("a")], [stale]) == {"a": ("create", "missing"), "old": ("skip", "prune-disabled")}
    kept = [desired("a"), desired("b"), desired("c")]
    live = [stale, live_of(desired("b")), live_of(desired("c"))]
    assert run(kept, live, prune_enabled=True)["old"] == ("delete", "pruned")


def test_prune_only_touches_managed_resources() -> None:
    foreign = live_of(desired("foreign"), managed=False)
    assert "foreign" not in run([desired("a")], [foreign], prune_enabled=True)


OTHER_ENV = TARGET.environment_id.replace("/env", "/team-b-env")


def foreign(item: DesiredItem, env: str | None = None, source: str | None = "o/r:apps") -> LiveItem:
    """A live resource of another environment or another source (or made before the source tag)."""
    live = live_of(item)
    body = live.body
    body["properties"]["environmentId"] = env or TARGET.environment_id
    tags = {k: v for k, v in body["tags"].items() if k != "synoscd-source"}
    if source is not None:
        tags["synoscd-source"] = source
    body["tags"] = tags
    return live


def test_ours_means_managed_in_our_environment_from_our_source() -> None:
    ours = [live_of(desired(n)) for n in ("a", "b", "c")]
    other_env = foreign(desired("twin"), env=OTHER_ENV.upper())  # our source, another environment
    other_source = foreign(desired("theirs"), source="team-b/ops:apps")
    legacy = foreign(desired("legacy"), source=None)  # tagged managed before the source tag existed
    live = [*ours, other_env, other_source, legacy]
    got = run([desired(n) for n in ("a", "b", "c")], live, prune_enabled=True, force_prune=True)
    assert got == {n: ("noop", "in-sync") for n in ("a", "b", "c")}, "never pruned, not even listed"
    # A manifest naming them: a clash, never a write, with a message that says whose it is.
    inp = PlanInput(
        **OURS,
        desired=tuple(desired(n, image="x:9") for n in ("twin", "theirs", "legacy")),
        complete=True,
        live={x.key: x for x in live},
        now=NOW,
    )
    by_name = {a.name: a for a in plan(inp, "rev1").actions}
    assert (by_name["twin"].action, by_name["twin"].reason) == ("skip", "foreign-owner")
    assert "team-b-env" in by_name["twin"].message.lower()
    assert (by_name["theirs"].action, by_name["theirs"].reason) == ("skip", "foreign-owner")
    assert "team-b/ops:apps" in by_name["theirs"].message
    assert (by_name["legacy"].action, by_name["legacy"].reason) == ("skip", "unmanaged-conflict")
    assert "synos adopt legacy" in by_name["legacy"].message
    # Ids and sources compare case-insensitively: the same environment in ARM's casing is ours.
    same = foreign(desired("a"), env=TARGET.environment_id.lower())
    assert run([desired("a")], [same]) == {"a": ("noop", "in-sync")}
    recased = foreign(desired("a"), source="O/R:apps")  # ours; the tag value is rewritten as we write it
    assert run([desired("a")], [recased]) == {"a": ("update", "drift")}


def test_the_prune_fraction_counts_only_our_resources() -> None:
    live = [live_of(desired(n)) for n in ("a", "b", "old")]
    live += [foreign(desired(f"x{i}"), source="team-b/ops:apps") for i in range(10)]
    got = run([desired("a")], live, prune_enabled=True)
    assert got["old"] == ("skip", "prune-blocked"), "2 of our 3 is more than half, whatever others have"


def test_an_update_is_a_merge_patch_and_a_create_a_put() -> None:
    item = desired("web", image="nginx:2")
    live = live_of(desired("web", image="nginx:1"))
    live.body["properties"]["configuration"]["dapr"] = {"enabled": True, "appId": "web"}
    inp = PlanInput(**OURS, desired=(item, desired("new")), complete=True, live={live.key: live}, now=NOW)
    update, create = sorted(plan(inp, "rev1").actions, key=lambda a: a.name, reverse=True)
    assert (update.action, update.method) == ("update", "PATCH") and update.body is item.body
    assert update.request is not None and "dapr" not in str(update.request)
    assert update.request["properties"]["template"]["containers"][0]["image"] == "nginx:2"
    assert (create.action, create.method, create.request) == ("create", "PUT", None)


def test_prune_blocked_on_incomplete_or_empty_desired_set_and_above_the_fraction() -> None:
    live = [live_of(desired(n)) for n in ("a", "b", "c", "old")]
    keep = [desired(n) for n in ("a", "b", "c")]
    inp = dict(prune_enabled=True)
    assert run(keep, live, complete=False, **inp)["old"] == ("skip", "prune-blocked")
    assert run([], live, **inp) == {n: ("skip", "prune-blocked") for n in ("a", "b", "c", "old")}
    assert run([desired("a")], live, **inp)["old"] == ("skip", "prune-blocked"), "3 of 4 is more than half"
    assert run([desired("a")], live, force_prune=True, **inp)["old"] == ("delete", "pruned")
    assert run(keep, live, **inp)["old"] == ("delete", "pruned")


def test_protected_and_suspended_are_never_pruned() -> None:
    live = [live_of(desired(n)) for n in ("a", "b", "c", "keep", "held")]
    got = run(
        [desired(n) for n in ("a", "b", "c")],
        live,
        prune_enabled=True,
        protected=frozenset({"keep"}),
        suspended=frozenset({"held"}),
    )
    assert got["keep"] == ("skip", "protected") and got["held"] == ("skip", "suspended")


def test_actions_are_ordered_by_phase_wave_kind_and_bytewise_name() -> None:
    items = [desired(n) for n in ("web-2", "web", "web-10")]
    inp = PlanInput(**OURS, desired=tuple(items), complete=True, live={}, now=NOW)
    actions = plan(inp, "r").actions
    assert [a.name for a in actions] == ["web", "web-10", "web-2"]
    assert [a.order for a in actions] == [1, 2, 3]
    assert {(a.phase, a.wave) for a in actions} == {("Sync", 0)}


def test_plan_json_shape() -> None:
    inp = PlanInput(**OURS, desired=(desired("a"),), complete=True, live={}, now=NOW)
    doc = plan(inp, "abc").to_dict()
    assert doc == {
        "revision": "abc",
        "prune": {"enabled": False, "blocked": None},
        "actions": [
            {
                "order": 1,
                "kind": "App",
                "name": "a",
                "action": "create",
                "phase": "Sync",
                "wave": 0,
                "reason": "missing",
            }
        ],
    }


def test_only_one_app() -> None:
    assert run([desired("a"), desired("b")], [], only=("", "b")) == {"b": ("create", "missing")}


# -- health ------------------------------------------------------------------------------------------


def body(
    state: str = "Succeeded", latest: str = "w--1", ready: str | None = "w--1", running: str = "Running"
) -> dict:
    return {
        "properties": {
            "provisioningState": state,
            "runningStatus": running,
            "latestRevisionName": latest,
            "latestReadyRevisionName": ready,
        }
    }


def test_health_from_the_list_entry_alone_when_it_can() -> None:
    assert app_health(body()).status == HEALTHY and not needs_revision(body())
    assert app_health(body("InProgress")).status == PROGRESSING
    assert app_health(body("Failed")).status == DEGRADED
    assert app_health(body(running="Stopped")).status == DEGRADED


def test_health_reads_the_revision_only_when_latest_is_not_ready() -> None:
    troubled = body(latest="w--2", ready="w--1")
    assert needs_revision(troubled)
    failing = {
        "properties": {"provisioningState": "Failed", "runningState": "Failed", "healthState": "Unhealthy"}
    }
    health = app_health(troubled, failing)
    assert health.status == DEGRADED and "w--2" in health.message and "w--1 serves" in health.message
    starting = {"properties": {"provisioningState": "Provisioning", "runningState": "Processing"}}
    assert app_health(troubled, starting).status == PROGRESSING


def test_job_health() -> None:
    assert job_health({"properties": {"provisioningState": "Succeeded"}}).status == HEALTHY
    assert job_health({"properties": {"provisioningState": "InProgress"}}).status == PROGRESSING
    assert job_health({"properties": {"provisioningState": "Canceled"}}).status == DEGRADED
