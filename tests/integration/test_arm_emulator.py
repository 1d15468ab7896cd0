"""The ARM stand-in driven through the real azure-mgmt-appcontainers client, with the production
credential path (DefaultAzureCredential -> the managed-identity endpoint) and TLS."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential
from azure.mgmt.appcontainers import ContainerAppsAPIClient, models
from azure.mgmt.appcontainers._utils.model_base import _deserialize

from tests.conftest import FIXTURES, LaunchedStack

pytestmark = pytest.mark.integration

EXAMPLES = FIXTURES / "aca-examples" / "2026-07-01"


@pytest.fixture
def arm(fresh_stack: LaunchedStack) -> LaunchedStack:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.1, "executionDuration": 0.1})
    return fresh_stack


@pytest.fixture
def client(arm: LaunchedStack) -> ContainerAppsAPIClient:
    return ContainerAppsAPIClient(
        DefaultAzureCredential(),
        arm.env["SYNOSCD_AZURE_SUBSCRIPTION_ID"],
        base_url=arm.env["SYNOSCD_ARM_ENDPOINT"],
        retry_backoff_factor=0.05,
    )


def env_id(stack: LaunchedStack) -> str:
    e = stack.env
    return (
        f"/subscriptions/{e['SYNOSCD_AZURE_SUBSCRIPTION_ID']}/resourceGroups/{e['SYNOSCD_AZURE_RESOURCE_GROUP']}"
        f"/providers/Microsoft.App/managedEnvironments/{e['SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT']}"
    )


def app_envelope(
    stack: LaunchedStack,
    image: str = "nginx:1.25",
    cpu: float = 0.25,
    memory: str = "0.5Gi",
    tags: dict[str, str] | None = None,
    ingress: bool = True,
) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if ingress:
        config["ingress"] = {"external": True, "targetPort": 80}
    return {
        "location": "East US",
        "tags": tags or {"synoscd-managed": "true"},
        "properties": {
            "environmentId": env_id(stack),
            "configuration": config,
            "template": {
                "containers": [{"name": "web", "image": image, "resources": {"cpu": cpu, "memory": memory}}],
                "scale": {"minReplicas": 1, "maxReplicas": 3},
            },
        },
    }


def rg(stack: LaunchedStack) -> str:
    return stack.env["SYNOSCD_AZURE_RESOURCE_GROUP"]


def arm_calls(stack: LaunchedStack, method: str, fragment: str) -> list[dict[str, Any]]:
    return [c for c in stack.calls("arm") if c["method"] == method and fragment in c["path"]]


def test_managed_identity_credential_gets_a_token_that_arm_accepts(arm: LaunchedStack) -> None:
    cred = ManagedIdentityCredential(client_id=arm.env["SYNOSCD_AZURE_MANAGED_IDENTITY_CLIENT_ID"])
    token = cred.get_token("https://management.azure.com/.default")
    assert token.expires_on > time.time() + 600
    url = (
        f"{arm.url('arm')}/subscriptions/{arm.env['SYNOSCD_AZURE_SUBSCRIPTION_ID']}/resourceGroups/{rg(arm)}"
        "/providers/Microsoft.App/containerApps?api-version=2026-07-01"
    )
    ok = requests.get(url, headers={"Authorization": f"Bearer {token.token}"}, timeout=10)
    assert ok.status_code == 200
    vault_token = cred.get_token("https://vault.azure.net/.default")
    wrong_audience = requests.get(url, headers={"Authorization": f"Bearer {vault_token.token}"}, timeout=10)
    assert wrong_audience.status_code == 401
    anonymous = requests.get(url, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "AuthenticationFailed"


def test_seeded_environment_reads_back(client: ContainerAppsAPIClient, arm: LaunchedStack) -> None:
    env = client.managed_environments.get(rg(arm), arm.env["SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT"])
    assert env.id == env_id(arm)
    assert env.properties.provisioning_state == "Succeeded"
    with pytest.raises(ResourceNotFoundError):
        client.managed_environments.get(rg(arm), "no-such-env")


def test_create_fills_server_defaults_and_read_only_fields(
    client: ContainerAppsAPIClient, arm: LaunchedStack
) -> None:
    poller = client.container_apps.begin_create_or_update(rg(arm), "web", app_envelope(arm))
    app = poller.result()
    p = app.properties
    assert p.provisioning_state == "Succeeded"
    assert p.running_status == "Running"
    assert p.latest_revision_name.startswith("web--")
    assert p.latest_ready_revision_name == p.latest_revision_name
    assert p.configuration.active_revisions_mode == "Single"
    # Live ARM's casing, not the request's (test_containerapp_registry_identity_user: "auto" -> "Auto").
    assert p.configuration.ingress.transport == "Auto"
    assert p.configuration.ingress.allow_insecure is False
    assert p.configuration.ingress.exposed_port == 0
    assert p.configuration.ingress.fqdn.startswith("web.")
    assert [t.as_dict() for t in p.configuration.ingress.traffic] == [{"latestRevision": True, "weight": 100}]
    # No probes and no sticky sessions are invented: every recorded app with ingress and no probes
    # reads back without probes and with `stickySessions: null` (e.g. test_containerapp_anonymous_registry).
    assert p.template.containers[0].probes is None
    assert p.configuration.ingress.sticky_sessions is None
    assert p.template.containers[0].resources.ephemeral_storage == "1Gi"  # sized by ACA from 0.25 cpu
    assert app.identity.type == "None", "ARM answers identity {type: None} when none was asked"
    assert p.configuration.max_inactive_revisions == 100
    assert p.outbound_ip_addresses and app.system_data.created_at is not None
    assert app.tags == {"synoscd-managed": "true"}
    posts = arm_calls(arm, "PUT", "/containerApps/web")
    assert [c["status"] for c in posts] == [201]
    polls = arm_calls(arm, "GET", "/operationStatuses/")
    assert polls, "the SDK polled the Azure-AsyncOperation URL"


def test_revision_only_on_template_change_and_every_put_is_201(
    client: ContainerAppsAPIClient, arm: LaunchedStack
) -> None:
    first = client.container_apps.begin_create_or_update(rg(arm), "api", app_envelope(arm)).result()
    rev1 = first.properties.latest_revision_name
    same = client.container_apps.begin_create_or_update(rg(arm), "api", app_envelope(arm)).result()
    assert same.properties.latest_revision_name == rev1
    tagged = client.container_apps.begin_create_or_update(
        rg(arm), "api", app_envelope(arm, tags={"synoscd-managed": "true", "team": "a"})
    ).result()
    assert tagged.properties.latest_revision_name == rev1, "a tag change makes no revision"
    rolled = client.container_apps.begin_create_or_update(
        rg(arm), "api", app_envelope(arm, image="nginx:1.26")
    ).result()
    assert rolled.properties.latest_revision_name != rev1
    # ACA answers 201 to every PUT, updates included (all 153 recorded PUTs, e.g. the identity
    # updates of test_containerapp_identity_user); an unchanged one only makes no revision.
    assert [c["status"] for c in arm_calls(arm, "PUT", "/containerApps/api")] == [201, 201, 201, 201]
    revisions = list(client.container_apps_revisions.list_revisions(rg(arm), "api"))
    assert [r.name for r in revisions] == [rev1, rolled.properties.latest_revision_name]
    latest = client.container_apps_revisions.get_revision(
        rg(arm), "api", rolled.properties.latest_revision_name
    )
    assert latest.properties.health_state == "Healthy"
    assert latest.properties.template.containers[0].image == "nginx:1.26"


def test_patch_merges_and_scale_rule_comes_back_in_response_shape(
    client: ContainerAppsAPIClient, arm: LaunchedStack
) -> None:
    envelope = app_envelope(arm)
    envelope["properties"]["template"]["scale"]["rules"] = [
        {"name": "http", "custom": {"type": "http", "metadata": {"concurrentRequests": "50"}}}
    ]
    client.container_apps.begin_create_or_update(rg(arm), "scaler", envelope).result()
    app = client.container_apps.get(rg(arm), "scaler")
    rule = app.properties.template.scale.rules[0].as_dict()
    assert rule == {"name": "http", "http": {"metadata": {"concurrentRequests": "50"}}}
    patched = client.container_apps.begin_update(
        rg(arm), "scaler", {"tags": {"synoscd-managed": "true", "patched": "yes"}}
    ).result()
    assert patched.tags["patched"] == "yes"
    assert patched.properties.template.containers[0].image == "nginx:1.25"


def test_secret_values_never_come_back(client: ContainerAppsAPIClient, arm: LaunchedStack) -> None:
    envelope = app_envelope(arm)
    envelope["properties"]["configuration"]["secrets"] = [
        {"name": "db", "value": "hunter2"},
        {"name": "kv", "keyVaultUrl": "https://v.vault.azure.net/secrets/s", "identity": "system"},
    ]
    client.container_apps.begin_create_or_update(rg(arm), "sec", envelope).result()
    raw = json.dumps(client.container_apps.get(rg(arm), "sec").as_dict())
    assert "hunter2" not in raw
    assert "https://v.vault.azure.net/secrets/s" in raw


def test_list_pages_with_next_link(client: ContainerAppsAPIClient, arm: LaunchedStack) -> None:
    arm.admin("arm", "PUT", "config", {"pageSize": 2})
    for i in range(5):
        arm.admin("arm", "POST", "apps", {"name": f"app-{i}", "envelope": app_envelope(arm)})
    arm.admin("arm", "DELETE", "calls")
    names = [a.name for a in client.container_apps.list_by_resource_group(rg(arm))]
    assert names == [f"app-{i}" for i in range(5)]
    pages = [c for c in arm.calls("arm") if c["method"] == "GET" and c["path"].endswith("/containerApps")]
    assert len(pages) == 3
    assert pages[1]["query"]["$skipToken"] == "2"


def test_delete_is_long_running_then_404(client: ContainerAppsAPIClient, arm: LaunchedStack) -> None:
    arm.admin("arm", "POST", "apps", {"name": "gone", "envelope": app_envelope(arm)})
    client.container_apps.begin_delete(rg(arm), "gone").result()
    with pytest.raises(ResourceNotFoundError) as err:
        client.container_apps.get(rg(arm), "gone")
    assert err.value.error.code == "ResourceNotFound"
    assert [c["status"] for c in arm_calls(arm, "DELETE", "/containerApps/gone")] == [202]
    client.container_apps.begin_delete(rg(arm), "gone").result()  # deleting nothing answers 204


def test_invalid_resource_total_is_400(client: ContainerAppsAPIClient, arm: LaunchedStack) -> None:
    with pytest.raises(HttpResponseError) as err:
        client.container_apps.begin_create_or_update(
            rg(arm), "bad", app_envelope(arm, cpu=0.3, memory="0.5Gi")
        )
    assert err.value.status_code == 400
    assert err.value.error.code == "ContainerAppInvalidResourceTotal"


def test_put_while_in_progress_is_409(client: ContainerAppsAPIClient, arm: LaunchedStack) -> None:
    arm.admin("arm", "PUT", "config", {"provisioningDelay": 2.0})
    client.container_apps.begin_create_or_update(rg(arm), "busy", app_envelope(arm), polling=False).result()
    assert client.container_apps.get(rg(arm), "busy").properties.provisioning_state == "InProgress"
    with pytest.raises(ResourceExistsError) as err:
        client.container_apps.begin_create_or_update(rg(arm), "busy", app_envelope(arm, image="nginx:2"))
    assert err.value.status_code == 409
    assert err.value.error.code == "ContainerAppOperationInProgress"


def test_long_running_operation_ending_failed_raises(
    client: ContainerAppsAPIClient, arm: LaunchedStack
) -> None:
    arm.admin(
        "arm",
        "POST",
        "lro-failures",
        {"method": "PUT", "path": "/containerApps/doomed$", "code": "ContainerAppProvisioningFailed"},
    )
    poller = client.container_apps.begin_create_or_update(rg(arm), "doomed", app_envelope(arm))
    with pytest.raises(HttpResponseError) as err:
        poller.result()
    assert "ContainerAppProvisioningFailed" in str(err.value)
    assert client.container_apps.get(rg(arm), "doomed").properties.provisioning_state == "Failed"


def test_429_with_retry_after_is_retried(client: ContainerAppsAPIClient, arm: LaunchedStack) -> None:
    arm.admin("arm", "POST", "apps", {"name": "busy-api", "envelope": app_envelope(arm)})
    arm.admin(
        "arm",
        "POST",
        "faults",
        {"method": "GET", "path": "/containerApps/busy-api$", "count": 2, "status": 429, "retryAfter": 0.1},
    )
    started = time.monotonic()
    app = client.container_apps.get(rg(arm), "busy-api")
    assert app.name == "busy-api"
    assert time.monotonic() - started >= 0.2, "the client waited Retry-After twice"
    assert [c["status"] for c in arm_calls(arm, "GET", "/containerApps/busy-api")] == [429, 429, 200]


def test_503_burst_then_success_and_dropped_connection(
    client: ContainerAppsAPIClient, arm: LaunchedStack
) -> None:
    arm.admin("arm", "POST", "apps", {"name": "flaky", "envelope": app_envelope(arm)})
    arm.admin(
        "arm", "POST", "faults", {"method": "GET", "path": "/containerApps/flaky$", "count": 2, "status": 503}
    )
    assert client.container_apps.get(rg(arm), "flaky").name == "flaky"
    arm.admin(
        "arm", "POST", "faults", {"method": "GET", "path": "/containerApps/flaky$", "count": 1, "drop": True}
    )
    assert client.container_apps.get(rg(arm), "flaky").name == "flaky"
    statuses = [c["status"] for c in arm_calls(arm, "GET", "/containerApps/flaky")]
    assert statuses == [503, 503, 200, "dropped", 200]


def test_an_answer_lost_after_the_write_leaves_the_write_done(
    client: ContainerAppsAPIClient, arm: LaunchedStack
) -> None:
    arm.admin("arm", "PUT", "config", {"provisioningDelay": 2.0})
    arm.admin(
        "arm",
        "POST",
        "faults",
        {"method": "PUT", "path": "/containerApps/lost$", "count": 1, "dropAfter": True},
    )
    # The SDK retries the PUT whose answer it never got: ARM, busy with the first, answers 409.
    with pytest.raises(ResourceExistsError) as err:
        client.container_apps.begin_create_or_update(rg(arm), "lost", app_envelope(arm))
    assert err.value.error.code == "ContainerAppOperationInProgress"
    puts = arm_calls(arm, "PUT", "/containerApps/lost")
    assert [c["status"] for c in puts] == ["201 dropped", 409]
    assert "fault" in puts[0] and "fault" not in puts[1], "the log names the call a fault hit"
    assert client.container_apps.get(rg(arm), "lost").properties.provisioning_state == "InProgress"


def test_crashing_image_never_gets_a_ready_revision(
    client: ContainerAppsAPIClient, arm: LaunchedStack
) -> None:
    client.container_apps.begin_create_or_update(rg(arm), "crashy", app_envelope(arm)).result()
    arm.admin("arm", "POST", "crashing-images", {"image": "broken:1"})
    app = client.container_apps.begin_create_or_update(
        rg(arm), "crashy", app_envelope(arm, image="broken:1")
    ).result()
    p = app.properties
    assert p.provisioning_state == "Succeeded", "ACA reports Succeeded while the new revision fails"
    assert p.latest_ready_revision_name != p.latest_revision_name
    rev = client.container_apps_revisions.get_revision(rg(arm), "crashy", p.latest_revision_name)
    assert rev.properties.health_state == "Unhealthy"
    assert rev.properties.running_state == "Failed"


def test_out_of_band_drift_through_admin(client: ContainerAppsAPIClient, arm: LaunchedStack) -> None:
    client.container_apps.begin_create_or_update(rg(arm), "drifty", app_envelope(arm)).result()
    arm.admin(
        "arm",
        "PATCH",
        "apps/drifty",
        {
            "properties": {
                "template": {
                    "containers": [
                        {"name": "web", "image": "evil:1", "resources": {"cpu": 0.25, "memory": "0.5Gi"}}
                    ]
                }
            }
        },
    )
    app = client.container_apps.get(rg(arm), "drifty")
    assert app.properties.template.containers[0].image == "evil:1"
    assert app.properties.provisioning_state == "Succeeded"


def manual_job(stack: LaunchedStack, image: str = "busybox:1") -> dict[str, Any]:
    return {
        "location": "East US",
        "tags": {"synoscd-managed": "true"},
        "properties": {
            "environmentId": env_id(stack),
            "configuration": {"triggerType": "Manual", "replicaTimeout": 60},
            "template": {
                "containers": [
                    {"name": "migrate", "image": image, "resources": {"cpu": 0.25, "memory": "0.5Gi"}}
                ]
            },
        },
    }


def wait_execution(client: ContainerAppsAPIClient, stack: LaunchedStack, job: str, name: str) -> str:
    for _ in range(100):
        status = client.job_execution(rg(stack), job, name).properties.status
        if status not in ("Running", "Processing"):
            return status
        time.sleep(0.05)
    raise AssertionError("execution never finished")


def test_job_start_execution_succeeds_or_fails(client: ContainerAppsAPIClient, arm: LaunchedStack) -> None:
    job = client.jobs.begin_create_or_update(rg(arm), "migrate", manual_job(arm)).result()
    assert job.properties.provisioning_state == "Succeeded"
    assert job.properties.configuration.manual_trigger_config.parallelism == 1
    started = client.jobs.begin_start(rg(arm), "migrate").result()
    assert started.name.startswith("migrate-")
    assert client.job_execution(rg(arm), "migrate", started.name).properties.status == "Running"
    assert wait_execution(client, arm, "migrate", started.name) == "Succeeded"
    arm.admin("arm", "POST", "failing-jobs", {"job": "migrate"})
    second = client.jobs.begin_start(rg(arm), "migrate").result()
    assert wait_execution(client, arm, "migrate", second.name) == "Failed"
    listed = [e.name for e in client.jobs_executions.list(rg(arm), "migrate")]
    assert listed == [second.name, started.name]
    assert [j.name for j in client.jobs.list_by_resource_group(rg(arm))] == ["migrate"]
    client.jobs.begin_delete(rg(arm), "migrate").result()
    with pytest.raises(ResourceNotFoundError):
        client.jobs.get(rg(arm), "migrate")


# -- faithfulness to the published examples ------------------------------------------------------

MODELS = {
    "ContainerApps_CreateOrUpdate": models.ContainerApp,
    "ContainerApps_Get": models.ContainerApp,
    "ContainerApps_Update": models.ContainerApp,
    "ContainerApps_ListByResourceGroup": list[models.ContainerApp],
    "ContainerAppsRevisions_GetRevision": models.Revision,
    "ContainerAppsRevisions_ListRevisions": list[models.Revision],
    "ManagedEnvironments_Get": models.ManagedEnvironment,
    "Jobs_CreateOrUpdate": models.Job,
    "Jobs_Get": models.Job,
    "Jobs_ListByResourceGroup": list[models.Job],
    "Jobs_Start": models.JobExecutionBase,
    "JobsExecutions_List": list[models.JobExecution],
    "JobExecution": models.JobExecution,
}


def example_files() -> list[Path]:
    return sorted(EXAMPLES.glob("*.json"))


def test_examples_folder_is_present() -> None:
    assert len(example_files()) == 16, f"expected the 16 ARM examples under {EXAMPLES}"


@pytest.mark.parametrize("path", example_files(), ids=lambda p: p.stem)
def test_every_example_response_deserialises_through_the_sdk(path: Path) -> None:
    example = json.loads(path.read_text())
    model = MODELS.get(example["operationId"])
    bodies = [r["body"] for r in example["responses"].values() if isinstance(r.get("body"), dict)]
    if model is None:
        assert not bodies, f"{path.name} has bodies but no model mapping"
        return
    for body in bodies:
        data = body["value"] if isinstance(body.get("value"), list) else body
        obj = _deserialize(model, data)
        items = obj if isinstance(obj, list) else [obj]
        raw = data if isinstance(data, list) else [data]
        for item, wire in zip(items, raw, strict=True):
            assert item.as_dict() == wire
            assert item.name == wire["name"]
            if "properties" in wire:
                assert item.properties is not None


# Fields the real service adds that the trimmed examples leave out (platform facts: read-only fields
# and server defaults; `identity: {type: None}`, `patchingMode` and `delegatedIdentities` are in every
# recent recorded GET, tests/fixtures/aca-recordings). The stand-in may add these and nothing else.
DOCUMENTED_EXTRAS = {
    "top": {"systemData", "tags", "identity"},
    "properties": {
        "patchingMode",
        "delegatedIdentities",
        "environmentId",
        "latestRevisionName",
        "latestReadyRevisionName",
        "outboundIpAddresses",
        "customDomainVerificationId",
        "eventStreamEndpoint",
        "workloadProfileName",
        "runningState",
        "runningStatus",
    },
}


@pytest.mark.parametrize(
    "name,kind",
    [
        ("ContainerApps_CreateOrUpdate", "app"),
        ("ContainerApps_TcpApp_CreateOrUpdate", "app"),
        ("Job_CreateorUpdate", "job"),
    ],
)
def test_request_examples_read_back_with_the_response_keys(
    name: str, kind: str, client: ContainerAppsAPIClient, arm: LaunchedStack
) -> None:
    example = json.loads((EXAMPLES / f"{name}.json").read_text())
    envelope = copy.deepcopy(
        example["parameters"].get("containerAppEnvelope") or example["parameters"]["JobEnvelope"]
    )
    envelope["properties"]["environmentId"] = env_id(arm)
    resource = name.split("_")[0].lower()
    if kind == "app":
        client.container_apps.begin_create_or_update(rg(arm), f"ex-{resource}", envelope).result()
        got = client.container_apps.get(rg(arm), f"ex-{resource}").as_dict()
    else:
        client.jobs.begin_create_or_update(rg(arm), "ex-job", envelope).result()
        got = client.jobs.get(rg(arm), "ex-job").as_dict()
    expected = example["responses"]["200"]["body"]
    for level, want, have in (
        ("top", set(expected), set(got)),
        ("properties", set(expected["properties"]), set(got["properties"])),
    ):
        assert want <= have, f"{level}: missing {want - have}"
        assert have - want <= DOCUMENTED_EXTRAS[level], (
            f"{level}: undocumented extras {have - want - DOCUMENTED_EXTRAS[level]}"
        )


def test_a_resource_group_that_does_not_exist_is_resource_group_not_found(
    arm: LaunchedStack, client: ContainerAppsAPIClient
) -> None:
    """As ARM answers it, listing included: an empty list would make a wrong group look like no apps."""
    with pytest.raises(ResourceNotFoundError) as err:
        list(client.container_apps.list_by_resource_group("no-such-group"))
    assert err.value.error is not None and err.value.error.code == "ResourceGroupNotFound"
    assert "Resource group 'no-such-group' could not be found." in str(err.value)
    with pytest.raises(ResourceNotFoundError, match="ResourceGroupNotFound"):
        client.jobs.get("no-such-group", "web")
    assert list(client.container_apps.list_by_resource_group(rg(arm))) == []
    arm.admin("arm", "POST", "resource-groups", {"name": "declared-group"})
    assert list(client.container_apps.list_by_resource_group("declared-group")) == []
