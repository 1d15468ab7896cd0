"""The one place that reads the environment. Everything else receives a typed `Settings`.

Names keep the seed SynosCD's variables (SYNOSCD_GITHUB_APP_ID, ...) and add the ones the
architecture page lists. Runtime settings that operators change with `synos set` (interval, prune,
protected apps, max concurrent, retries) take their defaults from here; the state table overrides them
(the operator guardrails --allowed-registries, --max-cpu and --max-memory live only in the table).
Each field's description is the note in local.settings.sample.json and the operations guide.
"""

from __future__ import annotations

import os
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "SYNOSCD_"


def _f(default: Any, note: str, **kw: Any) -> Any:
    return Field(default, description=note, **kw)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    # -- desired state: GitHub App source (or a local folder / git repository) --------------------
    github_app_id: int | None = _f(None, "GitHub App id (or Key Vault secret github-app-id)")
    github_app_private_key: SecretStr | None = _f(
        None, "GitHub App private key, PEM (or Key Vault secret github-app-private-key)"
    )
    github_app_installation_id: int | None = _f(
        None,
        "installation id of the App on the ops repository (or Key Vault secret github-app-installation-id)",
    )
    github_repo_owner: str | None = _f(None, "owner of the ops repository")
    github_repo_name: str | None = _f(None, "name of the ops repository")
    github_branch: str = _f("main", "branch SynosCD follows")
    github_config_path: str = _f("apps", "folder of the manifests in the ops repository")
    github_api_url: str = _f(
        "https://api.github.com", "GitHub API base URL (GitHub Enterprise Server: https://HOST/api/v3)"
    )
    github_webhook_secret: SecretStr | None = _f(
        None,
        "webhook secret; in Azure a Key Vault reference app setting "
        "(else Key Vault secret github-webhook-secret)",
    )
    source_path: str | None = _f(
        None,
        "a local folder or git repository to use instead of GitHub; manifests are read from its "
        "SYNOSCD_GITHUB_CONFIG_PATH folder (. for the folder itself)",
    )

    # -- Azure ------------------------------------------------------------------------------------
    azure_subscription_id: str | None = _f(None, "subscription of the target resource group")
    azure_resource_group: str | None = _f(None, "resource group of the Container Apps and Jobs")
    azure_container_app_environment: str | None = _f(
        None, "name of the Container Apps environment (in that group)"
    )
    azure_managed_identity_client_id: str | None = _f(
        None, "client id of the user-assigned managed identity; unset: DefaultAzureCredential (az login)"
    )
    arm_endpoint: str = _f("https://management.azure.com", "ARM endpoint (sovereign clouds, local stand-in)")
    keyvault_url: str | None = _f(
        None, "Key Vault with the GitHub App secrets, e.g. https://NAME.vault.azure.net"
    )
    keyvault_allowed_hosts: str = _f(
        "",
        "other Key Vault hosts manifests' secret URLs may name, comma-separated ('*' globs, e.g. "
        "*.vault.azure.net); the vault of SYNOSCD_KEYVAULT_URL is always allowed",
    )
    state_store: SecretStr | None = _f(
        None,
        "state store: a table endpoint https://ACCOUNT.table.core.windows.net (managed identity) "
        "or a storage connection string",
    )
    state_table: str = _f(
        "synoscd", "table name; one per environment", pattern=r"^[A-Za-z][A-Za-z0-9]{2,62}$"
    )
    queue_name: str = _f(
        "synoscd-passes",
        "Storage Queue (in the state store's account) the webhook puts accepted pushes on; the "
        "queue-triggered function reads it (its poison queue: NAME-poison)",
        # Storage queue names: 3-63 lowercase letters, digits and single hyphens, no hyphen at either end.
        pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$",
        min_length=3,
        max_length=63,
    )

    # -- a fleet: several targets (environments) served by one SynosCD (docs/fleet.md) ------------
    target: str | None = _f(
        None, "the target a command works on (synos --target NAME); unset: the default target"
    )
    targets: str = _f(
        "",
        "targets declared in the app settings: a JSON array of {name, subscriptionId, resourceGroup, "
        "environment, path, overrides}; the ops repository's targets path declares more",
    )
    targets_path: str = _f("targets", "folder of the Target manifests in the ops repository")
    arm_write_rate: float = _f(
        8.0,
        "ARM writes per second per subscription, shared by every instance and target (ARM refills "
        "10 per second per subscription and principal)",
        gt=0,
    )
    arm_write_burst: int = _f(
        150, "ARM writes a subscription's budget may spend at once (ARM's bucket holds 200)", ge=1
    )

    # -- runtime defaults (the state table overrides them; `synos set`) ---------------------------
    reconcile_interval_seconds: int = _f(300, "seconds between timer passes (synos set --interval)", ge=10)
    prune_enabled: bool = _f(False, "delete managed apps that left Git (synos set --prune)")
    protected_apps_csv: str = _f(
        "synoscd-operator", "apps never written or deleted (synos set --protected-apps)"
    )
    max_concurrent: int = _f(8, "concurrent ARM writes per pass (synos set --max-concurrent)", ge=1, le=64)
    prune_max_fraction: float = _f(0.5, "largest share of managed resources one pass may prune", gt=0, le=1)
    prune_last: bool = _f(False, "prune in one extra wave after everything else (sync-wide PruneLast)")
    retry_limit: int = _f(5, "retries of a failed sync (synos set --retry-limit)", ge=0, le=100)
    retry_duration_seconds: float = _f(
        60.0,
        "first wait before a retry, and before re-applying a failed app (synos set --retry-duration)",
        gt=0,
    )
    retry_factor: float = _f(
        2.0, "each further wait is this many times longer (synos set --retry-factor)", ge=1
    )
    retry_max_duration_seconds: float = _f(
        3600.0, "longest wait between retries (synos set --retry-max-duration)", gt=0
    )
    applied_history: int = _f(
        10, "applied bodies kept per app and job for rollback (synos set --applied-history)", ge=1, le=100
    )

    # -- synthesizers (Compositions) -------------------------------------------------------------
    allow_exec_synthesizers: bool = _f(
        False,
        "run synthesizers with executor exec as local processes (synos set --allow-exec-synthesizers)",
    )
    rollout_cooldown_seconds: float = _f(
        60.0, "seconds between the steps of a deferred rollout (synos set --rollout-cooldown)", ge=0
    )
    synth_blob_store: SecretStr | None = _f(
        None,
        "where synthesizer jobs exchange their ResourceList: a blob endpoint "
        "https://ACCOUNT.blob.core.windows.net (managed identity, user-delegation SAS) or a storage "
        "connection string",
    )
    synth_blob_container: str = _f("synoscd-synth", "blob container for synthesizer inputs and outputs")
    synth_max_output_bytes: int = _f(
        1_048_576, "largest output a synthesizer may write", ge=1024, le=4 * 1_048_576
    )

    # -- Functions ----------------------------------------------------------------------------------
    timer_schedule: str = _f(
        "0 */1 * * * *",
        "NCRONTAB schedule of the timer function (it runs a pass only "
        "when the interval has passed or a pass was requested)",
    )
    pass_wait_seconds: float = _f(120.0, "seconds a timer or CLI pass waits for ARM operations", ge=0)
    lease_seconds: float = _f(
        30.0,
        "lifetime of the pass lease; the holder renews it every half of it, so a pass that dies "
        "blocks the next at most this long",
        ge=1,
    )
    webhook_max_body_bytes: int = _f(5 * 1024 * 1024, "largest webhook body accepted", ge=1024)

    # -- dashboard ----------------------------------------------------------------------------------
    ui_auth: Literal["off", "easyauth", "loopback"] = _f(
        "off",
        "who may read the dashboard (/api/ui, /api/v1): off (not served), easyauth (App Service "
        "Authentication signed the user in; infra/modules/auth.bicep sets it) or loopback (the local host)",
    )

    @field_validator("github_api_url", "arm_endpoint", "keyvault_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def keyvault_hosts(self) -> tuple[str, ...]:
        """Key Vault hosts a manifest's secret URL may name: the configured vault's and the allow-list."""
        hosts = [urlsplit(self.keyvault_url).netloc] if self.keyvault_url else []
        hosts += [h.strip() for h in self.keyvault_allowed_hosts.split(",") if h.strip()]
        return tuple(dict.fromkeys(h.lower() for h in hosts))

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
            raise MissingSetting([env_name(n) for n in missing])

    def origins(self) -> dict[str, str]:
        """Where each value came from: 'env' (a SYNOSCD_* variable) or 'default'."""
        return {
            name: "env" if env_name(name) in os.environ else "default" for name in type(self).model_fields
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


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


class MissingSetting(Exception):
    def __init__(self, variables: list[str]) -> None:
        self.variables = variables
        super().__init__(
            f"missing setting{'s' if len(variables) > 1 else ''}: {', '.join(variables)}; "
            "set the environment variable (or the Function App setting)"
        )


def load_settings(**overrides: Any) -> Settings:
    return Settings(**overrides)


class TelemetrySettings(BaseSettings):
    """Where telemetry goes, from the variables the platform and OpenTelemetry define (no SYNOSCD_
    prefix): Azure sets APPLICATIONINSIGHTS_CONNECTION_STRING from the Bicep-created Application
    Insights; a local collector is OTEL_EXPORTER_OTLP_ENDPOINT. Neither set: telemetry is off and no
    OpenTelemetry module is imported. See docs/telemetry.md."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    applicationinsights_connection_string: SecretStr | None = _f(
        None, "Application Insights connection string (Azure: set by the deployment)"
    )
    otel_exporter_otlp_endpoint: str | None = _f(
        None, "OTLP/HTTP collector base URL, e.g. http://127.0.0.1:4318 (local runs and the CLI)"
    )
    otel_sdk_disabled: bool = _f(False, "OpenTelemetry's switch: true turns telemetry off whatever is set")
    otel_service_name: str = _f("synoscd", "service.name of every span, metric and log record")

    @property
    def mode(self) -> str:
        """azure-monitor, otlp or off."""
        if self.otel_sdk_disabled:
            return "off"
        if self.applicationinsights_connection_string and (
            self.applicationinsights_connection_string.get_secret_value().strip()
        ):
            return "azure-monitor"
        return "otlp" if self.otel_exporter_otlp_endpoint else "off"


def load_telemetry_settings(**overrides: Any) -> TelemetrySettings:
    return TelemetrySettings(**overrides)
