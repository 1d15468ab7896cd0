"""The fleet from the command line and the dashboard, in subprocesses against Azurite and the ARM
stand-in: `--target NAME` (and SYNOSCD_TARGET) picks the target of any command, `synos get targets`
shows every target's last pass and lease, and the dashboard's fleet page and a target's own pages
read the same tables; GET /api/v1/targets is `synos get targets -o json`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import APP_YAML, REPO_ROOT, LaunchedStack

pytestmark = pytest.mark.e2e

SUB_B = "00000000-0000-0000-0000-0000000000cc"


class FleetCli:
    def __init__(self, stack: LaunchedStack, root: Path) -> None:
        self.stack = stack
        for folder, names in (("apps", ("web",)), ("blue", ("api", "web"))):
            (root / folder).mkdir(parents=True)
            for name in names:
                (root / folder / f"{name}.yaml").write_text(APP_YAML.format(name=name, tag="1"))
        stack.admin(
            "arm",
            "POST",
            "environments",
            {"name": "env-blue", "resourceGroup": "rg-blue", "subscription": SUB_B},
        )
        blue = {
            "name": "blue",
            "subscriptionId": SUB_B,
            "resourceGroup": "rg-blue",
            "environment": "env-blue",
        }
        self.env = {
            **os.environ,
            **stack.env,
            "SYNOSCD_STATE_TABLE": f"f{uuid.uuid4().hex[:20]}",
            "SYNOSCD_SOURCE_PATH": str(root),
            "SYNOSCD_TARGETS": json.dumps([{**blue, "path": "blue"}]),
            "SYNOSCD_TARGETS_PATH": "",
            "SYNOSCD_PASS_WAIT_SECONDS": "10",
        }

    def run(self, *args: str, check: int = 0, **env: str) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "-m", "synoscd", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            env={**self.env, **env},
            timeout=120,
        )
        assert out.returncode == check, (
            f"synos {' '.join(args)} -> {out.returncode}\n{out.stdout}\n{out.stderr}"
        )
        return out

    def json(self, *args: str, check: int = 0, **env: str) -> Any:
        return json.loads(self.run(*args, "-o", "json", check=check, **env).stdout)

    def images(self) -> dict[tuple[str, str], str]:
        return {
            (r["resourceGroup"], r["name"]): r["body"]["properties"]["template"]["containers"][0]["image"]
            for r in self.stack.admin("arm", "GET", "state")["resources"]
        }


def test_target_option_get_targets_api_and_dashboard(fresh_stack: LaunchedStack, tmp_path: Path) -> None:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.05})
    cli = FleetCli(fresh_stack, tmp_path / "ops")
    rg = fresh_stack.env["SYNOSCD_AZURE_RESOURCE_GROUP"]

    never = cli.json("get", "targets")
    assert [(t["name"], t["lastPass"]) for t in never["targets"]] == [("default", None), ("blue", None)]

    blue = cli.json("sync", "--yes", "--target", "blue")
    assert blue["outcome"] == "succeeded" and blue["counts"]["create"] == 2
    assert cli.images() == {("rg-blue", "api"): "nginx:1", ("rg-blue", "web"): "nginx:1"}
    assert cli.json("sync", "--yes")["counts"]["create"] == 1, "no --target: the default target"
    assert set(cli.images()) == {("rg-blue", "api"), ("rg-blue", "web"), (rg, "web")}

    # SYNOSCD_TARGET does what --target does, for every command; --target wins over it.
    assert [a["name"] for a in cli.json("get", "apps", SYNOSCD_TARGET="blue")["apps"]] == ["api", "web"]
    assert [
        a["name"] for a in cli.json("get", "apps", "--target", "default", SYNOSCD_TARGET="blue")["apps"]
    ] == ["web"]
    cli.run("suspend", "api", "--reason", "hold", "--yes", "--target", "blue")
    assert cli.json("get", "apps", "--target", "blue")["apps"][0]["syncState"] == "Suspended"
    assert cli.json("get", "apps")["apps"][0]["syncState"] != "Suspended", "the default target's web is not"
    wrong = cli.run("get", "apps", "--target", "green", check=2)
    assert "'green' is not declared (targets: default, blue)" in wrong.stderr

    doc = cli.json("get", "targets")
    by_name = {t["name"]: t for t in doc["targets"]}
    assert by_name["blue"]["subscriptionId"] == SUB_B and by_name["blue"]["path"] == "blue"
    assert by_name["blue"]["lastPass"]["outcome"] == "succeeded"
    assert by_name["blue"]["lastPass"]["counts"]["create"] == 2
    assert by_name["default"]["lastPass"]["counts"]["create"] == 1
    assert by_name["blue"]["lease"]["holder"] is None and doc["errors"] == []
    table = cli.run("get", "targets").stdout
    assert "blue" in table and "rg-blue/env-blue" in table and "succeeded" in table

    # The Functions app's dashboard and API read the same: the fleet page, then blue's own pages.
    from tests.e2e.conftest import start_host

    host = start_host(fresh_stack, 0, **{k: v for k, v in cli.env.items() if k.startswith("SYNOSCD_")})
    try:
        api = requests.get(f"{host.url}/api/v1/targets", timeout=30).json()
        assert [t["name"] for t in api["targets"]] == ["default", "blue"]
        apps_of_blue = requests.get(f"{host.url}/api/v1/apps?target=blue", timeout=30).json()
        assert [a["name"] for a in apps_of_blue["apps"]] == ["api", "web"]
        page = requests.get(f"{host.url}/api/ui/targets", timeout=30)
        assert page.status_code == 200 and 'href="/api/ui/t/blue/"' in page.text
        inside = requests.get(f"{host.url}/api/ui/t/blue/apps", timeout=30)
        assert inside.status_code == 200 and "Target <strong>blue</strong>" in inside.text
        assert 'href="/api/ui/t/blue/apps/App/api"' in inside.text
        assert requests.get(f"{host.url}/api/ui/t/green/", timeout=30).status_code == 404
    finally:
        host.stop()
