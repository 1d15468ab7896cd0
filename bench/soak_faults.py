"""The fault soak's fault injector: one random fault at a time through the stand-ins' admin APIs (and
the storage proxies'), each of a kind from a weighted list spread over ARM, GitHub, Table Storage,
the queue and Key Vault. Windows (a storage outage, Key Vault down) end by themselves."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from emulators.launcher import GITHUB_OWNER, GITHUB_REPO

Admin = Callable[..., Any]  # admin(service, method, path, body=None)

OUR_APP = r"/containerApps/app-\d+$"
ENTITY = r"\(PartitionKey="


class Injector:
    def __init__(self, rng: random.Random, admin: Admin, managed_apps: Callable[[], list[str]]) -> None:
        self.rng = rng
        self.admin = admin
        self.managed_apps = managed_apps
        self.injected: Counter[str] = Counter()
        self.log: list[dict[str, Any]] = []
        self._windows: list[threading.Timer] = []
        self._outage_until = 0.0
        self._kv_until = 0.0
        self.kinds: list[tuple[str, float, Callable[[], dict[str, Any] | None]]] = [
            # ARM
            ("arm 429 + Retry-After", 10, self.arm_throttle),
            ("arm 5xx", 8, self.arm_5xx),
            ("arm dropped connection", 6, self.arm_drop),
            ("arm answer lost after a write", 3, self.arm_lost_answer),
            ("arm LRO Failed", 7, self.arm_lro_failed),
            # GitHub
            ("github 5xx", 8, self.github_5xx),
            ("github secondary rate limit", 6, self.github_secondary),
            ("github primary rate limit", 3, self.github_primary),
            # Table Storage and the queue
            ("table 503", 10, self.table_503),
            ("table 412", 8, self.table_412),
            ("table dropped connection", 5, self.table_drop),
            ("table answer lost after a write", 3, self.table_lost_answer),
            ("storage outage", 2, self.storage_outage),
            ("queue 503", 3, self.queue_503),
            # Key Vault
            ("key vault down", 2, self.keyvault_down),
        ]

    def inject(self) -> str | None:
        names, weights = zip(*[(n, w) for n, w, _ in self.kinds], strict=True)
        name = self.rng.choices(names, weights)[0]
        fn = next(f for n, _, f in self.kinds if n == name)
        spec = fn()
        if spec is None:
            return None
        self.injected[name] += 1
        self.log.append({"time": time.time(), "kind": name, **spec})
        return name

    # -- ARM -----------------------------------------------------------------------------------------
    def _arm_target(self) -> tuple[str, str]:
        return self.rng.choice(
            [
                ("GET", r"/containerApps$"),  # the pass's listing
                ("PUT", OUR_APP),
                ("PATCH", OUR_APP),
                ("GET", r"/operationStatuses/"),  # LRO polls
                ("*", OUR_APP),
            ]
        )

    def _arm_fault(self, **fault: Any) -> dict[str, Any]:
        method, path = self._arm_target()
        spec = {"method": method, "path": path, "count": self.rng.randint(1, 3), **fault}
        self.admin("arm", "POST", "faults", spec)
        return spec

    def arm_throttle(self) -> dict[str, Any]:
        return self._arm_fault(status=429, retryAfter=self.rng.choice([1, 1, 2, 3, 30]))

    def arm_5xx(self) -> dict[str, Any]:
        return self._arm_fault(status=self.rng.choice([500, 502, 503]))

    def arm_drop(self) -> dict[str, Any]:
        return self._arm_fault(drop=True)

    def arm_lost_answer(self) -> dict[str, Any]:
        spec = {"method": self.rng.choice(["PUT", "PATCH"]), "path": OUR_APP, "count": 1, "dropAfter": True}
        self.admin("arm", "POST", "faults", spec)
        return spec

    def arm_lro_failed(self) -> dict[str, Any] | None:
        apps = self.managed_apps()
        if not apps:
            return None
        name = self.rng.choice(apps)
        spec = {"method": "*", "path": f"/containerApps/{name}$", "count": 1}
        self.admin("arm", "POST", "lro-failures", spec)
        return spec

    # -- GitHub --------------------------------------------------------------------------------------
    def github_5xx(self) -> dict[str, Any]:
        spec = {
            "method": "*",
            "path": self.rng.choice([r"^/repos/", r"/git/", r"/access_tokens$", r"."]),
            "count": self.rng.randint(1, 3),
            "status": self.rng.choice([500, 502, 503]),
        }
        self.admin("github", "POST", "faults", spec)
        return spec

    def github_secondary(self) -> dict[str, Any]:
        spec = {
            "secondary": True,
            "secondary_count": self.rng.randint(1, 3),
            "secondary_status": self.rng.choice([403, 429]),
            "retry_after": self.rng.choice([1, 2, 60, None]),
        }
        self.admin("github", "PUT", "ratelimit", spec)
        return spec

    def github_primary(self) -> dict[str, Any]:
        spec = {"remaining": 0, "reset_in": self.rng.choice([2, 4, 90])}
        self.admin("github", "PUT", "ratelimit", spec)
        if spec["reset_in"] > 10:  # an hour-long window in GitHub: here it ends after a few seconds
            self._later(
                self.rng.uniform(5, 12), lambda: self.admin("github", "PUT", "ratelimit", {"reset_in": 0})
            )
        return spec

    # -- storage -------------------------------------------------------------------------------------
    def _table_fault(self, **fault: Any) -> dict[str, Any]:
        spec = {"method": "*", "path": ".", "count": self.rng.randint(1, 3), **fault}
        self.admin("table", "POST", "faults", spec)
        return spec

    def table_503(self) -> dict[str, Any]:
        return self._table_fault(status=503)

    def table_412(self) -> dict[str, Any]:
        spec = {
            "method": "PUT",  # a conditional replace (If-Match) that lost the race
            "path": ENTITY,
            "count": self.rng.randint(1, 2),
            "status": 412,
            "body": {
                "odata.error": {"code": "UpdateConditionNotSatisfied", "message": {"value": "injected"}}
            },
        }
        self.admin("table", "POST", "faults", spec)
        return spec

    def table_drop(self) -> dict[str, Any]:
        return self._table_fault(drop=True)

    def table_lost_answer(self) -> dict[str, Any]:
        spec = {"method": self.rng.choice(["PUT", "POST"]), "path": ".", "count": 1, "dropAfter": True}
        self.admin("table", "POST", "faults", spec)
        return spec

    def queue_503(self) -> dict[str, Any]:
        spec = {"method": "*", "path": "/messages", "count": self.rng.randint(1, 2), "status": 503}
        self.admin("queue", "POST", "faults", spec)
        return spec

    def storage_outage(self) -> dict[str, Any] | None:
        if time.time() < self._outage_until:
            return None
        seconds = round(self.rng.uniform(2, 10), 1)
        self._outage_until = time.time() + seconds
        for proxy in ("table", "queue"):
            self.admin(proxy, "PUT", "outage", {"down": True})
        self._later(seconds, self.storage_back)
        return {"seconds": seconds}

    def storage_back(self) -> None:
        for proxy in ("table", "queue"):
            self.admin(proxy, "PUT", "outage", {"down": False})

    # -- Key Vault -----------------------------------------------------------------------------------
    def keyvault_down(self) -> dict[str, Any] | None:
        if time.time() < self._kv_until:
            return None
        seconds = round(self.rng.uniform(5, 20), 1)
        self._kv_until = time.time() + seconds
        how = self.rng.choice([{"drop": True}, {"status": 503}])
        self.admin("keyvault", "POST", "faults", {"method": "*", "path": ".", "count": 10**6, **how})
        self._later(seconds, lambda: self.admin("keyvault", "DELETE", "faults"))
        return {"seconds": seconds, **how}

    # -- windows -------------------------------------------------------------------------------------
    def _later(self, seconds: float, fn: Callable[[], Any]) -> None:
        timer = threading.Timer(seconds, fn)
        timer.daemon = True
        timer.start()
        self._windows.append(timer)

    def stop(self) -> None:
        """End every fault: windows closed now, pending faults cleared, rate limits restored."""
        for timer in self._windows:
            timer.cancel()
        self.storage_back()
        for service in ("arm", "github", "keyvault", "table", "queue"):
            self.admin(service, "DELETE", "faults")
        self.admin("github", "PUT", "ratelimit", {"secondary": False, "reset_in": 0})


__all__ = ["GITHUB_OWNER", "GITHUB_REPO", "Injector"]
