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


STATUS = {
    None: "ok",
    "missing": "MISSING",
    "unreachable": "CANNOT REACH",
    "refused": "REFUSED",
    "not-found": "NOT FOUND",
    "error": "FAILED",
}


def _check(name: str, fn: Callable[[], str], fixes: Callable[[str, Exception], str]) -> dict[str, Any]:
    """Run one check. A failure says which of three things happened — the service could not be
    reached, it refused us, or what a setting names is not there — because each has its own fix."""
    from synoscd.config import MissingSetting
    from synoscd.errors import first_line, problem

    try:
        return {"check": name, "ok": True, "problem": None, "detail": fn(), "fix": None}
    except Exception as exc:
        kind = "missing" if isinstance(exc, MissingSetting) else problem(exc)
        fix = "set the missing settings (see the settings check)" if kind == "missing" else fixes(kind, exc)
        return {"check": name, "ok": False, "problem": kind, "detail": first_line(exc), "fix": fix}


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
            "problem": "missing",
            "detail": f"missing: {', '.join(missing)}",
            "fix": "set " + ", ".join(missing) + " (Function App settings in Azure; export them locally)",
        }
    return {
        "check": "settings",
        "ok": True,
        "problem": None,
        "detail": f"{len(needed)} required settings present",
        "fix": None,
    }


def _reach(setting: str, url: str) -> str:
    from synoscd.errors import local_hint

    return f"check {setting} ({url}) and the network{local_hint(url)}"


def _or(value: Any, placeholder: str) -> str:
    """A value for a suggested command; never 'None' in a command someone pastes."""
    return placeholder if value in (None, "") else str(value)


def checks(rt: Any) -> list[dict[str, Any]]:
    s = rt.settings
    results = [_settings_check(s)]
    identity = s.azure_managed_identity_client_id or "the signed-in identity (DefaultAzureCredential)"
    sub, rg = (
        _or(s.azure_subscription_id, "<subscription-id>"),
        _or(s.azure_resource_group, "<resource-group>"),
    )
    env_name = _or(s.azure_container_app_environment, "<environment>")

    def arm_fix(not_found: str) -> Callable[[str, Exception], str]:
        def fix(kind: str, exc: Exception) -> str:
            if kind == "unreachable":
                return _reach("SYNOSCD_ARM_ENDPOINT", s.arm_endpoint)
            if kind == "refused":
                return (
                    f"grant {identity} 'Container Apps Contributor' and 'Container Apps Jobs Contributor' on "
                    f"resource group {rg}: az role assignment create --assignee <principal-id> --role "
                    f"'Container Apps Contributor' --scope /subscriptions/{sub}/resourceGroups/{rg}"
                )
            return not_found

        return fix

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
            arm_fix(
                f"check SYNOSCD_AZURE_RESOURCE_GROUP ({rg}) and SYNOSCD_AZURE_SUBSCRIPTION_ID ({sub}): "
                f"az group show -n {rg} --subscription {sub}"
            ),
        )
    )
    results.append(
        _check(
            "environment",
            environment,
            arm_fix(
                f"check SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT ({env_name}): "
                f"az containerapp env list -g {rg} -o table"
            ),
        )
    )
    if s.keyvault_url:

        def vault_fix(name: str) -> Callable[[str, Exception], str]:
            def fix(kind: str, exc: Exception) -> str:
                if kind == "unreachable":
                    return _reach("SYNOSCD_KEYVAULT_URL", s.keyvault_url)
                if kind == "refused":
                    return f"grant {identity} 'Key Vault Secrets User' on the vault {s.keyvault_url}"
                return (
                    f"store it: synos bootstrap --store-secrets ... (or az keyvault secret set --vault-name "
                    f"<vault> --name {name} --file <file>)"
                )

            return fix

        for name in SECRETS:
            results.append(
                _check(f"key vault secret {name}", lambda n=name: _secret_present(rt, n), vault_fix(name))
            )

    def github_fix(kind: str, exc: Exception) -> str:
        if type(exc).__name__ == "SecretUnavailable":
            return "the GitHub App's secrets come from Key Vault: fix the key vault checks first"
        if s.source_path:
            return f"check SYNOSCD_SOURCE_PATH ({s.source_path}) and SYNOSCD_GITHUB_CONFIG_PATH"
        if kind == "unreachable":
            return _reach("SYNOSCD_GITHUB_API_URL", s.github_api_url)
        if kind == "refused":
            return (
                "GitHub refused the App's credentials: check the App's id, installation id and private key "
                "(Key Vault secrets or SYNOSCD_GITHUB_APP_*) and that the App is installed"
            )
        return (
            "install the GitHub App on the repository (permissions: contents read, metadata read, commit "
            "statuses write; checks write and pull requests read for previews); check "
            "SYNOSCD_GITHUB_REPO_OWNER, SYNOSCD_GITHUB_REPO_NAME and "
            "SYNOSCD_GITHUB_BRANCH"
        )

    results.append(_check("github repository", lambda: _github(rt), github_fix))

    def state_fix(kind: str, exc: Exception) -> str:
        if kind == "refused":
            return f"grant {identity} 'Storage Table Data Contributor' on the storage account"
        return "check SYNOSCD_STATE_STORE (https://<account>.table.core.windows.net or a connection string)"

    results.append(_check("state table", lambda: _state(rt), state_fix))
    return results


def _secret_present(rt: Any, name: str) -> str:
    version = rt.secrets.version(name)  # reads the secret; its value is never shown
    return f"present (version {str(version)[:8]}...)"


def _github(rt: Any) -> str:
    from synoscd.sources.factory import build_source

    # Without the table's blob cache: a state-store problem is the state table check's to report.
    snapshot = build_source(rt.settings, rt.secrets).snapshot()
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

    emit(doc, args.output, _view)
    return 0 if doc["ok"] else 1


def _view(d: dict[str, Any]) -> str:
    """Each long error once: a row whose detail repeats an earlier one points at it, and checks with
    the same fix share one line."""
    lines = [f"stored in Key Vault: {', '.join(d['stored'])}"] if d["stored"] else []
    first_with: dict[str, str] = {}
    rows = []
    for r in d["checks"]:
        detail = r["detail"]
        if not r["ok"] and detail in first_with:
            detail = f"(same as {first_with[detail]})"
        elif not r["ok"]:
            first_with[detail] = r["check"]
        rows.append((r["check"], STATUS.get(r.get("problem"), "FAILED") if not r["ok"] else "ok", detail))
    lines.append(table(["check", "status", "detail"], rows, max_width=80))
    fixes: dict[str, list[str]] = {}
    for r in d["checks"]:
        if not r["ok"]:
            fixes.setdefault(r["fix"], []).append(r["check"])
    lines += [f"fix {', '.join(names)}: {fix}" for fix, names in fixes.items()]
    failed = [r for r in d["checks"] if not r["ok"]]
    full = [r for r in failed if r["detail"] and len(r["detail"]) > 50]
    lines += [f"{r['check']}: {r['detail']}" for r in full if first_with.get(r["detail"]) == r["check"]]
    lines.append(
        "all prerequisites are in place" if d["ok"] else f"{len(failed)} of {len(d['checks'])} checks failed"
    )
    return "\n".join(lines)
