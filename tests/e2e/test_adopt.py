"""Adopting an existing app end to end on the local stack: an app made by hand (azure-mgmt-appcontainers
against the ARM stand-in) -> `synos export` -> committed to the source -> `synos adopt` -> the next
`synos diff` plans no write, and the stand-in's call log shows no write but the tags."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.identity import DefaultAzureCredential
from azure.mgmt.appcontainers import ContainerAppsAPIClient

from tests.conftest import LaunchedStack
from tests.e2e.test_cli import Cli

pytestmark = pytest.mark.e2e

WRITES = ("PUT", "PATCH", "DELETE", "POST")


@pytest.fixture
def cli(fresh_stack: LaunchedStack) -> Iterator[Cli]:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.1})
    c = Cli(fresh_stack)
    c.commit({f"apps/{n}.yaml": None for n in ("alpha", "bravo", "charlie")})  # an empty ops repo
    yield c


def _env_id(stack: LaunchedStack, name: str | None = None) -> str:
    e = stack.env
    return (
        f"/subscriptions/{e['SYNOSCD_AZURE_SUBSCRIPTION_ID']}/resourceGroups/{e['SYNOSCD_AZURE_RESOURCE_GROUP']}"
        f"/providers/Microsoft.App/managedEnvironments/{name or e['SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT']}"
    )


def _create_by_hand(stack: LaunchedStack, name: str, env: str | None = None) -> None:
    """What a platform team did before SynosCD: an app made with the SDK, no SynosCD tags."""
    client = ContainerAppsAPIClient(
        DefaultAzureCredential(),
        stack.env["SYNOSCD_AZURE_SUBSCRIPTION_ID"],
        base_url=stack.env["SYNOSCD_ARM_ENDPOINT"],
        polling_interval=0.1,
    )
    body = {
        "location": "eastus",
        "tags": {"team": "payments", "cost-center": "42"},
        "identity": {"type": "SystemAssigned"},
        "properties": {
            "environmentId": _env_id(stack, env),
            "configuration": {
                "activeRevisionsMode": "single",
                "maxInactiveRevisions": 20,
                "ingress": {
                    "external": True,
                    "targetPort": 8080,
                    "transport": "auto",
                    "ipSecurityRestrictions": [
                        {"name": "office", "ipAddressRange": "203.0.113.0/24", "action": "Allow"}
                    ],
                },
                "dapr": {"enabled": True, "appId": name, "appPort": 8080},
            },
            "template": {
                "containers": [
                    {
                        "name": "api",
                        "image": "contoso.azurecr.io/payments-api:3.1",
                        "resources": {"cpu": 0.5, "memory": "1Gi"},
                        "env": [{"name": "MODE", "value": "live"}],
                    }
                ],
                "scale": {"minReplicas": 1, "maxReplicas": 4},
            },
        },
    }
    client.container_apps.begin_create_or_update(
        stack.env["SYNOSCD_AZURE_RESOURCE_GROUP"], name, body
    ).result()


def _live(stack: LaunchedStack, name: str) -> dict[str, Any]:
    for r in stack.admin("arm", "GET", "state")["resources"]:
        if r["kind"] == "containerApps" and r["name"] == name:
            return dict(r["body"])
    raise AssertionError(f"no app {name}")


def _writes(stack: LaunchedStack) -> list[tuple[str, str]]:
    return [(c["method"], c["path"].rsplit("/", 1)[-1]) for c in stack.calls("arm") if c["method"] in WRITES]


def test_export_commit_adopt_then_the_next_diff_plans_no_write(cli: Cli, tmp_path: Path) -> None:
    stack = cli.stack
    _create_by_hand(stack, "payments")
    before = _live(stack, "payments")

    # Not ours yet: a manifest naming it would be a clash, never a write.
    exported = cli.run("export", "payments", "-d", str(tmp_path / "apps"))
    assert "payments" in exported.stdout and "configuration.dapr" in exported.stderr, (
        "unowned, said on stderr"
    )
    manifest_file = tmp_path / "apps" / "payments.yaml"
    manifest = yaml.safe_load(manifest_file.read_text())
    assert (
        manifest["kind"] == "App"
        and manifest["spec"]["containers"][0]["image"] == "contoso.azurecr.io/payments-api:3.1"
    )
    assert manifest["spec"]["ingress"]["ipSecurityRestrictions"][0]["name"] == "office"
    assert cli.json("validate", str(tmp_path / "apps"))["valid"] is True
    stream = cli.run("export", "payments", "-o", "yaml").stdout
    assert list(yaml.safe_load_all(stream)) == [manifest], "the same manifest as a YAML stream on stdout"

    cli.commit({"apps/payments.yaml": manifest_file.read_text()})
    clash = cli.json("diff")
    action = next(a for a in clash["actions"] if a["name"] == "payments")
    assert (action["action"], action["reason"]) == ("skip", "unmanaged-conflict")
    assert "synos adopt payments" in action["message"]

    stack.admin("arm", "DELETE", "calls")
    adopted = cli.json("adopt", "payments", "--yes")
    assert adopted["resources"] == [
        {
            "kind": "App",
            "name": "payments",
            "result": "adopted",
            "message": f"tagged as managed from synoscd-cli/{cli.repo}:apps",
        }
    ]
    assert _writes(stack) == [("PATCH", "payments")], "one write: the tags"
    after = _live(stack, "payments")
    assert after["tags"] == {
        **before["tags"],
        "synoscd-managed": "true",
        "synoscd-source": f"synoscd-cli/{cli.repo}:apps",
        "synoscd-revision": adopted["revision"],
    }
    volatile = ("systemData", "tags")
    assert {k: v for k, v in after.items() if k not in volatile} == {
        k: v for k, v in before.items() if k not in volatile
    }, "nothing but the tags changed"

    stack.admin("arm", "DELETE", "calls")
    plan = cli.json("diff")  # exit 0: the next pass plans no write
    assert [(a["name"], a["action"]) for a in plan["actions"]] == [("payments", "noop")]
    synced = cli.json("sync", "--yes")
    assert synced["outcome"] == "succeeded" and synced["results"] == []
    assert _writes(stack) == [], "no write at all after adoption"
    assert cli.json("adopt", "payments", "--yes")["resources"][0]["result"] == "already-adopted"


def test_adopt_refuses_unknown_names_and_other_environments(cli: Cli, tmp_path: Path) -> None:
    stack = cli.stack
    stack.admin("arm", "POST", "environments", {"name": "team-b-env"})
    _create_by_hand(stack, "elsewhere", env="team-b-env")
    out = cli.run("export", "elsewhere", check=2)
    assert "team-b-env" in out.stderr
    assert cli.run("export", "nosuchapp", check=2).stderr.startswith("synos: no app or job named 'nosuchapp'")
    assert "--all" in cli.run("export", check=2).stderr

    cli.commit(
        {
            "apps/elsewhere.yaml": "apiVersion: synoscd.io/v1alpha1\nkind: App\nmetadata:\n"
            "  name: elsewhere\nspec:\n  containers:\n"
            "    - {name: api, image: 'nginx:1', cpu: 0.25, memory: 0.5Gi}\n"
        }
    )
    stack.admin("arm", "DELETE", "calls")
    missing = cli.run("adopt", "ghost", "--yes", check=2)
    assert "no valid manifest" in missing.stderr and "ghost" in missing.stderr
    refused = cli.run("adopt", "elsewhere", "--yes", "-o", "json", check=1)
    row = json.loads(refused.stdout)["resources"][0]
    assert row["result"] == "refused" and "team-b-env" in row["message"]
    assert _writes(stack) == [], "nothing written"
    assert "synoscd-managed" not in _live(stack, "elsewhere")["tags"]
