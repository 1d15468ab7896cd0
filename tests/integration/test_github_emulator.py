"""The GitHub stand-in, driven through real PyGithub (GitHub App auth) and plain `requests`, over HTTPS,
against a git repository built here with the git CLI."""

from __future__ import annotations

import base64
import calendar
import hashlib
import hmac
import io
import json
import os
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from github import Auth, Github, GithubException, GithubIntegration, GithubRetry
from github.GithubException import BadCredentialsException, RateLimitExceededException, UnknownObjectException

from emulators.github import GitHubEmulator
from emulators.httpbase import RunningServer, serve
from emulators.tls import make_self_signed

pytestmark = pytest.mark.integration

APP_ID = 424242
INSTALLATION_ID = 777
OWNER, NAME = "acme", "deploy"
FULL = f"{OWNER}/{NAME}"
UNICODE_PATH = "config/ünïcode.txt"
UNICODE_TEXT = "Grüße, 世界 ✓ — naïve café\n" * 4
ZERO = "0" * 40
GIT_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "HOME": os.devnull,
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Ada Tester",
    "GIT_AUTHOR_EMAIL": "ada@example.test",
    "GIT_COMMITTER_NAME": "Ada Tester",
    "GIT_COMMITTER_EMAIL": "ada@example.test",
}


@dataclass
class Stack:
    url: str
    server: RunningServer
    emulator: GitHubEmulator
    key_pem: bytes
    other_key_pem: bytes
    repo_dir: Path
    shas: dict[str, str]


# -- repository built with the git CLI ------------------------------------------------------------


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, check=True)
    return proc.stdout.decode("utf-8").strip()


def write(root: Path, rel: str, text: str) -> None:
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


