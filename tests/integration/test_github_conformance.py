"""The GitHub stand-in against recorded github.com answers (tests/fixtures/github-recordings, from
PyGithub's ReplayData): every recorded request to an endpoint SynosCD calls or the stand-in serves
is replayed against the stand-in, with the recorded names and shas mapped onto a local repository,
and the answer compared with the recorded one — status, the headers clients act on (weak ETags on
reads, Location on creations, Retry-After, rate-limit headers) and the body's shape (every recorded
field present with the same JSON type, recursively), plus the values that matter (echoed shas,
exact error messages). Recordings of endpoints the stand-in does not serve are counted and named;
docs/github-conformance.md reports the figures."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulators.github import GitHubEmulator
from emulators.httpbase import RunningServer, serve
from emulators.tls import make_self_signed
from tests.conftest import FIXTURES, REPO_ROOT

pytestmark = pytest.mark.integration

RECORDINGS = FIXTURES / "github-recordings"
APP_ID, INSTALLATION_ID = 424242, 4242
OWNER, NAME = "acme", "conformance"
SHA = re.compile(r"[0-9a-f]{40}")
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

# The endpoints the stand-in serves (SynosCD calls: access tokens, ref, trees, blobs, statuses,
# compare, check runs), each a family of emulators/github/.
REPO = r"/repos/[^/]+/[^/]+"
ENDPOINTS: list[tuple[str, str, str]] = [
    ("POST", r"/app/installations/\d+/access_tokens", "auth"),
    ("GET", r"/app", "auth"),
    ("GET", r"/app/installations(\?.*)?", "auth"),
    ("GET", r"/app/installations/\d+", "auth"),
    ("GET", REPO + r"/installation", "auth"),
    ("GET", r"/installation/repositories", "repos"),
    ("GET", r"/rate_limit", "ratelimit"),
    ("GET", REPO, "repos"),
    ("GET", REPO + r"/branches/[^?]+", "repos"),
    ("GET", REPO + r"/commits/[0-9a-f]{40}(\?.*)?", "repos"),
    ("GET", REPO + r"/git/commits/[0-9a-f]{40}", "repos"),
    ("GET", REPO + r"/compare/[^/]+", "repos"),
    ("GET", REPO + r"/git/ref/.+", "refs"),
    ("GET", REPO + r"/git/trees/[0-9a-f]{40}(\?recursive=1)?", "trees"),
    ("GET", REPO + r"/git/blobs/[0-9a-f]{40}", "blobs"),
    ("POST", REPO + r"/statuses/[0-9a-f]{40}", "statuses"),
    ("GET", REPO + r"/statuses/[0-9a-f]{40}", "statuses"),
    ("GET", REPO + r"/contents/[^?]*(\?.*)?", "contents"),
    ("POST", REPO + r"/check-runs", "checks"),
    ("GET", REPO + r"/check-runs/\d+", "checks"),
    ("PATCH", REPO + r"/check-runs/\d+", "checks"),
    ("GET", REPO + r"/check-runs/\d+/annotations(\?.*)?", "checks"),
    ("GET", REPO + r"/commits/[0-9a-f]{40}/check-runs(\?.*)?", "checks"),
    ("GET", REPO + r"/commits/[0-9a-f]{40}/check-suites(\?.*)?", "checks"),
    ("POST", REPO + r"/check-suites", "checks"),
    ("PATCH", REPO + r"/check-suites/preferences", "checks"),
    ("GET", REPO + r"/check-suites/\d+", "checks"),
    ("GET", REPO + r"/check-suites/\d+/check-runs(\?.*)?", "checks"),
    ("POST", REPO + r"/check-suites/\d+/rerequest", "checks"),
    ("GET", REPO + r"/pulls(\?.*)?", "pulls"),
    ("GET", REPO + r"/pulls/\d+", "pulls"),
    ("GET", REPO + r"/pulls/\d+/files", "pulls"),
    ("GET", REPO + r"/commits/[0-9a-f]{40}/pulls", "pulls"),
]
# What a check-run or pull-request recording reads must exist first: one check run (in its suite) on
# the head commit, with annotations, and two pull requests (one open, one closed) from a branch at the
# head commit into a branch at the base commit. Recorded ids and numbers are mapped onto these.
SEED_RUN = {
    "name": "conformance",
    "status": "completed",
    "conclusion": "success",
    "external_id": "seed",
    "details_url": "https://example.test/details",
    "output": {
        "title": "Seed report",
        "summary": "Seeded so recorded reads have something to read.",
        "text": "Details.",
        "annotations": [
            {
                "path": "README.md",
                "start_line": 1,
                "end_line": 1,
                "annotation_level": "warning",
                "title": "Seed",
                "message": "A seeded annotation.",
                "raw_details": "Raw details.",
            }
        ],
    },
}
# Recorded errors whose condition the stand-in can set up, replayed on the ref endpoint SynosCD reads.
ERRORS = {
    "SpecificExceptions.testBadCredentials": "bad-token",
    "SpecificExceptions.testRateLimitExceeded": "primary-limit",
    "SpecificExceptions.testAuthenticatedRateLimitExceeded": "secondary-limit",
    "SpecificExceptions.testUnknownObject": "missing",
}
# Fields of recorded bodies the stand-in does not model: social and billing facts of users and
# repositories no client of ours reads, and fields GitHub has since retired.
NOT_MODELLED = {
    # users and owners
    "gravatar_id", "followers_url", "following_url", "gists_url", "starred_url", "subscriptions_url",
    "organizations_url", "repos_url", "events_url", "received_events_url", "user_view_type",
    "hireable", "bio", "blog", "company", "location", "public_repos", "public_gists",
    "followers", "following", "disk_usage", "plan", "private_gists", "total_private_repos",
    "owned_private_repos", "collaborators", "two_factor_authentication",
    # repositories
    "homepage", "forks", "forks_count", "watchers", "watchers_count", "stargazers_count",
    "open_issues", "open_issues_count", "language", "has_wiki", "has_downloads", "has_pages",
    "has_projects", "has_discussions", "mirror_url", "svn_url", "master_branch", "network_count",
    "subscribers_count", "license", "allow_forking", "web_commit_signoff_required", "temp_clone_token",
    "organization", "parent", "source", "security_and_analysis", "custom_properties",
    "forks_url", "keys_url", "collaborators_url", "teams_url", "issue_events_url", "assignees_url",
    "tags_url", "languages_url", "stargazers_url", "contributors_url", "subscribers_url",
    "subscription_url", "comments_url", "issue_comment_url", "merges_url", "downloads_url",
    "issues_url", "pulls_url", "milestones_url", "notifications_url", "labels_url", "releases_url",
    "deployments_url", "git_tags_url", "squash_merge_commit_title", "squash_merge_commit_message",
    "merge_commit_title", "merge_commit_message", "allow_squash_merge", "allow_merge_commit",
    "allow_rebase_merge", "allow_auto_merge", "delete_branch_on_merge", "allow_update_branch",
    "use_squash_pr_title_as_default",
    # apps and installations
    "client_id", "has_multiple_single_files", "single_file_paths", "target_type_name",
    # commits and files
    "patch", "verification",
    # branch protection: every branch of the stand-in is unprotected
    "enforce_admins",
    # rate_limit resources beyond core, search and graphql
    "source_import", "code_scanning_upload", "actions_runner_registration", "scim", "dependency_snapshots",
    "audit_log", "audit_log_streaming", "code_search", "dependency_sbom", "code_scanning_autofix",
    "merge_queue",
}  # fmt: skip
# Maps whose keys depend on the account (an App's granted permissions): values are compared, not keys.
MAPS = {"permissions"}
RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


@dataclass
class Local:
    url: str
    emulator: GitHubEmulator
    key_pem: bytes
    head: str
    base: str
    blob: str
    token: str = ""
    ca: str = ""
    seeded: dict[str, int] = field(default_factory=dict)


@dataclass
class Outcome:
    recording: str
    method: str
    path: str
    family: str
    problems: list[str] = field(default_factory=list)


def git(cwd: Path, *args: str) -> str:
    return (
        subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, check=True)
        .stdout.decode()
        .strip()
    )


def recordings() -> list[tuple[str, dict[str, Any]]]:
    return [(p.stem, json.loads(p.read_text())) for p in sorted(RECORDINGS.glob("*.json"))]


def recorded_refs() -> set[str]:
    """Every branch name the recordings ask for, to create locally."""
    names = set()
    for _, rec in recordings():
        for it in rec["interactions"]:
            path, _, query = it["path"].partition("?")
            for ref in re.findall(r"(?:^|&)ref=([^&]+)", query):
                names.add(unquote(ref).removeprefix("refs/heads/"))
            for pattern in (REPO + r"/git/ref/heads/(.+)", REPO + r"/branches/(.+)"):
                m = re.fullmatch(pattern, path)
                if m:
                    names.add(m.group(1))
    return names


def make_repo(path: Path) -> tuple[str, str, str]:
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    (path / "doc").mkdir()
    (path / "README.md").write_text("# conformance\n")
    (path / "doc" / "ReferenceOfClasses.md").write_text("Reference\n" * 20)
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "base")
    base = git(path, "rev-parse", "HEAD")
    for tag in ("v0.6", "v1.54"):
        git(path, "tag", tag)
    (path / "setup.py").write_text("from setuptools import setup\n")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "head")
    head = git(path, "rev-parse", "HEAD")
    for tag in ("v0.7", "v1.54.1"):
        git(path, "tag", tag)
    for name in recorded_refs():
        git(path, "branch", "-f", name, head)
    git(path, "branch", "-f", "pr-base", base)  # the seeded pull requests' base and head
    git(path, "branch", "-f", "pr-head", head)
    blob = git(path, "rev-parse", f"{head}:setup.py")
    return base, head, blob


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Local]:
    tmp = tmp_path_factory.mktemp("conformance")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    base, head, blob = make_repo(tmp / "repos" / OWNER / NAME)
    emulator = GitHubEmulator(tmp / "repos", APP_ID, key_pem, INSTALLATION_ID)
    tls = make_self_signed(tmp / "tls")
    server: RunningServer = serve(emulator, tls=tls)
    try:
        yield Local(server.url, emulator, key_pem, head, base, blob, ca=str(tls.cert_file))
    finally:
        server.stop()


def app_jwt(local: Local, expired: bool = False) -> str:
    now = int(time.time())
    claims = {"iat": now - 60, "exp": now + 540, "iss": str(APP_ID)}
    if expired:
        claims.update(iat=now - 1200, exp=now - 600)
    return jwt.encode(claims, local.key_pem, algorithm="RS256")


def mint(local: Local) -> str:
    resp = requests.post(
        f"{local.url}/app/installations/{INSTALLATION_ID}/access_tokens",
        headers={"Authorization": f"Bearer {app_jwt(local)}"},
        verify=local.ca,
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["token"])


def family_of(method: str, path: str) -> str | None:
    for m, pattern, family in ENDPOINTS:
        if m == method and re.fullmatch(pattern, path):
            return family
    return None


def translate(local: Local, it: dict[str, Any], family: str) -> str:
    """The recorded path with the recorded repository, installation and shas mapped onto ours."""
    path: str = it["path"]
    missing = it["status"] == 404
    path = re.sub(r"^/repos/[^/]+/[^/?]+", f"/repos/{OWNER}/{'missing' if missing else NAME}", path)
    path = re.sub(
        r"/app/installations/\d+", f"/app/installations/{9999 if missing else INSTALLATION_ID}", path
    )
    if family == "blobs":
        return SHA.sub(local.blob, path)
    if "compare/" in path:
        return path
    if family in ("checks", "pulls"):
        path = re.sub(r"/check-runs/\d+", f"/check-runs/{local.seeded.get('run')}", path)
        path = re.sub(r"/check-suites/\d+", f"/check-suites/{local.seeded.get('suite')}", path)
        path = re.sub(r"/pulls/\d+", f"/pulls/{local.seeded.get('pull')}", path)
    return SHA.sub(local.head, path)


def seed(local: Local, family: str) -> dict[str, int]:
    """What the checks recordings read (a check run, see SEED_RUN, and its suite) or the pulls
    recordings read (two pull requests, one open and one closed, from pr-head into pr-base)."""
    if family == "checks":
        resp = requests.post(
            f"{local.url}/repos/{OWNER}/{NAME}/check-runs",
            json={**SEED_RUN, "head_sha": local.head},
            headers={"Authorization": f"token {local.token}"},
            verify=local.ca,
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        return {"run": resp.json()["id"], "suite": resp.json()["check_suite"]["id"]}
    pulls = f"{local.url}/_admin/repos/{OWNER}/{NAME}/pulls"
    spec = {"head": "pr-head", "base": "pr-base", "body": "seeded"}
    opened = requests.post(pulls, json=spec, verify=local.ca, timeout=10).json()
    closed = requests.post(pulls, json=spec, verify=local.ca, timeout=10).json()
    change = {"state": "closed", "merged": True}
    requests.patch(f"{pulls}/{closed['number']}", json=change, verify=local.ca, timeout=10).raise_for_status()
    return {"pull": opened["number"]}


def setup_error(local: Local, kind: str) -> tuple[str, str, dict[str, str]]:
    """Put the stand-in in the recorded error's condition; the request to replay on the ref."""
    ref = f"/repos/{OWNER}/{NAME}/git/ref/heads/main"
    auth = {"Authorization": f"token {local.token}"}
    if kind == "bad-token":
        return "GET", ref, {"Authorization": "token ghs_revoked"}
    if kind == "primary-limit":
        requests.put(f"{local.url}/_admin/ratelimit", json={"remaining": 0}, verify=local.ca, timeout=10)
    if kind == "secondary-limit":
        spec = {"secondary": True, "secondary_status": 403, "retry_after": 60, "secondary_count": 1}
        requests.put(f"{local.url}/_admin/ratelimit", json=spec, verify=local.ca, timeout=10)
    if kind == "missing":
        return "GET", f"/repos/{OWNER}/missing", auth
    return "GET", ref, auth


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return type(value).__name__


