"""Request -> stored body: what ACA does to a PUT/PATCH body before a GET shows it.

Pure functions, each citing the recordings (tests/fixtures/aca-recordings) that show the behaviour.
The stored body is the newest api-version's shape; `versions.render` projects it onto older ones.
Rules in short:
- every property the api-version knows is present, `null` when unset (`scale.minReplicas: null`,
  `ingress.corsPolicy: null`, ...), while `null`s *inside list items* (containers, env, rules,
  volumes, traffic) are dropped, as are container fields that were `null`;
- server defaults: `activeRevisionsMode` Single, `maxInactiveRevisions` 100 on create only,
  `revisionSuffix` "", container resources 0.5 / 1Gi, ephemeral storage from the cpu,
  `scale.maxReplicas` 10, `ingress.exposedPort` 0, transport Auto, traffic 100% to latest,
  `workloadProfileName` Consumption, `identity: {type: None}`;
- enum casing is the server's (`single` -> Single, `auto` -> Auto, `"SystemAssigned,UserAssigned"`
  -> `"SystemAssigned, UserAssigned"`), numeric strings become numbers, `1.0Gi` becomes `1Gi`;
- user-assigned identity keys come back with the provider's casing
  (`microsoft.managedidentity/userassignedidentities` -> `Microsoft.ManagedIdentity/userAssignedIdentities`);
- secrets lose their values (listSecrets returns them), registries gain `identity: ""` or
  `username`/`passwordSecretRef: ""`, empty lists become `null`, and a scale rule's
  `custom: {type: http|tcp}` comes back as `http`/`tcp`, an event rule's `auth: []` without `auth`.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from emulators.arm.model import ArmError
from emulators.identity import TENANT_ID

APP_CONFIGURATION_KEYS = (
    "secrets",
    "activeRevisionsMode",
    "ingress",
    "registries",
    "identitySettings",
    "dapr",
    "runtime",
    "maxInactiveRevisions",
    "service",
)
INGRESS_KEYS = (
    "fqdn",
    "external",
    "targetPort",
    "exposedPort",
    "transport",
    "traffic",
    "customDomains",
    "allowInsecure",
    "ipSecurityRestrictions",
    "corsPolicy",
    "clientCertificateMode",
    "stickySessions",
    "additionalPortMappings",
    "targetPortHttpScheme",
)
DAPR_KEYS = (
    "enabled",
    "appId",
    "appProtocol",
    "appPort",
    "httpReadBufferSize",
    "httpMaxRequestSize",
    "logLevel",
    "enableApiLogging",
)
APP_TEMPLATE_KEYS = (
    "revisionSuffix",
    "terminationGracePeriodSeconds",
    "containers",
    "initContainers",
    "scale",
    "volumes",
    "serviceBinds",
)
SCALE_KEYS = ("minReplicas", "maxReplicas", "rules")
JOB_CONFIGURATION_KEYS = (
    "secrets",
    "triggerType",
    "replicaTimeout",
    "replicaRetryLimit",
    "manualTriggerConfig",
    "scheduleTriggerConfig",
    "eventTriggerConfig",
    "registries",
    "dapr",
    "identitySettings",
)
JOB_TEMPLATE_KEYS = ("containers", "initContainers", "volumes")

ENUMS = {
    "activeRevisionsMode": ("Single", "Multiple", "Labels"),
    "transport": ("Auto", "Http", "Http2", "Tcp"),
    "triggerType": ("Manual", "Schedule", "Event"),
    "clientCertificateMode": ("Ignore", "Accept", "Require"),
    "action": ("Allow", "Deny"),
    "bindingType": ("Disabled", "SniEnabled", "Auto"),
    "storageType": ("AzureFile", "EmptyDir", "Secret", "NfsAzureFile"),
    "affinity": ("sticky", "none"),
}
IDENTITY_TYPES = {
    "none": "None",
    "systemassigned": "SystemAssigned",
    "userassigned": "UserAssigned",
    "systemassigned,userassigned": "SystemAssigned, UserAssigned",
}
UAI_ID = re.compile(
    r"^/subscriptions/([^/]+)/resourcegroups/([^/]+)/providers/microsoft\.managedidentity/userassignedidentities/(.+)$",
    re.IGNORECASE,
)


# -- small rules ---------------------------------------------------------------------------------
def enum(field: str, value: Any) -> Any:
    """The server's casing of a known enum value; anything else as sent (the service rejects or keeps it)."""
    if not isinstance(value, str):
        return value
    for known in ENUMS.get(field, ()):
        if known.lower() == value.lower():
            return known
    return value


