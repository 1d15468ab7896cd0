"""Pull-request previews against the GitHub and ARM stand-ins and Azurite, in process: the queued
preview (`synoscd.preview.run.handle`) and everything under it run unpatched; what happened is read
from the stand-ins' call logs, the check runs the GitHub stand-in holds and the state table."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from synoscd.engine.reconcile import run_pass
from synoscd.engine.runtime import Runtime
from synoscd.preview.plan import plan_ref
from synoscd.preview.report import MAX_ANNOTATIONS
from synoscd.preview.run import handle, mark_stale
from synoscd.sources.factory import flush_warm_sources, forget_warm_sources
from synoscd.state import previews as store
from tests.conftest import LaunchedStack, app_yaml
from tests.integration.test_sources import new_repo, settings_for

pytestmark = pytest.mark.integration
OWNER = "synoscd-test"
BAD_APP = """apiVersion: synoscd.io/v1alpha1
kind: App
metadata:
  name: bad
spec:
  containers:
    - name: web
      image: nginx:1
      cpu: lots
      memory: 0.5Gi
"""
BAD_LINE = 9  # the line of `cpu: lots`
BASE = {
    "apps/web.yaml": app_yaml("web", "1"),
    "apps/old.yaml": app_yaml("old", "1"),
    "apps/keep-a.yaml": app_yaml("keep-a", "1"),
    "apps/keep-b.yaml": app_yaml("keep-b", "1"),
    "README.md": "the ops repository\n",
}


class Ops:
    """An ops repository on the GitHub stand-in, synced once with prune on, and a Runtime on a fresh
    state table."""

    def __init__(self, stack: LaunchedStack, files: dict[str, str], **settings: Any) -> None:
        self.stack = stack
        self.name = new_repo(stack, files)
        self.rt = Runtime(
            settings_for(
                stack, self.name, state_table=f"p{uuid.uuid4().hex[:20]}", prune_enabled=True, **settings
            )
        )

    def sync(self) -> Any:
        result = run_pass("cli", rt=self.rt, wait_seconds=10.0)
        flush_warm_sources()  # the blob cache is saved after the pass, in the background: done now
        return result

    def push(self, branch: str, files: dict[str, str | None], start: str = "main") -> str:
        spec = {"files": files, "branch": branch, "from": start}
        return str(self.stack.admin("github", "POST", f"repos/{OWNER}/{self.name}/commits", spec)["sha"])

    def open(self, head: str, base: str = "main") -> int:
        pull = self.stack.admin(
            "github", "POST", f"repos/{OWNER}/{self.name}/pulls", {"head": head, "base": base}
        )
        return int(pull["number"])

    def preview(self, pr: int | None, head: str, **message: Any) -> dict[str, Any]:
        body = {
            "kind": "preview",
            "pr": pr,
            "head": head,
            "action": "opened",
            "queuedAt": time.time(),
            **message,
        }
        return handle(self.rt, body)

    def runs(self, head: str | None = None) -> list[dict[str, Any]]:
        return [
            r
            for r in self.stack.admin("github", "GET", "checks")["check_runs"]
            if f"/{self.name}/" in r["url"] and (head is None or r["head_sha"] == head)
        ]

    def rows(self) -> dict[tuple[str, str], Any]:
        """Every state-table row but the previews' own, with its ETag (a rewrite changes it)."""
        return {
            (e["PartitionKey"], e["RowKey"]): (dict(e), e.metadata["etag"])
            for e in self.rt.table.list_entities()
            if e["PartitionKey"] != store.PK
        }

    def clear_calls(self) -> None:
        for service in ("github", "arm"):
            self.stack.admin(service, "DELETE", "calls")

    def arm_writes(self) -> list[str]:
        return [f"{c['method']} {c['path']}" for c in self.stack.calls("arm") if c["method"] != "GET"]


def actions_in(summary: str) -> list[tuple[str, str, str]]:
    """(action, kind, name) of every row of the summary's action tables."""
    rows = []
    for line in summary.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[0].isdigit():
            rows.append((cells[1], cells[2], cells[3].removeprefix("<code>").removesuffix("</code>")))
    return rows


