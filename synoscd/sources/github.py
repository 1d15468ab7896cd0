"""The GitHub App source, through PyGithub, as cheap as GitHub allows.

Per pass on a warm instance: one conditional request for the branch ref (304 when unchanged, which
GitHub does not count against the rate limit), or none at all when the pass is given the pushed
commit (a webhook's `after`: immutable, so a branch ref that lags the webhook cannot serve an older
head). When the target moved: one recursive tree request (or, when GitHub truncates it, a walk
down to the config path and a recursive read below it), one compare to the previous head (so a
force-push or an older commit is named in the pass record) and one blob request per manifest whose
content (blob sha) is not cached — O(changed files).

Blobs are content-addressed, so the cache never needs invalidating; it is kept in memory and,
through a `BlobStore`, in Table Storage so a cold instance does not refetch everything. Whatever the
cache holds is checked against the git blob id of its tree entry before it is served: the table is
writable by operators, and what Git never reviewed must never be deployed. The tree itself always
comes from GitHub.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from urllib.parse import quote

from synoscd.sources.snapshot import (
    Change,
    ChangedFile,
    Snapshot,
    SourceError,
    config_prefix,
    diff_paths,
    git_blob_id,
    is_manifest,
)

USER_AGENT = "synoscd"
SHA_RE = re.compile(r"^[0-9a-f]{40}$")
GITHUB_TREE_LIMIT = "100,000 entries or 7 MB"  # what GitHub lists in one recursive tree answer
# Waits between reads of a pushed commit GitHub does not serve yet (replication lags the webhook).
PUSHED_RETRY_DELAYS = (0.25, 0.5, 1.0, 2.0)
TOKEN_RENEW_BEFORE = timedelta(seconds=60)
# How long after applying a pushed commit a branch ref naming an older one is taken for GitHub's lag.
REF_LAG_GRACE_SECONDS = 120.0
COMPARE_FILES_LIMIT = 300  # GitHub lists at most 300 changed files in a compare answer
SIDE_LISTINGS = 4  # listings of other commits (previews, `synos diff --ref`) kept per source
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GitHubAppCredentials:
    app_id: int
    installation_id: int
    private_key: str = field(repr=False)


@dataclass
class PersistedIndex:
    """The head and manifests of the last listing, persisted with the blobs. A cold instance uses it
    only to tell what changed (and how the new head relates to it), never as the tree itself."""

    head: str
    manifests: dict[str, str]  # path -> blob sha, manifests under the config path


class BlobStore(Protocol):
    def load(self) -> tuple[PersistedIndex | None, dict[str, bytes]]: ...

    def save(self, index: PersistedIndex, blobs: Mapping[str, bytes], replace: Collection[str] = ()) -> None:
        """Store `blobs` not stored yet, and overwrite those named in `replace` (found corrupted)."""
        ...


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

    def discard(self, sha: str) -> None:
        with self._lock:
            old = self._items.pop(sha, None)
            if old is not None:
                self._size -= len(old)

    def __contains__(self, sha: str) -> bool:
        with self._lock:
            return sha in self._items


def _installation_auth_class() -> Any:
    from github.Auth import AppInstallationAuth

    class RenewableInstallationAuth(AppInstallationAuth):  # type: ignore[misc]
        """PyGithub's installation auth keeps its token until shortly before the expiry it was told;
        a token GitHub revoked or expired earlier would fail every request until then. This one
        can be told to drop the token it holds, so the next request mints a new one."""

        def __init__(self, app_auth: Any, installation_id: int) -> None:
            super().__init__(app_auth, installation_id)
            self._held: Any = None
            self._held_lock = threading.Lock()
            self.minted = 0

        @property
        def token(self) -> str:
            with self._held_lock:
                now = datetime.now(UTC)
                if self._held is None or self._held.expires_at - TOKEN_RENEW_BEFORE < now:
                    self._held = self._get_installation_authorization()
                    self.minted += 1
                return str(self._held.token)

        def discard(self, token: str) -> None:
            with self._held_lock:
                if self._held is not None and self._held.token == token:
                    self._held = None

    return RenewableInstallationAuth


def _capped_retry(**kwargs: Any) -> Any:
    """PyGithub's GithubRetry, whose `max_rate_limit_wait` also caps a `Retry-After` header: GithubRetry
    applies the cap only to limits it reads from the body, and urllib3 sleeps any Retry-After it is
    given (a secondary limit's 60 s, twice, took a pass 120 s). Above the cap: fail now, the next
    pass retries."""
    from github import GithubRetry
    from github.GithubException import RateLimitExceededExceedsMaxWait

    class CappedGithubRetry(GithubRetry):
        def increment(
            self, method: Any = None, url: Any = None, response: Any = None, *a: Any, **kw: Any
        ) -> Any:
            cap = self.max_rate_limit_wait
            wait = self.get_retry_after(response) if response is not None else None
            if cap is not None and wait is not None and wait > cap:
                message = (
                    f"GitHub asked to wait {wait:g} s (Retry-After), more than the {cap:g} s a pass waits"
                )
                raise RateLimitExceededExceedsMaxWait(
                    response.status, {"message": message}, dict(response.headers), wait=wait
                )
            return super().increment(method, url, response, *a, **kw)

    return CappedGithubRetry(**kwargs)


def make_github(api_url: str, creds: GitHubAppCredentials, timeout: float = 10.0) -> Any:
    """A PyGithub client with explicit retry and pacing (its defaults suit no serverless pass:
    0.25 s between requests, ten 5xx retries without backoff, 60 s secondary-rate-limit waits)."""
    from github import Auth, Github

    auth = _installation_auth_class()(Auth.AppAuth(creds.app_id, creds.private_key), creds.installation_id)
    retry = _capped_retry(total=2, backoff_factor=0.25, secondary_rate_wait=2, max_rate_limit_wait=5)
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


def _result_or_nothing(future: Any) -> tuple[str, ...]:
    try:
        return tuple(future.result(timeout=15))
    except Exception as exc:  # a note is never worth failing a pass for
        log.warning("could not tell how the new commit relates to the previous one: %s", exc)
        return ()


class _Answered(SourceError):
    """GitHub answered with an error status (kept so callers can tell 404 from the rest)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Listing:
    """The blobs of one commit the source knows of: the whole repository, or (when GitHub truncated
    the recursive tree) only the config path's subtree."""

    commit: str
    blobs: dict[str, str]  # path -> blob sha
    complete: bool
    dirs: dict[str, str] = field(default_factory=dict)  # directory path -> tree sha, for lookups


class SharedListings:
    """Complete recursive listings of commits, shared by every source of one repository in a process:
    the targets of a fleet read folders of the same commits, and a commit's tree never changes, so
    one tree request serves them all. Bounded; only complete (untruncated) listings are kept."""

    def __init__(self, max_items: int = 16) -> None:
        self.max_items = max_items
        self._items: OrderedDict[str, _Listing] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, commit: str) -> _Listing | None:
        with self._lock:
            listing = self._items.get(commit)
            if listing is not None:
                self._items.move_to_end(commit)
            return listing

    def put(self, listing: _Listing) -> None:
        if not listing.complete:
            return
        with self._lock:
            self._items[listing.commit] = listing
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)


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
        pushed_retry_delays: tuple[float, ...] = PUSHED_RETRY_DELAYS,
        listings: SharedListings | None = None,
    ) -> None:
        self.gh = github
        self.repo = repo
        self.branch = branch
        self.config_path = config_prefix(config_path)  # ".", "/" and "" all mean the root
        self.api_url = api_url
        self.cache = cache or BlobCache()
        self.listings = listings or SharedListings()
        self.store = store
        self.fetch_workers = fetch_workers
        self.pushed_retry_delays = pushed_retry_delays
        self._ref_etag: str | None = None
        self._ref_sha: str | None = None
        self._last_pushed: tuple[str, float] | None = None  # (commit, monotonic time) of the last push
        self._listing: _Listing | None = None  # the last commit listed from GitHub (trusted)
        self._manifests: dict[str, str] = {}  # path -> blob sha at self._listing.commit
        self._stored: PersistedIndex | None = None  # from the table: a hint for diffs, never the tree
        self._stored_blobs: frozenset[str] = frozenset()  # the blob ids the table holds
        self._by_revision: dict[str, dict[str, str]] = {}
        self._loaded_store = False
        self._unsaved: tuple[PersistedIndex, dict[str, bytes], set[str]] | None = None
        self._repaired: set[str] = set()
        self._persist_lock = threading.Lock()
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="github-notes")
        # Listings of commits other than the followed head (a pull request's base or head, a ref):
        # a few, most recent last; never the source's own state.
        self._side: OrderedDict[str, _Listing] = OrderedDict()
        self._side_lock = threading.Lock()

    @property
    def label(self) -> str:
        return f"{self.repo}:{self.config_path}"

    @property
    def _head(self) -> str | None:
        return self._listing.commit if self._listing else None

    # -- wire ------------------------------------------------------------------------------------
    def _auth(self) -> Any:
        return getattr(self.gh.requester, "auth", None)

    def _app(self) -> str:
        auth = self._auth()
        app_id = getattr(auth, "app_id", "?")
        installation = getattr(auth, "installation_id", "?")
        return f"GitHub App {app_id}, installation {installation}"

    def _request(self, method: str, path: str, *, etag: str | None = None, body: Any = None) -> tuple:
        """One request through PyGithub's requester (its auth, retry and rate-limit handling). A 401
        discards the installation token, mints a new one and tries once more: GitHub can revoke or
        expire a token before the expiry PyGithub was told."""
        headers = {"If-None-Match": etag} if etag else {}
        for attempt in (1, 2):
            token = self._current_token()
            status, resp_headers, output = self.gh.requester.requestJson(
                method, path, headers=headers, input=body
            )
            data = json.loads(output) if output else None
            if status != 401 or token is None or attempt == 2:
                return status, resp_headers, data
            log.warning(
                "GitHub refused the installation token: minting a new one and trying once more",
                extra={"app": self._app(), "path": path},
            )
            self._auth().discard(token)
        raise AssertionError("unreachable")

    def _current_token(self) -> str | None:
        auth = self._auth()
        if not hasattr(auth, "discard"):
            return None  # not an installation (tests may give another auth): nothing to renew
        try:
            return str(auth.token)
        except Exception as exc:
            raise SourceError(self._mint_failed(exc)) from exc

    def _mint_failed(self, exc: Exception) -> str:
        status = getattr(exc, "status", None)
        if status is None:  # no answer at all: the address or the network, not the App
            first_line = (str(exc).splitlines() or [""])[0][:200]
            return (
                f"GitHub {self.api_url} did not answer the installation token request for {self._app()}: "
                f"{type(exc).__name__}: {first_line}; check SYNOSCD_GITHUB_API_URL and the network"
            )
        data = getattr(exc, "data", None)
        message = data.get("message") if isinstance(data, dict) else str(exc).splitlines()[0][:200]
        return (
            f"GitHub {self.api_url} would not issue an installation token for {self._app()} "
            f"({status or type(exc).__name__}: {message}); check SYNOSCD_GITHUB_APP_ID, "
            "SYNOSCD_GITHUB_APP_INSTALLATION_ID, the private key and that the App is still installed"
        )

    def _get(self, path: str, etag: str | None = None) -> tuple[int, dict[str, Any], Any]:
        """GET that raises a SourceError naming what to check for anything but 2xx and 304."""
        from github import GithubException

        try:
            status, resp_headers, data = self._request("GET", path, etag=etag)
            if status >= 400:
                raise self.gh.requester.createException(status, resp_headers, data)
        except SourceError:
            raise
        except GithubException as exc:
            raise _Answered(self._describe(exc, path), exc.status) from exc
        except Exception as exc:  # connection errors, exhausted retries, timeouts, bad JSON
            from synoscd.errors import first_line, local_hint, unreachable

            reason = unreachable(exc) or f"{type(exc).__name__}: {first_line(exc, 200)}"
            raise SourceError(
                f"cannot reach GitHub {self.api_url} (GET {path}: {reason}); "
                f"check SYNOSCD_GITHUB_API_URL and the network{local_hint(self.api_url)}"
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
                f"GitHub {self.api_url} refused the credentials of {self._app()} twice, a freshly "
                f"minted installation token too ({message}); check SYNOSCD_GITHUB_APP_ID, "
                "SYNOSCD_GITHUB_APP_INSTALLATION_ID, the private key and the App's installation"
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
            status, _, data = self._request("POST", self._repo_path(f"statuses/{revision}"), body=body)
            if status >= 400:
                message = data.get("message") if isinstance(data, dict) else data
                log.warning("could not post the commit status: GitHub answered %s: %s", status, message)
        except Exception as exc:
            log.warning("could not post the commit status: %s", str(exc).splitlines()[0][:200])

    # -- the snapshot ------------------------------------------------------------------------------
    def head(self) -> str:
        """The branch head; a conditional request answered 304 costs nothing against the rate limit."""
        status, headers, data = self._get(self._repo_path(f"git/ref/heads/{self.branch}"), self._ref_etag)
        if status == 304 and self._ref_sha:
            return self._ref_sha
        if not isinstance(data, dict) or "object" not in data:
            raise SourceError(f"GitHub {self.api_url}: branch {self.branch} of {self.repo} has no commit")
        self._ref_etag = headers.get("etag") or headers.get("ETag")
        self._ref_sha = str(data["object"]["sha"])
        return self._ref_sha

    def snapshot(self, at: str | None = None) -> Snapshot:
        """The manifests at `at` (a pushed commit, read directly: immutable) or at the branch head."""
        self._load_store()
        notes: tuple[str, ...] = ()
        later: Any = lambda: ()  # noqa: E731
        if at:
            target = self._pushed(at)
            self._last_pushed = (target, time.monotonic())
        else:
            target = self.head()
            if self._ref_lags(target):
                assert self._head is not None
                notes = (
                    f"the branch ref still names {target[:12]}, older than the pushed {self._head[:12]} "
                    "(GitHub's ref API lags pushes): kept the pushed commit",
                )
                target = self._head
        changed: frozenset[str] | None = frozenset()
        moved = target != self._head
        stored, stored_blobs = self._stored, self._stored_blobs
        if moved:
            previous = (
                self._listing.commit if self._listing else (self._stored.head if self._stored else None)
            )
            before = self._manifests if self._listing else (self._stored.manifests if self._stored else {})
            listing = self._list(target, pushed=at is not None)
            self._listing = listing
            self._manifests = {p: s for p, s in listing.blobs.items() if is_manifest(p, self.config_path)}
            changed = diff_paths(before, self._manifests) if previous else None
            if previous and previous != target:  # only for the pass record: off the critical path
                relation = self._background.submit(self._relation, previous, target)
                later = lambda: _result_or_nothing(relation)  # noqa: E731
            self._stored = None
        files = self._fetch(self._manifests)
        self._by_revision[target] = dict(self._manifests)
        # What the table holds already (a new process at the head it saved) is not saved again.
        kept = (
            stored is not None
            and stored.head == target
            and stored.manifests == self._manifests
            and stored_blobs.issuperset(self._manifests.values())
        )
        if (moved and not kept) or self._repaired:
            self._persist(files)
        return Snapshot(
            target, files, self.label, changed, reader=self._read_any, notes=notes, later_notes=later
        )

    def _pushed(self, at: str) -> str:
        sha = at.strip().lower()
        if not SHA_RE.match(sha):
            raise SourceError(
                f"the pushed commit {at[:80]!r} is not a full 40-character commit sha; the webhook "
                "payload's `after` is one"
            )
        return sha

    def changed_since(self, revision: str) -> frozenset[str] | None:
        old = self._by_revision.get(revision)
        return None if old is None or self._head is None else diff_paths(old, self._manifests)

    def _ref_lags(self, ref: str) -> bool:
        """True when the ref names an older commit than a push applied moments ago: GitHub's ref API
        lags the webhook, and reading it must not undo the push. A real push back to an older commit
        comes with its own webhook (its `after`), and after the grace period the ref is believed."""
        pushed = self._last_pushed
        if pushed is None or ref == self._head or pushed[0] != self._head:
            return False
        if time.monotonic() - pushed[1] > REF_LAG_GRACE_SECONDS:
            return False
        return self._compare(pushed[0], ref) == "behind"

    def _compare(self, base: str, head: str) -> str | None:
        """How `head` relates to `base` (ahead, behind, diverged, identical); None if unknown."""
        try:
            _, _, data = self._get(self._repo_path(f"compare/{base}...{head}?per_page=1"))
        except SourceError as exc:  # only a note is lost: never fail the pass for it
            log.warning("could not compare %s with %s: %s", base[:12], head[:12], exc)
            return None
        return data.get("status") if isinstance(data, dict) else None

    def _relation(self, previous: str, target: str) -> tuple[str, ...]:
        """Name a force-push or an older commit; both are applied as pushed (Git is the truth)."""
        status = self._compare(previous, target)
        if status == "behind":
            return (
                f"{target[:12]} is older than the last synced {previous[:12]} (a push of an older "
                "commit): applied as pushed, Git is the truth",
            )
        if status == "diverged":
            return (
                f"force-push: {target[:12]} does not contain the last synced {previous[:12]}: applied "
                "as pushed, Git is the truth",
            )
        return ()

    def _list(self, commit: str, pushed: bool) -> _Listing:
        """List `commit`; a pushed commit GitHub does not serve yet is retried briefly, then left to
        the next pass."""
        delays = self.pushed_retry_delays if pushed else ()
        for delay in (*delays, None):
            try:
                return self._list_tree(commit)
            except _Answered as exc:
                if exc.status not in (404, 409, 422) or not pushed:
                    raise
                if delay is None:
                    raise SourceError(
                        f"GitHub {self.api_url} does not serve the pushed commit {commit[:12]} of "
                        f"{self.repo} yet (answered {exc.status} for {len(delays) + 1} tries over "
                        f"{sum(delays):g} s); nothing is pruned this pass, and the next pass applies it"
                    ) from exc
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _tree(self, sha: str, recursive: bool) -> dict[str, Any]:
        suffix = "?recursive=1" if recursive else ""
        _, _, data = self._get(self._repo_path(f"git/trees/{sha}{suffix}"))
        if not isinstance(data, dict) or not isinstance(data.get("tree"), list):
            raise SourceError(
                f"GitHub {self.api_url}: the tree {sha[:12]} of {self.repo} came back unreadable"
            )
        return data

    def _list_tree(self, commit: str) -> _Listing:
        known = self.listings.get(commit)
        if known is not None:  # another source of this repository (a fleet's target) listed it
            return known
        data = self._tree(commit, recursive=True)
        if not data.get("truncated"):
            blobs = {e["path"]: e["sha"] for e in data["tree"] if e.get("type") == "blob"}
            listing = _Listing(commit, blobs, complete=True)
            self.listings.put(listing)
            return listing
        # GitHub lists at most 100,000 entries (7 MB) recursively: read down to the config path
        # with non-recursive listings, then recursively below it.
        where = f"{self.repo}@{commit[:12]}"
        if not self.config_path:
            raise SourceError(
                f"GitHub {self.api_url}: the tree of {where} has more than GitHub lists in one request "
                f"({GITHUB_TREE_LIMIT}; the answer came back truncated) and SYNOSCD_GITHUB_CONFIG_PATH is "
                "the repository root; set it to the folder that holds the manifests. Nothing is pruned"
            )
        listing = _Listing(commit, {}, complete=False, dirs={"": commit})
        sub = self._walk(listing, self.config_path)
        if sub is None:  # no such folder at this commit: no manifests, as with a complete listing
            return listing
        data = self._tree(sub, recursive=True)
        if data.get("truncated"):
            raise SourceError(
                f"GitHub {self.api_url}: even the config path {self.config_path} of {where} has more "
                f"than GitHub lists in one tree request ({GITHUB_TREE_LIMIT}; the answer came back "
                "truncated twice, for the repository and below the config path); nothing is pruned "
                "this pass; split the ops repository or point SYNOSCD_GITHUB_CONFIG_PATH at a smaller folder"
            )
        for e in data["tree"]:
            path = f"{self.config_path}/{e['path']}"
            if e.get("type") == "blob":
                listing.blobs[path] = e["sha"]
            elif e.get("type") == "tree":
                listing.dirs[path] = e["sha"]
        return listing

    def _walk(self, listing: _Listing, folder: str) -> str | None:
        """The tree sha of `folder` at the listing's commit, read one level at a time."""
        current = ""
        for part in [p for p in folder.split("/") if p]:
            child = f"{current}/{part}" if current else part
            if child not in listing.dirs:
                data = self._tree(listing.dirs[current], recursive=False)
                for e in data["tree"]:
                    path = f"{current}/{e['path']}" if current else e["path"]
                    if e.get("type") == "tree":
                        listing.dirs[path] = e["sha"]
                    elif e.get("type") == "blob":
                        listing.blobs.setdefault(path, e["sha"])
                if child not in listing.dirs and data.get("truncated"):
                    raise SourceError(
                        f"GitHub {self.api_url}: the folder {current or '/'} of {self.repo}@"
                        f"{listing.commit[:12]} has more entries than GitHub lists ({GITHUB_TREE_LIMIT})"
                    )
                if child not in listing.dirs:
                    return None
            current = child
        return listing.dirs[current]

    def _fetch(self, paths: Mapping[str, str]) -> dict[str, bytes]:
        """The content of each path, verified against its blob sha: a cached copy that does not match
        (the table is writable by operators) is discarded, read again and reported."""
        files: dict[str, bytes] = {}
        for path, sha in paths.items():
            data = self.cache.get(sha)
            if data is not None and git_blob_id(data) != sha:
                log.warning(
                    "cached content of %s does not match its git blob id %s: discarded, read again "
                    "from GitHub",
                    path,
                    sha,
                    extra={"path": path, "blob": sha, "repository": self.repo},
                )
                self.cache.discard(sha)
                self._repaired.add(sha)
                data = None
            if data is not None:
                files[path] = data
        missing = sorted({sha for path, sha in paths.items() if path not in files})
        fetched: dict[str, bytes] = {}
        if missing:
            with ThreadPoolExecutor(max_workers=min(self.fetch_workers, len(missing))) as pool:
                fetched = dict(zip(missing, pool.map(self._blob, missing), strict=True))
            for sha, data in fetched.items():
                self.cache.put(sha, data)
        for path, sha in paths.items():
            if path not in files:
                files[path] = fetched[sha]
        return files

    def _blob(self, sha: str) -> bytes:
        _, _, data = self._get(self._repo_path(f"git/blobs/{sha}"))
        if not isinstance(data, dict) or data.get("encoding") != "base64":
            raise SourceError(f"GitHub {self.api_url}: blob {sha} of {self.repo} came back unreadable")
        content = base64.b64decode(data.get("content", ""))
        if git_blob_id(content) != sha:
            raise SourceError(
                f"GitHub {self.api_url}: blob {sha} of {self.repo} came back with other content"
            )
        return content

    def _read_any(self, path: str) -> bytes | None:
        listing = self._listing
        return None if listing is None else self._read_from(listing, path)

    def _read_from(self, listing: _Listing, path: str) -> bytes | None:
        """A file of the listing's commit (for `spec.configFrom`), read down to it when the listing
        is only the config path's subtree."""
        sha = listing.blobs.get(path)
        if sha is None and not listing.complete:  # outside the listed subtree: read down to it
            folder = path.rpartition("/")[0]
            if self._walk(listing, folder) is not None and path not in listing.blobs:
                self._walk_files(listing, folder)
            sha = listing.blobs.get(path)
        return None if sha is None else self._fetch({path: sha})[path]

    def _walk_files(self, listing: _Listing, folder: str) -> None:
        data = self._tree(listing.dirs[folder], recursive=False)
        for e in data["tree"]:
            if e.get("type") == "blob":
                listing.blobs.setdefault(f"{folder}/{e['path']}" if folder else e["path"], e["sha"])

    # -- other commits: pull-request previews and `synos diff --ref` -----------------------------------
    # None of this touches what the source follows (its head, listing, persisted index, ref ETag): a
    # preview runs beside the passes on the same warm instance, sharing only the blob cache.

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, Any], Any]:
        """One request through the source's requester (App token, renewal after a 401, retry, rate
        limits). GitHub's error answers are returned, not raised: the caller reads their message."""
        from github import GithubException

        try:
            return self._request(method, path, body=body)  # type: ignore[no-any-return]
        except SourceError:
            raise
        except GithubException as exc:  # PyGithub's retry raises some answers (403s it inspected)
            return exc.status, dict(exc.headers or {}), exc.data
        except Exception as exc:  # connection errors, exhausted retries, timeouts
            first_line = (str(exc).splitlines() or [""])[0][:200]
            raise SourceError(
                f"GitHub {self.api_url} did not answer {method} {path}: {type(exc).__name__}: {first_line}; "
                "check SYNOSCD_GITHUB_API_URL and the network"
            ) from exc

    def repo_path(self, suffix: str) -> str:
        return self._repo_path(suffix)

    def resolve(self, ref: str) -> str:
        """The commit a branch, tag or sha of the ops repository names (no request for a full sha)."""
        wanted = ref.strip()
        if SHA_RE.match(wanted.lower()):
            return wanted.lower()
        try:
            _, _, data = self._get(self._repo_path(f"commits/{quote(wanted, safe='/')}?per_page=1"))
        except _Answered as exc:
            if exc.status not in (404, 422):
                raise
            raise SourceError(
                f"{wanted[:100]!r} is neither a branch, a tag nor a commit of {self.repo} (GitHub answered "
                f"{exc.status}); give a branch name or a commit sha"
            ) from exc
        if not isinstance(data, dict) or not SHA_RE.match(str(data.get("sha", ""))):
            raise SourceError(f"GitHub {self.api_url}: the commit {wanted[:100]!r} came back unreadable")
        return str(data["sha"])

    def snapshot_of(self, ref: str) -> Snapshot:
        """The manifests at any branch, tag or commit (`synos diff --ref`): one listing of that
        commit, the blobs the cache does not hold yet."""
        self._load_store()
        commit = self.resolve(ref)
        listing = self._listing_of(commit)
        manifests = {p: sha for p, sha in listing.blobs.items() if is_manifest(p, self.config_path)}
        files = self._fetch(manifests)
        return Snapshot(commit, files, self.label, None, reader=lambda path: self._read_from(listing, path))

    def merged_snapshot(self, head: str, base: str | None = None) -> tuple[Snapshot, Change]:
        """What merging the commit `head` into the branch `base` (the followed one by default) gives,
        read at the cost of what the pull request changes: one compare (the base's commit, the merge
        base and the changed files with their blob ids), the base's listing (none when it is the
        commit this source follows), and the changed blobs the cache does not hold.

        When the pull request contains the base's head (it is up to date) this is exactly the head's
        tree. Otherwise it is the base with the pull request's changes on top (the pull request's
        version of a file both changed), which is what merging would deploy."""
        self._load_store()
        head = self._pushed(head)
        data = self._compare_for_merge(base or self.branch, head)
        base_sha, merge_base = str(data["base_commit"]["sha"]), str(data["merge_base_commit"]["sha"])
        changes = _listed_changes(data.get("files"))
        if changes is None:  # more files than GitHub lists in a compare: the two listings tell
            changes = _changes_between(self._listing_of(merge_base), self._listing_of(head))
        merged, removed = _merged(self._listing_of(base_sha), changes, head)
        manifests = {p: sha for p, sha in merged.blobs.items() if is_manifest(p, self.config_path)}
        files = self._fetch(manifests)
        change = Change(base_sha, merge_base, head, tuple(f for f, _ in changes))

        def read(path: str) -> bytes | None:
            return None if path in removed else self._read_from(merged, path)

        return Snapshot(head, files, self.label, change.paths, reader=read), change

    def _compare_for_merge(self, base: str, head: str) -> dict[str, Any]:
        """compare/BASE...HEAD (per_page=1: the commits are not needed, the files are all on the first
        page). A head GitHub does not serve yet (just pushed) is retried briefly."""
        path = self._repo_path(f"compare/{quote(base, safe='/')}...{head}?per_page=1")
        for delay in (*self.pushed_retry_delays, None):
            try:
                _, _, data = self._get(path)
            except _Answered as exc:
                if exc.status not in (404, 422) or delay is None:
                    raise SourceError(
                        f"GitHub {self.api_url} cannot compare {base} with {head[:12]} in {self.repo} "
                        f"({exc.status}); is the pull request's base the branch SynosCD follows?"
                    ) from exc
                time.sleep(delay)
                continue
            if not isinstance(data, dict) or not all(
                isinstance(data.get(k), dict) and SHA_RE.match(str(data[k].get("sha", "")))
                for k in ("base_commit", "merge_base_commit")
            ):
                raise SourceError(
                    f"GitHub {self.api_url}: the comparison {base}...{head[:12]} came back unreadable"
                )
            return data
        raise AssertionError("unreachable")

    def _listing_of(self, commit: str) -> _Listing:
        """The listing of any commit: the followed head's own, a recent one, or one request."""
        current = self._listing
        if current is not None and current.commit == commit:
            return current
        with self._side_lock:
            hit = self._side.get(commit)
            if hit is not None:
                self._side.move_to_end(commit)
                return hit
        listing = self._list_tree(commit)
        with self._side_lock:
            self._side[commit] = listing
            while len(self._side) > SIDE_LISTINGS:
                self._side.popitem(last=False)
        return listing

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
            self.cache.put(sha, data)  # verified against the tree when served, not here
        self._stored, self._stored_blobs = index, frozenset(blobs)

    def _persist(self, files: Mapping[str, bytes]) -> None:
        """Remember what a future cold instance would need; `persist()` saves it, after the pass's
        writes (the pass need not wait for an optimisation only a later instance uses)."""
        if self.store is None or self._head is None:
            return
        blobs = {self._manifests[p]: files[p] for p in files}
        repaired, self._repaired = self._repaired, set()
        self._unsaved = (PersistedIndex(self._head, dict(self._manifests)), blobs, repaired)

    def persist(self) -> None:
        """Save the index and blobs of the last new head, if any (best effort; one save at a time)."""
        with self._persist_lock:
            pending, self._unsaved = self._unsaved, None
            self._save(pending)

    def _save(self, pending: tuple[PersistedIndex, dict[str, bytes], set[str]] | None) -> None:
        if pending is None or self.store is None:
            return
        try:
            self.store.save(*pending)
        except Exception as exc:  # persisting is an optimisation: a failure costs requests next cold start
            log.warning("could not persist the blob cache: %s", exc)