def number(value: Any) -> Any:
    """ "80" -> 80, "1.25" -> 1.25 (test_containerapp_compose_* and ingress_traffic recordings)."""
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?\d*\.\d+", value.strip()):
        return float(value)
    return value


def memory(value: Any) -> Any:
    """ "1.0Gi" -> "1Gi" (test_containerapp_e2e, test_containerapp_update_containers recordings)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(Gi|Mi)\s*", str(value)) if value is not None else None
    if not m:
        return value
    amount = Decimal(m.group(1)).normalize()
    return f"{amount:f}{m.group(2)}"


def ephemeral_storage(cpu: Any) -> str:
    """ACA sizes ephemeral storage by cpu whatever was asked: 0.25 -> 1Gi, 0.5 -> 2Gi, up to 1 -> 4Gi,
    more -> 8Gi (test_containerapp_runtime_java_update, test_container_app_mount_azurefile_e2e,
    test_containerapp_compose_create_with_replicas_global_scale recordings)."""
    try:
        c = Decimal(str(cpu))
    except InvalidOperation:
        return "2Gi"
    for limit, size in ((Decimal("0.25"), "1Gi"), (Decimal("0.5"), "2Gi"), (Decimal("1"), "4Gi")):
        if c <= limit:
            return size
    return "8Gi"


def drop_nulls(obj: Any) -> Any:
    """A list item as ACA keeps it: keys sent as null are left out."""
    if not isinstance(obj, dict):
        return obj
    return {k: v for k, v in obj.items() if v is not None}


def with_keys(obj: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any]:
    """Every key of the api-version's model, null when unset, then whatever else was sent."""
    obj = obj or {}
    out = {k: obj.get(k) for k in keys}
    out.update({k: v for k, v in obj.items() if k not in out})
    return out


def nonempty(items: Any) -> Any:
    """An empty list comes back null (secrets, scale rules, service binds: test_containerapp_dapr_e2e,
    test_containerapp_compose_create_with_replicas_global_scale, test_containerapp_java_component)."""
    return items if items else None


def canonical_identity_id(rid: str) -> str:
    """A user-assigned identity's key as the identity service spells it: `resourcegroups` in lower
    case, `Microsoft.ManagedIdentity/userAssignedIdentities`, names as sent
    (test_containerapp_registry_identity_user: `.../microsoft.managedidentity/userassignedidentities/...`
    comes back `.../Microsoft.ManagedIdentity/userAssignedIdentities/...`;
    test_containerapp_eventjob_identity_keda: `resourceGroups` comes back `resourcegroups`)."""
    m = UAI_ID.match(rid)
    if not m:
        return rid
    sub, rg, name = m.groups()
    provider = "Microsoft.ManagedIdentity/userAssignedIdentities"
    return f"/subscriptions/{sub}/resourcegroups/{rg}/providers/{provider}/{name}"


# -- identity ------------------------------------------------------------------------------------
def identity_block(requested: Any, previous: dict[str, Any] | None, resource_id: str) -> dict[str, Any]:
    """`identity` as GET shows it: `{type: None}` when none was asked (every recording), ids minted
    for system- and user-assigned identities, the system one stable across updates
    (test_containerapp_identity_user)."""
    requested = requested or {}
    raw_type = str(requested.get("type") or "None")
    kind = IDENTITY_TYPES.get(raw_type.replace(" ", "").lower())
    if kind is None:
        raise ArmError(
            400,
            "InvalidIdentityType",
            f"identity.type '{raw_type}' is not one of None, SystemAssigned, UserAssigned, "
            "'SystemAssigned,UserAssigned'.",
        )
    out: dict[str, Any] = {"type": kind}
    if "SystemAssigned" in kind:
        keep = previous if previous and "SystemAssigned" in str(previous.get("type")) else None
        out["principalId"] = (keep or {}).get("principalId") or str(
            uuid.uuid5(uuid.NAMESPACE_URL, "system:" + resource_id.lower())
        )
        out["tenantId"] = (keep or {}).get("tenantId") or TENANT_ID
    if "UserAssigned" in kind:
        out["userAssignedIdentities"] = {
            canonical_identity_id(rid): {
                "principalId": str(uuid.uuid5(uuid.NAMESPACE_URL, "principal:" + rid.lower())),
                "clientId": str(uuid.uuid5(uuid.NAMESPACE_URL, "client:" + rid.lower())),
            }
            for rid in (requested.get("userAssignedIdentities") or {})
        }
    return out


