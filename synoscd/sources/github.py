"""The GitHub App source, through PyGithub, as cheap as GitHub allows.

Per pass on a warm instance: one conditional request for the branch ref (304 when unchanged, which
GitHub does not count against the rate limit). When the head moved: one recursive tree request and
one blob request per manifest whose content (blob sha) is not cached — O(changed files). Blobs are
content-addressed, so the cache never needs invalidating; it is kept in memory and, through a
`BlobStore`, in Table Storage so a cold instance does not refetch everything.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from synoscd.sources.snapshot import Snapshot, SourceError, diff_paths, is_manifest

USER_AGENT = "synoscd"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GitHubAppCredentials:
    app_id: int
    installation_id: int
    private_key: str = field(repr=False)


@dataclass
class PersistedIndex:
    """What a cold instance needs to serve an unchanged head without listing the tree again."""

    head: str
    manifests: dict[str, str]  # path -> blob sha, manifests under the config path


class BlobStore(Protocol):
    def load(self) -> tuple[PersistedIndex | None, dict[str, bytes]]: ...

    def save(self, index: PersistedIndex, blobs: Mapping[str, bytes]) -> None: ...


class BlobCache:
    """Content-addressed, bounded in bytes, least recently used out first."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, sha: str) -> bytes | None:
        with self._lock:
            data = self._items.get(sha)
            if data is not None:
                self._items.move_to_end(sha)
            return data

    def put(self, sha: str, data: bytes) -> None:
        with self._lock:
            if sha in self._items:
                return
            self._items[sha] = data
            self._size += len(data)
            while self._size > self.max_bytes and self._items:
                _, old = self._items.popitem(last=False)
                self._size -= len(old)

    def __contains__(self, sha: str) -> bool:
        with self._lock:
            return sha in self._items


def make_github(api_url: str, creds: GitHubAppCredentials, timeout: float = 10.0) -> Any:
    """A PyGithub client with explicit retry and pacing (its defaults suit no serverless pass:
    0.25 s between requests, ten 5xx retries without backoff, 60 s secondary-rate-limit waits)."""
    from github import Auth, Github, GithubRetry

    auth = Auth.AppAuth(creds.app_id, creds.private_key).get_installation_auth(creds.installation_id)
    retry = GithubRetry(total=2, backoff_factor=0.25, secondary_rate_wait=2, max_rate_limit_wait=5)
    return Github(
        base_url=api_url,
        auth=auth,
        retry=retry,
        timeout=int(timeout),
        user_agent=USER_AGENT,
        seconds_between_requests=None,
        seconds_between_writes=None,
        per_page=100,
        pool_size=32,  # blobs are fetched 16 at a time; the default pool of 10 would reconnect
    )