def _listed_changes(entries: Any) -> list[tuple[ChangedFile, str | None]] | None:
    """The changed files of a compare answer with their new blob ids; None when GitHub's list may be
    cut short (it lists at most 300) or an entry is unreadable: the caller then lists both commits."""
    if not isinstance(entries, list) or len(entries) >= COMPARE_FILES_LIMIT:
        return None
    out: list[tuple[ChangedFile, str | None]] = []
    for e in entries:
        if not isinstance(e, dict) or not isinstance(e.get("filename"), str):
            return None
        status = str(e.get("status") or "modified")
        sha = e.get("sha")
        if status != "removed" and not (isinstance(sha, str) and SHA_RE.match(sha)):
            return None
        previous = e.get("previous_filename") if isinstance(e.get("previous_filename"), str) else None
        out.append((ChangedFile(e["filename"], status, previous), None if status == "removed" else sha))
    return out


def _changes_between(old: _Listing, new: _Listing) -> list[tuple[ChangedFile, str | None]]:
    out: list[tuple[ChangedFile, str | None]] = []
    for path in sorted(old.blobs.keys() | new.blobs.keys()):
        before, after = old.blobs.get(path), new.blobs.get(path)
        if before == after:
            continue
        status = "added" if before is None else "removed" if after is None else "modified"
        out.append((ChangedFile(path, status), after))
    return out


def _merged(
    base: _Listing, changes: list[tuple[ChangedFile, str | None]], head: str
) -> tuple[_Listing, frozenset[str]]:
    """The base's files with the pull request's changes on top; the paths it removes."""
    blobs, removed = dict(base.blobs), set()
    for change, sha in changes:
        if change.previous:
            blobs.pop(change.previous, None)
            removed.add(change.previous)
        if sha is None:
            blobs.pop(change.path, None)
            removed.add(change.path)
        else:
            blobs[change.path] = sha
            removed.discard(change.path)
    return _Listing(head, blobs, complete=base.complete, dirs=dict(base.dirs)), frozenset(removed)
