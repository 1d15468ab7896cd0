"""Manifests to ARM bodies, and who owns a live resource.

`app_envelope(...)` / `job_envelope(...)` build what SynosCD PUTs to create a resource. The envelope
carries exactly the fields the manifest owns: what the manifest declares (optional sections only when
declared; `model_fields_set` tells a field left out from one set to its default), plus the ownership
tags. That same envelope is the desired side of the diff (normalise.py) and of the write patch for a
resource that exists (merge.py): a field the envelope leaves out is never compared and never written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synoscd.azure.normalise import REVISION_TAG, UNCOMPARED_TAGS, canonical, diff
from synoscd.manifests import syntax
from synoscd.manifests.schema import (
    App,
    AppSpec,
    Container,
    EnvVar,
    Ingress,
    InitContainer,
    Job,
    JobSpec,
    Registry,
    ScaleRule,
)

__all__ = [
    "REVISION_TAG",
    "UNCOMPARED_TAGS",
    "Ownership",
    "Target",
    "app_envelope",
    "canonical",
    "config_hash",
    "diff",
    "job_envelope",
    "ownership",
    "sync_tags",
    "target_of",
    "target_tags",
]

MANAGED_TAG = "synoscd-managed"
SOURCE_TAG = "synoscd-source"
TARGET_TAG = syntax.TARGET_TAG  # the fleet's target; absent on the default target's resources
DEFAULT_TARGET = syntax.DEFAULT_TARGET
WAVE_TAG = "synoscd-sync-wave"
OPTIONS_TAG = "synoscd-sync-options"
HOOK_TAG = "synoscd-hook"
CONFIG_HASH_ENV = "SYNOSCD_CONFIG_HASH"


@dataclass(frozen=True)
class Target:
    """Where resources go: the environment (id and location) and what is being applied."""

    environment_id: str
    location: str
    source: str  # owner/repo:path
    revision: str
    name: str = DEFAULT_TARGET  # the fleet's target (synoscd/fleet/); the default one writes no tag


def _tag(body: Mapping[str, Any], name: str) -> str | None:
    """A tag's value; tag names are case-insensitive in ARM."""
    for key, value in (body.get("tags") or {}).items():
        if str(key).lower() == name:
            return str(value)
    return None


def is_managed(body: Mapping[str, Any]) -> bool:
    return str(_tag(body, MANAGED_TAG) or "").lower() == "true"


def environment_of(body: Mapping[str, Any]) -> str:
    """The environment a live app or job is in (`managedEnvironmentId` is the deprecated alias)."""
    props = body.get("properties") or {}
    return str(props.get("environmentId") or props.get("managedEnvironmentId") or "")


def same_resource_id(a: str, b: str) -> bool:
    """ARM resource IDs compare case-insensitively (the service answers in its own casing)."""
    return bool(a) and a.rstrip("/").lower() == b.rstrip("/").lower()


def same_source(a: str | None, b: str) -> bool:
    """`owner/repo:path` (or `local:PATH`): GitHub owner and repository names ignore case, and a
    source is never told apart from another by case alone."""
    return a is not None and a.strip().lower() == b.strip().lower()


@dataclass(frozen=True)
class Ownership:
    """Whether a live resource is ours: tagged managed, in our environment, from our source
    (invariant 1). `reason` and `message` say why not: `unmanaged-conflict` (not tagged managed, or
    tagged before the source tag existed: `synos adopt` it) or `foreign-owner` (another environment's
    or another source's)."""

    ours: bool
    reason: str = ""
    message: str = ""


def target_of(body: Mapping[str, Any]) -> str:
    """The target a live resource was written by: its synoscd-target tag, or (none) the default one,
    whose resources carry no such tag (they predate fleets)."""
    return str(_tag(body, TARGET_TAG) or DEFAULT_TARGET).strip().lower()


