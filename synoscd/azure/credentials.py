"""One credential for ARM, Key Vault and storage. With a managed-identity client id configured
(in Azure: the user-assigned identity; locally: the stand-in's token endpoint) the production path
`ManagedIdentityCredential` runs; otherwise `DefaultAzureCredential` (az login, environment, ...)."""

from __future__ import annotations

from typing import Any

from synoscd.config import Settings


def make_credential(settings: Settings) -> Any:
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if settings.azure_managed_identity_client_id:
        return ManagedIdentityCredential(client_id=settings.azure_managed_identity_client_id)
    return DefaultAzureCredential()


def is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")
