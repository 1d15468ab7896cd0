"""`synos get compositions`, `synos synth`, `synos get rollouts`, `synos rollout pause|resume` and the
synthesizer settings of `synos set`, end to end in subprocesses against the stack (GitHub source)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import FIXTURES, LaunchedStack
from tests.e2e.test_cli import OWNER, Cli

pytestmark = pytest.mark.e2e

SYNTH = """apiVersion: synoscd.io/v1alpha1
kind: Synthesizer
metadata:
  name: fleet
spec:
  command: ["python3", "synth/fleet.py"]
---
apiVersion: synoscd.io/v1alpha1
kind: Composition
metadata:
  name: web
spec:
  synthesizer: fleet
  inputs:
    - key: fleet
      file: inputs/fleet.json
"""


@pytest.fixture
def cli(fresh_stack: LaunchedStack) -> Iterator[Cli]:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.1})
    c = Cli(fresh_stack)
    c.commit(
        {
            "apps/web.yaml": SYNTH,
            "synth/fleet.py": (FIXTURES / "synthesizers" / "fleet.py").read_text(),
            "inputs/fleet.json": json.dumps({"apps": ["a", "b"]}),
        }
    )
    yield c


def test_compositions_from_the_command_line(cli: Cli) -> None:
    settings = cli.json("set", "--allow-exec-synthesizers", "--rollout-cooldown", "5", "--yes")
    assert settings["allowExecSynthesizers"] is True and settings["rolloutCooldownSeconds"] == 5.0

    dry = cli.json("synth", "web", "--dry-run")
    assert dry["kind"] == "ResourceList" and dry["functionConfig"]["metadata"]["name"] == "web"
    assert dry["items"][0]["metadata"]["annotations"]["synoscd.io/input-key"] == "fleet"

    out = cli.json("synth", "web")
    assert out["status"] == "Ready" and [i["metadata"]["name"] for i in out["items"]] == ["web-a", "web-b"]
    assert out["items"][0]["metadata"]["labels"]["synoscd.io/composition"] == "web"
    assert out["inForce"] is None  # synos synth records nothing

    passed = cli.json("sync", "--yes")
    assert passed["synthesis"]["ran"] == ["web"] and passed["outcome"] == "succeeded"
    comps = cli.json("get", "compositions")["compositions"]
    assert [(c["name"], c["synthesizer"], c["status"], c["apps"]) for c in comps] == [
        ("web", "fleet", "Ready", ["App/web-a", "App/web-b"])
    ]
    table = cli.run("get", "compositions").stdout
    assert "web" in table and "Ready" in table

    cli.commit({"inputs/fleet.json": json.dumps({"apps": ["a"], "mode": "error"})})
    partial = json.loads(cli.run("sync", "--yes", "-o", "json", check=None).stdout)  # exit codes: cli's call
    assert partial["outcome"] == "partial" and partial["prune"]["blocked"] is None
    failed = cli.json("get", "compositions", check=1)["compositions"][0]
    assert failed["status"] == "Failed" and "replicas must be a positive integer" in failed["message"]
    out = cli.json("synth", "web", check=1)
    assert out["status"] == "Failed" and out["results"][0]["severity"] == "error"

    def rollouts(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {r["name"]: r for r in doc["rollouts"]}

    assert {n: r["status"] for n, r in rollouts(cli.json("get", "rollouts")).items()} == {
        "compositions": "Idle",
        "projects": "Idle",
    }
    paused = rollouts(cli.json("rollout", "pause", "projects", "--yes"))
    assert list(paused) == ["projects"] and paused["projects"]["status"] == "Paused"
    shown = cli.json("get", "rollouts")
    assert [r["paused"] for r in shown["rollouts"]] == [False, True]
    # The top level is still the compositions' rollout (the shape before there were two).
    assert shown["status"] == "Idle" and shown["paused"] is False and shown["pending"] == []
    both = cli.json("rollout", "pause", "--yes")
    assert both["status"] == "Paused" and both["rollouts"][0]["status"] == "Paused"
    resumed = rollouts(cli.json("rollout", "resume", "--yes"))
    assert all(r["status"] == "Idle" and r["paused"] is False for r in resumed.values()), resumed
    assert cli.run("rollout", "pause", check=2).stderr.startswith("synos: Pause the deferred rollouts")
    assert "rollout projects Idle" in cli.run("rollout", "resume", "projects", "--yes").stdout


def test_synth_names_an_unknown_composition(cli: Cli) -> None:
    err = cli.run("synth", "nope", check=2).stderr
    assert "no valid Composition 'nope'" in err
    assert OWNER  # the repository is the fixture's
