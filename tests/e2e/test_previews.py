"""Pull-request previews end to end: the GitHub stand-in opens pull requests and delivers signed
`pull_request` and `check_run` webhooks to the Functions app in the local host; the webhook queues
them on Azurite's queue, the queue-triggered function previews them and reports a check run on the
GitHub stand-in. ARM's call log and the state table show that no preview wrote anything; `synos diff
--ref` (a subprocess) plans the same head as the check."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from synoscd.state import history
from synoscd.state import previews as store
from synoscd.state import table as t
from tests.conftest import REPO_ROOT, LaunchedStack, app_yaml
from tests.e2e.conftest import Host
from tests.integration.test_previews import BAD_APP, BAD_LINE, BASE, actions_in

pytestmark = pytest.mark.e2e
OWNER = "synoscd-e2e"


class Preview:
    def __init__(self, stack: LaunchedStack, host_factory: Callable[..., Host]) -> None:
        self.stack = stack
        self.repo = f"ops-{uuid.uuid4().hex[:8]}"
        stack.admin("github", "POST", "repos", {"owner": OWNER, "name": self.repo, "files": BASE})
        self.host = host_factory(
            SYNOSCD_GITHUB_REPO_OWNER=OWNER, SYNOSCD_GITHUB_REPO_NAME=self.repo, SYNOSCD_PRUNE_ENABLED="true"
        )
        self.table = t.open_table(
            self.host.env["SYNOSCD_STATE_STORE"], table_name=self.host.env["SYNOSCD_STATE_TABLE"]
        )

    def deliver(self, event: str, **spec: Any) -> dict[str, Any]:
        body = {
            "url": f"{self.host.url}/api/github/webhook",
            "secret": self.stack.env["SYNOSCD_GITHUB_WEBHOOK_SECRET"],
            "event": event,
            "owner": OWNER,
            "name": self.repo,
            **spec,
        }
        answer = self.stack.admin("github", "POST", "webhooks/deliver", body)
        assert answer["status"] == 202 and '"queued"' in answer["body"], answer
        return dict(answer)

    def push(self, branch: str, files: dict[str, str | None]) -> str:
        spec = {"files": files, "branch": branch, "from": "main"}
        return str(self.stack.admin("github", "POST", f"repos/{OWNER}/{self.repo}/commits", spec)["sha"])

    def open(self, branch: str) -> tuple[int, str]:
        pull = self.stack.admin(
            "github", "POST", f"repos/{OWNER}/{self.repo}/pulls", {"head": branch, "base": "main"}
        )
        return int(pull["number"]), str(pull["head"]["sha"])

    def runs(self, head: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.stack.admin("github", "GET", "checks")["check_runs"]
            if f"/{self.repo}/" in r["url"] and r["head_sha"] == head
        ]

    def wait_for_runs(self, head: str, n: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = [r for r in self.runs(head) if r["status"] == "completed"]
            if len(done) >= n:
                return done
            time.sleep(0.2)
        raise AssertionError(f"no {n} completed check runs on {head[:12]}: {self.runs(head)}")

    def rows(self) -> dict[tuple[str, str], Any]:
        """The state table but the previews' rows and the webhook's delivery ids, with ETags."""
        return {
            (e["PartitionKey"], e["RowKey"]): (dict(e), e.metadata["etag"])
            for e in self.table.list_entities()
            if e["PartitionKey"] not in (store.PK, history.DELIVERIES)
        }

    def settled(self, quiet: float = 1.5, timeout: float = 30) -> dict[tuple[str, str], Any]:
        """The rows once nothing has written for `quiet` seconds: a pass releases its lease and saves
        the source's blob cache after its history row, in the background."""
        deadline = time.monotonic() + timeout
        rows, since = self.rows(), time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.3)
            now = self.rows()
            if now != rows:
                rows, since = now, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return rows
        raise AssertionError("the state table kept changing")

    def arm_writes(self) -> list[dict[str, Any]]:
        return [c for c in self.stack.calls("arm") if c["method"] != "GET"]

    def synos(self, *args: str) -> Any:
        out = subprocess.run(
            [sys.executable, "-m", "synoscd", *args, "-o", "json"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            env=self.host.env,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        assert out.returncode in (0, 1), out.stderr
        return json.loads(out.stdout)


@pytest.fixture
def preview(fresh_stack: LaunchedStack, host_factory: Callable[..., Host]) -> Preview:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.1})
    p = Preview(fresh_stack, host_factory)
    p.deliver("push", delivery_id=f"base-{uuid.uuid4().hex[:8]}")  # the base, synced by a pass
    deadline = time.monotonic() + 60
    while not history.list_passes(p.table) and time.monotonic() < deadline:
        time.sleep(0.2)
    (synced,) = history.list_passes(p.table)
    assert synced.outcome == "succeeded", synced
    return p


def test_opening_a_pull_request_reports_exactly_its_three_actions_and_writes_nothing(
    preview: Preview,
) -> None:
    head = preview.push(
        "feature",
        {"apps/web.yaml": app_yaml("web", "2"), "apps/new.yaml": app_yaml("new"), "apps/old.yaml": None},
    )
    number, opened_head = preview.open("feature")
    assert opened_head == head
    before = preview.settled()
    preview.stack.admin("arm", "DELETE", "calls")
    preview.deliver("pull_request", action="opened", number=number)
    (run,) = preview.wait_for_runs(head)
    time.sleep(0.5)  # nothing else arrives: one check run
    assert len(preview.runs(head)) == 1
    assert run["name"] == "SynosCD preview" and run["conclusion"] == "neutral"
    table = sorted(actions_in(run["output"]["summary"]))
    assert table == [("create", "App", "new"), ("delete", "App", "old"), ("update", "App", "web")]
    assert preview.arm_writes() == [], "no ARM write during a preview"
    after = preview.rows()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert changed == [], f"no status, history, operation or lease write during a preview: {changed}"
    # `synos diff --ref` of the same head, from any machine: the same actions
    cli = preview.synos("diff", "--ref", "feature")
    assert cli["revision"] == head
    writes = sorted(
        (a["action"], a["kind"], a["name"])
        for a in cli["actions"]
        if a["action"] in ("create", "update", "delete")
    )
    assert writes == table
    # "Re-run" on the check: a new check run for the same head
    preview.deliver("check_run", action="rerequested", check_run_id=run["id"])
    assert len(preview.wait_for_runs(head, n=2)) == 2


def test_an_invalid_manifest_and_an_over_prune_fail(preview: Preview) -> None:
    bad = preview.push("broken", {"apps/bad.yaml": BAD_APP})
    number, _ = preview.open("broken")
    preview.deliver("pull_request", action="opened", number=number)
    cleanup = preview.push(
        "cleanup", {"apps/old.yaml": None, "apps/keep-a.yaml": None, "apps/keep-b.yaml": None}
    )
    number, _ = preview.open("cleanup")
    preview.stack.admin("arm", "DELETE", "calls")
    preview.deliver("pull_request", action="opened", number=number)
    (broken,) = preview.wait_for_runs(bad)
    assert broken["conclusion"] == "failure"
    assert [(a["path"], a["start_line"]) for a in broken["annotations"]] == [("apps/bad.yaml", BAD_LINE)]
    (pruned,) = preview.wait_for_runs(cleanup)
    assert (
        pruned["conclusion"] == "failure" and pruned["output"]["title"] == "Prune blocked by the safety valve"
    )
    assert "more than 50%" in pruned["output"]["summary"]
    assert preview.arm_writes() == []
