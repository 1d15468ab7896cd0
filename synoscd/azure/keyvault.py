"""Key Vault secrets: values cached on a warm instance for a TTL; a missing secret is an error that
names the vault and the secret."""

from __future__ import annotations

import threading
import time
from typing import Any

from synoscd.azure.credentials import is_loopback


class SecretUnavailable(Exception):
    pass


class KeyVaultSecrets:
    def __init__(self, vault_url: str, credential: Any, ttl: float = 300.0) -> None:
        from azure.keyvault.secrets import SecretClient

        self.vault_url = vault_url.rstrip("/")
        self.ttl = ttl
        # The SDK checks that the challenge's resource domain is a suffix of the vault host; a
        # loopback vault (the local stand-in) cannot pass that check.
        self.client = SecretClient(
            self.vault_url,
            credential,
            verify_challenge_resource=not is_loopback(vault_url),
            retry_total=2,
            retry_backoff_factor=0.2,
        )
        self._cache: dict[str, tuple[float, str, str | None]] = {}
        self._lock = threading.Lock()

    def _fetch(self, name: str) -> tuple[str, str | None]:
        try:
            secret = self.client.get_secret(name)
        except Exception as exc:
            raise self._explain(exc, name) from exc
        return secret.value or "", secret.properties.version

    def _explain(self, exc: Exception, name: str) -> SecretUnavailable:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

        from synoscd.errors import first_line, local_hint, unreachable

        reason = unreachable(exc)
        if reason:  # first: a token endpoint that cannot be reached is not a refusal
            return SecretUnavailable(
                f"cannot reach Key Vault {self.vault_url} or its token endpoint for secret {name!r} "
                f"({reason}); check SYNOSCD_KEYVAULT_URL and the network{local_hint(self.vault_url)}"
            )
        if isinstance(exc, ResourceNotFoundError):
            return SecretUnavailable(
                f"secret {name!r} not found in Key Vault {self.vault_url}; "
                f"create it (synos bootstrap --store-secrets) or check SYNOSCD_KEYVAULT_URL"
            )
        if isinstance(exc, ClientAuthenticationError) or getattr(exc, "status_code", None) == 403:
            return SecretUnavailable(
                f"Key Vault {self.vault_url} refused the credential for secret {name!r}: "
                f"{first_line(exc)}; grant the identity 'Key Vault Secrets User'"
            )
        if isinstance(exc, HttpResponseError):
            return SecretUnavailable(
                f"Key Vault {self.vault_url} answered {exc.status_code} for secret {name!r}: "
                f"{first_line(exc)}"
            )
        return SecretUnavailable(
            f"Key Vault {self.vault_url} failed for secret {name!r}: {type(exc).__name__}: "
            f"{first_line(exc)}; check SYNOSCD_KEYVAULT_URL and the network"
        )

    def _entry(self, name: str) -> tuple[str, str | None]:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(name)
            if cached and cached[0] > now:
                return cached[1], cached[2]
        value, version = self._fetch(name)
        with self._lock:
            self._cache[name] = (now + self.ttl, value, version)
        return value, version

    def get(self, name: str) -> str:
        return self._entry(name)[0]

    def version(self, name: str) -> str | None:
        return self._entry(name)[1]

    def set(self, name: str, value: str) -> str | None:
        secret = self.client.set_secret(name, value)
        with self._lock:
            self._cache.pop(name, None)
        return secret.properties.version
