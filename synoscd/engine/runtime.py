"""The imperative shell's dependencies for one process: settings, credential, the state table, ARM,
Key Vault and the source. Built lazily and kept for the life of a warm instance.

One `Runtime` serves one target of the fleet (synoscd/fleet/). The deployment's runtime, built from
the app settings, is the default target's and holds what the fleet shares (the credential, Key Vault
clients, the webhook's queue and the shared rows: deliveries, the target catalog, the ARM write
budget); `for_target(name)` gives another target's runtime — its own settings (environment, path,
table, overrides), budget, ARM client, source and caches — built once per process."""

from __future__ import annotations

import re
import threading
from functools import cached_property
from typing import Any

from synoscd.budget import Budget
from synoscd.config import Settings, load_settings
from synoscd.sources.snapshot import Source

_lock = threading.Lock()
_current: Runtime | None = None
_KV_URL = re.compile(r"(https://[^/]+)/secrets/([^/]+)(?:/([^/?]+))?")


class UnknownTarget(Exception):
    """A target name no declaration knows."""


class Runtime:
    def __init__(self, settings: Settings, *, deployment: Runtime | None = None, target: Any = None) -> None:
        self.settings = settings
        self.budget = Budget()  # the running pass's deadline and lease; bounds the adapters' waits
        self.deployment = deployment or self  # the runtime of the app settings (the default target)
        self.target = target  # its fleet.targets.TargetDef, when known
        self.passing = threading.Lock()  # held by the running pass: one at a time per target runtime
        self._vaults: dict[str, Any] = deployment._vaults if deployment else {}
        self._parsed: tuple[tuple[str, str], Any] | None = None
        self._targets: dict[str, Runtime] = {}
        self._write_budgets: dict[str, Any] = {}
        self._targets_lock = threading.Lock()
        self.requested_target: str | None = None  # SYNOSCD_TARGET, when the settings named one

    @property
    def target_name(self) -> str:
        from synoscd.fleet.targets import DEFAULT_TARGET

        return self.settings.target or DEFAULT_TARGET

    @property
    def shared_table(self) -> Any:
        """The deployment's state table: rows the whole fleet shares (deliveries, catalog, budget)."""
        return self.deployment.table

    def for_target(self, name: str | None, target: Any = None) -> Runtime:
        """The runtime of target `name` (None or default: the deployment's own). `target`, the
        definition a caller has just read (the timer, the fan-out), replaces an older one."""
        from synoscd.fleet import catalog
        from synoscd.fleet.targets import DEFAULT_TARGET, settings_for

        deployment = self.deployment
        if not name or name == DEFAULT_TARGET:
            return deployment
        with deployment._targets_lock:
            known = deployment._targets.get(name)
        if known is not None and (target is None or known.target == target):
            return known
        target = target or catalog.find(deployment, name)
        if target is None:
            names = ", ".join(t.name for t in catalog.targets(deployment)) or "none"
            raise UnknownTarget(f"target {name!r} is not declared (targets: {names}); see synos get targets")
        with deployment._targets_lock:
            known = deployment._targets.get(name)
            if known is None or known.target != target:
                known = Runtime(
                    settings_for(deployment.settings, target), deployment=deployment, target=target
                )
                deployment._targets[name] = known
            return known

    def parsed(self, snapshot: Any, load: Any) -> Any:
        """The desired set of a snapshot, parsed once per revision on a warm instance (parsing a
        thousand manifests is most of a no-change pass)."""
        key = (snapshot.source, snapshot.revision)
        if self._parsed is None or self._parsed[0] != key:
            self._parsed = (key, load(snapshot.files))
        return self._parsed[1]

    @cached_property
    def credential(self) -> Any:
        from synoscd.azure.credentials import make_credential

        if self.deployment is not self:
            return self.deployment.credential  # one identity (and token cache) for the fleet
        return make_credential(self.settings)

    def _store(self) -> str:
        """The storage connection string (or account URL), required by every table and queue."""
        self.settings.require("state_store")
        assert self.settings.state_store is not None
        return self.settings.state_store.get_secret_value()

    def _open_table(self, **options: Any) -> Any:
        from synoscd.state.table import open_table

        store = self._store()
        # A connection string carries its key: the identity (and importing azure-identity, a fifth of a
        # command's imports) waits for the first ARM or Key Vault call, off the lease's path.
        credential = self.credential if store.startswith(("http://", "https://")) else None
        return open_table(store, credential, self.settings.state_table, **options)

    @cached_property
    def table(self) -> Any:
        return self._open_table(budget=self.budget.remaining)

    @cached_property
    def request_table(self) -> Any:
        """The state table for request paths that must answer fast whatever storage does (the
        webhook's de-duplication): one retry, short timeouts, never the pass's budget."""
        return self._open_table(retries=1, timeouts=(2.0, 3.0))

    @cached_property
    def passes_queue(self) -> Any:
        """The Storage Queue of the fleet's passes: webhook deliveries and one message per target's
        pass (`state/queue.py`)."""
        if self.deployment is not self:
            return self.deployment.passes_queue
        from synoscd.state.queue import open_queue

        return open_queue(self._store(), self.credential, self.settings.queue_name)

    @cached_property
    def arm(self) -> Any:
        from synoscd.azure.arm import Arm

        writes = self.deployment.write_budget(self.settings.azure_subscription_id or "")
        return Arm(self.settings, self.credential, budget=self.budget, writes=writes)

    def write_budget(self, subscription: str) -> Any:
        """The ARM write budget of a subscription (fleet/writes.py): one per process and subscription,
        drawn from by every target there; its row lives in the deployment's table."""
        from synoscd.fleet.writes import WriteBudget

        with self._targets_lock:
            known = self._write_budgets.get(subscription.lower())
            if known is None:
                known = WriteBudget(
                    lambda: self.budget_table,
                    subscription,
                    self.settings.arm_write_rate,
                    self.settings.arm_write_burst,
                )
                self._write_budgets[subscription.lower()] = known
            return known

    @cached_property
    def budget_table(self) -> Any:
        """The deployment's table for the write budget: a row every write of the fleet may touch, so
        short timeouts and one retry (an unreadable budget lets the write go: ARM's limit holds)."""
        return self._open_table(retries=1, timeouts=(2.0, 5.0))

    @cached_property
    def secrets(self) -> Any:
        """The Key Vault holding SynosCD's own secrets (GitHub App, webhook), when configured."""
        return self.vault(self.settings.keyvault_url) if self.settings.keyvault_url else None

    def vault(self, url: str) -> Any:
        from synoscd.azure.keyvault import KeyVaultSecrets

        with _lock:
            if url not in self._vaults:
                self._vaults[url] = KeyVaultSecrets(url, self.credential)
            return self._vaults[url]

    @cached_property
    def synth_jobs(self) -> Any:
        """Runs `executor: job` synthesizers: ACA Job executions, the ResourceList through blobs."""
        from synoscd.synth.blobs import BlobExchange
        from synoscd.synth.executors import JobExecutor

        self.settings.require("synth_blob_store")
        assert self.settings.synth_blob_store is not None
        blobs = BlobExchange(
            self.settings.synth_blob_store.get_secret_value(),
            self.settings.synth_blob_container,
            self.credential,
        )
        return JobExecutor(self.arm, blobs)

    def source(self) -> Source:
        from synoscd.sources.factory import build_source
        from synoscd.state.blobcache import TableBlobStore

        return build_source(self.settings, self.secrets, TableBlobStore(self.table))

    def vault_allowed(self, url: str) -> bool:
        """Only the configured vault and the allow-list are ever called (a manifest names the URL)."""
        from synoscd.manifests.policy import host_allowed, vault_host

        host = vault_host(url)
        return host is not None and host_allowed(host, self.settings.keyvault_hosts)

    def secret_version(self, url: str) -> str | None:
        """The version of a Key Vault secret an app references, where it can be known (else None)."""
        m = _KV_URL.match(url)
        if not m or not self.vault_allowed(url):
            return None  # validation reports a vault that is not allowed; never call it
        if m.group(3):
            return m.group(3)
        try:
            return self.vault(m.group(1)).version(m.group(2))
        except Exception:  # the identity may not read other vaults: the hash then covers files only
            return None


_selected: str | None = None  # synos --target NAME


def use_target(name: str | None) -> None:
    """The target `get_runtime()` answers for in this process (the CLI's --target)."""
    global _selected
    _selected = name


def deployment_runtime(settings: Settings | None = None) -> Runtime:
    """The runtime of the app settings: the default target's, and the fleet's shared parts."""
    global _current
    with _lock:
        if settings is not None or _current is None:
            settings = settings or load_settings()
            # SYNOSCD_TARGET selects what a command works on; the deployment itself is the default.
            _current = Runtime(settings.model_copy(update={"target": None}) if settings.target else settings)
            _current.requested_target = settings.target
        return _current


def get_runtime(settings: Settings | None = None) -> Runtime:
    """The runtime of the selected target: --target, else SYNOSCD_TARGET, else the default one."""
    deployment = deployment_runtime(settings)
    return deployment.for_target(_selected or deployment.requested_target)


def reset_runtime() -> None:
    global _current, _selected
    with _lock:
        _current = None
        _selected = None
