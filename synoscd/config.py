"""The one place that reads the environment. Everything else receives a typed `Settings`.

Names keep the seed SynosCD's variables (SYNOSCD_GITHUB_APP_ID, ...) and add the ones the
architecture page lists. Runtime settings that operators change with `synos set` (interval, prune,
protected apps, max concurrent) take their defaults from here; the state table overrides them.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "SYNOSCD_"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # -- desired state: GitHub App source (or a local folder / git repository) --------------------
    github_app_id: int | None = None
    github_app_private_key: SecretStr | None = None
    github_app_installation_id: int | None = None
    github_repo_owner: str | None = None
    github_repo_name: str | None = None
    github_branch: str = "main"
    github_config_path: str = "apps"
    github_api_url: str = "https://api.github.com"
    github_webhook_secret: SecretStr | None = None
    source_path: str | None = None

    # -- Azure ------------------------------------------------------------------------------------
    azure_subscription_id: str | None = None
    azure_resource_group: str | None = None
    azure_container_app_environment: str | None = None
    azure_managed_identity_client_id: str | None = None
    arm_endpoint: str = "https://management.azure.com"
    keyvault_url: str | None = None
    # The state store: an Azure Storage connection string (Azurite, or keys) or a table endpoint
    # URL such as https://<account>.table.core.windows.net, reached with the managed identity.
    state_store: SecretStr | None = None
    # One table per environment; several SynosCD installations may share a storage account.
    state_table: str = Field("synoscd", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$")

    # -- runtime defaults (the state table overrides them; `synos set`) ---------------------------
    reconcile_interval_seconds: int = Field(300, ge=10)
    prune_enabled: bool = False
    protected_apps_csv: str = "synoscd-operator"
    max_concurrent: int = Field(8, ge=1, le=64)
    prune_max_fraction: float = Field(0.5, gt=0, le=1)

    # -- Functions ----------------------------------------------------------------------------------
    timer_schedule: str = "0 */1 * * * *"
    webhook_wait_seconds: float = Field(5.0, ge=0, le=8)
    pass_wait_seconds: float = Field(120.0, ge=0)
    webhook_max_body_bytes: int = Field(5 * 1024 * 1024, ge=1024)

    @field_validator("github_api_url", "arm_endpoint", "keyvault_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def protected_apps(self) -> frozenset[str]:
        return frozenset(a.strip() for a in self.protected_apps_csv.split(",") if a.strip())

    @property
    def repo_full_name(self) -> str | None:
        if self.github_repo_owner and self.github_repo_name:
            return f"{self.github_repo_owner}/{self.github_repo_name}"
        return None

    @property
    def source_label(self) -> str:
        """`owner/repo:path` for the synoscd-source tag (or the local path)."""
        if self.source_path:
            return f"local:{self.source_path}"
        return f"{self.repo_full_name}:{self.github_config_path}"

    def require(self, *names: str) -> None:
        """Raise a MissingSetting naming every variable that is needed here and unset."""
        missing = [n for n in names if getattr(self, n) in (None, "")]
        if missing:
            raise MissingSetting([ENV_PREFIX + n.upper() for n in missing])

    def origins(self) -> dict[str, str]:
        """Where each value came from: 'env' (a SYNOSCD_* variable) or 'default'."""
        return {
            name: "env" if (ENV_PREFIX + name.upper()) in os.environ else "default"
            for name in type(self).model_fields
        }

    def masked(self) -> dict[str, Any]:
        """Every setting with secrets masked, for `synos config` and logs."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            out[name] = value
        return out


class MissingSetting(Exception):
    def __init__(self, variables: list[str]) -> None:
        self.variables = variables
        super().__init__(
            f"missing setting{'s' if len(variables) > 1 else ''}: {', '.join(variables)}; "
            "set the environment variable (or the Function App setting)"
        )


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)
