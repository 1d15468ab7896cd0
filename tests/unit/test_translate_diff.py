"""Translation to ARM bodies and the canonical diff: server defaults and read-only fields are never
drift; owned fields are, with field-level paths."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from synoscd.azure.translate import (
    CONFIG_HASH_ENV,
    REVISION_TAG,
    Target,
    app_envelope,
    config_hash,
    diff,
    job_envelope,
)
from synoscd.manifests.schema import App, Job

TARGET = Target(
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/managedEnvironments/env",
    "East US",
    "owner/repo:apps",
    "abc123",
)


def app(spec: dict[str, Any], name: str = "web") -> App:
    return App.model_validate(
        {"apiVersion": "synoscd.io/v1alpha1", "kind": "App", "metadata": {"name": name}, "spec": spec},
        strict=False,
    )


BASE = {
    "containers": [{"name": "web", "image": "nginx:1.25", "cpu": 0.5, "memory": "1Gi"}],
    "ingress": {"enabled": True, "external": True, "targetPort": 80},
    "scale": {"minReplicas": 1, "maxReplicas": 3},
}


def as_served(body: dict[str, Any]) -> dict[str, Any]:
    """What ACA answers for a PUT of `body`: read-only fields and server defaults added, shapes rewritten."""
    live = copy.deepcopy(body)
    live.update(
        id="/x",
        name="web",
        type="Microsoft.App/containerApps",
        systemData={"createdAt": "2026-01-01T00:00:00Z"},
    )
    p = live["properties"]
    p.update(
        provisioningState="Succeeded",
        runningStatus="Running",
        latestRevisionName="web--a",
        latestReadyRevisionName="web--a",
        managedEnvironmentId=p["environmentId"],
        outboundIpAddresses=["1.2.3.4"],
        workloadProfileName="Consumption",
        eventStreamEndpoint="https://x",
    )
    c = p["configuration"]
    c.setdefault("maxInactiveRevisions", 100)
    if "ingress" in c:
        c["ingress"].update(
            fqdn="web.example.io",
            traffic=[{"latestRevision": True, "weight": 100}],
            stickySessions={"affinity": "none"},
        )
        c["ingress"]["transport"] = c["ingress"]["transport"].capitalize()  # casing may differ
    for container in p["template"]["containers"]:
        container["resources"]["ephemeralStorage"] = "2Gi"
        container["resources"]["memory"] = str(container["resources"]["memory"]).replace("0.5Gi", "512Mi")
        if "ingress" in c and not container.get("probes"):
            container["probes"] = [{"type": "Liveness", "tcpSocket": {"port": 80}}]
    p["template"].setdefault("scale", {"minReplicas": 0, "maxReplicas": 10})
    p["template"]["scale"].update(cooldownPeriod=300, pollingInterval=30)
    for rule in p["template"]["scale"].get("rules", []):
        if "custom" in rule and rule["custom"].get("type") == "http":
            rule["http"] = {k: v for k, v in rule.pop("custom").items() if k != "type"}
    live["tags"] = {**live["tags"], "created-by-policy": "yes"}
    if "identity" in live:
        live["identity"]["principalId"] = "p"
        live["identity"]["tenantId"] = "t"
    return live


def test_readme_shaped_app_translates_with_ownership_tags() -> None:
    body = app_envelope(app(BASE), TARGET)
    assert body["tags"] == {
        "synoscd-managed": "true",
        "synoscd-source": "owner/repo:apps",
        REVISION_TAG: "abc123",
    }
    assert body["location"] == "East US"
    assert body["properties"]["environmentId"] == TARGET.environment_id
    c = body["properties"]["template"]["containers"][0]
    assert c == {"name": "web", "image": "nginx:1.25", "resources": {"cpu": 0.5, "memory": "1Gi"}}
    assert body["properties"]["configuration"]["ingress"]["targetPort"] == 80


def test_environment_secrets_identity_and_cors() -> None:
    spec = {
        **BASE,
        "environment": [{"name": "A", "value": "1"}, {"name": "PW", "valueFrom": {"secretRef": "pw"}}],
        "secrets": {"pw": "https://v.vault.azure.net/secrets/pw"},
        "ingress": {"enabled": True, "targetPort": 80, "allowedOrigins": ["https://a.example"]},
    }
    spec["containers"] = [{**BASE["containers"][0], "env": [{"name": "A", "value": "own"}]}]
    body = app_envelope(app(spec), TARGET)
    env = body["properties"]["template"]["containers"][0]["env"]
    assert env == [{"name": "PW", "secretRef": "pw"}, {"name": "A", "value": "own"}], (
        "the container's own value wins"
    )
    assert body["properties"]["configuration"]["secrets"] == [
        {"name": "pw", "keyVaultUrl": "https://v.vault.azure.net/secrets/pw", "identity": "system"}
    ]
    assert body["identity"] == {"type": "SystemAssigned"}
    assert body["properties"]["configuration"]["ingress"]["corsPolicy"] == {
        "allowedOrigins": ["https://a.example"]
    }


def test_config_hash_is_stamped_and_stable() -> None:
    digest = config_hash({"file:a.json": b"1", "secret:pw": "v1"})
    assert digest == config_hash({"secret:pw": "v1", "file:a.json": b"1"})
    assert digest != config_hash({"file:a.json": b"2", "secret:pw": "v1"})
    assert digest != config_hash({"file:a.json": b"1", "secret:pw": "v2"})
    body = app_envelope(app(BASE), TARGET, digest)
    assert {"name": CONFIG_HASH_ENV, "value": digest} in body["properties"]["template"]["containers"][0][
        "env"
    ]


def test_job_translation() -> None:
    job = Job.model_validate(
        {
            "apiVersion": "synoscd.io/v1alpha1",
            "kind": "Job",
            "metadata": {"name": "nightly"},
            "spec": {
                "containers": BASE["containers"],
                "triggerType": "Schedule",
                "cronExpression": "0 2 * * *",
                "replicaTimeout": 60,
            },
        },
        strict=False,
    )
    body = job_envelope(job, TARGET)
    config = body["properties"]["configuration"]
    assert config["triggerType"] == "Schedule"
    assert config["scheduleTriggerConfig"] == {
        "cronExpression": "0 2 * * *",
        "parallelism": 1,
        "replicaCompletionCount": 1,
    }
    assert diff(body, as_served_job(body)) == []


def as_served_job(body: dict[str, Any]) -> dict[str, Any]:
    live = copy.deepcopy(body)
    live["properties"].update(provisioningState="Succeeded", runningState="Ready")
    for c in live["properties"]["template"]["containers"]:
        c["resources"]["ephemeralStorage"] = "2Gi"
    return live


def test_server_defaults_and_read_only_fields_are_not_drift() -> None:
    spec = {
        **BASE,
        "scale": {
            "minReplicas": 1,
            "maxReplicas": 3,
            "rules": [{"name": "http", "custom": {"type": "http", "metadata": {"concurrentRequests": "50"}}}],
        },
    }
    body = app_envelope(app(spec), TARGET)
    assert diff(body, as_served(body)) == []


def test_a_new_revision_tag_alone_is_not_drift() -> None:
    body = app_envelope(app(BASE), TARGET)
    live = as_served(body)
    live["tags"][REVISION_TAG] = "an-older-commit"
    assert diff(body, live) == []


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda p, b: p["template"]["containers"][0].update(image="evil:1"), "template.containers[0].image"),
        (
            lambda p, b: p["template"]["containers"][0]["resources"].update(cpu=1.0),
            "template.containers[0].resources.cpu",
        ),
        (
            lambda p, b: p["template"]["containers"][0].update(env=[{"name": "X", "value": "1"}]),
            "template.containers[0].env",
        ),
        (lambda p, b: p["template"]["scale"].update(maxReplicas=9), "template.scale.maxReplicas"),
        (
            lambda p, b: p["configuration"]["ingress"].update(targetPort=8080),
            "configuration.ingress.targetPort",
        ),
        (lambda p, b: p["configuration"]["ingress"].update(external=False), "configuration.ingress.external"),
        (lambda p, b: p["configuration"].pop("ingress"), "configuration.ingress"),
        (lambda p, b: b["tags"].pop("synoscd-source"), "tags.synoscd-source"),
        (lambda p, b: b["tags"].update({"synoscd-managed": "false"}), "tags.synoscd-managed"),
    ],
)
def test_owned_field_changes_are_drift_with_their_path(mutate: Any, field: str) -> None:
    body = app_envelope(app(BASE), TARGET)
    live = as_served(body)
    mutate(live["properties"], live)
    changes = diff(body, live)
    assert [c["field"] for c in changes] == [field]
    assert changes[0]["live"] != changes[0]["desired"]


def test_tag_changed_in_the_manifest_is_drift() -> None:
    live = as_served(app_envelope(app(BASE), TARGET))
    body = app_envelope(app({**BASE, "tags": {"team": "a"}}), TARGET)
    assert diff(body, live) == [{"field": "tags.team", "live": None, "desired": "a"}]


def test_declared_probes_are_owned() -> None:
    spec = copy.deepcopy(BASE)
    spec["containers"][0]["probes"] = [{"type": "Liveness", "httpGet": {"path": "/h", "port": 80}}]
    body = app_envelope(app(spec), TARGET)
    live = as_served(body)
    assert diff(body, live) == []
    live["properties"]["template"]["containers"][0]["probes"] = [
        {"type": "Liveness", "tcpSocket": {"port": 80}}
    ]
    fields = [c["field"] for c in diff(body, live)]
    assert fields and all(f.startswith("template.containers[0].probes[0].") for f in fields)
    served = as_served(body)
    served["properties"]["template"]["containers"][0]["probes"][0].update(
        failureThreshold=3, periodSeconds=10
    )
    assert diff(body, served) == [], "defaults the server fills inside a declared probe are not owned"


names = st.from_regex(r"[a-z][a-z0-9]{1,10}", fullmatch=True)
pairs = st.sampled_from([(0.25, "0.5Gi"), (0.5, "1Gi"), (1.0, "2Gi"), (2.0, "4Gi")])


@st.composite
def app_specs(draw: Any) -> dict[str, Any]:
    cpu, memory = draw(pairs)
    spec: dict[str, Any] = {
        "containers": [
            {"name": "main", "image": f"{draw(names)}:{draw(names)}", "cpu": cpu, "memory": memory}
        ]
    }
    if draw(st.booleans()):
        spec["ingress"] = {
            "enabled": True,
            "external": draw(st.booleans()),
            "targetPort": draw(st.integers(1, 65535)),
        }
    if draw(st.booleans()):
        low = draw(st.integers(0, 5))
        spec["scale"] = {"minReplicas": low, "maxReplicas": draw(st.integers(max(low, 1), 10))}
    if draw(st.booleans()):
        spec["environment"] = [
            {"name": n.upper(), "value": v}
            for n, v in draw(st.dictionaries(names, names, max_size=3)).items()
        ]
    if draw(st.booleans()):
        spec["tags"] = draw(st.dictionaries(names, names, max_size=3))
    return spec


@settings(max_examples=150, deadline=None)
@given(app_specs())
def test_property_what_we_put_and_aca_serves_back_has_no_drift(spec: dict[str, Any]) -> None:
    body = app_envelope(app(spec), TARGET)
    assert diff(body, as_served(body)) == []
    # and the body is plain JSON-serialisable data
    assert yaml.safe_load(yaml.safe_dump(body)) == body


def test_raw_listing_uses_the_sdks_default_api_version() -> None:
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    from synoscd.azure.arm import API_VERSION

    client = ContainerAppsAPIClient(credential=object(), subscription_id="s")  # type: ignore[arg-type]
    assert client._config.api_version == API_VERSION
