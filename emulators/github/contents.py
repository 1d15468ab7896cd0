"""The contents API and the downloads GitHub serves from other hosts (codeload tarballs, raw files),
here under `/_codeload/...` and `/_raw/...`."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from emulators.github.common import REPO, Route, Urls, b64_lines, etag_matches, not_found
from emulators.github.gitrepo import GitRepo, TreeEntry
from emulators.httpbase import Request, Response

CONTENTS_MAX_INLINE = 1024 * 1024  # the contents API inlines files up to 1 MB
ARCHIVES = {"tarball": ("tar.gz", "application/x-gzip"), "zipball": ("zip", "application/zip")}


class Contents:
    """Mixin: contents, archives and raw downloads."""

    def contents_routes(self) -> list[Route]:
        return [
            ("GET", REPO + r"/contents(?:/(?P<path>.*))?", self._get_contents, "token", True),
            ("GET", REPO + r"/(?P<fmt>tarball|zipball)(?:/(?P<ref>.+))?", self._archive_link, "token", True),
        ]

    def download_routes(self) -> list[tuple[str, Any]]:
        return [
            (
                r"/_codeload/(?P<owner>[^/]+)/(?P<repo>[^/]+)/legacy\.(?P<ext>tar\.gz|zip)/(?P<sha>[0-9a-f]{40})",
                self._codeload,
            ),
            (r"/_raw/(?P<owner>[^/]+)/(?P<repo>[^/]+)/(?P<sha>[0-9a-f]{40})/(?P<path>.+)", self._raw),
        ]

    def _get_contents(self, req: Request, owner: str, repo: str, path: str | None) -> Response:
        r = self._repo(owner, repo)
        ref = req.query.get("ref") or r.default_branch()
        sha = self._resolve(r, ref, f"No commit found for the ref {ref}")
        index = r.index(r.commit(sha).tree)
        path = (path or "").strip("/")
        u = Urls(req.base_url, r.owner, r.name)
        if path and path not in index.entries:
            raise not_found()
        entry = index.entries.get(path)
        if entry is None or entry.type == "tree":
            listing = [
                self._content_json(u, r, ref, sha, e, inline=False) for e in index.children.get(path, [])
            ]
            return Response.json(200, listing)
        return Response.json(200, self._content_json(u, r, ref, sha, entry, inline=True))

    def _content_json(
        self, u: Urls, r: GitRepo, ref: str, commit: str, e: TreeEntry, inline: bool
    ) -> dict[str, Any]:
        kind = {"tree": "dir", "commit": "submodule"}.get(e.type, "symlink" if e.mode == "120000" else "file")
        qpath = quote(e.path)
        git_url = u.git("trees" if e.type == "tree" else "blobs", e.sha) if e.type != "commit" else None
        download = None
        if kind in ("file", "symlink"):
            download = f"{u.base}/_raw/{u.owner}/{u.name}/{commit}/{qpath}?token={self._download_token}"
        out: dict[str, Any] = {
            "type": kind,
            "size": e.size or 0,
            "name": PurePosixPath(e.path).name,
            "path": e.path,
            "sha": e.sha,
            "url": f"{u.api}/contents/{qpath}?ref={quote(ref, safe='')}",
            "git_url": git_url,
            "html_url": f"{u.html}/{'tree' if kind == 'dir' else 'blob'}/{quote(ref)}/{qpath}",
            "download_url": download,
        }
        out["_links"] = {"self": out["url"], "git": git_url, "html": out["html_url"]}
        if inline and kind in ("file", "symlink"):
            data = r.blob(e.sha) or b""
            big = len(data) > CONTENTS_MAX_INLINE
            out["content"] = "" if big else b64_lines(data)
            out["encoding"] = "none" if big else "base64"
            if kind == "symlink":
                out["target"] = data.decode("utf-8", "replace")
        if kind == "submodule":
            out["submodule_git_url"] = None
        return out

    def _archive_link(self, req: Request, owner: str, repo: str, fmt: str, ref: str | None) -> Response:
        r = self._repo(owner, repo)
        sha = self._resolve(r, ref or r.default_branch())
        ext = ARCHIVES[fmt][0]
        location = (
            f"{req.base_url}/_codeload/{r.owner}/{r.name}/legacy.{ext}/{sha}?token={self._download_token}"
        )
        return Response.empty(302, {"Location": location, "Content-Type": "text/html;charset=utf-8"})

    def _codeload(self, req: Request, owner: str, repo: str, ext: str, sha: str) -> Response:
        r = self._repo(owner, repo)
        fmt = "tar.gz" if ext == "tar.gz" else "zip"
        r.commit(sha)  # 404 unless it is a commit of this repository
        data = r.archive(sha, "tgz" if fmt == "tar.gz" else "zip")
        ctype = ARCHIVES["tarball" if fmt == "tar.gz" else "zipball"][1]
        name = f"{r.owner}-{r.name}-{sha[:7]}.{fmt}"
        etag = f'"{sha}-{ext}"'
        if etag_matches(req.header("If-None-Match"), etag):
            return Response.empty(304, {"ETag": etag})
        headers = {"Content-Type": ctype, "Content-Disposition": f"attachment; filename={name}", "ETag": etag}
        return Response(200, data, headers)

    def _raw(self, req: Request, owner: str, repo: str, sha: str, path: str) -> Response:
        r = self._repo(owner, repo)
        entry = r.index(r.commit(sha).tree).entries.get(path)
        data = r.blob(entry.sha) if entry is not None and entry.type == "blob" else None
        if data is None:
            raise not_found()
        return Response(200, data, {"Content-Type": "text/plain; charset=utf-8", "ETag": f'"{entry.sha}"'})