@pytest.fixture
def stack(fresh_stack: LaunchedStack) -> Iterator[LaunchedStack]:
    forget_warm_sources()
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.05})
    yield fresh_stack
    forget_warm_sources()


@pytest.fixture
def ops(stack: LaunchedStack) -> Iterator[Ops]:
    o = Ops(stack, BASE)
    assert o.sync().outcome == "succeeded"
    yield o
    o.rt.table.delete_table()


def test_a_pull_request_gets_one_check_run_listing_exactly_what_merging_would_do(ops: Ops) -> None:
    head = ops.push(
        "feature",
        {"apps/web.yaml": app_yaml("web", "2"), "apps/new.yaml": app_yaml("new"), "apps/old.yaml": None},
    )
    pr = ops.open("feature")
    before = ops.rows()
    ops.clear_calls()
    outcome = ops.preview(pr, head)
    assert outcome["conclusion"] == "neutral", outcome
    runs = ops.runs(head)
    assert len(runs) == 1 and runs[0]["name"] == "SynosCD preview"
    run = runs[0]
    assert run["status"] == "completed" and run["conclusion"] == "neutral"
    assert sorted(actions_in(run["output"]["summary"])) == [
        ("create", "App", "new"),
        ("delete", "App", "old"),
        ("update", "App", "web"),
    ]
    assert "nginx:1" in run["output"]["summary"] and "nginx:2" in run["output"]["summary"], (
        "field-level change"
    )
    assert run["output"]["title"] == "3 changes: 1 create, 1 update, 1 delete"
    assert ops.arm_writes() == [], "a preview never writes to ARM"
    assert ops.rows() == before, "nor to the sync status, history, operation or lease"
    # `synos diff --ref` plans the same head the same way
    cli = plan_ref("feature", rt=ops.rt)
    assert sorted((a.action, a.kind, a.name) for a in cli.plan.actions if a.writes) == sorted(
        actions_in(run["output"]["summary"])
    )


def test_an_invalid_manifest_fails_with_an_annotation_at_its_line(ops: Ops) -> None:
    head = ops.push("broken", {"apps/bad.yaml": BAD_APP})
    outcome = ops.preview(ops.open("broken"), head)
    assert outcome["conclusion"] == "failure"
    (run,) = ops.runs(head)
    assert run["conclusion"] == "failure"
    assert [(a["path"], a["start_line"], a["annotation_level"]) for a in run["annotations"]] == [
        ("apps/bad.yaml", BAD_LINE, "failure")
    ]
    assert "cpu" in run["annotations"][0]["title"] + run["annotations"][0]["message"]
    assert "apps/bad.yaml" in run["output"]["summary"]


def test_a_prune_above_the_safety_fraction_fails_naming_the_valve(ops: Ops) -> None:
    head = ops.push("cleanup", {"apps/old.yaml": None, "apps/keep-a.yaml": None, "apps/keep-b.yaml": None})
    pr = ops.open("cleanup")
    ops.clear_calls()
    outcome = ops.preview(pr, head)
    (run,) = ops.runs(head)
    assert outcome["conclusion"] == run["conclusion"] == "failure"
    assert run["output"]["title"] == "Prune blocked by the safety valve"
    assert "would delete 3 of 4 managed resources, more than 50%" in run["output"]["summary"]
    assert ops.arm_writes() == []


def test_a_one_file_pull_request_costs_a_handful_of_github_calls(ops: Ops) -> None:
    head = ops.push("one", {"apps/web.yaml": app_yaml("web", "3")})
    pr = ops.open("one")
    ops.clear_calls()
    ops.preview(pr, head)
    calls = [f"{c['method']} {c['path'].split('/', 4)[-1]}" for c in ops.stack.calls("github")]
    # compare, the changed blob, create and complete the check run: the base is the synced head
    assert len(calls) == 4, calls
    assert [c.split()[0] for c in calls] == ["GET", "GET", "POST", "PATCH"], calls


