"""What a manifest owns in a Container App or Job body, and how the service rewrites it: the canonical
projection both sides of the diff go through, and the field-level diff.

The desired body (translate.py's envelope) carries exactly the owned fields: a key it has is owned, a
key it leaves out is not (the live value stays as it is, whatever it is). Inside that, the tree below
says how each field is compared: enum casing (`Single`/`single`, `Auto`/`auto`, `Tcp`/`tcp`), resource
IDs case-insensitively (user-assigned identity keys, secret and registry `identity`), null vs absent vs
empty (`identity: ""`, `auth: []`, `minReplicas: null`), numeric strings, memory units (`512Mi` =
`0.5Gi`), implicit image tags, the scale-rule request vs response shape, and server defaults inside
declared objects (probe thresholds). Read-only fields are never part of it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from synoscd.azure.fields import (
    DESIRED,
    Cut,
    Items,
    Leaf,
    Named,
    Node,
    Obj,
    Pre,
    auth_list,
    clean,
    flag,
    image,
    lower,
    memory,
    number,
    string_map,
    strings,
    text,
    with_default,
)

REVISION_TAG = "synoscd-revision"
# Tags SynosCD writes but does not compare: the revision moves with every commit, and comparing it
# would rewrite every app on every commit.
UNCOMPARED_TAGS = frozenset({REVISION_TAG})


class Tags(Node):
    """The tags the manifest sets (names compare case-insensitively, as ARM's do); tags others add
    (Azure Policy, cost tooling) are not ours."""

    def canon(self, raw: Any, want: Any) -> Any:
        tags = raw if isinstance(raw, dict) else {}
        if want is DESIRED:
            return {k: str(v) for k, v in tags.items() if k not in UNCOMPARED_TAGS}
        by_name = {str(k).lower(): v for k, v in tags.items()}
        return {k: by_name.get(k.lower()) for k in want}

    def merged(self, desired: Any, live: Any) -> Any:
        return merge_tags(live, desired)


def merge_tags(live: Any, ours: Any) -> dict[str, str]:
    """Every live tag kept, ours set (a live tag differing only in case is replaced, not doubled)."""
    ours = dict(ours or {})
    names = {k.lower() for k in ours}
    kept = {k: v for k, v in (live or {}).items() if str(k).lower() not in names}
    return {**kept, **ours}


class Identity(Node):
    """The identities the manifest needs (system-assigned and user-assigned ones) must be attached;
    others attached by hand are not ours and stay. IDs compare case-insensitively (the service returns
    `.../Microsoft.ManagedIdentity/userAssignedIdentities/...` for `.../microsoft.managedidentity/...`),
    and `"SystemAssigned, UserAssigned"` is `"SystemAssigned,UserAssigned"`."""

    @staticmethod
    def parts(raw: Any) -> tuple[bool, dict[str, str]]:
        raw = raw if isinstance(raw, dict) else {}
        kinds = {k.strip().lower() for k in str(raw.get("type") or "None").split(",")}
        users = {str(k).lower(): str(k) for k in (raw.get("userAssignedIdentities") or {})}
        return "systemassigned" in kinds, users

    def canon(self, raw: Any, want: Any) -> Any:
        system, users = self.parts(raw)
        if want is DESIRED:
            return {"system": system, "userAssignedIdentities": sorted(users)}
        return {
            "system": system and bool(want.get("system")),
            "userAssignedIdentities": sorted(set(users) & set(want.get("userAssignedIdentities") or [])),
        }

    def merged(self, desired: Any, live: Any) -> Any:
        want_system, want_users = self.parts(desired)
        live_system, live_users = self.parts(live)
        users = {**want_users, **live_users}  # live casing wins for identities already attached
        system = want_system or live_system
        kind = ",".join(k for k, on in (("SystemAssigned", system), ("UserAssigned", bool(users))) if on)
        out: dict[str, Any] = {"type": kind or "None"}
        if users:
            out["userAssignedIdentities"] = {rid: {} for rid in sorted(users.values(), key=str.lower)}
        return out


def _rule_shape(rule: Any) -> Any:
    """A request's `{"custom": {"type": "http"|"tcp"}}` comes back as `{"http": ...}` / `{"tcp": ...}`."""
    if not isinstance(rule, dict):
        return rule
    rule = dict(rule)
    custom = rule.get("custom")
    if isinstance(custom, dict) and str(custom.get("type", "")).lower() in ("http", "tcp"):
        kind = str(custom["type"]).lower()
        rule.pop("custom")
        rule[kind] = {k: v for k, v in custom.items() if k != "type"}
    return rule


def _probes(value: Any) -> Any:
    probes = clean(value) if isinstance(value, list) else []
    for probe in probes:
        if isinstance(probe, dict) and "type" in probe:
            probe["type"] = str(probe["type"]).lower()
        http = probe.get("httpGet") if isinstance(probe, dict) else None
        if isinstance(http, dict) and "scheme" in http:
            http["scheme"] = str(http["scheme"]).upper()
    return probes


INT = Leaf(number)
TEXT = Leaf(text)
LOWER = Leaf(lower)
AUTH = Leaf(auth_list)
METADATA = Leaf(string_map)
STRINGS = Leaf(strings)


def _env(value: Any) -> list[dict[str, str | None]]:
    """Env vars by name (order is not meaningful); `value: ""` is no value. One function for the
    whole list: it is the largest part of most bodies and compared on every pass."""
    items = [
        {"name": text(e.get("name")), "value": text(e.get("value")), "secretRef": text(e.get("secretRef"))}
        for e in (value if isinstance(value, list) else [])
        if isinstance(e, dict)
    ]
    return sorted(items, key=lambda e: e["name"] or "")


ENV = Leaf(_env)
MOUNT = Obj({"volumeName": TEXT, "mountPath": TEXT, "subPath": TEXT})
RESOURCES = Obj({"cpu": Leaf(number), "memory": Leaf(memory)})


def _container(probes: bool) -> Obj:
    fields: dict[str, Node] = {
        "name": TEXT,
        "image": Leaf(image),
        "resources": RESOURCES,
        "command": STRINGS,
        "args": STRINGS,
        "env": ENV,
        "volumeMounts": Items(MOUNT),
    }
    if probes:
        fields["probes"] = Cut(_probes)
    return Obj(fields, always=("command", "args", "env"))


def _rule_part(**extra: Node) -> Obj:
    return Obj({"metadata": METADATA, "auth": AUTH, **extra}, nullable=True)


APP_RULE = Pre(
    _rule_shape,
    Obj(
        {
            "name": TEXT,
            "http": _rule_part(),
            "tcp": _rule_part(),
            "custom": _rule_part(type=LOWER, identity=LOWER),
            "azureQueue": _rule_part(queueName=TEXT, queueLength=INT, accountName=TEXT, identity=LOWER),
        },
        replace=True,
    ),
)
JOB_RULE = Obj(
    {"name": TEXT, "type": LOWER, "metadata": METADATA, "auth": AUTH, "identity": LOWER}, replace=True
)
TRIGGER = Obj(
    {
        "parallelism": INT,
        "replicaCompletionCount": INT,
        "cronExpression": TEXT,
        "scale": Obj(
            {
                "minExecutions": Leaf(with_default(number, 0)),
                "maxExecutions": Leaf(with_default(number, 100)),
                "pollingInterval": Leaf(with_default(number, 30)),
                "rules": Named(JOB_RULE),
            }
        ),
    },
    nullable=True,
)
INGRESS = Obj(
    {
        "external": Leaf(flag),
        "targetPort": INT,
        "transport": Leaf(with_default(lower, "auto")),
        "allowInsecure": Leaf(flag),
        "corsPolicy": Obj({"allowedOrigins": STRINGS}, nullable=True),
        "ipSecurityRestrictions": Items(
            Obj({"name": TEXT, "description": TEXT, "ipAddressRange": TEXT, "action": LOWER}, replace=True)
        ),
        "stickySessions": Obj({"affinity": Leaf(with_default(lower, "none"))}),
    },
    nullable=True,
)
SECRET = Obj({"name": TEXT, "keyVaultUrl": TEXT, "identity": LOWER}, replace=True)
REGISTRY = Obj(
    {"server": LOWER, "identity": LOWER, "username": TEXT, "passwordSecretRef": TEXT}, replace=True
)
CONFIGURATION = Obj(
    {
        "activeRevisionsMode": Leaf(with_default(lower, "single")),
        "maxInactiveRevisions": INT,
        # The manifest owns the secrets and registries it names; others set by hand are kept.
        "secrets": Named(SECRET, extra="keep", sort=True),
        "registries": Named(REGISTRY, key="server", key_norm=lower, extra="keep"),
        "ingress": INGRESS,
        "triggerType": LOWER,
        "replicaTimeout": INT,
        "replicaRetryLimit": Leaf(with_default(number, 0)),
        "manualTriggerConfig": TRIGGER,
        "scheduleTriggerConfig": TRIGGER,
        "eventTriggerConfig": TRIGGER,
    }
)
TEMPLATE = Obj(
    {
        "containers": Named(_container(probes=True)),
        "initContainers": Named(_container(probes=False)),
        "scale": Obj(
            {
                "minReplicas": Leaf(with_default(number, 0)),  # the service answers null when not sent
                "maxReplicas": Leaf(with_default(number, 10)),
                "rules": Named(APP_RULE),
            }
        ),
        "volumes": Named(
            Obj(
                {
                    "name": TEXT,
                    "storageType": Leaf(with_default(lower, "emptydir")),
                    "storageName": TEXT,
                    "mountOptions": TEXT,
                }
            )
        ),
        "terminationGracePeriodSeconds": INT,
    }
)
TOP = Obj(
    {
        "tags": Tags(),
        "identity": Identity(),
        "workloadProfileName": Leaf(with_default(lower, "consumption")),
        "configuration": CONFIGURATION,
        "template": TEMPLATE,
    },
    always=("tags", "configuration", "template"),
)


def flat(body: Mapping[str, Any]) -> dict[str, Any]:
    """An ARM body as the tree's top: tags, identity, and the configuration and template under
    properties (only the keys the body has: a desired body without identity does not own one)."""
    props = body.get("properties") or {}
    out: dict[str, Any] = {
        "tags": body.get("tags") or {},
        "configuration": props.get("configuration") or {},
        "template": props.get("template") or {},
    }
    if "identity" in body:
        out["identity"] = body["identity"]
    if "workloadProfileName" in props:
        out["workloadProfileName"] = props["workloadProfileName"]
    return out


def canonical(body: Mapping[str, Any], want: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The owned fields of `body`, normalised. `want` is the desired canonical form: `body` (a live
    one) is projected onto it; without `want`, `body` is the desired one."""
    return TOP.canon(flat(body), DESIRED if want is None else want)


def diff(desired: Mapping[str, Any], live: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Field-level changes between a desired body and a live body: [{field, live, desired}]."""
    want = canonical(desired)
    have = canonical(live, want)
    if want == have:  # the common case (values are normalised plain data), without walking the tree
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
