"""The admin API for repositories: create one, commit files to one (on any branch), move a branch (a
force-push)."""

from __future__ import annotations

from typing import Any

from emulators.github.common import gh_error, json_body, safe_ref, valid_name
from emulators.github.gitrepo import GitRepo, commit_files, commit_to_branch, run_git
from emulators.httpbase import Request, Response


class RepoAdmin:
    """Mixin: repositories through the admin API."""

    def repo_admin_routes(self) -> list[tuple[str, str, Any]]:
        return [
            ("POST", r"/_admin/repos", self._admin_create_repo),
            ("POST", r"/_admin/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/commits", self._admin_commit),
            (
                "PUT",
                r"/_admin/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/branches/(?P<branch>.+)",
                self._admin_move,
            ),
        ]

    def _admin_move(self, req: Request, owner: str, name: str, branch: str) -> Response:
        """Point `branch` at any commit of the repository, as a force-push does."""
        repo = self._repo(owner, name)
        sha = repo.resolve(str(json_body(req).get("sha") or ""))
        if sha is None or not safe_ref(branch):
            return gh_error(400, "sha must name a commit of the repository and the branch a valid name")
        if branch == repo.default_branch():  # the checked-out branch: the work tree follows it
            run_git(repo.path, "reset", "-q", "--hard", sha)
        else:
            run_git(repo.path, "update-ref", f"refs/heads/{branch}", sha)
        self._pushed(repo, branch)
        return Response.json(200, {"branch": branch, "sha": sha})

    def _pushed(self, repo: GitRepo, branch: str) -> None:
        """A branch moved (a commit or a force-push): families that follow branches extend this."""

    def _admin_create_repo(self, req: Request) -> Response:
        spec = json_body(req)
        owner, name = str(spec.get("owner", "")), str(spec.get("name", ""))
        branch = str(spec.get("default_branch") or "main")
        if not valid_name(owner) or not valid_name(name) or not safe_ref(branch):
            return gh_error(400, "owner, name and default_branch must be valid GitHub names")
        if not isinstance(spec.get("files") or {}, dict):
            return gh_error(400, "files must be an object {path: text}")
        path = self.repos_root / owner / name
        if path.exists():
            return gh_error(409, f"{owner}/{name} already exists", path=str(path))
        path.mkdir(parents=True)
        run_git(path, "init", "-q", "-b", branch)
        for key, value in (("user.name", "SynosCD Test"), ("user.email", "test@synoscd.invalid")):
            run_git(path, "config", key, value)
        run_git(path, "config", "commit.gpgsign", "false")
        head = commit_files(path, spec.get("files") or {}, str(spec.get("message") or "Initial commit"))
        body = {"path": str(path), "full_name": f"{owner}/{name}", "default_branch": branch, "head": head}
        return Response.json(201, body)

    def _admin_commit(self, req: Request, owner: str, name: str) -> Response:
        spec = json_body(req)
        repo = self._repo(owner, name)
        files = spec.get("files") or {}
        if not isinstance(files, dict):
            return gh_error(400, "files must be an object {path: text | null}")
        message = str(spec.get("message") or "Update files")
        branch = str(spec.get("branch") or repo.default_branch())
        if branch == repo.default_branch():  # the checked-out branch: the work tree follows it
            sha = commit_files(repo.path, files, message)
        else:  # any other branch (a pull request's head), from `from` when it is new
            start = repo.resolve(str(spec.get("from") or repo.default_branch()))
            if start is None:
                return gh_error(400, "from must name a commit or branch of the repository")
            sha = commit_to_branch(repo.path, branch, files, message, start)
        self._pushed(repo, branch)
        return Response.json(201, {"sha": sha, "branch": branch})
