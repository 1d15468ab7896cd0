"""Repositories, branches, commits (REST and git data) and compare."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from emulators.github.common import REPO, SHA_RE, Route, Urls, gh_error, not_found, paginate
from emulators.github.gitrepo import GitRepo
from emulators.httpbase import Request, Response


class Repos:
    """Mixin: the repository family."""

    def repo_routes(self) -> list[Route]:
        return [
            ("GET", r"/installation/repositories", self._installation_repos, "token", True),
            ("GET", REPO, self._get_repo, "token", True),
            ("GET", REPO + r"/branches", self._list_branches, "token", True),
            ("GET", REPO + r"/branches/(?P<branch>.+)", self._get_branch, "token", True),
            ("GET", REPO + r"/commits", self._list_commits, "token", True),
            ("GET", REPO + r"/commits/(?P<ref>.+)", self._get_commit, "token", True),
            ("GET", REPO + r"/git/commits/(?P<sha>[^/]+)", self._get_git_commit, "token", True),
            ("GET", REPO + r"/compare/(?P<spec>.+)", self._compare, "token", True),
        ]

    def _installation_repos(self, req: Request) -> Response:
        repos = [self._repo_json(req.base_url, r) for r in self._all_repos()]
        page, headers = paginate(req, repos, default=30, maximum=100)
        body = {"total_count": len(repos), "repository_selection": "all", "repositories": page}
        return Response.json(200, body, headers)

    def _get_repo(self, req: Request, owner: str, repo: str) -> Response:
        return Response.json(200, self._repo_json(req.base_url, self._repo(owner, repo)))

    def _branch_json(self, u: Urls, repo: GitRepo, name: str, sha: str) -> dict[str, Any]:
        return {
            "name": name,
            "commit": self._commit_json(u, repo.commit(sha)),
            "_links": {"self": f"{u.api}/branches/{quote(name)}", "html": f"{u.html}/tree/{quote(name)}"},
            "protected": False,
            "protection": {
                "enabled": False,
                "required_status_checks": {"enforcement_level": "off", "contexts": [], "checks": []},
            },
            "protection_url": f"{u.api}/branches/{quote(name)}/protection",
        }

    def _get_branch(self, req: Request, owner: str, repo: str, branch: str) -> Response:
        r = self._repo(owner, repo)
        sha = r.branch_sha(branch)
        if sha is None:
            raise not_found("Branch not found")
        return Response.json(200, self._branch_json(Urls(req.base_url, r.owner, r.name), r, branch, sha))

    def _list_branches(self, req: Request, owner: str, repo: str) -> Response:
        r = self._repo(owner, repo)
        u = Urls(req.base_url, r.owner, r.name)
        rows = r.refs("refs/heads/")
        page, headers = paginate(req, rows, default=30, maximum=100)
        body = [
            {
                "name": name.removeprefix("refs/heads/"),
                "commit": {"sha": sha, "url": f"{u.api}/commits/{sha}"},
                "protected": False,
            }
            for name, sha, _ in page
        ]
        return Response.json(200, body, headers)

    def _get_commit(self, req: Request, owner: str, repo: str, ref: str) -> Response:
        r = self._repo(owner, repo)
        sha = r.resolve(ref)
        if sha is None:  # GitHub answers 422, not 404, for a ref or sha it cannot find here
            return gh_error(422, f"No commit found for SHA: {ref}")
        c = r.commit(sha)
        u = Urls(req.base_url, r.owner, r.name)
        changes = r.diff(c.parents[0] if c.parents else None, sha)[:3000]  # GitHub lists at most 3000
        files, headers = paginate(req, changes, default=300, maximum=300)
        body = self._commit_json(u, c)
        additions = sum(f.additions for f in changes)
        deletions = sum(f.deletions for f in changes)
        body["stats"] = {"total": additions + deletions, "additions": additions, "deletions": deletions}
        body["files"] = [self._file_json(u, sha, f) for f in files]
        return Response.json(200, body, headers)

    def _list_commits(self, req: Request, owner: str, repo: str) -> Response:
        r = self._repo(owner, repo)
        ref = req.query.get("sha") or r.default_branch()
        sha = self._resolve(r, ref)
        path = req.query.get("path") or None
        shas = r.rev_list(sha, path=path)
        page, headers = paginate(req, shas, default=30, maximum=100)
        u = Urls(req.base_url, r.owner, r.name)
        return Response.json(200, [self._commit_json(u, r.commit(s)) for s in page], headers)

    def _get_git_commit(self, req: Request, owner: str, repo: str, sha: str) -> Response:
        r = self._repo(owner, repo)
        if not SHA_RE.match(sha):
            raise not_found()
        return Response.json(200, self._git_commit_json(Urls(req.base_url, r.owner, r.name), r.commit(sha)))

    def _compare(self, req: Request, owner: str, repo: str, spec: str) -> Response:
        r = self._repo(owner, repo)
        three_dot = "..." in spec
        base_ref, sep, head_ref = spec.partition("..." if three_dot else "..")
        if not sep:
            raise not_found()
        base_sha = self._resolve(r, base_ref)
        head_sha = self._resolve(r, head_ref)
        merge_base = r.merge_base(base_sha, head_sha)
        if merge_base is None:
            raise not_found(f"No common ancestor between {base_ref} and {head_ref}.")
        ahead = r.range_commits(base_sha, head_sha)
        behind_by = len(r.range_commits(head_sha, base_sha))
        u = Urls(req.base_url, r.owner, r.name)
        changes = r.diff(merge_base if three_dot else base_sha, head_sha)
        page, headers = paginate(req, ahead, default=250, maximum=1000)
        body = {
            "url": f"{u.api}/compare/{quote(base_ref)}...{quote(head_ref)}",
            "html_url": f"{u.html}/compare/{quote(base_ref)}...{quote(head_ref)}",
            "permalink_url": f"{u.html}/compare/{base_sha}...{head_sha}",
            "diff_url": f"{u.html}/compare/{quote(base_ref)}...{quote(head_ref)}.diff",
            "patch_url": f"{u.html}/compare/{quote(base_ref)}...{quote(head_ref)}.patch",
            "base_commit": self._commit_json(u, r.commit(base_sha)),
            "merge_base_commit": self._commit_json(u, r.commit(merge_base)),
            "status": _compare_status(len(ahead), behind_by),
            "ahead_by": len(ahead),
            "behind_by": behind_by,
            "total_commits": len(ahead),
            "commits": [self._commit_json(u, r.commit(s)) for s in page],
            "files": [self._file_json(u, head_sha, f) for f in changes[:300]],  # GitHub's cap
        }
        return Response.json(200, body, headers)


def _compare_status(ahead: int, behind: int) -> str:
    if ahead and behind:
        return "diverged"
    if ahead:
        return "ahead"
    return "behind" if behind else "identical"
