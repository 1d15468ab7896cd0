"""GitHub webhooks: signature check (constant time), event filter. Pure and cheap: a rejected
request never loads an Azure SDK or PyGithub."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256` over the raw body; compared in constant time."""
    if not header or not secret:
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.strip().encode())


@dataclass(frozen=True)
class Decision:
    """What to do with a verified delivery: run a pass, or answer without one."""

    status: int
    reason: str
    run: bool = False
    revision: str | None = None


def decide(event: str | None, body: bytes, repo: str | None, branch: str) -> Decision:
    if event == "ping":
        return Decision(200, "pong")
    if event != "push":
        return Decision(204, f"event {event!r} is not handled")
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return Decision(400, "push payload is not JSON")
    if not isinstance(payload, Mapping):
        return Decision(400, "push payload is not a JSON object")
    full_name = str((payload.get("repository") or {}).get("full_name") or "")
    if not repo or full_name.lower() != repo.lower():
        return Decision(202, f"ignored: push to {full_name or 'an unknown repository'}, not {repo}")
    ref = str(payload.get("ref") or "")
    if ref != f"refs/heads/{branch}":
        return Decision(202, f"ignored: push to {ref}, not refs/heads/{branch}")
    if payload.get("deleted"):
        return Decision(202, f"ignored: branch {branch} was deleted")
    return Decision(202, "push", run=True, revision=str(payload.get("after") or "") or None)
