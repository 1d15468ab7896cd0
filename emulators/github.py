"""A GitHub REST API stand-in backed by real local git repositories.

`repos_root/<owner>/<name>` is an ordinary git work tree; the stand-in serves what is committed there
(read with `git` subprocesses, cached by object sha because objects never change) in the shapes
api.github.com answers, so PyGithub runs unchanged against it. It also plays the GitHub App side:
JWT-authenticated installation tokens, primary and secondary rate limits, conditional requests
(ETag / If-None-Match, a 304 is free), commit statuses, tarballs and webhook deliveries.

Admin API (in addition to the base's reset/calls/faults/latency):
  POST /_admin/repos                     {"owner", "name", "default_branch"?, "files"?: {path: text},
                                          "message"?} -> 201 {"path", "full_name", "default_branch", "head"}
  POST /_admin/repos/{owner}/{name}/commits
                                         {"files": {path: text | null (delete)}, "message"?} -> 201 {"sha"}
  POST /_admin/tokens/expire             {"token"?} -> {"expired": n}   (all installation tokens by default)
  GET  /_admin/ratelimit                 -> the rate-limit state
  PUT  /_admin/ratelimit                 {"remaining"?, "limit"?, "reset_in"?, "secondary"?: bool,
                                          "secondary_status"?: 403|429, "retry_after"?: s,
                                          "secondary_count"?: n} -> the rate-limit state
  POST /_admin/webhooks/deliver          {"url", "secret"?, "event": "push"|"ping", "owner"?, "name"?,
                                          "ref"?, "before"?, "after"?, "delivery_id"?, "hook_id"?,
                                          "payload"?} -> {"delivery_id", "status", "body", ...}
  GET  /_admin/webhooks/deliveries       -> {"deliveries": [...]}

Downloads GitHub serves from other hosts live here under `/_codeload/...` (tarball/zipball redirects)
and `/_raw/...` (contents `download_url`), authorised by a `?token=` in the link or an installation token.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import string
import subprocess
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote, unquote, urlencode

import jwt
import requests
from cryptography.hazmat.primitives import serialization

from emulators.httpbase import Emulator, Fault, HttpError, Request, Response

DOCS_URL = "https://docs.github.com/rest"
ZERO_SHA = "0" * 40
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"  # the empty tree's sha-1, present in every repo
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
REPO = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"

JWT_LEEWAY = 60  # GitHub tolerates about a minute of clock drift
JWT_MAX_LIFETIME = 600
MSG_JWT_DECODE = "A JSON web token could not be decoded"
MSG_JWT_EXP = (
    "'Expiration time' claim ('exp') must be a numeric value representing the future time at which "
    "the assertion expires"
)
MSG_JWT_EXP_FAR = "'Expiration time' claim ('exp') is too far in the future"
MSG_JWT_IAT = (
    "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued"
)
MSG_JWT_ISS = "'Issuer' claim ('iss') must be an Integer"
MSG_SECONDARY = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {rid}."
)
STATUS_STATES = ("error", "failure", "pending", "success")
DEFAULT_PERMISSIONS = {"contents": "read", "metadata": "read", "statuses": "write"}
CONTENTS_MAX_INLINE = 1024 * 1024  # the contents API inlines files up to 1 MB
BLOB_CACHE_BYTES = 256 * 1024 * 1024
FILE_STATUS = {"A": "added", "D": "removed", "M": "modified", "R": "renamed", "C": "copied", "T": "changed"}
ARCHIVES = {"tarball": ("tar.gz", "application/x-gzip"), "zipball": ("zip", "application/zip")}


# -- small helpers ------------------------------------------------------------------------------


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


def etag_for(credential: str, body: bytes) -> str:
    # GitHub's ETags differ per token (Vary: Authorization), so the credential is part of the hash.
    return '"' + hashlib.sha256(credential.encode("utf-8") + b"\0" + body).hexdigest() + '"'


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


# -- git access ---------------------------------------------------------------------------------


def _git_env() -> dict[str, str]:
    """A fixed environment: no user or system config, C locale, never prompt."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.devnull,
        "LC_ALL": "C",
        "LANG": "C",
        "TZ": "UTC",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
    }


GIT_ENV = _git_env()


class GitError(Exception):
    pass


def run_git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        ["git", "-c", "safe.directory=*", "-c", "core.quotepath=off", *args],
        cwd=cwd,
        env=GIT_ENV,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {proc.stderr.decode('utf-8', 'replace').strip()}")
    return proc


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    epoch: int
    tz: str  # "+0100"

    @classmethod
    def parse(cls, line: str) -> Person:
        m = re.match(r"^(.*?) ?<(.*)> (\d+) ([+-]\d{4})$", line)
        if not m:
            return cls(line, "", 0, "+0000")
        return cls(m.group(1), m.group(2), int(m.group(3)), m.group(4))

    def iso_local(self) -> str:
        sign = -1 if self.tz.startswith("-") else 1
        offset = dt.timedelta(hours=int(self.tz[1:3]), minutes=int(self.tz[3:5])) * sign
        return dt.datetime.fromtimestamp(self.epoch, dt.timezone(offset)).isoformat()

    def rest(self) -> dict[str, str]:
        return {"name": self.name, "email": self.email, "date": iso_utc(self.epoch)}


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Person
    committer: Person
    message: str


@dataclass(frozen=True)
class TreeEntry:
    path: str
    mode: str
    type: str  # blob | tree | commit
    sha: str
    size: int | None


@dataclass(frozen=True)
class FileChange:
    status: str  # git letter: A M D R C T
    path: str
    previous_path: str | None
    old_sha: str
    new_sha: str
    additions: int
    deletions: int


