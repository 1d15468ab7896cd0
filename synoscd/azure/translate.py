"""Manifests to ARM bodies, and live ARM bodies to the same canonical shape, so the diff compares
like with like.

`envelope(...)` is what SynosCD PUTs. `canonical(body)` projects any body — ours or a live one — onto
the fields a manifest owns, normalising server-side rewrites (memory units, scale-rule request vs
response shape, casing of enums, defaults the server fills in). Read-only fields (provisioningState,
fqdn, latestRevisionName, systemData, ...) are never part of the projection, so they never count as
drift. A field a manifest leaves out is not owned: where the server fills a default for an absent
field (probes when ingress is on, traffic, stickySessions, ...) the projection leaves it out too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from synoscd.manifests.schema import App, AppSpec, Container, EnvVar, Job, JobSpec, Registry, ScaleRule

MANAGED_TAG = "synoscd-managed"
SOURCE_TAG = "synoscd-source"
REVISION_TAG = "synoscd-revision"
WAVE_TAG = "synoscd-sync-wave"
OPTIONS_TAG = "synoscd-sync-options"
HOOK_TAG = "synoscd-hook"
CONFIG_HASH_ENV = "SYNOSCD_CONFIG_HASH"
# Tags SynosCD writes but does not compare: the revision moves with every commit, and comparing it
# would rewrite every app on every commit.
UNCOMPARED_TAGS = frozenset({REVISION_TAG})


@dataclass(frozen=True)
class Target:
    """Where resources go: the environment (id and location) and what is being applied."""

    environment_id: str
    location: str
    source: str  # owner/repo:path
    revision: str


def is_managed(body: Mapping[str, Any]) -> bool:
    return str((body.get("tags") or {}).get(MANAGED_TAG, "")).lower() == "true"


# -- manifest -> ARM ------------------------------------------------------------------------------


def _env_var(var: EnvVar) -> dict[str, Any]:
    if var.value_from is not None:
        return {"name": var.name, "secretRef": var.value_from.secret_ref}
    return {"name": var.name, "value": var.value or ""}


def _container(c: Container, shared_env: list[EnvVar], config_hash: str | None) -> dict[str, Any]:
    # spec.environment applies to every container; a container's own variable of the same name wins.
    own = {v.name for v in c.env}
    env = [_env_var(v) for v in shared_env if v.name not in own] + [_env_var(v) for v in c.env]
    if config_hash:
        env = [e for e in env if e["name"] != CONFIG_HASH_ENV] + [
            {"name": CONFIG_HASH_ENV, "value": config_hash}
        ]
    out: dict[str, Any] = {
        "name": c.name,
        "image": c.image,
        "resources": {"cpu": c.cpu, "memory": c.memory},
    }
    for key, value in (("command", c.command), ("args", c.args), ("env", env)):
        if value:
            out[key] = list(value)
    if c.probes:
        out["probes"] = [
            p.model_dump(by_alias=True, exclude_none=True, exclude_defaults=False) for p in c.probes
        ]
    if c.volume_mounts:
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
    # Key Vault references are read by an identity of the app: the first user-assigned one, else system.
    return spec.identity[0] if spec.identity else "system"


def _identity(spec: AppSpec | JobSpec) -> dict[str, Any] | None:
    system = bool(spec.secrets) and not spec.identity
    users = {rid: {} for rid in spec.identity}
    if system and users:
        return {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": users}
    if users:
        return {"type": "UserAssigned", "userAssignedIdentities": users}
    return {"type": "SystemAssigned"} if system else None


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
    }


def _template(spec: AppSpec | JobSpec, config_hash: str | None) -> dict[str, Any]:
    template: dict[str, Any] = {
        "containers": [_container(c, spec.environment, config_hash) for c in spec.containers]
    }
    if spec.volumes:
        template["volumes"] = [v.model_dump(by_alias=True, exclude_none=True) for v in spec.volumes]
    return template


def app_envelope(
    app: App, target: Target, config_hash: str | None = None, extra_tags: Mapping[str, str] | None = None
) -> dict[str, Any]:
    spec = app.spec
    config = {"activeRevisionsMode": "Single", **_common_configuration(spec)}
    if spec.ingress is not None and spec.ingress.enabled:
        ing = spec.ingress
        ingress: dict[str, Any] = {
            "external": ing.external,
            "transport": ing.transport,
            "allowInsecure": ing.allow_insecure,
        }
        if ing.target_port is not None:
            ingress["targetPort"] = ing.target_port
        if ing.allowed_origins:
            ingress["corsPolicy"] = {"allowedOrigins": list(ing.allowed_origins)}
        config["ingress"] = ingress
    template = _template(spec, config_hash)
    if spec.scale is not None:
        template["scale"] = {"minReplicas": spec.scale.min_replicas, "maxReplicas": spec.scale.max_replicas}
        if spec.scale.rules:
            template["scale"]["rules"] = [_scale_rule(r) for r in spec.scale.rules]
    body: dict[str, Any] = {
        "location": target.location,
        "tags": _tags(spec, target, extra_tags or {}),
        "properties": {"environmentId": target.environment_id, "configuration": config, "template": template},
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
    body: dict[str, Any] = {
        "location": target.location,
        "tags": _tags(spec, target, extra_tags or {}),
        "properties": {
            "environmentId": target.environment_id,
            "configuration": config,
            "template": _template(spec, config_hash),
        },
    }
    identity = _identity(spec)
    if identity:
        body["identity"] = identity
    return body


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


# -- canonical projection (both sides of the diff) -------------------------------------------------


def _num(value: Any) -> Any:
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return value


def _memory(value: Any) -> Any:
    text = str(value).strip()
    try:
        if text.endswith("Gi"):
            return f"{Decimal(text[:-2]).normalize():f}Gi"
        if text.endswith("Mi"):
            return f"{(Decimal(text[:-2]) / 1024).normalize():f}Gi"
    except InvalidOperation:
        pass
    return text


def _pick(source: Mapping[str, Any] | None, *keys: str) -> dict[str, Any]:
    source = source or {}
    return {k: source[k] for k in keys if source.get(k) not in (None, [], {})}


def _owned(value: Any, shape: Any) -> Any:
    """`value` cut down to the keys `shape` has (recursively): the server fills defaults inside
    declared objects (probe thresholds, ...) that the manifest does not own."""
    if isinstance(value, Mapping) and isinstance(shape, Mapping):
        return {k: _owned(value.get(k), v) for k, v in shape.items()}
    if isinstance(value, list) and isinstance(shape, list) and len(value) == len(shape):
        return [_owned(v, sh) for v, sh in zip(value, shape, strict=True)]
    return value


def _clean(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _clean(v) for k, v in value.items() if v not in (None, [], {})}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _canon_container(c: Mapping[str, Any], probes_shape: list[Any] | None) -> dict[str, Any]:
    res = c.get("resources") or {}
    out: dict[str, Any] = {
        "name": c.get("name"),
        "image": c.get("image"),
        "resources": {"cpu": _num(res.get("cpu")), "memory": _memory(res.get("memory"))},
    }
    for key in ("command", "args", "env", "volumeMounts"):
        out[key] = list(c.get(key) or [])
    # ACA adds TCP probes when ingress is on and none are given: probes are owned only when declared.
    if probes_shape is not None:
        out["probes"] = _owned(_clean(list(c.get("probes") or [])), probes_shape)
    return out


def _canon_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    rule = dict(rule)
    custom = rule.get("custom")
    if isinstance(custom, dict) and str(custom.get("type", "")).lower() in ("http", "tcp"):
        kind = str(custom["type"]).lower()
        rule.pop("custom")
        rule[kind] = {k: v for k, v in custom.items() if k != "type"}
    return {k: v for k, v in rule.items() if v not in (None, [], {})}


def canonical(body: Mapping[str, Any], want: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The owned fields of `body`, normalised. `want` is the desired canonical form: optional fields it
    leaves out are left out here too (they are not owned)."""
    props = body.get("properties") or {}
    config = props.get("configuration") or {}
    template = props.get("template") or {}
    want_t = (want or {}).get("template") or {}
    want_c = (want or {}).get("configuration") or {}
    owned_probes = {c.get("name"): c["probes"] for c in want_t.get("containers") or [] if "probes" in c}
    containers = []
    for c in template.get("containers") or []:
        if want is None:
            shape = _clean(c["probes"]) if c.get("probes") else None
        else:
            shape = owned_probes.get(c.get("name"))
        containers.append(_canon_container(c, shape))
    out_t: dict[str, Any] = {"containers": containers}
    if want is None or "volumes" in want_t:
        out_t["volumes"] = list(template.get("volumes") or [])
    scale = template.get("scale")
    if scale is not None and (want is None or "scale" in want_t):
        out_t["scale"] = {
            "minReplicas": scale.get("minReplicas"),
            "maxReplicas": scale.get("maxReplicas"),
            "rules": [_canon_rule(r) for r in scale.get("rules") or []],
        }
    out_c: dict[str, Any] = {
        "secrets": sorted(
            (
                {k: s.get(k) for k in ("name", "keyVaultUrl", "identity") if s.get(k)}
                for s in config.get("secrets") or []
            ),
            key=lambda s: s.get("name", ""),
        ),
        "registries": list(config.get("registries") or []),
    }
    if "activeRevisionsMode" in config or (want and "activeRevisionsMode" in want_c):
        out_c["activeRevisionsMode"] = str(config.get("activeRevisionsMode") or "Single").capitalize()
    ingress = config.get("ingress")
    if ingress is not None:
        out_c["ingress"] = {
            "external": bool(ingress.get("external", False)),
            "targetPort": ingress.get("targetPort"),
            "transport": str(ingress.get("transport") or "auto").lower(),
            "allowInsecure": bool(ingress.get("allowInsecure", False)),
            "allowedOrigins": list((ingress.get("corsPolicy") or {}).get("allowedOrigins") or []),
        }
    else:
        out_c["ingress"] = None
    for key in ("triggerType", "replicaTimeout", "replicaRetryLimit"):
        if key in config:
            out_c[key] = config[key]
    for key in ("manualTriggerConfig", "scheduleTriggerConfig", "eventTriggerConfig"):
        if config.get(key):
            out_c[key] = _pick(
                config[key], "parallelism", "replicaCompletionCount", "cronExpression", "scale"
            )
    identity = body.get("identity") or {}
    tags = {k: v for k, v in (body.get("tags") or {}).items() if k not in UNCOMPARED_TAGS}
    if want is not None:
        # Tags others add (Azure Policy, cost tooling) are not ours: only the tags we set are compared.
        tags = {k: v for k, v in tags.items() if k in (want.get("tags") or {})}
    return {
        "tags": tags,
        "identity": {
            "type": str(identity.get("type") or "None").replace(" ", ""),
            "userAssignedIdentities": sorted(
                (identity.get("userAssignedIdentities") or {}).keys(), key=str.lower
            ),
        },
        "configuration": out_c,
        "template": out_t,
    }


def diff(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Field-level changes between a desired body and a live body: [{field, live, desired}]."""
    want = canonical(desired)
    have = canonical(live, want)
    if want == have:  # the common case, without walking the tree
        return []
    changes: list[dict[str, Any]] = []
    _walk(want, have, "", changes)
    return changes


def _walk(want: Any, have: Any, path: str, out: list[dict[str, Any]]) -> None:
    if isinstance(want, dict) and isinstance(have, dict):
        for key in sorted(want.keys() | have.keys()):
            _walk(want.get(key), have.get(key), f"{path}.{key}" if path else key, out)
    elif (
        isinstance(want, list)
        and isinstance(have, list)
        and len(want) == len(have)
        and all(isinstance(x, dict) for x in [*want, *have])
    ):
        for i, (w, h) in enumerate(zip(want, have, strict=True)):
            _walk(w, h, f"{path}[{i}]", out)
    elif _norm(want) != _norm(have):
        out.append({"field": path, "live": have, "desired": want})


def _norm(value: Any) -> Any:
    return json.loads(json.dumps(value, sort_keys=True, default=str))
