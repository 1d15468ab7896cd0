"""A live Container App or Job as a manifest (`synos export`): everything the schema can express, so
that once committed and adopted the next pass plans no write for it. What the schema cannot express
is left out of the manifest, and so left unowned (kept as it is on every write); `unowned(...)` names
it for the user. Pure: a live GET body in, a manifest (plain data) out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from synoscd.azure.fields import EMPTY, image, memory, text
from synoscd.azure.normalise import Identity, _rule_shape
from synoscd.azure.translate import HOOK_TAG, OPTIONS_TAG, WAVE_TAG
from synoscd.manifests import syncspec
from synoscd.manifests.schema import API_VERSION, Probe

SYNOSCD_TAG_PREFIX = "synoscd-"
_ANNOTATIONS = {WAVE_TAG: syncspec.WAVE, OPTIONS_TAG: syncspec.OPTIONS, HOOK_TAG: syncspec.HOOK}
_TRANSPORTS = ("auto", "http", "http2", "tcp")
DEFAULT_MAX_INACTIVE = 100  # the service's default: left unowned rather than written into every manifest


@dataclass(frozen=True)
class Exported:
    kind: str
    name: str
    manifest: dict[str, Any]
    unowned: tuple[str, ...]  # live fields the manifest does not express (kept as they are)


def export(kind: str, body: Mapping[str, Any]) -> Exported:
    props = body.get("properties") or {}
    config = props.get("configuration") or {}
    template = props.get("template") or {}
    spec: dict[str, Any] = {}
    unowned: list[str] = []

    spec["containers"] = [
        _container(c, probes=True, unowned=unowned) for c in template.get("containers") or []
    ]
    if template.get("initContainers"):
        spec["initContainers"] = [_container(c, probes=False) for c in template["initContainers"]]
    if template.get("volumes"):
        spec["volumes"] = [_volume(v) for v in template["volumes"]]
    if kind == "App":
        _app(config, template, spec)
    else:
        _job(config, spec)
    if config.get("registries"):
        spec["registries"] = [_registry(r) for r in config["registries"]]
    secret_identity = _secrets(config, spec, unowned)
    identities = _identities(body.get("identity"), secret_identity)
    if identities:
        spec["identity"] = identities
    tags = {
        k: str(v) for k, v in (body.get("tags") or {}).items() if not k.lower().startswith(SYNOSCD_TAG_PREFIX)
    }
    if tags:
        spec["tags"] = tags
    profile = props.get("workloadProfileName")
    if profile not in EMPTY and str(profile) != "Consumption":
        spec["workloadProfileName"] = str(profile)
    metadata: dict[str, Any] = {"name": body["name"]}
    annotations = {_ANNOTATIONS[k]: str(v) for k, v in (body.get("tags") or {}).items() if k in _ANNOTATIONS}
    if annotations:
        metadata["annotations"] = annotations
    manifest = {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}
    unowned += _unexpressed(kind, body)
    return Exported(kind, str(body["name"]), manifest, tuple(unowned))


# -- parts ----------------------------------------------------------------------------------------


def _drop_empty(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v not in EMPTY}


def _cpu(value: Any) -> Any:
    number = Decimal(str(value))
    return int(number) if number == number.to_integral_value() else float(number)


def _env(items: Any) -> list[dict[str, Any]]:
    out = []
    for e in items or []:
        if e.get("secretRef"):
            out.append({"name": e["name"], "valueFrom": {"secretRef": e["secretRef"]}})
        else:
            out.append({"name": e["name"], "value": "" if e.get("value") is None else str(e["value"])})
    return out


def _container(c: Mapping[str, Any], probes: bool, unowned: list[str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c["name"], "image": image(c.get("image"))}
    res = c.get("resources") or {}
    if res.get("cpu") not in EMPTY and res.get("memory") not in EMPTY:
        out["cpu"] = _cpu(res["cpu"])
        out["memory"] = memory(res["memory"])
    for key in ("command", "args"):
        if c.get(key):
            out[key] = [str(v) for v in c[key]]
    if c.get("env"):
        out["env"] = _env(c["env"])
    if probes and c.get("probes"):
        exported = [_probe(p) for p in c["probes"]]
        try:
            for probe in exported:
                Probe.model_validate(probe)
        except ValidationError:
            # Values the schema cannot express (the platform's own startup probe allows
            # failureThreshold 240): the probes stay unowned, kept as they are.
            if unowned is not None:
                unowned.append(f"template.containers[{c['name']}].probes")
        else:
            out["probes"] = exported
    if c.get("volumeMounts"):
        out["volumeMounts"] = [
            _drop_empty({k: m.get(k) for k in ("volumeName", "mountPath", "subPath")})
            for m in c["volumeMounts"]
        ]
    return out


def _probe(p: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"type": str(p.get("type", "")).capitalize()}
    http = p.get("httpGet")
    if http:
        get: dict[str, Any] = _drop_empty({k: http.get(k) for k in ("path", "port", "host")})
        if http.get("scheme"):
            get["scheme"] = str(http["scheme"]).upper()
        if http.get("httpHeaders"):
            get["httpHeaders"] = [{"name": h["name"], "value": h["value"]} for h in http["httpHeaders"]]
        out["httpGet"] = get
    tcp = p.get("tcpSocket")
    if tcp:
        out["tcpSocket"] = _drop_empty({k: tcp.get(k) for k in ("port", "host")})
    for key in (
        "initialDelaySeconds",
        "periodSeconds",
        "timeoutSeconds",
        "failureThreshold",
        "successThreshold",
    ):
        if p.get(key) is not None:
            out[key] = p[key]
    return out


def _volume(v: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"name": v["name"]}
    kind = {t.lower(): t for t in ("EmptyDir", "AzureFile", "NfsAzureFile", "Secret")}.get(
        str(v.get("storageType") or "EmptyDir").lower()
    )
    if kind and kind != "EmptyDir":
        out["storageType"] = kind
    for key in ("storageName", "mountOptions"):
        if v.get(key) not in EMPTY:
            out[key] = v[key]
    return out


def _app(config: Mapping[str, Any], template: Mapping[str, Any], spec: dict[str, Any]) -> None:
    ingress = config.get("ingress")
    if ingress:
        ing: dict[str, Any] = {"enabled": True, "external": bool(ingress.get("external"))}
        if ingress.get("targetPort") is not None:
            ing["targetPort"] = ingress["targetPort"]
        transport = str(ingress.get("transport") or "auto").lower()
        if transport in _TRANSPORTS and transport != "auto":
            ing["transport"] = transport
        if ingress.get("allowInsecure"):
            ing["allowInsecure"] = True
        origins = (ingress.get("corsPolicy") or {}).get("allowedOrigins")
        if origins:
            ing["allowedOrigins"] = list(origins)
        if ingress.get("ipSecurityRestrictions"):
            ing["ipSecurityRestrictions"] = [
                _drop_empty({k: r.get(k) for k in ("name", "ipAddressRange", "action", "description")})
                for r in ingress["ipSecurityRestrictions"]
            ]
        affinity = (ingress.get("stickySessions") or {}).get("affinity")
        if affinity and str(affinity).lower() != "none":
            ing["stickySessions"] = {"affinity": str(affinity).lower()}
        spec["ingress"] = ing
    mode = str(config.get("activeRevisionsMode") or "Single").capitalize()
    if mode != "Single":
        spec["activeRevisionsMode"] = mode
    if config.get("maxInactiveRevisions") not in (None, DEFAULT_MAX_INACTIVE):
        spec["maxInactiveRevisions"] = config["maxInactiveRevisions"]
    if template.get("terminationGracePeriodSeconds") is not None:
        spec["terminationGracePeriodSeconds"] = template["terminationGracePeriodSeconds"]
    scale = template.get("scale") or {}
    rules = [_app_rule(r) for r in scale.get("rules") or []]
    low, high = scale.get("minReplicas"), scale.get("maxReplicas")
    if rules or low not in (None, 0) or high not in (None, 10):
        out: dict[str, Any] = {"minReplicas": low or 0, "maxReplicas": 10 if high is None else high}
        if rules:
            out["rules"] = rules
        spec["scale"] = out


def _auth(items: Any) -> list[dict[str, str]]:
    return [{"secretRef": a["secretRef"], "triggerParameter": a["triggerParameter"]} for a in items or []]


def _rule_part(part: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in keys:
        value = part.get(key)
        if key == "metadata" and value:
            out[key] = {str(k): str(v) for k, v in value.items()}
        elif key == "auth" and value:
            out[key] = _auth(value)
        elif value not in EMPTY and key not in ("metadata", "auth"):
            out[key] = value
    return out


def _app_rule(rule: Mapping[str, Any]) -> dict[str, Any]:
    rule = _rule_shape(rule)
    out: dict[str, Any] = {"name": rule["name"]}
    if rule.get("http"):
        out["http"] = _rule_part(rule["http"], "metadata", "auth")
    elif rule.get("tcp"):
        out["tcp"] = _rule_part(rule["tcp"], "metadata", "auth")
    elif rule.get("custom"):
        out["custom"] = _rule_part(rule["custom"], "type", "metadata", "auth", "identity")
    elif rule.get("azureQueue"):
        out["azureQueue"] = _rule_part(
            rule["azureQueue"], "queueName", "queueLength", "accountName", "auth", "identity"
        )
    return out


def _job(config: Mapping[str, Any], spec: dict[str, Any]) -> None:
    trigger = str(config.get("triggerType") or "Manual").capitalize()
    spec["triggerType"] = trigger
    for key in ("replicaTimeout", "replicaRetryLimit"):
        if config.get(key) is not None:
            spec[key] = config[key]
    part = config.get(f"{trigger[0].lower()}{trigger[1:]}TriggerConfig") or {}
    for key in ("parallelism", "replicaCompletionCount"):
        if part.get(key) is not None:
            spec[key] = part[key]
    if trigger == "Schedule" and part.get("cronExpression"):
        spec["cronExpression"] = part["cronExpression"]
    scale = part.get("scale")
    if trigger == "Event" and scale:
        out: dict[str, Any] = {
            k: scale[k]
            for k in ("minExecutions", "maxExecutions", "pollingInterval")
            if scale.get(k) is not None
        }
        out["rules"] = [
            {"name": r["name"], **_rule_part(r, "type", "metadata", "auth", "identity")}
            for r in scale.get("rules") or []
        ]
        spec["scale"] = out


def _secrets(config: Mapping[str, Any], spec: dict[str, Any], unowned: list[str]) -> str | None:
    """Key Vault references become `secrets`; value secrets (whose values a GET never shows) are
    listed in `externalSecrets`: referenced by the manifest, kept on the app, never written. Returns
    the identity the Key Vault secrets are read with."""
    vault = [s for s in config.get("secrets") or [] if s.get("keyVaultUrl")]
    values = [s["name"] for s in config.get("secrets") or [] if not s.get("keyVaultUrl")]
    # A reference to a secret the app does not have is accepted by the service (recorded): it is
    # listed too, so the manifest validates; SynosCD never writes an external secret.
    vault_names = {s["name"] for s in vault}
    values += sorted(n for n in _references(spec) if n not in vault_names and n not in values)
    first = None
    if vault:
        # All of an app's Key Vault secrets are read with one identity in a manifest (its first).
        first = text(vault[0].get("identity")) or "system"
        same = [s for s in vault if (text(s.get("identity")) or "system").lower() == first.lower()]
        spec["secrets"] = {s["name"]: s["keyVaultUrl"] for s in same}
        for s in vault:
            if s not in same:
                values.append(s["name"])
                unowned.append(f"configuration.secrets[{s['name']}] (read with another identity)")
    if values:
        spec["externalSecrets"] = values
    return first


def _references(spec: Mapping[str, Any]) -> set[str]:
    """Secret names the exported spec refers to (env, scale-rule auth, registry passwords)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key in ("secretRef", "passwordSecretRef") and isinstance(item, str) and item:
                    found.add(item)
                else:
                    walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(spec)
    return found


