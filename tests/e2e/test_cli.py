"""Every `synos` command end to end in a subprocess against Azurite and the stand-ins, with the json
shapes documented in docs/cli.md checked from outside."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import APP_YAML, REPO_ROOT, LaunchedStack
from tests.e2e.conftest import Host

pytestmark = pytest.mark.e2e

OWNER = "synoscd-cli"
APP = APP_YAML


class Cli:
    def __init__(self, stack: LaunchedStack) -> None:
        self.stack = stack
        self.repo = f"ops-{uuid.uuid4().hex[:8]}"
        stack.admin(
            "github",
            "POST",
            "repos",
            {
                "owner": OWNER,
                "name": self.repo,
                "files": {
                    f"apps/{n}.yaml": APP.format(name=n, tag="1") for n in ("alpha", "bravo", "charlie")
                },
            },
        )
        self.env = {
            **os.environ,
            **stack.env,
            "SYNOSCD_STATE_TABLE": f"c{uuid.uuid4().hex[:20]}",
            "SYNOSCD_GITHUB_REPO_OWNER": OWNER,
            "SYNOSCD_GITHUB_REPO_NAME": self.repo,
            "SYNOSCD_PASS_WAIT_SECONDS": "10",
        }

    def run(
        self, *args: str, check: int | None = 0, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "-m", "synoscd", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            env=env or self.env,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
        if check is not None:
            assert out.returncode == check, (
                f"synos {' '.join(args)} -> {out.returncode}\n{out.stdout}\n{out.stderr}"
            )
        return out

    def json(self, *args: str, check: int | None = 0) -> Any:
        return json.loads(self.run(*args, "-o", "json", check=check).stdout)

    def commit(self, files: dict[str, str | None]) -> str:
        return self.stack.admin("github", "POST", f"repos/{OWNER}/{self.repo}/commits", {"files": files})[
            "sha"
        ]


@pytest.fixture
def cli(fresh_stack: LaunchedStack) -> Iterator[Cli]:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.1})
    yield Cli(fresh_stack)


PASS_KEYS = {
    "id",
    "trigger",
    "dryRun",
    "outcome",
    "revision",
    "counts",
    "errors",
    "warnings",
    "sourceError",
    "prune",
    "actions",
    "results",
    "durationMs",
    "operation",
}
ACTION_KEYS = {"order", "kind", "name", "action", "phase", "wave", "reason"}
APP_KEYS = {
    "name",
    "kind",
    "desiredRevision",
    "appliedRevision",
    "syncState",
    "health",
    "lastSynced",
    "lastSyncedAgo",
    "message",
}


def test_config_masks_secrets_and_says_where_values_came_from(cli: Cli) -> None:
    out = cli.run("config", "-o", "json").stdout
    doc = json.loads(out)
    rows = {r["name"]: r for r in doc["settings"]}
    assert {k: v for k, v in rows["SYNOSCD_GITHUB_APP_PRIVATE_KEY"].items() if k != "description"} == {
        "name": "SYNOSCD_GITHUB_APP_PRIVATE_KEY",
        "value": "********",
        "source": "env",
    }
    assert "PEM" in rows["SYNOSCD_GITHUB_APP_PRIVATE_KEY"]["description"]
    assert doc["manifests"].startswith(f"GitHub {OWNER}/{cli.repo}, branch main, folder apps")
    assert rows["SYNOSCD_RECONCILE_INTERVAL_SECONDS"]["source"] == "default"
    assert "PRIVATE KEY" not in out and cli.stack.env["SYNOSCD_GITHUB_WEBHOOK_SECRET"] not in out
    assert "AccountKey" not in out
    assert "SYNOSCD_STATE_STORE" in cli.run("config").stdout


def test_sync_get_history_logs_describe_and_diff(cli: Cli) -> None:
    assert cli.run("diff", check=1).returncode == 1, "differences before the first sync"
    doc = cli.json("sync", "--yes")
    assert set(doc) == PASS_KEYS and doc["outcome"] == "succeeded"
    assert all(set(a) >= ACTION_KEYS for a in doc["actions"])
    assert [a["name"] for a in doc["actions"]] == ["alpha", "bravo", "charlie"]
    assert cli.json("diff")["actions"][0]["action"] == "noop"
    assert cli.run("diff").returncode == 0

    apps = cli.json("get", "apps")["apps"]
    assert [a["name"] for a in apps] == ["alpha", "bravo", "charlie"]
    assert all(set(a) == APP_KEYS for a in apps)
    assert {(a["syncState"], a["health"]) for a in apps} == {("Synced", "Healthy")}
    assert apps[0]["appliedRevision"] == doc["revision"]
    as_yaml = yaml.safe_load(cli.run("get", "apps", "-o", "yaml").stdout)["apps"]
    assert [(a["name"], a["syncState"], a["appliedRevision"]) for a in as_yaml] == [
        (a["name"], a["syncState"], a["appliedRevision"]) for a in apps
    ], "yaml carries the same data"
    table = cli.run("get", "apps").stdout
    assert "alpha" in table and "Synced" in table and "LAST SYNCED" in table

    status = cli.json("get", "status")
    assert set(status) == {"operation", "lastPass", "lease", "pendingRequests", "functions"}
    assert status["operation"]["status"] == "Succeeded" and status["operation"]["revision"] == doc["revision"]
    assert status["lastPass"]["id"] == doc["id"] and status["lease"] is None

    source = cli.json("get", "source")
    assert source["repository"] == f"{OWNER}/{cli.repo}" and source["headCommit"] == doc["revision"]
    assert source["lastSyncedCommit"] == doc["revision"] and source["branch"] == "main"

    history = cli.json("history", "--limit", "5")["passes"]
    assert history[0]["id"] == doc["id"] and history[0]["trigger"] == "cli"

    described = cli.json("describe", "alpha")["resources"][0]
    assert described["kind"] == "App" and described["status"]["syncState"] == "Synced"
    assert described["live"]["images"] == ["nginx:1"] and described["live"]["managed"] is True
    assert cli.json("status", "app", "alpha") == cli.json("describe", "alpha")

    logs = cli.json("logs", "app", "alpha")
    assert logs["name"] == "alpha" and logs["events"][0]["syncState"] == "Synced"

    cli.commit({"apps/alpha.yaml": APP.format(name="alpha", tag="2")})
    changed = cli.json("diff", check=1)
    alpha = next(a for a in changed["actions"] if a["name"] == "alpha")
    assert alpha["action"] == "update" and alpha["changes"][0]["field"] == "template.containers[0].image"
    assert cli.run("status", "app", "nope", check=2).stderr.startswith("synos: no app or job named 'nope'")


def test_suspend_then_pass_skips_it_resume_then_pass_syncs_it(cli: Cli) -> None:
    cli.json("sync", "--yes")
    flag = cli.json("suspend", "bravo", "--reason", "incident 7", "--yes")
    assert flag["suspended"] is True and flag["reason"] == "incident 7" and "@" in flag["by"]
    cli.commit({"apps/bravo.yaml": APP.format(name="bravo", tag="9")})
    skipped = cli.json("sync", "--yes")
    bravo = next(a for a in skipped["actions"] if a["name"] == "bravo")
    assert (bravo["action"], bravo["reason"]) == ("skip", "suspended")
    assert (
        next(a for a in cli.json("get", "apps")["apps"] if a["name"] == "bravo")["syncState"] == "Suspended"
    )
    assert cli.json("resume", "bravo", "--yes")["suspended"] is False
    synced = cli.json("sync", "--yes")
    bravo = next(a for a in synced["actions"] if a["name"] == "bravo")
    assert (bravo["action"], bravo["reason"]) == ("update", "drift")


def test_mutating_commands_refuse_without_a_terminal_and_without_yes(cli: Cli) -> None:
    for args in (
        ["suspend", "alpha"],
        ["resume", "alpha"],
        ["set", "--interval", "60"],
        ["sync"],
    ):
        out = cli.run(*args, check=2)
        assert "--yes" in out.stderr and "Traceback" not in out.stderr
    assert cli.json("set", "--show")["overridden"] == []
    assert cli.json("sync", "--dry-run", check=1)["dryRun"] is True, "a dry run needs no confirmation"


def test_set_shows_and_changes_runtime_settings(cli: Cli) -> None:
    shown = cli.json("set", "--show")
    assert set(shown) == {
        "intervalSeconds",
        "prune",
        "protectedApps",
        "maxConcurrent",
        "appliedHistory",
        "allowExecSynthesizers",
        "rolloutCooldownSeconds",
        "retryLimit",
        "retryDurationSeconds",
        "retryFactor",
        "retryMaxDurationSeconds",
        "allowedRegistries",
        "maxCpu",
        "maxMemory",
        "overridden",
        "updatedBy",
        "updatedAt",
        "notify",
    }
    assert shown["intervalSeconds"] == 300 and shown["prune"] is False and shown["notify"] == []
    changed = cli.json(
        "set", "--interval", "45", "--prune", "--protected-apps", "a,b", "--max-concurrent", "4", "--yes"
    )
    assert (
        changed["intervalSeconds"],
        changed["prune"],
        changed["protectedApps"],
        changed["maxConcurrent"],
    ) == (45, True, ["a", "b"], 4)
    assert cli.json("set", "--no-prune", "--yes")["prune"] is False
    assert cli.json("set", "--applied-history", "3", "--yes")["appliedHistory"] == 3
    assert "applied_history" in cli.run("set", "--applied-history", "0", "--yes", check=2).stderr
    assert cli.run("set", "--interval", "3", "--yes", check=2).stderr.startswith("synos: --interval")
    assert cli.run("set", check=2).stderr.startswith("synos: nothing to set")


def test_set_interval_changes_what_the_timer_does_on_its_next_tick(
    cli: Cli, host_factory: Callable[..., Host]
) -> None:
    host_factory(
        **{k: v for k, v in cli.env.items() if k.startswith("SYNOSCD_") and k != "SYNOSCD_TIMER_SCHEDULE"},
        SYNOSCD_TIMER_SCHEDULE="*/1 * * * * *",
        SYNOSCD_RECONCILE_INTERVAL_SECONDS="3600",
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not cli.json("history")["passes"]:
        time.sleep(0.5)
    first = cli.json("history")["passes"]
    assert len(first) == 1 and first[0]["trigger"] == "timer"
    time.sleep(2)
    assert len(cli.json("history")["passes"]) == 1, "interval 3600: the next ticks run nothing"
    cli.json("set", "--interval", "10", "--yes")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(cli.json("history")["passes"]) < 2:
        time.sleep(0.5)
    passes = cli.json("history")["passes"]
    assert len(passes) == 2 and passes[0]["trigger"] == "timer"
    assert passes[0]["startedAt"] - passes[1]["startedAt"] >= 9.5


def test_reconcile_waits_for_the_deployed_functions_and_local_runs_here(
    cli: Cli, host_factory: Callable[..., Host]
) -> None:
    host_factory(
        **{k: v for k, v in cli.env.items() if k.startswith("SYNOSCD_") and k != "SYNOSCD_TIMER_SCHEDULE"},
        SYNOSCD_TIMER_SCHEDULE="*/1 * * * * *",
        SYNOSCD_RECONCILE_INTERVAL_SECONDS="3600",
    )
    time.sleep(2)  # let the first timer pass happen
    cli.commit({"apps/alpha.yaml": APP.format(name="alpha", tag="3")})
    done = cli.json("reconcile", "app", "alpha", "--timeout", "30")
    assert done["trigger"] in ("timer", "coalesced") and done["outcome"] == "succeeded"
    assert done["app"]["syncState"] == "Synced"
    assert cli.json("describe", "alpha")["resources"][0]["live"]["images"] == ["nginx:3"]
    assert cli.json("reconcile", "source", "--timeout", "30")["outcome"] == "succeeded"
    local = cli.json("reconcile", "app", "bravo", "--local", "--yes")
    assert local["trigger"] == "cli" and [a["name"] for a in local["actions"]] == ["bravo"]


def test_reconcile_without_functions_fails_fast_with_a_hint(cli: Cli) -> None:
    # No Functions host ever ticked against this table: the 180 s default wait is not used; the
    # subprocess timeout bounds the call well below it (the CLI gives a host 7 s to show up).
    out = cli.run("reconcile", "source", check=2, timeout=30)
    assert "nobody is serving pass requests" in out.stderr and "make up" in out.stderr
    assert "Function App" in out.stderr and "--local" in out.stderr and "Traceback" not in out.stderr
    assert cli.json("get", "status")["functions"]["serving"] is False


def test_restore_brings_back_a_pruned_app_with_its_last_live_configuration(cli: Cli) -> None:
    cli.commit({"apps/delta.yaml": APP.format(name="delta", tag="7")})
    cli.json("set", "--prune", "--yes")
    cli.json("sync", "--yes")
    cli.commit({"apps/delta.yaml": None})
    pruned = cli.json("sync", "--yes")
    assert next(a for a in pruned["actions"] if a["name"] == "delta")["action"] == "delete"
    assert cli.json("describe", "delta")["resources"][0]["live"] is None
    restored = cli.json("restore", "delta", "--yes")
    assert restored["restored"] is True and restored["suspended"] is True
    live = cli.json("describe", "delta")["resources"][0]["live"]
    assert live["images"] == ["nginx:7"] and live["managed"] is True
    again = cli.json("sync", "--yes")
    assert next(a for a in again["actions"] if a["name"] == "delta")["reason"] == "suspended", (
        "not pruned again"
    )
    assert cli.run("restore", "delta", "--yes", check=2).stderr.endswith("nothing to restore\n")
    unknown = cli.run("restore", "never-existed", "--yes", check=2).stderr
    assert unknown.startswith("synos: no app or job named 'never-existed'")
    cli.json("sync", "--yes")
    assert "never pruned" in cli.run("restore", "alpha", "--yes", check=1).stderr, "known, no tombstone: 1"


def test_watch_refreshes_a_bounded_number_of_times(cli: Cli) -> None:
    cli.json("sync", "--yes")
    out = cli.run("status", "all", "--watch", "--count", "3", "--refresh", "0.1", "-o", "json").stdout
    docs = [json.loads(chunk) for chunk in out.replace("}\n{", "}\x00{").split("\x00")]
    assert len(docs) == 3 and all(d["apps"][0]["name"] == "alpha" for d in docs)
    assert docs[0]["apps"][0]["live"]["provisioningState"] == "Succeeded"


def test_errors_are_one_or_two_lines_naming_the_endpoint_and_setting(cli: Cli) -> None:
    dead = {
        **cli.env,
        "SYNOSCD_STATE_STORE": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=a2V5;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;",
    }
    out = cli.run("get", "apps", env=dead, check=2)
    assert "127.0.0.1:9" in out.stderr and "SYNOSCD_STATE_STORE" in out.stderr
    assert len(out.stderr.strip().splitlines()) <= 2 and "Traceback" not in out.stderr
    missing = {k: v for k, v in cli.env.items() if k != "SYNOSCD_STATE_STORE"}
    assert "SYNOSCD_STATE_STORE" in cli.run("get", "apps", env=missing, check=2).stderr
    no_arm = {**cli.env, "SYNOSCD_ARM_ENDPOINT": "https://127.0.0.1:9"}
    out = cli.run("diff", env=no_arm, check=2)
    assert "SYNOSCD_ARM_ENDPOINT" in out.stderr and len(out.stderr.strip().splitlines()) <= 2
    no_github = {**cli.env, "SYNOSCD_GITHUB_API_URL": "https://127.0.0.1:9"}
    out = cli.run("get", "source", env=no_github, check=2)
    assert "SYNOSCD_GITHUB_API_URL" in out.stderr and len(out.stderr.strip().splitlines()) <= 2
    assert "Traceback" in cli.run("get", "apps", "--debug", env=dead, check=None).stderr


def test_validate_and_schema(cli: Cli) -> None:
    good = cli.json("validate", str(REPO_ROOT / "examples"))
    assert good["valid"] is True and {r["name"] for r in good["resources"]} >= {"demo-app", "nightly-report"}
    bad = cli.json("validate", str(REPO_ROOT / "tests" / "corpus"), check=1)
    expected = yaml.safe_load((REPO_ROOT / "tests" / "corpus" / "expected.yaml").read_text())
    assert bad["valid"] is False
    for file, errors in expected.items():
        if file == "bad/oversize.yaml":  # generated by the unit test, not committed
            continue
        got = [e for e in bad["errors"] if e["file"] == file]
        for want in errors:
            assert any(
                e["line"] == want["line"] and e["field"] == want["field"] and want["message"] in e["message"]
                for e in got
            ), f"{file}: {want} not reported; got {got}"
        if not errors:
            assert got == [], f"{file} must stay clean"
    assert len({e["file"] for e in bad["errors"]}) >= 40
    assert cli.run("validate", "/no/such/folder", check=2).stderr.startswith("synos: /no/such/folder")
    schema = cli.json("schema")
    assert schema["$schema"].startswith("https://json-schema.org/") and "oneOf" in json.dumps(schema)


def test_help_describes_every_command_and_option() -> None:
    from synoscd.cli.main import build_parser

    parser = build_parser()
    stack: list[tuple[list[str], Any]] = [([], parser)]
    seen = 0
    while stack:
        path, p = stack.pop()
        for action in p._actions:
            if action.help is None and action.option_strings:
                raise AssertionError(f"synos {' '.join(path)} {action.option_strings} has no help")
            if hasattr(action, "choices") and isinstance(action.choices, dict):
                for name, child in action.choices.items():
                    assert child.description or child.format_help(), name
                    stack.append(([*path, name], child))
        seen += 1
    assert seen >= 20
    out = subprocess.run(
        [str(Path(sys.executable).parent / "synos"), "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in (
        "config",
        "get",
        "status",
        "describe",
        "diff",
        "sync",
        "reconcile",
        "suspend",
        "resume",
        "set",
        "history",
        "logs",
        "restore",
        "validate",
        "schema",
    ):
        assert command in out


def test_bootstrap_all_ok_on_the_local_stack(cli: Cli) -> None:
    doc = cli.json("bootstrap")
    assert doc["ok"] is True and doc["stored"] == []
    names = [c["check"] for c in doc["checks"]]
    assert names == [
        "settings",
        "resource group",
        "environment",
        "key vault secret github-app-id",
        "key vault secret github-app-installation-id",
        "key vault secret github-app-private-key",
        "key vault secret github-webhook-secret",
        "github repository",
        "state table",
    ]
    assert "PRIVATE KEY" not in json.dumps(doc)


def test_bootstrap_names_each_failure_with_its_fix(cli: Cli) -> None:
    cases = {
        "settings": {"SYNOSCD_AZURE_RESOURCE_GROUP": ""},
        "environment": {"SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT": "no-such-env"},
        "resource group": {"SYNOSCD_ARM_ENDPOINT": "https://127.0.0.1:9"},
        "github repository": {"SYNOSCD_GITHUB_REPO_NAME": "no-such-repo"},
        "state table": {
            "SYNOSCD_STATE_STORE": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            "AccountKey=a2V5;TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
        },
    }
    for check, override in cases.items():
        out = cli.run("bootstrap", "-o", "json", env={**cli.env, **override}, check=1)
        doc = json.loads(out.stdout)
        failed = {c["check"]: c for c in doc["checks"] if not c["ok"]}
        assert check in failed, (check, failed)
        assert failed[check]["fix"], check
    text = cli.run("bootstrap", env={**cli.env, "SYNOSCD_GITHUB_REPO_NAME": "no-such-repo"}, check=1).stdout
    assert "NOT FOUND" in text and "fix github repository: install the GitHub App" in text


def test_bootstrap_store_secrets_writes_key_vault_and_a_missing_secret_is_reported(
    cli: Cli, tmp_path: Path
) -> None:
    from azure.identity import DefaultAzureCredential
    from azure.keyvault.secrets import SecretClient

    vault = SecretClient(
        cli.env["SYNOSCD_KEYVAULT_URL"], DefaultAzureCredential(), verify_challenge_resource=False
    )
    vault.begin_delete_secret("github-webhook-secret")
    missing = json.loads(cli.run("bootstrap", "-o", "json", check=1).stdout)
    failed = [c for c in missing["checks"] if not c["ok"]]
    assert [c["check"] for c in failed] == ["key vault secret github-webhook-secret"]
    assert "synos bootstrap --store-secrets" in failed[0]["fix"]
    assert cli.run("bootstrap", "--store-secrets", "--app-id", "1", check=2).stderr.find("--yes") > 0
    secret_file = tmp_path / "webhook.txt"
    secret_file.write_text("a-new-webhook-secret\n")
    key_file = tmp_path / "key.pem"
    key_file.write_text(cli.env["SYNOSCD_GITHUB_APP_PRIVATE_KEY"])
    stored = cli.json(
        "bootstrap",
        "--store-secrets",
        "--webhook-secret-file",
        str(secret_file),
        "--private-key-file",
        str(key_file),
        "--app-id",
        cli.env["SYNOSCD_GITHUB_APP_ID"],
        "--yes",
    )
    assert stored["stored"] == ["github-app-id", "github-app-private-key", "github-webhook-secret"]
    assert stored["ok"] is True
    assert vault.get_secret("github-webhook-secret").value == "a-new-webhook-secret"
    assert "a-new-webhook-secret" not in json.dumps(stored)


def test_verbose_logs_are_json_lines_with_the_pass_id_and_no_secrets(cli: Cli) -> None:
    out = cli.run("-v", "sync", "--yes", "-o", "json")
    pass_id = json.loads(out.stdout)["id"]
    lines = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    finished = [r for r in lines if r["message"] == "pass finished"]
    assert finished and finished[0]["pass_id"] == pass_id and finished[0]["outcome"] == "succeeded"
    for secret in (
        cli.env["SYNOSCD_GITHUB_APP_PRIVATE_KEY"].splitlines()[1],
        "AccountKey=",
        cli.env["SYNOSCD_GITHUB_WEBHOOK_SECRET"],
        cli.env["IDENTITY_HEADER"],
    ):
        assert secret not in out.stderr and secret not in out.stdout
