"""Synthesizers on the local stack (Azurite, the ARM stand-in) with `run_pass` unpatched: the KRM
protocol against synthesizers that use neither SynosCD's helper nor its code (a plain Python script
and a shell script), malformed answers, caching, revision synchronisation, ownership and prune."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synoscd.state import runtime
from synoscd.synth import state as synth_state
from tests.conftest import FIXTURES, LaunchedStack
from tests.integration.test_reconcile import Ops

pytestmark = pytest.mark.integration

SYNTHESIZERS = FIXTURES / "synthesizers"


def synthesizer(
    name: str = "fleet", command: str = '["python3", "synth/fleet.py"]', timeout: int = 10
) -> str:
    return (
        "apiVersion: synoscd.io/v1alpha1\nkind: Synthesizer\n"
        f"metadata:\n  name: {name}\nspec:\n  command: {command}\n  timeoutSeconds: {timeout}\n"
    )


def composition(name: str, inputs: str, synth: str = "fleet", annotations: str = "") -> str:
    meta = f"metadata:\n  name: {name}\n" + (f"  annotations:\n{annotations}" if annotations else "")
    return (
        f"apiVersion: synoscd.io/v1alpha1\nkind: Composition\n{meta}"
        f"spec:\n  synthesizer: {synth}\n  inputs:\n{inputs}"
    )


def file_input(key: str, path: str, defer: bool = False) -> str:
    return f"    - key: {key}\n      file: {path}\n" + ("      defer: true\n" if defer else "")


class SynthOps(Ops):
    def put(self, rel: str, text: str | bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode() if isinstance(text, str) else text)

    def fleet(self, apps: list[str], path: str = "inputs/fleet.json", **extra: Any) -> None:
        self.put(path, json.dumps({"apps": apps, **extra}))

    def allow(self, **changes: Any) -> None:
        runtime.save(self.rt.table, {"allow_exec_synthesizers": True, **changes}, "test")

    def compositions(self) -> dict[str, synth_state.CompositionState]:
        return synth_state.load(self.rt.table).compositions

    def tags(self, name: str) -> dict[str, str]:
        live = self.live(name)
        assert live is not None, f"{name} is not in Azure"
        return dict(live["body"].get("tags") or {})


@pytest.fixture
def sops(fresh_stack: LaunchedStack, tmp_path: Path) -> Iterator[SynthOps]:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.05})
    o = SynthOps(fresh_stack, tmp_path / "ops")
    o.put("synth/fleet.py", (SYNTHESIZERS / "fleet.py").read_bytes())
    shutil.copy(SYNTHESIZERS / "error.sh", o.root / "synth" / "error.sh")
    yield o
    o.rt.table.delete_table()


def test_a_plain_python_synthesizer_generates_apps_once(sops: SynthOps) -> None:
    sops.allow()
    sops.write("fleet-synth", synthesizer())
    sops.write("web", composition("web", file_input("fleet", "inputs/fleet.json")))
    sops.fleet(["a", "b", "c"])

    first = sops.sync()
    assert first.synthesis is not None and first.synthesis["ran"] == ["web"], first.to_dict()
    assert first.outcome == "succeeded", first.to_dict()
    assert sorted(w for w in sops.writes() if w.startswith("PUT")) == ["PUT web-a", "PUT web-b", "PUT web-c"]
    assert sops.tags("web-a")["synoscd-composition"] == "web"
    state = sops.compositions()["web"]
    assert state.status == "Ready" and state.apps == ["App/web-a", "App/web-b", "App/web-c"]

    # Nothing it depends on changed: no synthesizer runs, nothing is written.
    sops.stack.admin("arm", "DELETE", "calls")
    again = sops.sync()
    assert again.synthesis is not None and again.synthesis["ran"] == []
    assert sops.writes() == [] and again.outcome == "succeeded"

    # A changed input re-synthesises; an app left out of the output is pruned (it is ours).
    runtime.save(sops.rt.table, {"prune_enabled": True}, "test")
    sops.fleet(["a", "b"])
    third = sops.sync()
    assert third.synthesis is not None and third.synthesis["ran"] == ["web"]
    assert "DELETE web-c" in sops.writes()
    assert sops.live("web-c") is None


def test_exec_is_off_unless_the_operators_allow_it(sops: SynthOps) -> None:
    sops.write("fleet-synth", synthesizer())
    sops.write("web", composition("web", file_input("fleet", "inputs/fleet.json")))
    sops.fleet(["a"])
    result = sops.sync()
    state = sops.compositions()["web"]
    assert state.status == "Failed" and "--allow-exec-synthesizers" in state.message
    assert result.outcome == "partial" and sops.live("web-a") is None
    assert any("allow-exec-synthesizers" in e["message"] for e in result.errors)


MALFORMED = {
    "error": "replicas must be a positive integer",
    "notjson": "output is not JSON",
    "wrongkind": "output kind is 'ConfigMap', expected ResourceList",
    "large": "output is larger than",
    "sleep": "timed out after 2 s",
    "crash": "exited with code 3: boom: the template is broken",
    "badapp": "output App bad-a: spec.containers[0].cpu",
}


@pytest.mark.parametrize("mode", sorted(MALFORMED))
def test_a_failed_synthesis_keeps_the_last_good_output_and_prunes_nothing(sops: SynthOps, mode: str) -> None:
    sops.allow(prune_enabled=True)
    sops.write("fleet-synth", synthesizer(timeout=2))
    sops.write("bad", composition("bad", file_input("fleet", "inputs/fleet.json")))
    sops.fleet(["a", "b"])
    assert sops.sync().outcome == "succeeded"
    assert sops.live("bad-a") and sops.live("bad-b")

    sops.fleet(["a"], mode=mode)  # also drops b: a good output would prune it
    sops.stack.admin("arm", "DELETE", "calls")
    result = sops.sync()
    state = sops.compositions()["bad"]
    assert state.status == "Failed", state
    assert MALFORMED[mode] in state.message, state.message
    assert "the last good output stays in force" in state.message
    assert sops.writes() == [], "a failed synthesis must write and delete nothing"
    assert result.outcome == "partial"
    assert result.plan is not None and result.plan.prune_blocked is None  # nothing to prune: b is desired
    assert sops.live("bad-b") is not None
    assert any(MALFORMED[mode] in e["message"] for e in result.errors)

    # The same failing input is not run again on every pass; a fix is.
    again = sops.sync()
    assert again.synthesis is not None and again.synthesis["ran"] == []
    sops.fleet(["a"])
    fixed = sops.sync()
    assert fixed.synthesis is not None and fixed.synthesis["ran"] == ["bad"]
    assert sops.compositions()["bad"].status == "Ready" and sops.live("bad-b") is None


def test_warnings_and_infos_do_not_fail_a_synthesis(sops: SynthOps) -> None:
    sops.allow()
    sops.write("fleet-synth", synthesizer())
    sops.write("web", composition("web", file_input("fleet", "inputs/fleet.json")))
    sops.fleet(["a"], mode="warning")
    assert sops.sync().outcome == "succeeded"
    state = sops.compositions()["web"]
    assert state.status == "Ready" and state.warnings == ["tag 'latest' is discouraged"]


def test_a_shell_synthesizer_error_result_is_the_status(sops: SynthOps) -> None:
    sops.allow()
    sops.write("shell-synth", synthesizer("shell", '["sh", "synth/error.sh"]'))
    sops.write("web", composition("web", file_input("fleet", "inputs/fleet.json"), synth="shell"))
    sops.fleet(["a"])
    result = sops.sync()
    state = sops.compositions()["web"]
    assert state.status == "Failed" and state.message.startswith("shell synthesizer says no (App x)")
    assert result.outcome == "partial"


def test_synthesis_waits_while_input_revisions_disagree(sops: SynthOps) -> None:
    sops.allow()

    def krm_input(path: str, revision: str, apps: list[str] | None = None) -> None:
        doc = {
            "apiVersion": "example.com/v1",
            "kind": "FleetConfig",
            "metadata": {"name": path, "annotations": {"synoscd.io/revision": revision}},
            "spec": {"apps": apps or []},
        }
        sops.put(path, json.dumps(doc))

    sops.write("fleet-synth", synthesizer())
    sops.write(
        "web",
        composition(
            "web", file_input("fleet", "inputs/fleet.json") + file_input("images", "inputs/images.json")
        ),
    )
    krm_input("inputs/fleet.json", "41", ["a"])
    krm_input("inputs/images.json", "41")
    assert sops.sync().synthesis["ran"] == ["web"]  # type: ignore[index]

    krm_input("inputs/fleet.json", "42", ["a", "b"])  # one input moved on, the other not yet
    waiting = sops.sync()
    assert waiting.synthesis is not None and waiting.synthesis["ran"] == []
    state = sops.compositions()["web"]
    assert state.status == "Waiting" and "fleet=42, images=41" in state.message
    assert state.revisions == {"fleet": "42", "images": "41"}
    assert sops.live("web-b") is None and sops.live("web-a") is not None
    assert waiting.outcome == "succeeded"  # a wait is no error: the last output stays in force

    krm_input("inputs/images.json", "42")
    agreed = sops.sync()
    assert agreed.synthesis is not None and agreed.synthesis["ran"] == ["web"]
    assert sops.live("web-b") is not None and sops.compositions()["web"].status == "Ready"


def test_two_compositions_making_one_app_is_an_error_for_both(sops: SynthOps) -> None:
    sops.allow(prune_enabled=True)
    sops.write("fleet-synth", synthesizer())
    sops.put("inputs/one.json", json.dumps({"apps": ["x"]}))
    sops.put("inputs/two.json", json.dumps({"apps": ["y"]}))
    cfg = "  config:\n    prefix: shared\n"
    sops.write("one", composition("one", file_input("fleet", "inputs/one.json")) + cfg)
    sops.write("two", composition("two", file_input("fleet", "inputs/two.json")) + cfg)
    assert sops.sync().outcome == "succeeded"
    assert sops.tags("shared-x")["synoscd-composition"] == "one"

    sops.put("inputs/two.json", json.dumps({"apps": ["x", "y"]}))  # two now also makes shared-x
    result = sops.sync()
    comps = sops.compositions()
    for name in ("one", "two"):
        assert comps[name].status == "Invalid", comps[name]
        assert "App 'shared-x' is also defined at composition:" in comps[name].message
    assert result.outcome == "partial" and sops.writes().count("DELETE shared-x") == 0
    assert sops.tags("shared-x")["synoscd-composition"] == "one"  # untouched: neither applies it
