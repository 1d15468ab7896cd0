"""Generate docs/manifests.md from the manifests' JSON Schema (`synoscd.manifests.schema.json_schema()`,
the same document `synos schema` prints).

    python infra/gen_manifest_reference.py            rewrite docs/manifests.md
    python infra/gen_manifest_reference.py --check    exit 1 when docs/manifests.md is stale

Every table row comes from the schema: field names, types, required fields, defaults and constraints.
The short notes below add what a type cannot say; each names a field the schema has (checked here), so
a renamed field fails the generator instead of leaving a stale note.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from synoscd.manifests.schema import API_VERSION, KINDS, json_schema  # noqa: E402

OUTPUT = ROOT / "docs" / "manifests.md"

# What a definition is for (keyed by $defs name).
DEFINITION_NOTES = {
    "App": "A Container App, kept equal to this manifest.",
    "Job": "A Container Apps job (Manual, Schedule or Event trigger), kept equal to this manifest.",
    "Project": "Groups apps: defaults merged into their specs and a policy they must meet. "
    "No Azure resource.",
    "Synthesizer": "A program that generates Apps and Jobs (a KRM function: a ResourceList in on "
    "stdin or through a blob, a ResourceList out). See docs/synthesizers.md.",
    "Composition": "Runs a synthesizer over its inputs; the Apps and Jobs it writes are applied like "
    "hand-written ones (labelled `synoscd.io/composition`, tagged `synoscd-composition`).",
    "InputBinding": "One input item of a composition: exactly one of file, inline or secret.",
    "Target": "One environment of a fleet (docs/fleet.md): where its Apps and Jobs go and which folder of "
    "the ops repository holds them. Read from SYNOSCD_TARGETS_PATH (`targets/`) only.",
    "TargetOverrides": "This target's runtime defaults (what SYNOSCD_* settings give the default target); "
    "`synos set --target NAME` still overrides them.",
    "Metadata": "Name, labels and annotations of an App or Job.",
    "Container": "One container; the cpu and memory of all containers of an app must add up to a pair "
    "ACA accepts (0.25/0.5Gi, 0.5/1Gi, ... 2/4Gi; memory = 2 x cpu).",
    "ScaleRule": "Exactly one of http, tcp, custom or azureQueue.",
    "InitContainer": "Runs to completion before the containers start; its cpu and memory are not "
    "counted in the app's total.",
    "IpSecurityRestriction": "One inbound rule; all rules of an app are Allow (an allow-list) or all Deny.",
    "Probe": "Exactly one of httpGet or tcpSocket.",
}

# What a field means beyond its type (keyed by "Definition.field").
FIELD_NOTES = {
    "Metadata.name": "Container App / job name: 2-32 lowercase letters, digits and '-', starts with a "
    "letter, no '--'.",
    "Metadata.namespace": "Groups manifests for people and tools; not written to Azure.",
    "Metadata.labels": "Kept in the manifest for people and tools; not written to Azure (use spec.tags).",
    "Metadata.annotations": "`synoscd.io/*` annotations steer the sync: waves, hooks and sync options.",
    "AppSpec.environment": "Applied to every container.",
    "AppSpec.identity": "`system` (the system-assigned identity) and user-assigned identity resource ids "
    "the app needs; the first listed reads the Key Vault secrets. Identities attached by hand and not "
    "listed are kept.",
    "AppSpec.externalSecrets": "Secrets set on the live app outside Git (e.g. a registry password): "
    "names that env vars, scale rules and registries may refer to. SynosCD never writes or removes them.",
    "AppSpec.volumes": "Declared (even `[]`): SynosCD owns the volumes and every container's mounts. "
    "Left out: live volumes and mounts are kept.",
    "AppSpec.initContainers": "Declared (even `[]`): owned; left out: live init containers are kept.",
    "AppSpec.workloadProfileName": "Left out: the live profile is kept. On a dedicated profile the "
    "Consumption cpu/memory pairs are not enforced.",
    "AppSpec.activeRevisionsMode": "Left out: the live mode is kept (new apps get Single).",
    "AppSpec.maxInactiveRevisions": "Left out: the live value is kept (ACA's default is 100).",
    "AppSpec.terminationGracePeriodSeconds": "Left out: the live value is kept.",
    "AppSpec.secrets": "Secret name -> Key Vault secret URL (a Key Vault resource id is accepted too); "
    "the app reads them with its first identity (system-assigned when none is listed). SynosCD owns "
    "the secrets it names; others on the app are kept.",
    "AppSpec.suspend": "true: SynosCD leaves the app as it is (like `synos suspend`).",
    "AppSpec.configFrom": "Repository paths whose content is hashed into the template, so a change "
    "rolls a new revision.",
    "AppSpec.tags": "Kept alongside SynosCD's ownership tags (synoscd-managed, synoscd-source, "
    "synoscd-revision).",
    "JobSpec.cronExpression": "Required with triggerType Schedule.",
    "JobSpec.identity": "As for an App: `system` and user-assigned identity resource ids; others attached "
    "by hand are kept.",
    "JobSpec.externalSecrets": "As for an App: secrets set outside Git that references may name.",
    "JobSpec.volumes": "Declared (even `[]`): owned with every container's mounts; left out: kept.",
    "JobSpec.initContainers": "Declared (even `[]`): owned; left out: kept.",
    "JobSpec.workloadProfileName": "Left out: the live profile is kept.",
    "JobSpec.suspend": "true: SynosCD leaves the job as it is.",
    "Container.memory": "`Gi` or `Mi`; stored as Gi (512Mi -> 0.5Gi).",
    "Container.cpu": "Cores, e.g. 0.25.",
    "EnvVar.valueFrom": "Instead of value: a secret of the app (`secretRef`).",
    "Ingress.targetPort": "Required when ingress is enabled.",
    "Registry.identity": "`system`, `system-environment` or a user-assigned identity resource id.",
    "Ingress.allowedOrigins": "Declared: owned (`[]` removes the CORS policy); left out: kept.",
    "Ingress.ipSecurityRestrictions": "Declared (even `[]`): owned; left out: rules set by hand are kept.",
    "Ingress.stickySessions": "Left out: the live setting is kept.",
    "Ingress.enabled": "false: the ingress is removed. Leave `ingress` out to keep the live one.",
    "Policy.allowedRegistries": "Registry host names; `*` globs allowed (e.g. `*.azurecr.io`).",
    "Policy.maxCpu": "Per app, summed over its containers.",
    "ProjectSpec.apps": "Names of the apps this project covers.",
    "SynthesizerSpec.executor": "`job` (default with an image): an ACA Job execution in the target "
    "environment; `exec` (default with a command): a local process, off unless "
    "`synos set --allow-exec-synthesizers`.",
    "SynthesizerSpec.command": "executor exec: argv; arguments naming repository files are written into "
    "its empty working directory.",
    "SynthesizerSpec.timeoutSeconds": "A synthesis running longer fails (the last good output stays).",
    "SynthesizerSpec.cpu": "executor job: the container's cores.",
    "CompositionSpec.synthesizer": "Name of a Synthesizer in the repository.",
    "CompositionSpec.config": "Passed to the synthesizer with the whole composition as functionConfig.",
    "InputBinding.key": "Set as annotation `synoscd.io/input-key` on the input item.",
    "InputBinding.file": "A repository path (YAML, JSON or text). Keep it outside the manifest folder "
    "or name it .json.",
    "InputBinding.secret": "A Key Vault secret URL: the item carries its current version, never its value.",
    "InputBinding.defer": "true: a change rolls out one composition at a time (deferred rollout).",
    "TargetMetadata.name": "2-32 lowercase letters, digits and '-'; `default` is the target of the app "
    "settings. Written to the target's resources as tag synoscd-target.",
    "TargetSpec.subscriptionId": "The identity needs Container Apps Contributor on the resource group "
    "(infra: the `targets` parameter).",
    "TargetSpec.path": "Folder of this target's manifests; a push touching it (or a file its manifests "
    "read) runs this target's pass.",
    "TargetSpec.environment": "Name of the Container Apps environment in that resource group.",
}


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _anchor(name: str) -> str:
    return name.lower()


def render_type(node: dict[str, Any]) -> str:
    if "$ref" in node:
        name = _ref_name(node["$ref"])
        return f"[{name}](#{_anchor(name)})"
    if "anyOf" in node:
        kinds = [k for k in node["anyOf"] if k.get("type") != "null"]
        return " or ".join(render_type(k) for k in kinds)
    if "const" in node:
        return f"`{json.dumps(node['const'])}`"
    if "enum" in node:
        return "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    kind = node.get("type")
    if kind == "array":
        return f"list of {render_type(node.get('items', {}))}"
    if kind == "object":
        if "patternProperties" in node:
            ((pattern, value),) = node["patternProperties"].items()
            return f"map of name (`{pattern}`) to {render_type(value)}"
        if isinstance(node.get("additionalProperties"), dict):
            return f"map of string to {render_type(node['additionalProperties'])}"
        return "object"
    return str(kind or "any")


def constraints(node: dict[str, Any]) -> str:
    parts: list[str] = []
    for inner in [node, *node.get("anyOf", [])]:
        if "pattern" in inner:
            parts.append(f"pattern `{inner['pattern']}`")
        if "minimum" in inner and "maximum" in inner:
            parts.append(f"{inner['minimum']}-{inner['maximum']}")
        elif "minimum" in inner:
            parts.append(f">= {inner['minimum']}")
        elif "maximum" in inner:
            parts.append(f"<= {inner['maximum']}")
        if "exclusiveMinimum" in inner:
            parts.append(f"> {inner['exclusiveMinimum']}")
        if "minItems" in inner:
            parts.append(f"at least {inner['minItems']} item{'s' if inner['minItems'] > 1 else ''}")
        if "propertyNames" in inner and "enum" in inner["propertyNames"]:
            parts.append("keys: " + ", ".join(f"`{k}`" for k in inner["propertyNames"]["enum"]))
    return "; ".join(parts)


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _default(node: dict[str, Any]) -> str:
    if "default" not in node:
        return ""
    return f"`{json.dumps(node['default'])}`"


def _refs(node: Any) -> list[str]:
    """$defs names referenced under node, in document order."""
    found: list[str] = []
    if isinstance(node, dict):
        if "$ref" in node:
            found.append(_ref_name(node["$ref"]))
        for value in node.values():
            found += _refs(value)
    elif isinstance(node, list):
        for value in node:
            found += _refs(value)
    return found


def definition_order(schema: dict[str, Any]) -> list[str]:
    """The kinds first, then every definition in the order a reader meets it (breadth first)."""
    defs = schema["$defs"]
    order: list[str] = []
    queue = list(KINDS)
    while queue:
        name = queue.pop(0)
        if name in order:
            continue
        order.append(name)
        queue += [r for r in _refs(defs[name]) if r not in order]
    return order + sorted(set(defs) - set(order))


def check_notes(schema: dict[str, Any]) -> None:
    defs = schema["$defs"]
    stale = [n for n in DEFINITION_NOTES if n not in defs]
    for key in FIELD_NOTES:
        definition, _, field = key.partition(".")
        if field not in defs.get(definition, {}).get("properties", {}):
            stale.append(key)
    if stale:
        raise SystemExit(f"gen_manifest_reference: notes name what the schema lacks: {', '.join(stale)}")


def render(schema: dict[str, Any]) -> str:
    check_notes(schema)
    defs = schema["$defs"]
    lines = [
        "# Manifest reference",
        "",
        "<!-- Generated by `python infra/gen_manifest_reference.py` from the manifests' JSON Schema",
        "     (`synos schema`); do not edit by hand: tests/unit/test_docs.py fails when it is stale. -->",
        "",
        f"Every manifest is a YAML document with `apiVersion: {API_VERSION}` and one of the kinds "
        + ", ".join(f"[{k}](#{_anchor(k)})" for k in KINDS)
        + ". A file may hold several documents separated by `---`. Unknown fields are errors and no "
        'value is coerced (`"1"` is not a number).',
        "",
        "Check manifests before you push them: `synos validate apps/` reports each error with its file, "
        "line and field; `synos schema > manifest.schema.json` gives editors the same schema "
        "(yaml-language-server: `# yaml-language-server: $schema=manifest.schema.json`). "
        "`synos validate` also checks rules a schema cannot express: cpu/memory pairs, secret "
        "references, tag limits, duplicate names, project policies.",
        "",
        "Columns: **Required** fields must be present; **Default** is the value when a field is left out; "
        "**Constraints** are checked by `synos validate` (and by editors using the schema).",
        "",
        "**What a manifest owns.** SynosCD compares and writes only what a manifest declares: an optional "
        "section you leave out (ingress, scale, volumes, initContainers, ipSecurityRestrictions, ...) is "
        "left as it is on the live app, and so is everything a manifest cannot express (custom domains, "
        "Dapr, service binds, traffic splits, secrets it does not name). Declaring a section makes it "
        "owned: a declared empty list (`volumes: []`) removes what is live. `synos export` writes the "
        "manifest of a live app with everything the schema can express.",
        "",
    ]
    for name in definition_order(schema):
        node = defs[name]
        lines += [f"## {name}", ""]
        note = DEFINITION_NOTES.get(name)
        if note:
            lines += [note, ""]
        required = set(node.get("required", []))
        properties = node.get("properties", {})
        if not properties:
            lines += [f"Type: {render_type(node)}.", ""]
            continue
        lines += [
            "| Field | Type | Required | Default | Constraints | Notes |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for field, spec in properties.items():
            notes = " ".join(
                x for x in (spec.get("description", ""), FIELD_NOTES.get(f"{name}.{field}", "")) if x
            )
            row = [
                f"`{field}`",
                render_type(spec),
                "yes" if field in required else "",
                _default(spec),
                constraints(spec),
                notes,
            ]
            lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate docs/manifests.md from the manifest schema.")
    parser.add_argument("--check", action="store_true", help="exit 1 when docs/manifests.md is stale")
    args = parser.parse_args(argv)
    text = render(json_schema())
    if args.check:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != text:
            print(f"{OUTPUT.relative_to(ROOT)} is stale: run python infra/gen_manifest_reference.py")
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
