"""Zero false drift and nothing erased, against real ARM bodies (tests/fixtures/aca-recordings: GET
bodies live Azure returned to the Azure CLI's own tests).

For every recording, the final GET of each app and job is exported to a manifest (the real loader and
validator read it), adopted (the ownership tags put on the GET, as `synos adopt` does) and planned
against the same GET: no write. A one-field change in the exported manifest plans exactly one update
naming that field, and its write (a merge patch) applied to the GET converges and keeps everything
the manifest does not own byte for byte.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from synoscd.azure.export import export
from synoscd.azure.translate import Target, app_envelope, diff, environment_of, job_envelope, sync_tags
from synoscd.engine.health import HEALTHY, Health
from synoscd.engine.plan import DesiredItem, LiveItem, PlanInput, plan
from synoscd.manifests.desired import load_desired
from synoscd.manifests.schema import App
from synoscd.manifests.syncspec import sync_spec
from tests.conftest import FIXTURES

RECORDINGS = FIXTURES / "aca-recordings"
SOURCE = "contoso/ops:apps"
KINDS = {"containerApps": "App", "jobs": "Job"}


def final_gets() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(id, kind, body): the last GET of each app and job of each recording."""
    for path in sorted(RECORDINGS.glob("*.json")):
        last: dict[tuple[str, str], dict[str, Any]] = {}
        for step in json.loads(path.read_text())["interactions"]:
            if step["method"] == "GET" and step["kind"] in KINDS and step["response"]:
                last[(step["kind"], step["name"])] = step["response"]
        for (kind, name), body in last.items():
            yield f"{path.stem}:{name}", KINDS[kind], body


FINALS = list(final_gets())


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386, as ARM applies a PATCH of Microsoft.App (recorded: a patch of one ingress field keeps
    the others; `customDomains: []` clears them; lists are replaced whole)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def adopted(body: dict[str, Any], revision: str = "older-commit") -> dict[str, Any]:
    live = copy.deepcopy(body)
    live["tags"] = {
        **(live.get("tags") or {}),
        "synoscd-managed": "true",
        "synoscd-source": SOURCE,
        "synoscd-revision": revision,
    }
    return live


def envelope(manifest: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """The desired body of an exported manifest, through the real loader, validator and renderer."""
    text = yaml.safe_dump(manifest, sort_keys=False)
    desired = load_desired({f"apps/{manifest['metadata']['name']}.yaml": text.encode()})
    assert not desired.errors, [e.to_dict() for e in desired.errors]
    res = desired.resources[0]
    target = Target(environment_of(live), live["location"], SOURCE, "new-commit")
    spec = sync_spec(res.manifest.metadata.annotations)
    tags = sync_tags(spec.wave if spec.wave_set else None, spec.options, spec.hook_phases)
    if isinstance(res.manifest, App):
        return app_envelope(res.manifest, target, None, tags)
    return job_envelope(res.manifest, target, None, tags, manual=spec.is_hook)  # type: ignore[arg-type]


def plan_one(kind: str, body: dict[str, Any], live: dict[str, Any], settled: bool = False) -> Any:
    if settled:  # a recording caught mid-operation: as it is once the operation ends
        live = {**live, "properties": {**live["properties"], "provisioningState": "Succeeded"}}
    item = DesiredItem(kind, live["name"], body)
    inp = PlanInput(
        desired=(item,),
        complete=True,
        live={(kind, live["name"].lower()): LiveItem(kind, live["name"], live, Health(HEALTHY))},
        now=0.0,
        environment_id=environment_of(live),
        source=SOURCE,
    )
    (action,) = plan(inp, "new-commit").actions
    return action


def test_the_recordings_are_all_there() -> None:
    assert len(list(RECORDINGS.glob("*.json"))) == 93
    assert len(FINALS) == 116, "final GETs of 101 apps and 15 jobs"
    assert {kind for _, kind, _ in FINALS} == {"App", "Job"}


@pytest.mark.parametrize("kind,body", [(k, b) for _, k, b in FINALS], ids=[i for i, _, _ in FINALS])
def test_a_recorded_get_exported_and_adopted_plans_no_write(kind: str, body: dict[str, Any]) -> None:
    live = adopted(body)
    exported = export(kind, body)
    desired = envelope(exported.manifest, live)
    assert diff(desired, live) == []
    action = plan_one(kind, desired, live)
    assert not action.writes
    if body["properties"].get("provisioningState") == "InProgress":  # recorded mid-operation
        assert (action.action, action.reason) == ("skip", "in-progress")
    else:
        assert (action.action, action.reason) == ("noop", "in-sync")


def _one_field_changes(
    kind: str, manifest: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any], list[str]]]:
    spec = manifest["spec"]
    first = spec["containers"][0]

    def changed(fn: Any) -> dict[str, Any]:
        out = copy.deepcopy(manifest)
        fn(out["spec"])
        return out

    yield (
        "image",
        changed(lambda s: s["containers"][0].update(image="contoso.azurecr.io/web:2")),
        ["template.containers[0].image"],
    )
    values = [i for i, e in enumerate(first.get("env") or []) if "value" in e]
    if values:
        name = first["env"][values[0]]["name"]
        position = sorted(e["name"] for e in first["env"]).index(name)  # env compares sorted by name
        yield (
            "env",
            changed(lambda s: s["containers"][0]["env"][values[0]].update(value="changed")),
            [f"template.containers[0].env[{position}].value"],
        )
    if "cpu" in first and len(spec["containers"]) == 1 and "workloadProfileName" not in spec:
        cpu, memory = (1, "2Gi") if first["cpu"] == 0.5 else (0.5, "1Gi")
        yield (
            "cpu/memory",
            changed(lambda s: s["containers"][0].update(cpu=cpu, memory=memory)),
            ["template.containers[0].resources.cpu", "template.containers[0].resources.memory"],
        )
    if kind == "App":
        low = (spec.get("scale") or {}).get("minReplicas", 0)
        high = (spec.get("scale") or {}).get("maxReplicas", 10)
        new_low = 1 if low != 1 else 0
        yield (
            "minReplicas",
            changed(
                lambda s: s.update(
                    scale={**s.get("scale", {}), "minReplicas": new_low, "maxReplicas": max(high, 1)}
                )
            ),
            ["template.scale.minReplicas"],
        )
        if spec.get("ingress"):
            yield (
                "targetPort",
                changed(lambda s: s["ingress"].update(targetPort=8181)),
                ["configuration.ingress.targetPort"],
            )
    yield "tag", changed(lambda s: s.setdefault("tags", {}).update(team="payments")), ["tags.team"]


