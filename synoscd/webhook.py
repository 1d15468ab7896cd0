"""GitHub webhooks: signature check (constant time), delivery id and event checks. Pure and cheap: a
rejected request never loads an Azure SDK or PyGithub.

Any body that is signed but malformed is a 400 with a message saying what is wrong (never a 500):
JSON nested beyond reason, a `repository` that is not an object, a `ref` or `after` of the wrong
shape. Delivery ids are checked too (GitHub sends a GUID); the state table stores only their hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")
DELIVERY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1, or SHA-256 repositories
ZERO_COMMIT = re.compile(r"0+")
MAX_DEPTH = 64  # a push payload nests about 5 deep


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def well_formed_signature(header: str | None) -> bool:
    """Whether the header can be a signature at all: checked before any secret is loaded, so an
    unsigned request costs no Key Vault call."""
    return bool(header) and SIGNATURE.fullmatch(header.strip()) is not None  # type: ignore[union-attr]


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """`X-Hub-Signature-256` over the raw body; compared in constant time."""
    if not header or not secret:
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.strip().encode())


def delivery_problem(delivery: str | None) -> str | None:
    """Why an X-GitHub-Delivery header is unusable (None: it is fine)."""
    if not delivery:
        return "X-GitHub-Delivery is missing (GitHub sends a GUID with every delivery)"
    if DELIVERY_ID.fullmatch(delivery) is None:
        return (
            "X-GitHub-Delivery must be 1 to 100 letters, digits, '.', '_' or '-' (GitHub sends a GUID); "
            f"got {len(delivery)} characters"
        )
    return None


@dataclass(frozen=True)
class Decision:
    """What to do with a verified delivery: queue a pass (or, with `message`, a pull-request preview:
    the fields it adds to the queue message), or answer without one."""

    status: int
    reason: str
    run: bool = False
    revision: str | None = None
    message: Mapping[str, Any] | None = None
    # The repository files the push changed (which targets of a fleet it touched); None when the
    # payload cannot tell them all (a force-push, a new branch, GitHub's caps): every target runs.
    paths: tuple[str, ...] | None = None


MAX_PUSHED_COMMITS = 2048  # GitHub lists at most this many commits in a push payload
MAX_PATHS = 1000  # beyond this the message would outgrow a queue message (64 KiB): every target


def changed_paths(payload: Mapping[str, Any]) -> tuple[str, ...] | None:
    """Every file a push added, modified or removed, from its `commits`; None when that list may be
    incomplete: a force-push (files of the commits it dropped are not listed), a new branch,
    GitHub's cap on listed commits, or a commit without its file lists."""
    commits = payload.get("commits")
    if payload.get("forced") or payload.get("created") or not isinstance(commits, list):
        return None
    if not commits or len(commits) >= MAX_PUSHED_COMMITS:
        return None
    paths: set[str] = set()
    for commit in commits:
        if not isinstance(commit, Mapping):
            return None
        for kind in ("added", "modified", "removed"):
            files = commit.get(kind)
            if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
                return None
            paths.update(files)
        if len(paths) > MAX_PATHS:
            return None
    return tuple(sorted(paths))


def _depth(value: Any) -> int:
    """Nesting depth, iteratively (the recursion limit is what a hostile payload aims at)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def _load(body: bytes, event: str = "push") -> tuple[Any, str | None]:
    try:
        return json.loads(body), None
    except RecursionError:
        return None, f"{event} payload nests deeper than {MAX_DEPTH} levels"
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"{event} payload is not JSON ({str(exc).splitlines()[0][:100]})"


# Pull-request previews (synoscd/preview/events.py decides which of these ask for one).
PREVIEW_EVENTS = ("pull_request", "check_suite", "check_run")


def decide(
    event: str | None, body: bytes, repo: str | None, branch: str, app_id: int | None = None
) -> Decision:
    if event == "ping":
        return Decision(200, "pong")
    if event != "push" and event not in PREVIEW_EVENTS:
        return Decision(204, f"event {event!r} is not handled")
    payload, problem = _load(body, event)
    if problem:
        return Decision(400, problem)
    if not isinstance(payload, Mapping):
        return Decision(400, f"{event} payload is not a JSON object")
    if _depth(payload) > MAX_DEPTH:
        return Decision(400, f"{event} payload nests deeper than {MAX_DEPTH} levels")
    repository = payload.get("repository")
    if not isinstance(repository, Mapping) or not isinstance(repository.get("full_name"), str):
        return Decision(400, f"{event} payload: `repository` must be an object with a string `full_name`")
    if event != "push":
        return _preview(event, payload, repository["full_name"], repo, branch, app_id)
    ref, after = payload.get("ref"), payload.get("after")
    if not isinstance(ref, str):
        return Decision(400, "push payload: `ref` must be a string such as refs/heads/main")
    if not isinstance(after, str) or COMMIT.fullmatch(after) is None:
        return Decision(400, "push payload: `after` must be a commit id (40 or 64 hexadecimal digits)")
    full_name = repository["full_name"]
    if not repo or full_name.lower() != repo.lower():
        return Decision(202, f"ignored: push to {full_name or 'an unknown repository'}, not {repo}")
    if ref != f"refs/heads/{branch}":
        return Decision(202, f"ignored: push to {ref[:200]}, not refs/heads/{branch}")
    if payload.get("deleted") or ZERO_COMMIT.fullmatch(after):
        return Decision(202, f"ignored: branch {branch} was deleted")
    return Decision(202, "push", run=True, revision=after, paths=changed_paths(payload))


def _preview(
    event: str, payload: Mapping[str, Any], full_name: str, repo: str | None, branch: str, app_id: int | None
) -> Decision:
    from synoscd.preview.events import decide as decide_preview

    if not repo or full_name.lower() != repo.lower():
        return Decision(202, f"ignored: {event} in {full_name or 'an unknown repository'}, not {repo}")
    answer = decide_preview(event, payload, branch, app_id)
    message = answer.message
    head = message.get("head") if message else None
    return Decision(answer.status, answer.reason, run=message is not None, revision=head, message=message)
