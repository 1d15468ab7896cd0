"""A fleet's targets: what one is, where it is declared and what follows from it. Pure.

A target is (name, subscription, resource group, environment, source path in the ops repository,
optional runtime overrides). The single-environment settings of a deployment (SYNOSCD_AZURE_*,
SYNOSCD_GITHUB_CONFIG_PATH) are the target named `default`, so a deployment that declares nothing
else works as it always did; SYNOSCD_TARGETS (a JSON array in the app settings) and the ops
repository's targets path (`kind: Target` manifests) declare more.

Every target has a state table of its own: the default target keeps SYNOSCD_STATE_TABLE, so the rows
written before fleets existed are read as they are, and any other target gets
`<SYNOSCD_STATE_TABLE><name><hash>`. Every record of a target (lease, runtime settings, flags,
statuses, history, operation, tombstones, applied bodies, caches) lives in its table under the keys
a single-environment deployment uses: no code path can reach another target's rows by forgetting a
key prefix, and removing a target is dropping its table.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synoscd.manifests.syntax import DEFAULT_TARGET

__all__ = [
    "DEFAULT_TARGET",
    "TargetDef",
    "combine",
    "default_target",
    "from_manifest",
    "from_settings",
    "settings_for",
    "table_name",
    "touched",
]

# A target's overrides (manifest field) -> the Settings field that gives the default target's value.
OVERRIDES = {
    "intervalSeconds": "reconcile_interval_seconds",
    "prune": "prune_enabled",
    "protectedApps": "protected_apps_csv",
    "maxConcurrent": "max_concurrent",
    "retryLimit": "retry_limit",
    "appliedHistory": "applied_history",
    "passWaitSeconds": "pass_wait_seconds",
}


@dataclass(frozen=True)
class TargetDef:
    name: str
    subscription_id: str
    resource_group: str
    environment: str
    path: str  # folder of the target's manifests in the ops repository
    overrides: tuple[tuple[str, Any], ...] = ()  # (manifest field, value), sorted
    origin: str = field(default="", compare=False)  # where it was declared, for messages

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_TARGET

    @property
    def subscription(self) -> str:
        """The subscription as one spelling (ARM ids compare without case): the write budget's key."""
        return self.subscription_id.lower()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
            "environment": self.environment,
            "path": self.path,
            "overrides": dict(self.overrides),
            "origin": self.origin,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> TargetDef:
        return cls(
            str(doc["name"]),
            str(doc["subscriptionId"]),
            str(doc["resourceGroup"]),
            str(doc["environment"]),
            str(doc["path"]),
            tuple(sorted((str(k), _frozen(v)) for k, v in (doc.get("overrides") or {}).items())),
            str(doc.get("origin") or ""),
        )


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _norm_path(path: str) -> str:
    """The folder as the sources see it: '.', '/' and '' are the root."""
    return posixpath.normpath("/" + path.strip()).strip("/")


def default_target(settings: Any) -> TargetDef | None:
    """The target of the single-environment settings, when they name an environment."""
    if not (
        settings.azure_subscription_id
        and settings.azure_resource_group
        and settings.azure_container_app_environment
    ):
        return None
    return TargetDef(
        DEFAULT_TARGET,
        settings.azure_subscription_id,
        settings.azure_resource_group,
        settings.azure_container_app_environment,
        _norm_path(settings.github_config_path),
        origin="SYNOSCD_AZURE_* settings",
    )


def from_manifest(resource: Any) -> TargetDef:
    """A validated `kind: Target` resource (manifests/desired.py) as a TargetDef."""
    spec = resource.manifest.spec
    overrides = spec.overrides.model_dump(by_alias=True, exclude_none=True)
    return TargetDef(
        resource.name,
        spec.subscription_id,
        spec.resource_group,
        spec.environment,
        _norm_path(spec.path),
        tuple(sorted((k, _frozen(v)) for k, v in overrides.items())),
        origin=f"{resource.file}:{resource.line}",
    )


