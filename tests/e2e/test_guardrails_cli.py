"""`synos set` guardrails and retries, and a failed sync's retry as `get status` and `describe` show
it: the CLI in a subprocess against Azurite, the GitHub and ARM stand-ins."""

from __future__ import annotations

import pytest

from tests.e2e.test_cli import Cli, cli  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e


def test_set_guardrails_and_retries_then_a_pass_enforces_them(cli: Cli) -> None:  # noqa: F811
    doc = cli.json(
        "set",
        "--allowed-registries",
        "*.azurecr.io, ghcr.io",
        "--max-cpu",
        "1",
        "--max-memory",
        "2048Mi",
        "--retry-limit",
        "3",
        "--retry-duration",
        "30",
        "--retry-factor",
        "3",
        "--retry-max-duration",
        "600",
        "--yes",
    )
    assert (doc["allowedRegistries"], doc["maxCpu"], doc["maxMemory"]) == (
        ["*.azurecr.io", "ghcr.io"],
        1.0,
        "2Gi",
    )
    retry = (
        doc["retryLimit"],
        doc["retryDurationSeconds"],
        doc["retryFactor"],
        doc["retryMaxDurationSeconds"],
    )
    assert retry == (3, 30.0, 3.0, 600.0)
    table = cli.run("set", "--show").stdout
    assert "allowed registries" in table and "retry limit" in table
    bad = cli.run("set", "--max-memory", "4GB", "--yes", check=2).stderr
    assert bad.startswith("synos: guardrail maxMemory") and "Gi or Mi" in bad
    # The repository's apps are nginx images from Docker Hub: none may run now.
    blocked = cli.json("sync", "--yes", check=None)
    assert blocked["outcome"] == "partial" and blocked["actions"] == []
    assert {(e["field"], e["line"]) for e in blocked["errors"]} == {("spec.containers[0].image", 8)}
    assert "operator guardrails" in blocked["errors"][0]["message"]
    assert cli.json("set", "--allowed-registries", "off", "--yes")["allowedRegistries"] is None
    assert cli.json("sync", "--yes")["outcome"] == "succeeded"


def test_a_failed_sync_shows_its_retry_in_get_status_and_describe(cli: Cli) -> None:  # noqa: F811
    cli.stack.admin(
        "arm",
        "POST",
        "lro-failures",
        {"method": "PUT", "path": "/containerApps/bravo$", "count": 1, "message": "quota exceeded"},
    )
    failed = cli.json("sync", "--yes", check=None)
    assert failed["outcome"] == "failed" and "retry 1/5 at" in failed["operationError"]
    op = cli.json("get", "status")["operation"]
    assert (op["status"], op["attempts"], op["retryLimit"], op["pending"]) == ("Failed", 1, 5, ["App/bravo"])
    assert op["nextRetryAt"] > op["startedAt"]
    assert "retry 1/5 at" in cli.run("get", "status").stdout
    bravo = cli.json("describe", "bravo")["resources"][0]
    assert bravo["status"]["syncState"] == "Failed" and "quota exceeded" in bravo["status"]["lastError"]
    assert bravo["sync"]["status"] == "Failed" and (
        bravo["sync"]["attempts"],
        bravo["sync"]["retryLimit"],
    ) == (
        1,
        5,
    )
    assert bravo["sync"]["nextRetryAt"] is not None
    assert "retry 1/5 at" in cli.run("describe", "bravo").stdout
    alpha = cli.json("describe", "alpha")["resources"][0]
    assert alpha["sync"] is None, "alpha synced: it waits for no retry"
    # `synos sync` of a failed revision retries it at once; the stand-in fails bravo only once
    assert cli.json("sync", "--yes")["outcome"] == "succeeded"
    assert cli.json("get", "status")["operation"]["status"] == "Succeeded"
