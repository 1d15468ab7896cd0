"""Git trees, recursive or not, truncated above a configurable entry count as GitHub truncates them
(100,000 entries or 7 MB for a recursive listing); `PUT /_admin/trees {"max_entries": n}` lowers the
limit so clients' handling of `truncated: true` can be tested."""

from __future__ import annotations

from typing import Any

from emulators.github.common import REPO, SHA_RE, Route, Urls, gh_error, json_body, not_found
from emulators.github.gitrepo import TreeEntry
from emulators.httpbase import Request, Response

GITHUB_TREE_LIMIT = 100_000


class Trees:
    """Mixin: the git-trees family."""

    def _init_state(self) -> None:
        super()._init_state()  # type: ignore[misc]
        self._tree_max_entries = GITHUB_TREE_LIMIT

    def tree_routes(self) -> list[Route]:
        return [("GET", REPO + r"/git/trees/(?P<sha>.+)", self._get_tree, "token", True)]

    def tree_admin_routes(self) -> list[tuple[str, str, Any]]:
        return [("PUT", r"/_admin/trees", self._admin_set_trees)]

    def _tree_entry_json(self, u: Urls, e: TreeEntry) -> dict[str, Any]:
        out: dict[str, Any] = {"path": e.path, "mode": e.mode, "type": e.type, "sha": e.sha}
        if e.type == "blob":
            out["size"] = e.size
            out["url"] = u.git("blobs", e.sha)
        elif e.type == "tree":
            out["url"] = u.git("trees", e.sha)
        return out

    def _get_tree(self, req: Request, owner: str, repo: str, sha: str) -> Response:
        r = self._repo(owner, repo)
        tree_sha = r.resolve(sha, kind="tree")
        if tree_sha is None:
            raise not_found()
        recursive = "recursive" in req.query  # any value turns recursion on, as at GitHub
        u = Urls(req.base_url, r.owner, r.name)
        entries = r.tree(tree_sha, recursive)
        truncated = len(entries) > self._tree_max_entries
        # GitHub echoes the sha it was asked for (a commit's sha stays a commit's sha), not the tree's.
        echoed = sha.lower() if SHA_RE.match(sha.lower()) else tree_sha
        body = {
            "sha": echoed,
            "url": u.git("trees", echoed),
            "tree": [self._tree_entry_json(u, e) for e in entries[: self._tree_max_entries]],
            "truncated": truncated,
        }
        return Response.json(200, body)

    def _admin_set_trees(self, req: Request) -> Response:
        spec = json_body(req)
        value = spec.get("max_entries")
        if value is not None and (not isinstance(value, int) or value < 0):
            return gh_error(400, "max_entries must be a non-negative integer or null (GitHub's 100,000)")
        self._tree_max_entries = GITHUB_TREE_LIMIT if value is None else value
        return Response.json(200, {"max_entries": self._tree_max_entries})
