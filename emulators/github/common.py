"""What every GitHub resource family shares: constants, GitHub's error shape, ids, ETags, request
parsing, URL building and pagination."""

from __future__ import annotations

import base64
import hashlib
import math
import re
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from emulators.httpbase import HttpError, Request, Response

DOCS_URL = "https://docs.github.com/rest"
ZERO_SHA = "0" * 40
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # the empty tree's sha-1, present in every repo
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
MSG_SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {rid}."
)
STATUS_STATES = ("error", "failure", "pending", "success")
# What the installation is granted (SynosCD's App, docs/operations.md): read the ops repository, write
# commit statuses and check runs, receive pull_request events.
DEFAULT_PERMISSIONS = {
    "checks": "write",
    "contents": "read",
    "metadata": "read",
    "pull_requests": "read",
    "statuses": "write",
}
# The events the App subscribes to (check_run and check_suite come with checks: write).
APP_EVENTS = ["check_run", "check_suite", "pull_request", "push"]
PERMISSION_LEVELS = {"read": 1, "write": 2, "admin": 3}
MSG_NOT_ACCESSIBLE = "Resource not accessible by integration"
FILE_STATUS = {"A": "added", "D": "removed", "M": "modified", "R": "renamed", "C": "copied", "T": "changed"}

Route = tuple[str, str, Any, str, bool]  # method, pattern, handler, auth ("token" | "jwt"), counted


def gh_error(status: int, message: str, **extra: Any) -> Response:
    """An error in GitHub's shape: message, documentation_url and the status as a string."""
    body = {"message": message, **extra, "documentation_url": DOCS_URL, "status": str(status)}
    return Response.json(status, body)


def not_found(message: str = "Not Found") -> HttpError:
    return HttpError(gh_error(404, message))


def stable_id(key: str) -> int:
    return zlib.crc32(key.encode("utf-8")) & 0x7FFFFFFF or 1


def node_id(kind: str, key: str) -> str:
    return base64.b64encode(f"{kind}:{key}".encode()).decode("ascii").rstrip("=")


def iso_utc(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def b64_lines(data: bytes) -> str:
    """Base64 with a newline after every 60 characters, as GitHub sends blob and file content."""
    text = base64.b64encode(data).decode("ascii")
    return "".join(text[i : i + 60] + "\n" for i in range(0, len(text), 60))


def etag_for(credential: str, body: bytes, weak: bool = True) -> str:
    """GitHub answers reads with weak ETags (`W/"..."`) and creations with strong ones. They differ per
    token (Vary: Authorization), so the credential is part of the hash."""
    digest = '"' + hashlib.sha256(credential.encode("utf-8") + b"\0" + body).hexdigest() + '"'
    return "W/" + digest if weak else digest


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    wanted = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == wanted:
            return True
    return False


def json_body(req: Request) -> dict[str, Any]:
    """The request's JSON object, or GitHub's 400 for anything that is not one."""
    try:
        data = req.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError(gh_error(400, "Problems parsing JSON")) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise HttpError(gh_error(400, "Problems parsing JSON"))
    return data


def safe_ref(ref: str, allow_path: bool = False) -> bool:
    """Refs as GitHub accepts them: names or shas, no git revision arithmetic and no options."""
    if not ref or ref.startswith("-") or len(ref) > 255:
        return False
    if any(ch.isspace() or ord(ch) < 32 for ch in ref) or any(s in ref for s in ("..", "@{", "~", "^", "\\")):
        return False
    return allow_path or ":" not in ref


def int_param(req: Request, name: str, default: int, maximum: int) -> int:
    try:
        value = int(req.query.get(name, default))
    except ValueError:
        value = default
    return max(1, min(value, maximum))


@contextmanager
def released(lock: Any) -> Iterator[None]:
    """Drop the base's handler lock while waiting on something slow (a webhook receiver may call back)."""
    try:
        lock.release()
    except RuntimeError:  # not held by this thread: nothing to drop
        yield
        return
    try:
        yield
    finally:
        lock.acquire()


def valid_name(name: str) -> bool:
    return bool(NAME_RE.match(name)) and name not in (".", "..") and not name.lower().endswith(".git")


@dataclass(frozen=True)
class Urls:
    """Every url-style field is built from the base URL the request came in on."""

    base: str
    owner: str
    name: str

    @property
    def api(self) -> str:
        return f"{self.base}/repos/{self.owner}/{self.name}"

    @property
    def html(self) -> str:
        return f"{self.base}/{self.owner}/{self.name}"

    def git(self, kind: str, sha: str) -> str:
        return f"{self.api}/git/{kind}/{sha}"


def paginate(req: Request, items: list[Any], default: int, maximum: int) -> tuple[list[Any], dict[str, str]]:
    """One page of `items` and GitHub's Link header (first/prev/next/last) when there are more."""
    per_page = int_param(req, "per_page", default, maximum)
    page = int_param(req, "page", 1, 10**6)
    last = max(1, math.ceil(len(items) / per_page))
    chunk = items[(page - 1) * per_page : page * per_page]
    if last == 1:
        return chunk, {}

    def link(n: int, rel: str) -> str:
        query = urlencode({**req.query, "page": n, "per_page": per_page})
        return f'<{req.base_url}{req.path}?{query}>; rel="{rel}"'

    links = []
    if page > 1:
        links += [link(page - 1, "prev"), link(1, "first")]
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    return chunk, {"Link": ", ".join(links)} if links else {}