def test_a_pull_request_touching_no_manifest_is_skipped_in_one_request(ops: Ops) -> None:
    head = ops.push("docs", {"README.md": "better words\n"})
    ops.clear_calls()
    outcome = ops.preview(ops.open("docs"), head)
    (run,) = ops.runs(head)
    assert outcome["conclusion"] == run["conclusion"] == "skipped"
    assert [c["method"] for c in ops.stack.calls("github")] == ["GET", "POST"], "compare, then one check run"


def test_annotations_go_out_fifty_per_request(ops: Ops) -> None:
    files = {f"apps/bad-{i:03d}.yaml": BAD_APP.replace("name: bad", f"name: bad-{i:03d}") for i in range(120)}
    head = ops.push("many", files)
    ops.clear_calls()
    outcome = ops.preview(ops.open("many"), head)
    (run,) = ops.runs(head)
    assert outcome["annotations"] == 120 and outcome["updateRequests"] == 3
    assert len(run["annotations"]) == 120 and run["output"]["annotations_count"] == 120
    assert len([c for c in ops.stack.calls("github") if c["method"] == "PATCH"]) == 3
    assert MAX_ANNOTATIONS >= 120


def test_a_newer_push_supersedes_the_running_preview(ops: Ops) -> None:
    first = ops.push("moving", {"apps/web.yaml": app_yaml("web", "4")})
    pr = ops.open("moving")
    second = ops.push("moving", {"apps/web.yaml": app_yaml("web", "5")})
    asked = time.time()
    # The second push's preview is asked for while the first is still running: it claims the row.
    assert store.claim(ops.rt.table, pr, second, asked + 1)[0]
    outcome = ops.preview(pr, first, queuedAt=asked)
    assert outcome == {"pr": pr, "head": first, "superseded": second}, "not even started"
    # Asked for first, superseded while it ran: concluded cancelled, naming the newer head.
    store.forget(ops.rt.table, pr)
    assert store.claim(ops.rt.table, pr, first, asked)[0]
    row = store.get(ops.rt.table, pr)
    assert row is not None and row.state == "running"
    # GitHub is slow to compare: the second push is asked for while the first preview runs.
    ops.stack.admin("github", "POST", "faults", {"path": "/compare/", "count": 1, "latency": 1.5})
    outcome: dict[str, Any] = {}
    running = threading.Thread(target=lambda: outcome.update(ops.preview(pr, first, queuedAt=asked)))
    running.start()
    time.sleep(0.5)
    assert store.claim(ops.rt.table, pr, second, asked + 1)[0]
    running.join(timeout=30)
    assert outcome["superseded"] == second, outcome
    (run,) = ops.runs(first)
    assert run["conclusion"] == "cancelled" and second[:12] in run["output"]["title"]
    assert ops.preview(pr, second, queuedAt=asked + 1)["conclusion"] == "neutral"


def test_a_push_to_the_base_marks_finished_previews_stale(ops: Ops) -> None:
    head = ops.push("later", {"apps/web.yaml": app_yaml("web", "6")})
    pr = ops.open("later")
    assert ops.preview(pr, head)["conclusion"] == "neutral"
    new_base = ops.push("main", {"apps/keep-a.yaml": app_yaml("keep-a", "2")})
    assert mark_stale(ops.rt, new_base) == 1
    (run,) = ops.runs(head)
    assert run["conclusion"] == "action_required" and run["output"]["title"].startswith("Stale: main moved")
    assert new_base[:12] in run["output"]["summary"]
    assert mark_stale(ops.rt, new_base) == 0, "marked once"
    # the next event plans it again, against the new base
    assert ops.preview(pr, head, action="rerequested")["conclusion"] == "neutral"
    latest = max(ops.runs(head), key=lambda r: r["id"])
    assert latest["conclusion"] == "neutral" and new_base[:12] in latest["output"]["summary"]
    # the pull request is now behind main: the plan is the merge result, main's change included
    assert "merge result" in latest["output"]["summary"]
    assert sorted(actions_in(latest["output"]["summary"])) == [
        ("update", "App", "keep-a"),
        ("update", "App", "web"),
    ]
    # closed: its row goes, and later pushes to the base leave its check alone
    assert handle(ops.rt, {"kind": "preview-closed", "pr": pr}) == {"pr": pr, "forgotten": True}
    assert store.get(ops.rt.table, pr) is None
    assert mark_stale(ops.rt, ops.push("main", {"apps/keep-b.yaml": app_yaml("keep-b", "2")})) == 0