@dataclass
class TreeIndex:
    entries: dict[str, TreeEntry]
    children: dict[str, list[TreeEntry]]


class GitRepo:
    """Read access to one work tree's committed objects; immutable objects are cached by sha."""

    def __init__(self, path: Path, owner: str, name: str) -> None:
        self.path = path
        self.owner = owner
        self.name = name
        self._commits: dict[str, CommitInfo] = {}
        self._trees: dict[tuple[str, bool], list[TreeEntry]] = {}
        self._indexes: dict[str, TreeIndex] = {}
        self._blobs: dict[str, bytes] = {}
        self._blob_bytes = 0
        self._diffs: dict[tuple[str, str, bool], list[FileChange]] = {}
        self._archives: dict[tuple[str, str], bytes] = {}
        self._ranges: dict[tuple[str, str], list[str]] = {}

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def git(self, *args: str) -> bytes:
        return run_git(self.path, *args).stdout

    def try_git(self, *args: str) -> bytes | None:
        proc = run_git(self.path, *args, check=False)
        return proc.stdout if proc.returncode == 0 else None

    # -- names ------------------------------------------------------------------------------
    def default_branch(self) -> str:
        # Reading .git/HEAD saves a subprocess on the hottest path (every repository answer).
        head = self.path / ".git" / "HEAD"
        try:
            text = head.read_text("utf-8").strip()
        except OSError:
            text = ""
        if text.startswith("ref: refs/heads/"):
            return text.removeprefix("ref: refs/heads/")
        out = self.try_git("symbolic-ref", "--short", "-q", "HEAD")
        return out.decode().strip() if out else "main"

    def resolve(self, ref: str, kind: str = "commit") -> str | None:
        """The sha of `ref` peeled to `kind` (commit or tree), or None."""
        if not safe_ref(ref, allow_path=kind == "tree"):
            return None
        if kind == "commit" and ref in self._commits:
            return ref
        if kind == "tree" and (ref, True) in self._trees:
            return ref
        if ":" in ref:  # "main:dir" names a subtree; a ^{tree} suffix would join the path
            out = self.try_git("rev-parse", "--verify", "--quiet", "--end-of-options", ref)
            sha = out.decode().strip() if out else ""
            kind_out = self.try_git("cat-file", "-t", sha) if SHA_RE.match(sha) else None
            return sha if kind_out is not None and kind_out.decode().strip() == "tree" else None
        out = self.try_git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{{kind}}}")
        sha = out.decode().strip() if out else ""
        return sha if SHA_RE.match(sha) else None

    def branch_sha(self, branch: str) -> str | None:
        if not safe_ref(branch):
            return None
        return self.resolve(f"refs/heads/{branch}")

    def refs(self, prefix: str = "refs/") -> list[tuple[str, str, str]]:
        """(refname, sha, object type) of refs under `prefix` (whole path components)."""
        out = self.git("for-each-ref", "--format=%(refname)%00%(objectname)%00%(objecttype)", prefix)
        rows = []
        for line in out.decode("utf-8", "replace").splitlines():
            name, sha, kind = line.split("\0")
            rows.append((name, sha, kind))
        return rows

    # -- objects ----------------------------------------------------------------------------
    def commit(self, sha: str) -> CommitInfo:
        cached = self._commits.get(sha)
        if cached is not None:
            return cached
        raw = self.try_git("cat-file", "commit", sha)
        if raw is None:
            raise not_found()
        info = self._parse_commit(sha, raw.decode("utf-8", "replace"))
        self._commits[sha] = info
        return info

    @staticmethod
    def _parse_commit(sha: str, text: str) -> CommitInfo:
        header, _, message = text.partition("\n\n")
        fields: dict[str, list[str]] = {}
        for line in header.split("\n"):
            if line.startswith(" "):
                continue  # continuation of a multi-line header (gpgsig, mergetag)
            key, _, value = line.partition(" ")
            fields.setdefault(key, []).append(value)
        return CommitInfo(
            sha=sha,
            tree=fields["tree"][0],
            parents=tuple(fields.get("parent", [])),
            author=Person.parse(fields.get("author", [""])[0]),
            committer=Person.parse(fields.get("committer", [""])[0]),
            message=message.rstrip("\n"),
        )

    def tree(self, sha: str, recursive: bool) -> list[TreeEntry]:
        key = (sha, recursive)
        cached = self._trees.get(key)
        if cached is not None:
            return cached
        args = ["ls-tree", "-l", "-z", *(["-r", "-t"] if recursive else []), sha]
        out = self.try_git(*args)
        if out is None:
            raise not_found()
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            mode, kind, obj, size = meta.decode("ascii").split()
            entries.append(
                TreeEntry(
                    path.decode("utf-8", "replace"), mode, kind, obj, None if size == "-" else int(size)
                )
            )
        self._trees[key] = entries
        if recursive:
            self.prefetch([e.sha for e in entries if e.type == "blob" and (e.size or 0) < 1 << 20])
        return entries

    def prefetch(self, shas: list[str]) -> None:
        """Read many blobs with one `git cat-file --batch`: clients that list a tree read its blobs
        next, and one git process per blob would make the stand-in, not the client, the bottleneck."""
        missing = [sha for sha in dict.fromkeys(shas) if sha not in self._blobs and SHA_RE.match(sha)]
        if not missing:
            return
        proc = subprocess.run(
            ["git", "-c", "safe.directory=*", "cat-file", "--batch"],
            cwd=self.path,
            env=GIT_ENV,
            input=("\n".join(missing) + "\n").encode(),
            capture_output=True,
            timeout=60,
            check=False,
        )
        out, pos = proc.stdout, 0
        for sha in missing:
            end = out.find(b"\n", pos)
            if end < 0:
                return
            header = out[pos:end].split()
            if len(header) < 3:  # "<sha> missing"
                pos = end + 1
                continue
            size = int(header[2])
            if header[1] == b"blob":
                self._remember_blob(sha, out[end + 1 : end + 1 + size])
            pos = end + 1 + size + 1

    def index(self, tree_sha: str) -> TreeIndex:
        """Path -> entry and directory -> children of a root tree, for the contents API."""
        cached = self._indexes.get(tree_sha)
        if cached is not None:
            return cached
        entries = self.tree(tree_sha, recursive=True)
        children: dict[str, list[TreeEntry]] = {"": []}
        for entry in entries:
            parent = entry.path.rpartition("/")[0]
            children.setdefault(parent, []).append(entry)
        index = TreeIndex({e.path: e for e in entries}, children)
        self._indexes[tree_sha] = index
        return index

    def blob(self, sha: str) -> bytes | None:
        cached = self._blobs.get(sha)
        if cached is not None:
            return cached
        if not SHA_RE.match(sha):
            return None
        data = self.try_git("cat-file", "blob", sha)
        if data is None:
            return None
        self._remember_blob(sha, data)
        return data

    def _remember_blob(self, sha: str, data: bytes) -> None:
        self._blobs[sha] = data
        self._blob_bytes += len(data)
        while self._blob_bytes > BLOB_CACHE_BYTES and len(self._blobs) > 1:
            oldest = next(iter(self._blobs))
            self._blob_bytes -= len(self._blobs.pop(oldest))

    def diff(self, old: str | None, new: str, renames: bool = True) -> list[FileChange]:
        """Changes from commit `old` (None: the empty tree) to commit `new`."""
        base = old or EMPTY_TREE
        key = (base, new, renames)
        cached = self._diffs.get(key)
        if cached is not None:
            return cached
        rename_flag = "-M" if renames else "--no-renames"
        out = self.git("diff-tree", "-r", "-z", rename_flag, "--raw", "--numstat", base, new)
        changes = self._parse_diff(out)
        self._diffs[key] = changes
        return changes

    @staticmethod
    def _parse_diff(out: bytes) -> list[FileChange]:
        """Parse `--raw --numstat -z`: raw records (":" first) then numstat records."""
        tokens = [t.decode("utf-8", "replace") for t in out.split(b"\0")]
        raw: list[tuple[str, str | None, str, str, str]] = []
        stats: dict[str, tuple[int, int]] = {}
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if not token:
                i += 1
            elif token.startswith(":"):
                _, _, old_sha, new_sha, status = token[1:].split(" ")
                if status[0] in "RC":
                    raw.append((status[0], tokens[i + 1], tokens[i + 2], old_sha, new_sha))
                    i += 3
                else:
                    raw.append((status[0], None, tokens[i + 1], old_sha, new_sha))
                    i += 2
            else:
                added, deleted, path = token.split("\t", 2)
                if not path:  # a rename: old and new paths follow
                    path = tokens[i + 2]
                    i += 2
                stats[path] = (int(added) if added.isdigit() else 0, int(deleted) if deleted.isdigit() else 0)
                i += 1
        return [
            FileChange(status, path, prev, old_sha, new_sha, *stats.get(path, (0, 0)))
            for status, prev, path, old_sha, new_sha in raw
        ]

    def rev_list(self, *spec: str, path: str | None = None) -> list[str]:
        """Commit shas of a rev-list spec, newest first."""
        args = ["rev-list", *spec, "--"] + ([path] if path else [])
        return self.git(*args).decode().split()

    def range_commits(self, base: str, head: str) -> list[str]:
        """Commits in head but not base, oldest first (immutable for shas, so cached)."""
        key = (base, head)
        if key not in self._ranges:
            self._ranges[key] = list(reversed(self.rev_list(f"{base}..{head}")))
        return self._ranges[key]

    def merge_base(self, a: str, b: str) -> str | None:
        out = self.try_git("merge-base", a, b)
        return out.decode().strip() if out else None

    def is_ancestor(self, a: str, b: str) -> bool:
        return run_git(self.path, "merge-base", "--is-ancestor", a, b, check=False).returncode == 0

    def archive(self, sha: str, fmt: str) -> bytes:
        key = (sha, fmt)
        if key not in self._archives:
            prefix = f"{self.owner}-{self.name}-{sha[:7]}/"
            self._archives[key] = self.git("archive", f"--format={fmt}", f"--prefix={prefix}", sha)
        return self._archives[key]