def make_repo(path: Path) -> dict[str, str]:
    """main: c1 -> c2 -> c3 (tag v1 on c1); feature: c1 -> f1."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    write(path, "README.md", "# deploy\n" + "Lorem ipsum dolor sit amet. " * 20 + "\n")
    write(path, "apps/web/app.yaml", "name: web\nimage: web:1\n")
    write(path, "apps/old.yaml", "name: old\n")
    write(path, UNICODE_PATH, UNICODE_TEXT)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    c1 = git(path, "rev-parse", "HEAD")
    git(path, "tag", "v1")
    write(path, "apps/web/app.yaml", "name: web\nimage: web:2\nreplicas: 2\n")
    write(path, "apps/api/app.yaml", "name: api\n")
    (path / "apps/old.yaml").unlink()
    (path / "docs").mkdir()
    git(path, "mv", "README.md", "docs/README.md")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "second: web v2, api, docs move")
    c2 = git(path, "rev-parse", "HEAD")
    write(path, "apps/api/app.yaml", "name: api\nimage: api:1\n")
    write(path, "apps/worker/app.yaml", "name: worker\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "third: worker")
    c3 = git(path, "rev-parse", "HEAD")
    git(path, "checkout", "-q", "-b", "feature", c1)
    write(path, "apps/feature.yaml", "name: feature\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "feature work")
    f1 = git(path, "rev-parse", "HEAD")
    git(path, "checkout", "-q", "main")
    return {"c1": c1, "c2": c2, "c3": c3, "f1": f1}


def pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("github")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tls = make_self_signed(tmp / "tls")
    repo_dir = tmp / "repos" / OWNER / NAME
    shas = make_repo(repo_dir)
    emulator = GitHubEmulator(tmp / "repos", APP_ID, public_pem, INSTALLATION_ID)
    server = serve(emulator, tls=tls)
    patch = pytest.MonkeyPatch()
    patch.setenv("REQUESTS_CA_BUNDLE", str(tls.cert_file))
    try:
        yield Stack(server.url, server, emulator, pem(key), pem(other), repo_dir, shas)
    finally:
        server.stop()
        patch.undo()


@pytest.fixture(autouse=True)
def clean(stack: Stack) -> None:
    admin(stack, "POST", "/_admin/reset")


def client(stack: Stack, key_pem: bytes | None = None, retry: Any = "default") -> Github:
    auth = Auth.AppAuth(APP_ID, (key_pem or stack.key_pem).decode()).get_installation_auth(INSTALLATION_ID)
    if retry == "default":
        retry = GithubRetry(total=3, backoff_factor=0.01, max_rate_limit_wait=1)
    return Github(
        base_url=stack.url, auth=auth, retry=retry, seconds_between_requests=0, seconds_between_writes=0
    )


@pytest.fixture
def gh(stack: Stack) -> Iterator[Github]:
    g = client(stack)
    yield g
    g.close()


def admin(stack: Stack, method: str, path: str, body: Any = None) -> Any:
    resp = requests.request(method, stack.url + path, json=body, timeout=10)
    assert resp.status_code < 300, resp.text
    return resp.json()


def sign(key_pem: bytes, **claims: Any) -> str:
    return jwt.encode(claims, key_pem, algorithm="RS256")


def app_jwt(stack: Stack) -> str:
    return Auth.AppAuth(APP_ID, stack.key_pem.decode()).create_jwt()


def installation_token(stack: Stack) -> str:
    resp = requests.post(
        f"{stack.url}/app/installations/{INSTALLATION_ID}/access_tokens",
        headers={"Authorization": f"Bearer {app_jwt(stack)}"},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()["token"]


def api_get(stack: Stack, path: str, token: str, **headers: str) -> requests.Response:
    return requests.get(stack.url + path, headers={"Authorization": f"token {token}", **headers}, timeout=10)


def call_statuses(stack: Stack, key: str) -> list[Any]:
    calls = admin(stack, "GET", "/_admin/calls")["calls"]
    return [c["status"] for c in calls if f"{c['method']} {c['path']}" == key]


# -- repository, branch, commit, refs -------------------------------------------------------------------


def test_repo_branch_and_commit(stack: Stack, gh: Github) -> None:
    s = stack.shas
    repo = gh.get_repo(FULL)
    assert (repo.full_name, repo.default_branch, repo.owner.login, repo.private) == (
        FULL,
        "main",
        OWNER,
        True,
    )
    assert repo.url == f"{stack.url}/repos/{FULL}"

    branch = repo.get_branch("main")
    assert branch.name == "main" and branch.commit.sha == s["c3"] and branch.protected is False
    assert repo.get_branch("feature").commit.sha == s["f1"]

    commit = repo.get_commit("main")
    assert commit.sha == s["c3"]
    assert commit.commit.message == "third: worker"
    assert commit.commit.author.name == "Ada Tester"
    assert [p.sha for p in commit.parents] == [s["c2"]]
    assert commit.commit.tree.sha == git(stack.repo_dir, "rev-parse", f"{s['c3']}^{{tree}}")

    second = repo.get_commit(s["c2"][:10])  # an abbreviated sha resolves like at GitHub
    files = {f.filename: f for f in second.files}
    assert {name: f.status for name, f in files.items()} == {
        "apps/web/app.yaml": "modified",
        "apps/api/app.yaml": "added",
        "apps/old.yaml": "removed",
        "docs/README.md": "renamed",
    }
    assert files["docs/README.md"].previous_filename == "README.md"
    assert (files["apps/web/app.yaml"].additions, files["apps/web/app.yaml"].deletions) == (2, 1)
    assert second.stats.additions == sum(f.additions for f in files.values())

    assert repo.get_commit("v1").sha == s["c1"]  # a tag
    root = repo.get_commit(s["c1"])
    assert root.parents == [] and {f.status for f in root.files} == {"added"}

    with pytest.raises(GithubException) as missing:
        repo.get_commit("no-such-branch")
    assert missing.value.status == 422  # GitHub's answer for a ref it cannot find
    with pytest.raises(UnknownObjectException):
        repo.get_branch("nope")


def test_git_refs_commits_and_listing(stack: Stack, gh: Github) -> None:
    s = stack.shas
    repo = gh.get_repo(FULL)
    ref = repo.get_git_ref("heads/main")
    assert (ref.ref, ref.object.sha, ref.object.type) == ("refs/heads/main", s["c3"], "commit")
    assert repo.get_git_ref("tags/v1").object.sha == s["c1"]
    git_commit = repo.get_git_commit(s["c2"])
    assert [p.sha for p in git_commit.parents] == [s["c1"]]
    assert git_commit.message == "second: web v2, api, docs move"

    commits = repo.get_commits()
    assert commits.totalCount == 3  # counted through the Link header's last page
    assert [c.sha for c in commits] == [s["c3"], s["c2"], s["c1"]]
    assert [c.sha for c in repo.get_commits(path="apps/api/app.yaml")] == [s["c3"], s["c2"]]
    assert {b.name for b in repo.get_branches()} == {"main", "feature"}


# -- trees, blobs, contents -----------------------------------------------------------------------------


def test_recursive_tree_and_blob_round_trip(stack: Stack, gh: Github) -> None:
    repo = gh.get_repo(FULL)
    tree = repo.get_git_tree(stack.shas["c1"], recursive=True)
    expected = set(
        git(stack.repo_dir, "ls-tree", "-r", "-t", "--name-only", "-z", stack.shas["c1"]).split("\0")
    )
    assert {e.path for e in tree.tree} == expected - {""}
    by_path = {e.path: e for e in tree.tree}
    assert by_path["apps"].type == "tree" and by_path["apps"].mode == "040000"
    entry = by_path[UNICODE_PATH]
    assert entry.type == "blob" and entry.size == len(UNICODE_TEXT.encode("utf-8"))
    assert entry.url == f"{stack.url}/repos/{FULL}/git/blobs/{entry.sha}"

    blob = repo.get_git_blob(entry.sha)
    assert blob.encoding == "base64" and blob.size == entry.size
    assert base64.b64decode(blob.content).decode("utf-8") == UNICODE_TEXT
    lines = blob.content.split("\n")
    assert all(len(line) == 60 for line in lines[:-2]) and lines[-1] == ""  # GitHub's 60-column wrap

    readme = repo.get_git_blob(by_path["README.md"].sha)
    assert base64.b64decode(readme.content) == (stack.repo_dir / "docs/README.md").read_bytes()

    by_commit = repo.get_git_tree("main")  # a ref resolves to its tree, not recursive
    assert {e.path for e in by_commit.tree} == {"apps", "config", "docs"}
    assert {e.path for e in repo.get_git_tree("main:apps").tree} == {"api", "web", "worker"}
    with pytest.raises(UnknownObjectException):
        repo.get_git_blob(by_path["apps"].sha)  # a tree is not a blob


def test_contents_file_directory_and_download(stack: Stack, gh: Github) -> None:
    repo = gh.get_repo(FULL)
    f = repo.get_contents(UNICODE_PATH, ref=stack.shas["c1"])
    assert not isinstance(f, list)
    assert f.type == "file" and f.encoding == "base64" and f.name == "ünïcode.txt"
    assert f.decoded_content.decode("utf-8") == UNICODE_TEXT
    assert f.sha == git(stack.repo_dir, "rev-parse", f"{stack.shas['c1']}:{UNICODE_PATH}")
    download = requests.get(f.download_url, timeout=10)
    assert download.status_code == 200 and download.content.decode("utf-8") == UNICODE_TEXT

    listing = repo.get_contents("apps")  # default branch
    assert isinstance(listing, list)
    assert {(c.name, c.type) for c in listing} == {("api", "dir"), ("web", "dir"), ("worker", "dir")}
    root = repo.get_contents("", ref="feature")
    assert {c.name for c in root} == {"README.md", "apps", "config"}
    with pytest.raises(UnknownObjectException):
        repo.get_contents("apps/missing.yaml")
    with pytest.raises(GithubException) as bad_ref:
        repo.get_contents("README.md", ref="no-such-ref")
    assert bad_ref.value.status == 404 and "No commit found for the ref" in bad_ref.value.data["message"]


# -- compare --------------------------------------------------------------------------------------------


def test_compare_lists_changed_files(stack: Stack, gh: Github) -> None:
    s = stack.shas
    repo = gh.get_repo(FULL)
    cmp = repo.compare(s["c1"], "main")
    assert (cmp.status, cmp.ahead_by, cmp.behind_by, cmp.total_commits) == ("ahead", 2, 0, 2)
    assert [c.sha for c in cmp.commits] == [s["c2"], s["c3"]]  # oldest first
    files = {f.filename: f for f in cmp.files}
    assert {name: f.status for name, f in files.items()} == {
        "apps/web/app.yaml": "modified",
        "apps/api/app.yaml": "added",
        "apps/worker/app.yaml": "added",
        "apps/old.yaml": "removed",
        "docs/README.md": "renamed",
    }
    assert files["docs/README.md"].previous_filename == "README.md"
    assert files["apps/api/app.yaml"].sha == git(stack.repo_dir, "rev-parse", f"{s['c3']}:apps/api/app.yaml")

    diverged = repo.compare("main", "feature")
    assert (diverged.status, diverged.ahead_by, diverged.behind_by) == ("diverged", 1, 2)
    assert [f.filename for f in diverged.files] == ["apps/feature.yaml"]  # against the merge base
    assert repo.compare("main", s["c1"]).status == "behind"
    assert repo.compare("main", "main").status == "identical"


# -- commit statuses ------------------------------------------------------------------------------------


def test_commit_statuses(stack: Stack, gh: Github) -> None:
    commit = gh.get_repo(FULL).get_commit(stack.shas["c3"])
    first = commit.create_status(
        "pending", target_url="https://ci.test/1", description="sync", context="synoscd"
    )
    assert (first.state, first.context, first.target_url, first.description) == (
        "pending",
        "synoscd",
        "https://ci.test/1",
        "sync",
    )
    assert first.creator.login == "synoscd[bot]"
    commit.create_status("success", context="synoscd")
    assert commit.get_combined_status().state == "success"
    commit.create_status("failure", context="other")
    combined = commit.get_combined_status()
    assert combined.state == "failure" and combined.total_count == 2 and combined.sha == stack.shas["c3"]
    assert {st.context: st.state for st in combined.statuses} == {"synoscd": "success", "other": "failure"}
    assert [st.state for st in commit.get_statuses()] == ["failure", "success", "pending"]  # newest first

    with pytest.raises(GithubException) as bad_state:
        commit.create_status("bogus")
    assert bad_state.value.status == 422
    token = installation_token(stack)
    by_branch = requests.post(
        f"{stack.url}/repos/{FULL}/statuses/main",
        json={"state": "success"},
        headers={"Authorization": f"token {token}"},
        timeout=10,
    )
    assert by_branch.status_code == 422 and "No commit found" in by_branch.json()["message"]


# -- GitHub App authentication --------------------------------------------------------------------------


def post_token(stack: Stack, token: str, scheme: str = "Bearer") -> requests.Response:
    return requests.post(
        f"{stack.url}/app/installations/{INSTALLATION_ID}/access_tokens",
        headers={"Authorization": f"{scheme} {token}"},
        timeout=10,
    )


def test_installation_token_shape(stack: Stack) -> None:
    resp = post_token(stack, app_jwt(stack))
    assert resp.status_code == 201
    body = resp.json()
    assert body["token"].startswith("ghs_") and body["repository_selection"] == "all"
    expires = calendar.timegm(time.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert 3500 < expires - time.time() <= 3600
    assert post_token(stack, app_jwt(stack), scheme="token").status_code == 401  # app JWTs need Bearer
    app = requests.get(f"{stack.url}/app", headers={"Authorization": f"Bearer {app_jwt(stack)}"}, timeout=10)
    assert app.status_code == 200 and app.json()["id"] == APP_ID
    wrong_inst = requests.post(
        f"{stack.url}/app/installations/1/access_tokens",
        headers={"Authorization": f"Bearer {app_jwt(stack)}"},
        timeout=10,
    )
    assert wrong_inst.status_code == 404


def test_app_endpoints_through_github_integration(stack: Stack) -> None:
    integration = GithubIntegration(auth=Auth.AppAuth(APP_ID, stack.key_pem.decode()), base_url=stack.url)
    installation = integration.get_repo_installation(OWNER, NAME)
    assert (installation.id, installation.app_id) == (INSTALLATION_ID, APP_ID)
    assert [i.id for i in integration.get_installations()] == [INSTALLATION_ID]
    assert FULL in {r.full_name for r in installation.get_repos()}
    token = installation_token(stack)
    wrong_auth = api_get(stack, f"/repos/{FULL}/installation", token)  # app endpoints want the JWT
    assert wrong_auth.status_code == 401
    head = requests.head(f"{stack.url}/repos/{FULL}", headers={"Authorization": f"token {token}"}, timeout=10)
    assert head.status_code == 200 and head.content == b"" and head.headers["ETag"]


def test_expired_and_future_jwts_rejected(stack: Stack) -> None:
    now = int(time.time())
    expired = post_token(stack, sign(stack.key_pem, iat=now - 700, exp=now - 120, iss=str(APP_ID)))
    assert expired.status_code == 401
    assert expired.json()["message"].startswith("'Expiration time' claim ('exp') must be a numeric value")
    future = post_token(stack, sign(stack.key_pem, iat=now + 300, exp=now + 500, iss=str(APP_ID)))
    assert future.status_code == 401 and "'Issued at' claim ('iat')" in future.json()["message"]
    too_long = post_token(stack, sign(stack.key_pem, iat=now, exp=now + 3600, iss=str(APP_ID)))
    assert too_long.status_code == 401 and "too far in the future" in too_long.json()["message"]
    skewed = post_token(stack, sign(stack.key_pem, iat=now + 30, exp=now + 300, iss=str(APP_ID)))
    assert skewed.status_code == 201  # within GitHub's clock-drift allowance


def test_jwt_from_another_key_or_app_rejected(stack: Stack) -> None:
    now = int(time.time())
    other_key = post_token(stack, sign(stack.other_key_pem, iat=now - 60, exp=now + 300, iss=str(APP_ID)))
    assert other_key.status_code == 401
    assert other_key.json()["message"] == "A JSON web token could not be decoded"
    other_app = post_token(stack, sign(stack.key_pem, iat=now - 60, exp=now + 300, iss=str(APP_ID + 1)))
    assert other_app.status_code == 401
    assert post_token(stack, "not-a-jwt").status_code == 401

    g = client(stack, key_pem=stack.other_key_pem, retry=None)
    with pytest.raises(GithubException) as err:
        g.get_repo(FULL)
    assert err.value.status == 401
    g.close()


def test_installation_token_expiry(stack: Stack, gh: Github) -> None:
    assert gh.get_repo(FULL).full_name == FULL
    assert admin(stack, "POST", "/_admin/tokens/expire")["expired"] == 1
    with pytest.raises(BadCredentialsException):
        gh.get_repo(FULL)  # PyGithub still holds the token it thinks is valid for an hour
    fresh = client(stack)
    assert fresh.get_repo(FULL).default_branch == "main"
    fresh.close()
    missing = requests.get(f"{stack.url}/repos/{FULL}", timeout=10)
    assert missing.status_code == 401 and missing.json()["message"] == "Requires authentication"


# -- conditional requests and rate limits ---------------------------------------------------------------


def test_if_none_match_answers_304_for_free(stack: Stack) -> None:
    token = installation_token(stack)
    path = f"/repos/{FULL}/git/trees/{stack.shas['c3']}?recursive=1"
    first = api_get(stack, path, token)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('W/"') and etag.endswith('"')  # weak, as GitHub
    assert first.headers["x-ratelimit-limit"] == "5000" and first.headers["x-ratelimit-resource"] == "core"
    remaining = int(first.headers["x-ratelimit-remaining"])
    assert int(first.headers["x-ratelimit-used"]) == 5000 - remaining

    cached = api_get(stack, path, token, **{"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["ETag"] == etag
    assert int(cached.headers["x-ratelimit-remaining"]) == remaining  # a 304 is not counted
    assert cached.headers["x-ratelimit-limit"] == "5000" and "x-ratelimit-reset" in cached.headers
    strong = etag.removeprefix("W/")
    assert api_get(stack, path, token, **{"If-None-Match": f'"x", {strong}'}).status_code == 304

    stale = api_get(stack, path, token, **{"If-None-Match": '"stale"'})
    assert stale.status_code == 200 and int(stale.headers["x-ratelimit-remaining"]) == remaining - 1
    other_token = installation_token(stack)
    assert api_get(stack, path, other_token).headers["ETag"] != etag  # ETags differ per token

    contents = f"/repos/{FULL}/contents/apps?ref=main"  # entries carry download links: still stable
    listing = api_get(stack, contents, token)
    again = api_get(stack, contents, token, **{"If-None-Match": listing.headers["ETag"]})
    assert listing.status_code == 200 and again.status_code == 304


def test_primary_rate_limit_exhaustion(stack: Stack, gh: Github) -> None:
    repo = gh.get_repo(FULL)  # the token POST is not counted; this GET is
    state = admin(stack, "PUT", "/_admin/ratelimit", {"remaining": 1})
    assert state["remaining"] == 1
    repo.get_branch("main")
    with pytest.raises(RateLimitExceededException):
        repo.get_commit("main")
    assert gh.get_rate_limit().resources.core.remaining == 0  # /rate_limit still answers

    token = installation_token(stack)
    limited = api_get(stack, f"/repos/{FULL}", token)
    assert limited.status_code == 403
    assert limited.json()["message"] == f"API rate limit exceeded for installation ID {INSTALLATION_ID}."
    assert limited.headers["x-ratelimit-remaining"] == "0"
    assert int(limited.headers["x-ratelimit-reset"]) > time.time()


def test_secondary_rate_limit(stack: Stack, gh: Github) -> None:
    gh.get_repo(FULL)
    admin(stack, "DELETE", "/_admin/calls")
    admin(stack, "PUT", "/_admin/ratelimit", {"secondary": True, "secondary_status": 429, "retry_after": 0})
    admin(stack, "PUT", "/_admin/ratelimit", {"secondary_count": 1})
    assert gh.get_repo(FULL).name == NAME  # GithubRetry honours retry-after and tries again
    assert call_statuses(stack, f"GET /repos/{FULL}") == [429, 200]

    # Tokens first: a secondary limit covers the app endpoints too. No retry for `raw`: GithubRetry
    # would sleep retry-after (7 s) between attempts whatever max_rate_limit_wait says.
    token = installation_token(stack)
    raw = client(stack, retry=None)
    raw.get_repo(FULL)
    admin(stack, "PUT", "/_admin/ratelimit", {"secondary": True, "secondary_status": 403, "retry_after": 7})
    limited = api_get(stack, f"/repos/{FULL}", token)
    assert limited.status_code == 403 and limited.headers["retry-after"] == "7"
    assert limited.json()["message"].startswith("You have exceeded a secondary rate limit")
    with pytest.raises(RateLimitExceededException):
        raw.get_repo(FULL)
    raw.close()
    admin(stack, "PUT", "/_admin/ratelimit", {"secondary": False})
    assert api_get(stack, f"/repos/{FULL}", token).status_code == 200


def test_secondary_limit_without_retry_after(stack: Stack) -> None:
    """GitHub answers a secondary limit with 403 or 429, and sends Retry-After only sometimes."""
    token = installation_token(stack)
    for status in (403, 429):
        admin(
            stack,
            "PUT",
            "/_admin/ratelimit",
            {"secondary": True, "secondary_status": status, "retry_after": None},
        )
        limited = api_get(stack, f"/repos/{FULL}", token)
        assert limited.status_code == status and "retry-after" not in limited.headers
        assert limited.json()["message"].startswith("You have exceeded a secondary rate limit")
        assert "x-ratelimit-remaining" in limited.headers
    admin(stack, "PUT", "/_admin/ratelimit", {"secondary": False})


def test_tree_echoes_the_requested_sha_and_truncates_above_the_limit(stack: Stack) -> None:
    token = installation_token(stack)
    c3 = stack.shas["c3"]
    by_commit = api_get(stack, f"/repos/{FULL}/git/trees/{c3}?recursive=1", token).json()
    assert by_commit["sha"] == c3 and by_commit["url"].endswith(f"/git/trees/{c3}"), "echoed, as GitHub does"
    assert by_commit["truncated"] is False
    tree_sha = git(stack.repo_dir, "rev-parse", f"{c3}^{{tree}}")
    assert api_get(stack, f"/repos/{FULL}/git/trees/{tree_sha}", token).json()["sha"] == tree_sha
    assert admin(stack, "PUT", "/_admin/trees", {"max_entries": 3}) == {"max_entries": 3}
    cut = api_get(stack, f"/repos/{FULL}/git/trees/{c3}?recursive=1", token).json()
    assert cut["truncated"] is True and len(cut["tree"]) == 3
    assert cut["tree"] == by_commit["tree"][:3]
    top = api_get(stack, f"/repos/{FULL}/git/trees/{c3}", token).json()
    assert top["truncated"] is False and len(top["tree"]) <= 3, "a plain listing under the limit is whole"
    admin(stack, "PUT", "/_admin/trees", {"max_entries": None})
    assert api_get(stack, f"/repos/{FULL}/git/trees/{c3}?recursive=1", token).json()["truncated"] is False
    bad = requests.put(f"{stack.url}/_admin/trees", json={"max_entries": -1}, timeout=10)
    assert bad.status_code == 400


def test_created_status_location_and_the_limit_per_sha_and_context(stack: Stack) -> None:
    token = installation_token(stack)
    sha = stack.shas["c1"]
    url = f"{stack.url}/repos/{FULL}/statuses/{sha}"
    with requests.Session() as session:
        session.headers["Authorization"] = f"token {token}"
        first = session.post(url, json={"state": "pending", "context": "ci"}, timeout=10)
        assert first.status_code == 201
        assert first.headers["Location"] == f"{stack.url}/repos/{FULL}/statuses/{first.json()['id']}"
        assert not first.headers["ETag"].startswith("W/"), "a creation carries a strong ETag"
        for _ in range(999):
            assert (
                session.post(url, json={"state": "success", "context": "ci"}, timeout=10).status_code == 201
            )
        refused = session.post(url, json={"state": "success", "context": "ci"}, timeout=10)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["message"] == (
            "This SHA and context has reached the maximum number of statuses."
        )
        assert session.post(url, json={"state": "success", "context": "other"}, timeout=10).status_code == 201


# -- faults and the call log ----------------------------------------------------------------------------


def test_server_error_burst_then_success(stack: Stack, gh: Github) -> None:
    gh.get_repo(FULL)
    key = f"GET /repos/{FULL}"
    admin(stack, "DELETE", "/_admin/calls")
    admin(
        stack,
        "POST",
        "/_admin/faults",
        {"method": "GET", "path": f"^/repos/{FULL}$", "status": 500, "count": 2},
    )
    assert gh.get_repo(FULL).full_name == FULL
    assert call_statuses(stack, key) == [500, 500, 200]

    admin(stack, "DELETE", "/_admin/calls")
    admin(stack, "POST", "/_admin/faults", {"path": f"^/repos/{FULL}$", "drop": True, "count": 1})
    assert gh.get_repo(FULL).full_name == FULL
    assert call_statuses(stack, key) == ["dropped", 200]

    admin(stack, "POST", "/_admin/faults", {"path": f"^/repos/{FULL}$", "status": 503, "count": 10})
    with pytest.raises(requests.exceptions.RetryError):
        gh.get_repo(FULL)  # more failures than the retry budget


def test_call_log_counts_api_calls_only(stack: Stack, gh: Github) -> None:
    admin(stack, "DELETE", "/_admin/calls")
    repo = gh.get_repo(FULL)
    repo.get_branch("main")
    repo.get_branch("main")
    admin(stack, "GET", "/_admin/ratelimit")
    log = admin(stack, "GET", "/_admin/calls")
    assert log["counts"] == {
        f"POST /app/installations/{INSTALLATION_ID}/access_tokens": 1,
        f"GET /repos/{FULL}": 1,
        f"GET /repos/{FULL}/branches/main": 2,
    }
    assert log["total"] == 4


# -- not found, tarball, admin repositories -------------------------------------------------------------


def test_not_found_in_github_shape(stack: Stack, gh: Github) -> None:
    token = installation_token(stack)
    expected = {"message": "Not Found", "documentation_url": "https://docs.github.com/rest", "status": "404"}
    for path in (
        f"/repos/{OWNER}/nope",
        f"/repos/{FULL}/git/commits/{'1' * 40}",
        f"/repos/{FULL}/git/trees/{'2' * 40}",
        f"/repos/{FULL}/git/blobs/{'3' * 40}",
        f"/repos/{FULL}/git/ref/heads/nope",
        f"/repos/{FULL}/compare/main...nope",
        "/no/such/endpoint",
    ):
        resp = api_get(stack, path, token)
        assert resp.status_code == 404, path
        assert resp.json() == expected, path
    with pytest.raises(UnknownObjectException):
        gh.get_repo(f"{OWNER}/nope")
    assert gh.get_repo("ACME/Deploy").full_name == FULL  # names are case-insensitive


def test_tarball_download(stack: Stack, gh: Github) -> None:
    sha = stack.shas["c3"]
    link = gh.get_repo(FULL).get_archive_link("tarball", "main")
    assert link.startswith(stack.url)
    resp = requests.get(link, timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/x-gzip"
    with tarfile.open(fileobj=io.BytesIO(resp.content), mode="r:gz") as tar:
        prefix = f"{OWNER}-{NAME}-{sha[:7]}/"
        names = set(tar.getnames())
        assert f"{prefix}apps/worker/app.yaml" in names and f"{prefix}apps/old.yaml" not in names
        member = tar.extractfile(f"{prefix}{UNICODE_PATH}")
        assert member is not None and member.read().decode("utf-8") == UNICODE_TEXT
    assert requests.get(link.split("?")[0], timeout=10).status_code == 404  # the link's token is needed


def test_admin_repo_and_commit(stack: Stack, gh: Github) -> None:
    created = admin(
        stack,
        "POST",
        "/_admin/repos",
        {"owner": OWNER, "name": "svc-admin", "default_branch": "trunk", "files": {"a.txt": "one\n"}},
    )
    assert created["default_branch"] == "trunk" and Path(created["path"]).is_dir()
    dup = requests.post(f"{stack.url}/_admin/repos", json={"owner": OWNER, "name": "svc-admin"}, timeout=10)
    assert dup.status_code == 409
    bad = requests.post(f"{stack.url}/_admin/repos", json={"owner": "..", "name": "x"}, timeout=10)
    assert bad.status_code == 400

    repo = gh.get_repo(f"{OWNER}/svc-admin")
    assert repo.default_branch == "trunk"
    assert repo.get_contents("a.txt").decoded_content == b"one\n"
    update = admin(
        stack,
        "POST",
        f"/_admin/repos/{OWNER}/svc-admin/commits",
        {"files": {"a.txt": None, "b/c.txt": "two"}},
    )
    cmp = repo.compare(created["head"], update["sha"])
    assert {f.filename: f.status for f in cmp.files} == {"a.txt": "removed", "b/c.txt": "added"}


def test_reset_keeps_repositories_but_forgets_tokens_and_statuses(stack: Stack, gh: Github) -> None:
    commit = gh.get_repo(FULL).get_commit(stack.shas["c2"])
    commit.create_status("success", context="keep")
    admin(stack, "POST", "/_admin/reset")
    with pytest.raises(BadCredentialsException):
        gh.get_repo(FULL)
    fresh = client(stack)
    again = fresh.get_repo(FULL).get_commit(stack.shas["c2"])
    assert again.get_combined_status().total_count == 0
    fresh.close()


def test_large_tree_and_its_files(stack: Stack, gh: Github) -> None:
    # Speed is measured in bench/, never asserted here (timings flake on a shared machine).
    files = {f"apps/app{i // 50}/file{i}.yaml": f"n: {i}\n" for i in range(500)}
    created = admin(stack, "POST", "/_admin/repos", {"owner": OWNER, "name": "big", "files": files})
    token = installation_token(stack)
    with requests.Session() as session:
        session.headers["Authorization"] = f"token {token}"
        assert session.get(f"{stack.url}/repos/{OWNER}/big", timeout=10).status_code == 200  # warm TLS
        path = f"{stack.url}/repos/{OWNER}/big/git/trees/{created['head']}?recursive=1"
        answers = [session.get(path, timeout=10) for _ in range(2)]
        assert [a.status_code for a in answers] == [200, 200]
        resp = answers[-1]
        assert answers[0].content == resp.content, "the same tree, served again from the cache"
    blobs = [e for e in resp.json()["tree"] if e["type"] == "blob"]
    assert len(blobs) == 500 and resp.json()["truncated"] is False
    commit = gh.get_repo(f"{OWNER}/big").get_commit(created["head"])
    assert len(list(commit.files)) == 500  # 300 per page, the rest through the Link header


# -- webhooks -------------------------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    server: _ReceiverServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        if self.server.callback:  # like a receiver that reads GitHub while handling the delivery
            self.server.callback_status = requests.get(self.server.callback, timeout=5).status_code
        answer = b'{"accepted": true}'
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        pass


class _ReceiverServer(HTTPServer):
    received: list[tuple[dict[str, str], bytes]]
    callback: str | None = None
    callback_status: int | None = None


@contextmanager
def receiver(callback: str | None = None) -> Iterator[tuple[_ReceiverServer, str]]:
    server = _ReceiverServer(("127.0.0.1", 0), _Receiver)
    server.received = []
    server.callback = callback
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}/api/webhook"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_push_webhook_delivery(stack: Stack) -> None:
    s = stack.shas
    secret = "s3cr3t-hook"
    # The receiver calls back into the stand-in while the delivery is under way: that must not deadlock.
    with receiver(callback=f"{stack.url}/_admin/ratelimit") as (hook, url):
        spec = {
            "url": url,
            "secret": secret,
            "event": "push",
            "owner": OWNER,
            "name": NAME,
            "before": s["c1"],
        }
        started = time.monotonic()
        result = admin(stack, "POST", "/_admin/webhooks/deliver", spec)
        assert time.monotonic() - started < 2 and hook.callback_status == 200
    received = hook.received
    assert result["status"] == 202 and json.loads(result["body"]) == {"accepted": True}
    assert len(received) == 1
    headers, body = received[0]
    assert headers["x-github-event"] == "push"
    assert headers["x-github-delivery"] == result["delivery_id"] and len(result["delivery_id"]) == 36
    assert (
        headers["user-agent"].startswith("GitHub-Hookshot/") and headers["content-type"] == "application/json"
    )
    assert headers["x-github-hook-id"].isdigit()
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["x-hub-signature-256"], expected)
    assert headers["x-hub-signature"] == "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()

    payload = json.loads(body)
    assert (payload["ref"], payload["before"], payload["after"]) == ("refs/heads/main", s["c1"], s["c3"])
    assert payload["repository"]["full_name"] == FULL and payload["repository"]["default_branch"] == "main"
    assert (
        payload["repository"]["owner"]["login"] == OWNER and payload["repository"]["owner"]["name"] == OWNER
    )
    assert payload["head_commit"]["id"] == s["c3"] and payload["head_commit"]["message"] == "third: worker"
    assert payload["pusher"]["name"] == "Ada Tester" and payload["forced"] is False
    changes = [
        (c["id"], sorted(c["added"]), sorted(c["modified"]), sorted(c["removed"])) for c in payload["commits"]
    ]
    assert changes == [
        (
            s["c2"],
            ["apps/api/app.yaml", "docs/README.md"],
            ["apps/web/app.yaml"],
            ["README.md", "apps/old.yaml"],
        ),
        (s["c3"], ["apps/worker/app.yaml"], ["apps/api/app.yaml"], []),
    ]


def test_ping_forced_push_and_given_payload(stack: Stack) -> None:
    s = stack.shas
    with receiver() as (hook, url):
        received = hook.received
        ping = admin(
            stack, "POST", "/_admin/webhooks/deliver", {"url": url, "event": "ping", "delivery_id": "d-1"}
        )
        forced = admin(
            stack,
            "POST",
            "/_admin/webhooks/deliver",
            {"url": url, "owner": OWNER, "name": NAME, "ref": "main", "before": s["f1"], "after": s["c3"]},
        )
        custom = admin(
            stack, "POST", "/_admin/webhooks/deliver", {"url": url, "event": "push", "payload": {"x": 1}}
        )
    assert [r["status"] for r in (ping, forced, custom)] == [202, 202, 202]
    ping_headers, ping_body = received[0]
    assert ping_headers["x-github-delivery"] == "d-1" and "x-hub-signature-256" not in ping_headers
    ping_payload = json.loads(ping_body)
    assert ping_payload["zen"] and ping_payload["hook_id"] == ping_payload["hook"]["id"]
    assert ping_payload["hook"]["config"]["url"] == url
    forced_payload = json.loads(received[1][1])
    assert forced_payload["forced"] is True and forced_payload["after"] == s["c3"]
    assert json.loads(received[2][1]) == {"x": 1}
    deliveries = admin(stack, "GET", "/_admin/webhooks/deliveries")["deliveries"]
    assert deliveries[0]["delivery_id"] == "d-1" and len(deliveries) == 3

    dead = admin(stack, "POST", "/_admin/webhooks/deliver", {"url": url, "event": "ping"})
    assert dead["status"] is None and dead["error"]  # the receiver is gone
    assert ZERO not in (forced_payload["before"], forced_payload["after"])