CHANGES = [
    (f"{rid}:{what}", kind, body, what)
    for rid, kind, body in FINALS
    for what, _, _ in _one_field_changes(kind, export(kind, body).manifest)
]


@pytest.mark.parametrize("kind,body,what", [c[1:] for c in CHANGES], ids=[c[0] for c in CHANGES])
def test_a_one_field_change_plans_one_update_naming_it_and_its_write_converges(
    kind: str, body: dict[str, Any], what: str
) -> None:
    live = adopted(body)
    manifest, fields = next(
        (m, f) for w, m, f in _one_field_changes(kind, export(kind, body).manifest) if w == what
    )
    desired = envelope(manifest, live)
    action = plan_one(kind, desired, live, settled=True)
    assert (action.action, action.reason, action.method) == ("update", "drift", "PATCH")
    assert [c["field"] for c in action.changes] == fields
    after = merge_patch(live, action.request)
    assert diff(desired, after) == [], "the write converges"
    assert after["tags"]["synoscd-revision"] == "new-commit"
    # Only what the change is about is written (and the tags, which carry the revision).
    sections = {"image": "template", "env": "template", "cpu/memory": "template", "minReplicas": "template"}
    if what in sections:
        assert set(action.request) == {"tags", "properties"}
        assert set(action.request["properties"]) == {"template"}
    elif what == "targetPort":
        assert action.request["properties"] == {"configuration": {"ingress": {"targetPort": 8181}}}
    else:
        assert set(action.request) == {"tags"}
    # Everything else is as it was, byte for byte.
    allowed = {
        "image": ["properties.template.containers[0].image"],
        "env": [f"properties.template.containers[0].env[{i}].value" for i in range(50)],
        "cpu/memory": [
            "properties.template.containers[0].resources.cpu",
            "properties.template.containers[0].resources.memory",
        ],
        "minReplicas": ["properties.template.scale.minReplicas"],
        "targetPort": ["properties.configuration.ingress.targetPort"],
        "tag": ["tags.team"],
    }[what] + ["tags.synoscd-revision", "properties.template.revisionSuffix"]
    assert set(changed_paths(live, after)) <= set(allowed)


def changed_paths(a: Any, b: Any, path: str = "") -> list[str]:
    """Leaf paths where two JSON values differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            p
            for key in sorted(a.keys() | b.keys(), key=str)
            for p in changed_paths(a.get(key), b.get(key), f"{path}.{key}" if path else str(key))
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            p for i, (x, y) in enumerate(zip(a, b, strict=True)) for p in changed_paths(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [path]