def from_settings(text: str, setting: str = "SYNOSCD_TARGETS") -> tuple[list[TargetDef], list[str]]:
    """Targets of the app settings: a JSON array of {name, subscriptionId, resourceGroup, environment,
    path, overrides}, each checked by the Target schema; errors name the setting, index and field."""
    if not text.strip():
        return [], []
    from pydantic import ValidationError

    from synoscd.manifests.model_errors import issues_from
    from synoscd.manifests.schema import API_VERSION, Target

    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        return [], [f"{setting} is not valid JSON ({exc.msg} at character {exc.pos}); use a JSON array"]
    if not isinstance(items, list):
        return [], [f'{setting} must be a JSON array of targets, e.g. [{{"name": "prod", ...}}]']
    targets: list[TargetDef] = []
    errors: list[str] = []
    for i, item in enumerate(items):
        where = f"{setting}[{i}]"
        if not isinstance(item, dict):
            errors.append(f"{where}: a target is a JSON object with name, subscriptionId, resourceGroup, ...")
            continue
        spec = {k: v for k, v in item.items() if k != "name"}
        doc = {
            "apiVersion": API_VERSION,
            "kind": "Target",
            "metadata": {"name": item.get("name")},
            "spec": spec,
        }
        try:
            model = Target.model_validate(doc)
        except ValidationError as exc:
            for path, message in issues_from(exc, Target):
                field_path = (
                    "name" if tuple(path[:2]) == ("metadata", "name") else ".".join(map(str, path[1:]))
                )
                errors.append(f"{where}.{field_path}: {message}")
            continue
        overrides = model.spec.overrides.model_dump(by_alias=True, exclude_none=True)
        targets.append(
            TargetDef(
                model.metadata.name,
                model.spec.subscription_id,
                model.spec.resource_group,
                model.spec.environment,
                _norm_path(model.spec.path),
                tuple(sorted((k, _frozen(v)) for k, v in overrides.items())),
                origin=where,
            )
        )
    return targets, errors


def combine(*groups: Iterable[TargetDef]) -> tuple[list[TargetDef], list[str]]:
    """The fleet: every group's targets in order; a name declared twice keeps its first declaration
    (the default target, then the app settings, then the repository) and the later one is an error."""
    seen: dict[str, TargetDef] = {}
    errors: list[str] = []
    for group in groups:
        for target in group:
            first = seen.get(target.name)
            if first is None:
                seen[target.name] = target
            elif first != target or first.origin != target.origin:
                errors.append(
                    f"target {target.name} ({target.origin}) is already declared at {first.origin}; "
                    "that declaration is used; rename or remove this one"
                )
    return list(seen.values()), errors


_TABLE_CHARS = re.compile(r"[^A-Za-z0-9]")


def table_name(base: str, target: str) -> str:
    """The state table of a target: the default target's is `base` itself (rows written before fleets
    are read as they are); another's is base + its name's letters and digits + a hash of the name
    (so prod-eu and prodeu differ), at most the 63 characters Table Storage allows."""
    if target == DEFAULT_TARGET:
        return base
    suffix = hashlib.sha256(target.encode()).hexdigest()[:6]
    return (base + _TABLE_CHARS.sub("", target))[: 63 - len(suffix)] + suffix


def settings_for(base: Any, target: TargetDef) -> Any:
    """The Settings a target's runtime works with: its environment, path and table, its overrides as
    the runtime defaults (the table's `synos set --target` values still win). Everything else — the
    source repository, the identity, Key Vault, the state account — is the deployment's."""
    update: dict[str, Any] = {
        "target": target.name,
        "azure_subscription_id": target.subscription_id,
        "azure_resource_group": target.resource_group,
        "azure_container_app_environment": target.environment,
        "github_config_path": target.path or ".",
        "state_table": table_name(base.state_table, target.name),
    }
    for key, value in target.overrides:
        name = OVERRIDES.get(key)
        if name is None:
            continue
        update[name] = ",".join(value) if name == "protected_apps_csv" else value
    return base.model_copy(update=update)


def _under(path: str, folder: str) -> bool:
    folder = folder.strip("/")
    return not folder or path == folder or path.startswith(folder + "/")


def touched(
    targets: Sequence[TargetDef],
    paths: Iterable[str] | None,
    watch: Mapping[str, Iterable[str]] | None = None,
) -> list[TargetDef]:
    """The targets a push touched: a path under a target's folder, or one of the files it watches
    (`watch`: per target, the repository files its manifests read, e.g. `spec.configFrom`). `paths`
    None (the push did not say which files it changed): every target."""
    if paths is None:
        return list(targets)
    changed = [p.strip("/") for p in paths]
    watch = watch or {}
    out = []
    for target in targets:
        watched = [target.path, *watch.get(target.name, ())]
        if any(_under(p, w) if w == target.path else p == w.strip("/") for p in changed for w in watched):
            out.append(target)
    return out
