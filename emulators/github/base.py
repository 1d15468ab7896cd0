"""The stand-in's HTTP base over `emulators.httpbase`: GitHub's error shape, the request pipeline every
API route goes through (secondary limit, authentication, primary limit, handler, ETag and
conditional requests, rate-limit headers), repository lookup and the JSON shapes several resource
families share (users, repositories, commits)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from emulators.github.common import (
    FILE_STATUS,
    Urls,
    etag_for,
    etag_matches,
    gh_error,
    iso_utc,
    node_id,
    not_found,
    stable_id,
    valid_name,
)
from emulators.github.gitrepo import CommitInfo, FileChange, GitRepo
from emulators.httpbase import Emulator, Fault, HttpError, Request, Response


class GitHubBase(Emulator):
    """Shared by every family mixin; `GitHubEmulator` (emulator.py) composes them."""

    name = "github"
    # Set by GitHubEmulator.__init__ before _init_state runs.
    repos_root: Path
    installation_id: int
    account_login: str
    app_slug: str
    _started: float

    def _init_state(self) -> None:
        """Each family mixin extends this (calling super) with its own state."""
        self._repos: dict[str, GitRepo] = {}

    def reset(self) -> None:
        """Forget tokens, statuses, rate limits, faults and calls; repositories stay on disk."""
        with self.lock:
            super().reset()
            self._init_state()

    # -- errors in GitHub's shape --------------------------------------------------------------
    def error_response(self, status: int, code: str, message: str) -> Response:
        if status >= 500 and code == "InjectedFault":
            message = "Server Error"
        return self._decorate(gh_error(status, message))

    def not_found(self, req: Request) -> Response:
        return self._decorate(gh_error(404, "Not Found"))

    def _fault_response(self, fault: Fault) -> Response:
        # Injected answers carry the rate-limit headers too, as every GitHub answer does.
        return self._decorate(super()._fault_response(fault))

    def _api(
        self,
        method: str,
        pattern: str,
        handler: Callable[..., Response],
        auth: str = "token",
        counted: bool = True,
    ) -> None:
        def endpoint(req: Request, **params: str | None) -> Response:
            args = {k: (unquote(v) if v is not None else None) for k, v in params.items()}
            return self._serve_api(req, auth, counted, lambda: handler(req, **args))

        self.add_route(method, pattern, endpoint)
        if method == "GET":  # GitHub answers HEAD wherever it answers GET (the base sends no body)
            self.add_route("HEAD", pattern, endpoint)

    def _download(self, pattern: str, handler: Callable[..., Response]) -> None:
        def endpoint(req: Request, **params: str | None) -> Response:
            args = {k: unquote(v) if v is not None else None for k, v in params.items()}
            if not self._download_allowed(req):
                return gh_error(404, "Not Found")
            try:
                return handler(req, **args)
            except HttpError as err:
                return err.response

        self.add_route("GET", pattern, endpoint)

    # -- the request pipeline: secondary limit, auth, primary limit, handler, ETag ----------------
    def _serve_api(self, req: Request, auth: str, counted: bool, call: Callable[[], Response]) -> Response:
        self._rate.roll(time.time())
        limited = self._secondary_limited()
        if limited is not None:
            return limited
        # App (JWT) endpoints answer without rate-limit headers, as recorded at github.com.
        rated = auth != "jwt"
        credential, failure = self._authenticate(req, auth)
        if failure is not None:
            return self._decorate(failure, rated)
        if counted and self._rate.remaining <= 0:
            return self._decorate(
                gh_error(403, f"API rate limit exceeded for installation ID {self.installation_id}.")
            )
        try:
            resp = call()
        except HttpError as err:
            resp = err.response
        if req.method in ("GET", "HEAD") and resp.status == 200:
            etag = resp.headers.setdefault("ETag", etag_for(credential, resp.body))
            resp.headers.setdefault("Cache-Control", "private, max-age=60, s-maxage=60")
            if etag_matches(req.header("If-None-Match"), etag):
                # Free (not counted), yet with the rate-limit headers of the moment, as GitHub does.
                headers = {"ETag": etag, "Cache-Control": resp.headers["Cache-Control"]}
                return self._decorate(Response.empty(304, headers), rated)
        elif resp.status in (200, 201) and resp.body:
            resp.headers.setdefault("ETag", etag_for(credential, resp.body, weak=False))
        if counted:
            self._rate.remaining = max(0, self._rate.remaining - 1)
        return self._decorate(resp, rated)

    def _decorate(self, resp: Response, rated: bool = True) -> Response:
        if rated:
            resp.headers.update(self._rate.headers())
        resp.headers.setdefault("X-GitHub-Media-Type", "github.v3; format=json")
        resp.headers.setdefault("X-GitHub-Api-Version-Selected", "2022-11-28")
        resp.headers.setdefault("X-GitHub-Request-Id", uuid.uuid4().hex[:20].upper())
        resp.headers.setdefault("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
        return resp

    # -- repositories -------------------------------------------------------------------------
    def _repo(self, owner: str, name: str) -> GitRepo:
        """The repository (names are case-insensitive at GitHub), or 404."""
        if not valid_name(owner) or not valid_name(name):
            raise not_found()
        key = f"{owner}/{name}".lower()
        cached = self._repos.get(key)
        if cached is not None and (cached.path / ".git").exists():
            return cached
        path = self._find_repo_dir(owner, name)
        if path is None:
            raise not_found()
        repo = GitRepo(path, path.parent.name, path.name)
        self._repos[key] = repo
        return repo

    def _find_repo_dir(self, owner: str, name: str) -> Path | None:
        exact = self.repos_root / owner / name
        if (exact / ".git").exists():
            return exact
        for owner_dir in self.repos_root.iterdir():
            if owner_dir.name.lower() != owner.lower() or not owner_dir.is_dir():
                continue
            for repo_dir in owner_dir.iterdir():
                if repo_dir.name.lower() == name.lower() and (repo_dir / ".git").exists():
                    return repo_dir
        return None

    def _all_repos(self) -> list[GitRepo]:
        repos = []
        for git_dir in sorted(self.repos_root.glob("*/*/.git")):
            repo_dir = git_dir.parent
            repos.append(self._repo(repo_dir.parent.name, repo_dir.name))
        return repos

    def _resolve(self, repo: GitRepo, ref: str, message: str | None = None) -> str:
        sha = repo.resolve(ref)
        if sha is None:
            raise not_found(message or "Not Found")
        return sha

    # -- JSON shapes ---------------------------------------------------------------------------
    def _user_json(self, base: str, login: str, kind: str | None = None) -> dict[str, Any]:
        kind = kind or ("Organization" if login == self.account_login else "User")
        return {
            "login": login,
            "id": stable_id(f"user:{login}"),
            "node_id": node_id("U", login),
            "avatar_url": f"{base}/_avatars/{login}",
            "url": f"{base}/users/{login}",
            "html_url": f"{base}/{login}",
            "type": kind,
            "site_admin": False,
        }

    def _bot_json(self, base: str) -> dict[str, Any]:
        return self._user_json(base, f"{self.app_slug}[bot]", "Bot")

    def _repo_json(self, base: str, repo: GitRepo) -> dict[str, Any]:
        u = Urls(base, repo.owner, repo.name)
        branch = repo.default_branch()
        head = repo.branch_sha(branch)
        pushed = iso_utc(repo.commit(head).committer.epoch) if head else iso_utc(self._started)
        api = u.api
        templates = {
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "trees_url": f"{api}/git/trees{{/sha}}",
            "hooks_url": f"{api}/hooks",
            "tags_url": f"{api}/tags",
        }
        return {
            "id": stable_id(f"repo:{repo.full_name.lower()}"),
            "node_id": node_id("R", repo.full_name),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": True,
            "visibility": "private",
            "owner": self._user_json(base, repo.owner),
            "html_url": u.html,
            "description": None,
            "fork": False,
            "url": api,
            **templates,
            "git_url": f"{u.html}.git",
            "clone_url": f"{u.html}.git",
            "ssh_url": f"git@127.0.0.1:{repo.full_name}.git",
            "created_at": iso_utc(self._started),
            "updated_at": pushed,
            "pushed_at": pushed,
            "size": 0,
            "default_branch": branch,
            "archived": False,
            "disabled": False,
            "is_template": False,
            "has_issues": False,
            "has_pull_requests": True,
            "pull_request_creation_policy": "all",
            "topics": [],
            "permissions": {"admin": False, "maintain": False, "push": False, "triage": False, "pull": True},
        }

    def _git_commit_json(self, u: Urls, c: CommitInfo) -> dict[str, Any]:
        """The git-data commit (GET /git/commits/{sha})."""
        return {
            "sha": c.sha,
            "node_id": node_id("C", c.sha),
            "url": u.git("commits", c.sha),
            "html_url": f"{u.html}/commit/{c.sha}",
            "author": c.author.rest(),
            "committer": c.committer.rest(),
            "tree": {"sha": c.tree, "url": u.git("trees", c.tree)},
            "message": c.message,
            "parents": [
                {"sha": p, "url": u.git("commits", p), "html_url": f"{u.html}/commit/{p}"} for p in c.parents
            ],
            "verification": {"verified": False, "reason": "unsigned", "signature": None, "payload": None},
        }

    def _commit_json(self, u: Urls, c: CommitInfo) -> dict[str, Any]:
        """The REST commit (GET /commits/{ref}) without files."""
        inner = self._git_commit_json(u, c)
        for key in ("sha", "node_id", "html_url", "parents"):
            inner.pop(key)
        inner["comment_count"] = 0
        return {
            "sha": c.sha,
            "node_id": node_id("C", c.sha),
            "commit": inner,
            "url": f"{u.api}/commits/{c.sha}",
            "html_url": f"{u.html}/commit/{c.sha}",
            "comments_url": f"{u.api}/commits/{c.sha}/comments",
            "author": None,  # no GitHub account is linked to local commit e-mails
            "committer": None,
            "parents": [
                {"sha": p, "url": f"{u.api}/commits/{p}", "html_url": f"{u.html}/commit/{p}"}
                for p in c.parents
            ],
        }

    def _file_json(self, u: Urls, ref: str, f: FileChange) -> dict[str, Any]:
        qpath = quote(f.path)
        out: dict[str, Any] = {
            "sha": f.old_sha if f.status == "D" else f.new_sha,
            "filename": f.path,
            "status": FILE_STATUS.get(f.status, "modified"),
            "additions": f.additions,
            "deletions": f.deletions,
            "changes": f.additions + f.deletions,
            "blob_url": f"{u.html}/blob/{ref}/{qpath}",
            "raw_url": f"{u.html}/raw/{ref}/{qpath}",
            "contents_url": f"{u.api}/contents/{qpath}?ref={ref}",
        }
        if f.previous_path is not None:
            out["previous_filename"] = f.previous_path
        return out