# -- rate limits --------------------------------------------------------------------------------


@dataclass
class RateState:
    limit: int
    remaining: int
    reset_at: int
    secondary: bool = False
    secondary_status: int = 403
    retry_after: int = 60
    secondary_count: int | None = None

    def roll(self, now: float) -> None:
        """A new window once the reset time has passed, as GitHub's hourly window does."""
        if now >= self.reset_at:
            self.remaining = self.limit
            self.reset_at = int(now) + 3600

    def core(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "reset": self.reset_at,
            "used": self.limit - self.remaining,
            "resource": "core",
        }

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.remaining),
            "x-ratelimit-reset": str(self.reset_at),
            "x-ratelimit-used": str(self.limit - self.remaining),
            "x-ratelimit-resource": "core",
        }


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


@dataclass
class Delivery:
    delivery_id: str
    event: str
    url: str
    status: int | None
    body: str
    hook_id: int
    time: float = field(default_factory=time.time)
    error: str | None = None


# -- the stand-in -------------------------------------------------------------------------------


class GitHubEmulator(Emulator):
    name = "github"

    def __init__(
        self,
        repos_root: Path,
        app_id: int,
        app_public_key_pem: bytes,
        installation_id: int,
        *,
        account_login: str = "synos-test",
        app_slug: str = "synoscd",
        token_lifetime: int = 3600,
        rate_limit: int = 5000,
    ) -> None:
        super().__init__()
        self.repos_root = Path(repos_root)
        self.repos_root.mkdir(parents=True, exist_ok=True)
        self.app_id = int(app_id)
        self.installation_id = int(installation_id)
        self.account_login = account_login
        self.app_slug = app_slug
        self.token_lifetime = token_lifetime
        self.rate_limit = rate_limit
        self._public_key = _load_public_key(app_public_key_pem)
        self._started = time.time()
        self._init_state()
        self._register_api()
        self._register_admin()

    def _init_state(self) -> None:
        self._tokens: dict[str, float] = {}  # installation token -> expiry (epoch)
        # One ?token= for codeload/raw links per state: a fresh one per answer would change every
        # contents ETag and defeat conditional requests. Reset and token expiry rotate it.
        self._download_token = secrets.token_hex(20).upper()
        self._statuses: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._status_ids = 0
        self._rate = RateState(self.rate_limit, self.rate_limit, int(time.time()) + 3600)
        self.deliveries: list[Delivery] = []
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

    # -- registration ---------------------------------------------------------------------------
    def _register_api(self) -> None:
        jwt_routes: list[tuple[str, str, Callable[..., Response]]] = [
            ("POST", r"/app/installations/(?P<inst>\d+)/access_tokens", self._create_token),
            ("GET", r"/app", self._get_app),
            ("GET", r"/app/installations", self._list_installations),
            ("GET", r"/app/installations/(?P<inst>\d+)", self._get_installation),
            ("GET", REPO + r"/installation", self._repo_installation),
        ]
        for method, pattern, handler in jwt_routes:
            self._api(method, pattern, handler, auth="jwt", counted=False)
        self._api("GET", r"/rate_limit", self._get_rate_limit, counted=False)
        token_routes: list[tuple[str, str, Callable[..., Response]]] = [
            ("GET", r"/installation/repositories", self._installation_repos),
            ("GET", REPO, self._get_repo),
            ("GET", REPO + r"/branches", self._list_branches),
            ("GET", REPO + r"/branches/(?P<branch>.+)", self._get_branch),
            # status routes come before /commits/{ref}: a ref may contain slashes
            ("GET", REPO + r"/commits/(?P<ref>.+)/statuses", self._list_statuses),
            ("GET", REPO + r"/commits/(?P<ref>.+)/status", self._combined_status),
            ("GET", REPO + r"/statuses/(?P<ref>.+)", self._list_statuses),
            ("POST", REPO + r"/statuses/(?P<sha>[^/]+)", self._create_status),
            ("GET", REPO + r"/commits", self._list_commits),
            ("GET", REPO + r"/commits/(?P<ref>.+)", self._get_commit),
            ("GET", REPO + r"/git/commits/(?P<sha>[^/]+)", self._get_git_commit),
            ("GET", REPO + r"/git/ref/(?P<ref>.+)", self._get_git_ref),
            ("GET", REPO + r"/git/refs(?:/(?P<ref>.+))?", self._get_git_refs),
            ("GET", REPO + r"/git/matching-refs/(?P<ref>.*)", self._matching_refs),
            ("GET", REPO + r"/git/trees/(?P<sha>.+)", self._get_tree),
            ("GET", REPO + r"/git/blobs/(?P<sha>[^/]+)", self._get_blob),
            ("GET", REPO + r"/contents(?:/(?P<path>.*))?", self._get_contents),
            ("GET", REPO + r"/compare/(?P<spec>.+)", self._compare),
            ("GET", REPO + r"/(?P<fmt>tarball|zipball)(?:/(?P<ref>.+))?", self._archive_link),
        ]
        for method, pattern, handler in token_routes:
            self._api(method, pattern, handler)
        # Downloads live on other hosts at GitHub (codeload, raw); here they are plain paths.
        self._download(
            r"/_codeload/(?P<owner>[^/]+)/(?P<repo>[^/]+)/legacy\.(?P<ext>tar\.gz|zip)/(?P<sha>[0-9a-f]{40})",
            self._codeload,
        )
        self._download(
            r"/_raw/(?P<owner>[^/]+)/(?P<repo>[^/]+)/(?P<sha>[0-9a-f]{40})/(?P<path>.+)", self._raw
        )

    def _register_admin(self) -> None:
        self.add_admin_route("POST", r"/_admin/repos", self._admin_create_repo)
        self.add_admin_route(
            "POST", r"/_admin/repos/(?P<owner>[^/]+)/(?P<name>[^/]+)/commits", self._admin_commit
        )
        self.add_admin_route("POST", r"/_admin/tokens/expire", self._admin_expire_tokens)
        self.add_admin_route("GET", r"/_admin/ratelimit", self._admin_get_ratelimit)
        self.add_admin_route("PUT", r"/_admin/ratelimit", self._admin_set_ratelimit)
        self.add_admin_route("POST", r"/_admin/webhooks/deliver", self._admin_deliver)
        self.add_admin_route("GET", r"/_admin/webhooks/deliveries", self._admin_deliveries)

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
        credential, failure = self._authenticate(req, auth)
        if failure is not None:
            return self._decorate(failure)
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
            if etag_matches(req.header("If-None-Match"), etag):
                return self._decorate(Response.empty(304, {"ETag": etag}))  # free: not counted
        if counted:
            self._rate.remaining = max(0, self._rate.remaining - 1)
        return self._decorate(resp)

    def _decorate(self, resp: Response) -> Response:
        resp.headers.update(self._rate.headers())
        resp.headers.setdefault("X-GitHub-Media-Type", "github.v3; format=json")
        resp.headers.setdefault("X-GitHub-Api-Version-Selected", "2022-11-28")
        resp.headers.setdefault("X-GitHub-Request-Id", uuid.uuid4().hex[:20].upper())
        resp.headers.setdefault("Vary", "Accept, Authorization, Cookie, X-GitHub-OTP")
        return resp

    def _secondary_limited(self) -> Response | None:
        rate = self._rate
        if not rate.secondary:
            return None
        if rate.secondary_count is not None:
            rate.secondary_count -= 1
            if rate.secondary_count <= 0:
                rate.secondary, rate.secondary_count = False, None
        resp = gh_error(rate.secondary_status, MSG_SECONDARY.format(rid=uuid.uuid4().hex[:16].upper()))
        resp.headers["retry-after"] = str(rate.retry_after)
        return self._decorate(resp)

    def _authenticate(self, req: Request, auth: str) -> tuple[str, Response | None]:
        scheme, _, value = (req.header("Authorization") or "").strip().partition(" ")
        value = value.strip()
        if auth == "jwt":
            if scheme.lower() != "bearer" or not value:
                return "", gh_error(401, MSG_JWT_DECODE)
            problem = self._jwt_problem(value)
            return value, (gh_error(401, problem) if problem else None)
        if scheme.lower() not in ("token", "bearer") or not value:
            return "", gh_error(401, "Requires authentication")
        expiry = self._tokens.get(value)
        if expiry is None or expiry <= time.time():
            return "", gh_error(401, "Bad credentials")
        return value, None

    def _jwt_problem(self, token: str) -> str | None:
        """GitHub's message for an app JWT it would refuse, else None."""
        try:
            claims = jwt.decode(
                token,
                self._public_key,
                algorithms=["RS256"],
                leeway=JWT_LEEWAY,
                options={"require": ["exp", "iat", "iss"]},
            )
        except (jwt.ExpiredSignatureError, jwt.ImmatureSignatureError, jwt.MissingRequiredClaimError) as exc:
            return _jwt_claim_message(exc)
        except jwt.PyJWTError:
            return MSG_JWT_DECODE
        iss = str(claims["iss"])
        if not iss.isdigit():
            return MSG_JWT_ISS
        if int(iss) != self.app_id:
            return MSG_JWT_DECODE  # another app's JWT: GitHub cannot verify it with this app's key
        if float(claims["exp"]) > time.time() + JWT_MAX_LIFETIME + JWT_LEEWAY:
            return MSG_JWT_EXP_FAR
        return None

    def _download_allowed(self, req: Request) -> bool:
        now = time.time()
        if hmac.compare_digest(req.query.get("token", ""), self._download_token):
            return True
        scheme, _, value = (req.header("Authorization") or "").partition(" ")
        return scheme.lower() in ("token", "bearer") and self._tokens.get(value.strip(), 0) > now

    # -- repositories -------------------------------------------------------------------------
    def _repo(self, owner: str, name: str) -> GitRepo:
        """The repository (names are case-insensitive at GitHub), or 404."""
        if not _valid_name(owner) or not _valid_name(name):
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

    def _tree_entry_json(self, u: Urls, e: TreeEntry) -> dict[str, Any]:
        out: dict[str, Any] = {"path": e.path, "mode": e.mode, "type": e.type, "sha": e.sha}
        if e.type == "blob":
            out["size"] = e.size
            out["url"] = u.git("blobs", e.sha)
        elif e.type == "tree":
            out["url"] = u.git("trees", e.sha)
        return out

    # -- GitHub App endpoints (JWT) -----------------------------------------------------------
    def _create_token(self, req: Request, inst: str) -> Response:
        if int(inst) != self.installation_id:
            raise not_found()
        body = json_body(req)
        token = "ghs_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(36))
        expires = int(time.time()) + self.token_lifetime
        self._tokens[token] = expires
        permissions = body.get("permissions") or DEFAULT_PERMISSIONS
        return Response.json(
            201,
            {
                "token": token,
                "expires_at": iso_utc(expires),
                "permissions": permissions,
                "repository_selection": "all",
            },
        )

    def _installation_json(self, base: str) -> dict[str, Any]:
        inst = self.installation_id
        return {
            "id": inst,
            "account": self._user_json(base, self.account_login),
            "repository_selection": "all",
            "access_tokens_url": f"{base}/app/installations/{inst}/access_tokens",
            "repositories_url": f"{base}/installation/repositories",
            "html_url": f"{base}/organizations/{self.account_login}/settings/installations/{inst}",
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "target_id": stable_id(f"user:{self.account_login}"),
            "target_type": "Organization",
            "permissions": DEFAULT_PERMISSIONS,
            "events": ["push"],
            "created_at": iso_utc(self._started),
            "updated_at": iso_utc(self._started),
            "single_file_name": None,
            "suspended_at": None,
            "suspended_by": None,
        }

    def _get_app(self, req: Request) -> Response:
        base = req.base_url
        return Response.json(
            200,
            {
                "id": self.app_id,
                "slug": self.app_slug,
                "node_id": node_id("A", str(self.app_id)),
                "owner": self._user_json(base, self.account_login),
                "name": self.app_slug,
                "description": "SynosCD local stand-in app",
                "external_url": base,
                "html_url": f"{base}/apps/{self.app_slug}",
                "created_at": iso_utc(self._started),
                "updated_at": iso_utc(self._started),
                "permissions": DEFAULT_PERMISSIONS,
                "events": ["push"],
                "installations_count": 1,
            },
        )

    def _list_installations(self, req: Request) -> Response:
        return Response.json(200, [self._installation_json(req.base_url)])

    def _get_installation(self, req: Request, inst: str) -> Response:
        if int(inst) != self.installation_id:
            raise not_found()
        return Response.json(200, self._installation_json(req.base_url))

    def _repo_installation(self, req: Request, owner: str, repo: str) -> Response:
        self._repo(owner, repo)
        return Response.json(200, self._installation_json(req.base_url))

    # -- token endpoints ----------------------------------------------------------------------
    def _get_rate_limit(self, req: Request) -> Response:
        core = self._rate.core()
        reset = self._rate.reset_at

        def other(limit: int, resource: str) -> dict[str, Any]:
            return {"limit": limit, "remaining": limit, "reset": reset, "used": 0, "resource": resource}

        resources = {
            "core": core,
            "search": other(30, "search"),
            "graphql": other(5000, "graphql"),
            "code_search": other(10, "code_search"),
            "integration_manifest": other(5000, "integration_manifest"),
        }
        return Response.json(200, {"resources": resources, "rate": core})

    def _installation_repos(self, req: Request) -> Response:
        repos = [self._repo_json(req.base_url, r) for r in self._all_repos()]
        page, headers = self._paginate(req, repos, default=30, maximum=100)
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
        page, headers = self._paginate(req, rows, default=30, maximum=100)
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
        files, headers = self._paginate(req, changes, default=300, maximum=300)
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
        page, headers = self._paginate(req, shas, default=30, maximum=100)
        u = Urls(req.base_url, r.owner, r.name)
        return Response.json(200, [self._commit_json(u, r.commit(s)) for s in page], headers)

    def _get_git_commit(self, req: Request, owner: str, repo: str, sha: str) -> Response:
        r = self._repo(owner, repo)
        if not SHA_RE.match(sha):
            raise not_found()
        return Response.json(200, self._git_commit_json(Urls(req.base_url, r.owner, r.name), r.commit(sha)))

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
        page, headers = self._paginate(req, ahead, default=250, maximum=1000)
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

    # -- commit statuses ------------------------------------------------------------------------
    def _create_status(self, req: Request, owner: str, repo: str, sha: str) -> Response:
        r = self._repo(owner, repo)
        if not SHA_RE.match(sha.lower()) or r.resolve(sha.lower()) is None:
            return gh_error(422, f"No commit found for SHA: {sha}")
        sha = sha.lower()
        body = json_body(req)
        problem = _status_problem(body)
        if problem is not None:
            return problem
        self._status_ids += 1
        now = iso_utc(time.time())
        status = {
            "id": self._status_ids,
            "state": body["state"],
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "context": body.get("context") or "default",
            "created_at": now,
            "updated_at": now,
        }
        self._statuses.setdefault((r.full_name.lower(), sha), []).insert(0, status)  # newest first
        return Response.json(201, self._status_json(Urls(req.base_url, r.owner, r.name), sha, status))

    def _status_json(self, u: Urls, sha: str, status: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"{u.api}/statuses/{sha}",
            "avatar_url": f"{u.base}/_avatars/{self.app_slug}",
            "node_id": node_id("SC", str(status["id"])),
            **status,
            "creator": self._bot_json(u.base),
        }

    def _statuses_for(self, r: GitRepo, ref: str) -> tuple[str, list[dict[str, Any]]]:
        sha = self._resolve(r, ref)
        return sha, self._statuses.get((r.full_name.lower(), sha), [])

    def _list_statuses(self, req: Request, owner: str, repo: str, ref: str) -> Response:
        r = self._repo(owner, repo)
        sha, statuses = self._statuses_for(r, ref)
        u = Urls(req.base_url, r.owner, r.name)
        page, headers = self._paginate(req, statuses, default=30, maximum=100)
        return Response.json(200, [self._status_json(u, sha, s) for s in page], headers)

    def _combined_status(self, req: Request, owner: str, repo: str, ref: str) -> Response:
        r = self._repo(owner, repo)
        sha, statuses = self._statuses_for(r, ref)
        latest: dict[str, dict[str, Any]] = {}
        for status in statuses:  # newest first: the first per context wins
            latest.setdefault(status["context"], status)
        u = Urls(req.base_url, r.owner, r.name)
        body = {
            "state": _combined_state([s["state"] for s in latest.values()]),
            "statuses": [self._status_json(u, sha, s) for s in latest.values()],
            "sha": sha,
            "total_count": len(latest),
            "repository": self._repo_json(req.base_url, r),
            "commit_url": f"{u.api}/commits/{sha}",
            "url": f"{u.api}/commits/{sha}/status",
        }
        return Response.json(200, body)

    # -- pagination -----------------------------------------------------------------------------
    @staticmethod
    def _paginate(
        req: Request, items: list[Any], default: int, maximum: int
    ) -> tuple[list[Any], dict[str, str]]:
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

    # -- admin ----------------------------------------------------------------------------------
    def _admin_create_repo(self, req: Request) -> Response:
        spec = json_body(req)
        owner, name = str(spec.get("owner", "")), str(spec.get("name", ""))
        branch = str(spec.get("default_branch") or "main")
        if not _valid_name(owner) or not _valid_name(name) or not safe_ref(branch):
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
        head = _commit_files(path, spec.get("files") or {}, str(spec.get("message") or "Initial commit"))
        body = {"path": str(path), "full_name": f"{owner}/{name}", "default_branch": branch, "head": head}
        return Response.json(201, body)

    def _admin_commit(self, req: Request, owner: str, name: str) -> Response:
        spec = json_body(req)
        repo = self._repo(owner, name)
        files = spec.get("files") or {}
        if not isinstance(files, dict):
            return gh_error(400, "files must be an object {path: text | null}")
        sha = _commit_files(repo.path, files, str(spec.get("message") or "Update files"))
        return Response.json(201, {"sha": sha, "branch": repo.default_branch()})

    def _admin_expire_tokens(self, req: Request) -> Response:
        spec = json_body(req)
        only = str(spec["token"]) if spec.get("token") else None
        targets = [only] if only in self._tokens else ([] if only else list(self._tokens))
        for token in targets:
            self._tokens[token] = 0.0
        if targets:
            self._download_token = secrets.token_hex(20).upper()
        return Response.json(200, {"expired": len(targets)})

    def _admin_get_ratelimit(self, req: Request) -> Response:
        return Response.json(200, asdict(self._rate))

    def _admin_set_ratelimit(self, req: Request) -> Response:
        spec = json_body(req)
        rate = self._rate
        if "limit" in spec:
            rate.limit = int(spec["limit"])
            rate.remaining = min(rate.remaining, rate.limit)
        if "reset_in" in spec:
            rate.reset_at = int(time.time() + float(spec["reset_in"]))
        if "remaining" in spec:
            rate.remaining = max(0, min(int(spec["remaining"]), rate.limit))
        if "secondary" in spec:
            rate.secondary = bool(spec["secondary"])
            rate.secondary_count = None
        if "secondary_status" in spec:
            rate.secondary_status = 429 if int(spec["secondary_status"]) == 429 else 403
        if "retry_after" in spec:
            rate.retry_after = max(0, int(spec["retry_after"]))
        if spec.get("secondary_count") is not None:
            rate.secondary_count = int(spec["secondary_count"])
        return Response.json(200, asdict(rate))

    def _admin_deliveries(self, req: Request) -> Response:
        return Response.json(200, {"deliveries": [asdict(d) for d in self.deliveries]})

    def _admin_deliver(self, req: Request) -> Response:
        spec = json_body(req)
        url = spec.get("url")
        event = str(spec.get("event") or "push")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return gh_error(400, "url (http or https) is required")
        hook_id = int(spec.get("hook_id") or stable_id(f"hook:{url}"))
        payload = spec.get("payload")
        if payload is None:
            payload = self._build_payload(req.base_url, event, spec, hook_id)
        delivery_id = str(spec.get("delivery_id") or uuid.uuid4())
        body = json.dumps(payload).encode("utf-8")
        headers = self._webhook_headers(event, delivery_id, hook_id, body, spec.get("secret"))
        with released(self.lock):  # the receiver may call back into this stand-in
            status, text, error = _post(url, body, headers)
        delivery = Delivery(delivery_id, event, url, status, text, hook_id, error=error)
        self.deliveries.append(delivery)
        return Response.json(200, asdict(delivery) | {"signature_256": headers.get("X-Hub-Signature-256")})

    def _webhook_headers(
        self, event: str, delivery_id: str, hook_id: int, body: bytes, secret: Any
    ) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "Accept": "*/*",
            "User-Agent": "GitHub-Hookshot/synoscd",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": str(hook_id),
            "X-GitHub-Hook-Installation-Target-ID": str(self.installation_id),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
        }
        if secret:  # GitHub signs only when the hook has a secret
            key = str(secret).encode("utf-8")
            headers["X-Hub-Signature"] = "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest()
            headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        return headers

    def _build_payload(self, base: str, event: str, spec: dict[str, Any], hook_id: int) -> dict[str, Any]:
        repo = None
        if spec.get("owner") and spec.get("name"):
            repo = self._repo(str(spec["owner"]), str(spec["name"]))
        if event == "ping":
            return self._ping_payload(base, repo, hook_id, str(spec["url"]))
        if event != "push":
            raise HttpError(gh_error(400, "event must be push or ping unless payload is given"))
        if repo is None:
            raise HttpError(gh_error(400, "owner and name are required for a push"))
        return self._push_payload(base, repo, spec)

    def _hook_repo_json(self, base: str, repo: GitRepo) -> dict[str, Any]:
        body = self._repo_json(base, repo)
        body["owner"] = {**body["owner"], "name": repo.owner, "email": None}
        body["master_branch"] = body["default_branch"]
        return body

    def _ping_payload(self, base: str, repo: GitRepo | None, hook_id: int, url: str) -> dict[str, Any]:
        now = iso_utc(time.time())
        hook_base = (
            f"{Urls(base, repo.owner, repo.name).api}/hooks/{hook_id}" if repo else f"{base}/hooks/{hook_id}"
        )
        payload: dict[str, Any] = {
            "zen": "Keep it logically awesome.",
            "hook_id": hook_id,
            "hook": {
                "type": "Repository" if repo else "App",
                "id": hook_id,
                "name": "web",
                "active": True,
                "events": ["push"],
                "config": {"content_type": "json", "insecure_ssl": "0", "url": url},
                "updated_at": now,
                "created_at": now,
                "url": hook_base,
                "test_url": f"{hook_base}/test",
                "ping_url": f"{hook_base}/pings",
                "deliveries_url": f"{hook_base}/deliveries",
                "last_response": {"code": None, "status": "unused", "message": None},
            },
            "sender": self._bot_json(base),
        }
        if repo is not None:
            payload["repository"] = self._hook_repo_json(base, repo)
        return payload

    def _push_payload(self, base: str, repo: GitRepo, spec: dict[str, Any]) -> dict[str, Any]:
        ref = str(spec.get("ref") or repo.default_branch())
        ref = ref if ref.startswith("refs/") else f"refs/heads/{ref}"
        after = str(spec.get("after") or self._resolve(repo, ref))
        if after != ZERO_SHA:
            after = self._resolve(repo, after)
        before = spec.get("before")
        if before is None:
            parents = repo.commit(after).parents if after != ZERO_SHA else ()
            before = parents[0] if parents else ZERO_SHA
        before = str(before) if str(before) == ZERO_SHA else self._resolve(repo, str(before))
        u = Urls(base, repo.owner, repo.name)
        shas = self._pushed_commits(repo, before, after)
        commits = [self._push_commit_json(u, repo, s) for s in shas]
        head = self._push_commit_json(u, repo, after) if after != ZERO_SHA else None
        pusher = repo.commit(after).committer if after != ZERO_SHA else Person("synos", "", 0, "+0000")
        return {
            "ref": ref,
            "before": before,
            "after": after,
            "repository": self._hook_repo_json(base, repo),
            "pusher": {"name": pusher.name, "email": pusher.email},
            "sender": self._user_json(base, pusher.name.replace(" ", "-") or "synos", "User"),
            "installation": {"id": self.installation_id, "node_id": node_id("I", str(self.installation_id))},
            "created": before == ZERO_SHA,
            "deleted": after == ZERO_SHA,
            "forced": before != ZERO_SHA and after != ZERO_SHA and not repo.is_ancestor(before, after),
            "base_ref": None,
            "compare": f"{u.html}/compare/{before[:12]}...{after[:12]}",
            "commits": commits,
            "head_commit": head,
        }

    @staticmethod
    def _pushed_commits(repo: GitRepo, before: str, after: str) -> list[str]:
        if after == ZERO_SHA:
            return []
        if before == ZERO_SHA:
            return [after]  # a new branch: GitHub lists only what is new; the tip stands for it here
        return repo.range_commits(before, after)[-2048:]  # GitHub's cap

    def _push_commit_json(self, u: Urls, repo: GitRepo, sha: str) -> dict[str, Any]:
        c = repo.commit(sha)
        changes = repo.diff(c.parents[0] if c.parents else None, sha, renames=False)
        by_kind: dict[str, list[str]] = {"added": [], "removed": [], "modified": []}
        for change in changes:
            kind = {"A": "added", "D": "removed"}.get(change.status, "modified")
            by_kind[kind].append(change.path)
        return {
            "id": sha,
            "tree_id": c.tree,
            "distinct": True,
            "message": c.message,
            "timestamp": c.committer.iso_local(),
            "url": f"{u.html}/commit/{sha}",
            "author": {"name": c.author.name, "email": c.author.email},
            "committer": {"name": c.committer.name, "email": c.committer.email},
            **by_kind,
        }


