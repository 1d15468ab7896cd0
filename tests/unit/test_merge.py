"""Never erase what the manifest does not own (invariant 9): a write is a merge patch of the owned
fields; everything else on the live resource stays byte for byte. Checked with real recorded bodies
that carry custom domains, IP restrictions, Dapr, sticky sessions, maxInactiveRevisions, volumes and
mounts, service binds and init containers, and with fields the schema does not know yet."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synoscd.azure.export import export
from synoscd.azure.merge import fill_secrets, tags_patch, write_patch
from synoscd.azure.translate import Target, app_envelope, diff
from synoscd.manifests.schema import App
from tests.conftest import FIXTURES
from tests.unit.test_recorded_bodies import adopted, changed_paths, envelope, merge_patch

RECORDINGS = FIXTURES / "aca-recordings"


def recorded_get(cassette: str, feature: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """The last GET of the recording in which `feature` (a path under properties) is set."""
    found = None
    for step in json.loads((RECORDINGS / f"{cassette}.json").read_text())["interactions"]:
        if step["method"] != "GET" or step["kind"] not in ("containerApps", "jobs") or not step["response"]:
            continue
        value: Any = step["response"]["properties"]
        for key in feature:
            value = value.get(key) if isinstance(value, dict) else None
        if value not in (None, [], {}):
            found = ("App" if step["kind"] == "containerApps" else "Job", step["response"])
    assert found is not None, f"{cassette} has no GET with {feature}"
    return found


# (recording, feature path under properties, manifest keys that would declare it: removed so the
# manifest does not own it)
FEATURES = [
    ("test_containerapp_custom_domains_e2e", ("configuration", "ingress", "customDomains"), ()),
    ("test_containerapp_env_certificate_e2e", ("configuration", "ingress", "customDomains"), ()),
    (
        "test_containerapp_ip_restrictions_deny",
        ("configuration", "ingress", "ipSecurityRestrictions"),
        (("ingress", "ipSecurityRestrictions"),),
    ),
    ("test_containerapp_dapr_e2e", ("configuration", "dapr"), ()),
    (
        "test_containerapp_ingress_sticky_sessions_e2e",
        ("configuration", "ingress", "stickySessions"),
        (("ingress", "stickySessions"),),
    ),
    (
        "test_containerapp_max_inactive_revisions",
        ("configuration", "maxInactiveRevisions"),
        (("maxInactiveRevisions",),),
    ),
    (
        "test_containerapp_termination_grace_period_seconds",
        ("template", "terminationGracePeriodSeconds"),
        (("terminationGracePeriodSeconds",),),
    ),
    (
        "test_container_app_mount_azurefile_e2e",
        ("template", "volumes"),
        (("volumes",), ("containers", "volumeMounts")),
    ),
    ("test_containerapp_dev_add_on_binding_e2e", ("template", "serviceBinds"), ()),
    ("test_containerapp_java_component", ("template", "serviceBinds"), ()),
    (
        "test_containerapp_cors_policy",
        ("configuration", "ingress", "corsPolicy"),
        (("ingress", "allowedOrigins"),),
    ),
    (
        "test_containerappjob_create_with_yaml",
        ("template", "initContainers"),
        (("initContainers",), ("volumes",), ("containers", "volumeMounts")),
    ),
]


def _undeclare(manifest: dict[str, Any], keys: tuple[tuple[str, ...], ...]) -> dict[str, Any]:
    out = copy.deepcopy(manifest)
    spec = out["spec"]
    for path in keys:
        if path[0] == "containers":
            for container in spec["containers"]:
                container.pop(path[1], None)
        elif len(path) == 2:
            spec.get(path[0], {}).pop(path[1], None)
        else:
            spec.pop(path[0], None)
    return out


def _at(body: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = body["properties"]
    for key in path:
        value = value[key]
    return value


@pytest.mark.parametrize("cassette,feature,declared", FEATURES, ids=[f"{c}:{f[-1]}" for c, f, _ in FEATURES])
def test_an_update_keeps_what_the_manifest_does_not_declare(
    cassette: str, feature: tuple[str, ...], declared: tuple[tuple[str, ...], ...]
) -> None:
    kind, body = recorded_get(cassette, feature)
    live = adopted(body)
    manifest = _undeclare(export(kind, body).manifest, declared)
    manifest["spec"]["containers"][0]["image"] = "contoso.azurecr.io/web:2"
    desired = envelope(manifest, live)
    changes = diff(desired, live)
    assert [c["field"] for c in changes] == ["template.containers[0].image"]
    write = write_patch(desired, live)
    assert json.dumps(_at(body, feature)) not in json.dumps(write.body), "the patch does not carry it"
    after = merge_patch(live, write.body)
    assert _at(after, feature) == _at(body, feature), "byte for byte as it was"
    assert diff(desired, after) == []
    assert set(changed_paths(live, after)) <= {
        "properties.template.containers[0].image",
        "tags.synoscd-revision",
        "properties.template.revisionSuffix",
    }


def test_fields_the_schema_will_learn_later_and_unowned_container_keys_are_kept() -> None:
    kind, body = recorded_get("test_containerapp_dapr_e2e", ("configuration", "dapr"))
    live = adopted(body)
    live["properties"]["configuration"]["futureSetting"] = {"mode": "on"}
    live["properties"]["configuration"]["ingress"] = {
        "external": True,
        "targetPort": 80,
        "transport": "Auto",
        "clientCertificateMode": "require",
        "futureIngressKnob": 3,
    }
    live["properties"]["template"]["containers"][0]["futureContainerKnob"] = [1, 2]
    manifest = export(kind, body).manifest
    manifest["spec"]["ingress"] = {"enabled": True, "external": True, "targetPort": 8080}
    manifest["spec"]["containers"][0]["image"] = "contoso.azurecr.io/web:3"
    write = write_patch(envelope(manifest, live), live)
    after = merge_patch(live, write.body)
    assert after["properties"]["configuration"]["futureSetting"] == {"mode": "on"}
    assert after["properties"]["configuration"]["dapr"] == body["properties"]["configuration"]["dapr"]
    ingress = after["properties"]["configuration"]["ingress"]
    assert ingress["clientCertificateMode"] == "require" and ingress["futureIngressKnob"] == 3
    assert ingress["targetPort"] == 8080 and write.body["properties"]["configuration"] == {
        "ingress": {"targetPort": 8080}
    }
    container = after["properties"]["template"]["containers"][0]
    assert container["futureContainerKnob"] == [1, 2] and container["image"] == "contoso.azurecr.io/web:3"


def test_declaring_a_field_makes_it_owned_and_an_empty_list_removes_it() -> None:
    kind, body = recorded_get(
        "test_containerapp_ip_restrictions_deny", ("configuration", "ingress", "ipSecurityRestrictions")
    )
    live = adopted(body)
    manifest = export(kind, body).manifest
    rules = manifest["spec"]["ingress"]["ipSecurityRestrictions"]
    assert rules, "exported: declared"
    manifest["spec"]["ingress"]["ipSecurityRestrictions"] = []
    desired = envelope(manifest, live)
    assert [c["field"] for c in diff(desired, live)] == ["configuration.ingress.ipSecurityRestrictions"]
    write = write_patch(desired, live)
    assert write.body["properties"] == {"configuration": {"ingress": {"ipSecurityRestrictions": []}}}
    manifest["spec"]["ingress"]["ipSecurityRestrictions"] = [
        {"name": "office", "ipAddressRange": "10.0.0.0/8", "action": "Allow"}
    ]
    assert write_patch(envelope(manifest, live), live).body["properties"]["configuration"]["ingress"] == {
        "ipSecurityRestrictions": [{"name": "office", "ipAddressRange": "10.0.0.0/8", "action": "Allow"}]
    }
    manifest["spec"]["ingress"]["enabled"] = False
    write = write_patch(envelope(manifest, live), live)
    assert write.body["properties"]["configuration"] == {"ingress": None}, "ingress off: removed"


TARGET = Target(
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/managedEnvironments/env",
    "East US",
    "contoso/ops:apps",
    "c2",
)
UAI = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/web"
VAULT = "https://kv.vault.azure.net/secrets"


def app(spec: dict[str, Any]) -> App:
    return App.model_validate(
        {"apiVersion": "synoscd.io/v1alpha1", "kind": "App", "metadata": {"name": "web"}, "spec": spec},
        strict=False,
    )


CONTAINER = {"name": "web", "image": "nginx:1", "cpu": 0.5, "memory": "1Gi"}


def served(body: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Roughly what ACA answers for `body` (the details that matter here)."""
    live = copy.deepcopy(body)
    live.update(id="/x", name="web", type="Microsoft.App/containerApps", systemData={"createdAt": "t"})
    live["properties"].update(provisioningState="Succeeded", latestRevisionName="web--1")
    for key, value in extra.items():
        live["properties"]["configuration"][key] = value
    return live


