"""Pull requests: the REST resources (one, a list, its files and commits, a commit's pull requests), the
`refs/pull/{number}/head` ref GitHub keeps for each, the `pull_request` webhook payload, and the admin
API that opens, updates and closes them (GitHub creates pull requests as a user; SynosCD's App only
reads them, so the stand-in's tests open them through the admin API).

A pull request follows its head branch: a commit to that branch (admin API) moves `head.sha` and the
`refs/pull/{number}/head` ref, as a push to a pull request's branch does at GitHub."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from emulators.github.common import (
    REPO,
    Route,
    Urls,
    gh_error,
    iso_utc,
    json_body,
    node_id,
    not_found,
    paginate,
    safe_ref,
    stable_id,
)
from emulators.github.gitrepo import GitRepo, run_git
from emulators.httpbase import HttpError, Request, Response

PULL_FILES_LIMIT = 3000  # GitHub lists at most 3,000 files of a pull request
PULL_COMMITS_LIMIT = 250  # and at most 250 commits
PULL_ACTIONS = (
    "opened",
    "synchronize",
    "reopened",
    "ready_for_review",
    "closed",
    "edited",
    "converted_to_draft",
)


@dataclass
class Pull:
    number: int
    repo: str  # owner/name, lower case
    title: str
    body: str | None
    head_ref: str
    base_ref: str
    user: str
    head_sha: str  # the head branch's tip when last seen (kept when the branch is deleted)
    draft: bool = False
    state: str = "open"
    merged: bool = False
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    closed_at: float | None = None
    merged_at: float | None = None
    previous_head: str | None = None  # before the last synchronize, for the webhook's `before`


class Pulls:
    """Mixin: the pull-request family."""

    def _init_state(self) -> None:
        super()._init_state()  # type: ignore[misc]
        self._pulls: dict[tuple[str, int], Pull] = {}

    def pull_routes(self) -> list[Route]:
        # Before the commits family: /commits/{ref} would otherwise swallow /commits/{sha}/pulls.
        return [
            ("GET", REPO + r"/commits/(?P<sha>[^/]+)/pulls", self._commit_pulls, "token", True),
            ("GET", REPO + r"/pulls", self._list_pulls, "token", True),
            ("GET", REPO + r"/pulls/(?P<number>\d+)", self._get_pull, "token", True),
            ("GET", REPO + r"/pulls/(?P<number>\d+)/files", self._pull_files, "token", True),
            ("GET", REPO + r"/pulls/(?P<number>\d+)/commits", self._pull_commits, "token", True),
        ]

    def pull_admin_routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("POST", r"/_admin/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/pulls", self._admin_open_pull),
            (
                "PATCH",
                r"/_admin/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/pulls/(?P<number>\d+)",
                self._admin_update_pull,
            ),
        ]

    # -- state ---------------------------------------------------------------------------------
    def _pull(self, repo: GitRepo, number: int | str) -> Pull:
        pull = self._pulls.get((repo.full_name.lower(), int(number)))
        if pull is None:
            raise not_found()
        return self._follow(repo, pull)

    def _follow(self, repo: GitRepo, pull: Pull) -> Pull:
        """An open pull request's head is its branch's tip (a push to the branch moves it)."""
        if pull.state == "open":
            tip = repo.branch_sha(pull.head_ref)
            if tip is not None and tip != pull.head_sha:
                pull.previous_head, pull.head_sha = pull.head_sha, tip
                pull.updated_at = time.time()
                run_git(repo.path, "update-ref", f"refs/pull/{pull.number}/head", tip)
        return pull

    def _repo_pulls(self, repo: GitRepo) -> list[Pull]:
        key = repo.full_name.lower()
        return [self._follow(repo, p) for (r, _), p in sorted(self._pulls.items()) if r == key]

    def _pushed(self, repo: GitRepo, branch: str) -> None:
        self._repo_pulls(repo)  # following the branches moves head.sha and refs/pull/N/head
        super()._pushed(repo, branch)  # type: ignore[misc]

    def _next_number(self, repo: GitRepo) -> int:
        """Pull requests share their numbers with issues; the stand-in has no issues."""
        key = repo.full_name.lower()
        return max((n for r, n in self._pulls if r == key), default=0) + 1

    def _merge_base(self, repo: GitRepo, pull: Pull) -> str:
        base = repo.branch_sha(pull.base_ref) or pull.head_sha
        return repo.merge_base(base, pull.head_sha) or base

    # -- JSON shapes -------------------------------------------------------------------------
    def _branch_side(self, base: str, repo: GitRepo, ref: str, sha: str) -> dict[str, Any]:
        return {
            "label": f"{repo.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": self._user_json(base, repo.owner),
            "repo": self._repo_json(base, repo),
        }

    def _pull_json(self, base: str, repo: GitRepo, pull: Pull, full: bool = True) -> dict[str, Any]:
        """A pull request as GitHub answers it: the list shape, and (`full`) the single-resource
        fields (merge state, counts)."""
        u = Urls(base, repo.owner, repo.name)
        n = pull.number
        api = f"{u.api}/pulls/{n}"
        base_sha = repo.branch_sha(pull.base_ref) or pull.head_sha
        out: dict[str, Any] = {
            "url": api,
            "id": stable_id(f"pull:{repo.full_name.lower()}#{n}"),
            "node_id": node_id("PR", f"{repo.full_name}#{n}"),
            "html_url": f"{u.html}/pull/{n}",
            "diff_url": f"{u.html}/pull/{n}.diff",
            "patch_url": f"{u.html}/pull/{n}.patch",
            "issue_url": f"{u.api}/issues/{n}",
            "number": n,
            "state": pull.state,
            "locked": False,
            "title": pull.title,
            "user": self._user_json(base, pull.user, "User"),
            "body": pull.body,
            "created_at": iso_utc(pull.created_at),
            "updated_at": iso_utc(pull.updated_at),
            "closed_at": iso_utc(pull.closed_at) if pull.closed_at else None,
            "merged_at": iso_utc(pull.merged_at) if pull.merged_at else None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "labels": [],
            "milestone": None,
            "draft": pull.draft,
            "commits_url": f"{api}/commits",
            "review_comments_url": f"{api}/comments",
            "review_comment_url": f"{u.api}/pulls/comments{{/number}}",
            "comments_url": f"{u.api}/issues/{n}/comments",
            "statuses_url": f"{u.api}/statuses/{pull.head_sha}",
            "head": self._branch_side(base, repo, pull.head_ref, pull.head_sha),
            "base": self._branch_side(base, repo, pull.base_ref, base_sha),
            "_links": {
                "self": {"href": api},
                "html": {"href": f"{u.html}/pull/{n}"},
                "issue": {"href": f"{u.api}/issues/{n}"},
                "comments": {"href": f"{u.api}/issues/{n}/comments"},
                "review_comments": {"href": f"{api}/comments"},
                "review_comment": {"href": f"{u.api}/pulls/comments{{/number}}"},
                "commits": {"href": f"{api}/commits"},
                "statuses": {"href": f"{u.api}/statuses/{pull.head_sha}"},
            },
            "author_association": "MEMBER",
            "auto_merge": None,
            "active_lock_reason": None,
        }
        if not full:
            return out
        merge_base = self._merge_base(repo, pull)
        changes = repo.diff(merge_base, pull.head_sha)
        out.update(
            {
                "merged": pull.merged,
                "mergeable": None if pull.state != "open" else True,
                "rebaseable": None if pull.state != "open" else True,
                "mergeable_state": "clean" if pull.state == "open" else "unknown",
                "merged_by": self._user_json(base, pull.user, "User") if pull.merged else None,
                "comments": 0,
                "review_comments": 0,
                "maintainer_can_modify": False,
                "commits": len(repo.range_commits(merge_base, pull.head_sha)),
                "additions": sum(f.additions for f in changes),
                "deletions": sum(f.deletions for f in changes),
                "changed_files": len(changes),
            }
        )
        return out

    def _pull_ref_json(self, base: str, repo: GitRepo, pull: Pull) -> dict[str, Any]:
        """The short form check runs and suites list in `pull_requests`."""
        u = Urls(base, repo.owner, repo.name)
        short_repo = {"id": stable_id(f"repo:{repo.full_name.lower()}"), "url": u.api, "name": repo.name}
        base_sha = repo.branch_sha(pull.base_ref) or pull.head_sha
        return {
            "url": f"{u.api}/pulls/{pull.number}",
            "id": stable_id(f"pull:{repo.full_name.lower()}#{pull.number}"),
            "number": pull.number,
            "head": {"ref": pull.head_ref, "sha": pull.head_sha, "repo": short_repo},
            "base": {"ref": pull.base_ref, "sha": base_sha, "repo": short_repo},
        }

    def _open_pulls_at(self, repo: GitRepo, sha: str) -> list[Pull]:
        return [p for p in self._repo_pulls(repo) if p.state == "open" and p.head_sha == sha]

    # -- the API -------------------------------------------------------------------------------
    def _get_pull(self, req: Request, owner: str, repo: str, number: str) -> Response:
        r = self._repo(owner, repo)
        return Response.json(200, self._pull_json(req.base_url, r, self._pull(r, number)))

    def _list_pulls(self, req: Request, owner: str, repo: str) -> Response:
        r = self._repo(owner, repo)
        state = req.query.get("state", "open")
        if state not in ("open", "closed", "all"):
            return gh_error(
                422, "Validation Failed", errors=[{"resource": "Issue", "field": "state", "code": "invalid"}]
            )
        pulls = [p for p in self._repo_pulls(r) if state == "all" or p.state == state]
        head, base_ref = req.query.get("head"), req.query.get("base")
        if head:  # "user:ref-name"
            pulls = [p for p in pulls if f"{r.owner}:{p.head_ref}".lower() == head.lower()]
        if base_ref:
            pulls = [p for p in pulls if p.base_ref == base_ref]
        sort = req.query.get("sort", "created")
        key = {"updated": lambda p: p.updated_at}.get(sort, lambda p: (p.created_at, p.number))
        # GitHub: desc when sorting by creation (the default), else asc
        direction = req.query.get("direction") or ("desc" if sort == "created" else "asc")
        pulls.sort(key=key, reverse=direction == "desc")
        page, headers = paginate(req, pulls, default=30, maximum=100)
        return Response.json(200, [self._pull_json(req.base_url, r, p, full=False) for p in page], headers)

    def _pull_files(self, req: Request, owner: str, repo: str, number: str) -> Response:
        r = self._repo(owner, repo)
        pull = self._pull(r, number)
        changes = r.diff(self._merge_base(r, pull), pull.head_sha)[:PULL_FILES_LIMIT]
        page, headers = paginate(req, changes, default=30, maximum=100)
        u = Urls(req.base_url, r.owner, r.name)
        return Response.json(200, [self._file_json(u, pull.head_sha, f) for f in page], headers)

    def _pull_commits(self, req: Request, owner: str, repo: str, number: str) -> Response:
        r = self._repo(owner, repo)
        pull = self._pull(r, number)
        shas = r.range_commits(self._merge_base(r, pull), pull.head_sha)[:PULL_COMMITS_LIMIT]
        page, headers = paginate(req, shas, default=30, maximum=100)
        u = Urls(req.base_url, r.owner, r.name)
        return Response.json(200, [self._commit_json(u, r.commit(s)) for s in page], headers)

    def _commit_pulls(self, req: Request, owner: str, repo: str, sha: str) -> Response:
        """Pull requests whose commits include `sha` (GitHub: the merged one that introduced it, or
        the open ones that contain it)."""
        r = self._repo(owner, repo)
        commit = r.resolve(sha)
        if commit is None:
            return gh_error(422, f"No commit found for SHA: {sha}")
        found = [
            p
            for p in self._repo_pulls(r)
            if p.head_sha == commit or commit in r.range_commits(self._merge_base(r, p), p.head_sha)
        ]
        page, headers = paginate(req, found, default=30, maximum=100)
        return Response.json(200, [self._pull_json(req.base_url, r, p, full=False) for p in page], headers)

    # -- the webhook payload ------------------------------------------------------------------
    def _pull_request_payload(self, base: str, repo: GitRepo | None, spec: dict[str, Any]) -> dict[str, Any]:
        if repo is None:
            raise HttpError(gh_error(400, "owner and name are required for a pull_request delivery"))
        action = str(spec.get("action") or "opened")
        if action not in PULL_ACTIONS:
            raise HttpError(gh_error(400, f"action must be one of {', '.join(PULL_ACTIONS)}"))
        pull = self._pull(repo, int(spec.get("number") or 0))
        payload: dict[str, Any] = {
            "action": action,
            "number": pull.number,
            "pull_request": self._pull_json(base, repo, pull),
            "repository": self._hook_repo_json(base, repo),
            "sender": self._user_json(base, pull.user, "User"),
            "installation": {"id": self.installation_id, "node_id": node_id("I", str(self.installation_id))},
        }
        if action == "synchronize":
            payload["before"] = str(spec.get("before") or pull.previous_head or pull.head_sha)
            payload["after"] = pull.head_sha
        return payload

    # -- the admin API -------------------------------------------------------------------------
    def _admin_open_pull(self, req: Request, owner: str, name: str) -> Response:
        spec = json_body(req)
        repo = self._repo(owner, name)
        head, base_ref = str(spec.get("head") or ""), str(spec.get("base") or repo.default_branch())
        if not safe_ref(head) or not safe_ref(base_ref):
            return gh_error(400, "head and base must be branch names")
        head_sha, base_sha = repo.branch_sha(head), repo.branch_sha(base_ref)
        if head_sha is None or base_sha is None:
            return gh_error(
                422,
                "Validation Failed",
                errors=[{"resource": "PullRequest", "field": "head", "code": "invalid"}],
            )
        if head == base_ref:
            message = f"No commits between {base_ref} and {head}"
            return gh_error(
                422,
                "Validation Failed",
                errors=[{"resource": "PullRequest", "code": "custom", "message": message}],
            )
        number = self._next_number(repo)
        pull = Pull(
            number=number,
            repo=repo.full_name.lower(),
            title=str(spec.get("title") or f"Pull request {number}"),
            body=spec.get("body"),
            head_ref=head,
            base_ref=base_ref,
            user=str(spec.get("user") or "octocat"),
            head_sha=head_sha,
            draft=bool(spec.get("draft", False)),
        )
        self._pulls[(pull.repo, number)] = pull
        run_git(repo.path, "update-ref", f"refs/pull/{number}/head", head_sha)
        return Response.json(201, self._pull_json(req.base_url, repo, pull))

    def _admin_update_pull(self, req: Request, owner: str, name: str, number: str) -> Response:
        spec = json_body(req)
        repo = self._repo(owner, name)
        pull = self._pull(repo, number)
        now = time.time()
        if "title" in spec:
            pull.title = str(spec["title"])
        if "draft" in spec:
            pull.draft = bool(spec["draft"])
        if spec.get("state") == "closed" and pull.state == "open":
            pull.state, pull.closed_at = "closed", now
            if spec.get("merged"):
                pull.merged, pull.merged_at = True, now
        elif spec.get("state") == "open" and pull.state == "closed" and not pull.merged:
            pull.state, pull.closed_at = "open", None
            self._follow(repo, pull)
        pull.updated_at = now
        return Response.json(200, self._pull_json(req.base_url, repo, pull))
