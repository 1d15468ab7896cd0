"""Git trees, recursive or not."""

from __future__ import annotations

from typing import Any

from emulators.github.common import REPO, Route, Urls, not_found
from emulators.github.gitrepo import TreeEntry
from emulators.httpbase import Request, Response


class Trees:
    """Mixin: the git-trees family."""

    def tree_routes(self) -> list[Route]:
        return [("GET", REPO + r"/git/trees/(?P<sha>.+)", self._get_tree, "token", True)]

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
        body = {
            "sha": tree_sha,
            "url": u.git("trees", tree_sha),
            "tree": [self._tree_entry_json(u, e) for e in entries],
            "truncated": False,
        }
        return Response.json(200, body)