def test_value_secrets_set_outside_git_survive_a_secret_change() -> None:
    spec = {"containers": [CONTAINER], "secrets": {"db": f"{VAULT}/db"}, "externalSecrets": ["acr-password"]}
    body = app_envelope(app(spec), TARGET)
    live = served(
        body,
        secrets=[
            {"name": "acr-password"},  # a GET never shows the value
            {"name": "db", "keyVaultUrl": f"{VAULT}/db-old", "identity": "System"},
            {"name": "other", "keyVaultUrl": f"{VAULT}/other", "identity": UAI.upper()},
        ],
    )
    changes = diff(body, live)
    assert [c["field"] for c in changes] == ["configuration.secrets[0].keyVaultUrl"]
    write = write_patch(body, live)
    assert write.fill_secrets == ("acr-password",)
    sent = write.body["properties"]["configuration"]["secrets"]
    assert sent == [
        {"name": "acr-password"},
        {"name": "db", "keyVaultUrl": f"{VAULT}/db", "identity": "system"},
        {"name": "other", "keyVaultUrl": f"{VAULT}/other", "identity": UAI.upper()},
    ]
    filled = fill_secrets(write.body, {"acr-password": "s3cr3t", "db": "ignored"})
    assert filled["properties"]["configuration"]["secrets"][0] == {"name": "acr-password", "value": "s3cr3t"}
    assert write.body["properties"]["configuration"]["secrets"][0] == {"name": "acr-password"}, "a copy"
    with pytest.raises(KeyError):
        fill_secrets(write.body, {})
    unchanged = served(
        body, secrets=[{"name": "acr-password"}, *body["properties"]["configuration"]["secrets"]]
    )
    assert diff(body, unchanged) == []
    bumped = {**body, "tags": {**body["tags"], "team": "x"}}
    assert "properties" not in write_patch(bumped, unchanged).body, "no secrets sent when they match"