# -- module helpers -----------------------------------------------------------------------------


def _load_public_key(pem: bytes) -> Any:
    """The app's public key; a private key PEM is accepted too (its public half is used)."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    if b"PRIVATE KEY" in data:
        return serialization.load_pem_private_key(data, password=None).public_key()
    return serialization.load_pem_public_key(data)


def _jwt_claim_message(exc: Exception) -> str:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return MSG_JWT_EXP
    if isinstance(exc, jwt.ImmatureSignatureError):
        return MSG_JWT_IAT
    claim = getattr(exc, "claim", "")
    return {"exp": MSG_JWT_EXP, "iat": MSG_JWT_IAT, "iss": MSG_JWT_ISS}.get(claim, MSG_JWT_DECODE)


def _valid_name(name: str) -> bool:
    return bool(NAME_RE.match(name)) and name not in (".", "..") and not name.lower().endswith(".git")


def _compare_status(ahead: int, behind: int) -> str:
    if ahead and behind:
        return "diverged"
    if ahead:
        return "ahead"
    return "behind" if behind else "identical"


def _combined_state(states: list[str]) -> str:
    """GitHub's rule: any error/failure fails, else any pending (or none at all) is pending."""
    if {"error", "failure"} & set(states):
        return "failure"
    return "pending" if not states or "pending" in states else "success"


