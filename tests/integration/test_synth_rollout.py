"""Deferred, health-gated rollouts on the local stack: a change of a synthesizer used by five
compositions rolls them one at a time with the cooldown (`rollout-cooldown`, set small here); an app
that becomes unhealthy (the ARM stand-in's crashing images) stops the rollout; `rollout resume`
continues it; a composition's own change is not deferred."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from synoscd.synth import rollout
from synoscd.synth import state as synth_state
from tests.conftest import LaunchedStack
from tests.integration.test_synth import SYNTHESIZERS, SynthOps, composition, file_input, synthesizer

pytestmark = pytest.mark.integration

COOLDOWN = 1.0
NAMES = ["c1", "c2", "c3", "c4", "c5"]


@pytest.fixture
def rops(fresh_stack: LaunchedStack, tmp_path: Path) -> Iterator[SynthOps]:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.05})
    o = SynthOps(fresh_stack, tmp_path / "ops")
    o.put("synth/fleet.py", (SYNTHESIZERS / "fleet.py").read_bytes())
    o.allow(rollout_cooldown_seconds=COOLDOWN)
    o.write("fleet-synth", synthesizer(command='["python3", "synth/fleet.py", "1"]'))
    for name in NAMES:
        o.put(f"inputs/{name}.json", json.dumps({"apps": ["a"]}))
        o.write(name, composition(name, file_input("fleet", f"inputs/{name}.json")))
    first = o.sync()
    assert first.synthesis is not None and sorted(first.synthesis["ran"]) == NAMES  # first syntheses: at once
    yield o
    o.rt.table.delete_table()


def image(o: SynthOps, app: str) -> str:
    live = o.live(app)
    assert live is not None
    return str(live["body"]["properties"]["template"]["containers"][0]["image"])


def ran(o: SynthOps) -> list[str]:
    result = o.sync()
    assert result.synthesis is not None
    return list(result.synthesis["ran"])


def rollout_state(o: SynthOps) -> synth_state.RolloutState:
    return synth_state.load(o.rt.table).rollout


def test_a_synthesizer_change_rolls_one_composition_at_a_time(rops: SynthOps) -> None:
    rops.write("fleet-synth", synthesizer(command='["python3", "synth/fleet.py", "2"]'))
    order: list[tuple[str, float]] = []
    deadline = time.monotonic() + 60
    while len(order) < len(NAMES) and time.monotonic() < deadline:
        for name in ran(rops):
            step = rollout_state(rops)
            assert step.last_step == name and step.last_step_at is not None
            order.append((name, step.last_step_at))
        # Never more than one step per pass, and the rest keep their output in force meanwhile.
        done = {n for n, _ in order}
        for name in NAMES:
            assert image(rops, f"{name}-a") == ("nginx:2" if name in done else "nginx:1")
        time.sleep(0.2)
    assert [n for n, _ in order] == NAMES, order
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(order)]
    assert min(gaps) >= COOLDOWN, gaps
    state = rollout_state(rops)
    assert state.status == "Idle" and state.pending == [] and state.last_step == "c5"
    assert rops.compositions()["c3"].status == "Ready"

    # A composition's own change is not deferred.
    rops.put("inputs/c2.json", json.dumps({"apps": ["a", "b"]}))
    assert ran(rops) == ["c2"]


def test_an_unhealthy_app_stops_the_rollout_until_resumed(rops: SynthOps) -> None:
    rops.stack.admin("arm", "POST", "crashing-images", {"image": "nginx:bad"})
    rops.write("fleet-synth", synthesizer(command='["python3", "synth/fleet.py", "bad"]'))
    assert ran(rops) == ["c1"]
    deadline = time.monotonic() + 30
    while rollout_state(rops).status != "Stopped" and time.monotonic() < deadline:
        assert ran(rops) == []
        time.sleep(0.3)
    state = rollout_state(rops)
    assert state.status == "Stopped", state
    assert "App/c1-a of composition c1 is unhealthy" in state.reason
    assert state.pending == ["c2", "c3", "c4", "c5"]
    assert rops.compositions()["c2"].status == "Pending"
    assert "stopped" in rops.compositions()["c2"].message
    time.sleep(COOLDOWN + 0.2)
    assert ran(rops) == [] and image(rops, "c2-a") == "nginx:1"  # stays stopped, cooldown or not

    synth_state.update_rollout(rops.rt.table, lambda s: rollout.resumed(s, "test"))
    assert ran(rops) == ["c2"]
    assert image(rops, "c2-a") == "nginx:bad"


def test_a_new_commit_clears_a_stop(rops: SynthOps) -> None:
    rops.stack.admin("arm", "POST", "crashing-images", {"image": "nginx:bad"})
    rops.write("fleet-synth", synthesizer(command='["python3", "synth/fleet.py", "bad"]'))
    assert ran(rops) == ["c1"]
    deadline = time.monotonic() + 30
    while rollout_state(rops).status != "Stopped" and time.monotonic() < deadline:
        ran(rops)
        time.sleep(0.3)
    assert rollout_state(rops).status == "Stopped"
    # The fix: a new synthesizer; the broken composition goes first.
    rops.write("fleet-synth", synthesizer(command='["python3", "synth/fleet.py", "3"]'))
    assert ran(rops) == ["c1"]
    assert image(rops, "c1-a") == "nginx:3"


def test_pause_holds_the_rollout(rops: SynthOps) -> None:
    synth_state.update_rollout(rops.rt.table, lambda s: rollout.paused(s, "test"))
    rops.write("fleet-synth", synthesizer(command='["python3", "synth/fleet.py", "2"]'))
    assert ran(rops) == []
    assert rollout_state(rops).status == "Paused"
    synth_state.update_rollout(rops.rt.table, lambda s: rollout.resumed(s, "test"))
    assert ran(rops) == ["c1"]