def test_a_missing_checks_permission_is_named(ops: Ops) -> None:
    head = ops.push("noperm", {"apps/web.yaml": app_yaml("web", "7")})
    fault = {"method": "POST", "path": "/check-runs$", "count": 1, "status": 403,
             "body": {"message": "Resource not accessible by integration"}}  # fmt: skip
    ops.stack.admin("github", "POST", "faults", fault)
    with pytest.raises(Exception, match="Checks: Read and write"):
        ops.preview(ops.open("noperm"), head)


def test_diff_ref_plans_a_commit_of_a_local_git_repository(stack: LaunchedStack, tmp_path: Any) -> None:
    import subprocess

    def git(*args: str) -> str:
        env = {
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@t",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@t",
        }
        out = subprocess.run(
            ["git", "-C", str(tmp_path), *args],
            capture_output=True,
            text=True,
            env={**env, "PATH": "/usr/bin:/bin"},
            check=True,
        )
        return out.stdout.strip()

    git("init", "-q", "-b", "main")
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "web.yaml").write_text(app_yaml("web", "1"))
    git("add", "-A")
    git("commit", "-qm", "one")
    first = git("rev-parse", "HEAD")
    (tmp_path / "apps" / "web.yaml").write_text(app_yaml("web", "2"))
    git("commit", "-qam", "two")
    rt = Runtime(
        settings_for(stack, "unused", source_path=str(tmp_path), state_table=f"p{uuid.uuid4().hex[:20]}")
    )
    try:
        assert run_pass("cli", rt=rt, wait_seconds=10.0).outcome == "succeeded"  # live: nginx:2
        older = plan_ref(first, rt=rt)
        assert older.revision == first and older.trigger == "preview"
        assert [(a.action, a.name, a.changes[0]["desired"]) for a in older.plan.actions] == [
            ("update", "web", "nginx:1")
        ]
    finally:
        rt.table.delete_table()


def test_a_pull_request_changing_a_composition_input_lists_the_composition(stack: LaunchedStack) -> None:
    from synoscd.state import runtime
    from tests.conftest import FIXTURES
    from tests.integration.test_synth import composition, file_input, synthesizer

    files = {
        "apps/fleet-synth.yaml": synthesizer(),
        "apps/web.yaml": composition("web", file_input("fleet", "inputs/fleet.json")),
        "inputs/fleet.json": '{"apps": ["a", "b"]}',
        "synth/fleet.py": (FIXTURES / "synthesizers" / "fleet.py").read_text(),
    }
    ops = Ops(stack, files)
    try:
        runtime.save(ops.rt.table, {"allow_exec_synthesizers": True}, "test")
        synced = ops.sync()
        assert synced.synthesis is not None and synced.synthesis["ran"] == ["web"], synced.to_dict()
        head = ops.push("more", {"inputs/fleet.json": '{"apps": ["a", "b", "c"]}'})
        pr = ops.open("more")
        before = ops.rows()
        outcome = ops.preview(pr, head)
        (run,) = ops.runs(head)
        assert outcome["conclusion"] == run["conclusion"] == "neutral", run["output"]
        assert run["output"]["title"] == "1 composition to re-synthesise"
        assert "#### Compositions that would re-synthesise (1)" in run["output"]["summary"]
        assert "| <code>web</code> |" in run["output"]["summary"]
        assert ops.rows() == before, "no synthesizer ran, no composition state was written"
    finally:
        ops.rt.table.delete_table()
