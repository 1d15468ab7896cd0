"""Git references: one ref, a prefix listing, matching refs."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from emulators.github.common import REPO, Route, Urls, node_id, not_found, safe_ref
from emulators.github.gitrepo import GitRepo
from emulators.httpbase import Request, Response


class Refs:
    """Mixin: the git-refs family."""

    def ref_routes(self) -> list[Route]:
        return [
            ("GET", REPO + r"/git/ref/(?P<ref>.+)", self._get_git_ref, "token", True),
            ("GET", REPO + r"/git/refs(?:/(?P<ref>.+))?", self._get_git_refs, "token", True),
            ("GET", REPO + r"/git/matching-refs/(?P<ref>.*)", self._matching_refs, "token", True),
        ]

    def _ref_json(self, u: Urls, name: str, sha: str, kind: str) -> dict[str, Any]:
        obj_kind = "tags" if kind == "tag" else "commits"
        return {
            "ref": name,
            "node_id": node_id("REF", f"{u.owner}/{u.name}:{name}"),
            "url": f"{u.api}/git/{quote(name)}",
            "object": {"sha": sha, "type": kind, "url": u.git(obj_kind, sha)},
        }

    def _matching(self, r: GitRepo, ref: str, exact: bool) -> list[tuple[str, str, str]]:
        full = "refs/" + ref.lstrip("/")
        if not safe_ref(full):
            return []
        rows = r.refs()
        if exact:
            return [row for row in rows if row[0] == full]
        return [row for row in rows if row[0].startswith(full)]

    def _get_git_ref(self, req: Request, owner: str, repo: str, ref: str) -> Response:
        r = self._repo(owner, repo)
        rows = self._matching(r, ref, exact=True)
        if not rows:
            raise not_found()
        return Response.json(200, self._ref_json(Urls(req.base_url, r.owner, r.name), *rows[0]))

    def _get_git_refs(self, req: Request, owner: str, repo: str, ref: str | None) -> Response:
        """An exact ref answers the object, a prefix (whole components) the list, as GitHub does."""
        r = self._repo(owner, repo)
        u = Urls(req.base_url, r.owner, r.name)
        exact = self._matching(r, ref or "", exact=True) if ref else []
        if exact:
            return Response.json(200, self._ref_json(u, *exact[0]))
        prefix = "refs/" + (ref or "").strip("/")
        rows = [row for row in r.refs() if row[0] == prefix or row[0].startswith(prefix.rstrip("/") + "/")]
        if not rows:
            raise not_found()
        return Response.json(200, [self._ref_json(u, *row) for row in rows])

    def _matching_refs(self, req: Request, owner: str, repo: str, ref: str) -> Response:
        r = self._repo(owner, repo)
        u = Urls(req.base_url, r.owner, r.name)
        return Response.json(200, [self._ref_json(u, *row) for row in self._matching(r, ref, exact=False)])
