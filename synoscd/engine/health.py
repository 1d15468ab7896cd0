"""Health of live apps and jobs, from what the list already says; a revision is read only when the
list entry suggests trouble (platform facts: Succeeded can hide a failed newest revision)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HEALTHY, PROGRESSING, DEGRADED, MISSING = "Healthy", "Progressing", "Degraded", "Missing"
SETTLING = frozenset({"InProgress", "Deleting"})
FAILED = frozenset({"Failed", "Canceled"})


@dataclass(frozen=True)
class Health:
    status: str
    message: str = ""

    @property
    def healthy(self) -> bool:
        return self.status == HEALTHY


def _props(body: Mapping[str, Any]) -> Mapping[str, Any]:
    return body.get("properties") or {}


def provisioning(body: Mapping[str, Any]) -> str:
    return str(_props(body).get("provisioningState") or "")


def in_progress(body: Mapping[str, Any]) -> bool:
    return provisioning(body) in SETTLING


def needs_revision(body: Mapping[str, Any]) -> bool:
    """True when the list entry alone cannot say the app is healthy."""
    p = _props(body)
    if provisioning(body) != "Succeeded":
        return False  # provisioning says enough
    latest, ready = p.get("latestRevisionName"), p.get("latestReadyRevisionName")
    return bool(latest) and latest != ready


def app_health(body: Mapping[str, Any], revision: Mapping[str, Any] | None = None) -> Health:
    p = _props(body)
    state = provisioning(body)
    if state in SETTLING:
        return Health(PROGRESSING, f"provisioning {state}")
    if state in FAILED:
        return Health(DEGRADED, f"provisioning {state}")
    running = str(p.get("runningStatus") or "")
    if running in ("Stopped", "Suspended"):
        return Health(DEGRADED, f"running status {running}")
    latest, ready = p.get("latestRevisionName"), p.get("latestReadyRevisionName")
    if not latest or latest == ready:
        return Health(HEALTHY)
    if revision is None:
        return Health(PROGRESSING, f"revision {latest} is not ready yet")
    rp = _props(revision)
    rev_state = str(rp.get("provisioningState") or "")
    running_state = str(rp.get("runningState") or "")
    health_state = str(rp.get("healthState") or "")
    if rev_state == "Failed" or running_state in ("Failed", "Degraded") or health_state == "Unhealthy":
        detail = ", ".join(
            x
            for x in (
                f"runningState {running_state}" if running_state else "",
                f"healthState {health_state}" if health_state else "",
            )
            if x
        )
        return Health(DEGRADED, f"revision {latest} is failing ({detail}); {ready or 'no revision'} serves")
    return Health(PROGRESSING, f"revision {latest} is {rev_state or running_state or 'starting'}")


def job_health(body: Mapping[str, Any]) -> Health:
    state = provisioning(body)
    if state in SETTLING:
        return Health(PROGRESSING, f"provisioning {state}")
    if state in FAILED:
        return Health(DEGRADED, f"provisioning {state}")
    return Health(HEALTHY)