# -- configuration parts -------------------------------------------------------------------------
def secrets_block(items: Any) -> list[dict[str, Any]] | None:
    """Names, and Key Vault references; values never (test_containerapp_create_with_yaml: sent with
    value and empty keyVaultUrl/identity, read back as `{name}`)."""
    out = []
    for s in items or []:
        kept = {"name": s.get("name")}
        for k in ("keyVaultUrl", "identity"):
            if s.get(k):
                kept[k] = s[k]
        out.append(kept)
    return nonempty(out)


def secret_values(items: Any, previous: dict[str, str]) -> dict[str, str]:
    """What listSecrets answers: the values sent, or the stored value of a secret resent without one."""
    values: dict[str, str] = {}
    for s in items or []:
        name = s.get("name")
        if s.get("value") is not None:
            values[name] = s["value"]
        elif name in previous:
            values[name] = previous[name]
    return values


def registries_block(items: Any, fill: bool = True) -> list[dict[str, Any]] | None:
    """Every registry has server, username, passwordSecretRef and identity, "" when unused
    (test_container_acr: username/password registry -> `identity: ""`;
    test_containerapp_registry_identity_user: identity registry -> `username: ""`). A job update
    leaves the unused ones out instead (test_containerappjob_identity_registry_env_msi)."""
    if items is None:
        return None
    if not fill:
        return [drop_nulls(r) for r in items]
    out = []
    for r in items:
        entry = {
            k: r.get(k) if r.get(k) is not None else "" for k in ("server", "username", "passwordSecretRef")
        }
        entry["identity"] = r.get("identity") or ""
        out.append(entry | {k: v for k, v in drop_nulls(r).items() if k not in entry})
    return out


def ingress_block(ingress: Any, name: str, domain: str) -> dict[str, Any] | None:
    if ingress is None:
        return None
    out = with_keys(ingress, INGRESS_KEYS)
    out["external"] = bool(out["external"])
    out["fqdn"] = f"{name}.{domain}" if out["external"] else f"{name}.internal.{domain}"
    out["targetPort"] = number(out["targetPort"])
    out["exposedPort"] = number(out["exposedPort"]) or 0
    out["transport"] = enum("transport", out["transport"] or "Auto")
    out["allowInsecure"] = bool(out["allowInsecure"])
    # `latestRevision: false` is left out (test_containerapp_ingress_traffic_e2e).
    traffic = [{k: v for k, v in drop_nulls(t).items() if v is not False} for t in out["traffic"] or []]
    for t in traffic:
        if "weight" in t:
            t["weight"] = number(t["weight"])
    out["traffic"] = traffic or [{"weight": 100, "latestRevision": True}]
    if out["customDomains"] is not None:
        # Sorted by host name; none left is null (test_containerapp_custom_domains_e2e).
        domains = [
            drop_nulls(d)
            | ({"bindingType": enum("bindingType", d["bindingType"])} if d.get("bindingType") else {})
            for d in out["customDomains"]
        ]
        out["customDomains"] = nonempty(sorted(domains, key=lambda d: str(d.get("name"))))
    if out["ipSecurityRestrictions"] is not None:
        # None left is null (test_containerapp_ip_restrictions_deny).
        out["ipSecurityRestrictions"] = nonempty(
            [
                drop_nulls(r) | ({"action": enum("action", r["action"])} if r.get("action") else {})
                for r in out["ipSecurityRestrictions"]
            ]
        )
    if isinstance(out["corsPolicy"], dict):
        # Empty lists come back null (test_containerapp_cors_policy: `exposeHeaders: []`).
        out["corsPolicy"] = {
            k: nonempty(v) if isinstance(v, list) else v for k, v in out["corsPolicy"].items()
        }
        if out["corsPolicy"].get("maxAge") is not None:
            out["corsPolicy"]["maxAge"] = number(out["corsPolicy"]["maxAge"])
    out["clientCertificateMode"] = enum("clientCertificateMode", out["clientCertificateMode"])
    if isinstance(out["stickySessions"], dict):
        out["stickySessions"] = {"affinity": enum("affinity", out["stickySessions"].get("affinity"))}
    if out["additionalPortMappings"] is not None:
        # Unlike the main port, an extra one without exposedPort reads back null
        # (test_containerapp_preview_create_with_yaml).
        out["additionalPortMappings"] = [
            {
                "external": bool(m.get("external")),
                "targetPort": number(m.get("targetPort")),
                "exposedPort": None,
            }
            | {k: number(v) for k, v in drop_nulls(m).items() if k in ("targetPort", "exposedPort")}
            for m in out["additionalPortMappings"]
        ]
    return out


