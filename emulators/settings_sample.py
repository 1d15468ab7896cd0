"""Writes local.settings.sample.json from synoscd/config.py, so the sample lists every setting the app
reads with its note; a test checks the committed file is up to date.
Regenerate with `python -m emulators.settings_sample`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from synoscd.config import Settings, env_name

ROOT = Path(__file__).resolve().parent.parent
PLATFORM = {
    "AzureWebJobsStorage": (
        "UseDevelopmentStorage=true",
        "Functions runtime storage (in Azure: identity-based, AzureWebJobsStorage__accountName)",
    ),
    "FUNCTIONS_WORKER_RUNTIME": ("python", "the Functions language worker"),
}
PLACEHOLDERS = {
    "github_app_private_key": "-----BEGIN RSA PRIVATE KEY-----\\n...\\n-----END RSA PRIVATE KEY-----",
    "github_app_id": "123456",
    "github_app_installation_id": "12345678",
    "github_repo_owner": "contoso",
    "github_repo_name": "ops",
    "github_webhook_secret": "<a long random string; the same in the GitHub App's webhook settings>",
    "azure_subscription_id": "00000000-0000-0000-0000-000000000000",
    "azure_resource_group": "apps-rg",
    "azure_container_app_environment": "apps-env",
    "azure_managed_identity_client_id": "00000000-0000-0000-0000-000000000000",
    "keyvault_url": "https://synoscd-kv.vault.azure.net",
    "state_store": "https://synoscdstate.table.core.windows.net",
    "source_path": "",
}


def sample() -> dict[str, Any]:
    values: dict[str, str] = {}
    notes: dict[str, str] = {}
    for name, (value, note) in PLATFORM.items():
        values[name], notes[name] = value, note
    for name, field in Settings.model_fields.items():
        default = field.default
        placeholder = PLACEHOLDERS.get(
            name,
            "" if default is None else str(default).lower() if isinstance(default, bool) else str(default),
        )
        values[env_name(name)] = placeholder
        notes[env_name(name)] = field.description or ""
    return {"IsEncrypted": False, "Values": values, "Notes": notes}


def render() -> str:
    return json.dumps(sample(), indent=2) + "\n"


if __name__ == "__main__":
    (ROOT / "local.settings.sample.json").write_text(render())
