"""Which pull-request webhook deliveries ask for a preview: pure, cheap (stdlib only), strict about the
payload like the push filter in synoscd/webhook.py.

- `pull_request` opened, synchronize, reopened, ready_for_review, for a pull request into the
  followed branch that is not a draft: a preview of its head. `closed`: its preview is forgotten.
- `check_suite` / `check_run` `rerequested` (the "Re-run" buttons), for SynosCD's own suite or its
  preview run: the preview runs again. GitHub sends these events to every App with `checks: write`,
  whoever owns the suite, so others' are ignored (by App id when the settings know it; the queued
  preview checks it again with the App's credentials).

Whether the pull request touches the manifests is decided by the preview (the payload lists no
files): one that does not gets a `skipped` check run."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

PREVIEW_CHECK = "SynosCD preview"
PREVIEW_ACTIONS = ("opened", "synchronize", "reopened", "ready_for_review")
COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class Answer:
    """What the webhook answers, and the queue message to send (None: nothing to queue)."""

    status: int
    reason: str
    message: Mapping[str, Any] | None = field(default=None)


def decide(event: str, payload: Mapping[str, Any], branch: str, app_id: int | None) -> Answer:
    if event == "pull_request":
        return _pull_request(payload, branch)
    if event in ("check_suite", "check_run"):
        return _rerequested(event, payload, branch, app_id)
    return Answer(204, f"event {event!r} is not handled")


def _pull_request(payload: Mapping[str, Any], branch: str) -> Answer:
    action, pull = payload.get("action"), payload.get("pull_request")
    if not isinstance(action, str) or not isinstance(pull, Mapping):
        return Answer(400, "pull_request payload: `action` must be a string and `pull_request` an object")
    number, head, base = pull.get("number"), pull.get("head"), pull.get("base")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        return Answer(400, "pull_request payload: `pull_request.number` must be a positive integer")
    if not isinstance(head, Mapping) or not isinstance(base, Mapping):
        return Answer(400, "pull_request payload: `pull_request.head` and `.base` must be objects")
    sha, target = head.get("sha"), base.get("ref")
    if not isinstance(sha, str) or COMMIT.fullmatch(sha) is None:
        return Answer(400, "pull_request payload: `pull_request.head.sha` must be a commit id")
    if not isinstance(target, str):
        return Answer(400, "pull_request payload: `pull_request.base.ref` must be a branch name")
    if target != branch:
        return Answer(202, f"ignored: pull request #{number} targets {target[:200]}, not {branch}")
    if action == "closed":
        return Answer(202, f"pull request #{number} closed", {"kind": "preview-closed", "pr": number})
    if action not in PREVIEW_ACTIONS:
        return Answer(202, f"ignored: pull request #{number} {action[:40]}")
    if pull.get("draft") is True:
        return Answer(202, f"ignored: pull request #{number} is a draft (previewed when ready for review)")
    message = {
        "kind": "preview",
        "pr": number,
        "head": sha,
        "headRef": str(head.get("ref") or "")[:255],
        "action": action,
    }
    return Answer(202, f"pull request #{number}: preview of {sha[:12]}", message)


def _rerequested(event: str, payload: Mapping[str, Any], branch: str, app_id: int | None) -> Answer:
    action, item = payload.get("action"), payload.get(event)
    if not isinstance(item, Mapping):
        return Answer(400, f"{event} payload: `{event}` must be an object")
    if action != "rerequested":
        return Answer(202, f"ignored: {event} {str(action)[:40]}")
    if event == "check_run" and item.get("name") != PREVIEW_CHECK:
        return Answer(202, f"ignored: check run {str(item.get('name'))[:100]!r} is not {PREVIEW_CHECK!r}")
    app = item.get("app")
    owner = app.get("id") if isinstance(app, Mapping) else None
    if app_id is not None and owner != app_id:
        return Answer(202, f"ignored: {event} of another App ({owner})")
    sha = item.get("head_sha")
    if not isinstance(sha, str) or COMMIT.fullmatch(sha) is None:
        return Answer(400, f"{event} payload: `{event}.head_sha` must be a commit id")
    pulls = item.get("pull_requests")
    if not isinstance(pulls, list) and isinstance(item.get("check_suite"), Mapping):
        pulls = item["check_suite"].get("pull_requests")
    numbers = [
        p.get("number")
        for p in (pulls if isinstance(pulls, list) else [])
        if isinstance(p, Mapping) and isinstance(p.get("base"), Mapping) and p["base"].get("ref") == branch
    ]
    if pulls and not numbers:  # pull requests into other branches only
        return Answer(202, f"ignored: {sha[:12]} is in no pull request into {branch}")
    number = numbers[0] if numbers and isinstance(numbers[0], int) else None
    message = {
        "kind": "preview",
        "pr": number,
        "head": sha,
        "action": "rerequested",
        "appId": owner if isinstance(owner, int) else None,
    }
    where = f"pull request #{number}" if number else sha[:12]
    return Answer(202, f"{where}: preview re-requested", message)