class GitHubSource:
    def __init__(
        self,
        github: Any,
        repo: str,
        branch: str,
        config_path: str,
        api_url: str,
        cache: BlobCache | None = None,
        store: BlobStore | None = None,
        fetch_workers: int = 16,
    ) -> None:
        self.gh = github
        self.repo = repo
        self.branch = branch
        self.config_path = config_path.strip("/")
        self.api_url = api_url
        self.cache = cache or BlobCache()
        self.store = store
        self.fetch_workers = fetch_workers
        self._ref_etag: str | None = None
        self._head: str | None = None
        self._manifests: dict[str, str] = {}  # path -> blob sha at self._head
        self._tree: dict[str, str] | None = None  # every blob of the repo at self._head, when listed
        self._by_revision: dict[str, dict[str, str]] = {}
        self._loaded_store = False
        self._unsaved: tuple[PersistedIndex, dict[str, bytes]] | None = None
        self._persist_lock = threading.Lock()

    @property
    def label(self) -> str:
        return f"{self.repo}:{self.config_path}"

    # -- wire ------------------------------------------------------------------------------------
    def _get(self, path: str, etag: str | None = None) -> tuple[int, dict[str, Any], Any]:
        """GET through PyGithub's requester (its auth, retry and rate-limit handling); 304 aware."""
        from github import GithubException

        headers = {"If-None-Match": etag} if etag else {}
        try:
            status, resp_headers, output = self.gh.requester.requestJson("GET", path, headers=headers)
            data = json.loads(output) if output else None
            if status >= 400:
                raise self.gh.requester.createException(status, resp_headers, data)
        except GithubException as exc:
            raise SourceError(self._describe(exc, path)) from exc
        except Exception as exc:  # connection errors, exhausted retries, timeouts, bad JSON
            first_line = (str(exc).splitlines() or [""])[0][:200]
            raise SourceError(
                f"GitHub {self.api_url} did not answer GET {path}: {type(exc).__name__}: {first_line}; "
                "check SYNOSCD_GITHUB_API_URL and the network"
            ) from exc
        return status, resp_headers, data

    def _describe(self, exc: Any, path: str) -> str:
        from github import BadCredentialsException, RateLimitExceededException, UnknownObjectException

        message = (exc.data or {}).get("message") if isinstance(exc.data, dict) else str(exc.data)
        if isinstance(exc, RateLimitExceededException) or "rate limit" in str(message).lower():
            return (
                f"GitHub rate limit reached at {self.api_url} ({message}); the next pass retries; "
                "no prune this pass"
            )
        if isinstance(exc, BadCredentialsException) or exc.status == 401:
            return (
                f"GitHub {self.api_url} refused the GitHub App credentials ({message}); check "
                "SYNOSCD_GITHUB_APP_ID, SYNOSCD_GITHUB_APP_INSTALLATION_ID and the private key"
            )
        if isinstance(exc, UnknownObjectException) or exc.status == 404:
            return (
                f"GitHub {self.api_url}: {path} not found; check SYNOSCD_GITHUB_REPO_OWNER, "
                "SYNOSCD_GITHUB_REPO_NAME, SYNOSCD_GITHUB_BRANCH and that the App is installed "
                "on the repository"
            )
        return f"GitHub {self.api_url} answered {exc.status} to GET {path}: {message}"

    def _repo_path(self, suffix: str) -> str:
        return f"/repos/{self.repo}/{suffix}"

    def report(self, revision: str, state: str, description: str) -> None:
        """A commit status on the synced revision (context `synoscd`), as Flux's and Argo CD's
        notifications do. Best effort: a failure is logged, never fails the pass."""
        body = {"state": state, "description": description[:140], "context": "synoscd"}
        try:
            self.gh.requester.requestJsonAndCheck("POST", self._repo_path(f"statuses/{revision}"), input=body)
        except Exception as exc:
            log.warning("could not post the commit status: %s", str(exc).splitlines()[0][:200])

    # -- the snapshot ------------------------------------------------------------------------------
    def head(self) -> str:
        """The branch head; a conditional request answered 304 costs nothing against the rate limit."""
        status, headers, data = self._get(self._repo_path(f"git/ref/heads/{self.branch}"), self._ref_etag)
        if status == 304 and self._head:
            return self._head
        if not isinstance(data, dict) or "object" not in data:
            raise SourceError(f"GitHub {self.api_url}: branch {self.branch} of {self.repo} has no commit")
        self._ref_etag = headers.get("etag") or headers.get("ETag")
        return str(data["object"]["sha"])

    def snapshot(self) -> Snapshot:
        self._load_store()
        head = self.head()
        moved = head != self._head
        if moved:
            previous = self._manifests
            self._list_tree(head)
            self._head = head
            changed: frozenset[str] | None = diff_paths(previous, self._manifests) if previous else None
        else:
            changed = frozenset()
        files = self._fetch(self._manifests)
        self._by_revision[head] = dict(self._manifests)
        if moved:
            self._persist(files)
        return Snapshot(head, files, self.label, changed, reader=self._read_any)

    def changed_since(self, revision: str) -> frozenset[str] | None:
        old = self._by_revision.get(revision)
        return None if old is None or self._head is None else diff_paths(old, self._manifests)

    def _list_tree(self, head: str) -> None:
        _, _, data = self._get(self._repo_path(f"git/trees/{head}?recursive=1"))
        if not isinstance(data, dict) or data.get("truncated"):
            raise SourceError(
                f"GitHub {self.api_url}: the tree of {self.repo}@{head[:12]} is too large to "
                "list in one request (truncated); keep the ops repository under 100,000 entries"
            )
        self._tree = {e["path"]: e["sha"] for e in data.get("tree", []) if e.get("type") == "blob"}
        self._manifests = {p: s for p, s in self._tree.items() if is_manifest(p, self.config_path)}

    def _fetch(self, paths: Mapping[str, str]) -> dict[str, bytes]:
        missing = sorted({sha for sha in paths.values() if sha not in self.cache})
        if missing:
            with ThreadPoolExecutor(max_workers=min(self.fetch_workers, len(missing))) as pool:
                for sha, data in zip(missing, pool.map(self._blob, missing), strict=True):
                    self.cache.put(sha, data)
        files: dict[str, bytes] = {}
        for path, sha in paths.items():
            data = self.cache.get(sha)
            if data is None:  # evicted between put and get: read it again
                data = self._blob(sha)
                self.cache.put(sha, data)
            files[path] = data
        return files

    def _blob(self, sha: str) -> bytes:
        _, _, data = self._get(self._repo_path(f"git/blobs/{sha}"))
        if not isinstance(data, dict) or data.get("encoding") != "base64":
            raise SourceError(f"GitHub {self.api_url}: blob {sha} of {self.repo} came back unreadable")
        return base64.b64decode(data.get("content", ""))

    def _read_any(self, path: str) -> bytes | None:
        if self._tree is None and self._head:
            self._list_tree(self._head)
        sha = (self._tree or {}).get(path)
        return None if sha is None else self._fetch({path: sha})[path]

    # -- persistence --------------------------------------------------------------------------------
    def _load_store(self) -> None:
        if self._loaded_store or self.store is None:
            return
        self._loaded_store = True
        try:
            index, blobs = self.store.load()
        except Exception as exc:  # a cache that cannot be read costs requests, never correctness
            log.warning("could not load the persisted blob cache: %s", exc)
            return
        for sha, data in blobs.items():
            self.cache.put(sha, data)
        if index is not None:
            self._head, self._manifests = index.head, dict(index.manifests)

    def _persist(self, files: Mapping[str, bytes]) -> None:
        """Remember what a future cold instance would need; `persist()` saves it, after the pass's
        writes (the pass need not wait for an optimisation only a later instance uses)."""
        if self.store is None or self._head is None:
            return
        blobs = {self._manifests[p]: files[p] for p in files}
        self._unsaved = (PersistedIndex(self._head, dict(self._manifests)), blobs)

    def persist(self) -> None:
        """Save the index and blobs of the last new head, if any (best effort; one save at a time)."""
        with self._persist_lock:
            pending, self._unsaved = self._unsaved, None
            self._save(pending)

    def _save(self, pending: tuple[PersistedIndex, dict[str, bytes]] | None) -> None:
        if pending is None or self.store is None:
            return
        try:
            self.store.save(*pending)
        except Exception as exc:  # persisting is an optimisation: a failure costs requests next cold start
            log.warning("could not persist the blob cache: %s", exc)
