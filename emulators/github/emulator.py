"""The GitHub stand-in: the HTTP base plus one mixin per resource family. To add a family (pull
requests, the Checks API, ...): a module with a mixin that has `<family>_routes()` (and, for state,
an `_init_state` that calls super), added to the bases and to `_families` below."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulators.github.admin import RepoAdmin
from emulators.github.auth import AppAuth, load_public_key
from emulators.github.base import GitHubBase
from emulators.github.blobs import Blobs
from emulators.github.checks import Checks
from emulators.github.common import Route
from emulators.github.contents import Contents
from emulators.github.pulls import Pulls
from emulators.github.ratelimit import RateLimits
from emulators.github.refs import Refs
from emulators.github.repos import Repos
from emulators.github.statuses import Statuses
from emulators.github.trees import Trees
from emulators.github.webhooks import Webhooks


class GitHubEmulator(
    AppAuth,
    RateLimits,
    Statuses,
    Checks,
    Pulls,
    Repos,
    Refs,
    Trees,
    Blobs,
    Contents,
    Webhooks,
    RepoAdmin,
    GitHubBase,
):
    def __init__(
        self,
        repos_root: Path,
        app_id: int,
        app_public_key_pem: bytes,
        installation_id: int,
        *,
        account_login: str = "synos-test",
        app_slug: str = "synoscd",
        token_lifetime: int = 3600,
        rate_limit: int = 5000,
    ) -> None:
        super().__init__()
        self.repos_root = Path(repos_root)
        self.repos_root.mkdir(parents=True, exist_ok=True)
        self.app_id = int(app_id)
        self.installation_id = int(installation_id)
        self.account_login = account_login
        self.app_slug = app_slug
        self.token_lifetime = token_lifetime
        self.rate_limit = rate_limit
        self._public_key = load_public_key(app_public_key_pem)
        self._started = time.time()
        self._init_state()
        for family in self._families():
            for method, pattern, handler, auth, counted in family():
                self._api(method, pattern, handler, auth=auth, counted=counted)
        for pattern, handler in self.download_routes():
            self._download(pattern, handler)
        for admin in self._admin_families():
            for method, pattern, handler in admin():
                self.add_admin_route(method, pattern, handler)

    def _families(self) -> list[Callable[[], list[Route]]]:
        """In matching order: the first route whose pattern matches answers."""
        return [
            self.auth_routes,
            self.ratelimit_routes,
            self.status_routes,  # before the commits routes: /commits/{ref}/status(es)
            self.check_routes,  # before the commits routes: /commits/{ref}/check-runs, check-suites
            self.pull_routes,  # before the commits routes: /commits/{sha}/pulls
            self.repo_routes,
            self.ref_routes,
            self.tree_routes,
            self.blob_routes,
            self.contents_routes,
        ]

    def _admin_families(self) -> list[Callable[[], list[tuple[str, str, Any]]]]:
        return [
            self.repo_admin_routes,
            self.auth_admin_routes,
            self.tree_admin_routes,
            self.ratelimit_admin_routes,
            self.webhook_admin_routes,
            self.pull_admin_routes,
            self.check_admin_routes,
        ]
