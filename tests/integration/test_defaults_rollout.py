"""A change of a Project's defaults on the local stack (Azurite, the ARM stand-in, `run_pass`
unpatched): with four apps (two hand-written, two synthesized) it rolls one app at a time with the
cooldown (`rollout-cooldown`, set small here); a crashing image default (the ARM stand-in's crashing
images) stops it after the first app with the reason in `synos get rollouts` and the apps' status;
`rollout resume` continues; a new commit clears the stop; a change that touches one app applies at
once; an app whose own manifest changed in the same commit is not held back."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from synoscd.cli.synth import rollouts_doc
from synoscd.engine.reconcile import PassResult
from synoscd.synth import rollout
from synoscd.synth import state as synth_state
from tests.conftest import LaunchedStack
from tests.integration.test_synth import SYNTHESIZERS, SynthOps, composition, file_input, synthesizer

pytestmark = pytest.mark.integration

COOLDOWN = 1.0
HAND = ["a1", "a2"]
SYNTHESIZED = ["cc-x", "cc-y"]  # the composition `cc` makes one app per entry of its input
APPS = HAND + SYNTHESIZED


def project(defaults: str, apps: list[str] = APPS) -> str:
    return (
        "apiVersion: synoscd.io/v1alpha1\nkind: Project\nmetadata:\n  name: shop\nspec:\n"
        f"  apps: [{', '.join(apps)}]\n  defaults:\n{defaults}"
    )


def tier(value: str) -> str:
    return f'    environment:\n      - name: TIER\n        value: "{value}"\n'


def image_default(image: str) -> str:
    return f"    containers:\n      - name: web\n        image: {image}\n"


def app(name: str, image: str | None = "nginx:1", extra: str = "") -> str:
    image_line = f"      image: {image}\n" if image else ""
    return (
        f"apiVersion: synoscd.io/v1alpha1\nkind: App\nmetadata:\n  name: {name}\nspec:\n"
        f"  containers:\n    - name: web\n{image_line}      cpu: 0.25\n      memory: 0.5Gi\n{extra}"
    )


@pytest.fixture
def dops(fresh_stack: LaunchedStack, tmp_path: Path) -> Iterator[SynthOps]:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.05})
    o = SynthOps(fresh_stack, tmp_path / "ops")
    o.allow(rollout_cooldown_seconds=COOLDOWN)
    yield o
    o.rt.table.delete_table()


def env(o: SynthOps, name: str) -> dict[str, str]:
    live = o.live(name)
    assert live is not None, f"{name} is not in Azure"
    container = live["body"]["properties"]["template"]["containers"][0]
    return {e["name"]: e.get("value") for e in container.get("env") or []}


def image(o: SynthOps, name: str) -> str:
    live = o.live(name)
    assert live is not None, f"{name} is not in Azure"
    return str(live["body"]["properties"]["template"]["containers"][0]["image"])


def projects_rollout(o: SynthOps) -> synth_state.RolloutState:
    return synth_state.load(o.rt.table).projects_rollout


def held(result: PassResult) -> list[str]:
    assert result.plan is not None
    return sorted(a.name for a in result.plan.actions if a.reason == "rollout-pending")


def updated(result: PassResult) -> list[str]:
    return sorted(o.action.name for o in result.outcomes if o.action.action == "update")


def four_apps(
    o: SynthOps, defaults: str, hand: dict[str, str] | None = None, listed: list[str] | None = None
) -> None:
    """Hand-written apps (a1, a2 unless given), the composition `cc` making cc-x and cc-y, and the
    project `shop` listing them all (or `listed`), synced."""
    o.put("synth/fleet.py", (SYNTHESIZERS / "fleet.py").read_bytes())
    o.write("fleet-synth", synthesizer(command='["python3", "synth/fleet.py", "1"]'))
    o.put("inputs/cc.json", json.dumps({"apps": ["x", "y"]}))
    o.write("cc", composition("cc", file_input("fleet", "inputs/cc.json")))
    hand = hand or {name: app(name) for name in HAND}
    for name, text in hand.items():
        o.write(name, text)
    o.write("shop", project(defaults, listed or [*hand, *SYNTHESIZED]))
    first = o.sync()
    assert first.outcome == "succeeded", json.dumps(first.to_dict())[:3000]
    assert held(first) == []


def test_a_defaults_change_rolls_one_app_at_a_time_with_the_cooldown(dops: SynthOps) -> None:
    four_apps(dops, tier("1"))
    assert all(env(dops, name) == {"TIER": "1"} for name in APPS)

    dops.write("shop", project(tier("2")))
    steps: list[tuple[str, float]] = []
    deadline = time.monotonic() + 60
    while len(steps) < len(APPS) and time.monotonic() < deadline:
        result = dops.sync()
        state = projects_rollout(dops)
        took = updated(result)
        assert len(took) <= 1, took  # never more than one app per pass
        if took:
            assert state.last_step == took[0] and state.last_step_at is not None
            steps.append((took[0], state.last_step_at))
        done = {name for name, _ in steps}
        # The others keep the defaults in force meanwhile, and the pass says it is not done.
        for name in APPS:
            assert env(dops, name) == {"TIER": "2" if name in done else "1"}, name
        assert held(result) == sorted(set(APPS) - done)
        assert result.outcome == ("partial" if held(result) else "succeeded"), result.to_dict()
        time.sleep(0.2)
    assert [name for name, _ in steps] == APPS, steps  # hand-written and synthesized alike, by name
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(steps)]
    assert min(gaps) >= COOLDOWN, gaps

    state = projects_rollout(dops)
    assert state.status == "Idle" and state.pending == [] and state.last_step == "cc-y"
    record = synth_state.load(dops.rt.table).projects["shop"]
    assert record.target is None and record.defaults == {"environment": [{"name": "TIER", "value": "2"}]}
    dops.stack.admin("arm", "DELETE", "calls")
    again = dops.sync()
    assert again.outcome == "succeeded" and dops.writes() == [] and held(again) == []


CRASHING = ["a1", "a2", "a3", "a4"]


def crashing_four(o: SynthOps) -> None:
    """Four apps whose image is the project's default (the synthesized ones set theirs: untouched);
    the default becomes a crashing image. Returns once the rollout stopped."""
    four_apps(o, image_default("nginx:1"), {name: app(name, image=None) for name in CRASHING})
    o.stack.admin("arm", "POST", "crashing-images", {"image": "nginx:bad"})
    o.write("shop", project(image_default("nginx:bad"), [*CRASHING, *SYNTHESIZED]))
    first = o.sync()
    assert updated(first) == ["a1"] and held(first) == ["a2", "a3", "a4"], first.to_dict()
    assert image(o, "a1") == "nginx:bad"
    deadline = time.monotonic() + 30
    while projects_rollout(o).status != "Stopped" and time.monotonic() < deadline:
        result = o.sync()
        assert held(result) == ["a2", "a3", "a4"]
        time.sleep(0.3)


def test_a_crashing_image_default_stops_the_rollout_until_resumed(dops: SynthOps) -> None:
    crashing_four(dops)
    state = projects_rollout(dops)
    assert state.status == "Stopped", state
    assert state.reason.startswith("stopped: App/a1 of project shop's defaults rollout is unhealthy"), state
    assert state.pending == ["a2", "a3", "a4"]
    # `synos get rollouts` shows it (the same document), and each waiting app's status says why.
    shown = {r["name"]: r for r in rollouts_doc(synth_state.load(dops.rt.table))["rollouts"]}
    assert shown["projects"]["status"] == "Stopped" and "App/a1" in shown["projects"]["reason"]
    assert shown["compositions"]["status"] == "Idle"
    status = dops.status("a2")
    assert status.sync_state == "OutOfSync" and "the rollout is stopped: App/a1" in status.message
    time.sleep(COOLDOWN + 0.2)
    stays = dops.sync()
    assert updated(stays) == [] and image(dops, "a2") == "nginx:1"  # stopped, cooldown or not
    assert held(stays) == ["a2", "a3", "a4"]  # (the pass failed: a1's sync failed, crashing)

    synth_state.update_rollout(
        dops.rt.table, lambda s: rollout.resumed(s, "test"), synth_state.PROJECTS_ROLLOUT_RK
    )
    resumed = dops.sync()
    assert updated(resumed) == ["a2"] and image(dops, "a2") == "nginx:bad"
    assert held(resumed) == ["a3", "a4"]


def test_a_new_commit_clears_the_stop(dops: SynthOps) -> None:
    crashing_four(dops)
    assert projects_rollout(dops).status == "Stopped"
    # The fix: a good image; the rollout starts over from the defaults in force, the broken app first,
    # at once.
    dops.write("shop", project(image_default("nginx:3"), [*CRASHING, *SYNTHESIZED]))
    fix = dops.sync()
    assert updated(fix) == ["a1"] and image(dops, "a1") == "nginx:3"
    assert held(fix) == ["a2", "a3", "a4"] and image(dops, "a2") == "nginx:1"
    assert projects_rollout(dops).status == "Progressing"


def test_a_change_touching_one_app_applies_at_once(dops: SynthOps) -> None:
    own_tier = '  environment:\n    - name: TIER\n      value: "own"\n'
    listed = ["a1", "a2", "a3"]
    hand = {"a1": app("a1"), "a2": app("a2", extra=own_tier), "a3": app("a3", extra=own_tier)}
    four_apps(dops, tier("1"), hand, listed)
    dops.write("shop", project(tier("2"), listed))  # a2 and a3 set TIER themselves: touches a1 alone
    result = dops.sync()
    assert updated(result) == ["a1"] and held(result) == [] and result.outcome == "succeeded"
    assert env(dops, "a1") == {"TIER": "2"} and env(dops, "a2") == {"TIER": "own"}
    assert projects_rollout(dops).status == "Idle"


def test_an_app_whose_own_manifest_changed_takes_the_new_defaults_at_once(dops: SynthOps) -> None:
    four_apps(dops, tier("1"))
    dops.write("shop", project(tier("2")))
    dops.write("a2", app("a2", image="nginx:2"))  # its own change in the same commit
    result = dops.sync()
    assert updated(result) == ["a1", "a2"] and held(result) == SYNTHESIZED, result.to_dict()
    assert image(dops, "a2") == "nginx:2" and env(dops, "a2") == {"TIER": "2"}


def test_pause_holds_the_defaults_rollout(dops: SynthOps) -> None:
    four_apps(dops, tier("1"))
    synth_state.update_rollout(
        dops.rt.table, lambda s: rollout.paused(s, "test"), synth_state.PROJECTS_ROLLOUT_RK
    )
    dops.write("shop", project(tier("2")))
    result = dops.sync()
    assert updated(result) == [] and held(result) == APPS
    assert projects_rollout(dops).status == "Paused"
    synth_state.update_rollout(
        dops.rt.table, lambda s: rollout.resumed(s, "test"), synth_state.PROJECTS_ROLLOUT_RK
    )
    assert updated(dops.sync()) == ["a1"]
