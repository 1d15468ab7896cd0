"""The GitHub stand-in's pull requests and Checks API as GitHub documents them (no recording shows
these: tests/integration/test_github_conformance.py replays the shapes): the size limits and GitHub's
answers to breaking them, annotations appended per update, the `checks: write` permission, a pull
request following its branch, and the webhook payloads."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
import pytest
import requests

from tests.conftest import LaunchedStack, app_yaml

pytestmark = pytest.mark.integration
OWNER = "synoscd-test"


class GitHub:
    def __init__(self, stack: LaunchedStack, permissions: dict[str, str] | None = None) -> None:
        self.stack = stack
        self.url = stack.env["SYNOSCD_GITHUB_API_URL"]
        self.verify = stack.env["REQUESTS_CA_BUNDLE"]
        now = int(time.time())
        claims = {"iat": now - 30, "exp": now + 300, "iss": stack.env["SYNOSCD_GITHUB_APP_ID"]}
        app_jwt = jwt.encode(claims, stack.env["SYNOSCD_GITHUB_APP_PRIVATE_KEY"], algorithm="RS256")
        inst = stack.env["SYNOSCD_GITHUB_APP_INSTALLATION_ID"]
        resp = requests.post(
            f"{self.url}/app/installations/{inst}/access_tokens",
            json={"permissions": permissions} if permissions else None,
            headers={"Authorization": f"Bearer {app_jwt}"},
            verify=self.verify,
            timeout=10,
        )
        assert resp.status_code == 201, resp.text
        self.token = resp.json()["token"]
        self.repo = f"ops-{uuid.uuid4().hex[:8]}"
        stack.admin(
            "github",
            "POST",
            "repos",
            {"owner": OWNER, "name": self.repo, "files": {"apps/a.yaml": app_yaml("a")}},
        )
        self.head = stack.admin(
            "github", "POST", f"repos/{OWNER}/{self.repo}/commits", {"files": {"README.md": "x\n"}}
        )["sha"]

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method,
            f"{self.url}/repos/{OWNER}/{self.repo}/{path}",
            json=body,
            headers={"Authorization": f"token {self.token}"},
            verify=self.verify,
            timeout=10,
        )

    def create(self, **body: Any) -> requests.Response:
        return self.call("POST", "check-runs", {"name": "SynosCD preview", "head_sha": self.head, **body})


def annotation(i: int) -> dict[str, Any]:
    return {
        "path": "apps/a.yaml",
        "start_line": i + 1,
        "end_line": i + 1,
        "annotation_level": "failure",
        "message": f"m{i}",
    }


@pytest.fixture
def gh(fresh_stack: LaunchedStack) -> GitHub:
    return GitHub(fresh_stack)


def test_output_limits_are_githubs_with_githubs_answers(gh: GitHub) -> None:
    too_long = gh.create(output={"title": "t", "summary": "x" * 65536})
    assert too_long.status_code == 422
    assert (
        too_long.json()["message"]
        == "Invalid request.\n\nOnly 65535 characters are allowed; 65536 were supplied."
    )
    too_big = gh.create(output={"title": "t", "summary": "é" * 40000})  # 40,000 characters, 80,000 bytes
    assert too_big.status_code == 422 and too_big.json()["message"] == "Validation Failed"
    assert too_big.json()["errors"][0]["message"] == "summary exceeds a maximum bytesize of 65535"
    fifty_one = gh.create(
        output={"title": "t", "summary": "s", "annotations": [annotation(i) for i in range(51)]}
    )
    assert fifty_one.status_code == 422
    assert (
        fifty_one.json()["message"]
        == "Invalid request.\n\nNo more than 50 items are allowed; 51 were supplied."
    )
    actions = [{"label": "l", "description": "d", "identifier": f"i{i}"} for i in range(4)]
    assert gh.create(actions=actions).status_code == 422
    assert gh.create(status="completed", conclusion="stale").status_code == 422, "stale is GitHub's alone"
    assert gh.create(status="completed").status_code == 422, "completed needs a conclusion"
    exact = gh.create(output={"title": "t", "summary": "x" * 65535})
    assert exact.status_code == 201 and exact.headers["Location"].endswith(
        f"/check-runs/{exact.json()['id']}"
    )


def test_each_update_appends_its_annotations_and_a_conclusion_completes(gh: GitHub) -> None:
    run = gh.create(
        status="in_progress", output={"title": "t", "summary": "s", "annotations": [annotation(0)]}
    ).json()
    for batch in ([annotation(i) for i in range(1, 51)], [annotation(i) for i in range(51, 60)]):
        assert gh.call(
            "PATCH",
            f"check-runs/{run['id']}",
            {"output": {"title": "t", "summary": "s2", "annotations": batch}},
        ).ok
    done = gh.call("PATCH", f"check-runs/{run['id']}", {"conclusion": "neutral"}).json()
    assert done["status"] == "completed" and done["conclusion"] == "neutral" and done["completed_at"]
    assert done["output"]["annotations_count"] == 60 and done["output"]["summary"] == "s2"
    page = gh.call("GET", f"check-runs/{run['id']}/annotations?per_page=100").json()
    assert [a["start_line"] for a in page] == list(range(1, 61))
    listed = gh.call("GET", f"commits/{gh.head}/check-runs").json()
    assert listed["total_count"] == 1 and listed["check_runs"][0]["id"] == run["id"]
    suite = gh.call("GET", f"check-suites/{run['check_suite']['id']}").json()
    assert suite["status"] == "completed" and suite["conclusion"] == "neutral"


def test_check_runs_need_the_checks_write_permission(fresh_stack: LaunchedStack) -> None:
    reader = GitHub(fresh_stack, permissions={"contents": "read", "metadata": "read"})
    refused = reader.create()
    assert (
        refused.status_code == 403 and refused.json()["message"] == "Resource not accessible by integration"
    )
    assert reader.call("GET", "git/ref/heads/main").ok, "reading still works"


def test_a_pull_request_follows_its_branch(gh: GitHub) -> None:
    admin = f"repos/{OWNER}/{gh.repo}"
    first = gh.stack.admin(
        "github", "POST", f"{admin}/commits", {"branch": "feature", "files": {"apps/b.yaml": app_yaml("b")}}
    )
    pull = gh.stack.admin(
        "github", "POST", f"{admin}/pulls", {"head": "feature", "base": "main", "title": "B"}
    )
    assert pull["head"]["sha"] == first["sha"] and pull["base"]["sha"] == gh.head and pull["state"] == "open"
    second = gh.stack.admin(
        "github", "POST", f"{admin}/commits", {"branch": "feature", "files": {"apps/c.yaml": app_yaml("c")}}
    )
    got = gh.call("GET", f"pulls/{pull['number']}").json()
    assert got["head"]["sha"] == second["sha"] and got["commits"] == 2 and got["changed_files"] == 2
    ref = gh.call("GET", f"git/ref/pull/{pull['number']}/head").json()
    assert ref["object"]["sha"] == second["sha"], "refs/pull/N/head follows the branch"
    files = gh.call("GET", f"pulls/{pull['number']}/files").json()
    assert sorted(f["filename"] for f in files) == ["apps/b.yaml", "apps/c.yaml"]
    assert gh.call("GET", f"commits/{first['sha']}/pulls").json()[0]["number"] == pull["number"]
    assert [p["number"] for p in gh.call("GET", "pulls?state=open").json()] == [pull["number"]]
    gh.stack.admin("github", "PATCH", f"{admin}/pulls/{pull['number']}", {"state": "closed"})
    assert gh.call("GET", "pulls").json() == [] and len(gh.call("GET", "pulls?state=closed").json()) == 1


def test_webhook_payloads_for_pull_requests_and_check_runs(gh: GitHub) -> None:
    admin = f"repos/{OWNER}/{gh.repo}"
    gh.stack.admin(
        "github", "POST", f"{admin}/commits", {"branch": "f", "files": {"apps/b.yaml": app_yaml("b")}}
    )
    pull = gh.stack.admin("github", "POST", f"{admin}/pulls", {"head": "f"})
    after = gh.stack.admin(
        "github", "POST", f"{admin}/commits", {"branch": "f", "files": {"apps/b.yaml": app_yaml("b", "2")}}
    )
    receiver = "https://127.0.0.1:9/hook"  # nothing listens: the stand-in records what it sent
    spec = {"url": receiver, "owner": OWNER, "name": gh.repo}
    gh.stack.admin(
        "github",
        "POST",
        "webhooks/deliver",
        {**spec, "event": "pull_request", "action": "synchronize", "number": pull["number"]},
    )
    pr_event = _sent(gh)
    assert pr_event["action"] == "synchronize" and pr_event["number"] == pull["number"]
    assert pr_event["before"] == pull["head"]["sha"] and pr_event["after"] == after["sha"]
    assert (
        pr_event["pull_request"]["head"]["sha"] == after["sha"]
        and pr_event["pull_request"]["base"]["ref"] == "main"
    )
    run = gh.create(head_sha=after["sha"]).json()
    gh.stack.admin(
        "github", "POST", "webhooks/deliver", {**spec, "event": "check_run", "check_run_id": run["id"]}
    )
    check_event = _sent(gh)
    assert check_event["action"] == "rerequested" and check_event["check_run"]["id"] == run["id"]
    assert check_event["check_run"]["check_suite"]["head_sha"] == after["sha"]
    assert [p["number"] for p in check_event["check_run"]["pull_requests"]] == [pull["number"]]
    assert check_event["check_run"]["app"]["id"] == int(gh.stack.env["SYNOSCD_GITHUB_APP_ID"])
    gh.stack.admin(
        "github", "POST", "webhooks/deliver", {**spec, "event": "check_suite", "head_sha": after["sha"]}
    )
    suite_event = _sent(gh)
    assert suite_event["check_suite"]["id"] == run["check_suite"]["id"]
    assert [p["number"] for p in suite_event["check_suite"]["pull_requests"]] == [pull["number"]]


def _sent(gh: GitHub) -> dict[str, Any]:
    """The payload of the last delivery the stand-in sent."""
    deliveries = gh.stack.admin("github", "GET", "webhooks/deliveries")["deliveries"]
    return dict(json.loads(deliveries[-1]["payload"]))