def ownership(
    kind: str,
    name: str,
    body: Mapping[str, Any],
    environment_id: str,
    source: str,
    target: str = DEFAULT_TARGET,
) -> Ownership:
    env = environment_of(body)
    if not same_resource_id(env, environment_id):
        where = env.rsplit("/", 1)[-1] or "no environment"
        return Ownership(
            False,
            "foreign-owner",
            f"a {kind} named {name} exists in environment {where} ({env or 'unknown'}), not in this "
            "one; SynosCD will not touch it (rename the manifest)",
        )
    if not is_managed(body):
        return Ownership(
            False,
            "unmanaged-conflict",
            f"a {kind} named {name} exists without tag {MANAGED_TAG}=true; SynosCD will not touch it "
            f"(synos adopt {name} to manage it, or rename the manifest)",
        )
    other = _tag(body, SOURCE_TAG)
    if other is None:
        return Ownership(
            False,
            "unmanaged-conflict",
            f"a {kind} named {name} is tagged {MANAGED_TAG}=true but has no {SOURCE_TAG} tag (made "
            f"before it existed); SynosCD will not touch it until adopted (synos adopt {name})",
        )
    if not same_source(other, source):
        return Ownership(
            False,
            "foreign-owner",
            f"a {kind} named {name} is managed from another source ({other}, not {source}); "
            "SynosCD will not touch it",
        )
    owner = target_of(body)
    if owner != target.lower():
        return Ownership(
            False,
            "foreign-owner",
            f"a {kind} named {name} is managed by target {owner}, not {target}; SynosCD will not touch "
            f"it here"
            + (f" (synos adopt --target {target} {name} to move it)" if owner == DEFAULT_TARGET else ""),
        )
    return Ownership(True)


# -- manifest -> ARM ------------------------------------------------------------------------------


def _env_var(var: EnvVar) -> dict[str, Any]:
    if var.value_from is not None:
        return {"name": var.name, "secretRef": var.value_from.secret_ref}
    return {"name": var.name, "value": var.value or ""}


def _container(
    c: Container | InitContainer, shared_env: list[EnvVar], config_hash: str | None, mounts_owned: bool
) -> dict[str, Any]:
    # spec.environment applies to every container; a container's own variable of the same name wins.
    own = {v.name for v in c.env}
    env = [_env_var(v) for v in shared_env if v.name not in own] + [_env_var(v) for v in c.env]
    if config_hash:
        env = [e for e in env if e["name"] != CONFIG_HASH_ENV] + [
            {"name": CONFIG_HASH_ENV, "value": config_hash}
        ]
    out: dict[str, Any] = {"name": c.name, "image": c.image}
    if c.cpu is not None and c.memory is not None:
        out["resources"] = {"cpu": c.cpu, "memory": c.memory}
    for key, value in (("command", c.command), ("args", c.args), ("env", env)):
        if value:
            out[key] = list(value)
    if isinstance(c, Container) and c.probes:
        out["probes"] = [
            p.model_dump(by_alias=True, exclude_none=True, exclude_defaults=False) for p in c.probes
        ]
    # Mounts are owned when the container declares them, or when the manifest owns the volumes (a
    # mount of a volume that is gone would be refused).
    if c.volume_mounts or mounts_owned:
        out["volumeMounts"] = [m.model_dump(by_alias=True, exclude_none=True) for m in c.volume_mounts]
    return out


def _scale_rule(rule: ScaleRule) -> dict[str, Any]:
    out: dict[str, Any] = {"name": rule.name}
    if rule.http is not None:
        out["http"] = rule.http.model_dump(by_alias=True, exclude_defaults=True)
    elif rule.tcp is not None:
        out["tcp"] = rule.tcp.model_dump(by_alias=True, exclude_defaults=True)
    elif rule.custom is not None:
        custom = rule.custom.model_dump(by_alias=True, exclude_none=True, exclude_defaults=True)
        custom["type"] = rule.custom.type
        out["custom"] = custom
    elif rule.azure_queue is not None:
        out["azureQueue"] = rule.azure_queue.model_dump(
            by_alias=True, exclude_none=True, exclude_defaults=True
        )
    return out


def _secret_identity(spec: AppSpec | JobSpec) -> str:
    # Key Vault references are read by an identity of the app: the first one listed, else system.
    return spec.identity[0] if spec.identity else "system"