def shape_problems(recorded: Any, ours: Any, where: str = "body") -> list[str]:
    """Every recorded field must be in our answer with the same JSON type, recursively."""
    if recorded is None or ours is None:
        return []
    if kind_of(recorded) != kind_of(ours):
        return [f"{where}: {kind_of(ours)} where GitHub sent {kind_of(recorded)}"]
    problems = []
    if isinstance(recorded, dict):
        for key, value in recorded.items():
            if key in NOT_MODELLED:
                continue
            if key in MAPS and isinstance(value, dict) and isinstance(ours.get(key), dict):
                kinds = {kind_of(v) for v in ours[key].values()}
                if not kinds <= {kind_of(v) for v in value.values()}:
                    problems.append(f"{where}.{key}: values of kinds {kinds} where GitHub sent others")
                continue
            if key not in ours:
                problems.append(f"{where}.{key}: missing")
                continue
            problems += shape_problems(value, ours[key], f"{where}.{key}")
    elif isinstance(recorded, list) and recorded and ours:
        problems += shape_problems(recorded[0], ours[0], f"{where}[0]")
    return problems


def header(headers: Any, name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return str(value)
    return None


def location_tail(url: str) -> str:
    """What follows the repository in a Location, ids generalised: `statuses/ID`."""
    return re.sub(r"\d+$", "ID", url.split("/repos/", 1)[-1].split("/", 2)[-1])


def header_problems(it: dict[str, Any], resp: requests.Response, family: str) -> list[str]:
    recorded = it["response_headers"]
    problems = []
    etag = header(recorded, "etag")
    if etag is not None and 200 <= it["status"] < 300:
        ours = resp.headers.get("ETag")
        if ours is None:
            problems.append("ETag missing")
        elif it["method"] == "GET" and etag.startswith("W/") and not ours.startswith("W/"):
            problems.append(f"ETag {ours} is strong where GitHub's is weak")
        # Creations: GitHub itself sends weak ETags on some (2024 token creations) and strong ones on
        # others, so only their presence is compared.
    if it["method"] == "GET" and it["status"] == 200 and not resp.headers.get("ETag", "").startswith("W/"):
        problems.append('a read without a weak ETag (GitHub sends W/"...")')
    location = header(recorded, "location")
    if location is not None:
        ours = resp.headers.get("Location")
        tail = location_tail(location)
        if ours is None or location_tail(ours) != tail:
            problems.append(f"Location {ours!r} where GitHub sent …/{tail}")
    if header(recorded, "retry-after") is not None and resp.headers.get("Retry-After") is None:
        problems.append("Retry-After missing")
    if header(recorded, "content-type") and "application/json" not in resp.headers.get("Content-Type", ""):
        problems.append(f"Content-Type {resp.headers.get('Content-Type')}")
    for name in RATE_HEADERS:
        present = resp.headers.get(name) is not None
        if header(recorded, name) is not None and not present:
            problems.append(f"{name} missing")
        if family == "auth" and present:
            problems.append(f"{name} on an App (JWT) endpoint, where GitHub sends none")
    return problems


def value_problems(
    local: Local, it: dict[str, Any], path: str, body: Any, family: str, error: str | None
) -> list[str]:
    problems = []
    recorded = it["response_body"]
    if family == "trees" and isinstance(body, dict):
        asked = path.split("/git/trees/")[1].split("?")[0]
        if body.get("sha") != asked:
            problems.append(f"tree sha {body.get('sha')} does not echo the requested {asked}")
    if isinstance(recorded, dict) and it["status"] >= 400 and isinstance(body, dict):
        message = str(recorded.get("message", ""))
        if error == "secondary-limit":  # GitHub's wording changed since; the meaning did not
            if not str(body.get("message", "")).startswith("You have exceeded a secondary rate limit"):
                problems.append(f"secondary-limit message {body.get('message')!r}")
        elif error == "primary-limit":
            if "rate limit exceeded" not in str(body.get("message", "")).lower():
                problems.append(f"primary-limit message {body.get('message')!r}")
        elif body.get("message") != message:
            problems.append(f"message {body.get('message')!r} where GitHub sent {message!r}")
    return problems


def replay(local: Local, name: str, it: dict[str, Any], family: str, error: str | None) -> Outcome:
    local.emulator.reset()
    local.token = mint(local)
    local.seeded = seed(local, family) if family in ("checks", "pulls") else {}
    if error is not None:
        method, path, headers = setup_error(local, error)
    else:
        method, path = it["method"], translate(local, it, family)
        expired = "ExpiredJWT" in name
        if (family == "auth" and not path.startswith(f"/repos/{OWNER}")) or path[-13:] == "/installation":
            headers = {"Authorization": f"Bearer {app_jwt(local, expired=expired)}"}
        else:
            headers = {"Authorization": f"token {local.token}"}
        if path == "/installation/repositories":
            headers = {"Authorization": f"token {local.token}"}
    body = it["request_body"]
    if body is not None and family in ("checks", "pulls"):  # recorded shas in the body: ours
        body = json.loads(SHA.sub(local.head, json.dumps(body)))
    resp = requests.request(method, local.url + path, json=body, headers=headers, verify=local.ca, timeout=10)
    outcome = Outcome(name, it["method"], it["path"], family)
    if resp.status_code != it["status"]:
        outcome.problems.append(
            f"status {resp.status_code} where GitHub answered {it['status']}: {resp.text[:200]}"
        )
        return outcome
    try:
        ours = resp.json() if resp.content else None
    except ValueError:
        ours = None
        outcome.problems.append("body is not JSON")
    outcome.problems += header_problems(it, resp, family)
    outcome.problems += shape_problems(it["response_body"], ours)
    outcome.problems += value_problems(local, it, path, ours, family, error)
    return outcome


def run_all(local: Local) -> tuple[list[Outcome], Counter[str], int]:
    outcomes, skipped, total = [], Counter(), 0
    for name, rec in recordings():
        for it in rec["interactions"]:
            total += 1
            path = it["path"]
            error = ERRORS.get(name) if it["status"] >= 400 else None
            family = "errors" if error else family_of(it["method"], path)
            if family is None:
                skipped[f"{it['method']} {re.sub(SHA, '{sha}', path.split('?')[0])}"] += 1
                continue
            outcomes.append(replay(local, name, it, family, error))
    return outcomes, skipped, total


def test_the_stand_in_answers_as_github_did_on_every_applicable_recording(local: Local) -> None:
    outcomes, skipped, total = run_all(local)
    failures = [f"{o.recording}: {o.method} {o.path}: {p}" for o in outcomes for p in o.problems]
    assert not failures, "\n".join(failures)
    by_family = Counter(o.family for o in outcomes)
    assert {"auth", "refs", "trees", "blobs", "statuses", "errors", "checks", "pulls"} <= set(by_family), (
        by_family
    )
    # The figures docs/github-conformance.md reports must be the ones measured here.
    doc = (REPO_ROOT / "docs" / "github-conformance.md").read_text()
    figure = f"{len(outcomes)} of {total} recorded interactions ({len(recordings())} recordings)"
    assert figure in doc, f"update docs/github-conformance.md: {figure}; by family {dict(by_family)}"
    assert sum(skipped.values()) + len(outcomes) == total


def test_rate_limit_headers_on_a_304_are_the_real_ones(local: Local) -> None:
    """No recording holds a 304; GitHub's documented behaviour: a conditional hit is free and carries
    the rate-limit headers of the moment."""
    local.emulator.reset()
    token = mint(local)
    url = f"{local.url}/repos/{OWNER}/{NAME}/git/ref/heads/main"
    first = requests.get(url, headers={"Authorization": f"token {token}"}, verify=local.ca, timeout=10)
    again = requests.get(
        url,
        headers={"Authorization": f"token {token}", "If-None-Match": first.headers["ETag"]},
        verify=local.ca,
        timeout=10,
    )
    assert again.status_code == 304 and again.content == b""
    for name in (*RATE_HEADERS, "x-ratelimit-used", "x-ratelimit-resource"):
        assert again.headers[name] == first.headers[name], name
