"""What the ARM stand-in stores and the small helpers every part of it shares."""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from emulators.httpbase import HttpError, Response

API_VERSION = "2026-07-01"
PROVIDER = "providers/Microsoft.App"


class ArmError(HttpError):
    """An error answered in ARM's shape: {"error": {"code", "message", "details"}}."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(Response.json(status, {"error": {"code": code, "message": message, "details": []}}))
        self.code = code


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def suffix(n: int = 7) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge key by key, null removes, anything else replaces
    (lists included) — what ACA's PATCH does (test_containerapp_runtime_java_update,
    test_containerapp_ip_restrictions_deny, test_containerapp_cors_policy recordings)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


@dataclass
class Operation:
    """A long-running operation: its status URL answers InProgress until `due`, then the outcome."""

    id: str
    due: float
    failure: dict[str, Any] | None = None
    started: str = field(default_factory=now)
    ended: str | None = None

    def status(self, at: float) -> str:
        if at < self.due:
            return "InProgress"
        return "Failed" if self.failure else "Succeeded"


@dataclass
class Resource:
    """A container app or job. `body` is what GET answers at the newest api-version (status fields
    settled lazily, older api-versions see a projection of it); `secret_values` is what listSecrets
    answers and GET never shows."""

    kind: str  # "containerApps" | "jobs"
    rg: str
    name: str
    body: dict[str, Any]
    op: Operation | None = None
    op_kind: str | None = None  # create | update | delete
    revisions: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)
    secret_values: dict[str, str] = field(default_factory=dict)
    raw: bool = False  # seeded verbatim from a recorded GET body (/_admin/raw/...)
    sub: str = ""  # the subscription it lives in (the stand-in serves several)