def _rule_identities(spec: AppSpec | JobSpec) -> list[str | None]:
    if isinstance(spec, AppSpec):
        rules = spec.scale.rules if spec.scale else []
        return [
            part.identity for rule in rules for part in (rule.custom, rule.azure_queue) if part is not None
        ]
    return [rule.identity for rule in (spec.scale.rules if spec.scale else [])]


def _identity(spec: AppSpec | JobSpec) -> dict[str, Any] | None:
    """The identities the manifest needs attached: those it lists, and the system-assigned one when a
    Key Vault secret, a registry or a scale rule uses it. Others attached by hand are not ours."""
    users = [rid for rid in spec.identity if rid != "system"]
    uses = [r.identity for r in spec.registries] + _rule_identities(spec)
    if spec.secrets:
        uses.append(_secret_identity(spec))
    system = "system" in spec.identity or "system" in uses
    kind = ",".join(k for k, on in (("SystemAssigned", system), ("UserAssigned", bool(users))) if on)
    if not kind:
        return None
    out: dict[str, Any] = {"type": kind}
    if users:
        out["userAssignedIdentities"] = {rid: {} for rid in users}
    return out


def _registry(r: Registry) -> dict[str, Any]:
    out: dict[str, Any] = {"server": r.server}
    if r.identity:
        out["identity"] = r.identity
    if r.username:
        out["username"] = r.username
    if r.password_secret_ref:
        out["passwordSecretRef"] = r.password_secret_ref
    return out


def _common_configuration(spec: AppSpec | JobSpec) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if spec.secrets:
        identity = _secret_identity(spec)
        config["secrets"] = [
            {"name": n, "keyVaultUrl": url, "identity": identity} for n, url in spec.secrets.items()
        ]
    if spec.registries:
        config["registries"] = [_registry(r) for r in spec.registries]
    return config


def _tags(spec: AppSpec | JobSpec, target: Target, extra: Mapping[str, str]) -> dict[str, str]:
    return {
        **spec.tags,
        **extra,
        MANAGED_TAG: "true",
        SOURCE_TAG: target.source,
        REVISION_TAG: target.revision,
        **target_tags(target.name),
    }


def target_tags(target: str) -> dict[str, str]:
    """The ownership tag of a fleet's target; none for the default target (its resources predate
    fleets: adding a tag would rewrite every one of them)."""
    return {} if target == DEFAULT_TARGET else {TARGET_TAG: target}


def _declared(model: Any, field: str) -> bool:
    """Set in the manifest (or by its project's defaults), even to the default value or empty."""
    return field in model.model_fields_set


def _template(spec: AppSpec | JobSpec, config_hash: str | None) -> dict[str, Any]:
    volumes = _declared(spec, "volumes")
    template: dict[str, Any] = {
        "containers": [_container(c, spec.environment, config_hash, volumes) for c in spec.containers]
    }
    if volumes:
        template["volumes"] = [v.model_dump(by_alias=True, exclude_none=True) for v in spec.volumes]
    if _declared(spec, "init_containers"):
        template["initContainers"] = [
            _container(c, spec.environment, None, volumes) for c in spec.init_containers
        ]
    return template


def _ingress(ing: Ingress) -> dict[str, Any] | None:
    if not ing.enabled:
        return None  # owned, and off: the write removes it
    ingress: dict[str, Any] = {
        "external": ing.external,
        "transport": ing.transport,
        "allowInsecure": ing.allow_insecure,
    }
    if ing.target_port is not None:
        ingress["targetPort"] = ing.target_port
    if _declared(ing, "allowed_origins"):
        ingress["corsPolicy"] = {"allowedOrigins": list(ing.allowed_origins)} if ing.allowed_origins else None
    if _declared(ing, "ip_security_restrictions"):
        ingress["ipSecurityRestrictions"] = [
            r.model_dump(by_alias=True, exclude_none=True) for r in ing.ip_security_restrictions
        ]
    if ing.sticky_sessions is not None:
        ingress["stickySessions"] = {"affinity": ing.sticky_sessions.affinity}
    return ingress


