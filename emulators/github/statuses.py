"""Commit statuses: create, list, combined."""

from __future__ import annotations

import time
from typing import Any

from emulators.github.common import (
    REPO,
    SHA_RE,
    STATUS_STATES,
    Route,
    Urls,
    gh_error,
    iso_utc,
    json_body,
    node_id,
    paginate,
)
from emulators.github.gitrepo import GitRepo
from emulators.httpbase import Request, Response

STATUSES_PER_CONTEXT = 1000  # GitHub's limit per sha and context in a repository
MSG_STATUS_LIMIT = "This SHA and context has reached the maximum number of statuses."


class Statuses:
    """Mixin: the commit-status family."""

    def _init_state(self) -> None:
        super()._init_state()  # type: ignore[misc]
        self._statuses: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._status_ids = 0

    def status_routes(self) -> list[Route]:
        # Before the commits family: /commits/{ref} would otherwise swallow /commits/{ref}/status.
        return [
            ("GET", REPO + r"/commits/(?P<ref>.+)/statuses", self._list_statuses, "token", True),
            ("GET", REPO + r"/commits/(?P<ref>.+)/status", self._combined_status, "token", True),
            ("GET", REPO + r"/statuses/(?P<ref>.+)", self._list_statuses, "token", True),
            ("POST", REPO + r"/statuses/(?P<sha>[^/]+)", self._create_status, "token", True),
        ]

    def _create_status(self, req: Request, owner: str, repo: str, sha: str) -> Response:
        r = self._repo(owner, repo)
        if not SHA_RE.match(sha.lower()) or r.resolve(sha.lower()) is None:
            return gh_error(422, f"No commit found for SHA: {sha}")
        sha = sha.lower()
        body = json_body(req)
        problem = _status_problem(body)
        if problem is not None:
            return problem
        context = body.get("context") or "default"
        key = (r.full_name.lower(), sha)
        if sum(1 for s in self._statuses.get(key, ()) if s["context"] == context) >= STATUSES_PER_CONTEXT:
            error = {"resource": "Status", "code": "custom", "message": MSG_STATUS_LIMIT}
            return gh_error(422, "Validation Failed", errors=[error])
        self._status_ids += 1
        now = iso_utc(time.time())
        status = {
            "id": self._status_ids,
            "state": body["state"],
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "context": context,
            "created_at": now,
            "updated_at": now,
        }
        self._statuses.setdefault(key, []).insert(0, status)  # newest first
        u = Urls(req.base_url, r.owner, r.name)
        # The created status's own address, as recorded at github.com.
        location = {"Location": f"{u.api}/statuses/{status['id']}"}
        return Response.json(201, self._status_json(u, sha, status), location)

    def _status_json(self, u: Urls, sha: str, status: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"{u.api}/statuses/{sha}",
            "avatar_url": f"{u.base}/_avatars/{self.app_slug}",
            "node_id": node_id("SC", str(status["id"])),
            **status,
            "creator": self._bot_json(u.base),
        }

    def _statuses_for(self, r: GitRepo, ref: str) -> tuple[str, list[dict[str, Any]]]:
        sha = self._resolve(r, ref)
        return sha, self._statuses.get((r.full_name.lower(), sha), [])

    def _list_statuses(self, req: Request, owner: str, repo: str, ref: str) -> Response:
        r = self._repo(owner, repo)
        sha, statuses = self._statuses_for(r, ref)
        u = Urls(req.base_url, r.owner, r.name)
        page, headers = paginate(req, statuses, default=30, maximum=100)
        return Response.json(200, [self._status_json(u, sha, s) for s in page], headers)

    def _combined_status(self, req: Request, owner: str, repo: str, ref: str) -> Response:
        r = self._repo(owner, repo)
        sha, statuses = self._statuses_for(r, ref)
        latest: dict[str, dict[str, Any]] = {}
        for status in statuses:  # newest first: the first per context wins
            latest.setdefault(status["context"], status)
        u = Urls(req.base_url, r.owner, r.name)
        body = {
            "state": _combined_state([s["state"] for s in latest.values()]),
            "statuses": [self._status_json(u, sha, s) for s in latest.values()],
            "sha": sha,
            "total_count": len(latest),
            "repository": self._repo_json(req.base_url, r),
            "commit_url": f"{u.api}/commits/{sha}",
            "url": f"{u.api}/commits/{sha}/status",
        }
        return Response.json(200, body)


def _combined_state(states: list[str]) -> str:
    """GitHub's rule: any error/failure fails, else any pending (or none at all) is pending."""
    if {"error", "failure"} & set(states):
        return "failure"
    return "pending" if not states or "pending" in states else "success"


def _status_problem(body: dict[str, Any]) -> Response | None:
    """GitHub's 422 for a commit status it would refuse."""

    def invalid(field_name: str, message: str) -> Response:
        error = {"resource": "Status", "code": "custom", "field": field_name, "message": message}
        return gh_error(422, "Validation Failed", errors=[error])

    if body.get("state") not in STATUS_STATES:
        return invalid("state", "state is not included in the list")
    for key in ("target_url", "description", "context"):
        if body.get(key) is not None and not isinstance(body[key], str):
            return invalid(key, f"{key} must be a string")
    if len(body.get("description") or "") > 140:
        return invalid("description", "description is too long (maximum is 140 characters)")
    return None