def _registry(r: Mapping[str, Any]) -> dict[str, Any]:
    return _drop_empty({k: r.get(k) for k in ("server", "identity", "username", "passwordSecretRef")})


def _identities(identity: Any, first: str | None) -> list[str]:
    """The attached identities, the one the Key Vault secrets are read with first (a manifest's
    secrets use its first identity)."""
    system, users = Identity.parts(identity)
    listed = (["system"] if system else []) + sorted(users.values(), key=str.lower)
    if first:
        match = next((i for i in listed if i.lower() == first.lower()), None)
        if match is None:  # the secrets' identity is not attached: list it (the service needs it)
            match = first
            listed.append(first)
        listed = [match] + [i for i in listed if i != match]
    return listed


# -- what stays unowned ---------------------------------------------------------------------------

# Live fields a manifest cannot express, with the value that means "nothing set" (server defaults).
_UNEXPRESSED: tuple[tuple[tuple[str, ...], Any], ...] = (
    (("properties", "configuration", "dapr"), None),
    (("properties", "configuration", "service"), None),
    (("properties", "configuration", "runtime"), None),
    (("properties", "configuration", "identitySettings"), None),
    (("properties", "configuration", "ingress", "customDomains"), None),
    (("properties", "configuration", "ingress", "clientCertificateMode"), None),
    (("properties", "configuration", "ingress", "additionalPortMappings"), None),
    (("properties", "configuration", "ingress", "exposedPort"), 0),
    (("properties", "configuration", "ingress", "targetPortHttpScheme"), None),
    (("properties", "configuration", "ingress", "traffic"), [{"weight": 100, "latestRevision": True}]),
    (("properties", "template", "serviceBinds"), None),
    (("properties", "template", "revisionSuffix"), None),
    (("properties", "template", "scale", "cooldownPeriod"), 300),
    (("properties", "template", "scale", "pollingInterval"), 30),
)


def _unexpressed(kind: str, body: Mapping[str, Any]) -> list[str]:
    found = []
    for path, default in _UNEXPRESSED:
        value: Any = body
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if value in EMPTY or value == default:
            continue
        if path[-1] == "corsPolicy":
            continue
        found.append(".".join(path[1:]))
    cors = ((body.get("properties") or {}).get("configuration") or {}).get("ingress") or {}
    extra_cors = {k: v for k, v in (cors.get("corsPolicy") or {}).items() if k != "allowedOrigins"}
    if any(v not in EMPTY and v is not False for v in extra_cors.values()):
        found.append("configuration.ingress.corsPolicy (all but allowedOrigins)")
    return found
