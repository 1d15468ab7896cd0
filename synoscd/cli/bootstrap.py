"""`synos bootstrap`: the setup doctor. Checks every prerequisite one by one and prints each as ok or
missing with the exact fix; `--store-secrets` writes the GitHub App secrets into Key Vault."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synoscd.cli.output import CliError, emit, table
from synoscd.cli.prompt import confirm

SECRETS = ("github-app-id", "github-app-installation-id", "github-app-private-key", "github-webhook-secret")


def add(sub: Any) -> None:
    p = sub.add_parser(
        "bootstrap",
        help="check every prerequisite and print the fix for what is missing",
        description="Checks, one by one: the settings, that the identity can read the resource group and the "
        "Container Apps environment, the Key Vault secrets, that the GitHub App can read the "
        "repository and branch, and that the state table answers. Exit 0 when all are ok, 1 when "
        "something is missing. With --store-secrets, first writes the GitHub App secrets into Key "
        "Vault (SYNOSCD_KEYVAULT_URL).",
    )
    p.add_argument("--store-secrets", action="store_true", help="write the GitHub App secrets into Key Vault")
    p.add_argument("--app-id", type=int, help="with --store-secrets: the GitHub App id")
    p.add_argument("--installation-id", type=int, help="with --store-secrets: the App's installation id")
    p.add_argument(
        "--private-key-file", type=Path, help="with --store-secrets: the App's private key (PEM file)"
    )
    p.add_argument(
        "--webhook-secret-file",
        type=Path,
        help="with --store-secrets: a file holding the webhook secret (not given on the command line, "
        "so it stays out of shell history)",
    )
    p.add_argument(
        "--yes", "-y", action="store_true", help="with --store-secrets: do not ask for confirmation"
    )
    p.set_defaults(run=bootstrap)


def _check(name: str, fn: Callable[[], str], fix: str) -> dict[str, Any]:
    try:
        return {"check": name, "ok": True, "detail": fn(), "fix": None}
    except Exception as exc:
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        return {"check": name, "ok": False, "detail": detail, "fix": fix}


def _settings_check(settings: Any) -> dict[str, Any]:
    from synoscd.config import env_name

    needed = [
        "azure_subscription_id",
        "azure_resource_group",
        "azure_container_app_environment",
        "state_store",
    ]
    if not settings.source_path:
        needed += ["github_repo_owner", "github_repo_name"]
        if not settings.keyvault_url:
            needed += ["github_app_id", "github_app_installation_id", "github_app_private_key"]
    missing = [env_name(n) for n in needed if getattr(settings, n) in (None, "")]
    if missing:
        return {
            "check": "settings",
            "ok": False,
            "detail": f"missing: {', '.join(missing)}",
            "fix": "set " + ", ".join(missing) + " (Function App settings in Azure; export them locally)",
        }
    return {
        "check": "settings",
        "ok": True,
        "detail": f"{len(needed)} required settings present",
        "fix": None,
    }


def checks(rt: Any) -> list[dict[str, Any]]:
    s = rt.settings
    results = [_settings_check(s)]
    identity = s.azure_managed_identity_client_id or "the signed-in identity (DefaultAzureCredential)"

    def environment() -> str:
        env = rt.arm.environment()
        return f"{env.name} in {env.location}"

    def resource_group() -> str:
        apps, jobs = len(rt.arm.list("App")), len(rt.arm.list("Job"))
        return f"{apps} apps, {jobs} jobs readable in {s.azure_resource_group}"

    results.append(
        _check(
            "resource group",
            resource_group,
            f"grant {identity} the role 'Container Apps Contributor' on resource group "
            f"{s.azure_resource_group} (az role assignment create --assignee <principal> --role "
            f"'Container Apps Contributor' --scope /subscriptions/{s.azure_subscription_id}"
            f"/resourceGroups/{s.azure_resource_group}); check SYNOSCD_ARM_ENDPOINT",
        )
    )
    results.append(
        _check(
            "environment",
            environment,
            f"check SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT ({s.azure_container_app_environment}): "
            f"az containerapp env list -g {s.azure_resource_group} -o table",
        )
    )
    if s.keyvault_url:
        for name in SECRETS:
            results.append(
                _check(
                    f"key vault secret {name}",
                    lambda n=name: _secret_present(rt, n),
                    f"synos bootstrap --store-secrets ... (or az keyvault secret set --vault-name "
                    f"<vault> --name {name} --file <file>); grant {identity} 'Key Vault Secrets "
                    f"User' on the vault",
                )
            )
    results.append(
        _check(
            "github repository",
            lambda: _github(rt),
            "install the GitHub App on the repository (permissions: contents read, metadata read, "
            "commit statuses write); check SYNOSCD_GITHUB_REPO_OWNER, SYNOSCD_GITHUB_REPO_NAME, "
            "SYNOSCD_GITHUB_BRANCH, SYNOSCD_GITHUB_API_URL and the App's id, installation id and key",
        )
    )
    results.append(
        _check(
            "state table",
            lambda: _state(rt),
            f"grant {identity} 'Storage Table Data Contributor' on the storage account; check "
            "SYNOSCD_STATE_STORE (https://<account>.table.core.windows.net or a connection string)",
        )
    )
    return results


def _secret_present(rt: Any, name: str) -> str:
    version = rt.secrets.version(name)  # reads the secret; its value is never shown
    return f"present (version {str(version)[:8]}...)"


def _github(rt: Any) -> str:
    source = rt.source()
    snapshot = source.snapshot()
    where = rt.settings.source_path or f"{rt.settings.repo_full_name}@{rt.settings.github_branch}"
    return f"{where} at {snapshot.revision[:12]}: {len(snapshot.files)} manifest files"


def _state(rt: Any) -> str:
    from synoscd.state import history

    passes = history.list_passes(rt.table, limit=1)
    return f"table {rt.settings.state_table} answers; " + (
        "no pass yet" if not passes else f"last pass {passes[0].outcome}"
    )


def store_secrets(args: argparse.Namespace, rt: Any) -> list[str]:
    if not rt.settings.keyvault_url:
        raise CliError("--store-secrets needs SYNOSCD_KEYVAULT_URL (the vault to write to)")
    values: dict[str, str] = {}
    if args.app_id is not None:
        values["github-app-id"] = str(args.app_id)
    if args.installation_id is not None:
        values["github-app-installation-id"] = str(args.installation_id)
    for name, path in (
        ("github-app-private-key", args.private_key_file),
        ("github-webhook-secret", args.webhook_secret_file),
    ):
        if path is not None:
            try:
                values[name] = path.read_text().strip() + ("\n" if name == "github-app-private-key" else "")
            except OSError as exc:
                raise CliError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not values:
        raise CliError(
            "--store-secrets needs at least one of --app-id, --installation-id, --private-key-file, "
            "--webhook-secret-file"
        )
    if "github-app-private-key" in values and "PRIVATE KEY" not in values["github-app-private-key"]:
        raise CliError(f"{args.private_key_file}: not a PEM private key")
    confirm(args, f"Write {', '.join(values)} to {rt.settings.keyvault_url}?")
    for name, value in values.items():
        rt.secrets.set(name, value)
    return sorted(values)


def bootstrap(args: argparse.Namespace) -> int:
    from synoscd.engine.runtime import get_runtime

    rt = get_runtime()
    stored = store_secrets(args, rt) if args.store_secrets else []
    results = checks(rt)
    doc = {"ok": all(r["ok"] for r in results), "stored": stored, "checks": results}

    def view(d: dict[str, Any]) -> str:
        lines = [f"stored in Key Vault: {', '.join(d['stored'])}"] if d["stored"] else []
        lines.append(
            table(
                ["check", "status", "detail"],
                [(r["check"], "ok" if r["ok"] else "MISSING", r["detail"]) for r in d["checks"]],
            )
        )
        lines += [f"fix {r['check']}: {r['fix']}" for r in d["checks"] if not r["ok"]]
        lines.append("all prerequisites are in place" if d["ok"] else "some prerequisites are missing")
        return "\n".join(lines)

    emit(doc, args.output, view)
    return 0 if doc["ok"] else 1