def app_configuration(config: Any, default_max_inactive: bool, name: str, domain: str) -> dict[str, Any]:
    out = with_keys(config, APP_CONFIGURATION_KEYS)
    out["secrets"] = secrets_block(out["secrets"])
    out["activeRevisionsMode"] = enum("activeRevisionsMode", out["activeRevisionsMode"] or "Single")
    out["ingress"] = ingress_block(out["ingress"], name, domain)
    out["registries"] = registries_block(out["registries"])
    out["identitySettings"] = [drop_nulls(s) for s in out["identitySettings"] or []]
    if isinstance(out["dapr"], dict):
        out["dapr"] = with_keys(out["dapr"], DAPR_KEYS)
    if isinstance(out["runtime"], dict):
        out["runtime"] = prune_empty(out["runtime"])
    # 100 when an app is created without it; an update that leaves it out clears it
    # (test_containerapp_create_source_and_image_e2e: 100, then null after the second PUT).
    if out["maxInactiveRevisions"] is None and default_max_inactive:
        out["maxInactiveRevisions"] = 100
    return out


def prune_empty(obj: Any) -> Any:
    """`{"logging": {"loggerSettings": []}}` comes back `{"logging": {}}`
    (test_containerapp_runtime_java_update)."""
    if isinstance(obj, dict):
        return {k: prune_empty(v) for k, v in obj.items() if v is not None and v != []}
    return obj


# -- template parts ------------------------------------------------------------------------------
def container(c: dict[str, Any], kind: str, create: bool, blank_job_storage: bool = False) -> dict[str, Any]:
    out = drop_nulls(c)
    out.pop("imageType", None)
    shaped: dict[str, Any] = {
        "image": out.pop("image", None),
        "imageType": "ContainerImage",
        "name": out.pop("name", None),
    }
    shaped.update(out)
    res = drop_nulls(shaped.get("resources") or {})
    cpu = number(res.get("cpu", 0.5))
    resources: dict[str, Any] = {
        "cpu": float(cpu) if isinstance(cpu, int) else cpu,
        "memory": memory(res.get("memory", "1Gi")),
    }
    if kind == "containerApps" or not blank_job_storage:
        resources["ephemeralStorage"] = ephemeral_storage(cpu)
    elif create:
        # For a while a job's container read back with `ephemeralStorage: ""` after the create and
        # without it after an update (timeline.JOB_EPHEMERAL_BLANK_*).
        resources["ephemeralStorage"] = ""
    resources.update({k: v for k, v in res.items() if k not in ("cpu", "memory", "ephemeralStorage")})
    shaped["resources"] = resources
    for key in ("command", "args", "env", "volumeMounts", "probes"):
        if isinstance(shaped.get(key), list):
            shaped[key] = [drop_nulls(item) for item in shaped[key]]
            if not shaped[key]:
                del shaped[key]  # `env: []` reads back absent (test_containerapp_update_containers)
    return shaped


