"""Git blobs (base64 content)."""

from __future__ import annotations

from emulators.github.common import REPO, Route, Urls, b64_lines, node_id, not_found
from emulators.httpbase import Request, Response


class Blobs:
    """Mixin: the git-blobs family."""

    def blob_routes(self) -> list[Route]:
        return [("GET", REPO + r"/git/blobs/(?P<sha>[^/]+)", self._get_blob, "token", True)]

    def _get_blob(self, req: Request, owner: str, repo: str, sha: str) -> Response:
        r = self._repo(owner, repo)
        data = r.blob(sha)
        if data is None:
            raise not_found()
        body = {
            "sha": sha,
            "node_id": node_id("B", sha),
            "size": len(data),
            "url": Urls(req.base_url, r.owner, r.name).git("blobs", sha),
            "content": b64_lines(data),
            "encoding": "base64",
        }
        return Response.json(200, body)
