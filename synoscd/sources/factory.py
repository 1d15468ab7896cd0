"""Build the configured source. GitHub sources are kept per process, so a warm Function instance
reuses its installation token, ref ETag and blob cache from one pass to the next."""

from __future__ import annotations

import threading
from typing import Any

from synoscd.config import MissingSetting, Settings
from synoscd.sources.github import (
    BlobCache,
    BlobStore,
    GitHubAppCredentials,
    GitHubSource,
    SharedListings,
    make_github,
)
from synoscd.sources.local import LocalSource
from synoscd.sources.snapshot import Source, SourceError

_lock = threading.Lock()
_warm: dict[tuple[Any, ...], GitHubSource] = {}
# Per repository: the blob cache (content-addressed) and commit listings, shared by the sources of
# every folder of it (a fleet's targets and the targets path), and one client (token, connections).
_shared: dict[tuple[Any, ...], tuple[Any, BlobCache, SharedListings]] = {}


def github_credentials(settings: Settings, secrets: Any | None) -> GitHubAppCredentials:
    """From Key Vault secrets github-app-id, github-app-installation-id and github-app-private-key when
    SYNOSCD_KEYVAULT_URL is set; otherwise from the SYNOSCD_GITHUB_APP_* variables."""
    if secrets is not None:
        try:
            return GitHubAppCredentials(
                int(secrets.get("github-app-id")),
                int(secrets.get("github-app-installation-id")),
                secrets.get("github-app-private-key"),
            )
        except ValueError as exc:
            raise SourceError(
                f"Key Vault secrets github-app-id / github-app-installation-id must be numbers: {exc}"
            ) from exc
    settings.require("github_app_id", "github_app_installation_id", "github_app_private_key")
    assert settings.github_app_private_key is not None
    return GitHubAppCredentials(
        settings.github_app_id or 0,
        settings.github_app_installation_id or 0,
        settings.github_app_private_key.get_secret_value(),
    )


def build_source(settings: Settings, secrets: Any | None = None, store: BlobStore | None = None) -> Source:
    if settings.source_path:
        return LocalSource(settings.source_path, settings.github_config_path)
    if not settings.repo_full_name:
        raise MissingSetting(["SYNOSCD_GITHUB_REPO_OWNER", "SYNOSCD_GITHUB_REPO_NAME"])
    creds = github_credentials(settings, secrets)
    key = (
        settings.github_api_url,
        settings.repo_full_name,
        settings.github_branch,
        settings.github_config_path,
        creds.app_id,
        creds.installation_id,
        hash(creds.private_key),
    )
    with _lock:
        source = _warm.get(key)
        if source is None:
            repo_key = (*key[:3], *key[4:])
            if repo_key not in _shared:
                _shared[repo_key] = (
                    make_github(settings.github_api_url, creds),
                    BlobCache(),
                    SharedListings(),
                )
            github, cache, listings = _shared[repo_key]
            source = GitHubSource(
                github,
                settings.repo_full_name,
                settings.github_branch,
                settings.github_config_path,
                settings.github_api_url,
                cache=cache,
                store=store,
                listings=listings,
            )
            _warm[key] = source
        return source


def flush_warm_sources() -> None:
    """Finish saving the sources' caches now (a short-lived process calls this before it exits:
    a background save would otherwise die with the interpreter)."""
    with _lock:
        sources = list(_warm.values())
    for source in sources:
        source.persist()


def forget_warm_sources() -> None:
    """Drop per-process state (tests use this to simulate a cold instance)."""
    with _lock:
        for source in _warm.values():
            source.persist()
        _warm.clear()
        _shared.clear()
