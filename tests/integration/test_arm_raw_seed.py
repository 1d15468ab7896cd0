"""Raw seeding of the ARM stand-in: a GET body recorded from live Azure, stored verbatim (ids
rewritten), then read, listed, patched and put through the real SDK like any other resource."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
import requests
from azure.identity import DefaultAzureCredential
from azure.mgmt.appcontainers import ContainerAppsAPIClient

from tests.conftest import FIXTURES, LaunchedStack
from tests.integration.arm_replay import diff, normalise

pytestmark = pytest.mark.integration

RECORDINGS = FIXTURES / "aca-recordings"
RECORDED_SUB = "00000000-0000-0000-0000-000000000000"


def recorded_get(recording: str, seq: int) -> dict[str, Any]:
    interactions = json.loads((RECORDINGS / recording).read_text())["interactions"]
    (hit,) = [i for i in interactions if i["seq"] == seq and i["method"] == "GET"]
    return hit["response"]


# An app with ingress, IP restrictions, a user-assigned identity, secrets and an http scale rule
# (the last GET of the recording), and an event-triggered job with volumes and a registry-less template.
APP_BODY = recorded_get("test_containerapp_create_with_yaml.json", 20)
JOB_BODY = recorded_get("test_containerappjob_eventtriggered_create_with_yaml.json", 8)


@pytest.fixture
def arm(fresh_stack: LaunchedStack) -> LaunchedStack:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.05})
    return fresh_stack


@pytest.fixture
def client(arm: LaunchedStack) -> ContainerAppsAPIClient:
    return ContainerAppsAPIClient(
        DefaultAzureCredential(),
        arm.env["SYNOSCD_AZURE_SUBSCRIPTION_ID"],
        base_url=arm.env["SYNOSCD_ARM_ENDPOINT"],
        retry_backoff_factor=0.05,
    )


def raw_get(stack: LaunchedStack, kind: str, name: str, api_version: str = "2026-07-01") -> dict[str, Any]:
    """The stand-in's GET body as sent on the wire (no SDK model in between)."""
    e = stack.env
    token = DefaultAzureCredential().get_token("https://management.azure.com/.default").token
    resp = requests.get(
        f"{stack.url('arm')}/subscriptions/{e['SYNOSCD_AZURE_SUBSCRIPTION_ID']}/resourceGroups/"
        f"{e['SYNOSCD_AZURE_RESOURCE_GROUP']}/providers/Microsoft.App/{kind}/{name}",
        params={"api-version": api_version},
        headers={"Authorization": f"Bearer {token}"},
        verify=e["REQUESTS_CA_BUNDLE"],
        timeout=10,
    )
    resp.raise_for_status()
    return resp.json()


def expected(stack: LaunchedStack, body: dict[str, Any], segment: str, name: str) -> dict[str, Any]:
    """The recorded body with only its id, name, subscription, group and environment ids rewritten."""
    e = stack.env
    sub, rg = e["SYNOSCD_AZURE_SUBSCRIPTION_ID"], e["SYNOSCD_AZURE_RESOURCE_GROUP"]
    env_id = (
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/managedEnvironments/"
        f"{e['SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT']}"
    )
    want = json.loads(json.dumps(body).replace(f"/subscriptions/{RECORDED_SUB}", f"/subscriptions/{sub}"))
    want["id"] = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/{segment}/{name}"
    want["name"] = name
    for k in ("environmentId", "managedEnvironmentId"):
        if want["properties"].get(k):
            want["properties"][k] = env_id
    # The event stream's path names the resource itself (its group and name): rewritten too.
    stream = want["properties"]["eventStreamEndpoint"]
    want["properties"]["eventStreamEndpoint"] = re.sub(
        r"/resourceGroups/[^/]+/containerApps/[^/]+/", f"/resourceGroups/{rg}/containerApps/{name}/", stream
    )
    return want