def test_identities_attached_by_hand_are_kept_and_ids_compare_case_insensitively() -> None:
    body = app_envelope(app({"containers": [CONTAINER], "identity": [UAI]}), TARGET)
    other = UAI.replace("/web", "/ops")
    live = served(body)
    live["identity"] = {
        "type": "SystemAssigned, UserAssigned",
        "principalId": "p",
        "userAssignedIdentities": {
            UAI.replace("resourceGroups", "resourcegroups").replace(
                "Microsoft.ManagedIdentity", "microsoft.managedidentity"
            ): {"clientId": "c"},
            other: {"clientId": "d"},
        },
    }
    assert diff(body, live) == []
    live["identity"]["userAssignedIdentities"].pop(next(iter(live["identity"]["userAssignedIdentities"])))
    assert [c["field"] for c in diff(body, live)] == ["identity.userAssignedIdentities"]
    sent = write_patch(body, live).body["identity"]
    assert sent == {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": {other: {}, UAI: {}}}


@pytest.mark.parametrize(
    "live_change",
    [
        lambda c: c.update(activeRevisionsMode="single"),
        lambda c: c["ingress"].update(transport="Auto"),
        lambda c: c["registries"][0].update(identity="", username="bob", passwordSecretRef="acr"),
        lambda c: c["ingress"].update(targetPort="80"),
        lambda c: c["registries"][1].update(identity=UAI.lower(), server="Other.AzureCR.io"),
        lambda c: c["secrets"][0].update(identity=UAI.upper()),
        lambda c: c["registries"].reverse(),
    ],
    ids=[
        "enum-casing",
        "transport-casing",
        "empty-string-is-absent",
        "numeric-string",
        "registry-identity-and-server-casing",
        "secret-identity-casing",
        "registry-order",
    ],
)
def test_what_the_service_rewrites_is_not_drift(live_change: Any) -> None:
    spec = {
        "containers": [CONTAINER],
        "activeRevisionsMode": "Single",
        "ingress": {"targetPort": 80},
        "identity": [UAI],
        "secrets": {"db": f"{VAULT}/db"},
        "registries": [
            {"server": "contoso.azurecr.io", "username": "bob", "passwordSecretRef": "acr"},
            {"server": "other.azurecr.io", "identity": UAI},
        ],
        "externalSecrets": ["acr"],
    }
    body = app_envelope(app(spec), TARGET)
    live = served(body)
    live_change(live["properties"]["configuration"])
    assert diff(body, live) == []


def test_scale_and_job_shapes_the_service_rewrites_are_not_drift() -> None:
    spec = {
        "containers": [{**CONTAINER, "memory": "1Gi"}],
        "scale": {
            "minReplicas": 0,
            "maxReplicas": 10,
            "rules": [{"name": "http", "custom": {"type": "http", "metadata": {"concurrentRequests": "50"}}}],
        },
    }
    body = app_envelope(app(spec), TARGET)
    live = served(body)
    live["properties"]["template"]["scale"] = {
        "minReplicas": None,  # the service answers null when minReplicas is 0 / not sent
        "maxReplicas": 10,
        "cooldownPeriod": 300,
        "rules": [{"name": "http", "http": {"metadata": {"concurrentRequests": "50"}, "auth": None}}],
    }
    live["properties"]["template"]["containers"][0]["resources"] = {"cpu": "0.50", "memory": "1024Mi"}
    live["properties"]["template"]["containers"][0]["image"] = "nginx:1"
    assert diff(body, live) == []


def test_adopt_writes_tags_only_and_keeps_every_tag() -> None:
    live = {"tags": {"CostCenter": "42", "Synoscd-Managed": "false"}, "properties": {"template": {}}}
    assert tags_patch(live, {"synoscd-managed": "true", "synoscd-source": "o/r:apps"}) == {
        "tags": {"CostCenter": "42", "synoscd-managed": "true", "synoscd-source": "o/r:apps"}
    }


# -- property: whatever others put on the live app, a write converges and keeps it ------------------

names = st.from_regex(r"[a-z][a-z0-9]{1,8}", fullmatch=True)
unowned = st.fixed_dictionaries(
    {},
    optional={
        "dapr": st.fixed_dictionaries({"enabled": st.booleans(), "appId": names}),
        "customDomains": st.lists(
            st.fixed_dictionaries({"name": names, "bindingType": st.just("SniEnabled")}), max_size=2
        ),
        "serviceBinds": st.lists(st.fixed_dictionaries({"name": names, "serviceId": names}), max_size=2),
        "maxInactiveRevisions": st.integers(0, 100),
        "policyTag": names,
        "containerKnob": names,
    },
)


@settings(max_examples=150, deadline=None)
@given(
    image=names,
    port=st.integers(1, 65535),
    low=st.integers(0, 3),
    extra=unowned,
    team=names,
)
def test_property_a_write_converges_and_keeps_what_others_set(
    image: str, port: int, low: int, extra: dict[str, Any], team: str
) -> None:
    spec = {
        "containers": [{**CONTAINER, "image": f"{image}:1"}],
        "ingress": {"targetPort": port},
        "scale": {"minReplicas": low, "maxReplicas": 5},
        "tags": {"team": team},
    }
    before = served(app_envelope(app({"containers": [CONTAINER], "ingress": {"targetPort": 1}}), TARGET))
    props = before["properties"]
    if "dapr" in extra:
        props["configuration"]["dapr"] = extra["dapr"]
    if "customDomains" in extra:
        props["configuration"]["ingress"]["customDomains"] = extra["customDomains"]
    if "serviceBinds" in extra:
        props["template"]["serviceBinds"] = extra["serviceBinds"]
    if "maxInactiveRevisions" in extra:
        props["configuration"]["maxInactiveRevisions"] = extra["maxInactiveRevisions"]
    if "policyTag" in extra:
        before["tags"]["policy"] = extra["policyTag"]
    if "containerKnob" in extra:
        props["template"]["containers"][0]["knob"] = extra["containerKnob"]
    desired = app_envelope(app(spec), TARGET)
    after = merge_patch(before, write_patch(desired, before).body)
    assert diff(desired, after) == []
    owned = ("image", "targetPort", "minReplicas", "maxReplicas", "synoscd-revision", "team", "scale")
    assert all(any(o in p for o in owned) for p in changed_paths(before, after)), changed_paths(before, after)