def app_envelope(
    app: App, target: Target, config_hash: str | None = None, extra_tags: Mapping[str, str] | None = None
) -> dict[str, Any]:
    spec = app.spec
    config = _common_configuration(spec)
    if spec.active_revisions_mode is not None:
        config["activeRevisionsMode"] = spec.active_revisions_mode
    if spec.max_inactive_revisions is not None:
        config["maxInactiveRevisions"] = spec.max_inactive_revisions
    if spec.ingress is not None:
        config["ingress"] = _ingress(spec.ingress)
    template = _template(spec, config_hash)
    if spec.scale is not None:
        template["scale"] = {"minReplicas": spec.scale.min_replicas, "maxReplicas": spec.scale.max_replicas}
        if _declared(spec.scale, "rules"):
            template["scale"]["rules"] = [_scale_rule(r) for r in spec.scale.rules]
    if spec.termination_grace_period_seconds is not None:
        template["terminationGracePeriodSeconds"] = spec.termination_grace_period_seconds
    return _envelope(spec, target, extra_tags, config, template)


def _envelope(
    spec: AppSpec | JobSpec,
    target: Target,
    extra_tags: Mapping[str, str] | None,
    config: dict[str, Any],
    template: dict[str, Any],
) -> dict[str, Any]:
    props: dict[str, Any] = {"environmentId": target.environment_id}
    if spec.workload_profile_name is not None:
        props["workloadProfileName"] = spec.workload_profile_name
    body: dict[str, Any] = {
        "location": target.location,
        "tags": _tags(spec, target, extra_tags or {}),
        "properties": {**props, "configuration": config, "template": template},
    }
    identity = _identity(spec)
    if identity:
        body["identity"] = identity
    return body


def job_envelope(
    job: Job,
    target: Target,
    config_hash: str | None = None,
    extra_tags: Mapping[str, str] | None = None,
    manual: bool = False,
) -> dict[str, Any]:
    """`manual`: a hook, which SynosCD starts itself (trigger type Manual, whatever the manifest says)."""
    spec = job.spec
    trigger = "Manual" if manual else spec.trigger_type
    config: dict[str, Any] = {
        "triggerType": trigger,
        "replicaTimeout": spec.replica_timeout,
        "replicaRetryLimit": spec.replica_retry_limit,
        **_common_configuration(spec),
    }
    counts = {"parallelism": spec.parallelism, "replicaCompletionCount": spec.replica_completion_count}
    if trigger == "Manual":
        config["manualTriggerConfig"] = counts
    elif trigger == "Schedule":
        config["scheduleTriggerConfig"] = {"cronExpression": spec.cron_expression, **counts}
    else:
        event: dict[str, Any] = dict(counts)
        if spec.scale is not None:
            event["scale"] = spec.scale.model_dump(by_alias=True, exclude_none=True)
        config["eventTriggerConfig"] = event
    return _envelope(spec, target, extra_tags, config, _template(spec, config_hash))


def sync_tags(wave: int | None, options: frozenset[str], hook_phases: tuple[str, ...]) -> dict[str, str]:
    """ARM resources have no annotations: a resource's wave, sync options and hook phases travel as
    tags (only when set), so a later prune task reads them from the live resource."""
    tags: dict[str, str] = {}
    if wave is not None:
        tags[WAVE_TAG] = str(wave)
    if options:
        tags[OPTIONS_TAG] = ",".join(sorted(options))
    if hook_phases:
        tags[HOOK_TAG] = ",".join(hook_phases)
    return tags


def config_hash(parts: Mapping[str, bytes | str | None]) -> str:
    """A stable hash of config file contents and secret versions: stamped into the template so a change
    rolls a new revision (ACA does not roll on secret or configuration changes)."""
    h = hashlib.sha256()
    for key in sorted(parts):
        value = parts[key]
        data = value.encode() if isinstance(value, str) else (value if value is not None else b"\0missing")
        h.update(key.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()[:16]