def test_raw_app_reads_back_verbatim_at_every_api_version(
    client: ContainerAppsAPIClient, arm: LaunchedStack
) -> None:
    seeded = arm.admin("arm", "POST", "raw/apps", {"name": "adopted", "body": APP_BODY})
    want = expected(arm, APP_BODY, "containerapps", "adopted")
    assert seeded == want
    for api_version in ("2026-07-01", "2024-03-01"):
        assert raw_get(arm, "containerApps", "adopted", api_version) == want
    assert want["properties"]["outboundIpAddresses"] == APP_BODY["properties"]["outboundIpAddresses"]
    listed = [
        a.name for a in client.container_apps.list_by_resource_group(arm.env["SYNOSCD_AZURE_RESOURCE_GROUP"])
    ]
    assert listed == ["adopted"]
    revisions = client.container_apps_revisions.list_revisions(
        arm.env["SYNOSCD_AZURE_RESOURCE_GROUP"], "adopted"
    )
    assert APP_BODY["properties"]["latestRevisionName"] in [r.name for r in revisions]


def test_patch_of_a_raw_app_applies_the_normal_rules_and_keeps_the_rest(
    client: ContainerAppsAPIClient, arm: LaunchedStack
) -> None:
    """After a write the app follows the stand-in's rules; read at the recorded api-version, a
    tags-only PATCH leaves everything but the tags as live ARM recorded it."""
    rg = arm.env["SYNOSCD_AZURE_RESOURCE_GROUP"]
    arm.admin("arm", "POST", "raw/apps", {"name": "yaml000002", "body": APP_BODY})
    client.container_apps.begin_update(rg, "yaml000002", {"tags": {"synoscd-managed": "true"}}).result()
    got = raw_get(arm, "containerApps", "yaml000002", "2024-02-02-preview")
    # JSON merge patch (ACA's PATCH, as the SDK documents it): tags merge, `null` would remove one.
    assert got["tags"] == {"tagname": "value", "synoscd-managed": "true"}
    want = expected(arm, APP_BODY, "containerapps", "yaml000002")
    changed = [path for path, _, _ in diff(normalise(want), normalise(got))]
    assert changed == ["tags.synoscd-managed"], "only the tag may differ (environment-specific values aside)"
    assert got["properties"]["provisioningState"] == "Succeeded"


def test_put_of_a_raw_app_replaces_it_like_any_other(
    client: ContainerAppsAPIClient, arm: LaunchedStack
) -> None:
    rg = arm.env["SYNOSCD_AZURE_RESOURCE_GROUP"]
    arm.admin("arm", "POST", "raw/apps", {"name": "adopted", "body": APP_BODY})
    body = copy.deepcopy(raw_get(arm, "containerApps", "adopted"))
    body["properties"]["template"]["containers"][0]["image"] = "nginx:1.27"
    app = client.container_apps.begin_create_or_update(rg, "adopted", body).result()
    assert app.properties.template.containers[0].image == "nginx:1.27"
    assert app.properties.latest_revision_name != APP_BODY["properties"]["latestRevisionName"]
    assert app.properties.latest_ready_revision_name == app.properties.latest_revision_name


def test_raw_job_reads_back_verbatim_and_starts(client: ContainerAppsAPIClient, arm: LaunchedStack) -> None:
    rg = arm.env["SYNOSCD_AZURE_RESOURCE_GROUP"]
    seeded = arm.admin("arm", "POST", "raw/jobs", {"name": "runner", "body": JOB_BODY})
    want = expected(arm, JOB_BODY, "jobs", "runner")
    assert seeded == want
    assert raw_get(arm, "jobs", "runner") == want
    assert [j.name for j in client.jobs.list_by_resource_group(rg)] == ["runner"]
    started = client.jobs.begin_start(rg, "runner").result()
    assert started.name.startswith("runner-")
    client.jobs.begin_update(
        rg, "runner", {"properties": {"configuration": {"replicaTimeout": 300}}}
    ).result()
    got = raw_get(arm, "jobs", "runner")
    assert got["properties"]["configuration"]["replicaTimeout"] == 300
    assert got["properties"]["template"]["volumes"] == JOB_BODY["properties"]["template"]["volumes"]


def test_raw_seed_refuses_a_body_that_is_no_get_body(arm: LaunchedStack) -> None:
    with pytest.raises(requests.HTTPError) as err:
        arm.admin("arm", "POST", "raw/apps", {"name": "adopted", "body": {"location": "East US"}})
    assert err.value.response.status_code == 400
    assert err.value.response.json()["error"]["code"] == "InvalidRawSeed"