def _status_problem(body: dict[str, Any]) -> Response | None:
    """GitHub's 422 for a commit status it would refuse."""

    def invalid(field_name: str, message: str) -> Response:
        error = {"resource": "Status", "code": "custom", "field": field_name, "message": message}
        return gh_error(422, "Validation Failed", errors=[error])

    if body.get("state") not in STATUS_STATES:
        return invalid("state", "state is not included in the list")
    for key in ("target_url", "description", "context"):
        if body.get(key) is not None and not isinstance(body[key], str):
            return invalid(key, f"{key} must be a string")
    if len(body.get("description") or "") > 140:
        return invalid("description", "description is too long (maximum is 140 characters)")
    return None


def _commit_files(path: Path, files: dict[str, Any], message: str) -> str:
    """Write (or delete, for None) `files` in the work tree and commit them; the new HEAD sha."""
    for rel, text in files.items():
        target = _safe_join(path, str(rel))
        if text is None:
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(str(text), encoding="utf-8")
    run_git(path, "add", "-A")
    run_git(path, "commit", "-q", "--allow-empty", "--no-verify", "-m", message)
    return run_git(path, "rev-parse", "HEAD").stdout.decode().strip()


def _safe_join(root: Path, rel: str) -> Path:
    parts = PurePosixPath(rel).parts
    if not parts or rel.startswith("/") or ".." in parts or parts[0] == ".git":
        raise HttpError(gh_error(400, f"invalid file path: {rel!r}"))
    return root.joinpath(*parts)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str, str | None]:
    """POST a delivery; GitHub gives a receiver 10 s. TLS trust follows REQUESTS_CA_BUNDLE."""
    try:
        resp = requests.post(url, data=body, headers=headers, timeout=10, allow_redirects=False)
    except requests.RequestException as exc:
        return None, "", repr(exc)
    return resp.status_code, resp.text, None


__all__ = ["GitHubEmulator", "GitRepo", "gh_error"]
