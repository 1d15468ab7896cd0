"""Webhook deliveries (admin API): build push / ping payloads as GitHub does (and, through the family
that owns them, pull_request, check_run and check_suite payloads), sign and POST them."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import requests

from emulators.github.common import (
    APP_EVENTS,
    ZERO_SHA,
    Urls,
    gh_error,
    iso_utc,
    json_body,
    node_id,
    released,
    stable_id,
)
from emulators.github.gitrepo import GitRepo, Person
from emulators.httpbase import HttpError, Request, Response


@dataclass
class Delivery:
    delivery_id: str
    event: str
    url: str
    status: int | None
    body: str
    hook_id: int
    time: float = field(default_factory=time.time)
    error: str | None = None
    payload: str = ""  # what was sent (the JSON body), for tests that check the payload


class Webhooks:
    """Mixin: webhook deliveries."""

    def _init_state(self) -> None:
        super()._init_state()  # type: ignore[misc]
        self.deliveries: list[Delivery] = []

    def webhook_admin_routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("POST", r"/_admin/webhooks/deliver", self._admin_deliver),
            ("GET", r"/_admin/webhooks/deliveries", self._admin_deliveries),
        ]

    def _admin_deliveries(self, req: Request) -> Response:
        return Response.json(200, {"deliveries": [asdict(d) for d in self.deliveries]})

    def _admin_deliver(self, req: Request) -> Response:
        spec = json_body(req)
        url = spec.get("url")
        event = str(spec.get("event") or "push")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return gh_error(400, "url (http or https) is required")
        hook_id = int(spec.get("hook_id") or stable_id(f"hook:{url}"))
        payload = spec.get("payload")
        if payload is None:
            payload = self._build_payload(req.base_url, event, spec, hook_id)
        delivery_id = str(spec.get("delivery_id") or uuid.uuid4())
        body = json.dumps(payload).encode("utf-8")
        headers = self._webhook_headers(event, delivery_id, hook_id, body, spec.get("secret"))
        with released(self.lock):  # the receiver may call back into this stand-in
            status, text, error = _post(url, body, headers)
        delivery = Delivery(
            delivery_id, event, url, status, text, hook_id, error=error, payload=body.decode()
        )
        self.deliveries.append(delivery)
        return Response.json(200, asdict(delivery) | {"signature_256": headers.get("X-Hub-Signature-256")})

    def _webhook_headers(
        self, event: str, delivery_id: str, hook_id: int, body: bytes, secret: Any
    ) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "*/*",
            "User-Agent": "GitHub-Hookshot/synoscd",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": str(hook_id),
            "X-GitHub-Hook-Installation-Target-ID": str(self.installation_id),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
        }
        if secret:  # GitHub signs only when the hook has a secret
            key = str(secret).encode("utf-8")
            headers["X-Hub-Signature"] = "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest()
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        return headers

    def _build_payload(self, base: str, event: str, spec: dict[str, Any], hook_id: int) -> dict[str, Any]:
        repo = None
        if spec.get("owner") and spec.get("name"):
            repo = self._repo(str(spec["owner"]), str(spec["name"]))
        if event == "ping":
            return self._ping_payload(base, repo, hook_id, str(spec["url"]))
        if event != "push":  # another family's event: pull_request, check_run, check_suite
            builder = getattr(self, f"_{event}_payload", None)
            if builder is None:
                raise HttpError(
                    gh_error(
                        400,
                        "event must be push, ping, pull_request, check_run or check_suite "
                        "unless payload is given",
                    )
                )
            return dict(builder(base, repo, spec))
        if repo is None:
            raise HttpError(gh_error(400, "owner and name are required for a push"))
        return self._push_payload(base, repo, spec)

    def _hook_repo_json(self, base: str, repo: GitRepo) -> dict[str, Any]:
        body = self._repo_json(base, repo)
        body["owner"] = {**body["owner"], "name": repo.owner, "email": None}
        body["master_branch"] = body["default_branch"]
        return body

    def _ping_payload(self, base: str, repo: GitRepo | None, hook_id: int, url: str) -> dict[str, Any]:
        now = iso_utc(time.time())
        hook_base = (
            f"{Urls(base, repo.owner, repo.name).api}/hooks/{hook_id}" if repo else f"{base}/hooks/{hook_id}"
        )
        payload: dict[str, Any] = {
            "zen": "Keep it logically awesome.",
            "hook_id": hook_id,
            "hook": {
                "type": "Repository" if repo else "App",
                "id": hook_id,
                "name": "web",
                "active": True,
                "events": APP_EVENTS,
                "config": {"content_type": "json", "insecure_ssl": "0", "url": url},
                "updated_at": now,
                "created_at": now,
                "url": hook_base,
                "test_url": f"{hook_base}/test",
                "ping_url": f"{hook_base}/pings",
                "deliveries_url": f"{hook_base}/deliveries",
                "last_response": {"code": None, "status": "unused", "message": None},
            },
            "sender": self._bot_json(base),
        }
        if repo is not None:
            payload["repository"] = self._hook_repo_json(base, repo)
        return payload

    def _push_payload(self, base: str, repo: GitRepo, spec: dict[str, Any]) -> dict[str, Any]:
        ref = str(spec.get("ref") or repo.default_branch())
        ref = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
        after = str(spec.get("after") or self._resolve(repo, ref))
        if after != ZERO_SHA:
            after = self._resolve(repo, after)
        before = spec.get("before")
        if before is None:
            parents = repo.commit(after).parents if after != ZERO_SHA else ()
            before = parents[0] if parents else ZERO_SHA
        before = str(before) if str(before) == ZERO_SHA else self._resolve(repo, str(before))
        u = Urls(base, repo.owner, repo.name)
        shas = self._pushed_commits(repo, before, after)
        commits = [self._push_commit_json(u, repo, s) for s in shas]
        head = self._push_commit_json(u, repo, after) if after != ZERO_SHA else None
        pusher = repo.commit(after).committer if after != ZERO_SHA else Person("synos", "", 0, "+0000")
        return {
            "ref": ref,
            "before": before,
            "after": after,
            "repository": self._hook_repo_json(base, repo),
            "pusher": {"name": pusher.name, "email": pusher.email},
            "sender": self._user_json(base, pusher.name.replace(" ", "-") or "synos", "User"),
            "installation": {"id": self.installation_id, "node_id": node_id("I", str(self.installation_id))},
            "created": before == ZERO_SHA,
            "deleted": after == ZERO_SHA,
            "forced": before != ZERO_SHA and after != ZERO_SHA and not repo.is_ancestor(before, after),
            "base_ref": None,
            "compare": f"{u.html}/compare/{before[:12]}...{after[:12]}",
            "commits": commits,
            "head_commit": head,
        }

    @staticmethod
    def _pushed_commits(repo: GitRepo, before: str, after: str) -> list[str]:
        if after == ZERO_SHA:
            return []
        if before == ZERO_SHA:
            return [after]  # a new branch: GitHub lists only what is new; the tip stands for it here
        return repo.range_commits(before, after)[-2048:]  # GitHub's cap

    def _push_commit_json(self, u: Urls, repo: GitRepo, sha: str) -> dict[str, Any]:
        c = repo.commit(sha)
        changes = repo.diff(c.parents[0] if c.parents else None, sha, renames=False)
        by_kind: dict[str, list[str]] = {"added": [], "removed": [], "modified": []}
        for change in changes:
            kind = {"A": "added", "D": "removed"}.get(change.status, "modified")
            by_kind[kind].append(change.path)
        return {
            "id": sha,
            "tree_id": c.tree,
            "distinct": True,
            "message": c.message,
            "timestamp": c.committer.iso_local(),
            "url": f"{u.html}/commit/{sha}",
            "author": {"name": c.author.name, "email": c.author.email},
            "committer": {"name": c.committer.name, "email": c.committer.email},
            **by_kind,
        }


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str, str | None]:
    """POST a delivery; GitHub gives a receiver 10 s. TLS trust follows REQUESTS_CA_BUNDLE."""
    try:
        resp = requests.post(url, data=body, headers=headers, timeout=10, allow_redirects=False)
    except requests.RequestException as exc:
        return None, "", repr(exc)
    return resp.status_code, resp.text, None
