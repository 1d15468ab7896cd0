"""The ARM stand-in's pure rules (emulators/arm: shapes, versions, timeline, merge_patch), checked
against the recorded bodies they are drawn from and as properties."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from emulators.arm import shapes, timeline, versions
from emulators.arm.model import merge_patch
from tests.conftest import FIXTURES
from tests.integration.arm_replay import diff

RECORDINGS = FIXTURES / "aca-recordings"


def recorded_app_gets() -> list[dict[str, Any]]:
    """App GETs at 2024-02-02-preview from the service as it is now (May 2024 on), dev services aside."""
    out = []
    for path in sorted(RECORDINGS.glob("*.json")):
        for i in json.loads(path.read_text())["interactions"]:
            body = i["response"]
            if (
                i["method"] != "GET"
                or i["kind"] != "containerApps"
                or i["api_version"] != "2024-02-02-preview"
            ):
                continue
            if (
                body["properties"]["configuration"].get("service")
                or body["systemData"]["createdAt"] < "2024-05"
            ):
                continue
            out.append(body)
    return out


def domain_of(body: dict[str, Any]) -> str:
    ingress = body["properties"]["configuration"].get("ingress")
    if not ingress:
        return "unused.example"
    rest = ingress["fqdn"].split(".", 1)[1]
    return rest if ingress["external"] else rest.split(".", 1)[1]


def test_recorded_get_bodies_are_fixed_points_of_the_rules() -> None:
    """What live ARM answered, sent back, is stored as it is: the rules reproduce every recorded
    configuration and template (so a GET -> PUT -> GET round trip changes nothing)."""
    bodies = recorded_app_gets()
    assert len(bodies) > 250
    for body in bodies:
        props = body["properties"]
        config = shapes.app_configuration(props["configuration"], False, body["name"], domain_of(body))
        template = shapes.app_template(props["template"])
        assert diff(props["configuration"], config) == [], body["id"]
        assert diff(props["template"], template) == [], body["id"]


def test_request_shapes_become_the_recorded_ones() -> None:
    config = shapes.app_configuration(
        {
            "activeRevisionsMode": "single",
            "secrets": [{"name": "pw", "value": "hunter2", "keyVaultUrl": "", "identity": None}],
            "registries": [{"server": "r.azurecr.io", "username": "u", "passwordSecretRef": "pw"}],
            "ingress": {"external": True, "targetPort": "80", "transport": "auto", "traffic": None},
        },
        True,
        "web",
        "d.example",
    )
    assert config["activeRevisionsMode"] == "Single"
    assert config["secrets"] == [{"name": "pw"}]
    assert config["registries"] == [
        {"server": "r.azurecr.io", "username": "u", "passwordSecretRef": "pw", "identity": ""}
    ]
    ingress = config["ingress"]
    assert (ingress["targetPort"], ingress["exposedPort"], ingress["transport"]) == (80, 0, "Auto")
    assert ingress["traffic"] == [{"weight": 100, "latestRevision": True}]
    assert ingress["stickySessions"] is None and ingress["corsPolicy"] is None
    assert (
        config["maxInactiveRevisions"] == 100 and config["dapr"] is None and config["identitySettings"] == []
    )
    template = shapes.app_template({"containers": [{"name": "web", "image": "nginx", "resources": None}]})
    assert template["containers"][0]["resources"] == {"cpu": 0.5, "memory": "1Gi", "ephemeralStorage": "2Gi"}
    assert template["scale"] == {"minReplicas": None, "maxReplicas": 10, "rules": None}
    assert template["revisionSuffix"] == "" and template["initContainers"] is None
    assert "probes" not in template["containers"][0]


def test_identity_types_and_keys_read_back_in_the_services_spelling() -> None:
    rid = "/subscriptions/s/resourceGroups/rg/providers/microsoft.managedidentity/userassignedidentities/id1"
    block = shapes.identity_block(
        {"type": "SystemAssigned,UserAssigned", "userAssignedIdentities": {rid: {}}}, None, "/x"
    )
    assert block["type"] == "SystemAssigned, UserAssigned"
    (key,) = block["userAssignedIdentities"]
    assert (
        key
        == "/subscriptions/s/resourcegroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
    )
    assert set(block) == {"type", "principalId", "tenantId", "userAssignedIdentities"}
    again = shapes.identity_block({"type": "SystemAssigned"}, block, "/x")
    assert again["principalId"] == block["principalId"], "the system identity survives an update"
    assert shapes.identity_block(None, None, "/x") == {"type": "None"}


def test_ephemeral_storage_follows_the_cpu() -> None:
    assert [shapes.ephemeral_storage(c) for c in (0.25, 0.5, 0.75, 1.0, 1.25, 4)] == [
        "1Gi",
        "2Gi",
        "4Gi",
        "4Gi",
        "8Gi",
        "8Gi",
    ]
    assert shapes.memory("1.0Gi") == "1Gi" and shapes.memory("0.5Gi") == "0.5Gi"


def test_scale_rules_are_reshaped_like_live_arm() -> None:
    http = shapes.scale_rule(
        {"name": "h", "custom": {"type": "http", "metadata": {"concurrentRequests": "5"}}}
    )
    assert http == {"name": "h", "http": {"metadata": {"concurrentRequests": "5"}}}
    queue = shapes.scale_rule(
        {
            "name": "q",
            "azureQueue": None,
            "custom": {
                "type": "azure-queue",
                "metadata": {"accountName": "a", "queueName": "q", "queueLength": "1"},
                "auth": [],
                "identity": "i",
            },
        }
    )
    assert queue == {
        "name": "q",
        "azureQueue": {"accountName": "a", "queueName": "q", "queueLength": 1, "identity": "i"},
    }
    rule = {"name": "r", "type": "azure-queue", "metadata": {}, "auth": [], "azureQueue": None}
    assert shapes.job_scale_rule(rule, create=True) == {"name": "r", "type": "azure-queue", "metadata": {}}
    assert shapes.job_scale_rule(rule, create=False)["auth"] == []


def test_merge_patch_merges_objects_replaces_lists_and_null_clears() -> None:
    stored = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert merge_patch(stored, {"a": {"c": [3]}, "d": None}) == {"a": {"b": 1, "c": [3]}}


def test_each_api_version_sees_its_own_fields() -> None:
    body = {
        "location": "East US",
        "properties": {
            "patchingMode": "Automatic",
            "configuration": {"identitySettings": [], "runtime": None, "ingress": None},
            "template": {
                "containers": [{"name": "c", "imageType": "ContainerImage"}],
                "scale": {"minReplicas": None},
            },
        },
    }
    ga = versions.render("containerApps", json.loads(json.dumps(body)), "2024-03-01")
    assert "patchingMode" not in ga["properties"] and "runtime" not in ga["properties"]["configuration"]
    assert "imageType" not in ga["properties"]["template"]["containers"][0]
    newest = versions.render("containerApps", json.loads(json.dumps(body)), "2026-07-01")
    assert newest["properties"]["template"]["scale"] == {
        "minReplicas": None,
        "cooldownPeriod": 300,
        "pollingInterval": 30,
    }
    april = versions.render("containerApps", json.loads(json.dumps(body)), "2024-02-02-preview", "2024-04-22")
    assert "identitySettings" not in april["properties"]["configuration"]
    assert "patchingMode" not in april["properties"], "not yet in East US in April 2024"


def test_timeline_dates() -> None:
    assert timeline.since(None, timeline.IDENTITY_SETTINGS)
    assert not timeline.since("2024-04-25", timeline.IDENTITY_SETTINGS)
    assert timeline.patching_mode("2024-04-22", "North Central US (Stage)")
    assert not timeline.patching_mode("2024-04-22", "East US")
    assert timeline.check(None) is None
    try:
        timeline.check("April 2024")
    except ValueError as exc:
        assert "YYYY-MM-DD" in str(exc)
    else:
        raise AssertionError("a malformed serviceDate must be refused")


containers = st.fixed_dictionaries(
    {"name": st.sampled_from(["a", "b"]), "image": st.sampled_from(["nginx", "busybox:1"])},
    optional={
        "resources": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    "cpu": st.sampled_from([0.25, 0.5, "0.75", 1, 2.0]),
                    "memory": st.sampled_from(["0.5Gi", "1.0Gi", "2Gi", None]),
                    "ephemeralStorage": st.sampled_from(["1Gi", "", None]),
                },
            ),
        ),
        "env": st.one_of(
            st.none(),
            st.lists(
                st.fixed_dictionaries({"name": st.just("X"), "value": st.sampled_from(["1", None])}),
                max_size=2,
            ),
        ),
        "command": st.one_of(st.none(), st.lists(st.just("run"), max_size=2)),
        "probes": st.none(),
        "imageType": st.sampled_from(["CloudBuild", "ContainerImage"]),
    },
)
templates = st.fixed_dictionaries(
    {"containers": st.lists(containers, min_size=1, max_size=2)},
    optional={
        "revisionSuffix": st.sampled_from([None, "", "v1"]),
        "scale": st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    "minReplicas": st.sampled_from([None, 0, 1, "2"]),
                    "maxReplicas": st.sampled_from([None, 3]),
                    "rules": st.one_of(
                        st.none(),
                        st.lists(
                            st.fixed_dictionaries(
                                {"name": st.just("r")},
                                optional={
                                    "custom": st.fixed_dictionaries(
                                        {"type": st.sampled_from(["http", "tcp", "datadog"])},
                                        optional={"metadata": st.just({"k": "v"}), "auth": st.just([])},
                                    ),
                                    "azureQueue": st.none(),
                                },
                            ),
                            max_size=2,
                        ),
                    ),
                },
            ),
        ),
        "volumes": st.one_of(
            st.none(), st.just([]), st.just([{"name": "v", "storageType": "EmptyDir", "storageName": None}])
        ),
        "initContainers": st.one_of(st.none(), st.just([])),
    },
)


@given(templates)
def test_property_the_rules_are_idempotent(template: dict[str, Any]) -> None:
    """A stored template sent back (a PUT of the GET body, or the base a PATCH merges into) stores the
    same: the stand-in never drifts from its own answers."""
    once = shapes.app_template(template)
    assert shapes.app_template(once) == once
    job = shapes.job_template(template, create=True, blank_storage=False)
    assert shapes.job_template(job, create=False, blank_storage=False) == job