def scale_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A container app's scale rule: null keys and empty `auth` dropped
    (test_containerapp_create_with_yaml, test_containerapp_identity_keda); `custom: {type: http|tcp}`
    comes back as `http`/`tcp`, and `custom: {type: azure-queue}` as the typed `azureQueue` rule
    with a numeric queueLength (test_containerapp_identity_keda)."""
    out = {k: drop_nulls(v) if isinstance(v, dict) else v for k, v in drop_nulls(rule).items()}
    for kind in ("custom", "http", "tcp", "azureQueue"):
        if isinstance(out.get(kind), dict) and not out[kind].get("auth"):
            out[kind].pop("auth", None)
    custom = out.get("custom")
    if isinstance(custom, dict) and custom.get("type") in ("http", "tcp"):
        kind = out.pop("custom").pop("type")
        out[kind] = custom
    elif isinstance(custom, dict) and custom.get("type") == "azure-queue":
        meta = custom.get("metadata") or {}
        queue = {
            "accountName": meta.get("accountName"),
            "queueName": meta.get("queueName"),
            "queueLength": number(meta.get("queueLength")),
        }
        queue |= {k: custom[k] for k in ("auth", "identity") if custom.get(k)}
        del out["custom"]
        out["azureQueue"] = queue
    return out


def app_template(template: Any, kind: str = "containerApps", create: bool = True) -> dict[str, Any]:
    out = with_keys(template, APP_TEMPLATE_KEYS)
    out["revisionSuffix"] = out["revisionSuffix"] or ""
    out["containers"] = [container(c, kind, create) for c in out["containers"] or []]
    if out["initContainers"] is not None:
        out["initContainers"] = nonempty([container(c, kind, create) for c in out["initContainers"]])
    scale = with_keys(drop_nulls(out["scale"] or {}) or None, SCALE_KEYS)
    for k in ("minReplicas", "maxReplicas"):
        scale[k] = number(scale[k])
    if scale["maxReplicas"] is None:
        scale["maxReplicas"] = 10
    scale["rules"] = nonempty([scale_rule(r) for r in scale["rules"] or []])
    out["scale"] = scale
    if out["volumes"] is not None:
        out["volumes"] = nonempty([drop_nulls(v) for v in out["volumes"]])
    if out["serviceBinds"] is not None:
        out["serviceBinds"] = nonempty([{"clientType": "none"} | drop_nulls(b) for b in out["serviceBinds"]])
    return out


# -- jobs ----------------------------------------------------------------------------------------
def job_scale_rule(rule: dict[str, Any], create: bool) -> dict[str, Any]:
    """An event job's rule: null keys dropped; `auth: []` dropped on create but kept by an update
    (test_containerapp_eventjob_identity_keda: the PUT's rule lost it, the PATCHes' rules kept it)."""
    out = drop_nulls(rule)
    if create and not out.get("auth"):
        out.pop("auth", None)
    return out


def job_configuration(config: Any, create: bool) -> dict[str, Any]:
    out = with_keys(config, JOB_CONFIGURATION_KEYS)
    trigger = enum("triggerType", out["triggerType"])
    if trigger not in ("Manual", "Schedule", "Event"):
        raise ArmError(
            400,
            "JobInvalidTriggerType",
            f"configuration.triggerType must be Manual, Schedule or Event, not {out['triggerType']!r}.",
        )
    out["triggerType"] = trigger
    if not out["replicaTimeout"]:
        raise ArmError(400, "JobInvalidReplicaTimeout", "configuration.replicaTimeout is required.")
    out["replicaTimeout"] = number(out["replicaTimeout"])
    out["replicaRetryLimit"] = number(out["replicaRetryLimit"]) if out["replicaRetryLimit"] is not None else 0
    out["secrets"] = secrets_block(out["secrets"])
    out["registries"] = registries_block(out["registries"], fill=create)
    out["identitySettings"] = [drop_nulls(s) for s in out["identitySettings"] or []]
    for k in ("manualTriggerConfig", "scheduleTriggerConfig", "eventTriggerConfig"):
        if not k.lower().startswith(trigger.lower()):
            out[k] = None
    if trigger == "Manual":
        out["manualTriggerConfig"] = {"replicaCompletionCount": 1, "parallelism": 1} | drop_nulls(
            out["manualTriggerConfig"] or {}
        )
    elif trigger == "Schedule":
        stc = drop_nulls(out["scheduleTriggerConfig"] or {})
        if not stc.get("cronExpression"):
            raise ArmError(
                400,
                "JobInvalidCronExpression",
                "configuration.scheduleTriggerConfig.cronExpression is required for Schedule jobs.",
            )
        out["scheduleTriggerConfig"] = {"replicaCompletionCount": 1, "parallelism": 1} | stc
    else:
        etc = {"replicaCompletionCount": 1, "parallelism": 1} | drop_nulls(out["eventTriggerConfig"] or {})
        scale = {"minExecutions": 0, "maxExecutions": 100, "pollingInterval": 30} | drop_nulls(
            etc.get("scale") or {}
        )
        scale["rules"] = [job_scale_rule(r, create) for r in scale.get("rules") or []]
        etc["scale"] = scale
        out["eventTriggerConfig"] = etc
    return out


def job_template(template: Any, create: bool, blank_storage: bool) -> dict[str, Any]:
    out = with_keys(template, JOB_TEMPLATE_KEYS)
    out["containers"] = [container(c, "jobs", create, blank_storage) for c in out["containers"] or []]
    if out["initContainers"] is not None:
        out["initContainers"] = nonempty(
            [container(c, "jobs", create, blank_storage) for c in out["initContainers"]]
        )
    if out["volumes"] is not None:
        out["volumes"] = nonempty([drop_nulls(v) for v in out["volumes"]])
    return out
