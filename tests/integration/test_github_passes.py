"""Whole passes with the GitHub source, against the GitHub and ARM stand-ins and Azurite, as GitHub
really behaves: a branch ref that lags the webhook, a pushed commit not served yet, force-pushes,
truncated trees, revoked installation tokens and a state table someone wrote into. `run_pass` and
everything under it run unpatched; what happened is read from the stand-ins' call logs."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from synoscd.engine.reconcile import PassResult, run_pass
from synoscd.engine.runtime import Runtime
from synoscd.sources.factory import forget_warm_sources
from synoscd.sources.snapshot import git_blob_id
from synoscd.state import history, runtime
from synoscd.state import table as t
from synoscd.state.blobcache import INDEX_ROW, PACKS, TableBlobStore, entity_pack, pack, pack_entity, unpack
from tests.conftest import LaunchedStack, app_yaml
from tests.integration.test_sources import commit, new_repo, settings_for

pytestmark = pytest.mark.integration
OWNER = "synoscd-test"


class Repo:
    """An ops repository on the GitHub stand-in and a Runtime on a fresh state table."""

    def __init__(self, stack: LaunchedStack, files: dict[str, str]) -> None:
        self.stack = stack
        self.name = new_repo(stack, files)
        self.rt = Runtime(settings_for(stack, self.name, state_table=f"g{uuid.uuid4().hex[:20]}"))

    def commit(self, files: dict[str, str | None]) -> str:
        return commit(self.stack, self.name, files)

    def move(self, sha: str) -> None:
        """A force-push: the branch now points at `sha`."""
        self.stack.admin("github", "PUT", f"repos/{OWNER}/{self.name}/branches/main", {"sha": sha})

    def sync(self, trigger: str = "cli", **kw: Any) -> PassResult:
        kw.setdefault("wait_seconds", 10.0)
        return run_pass(trigger, rt=self.rt, **kw)

    def image(self, app: str) -> str | None:
        for r in self.stack.admin("arm", "GET", "state")["resources"]:
            if r["kind"] == "containerApps" and r["name"] == app:
                return str(r["body"]["properties"]["template"]["containers"][0]["image"])
        return None

    def github_calls(self) -> list[str]:
        return [f"{c['method']} {c['path']} {c['status']}" for c in self.stack.calls("github")]

    def arm_writes(self) -> list[str]:
        return [
            f"{c['method']} {c['path'].rsplit('/', 1)[-1]}"
            for c in self.stack.calls("arm")
            if c["method"] in ("PUT", "DELETE", "PATCH")
        ]

    def clear_calls(self) -> None:
        for service in ("github", "arm"):
            self.stack.admin(service, "DELETE", "calls")


@pytest.fixture
def stack(fresh_stack: LaunchedStack) -> Iterator[LaunchedStack]:
    forget_warm_sources()
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.05})
    yield fresh_stack
    forget_warm_sources()


@pytest.fixture
def repo(stack: LaunchedStack) -> Iterator[Repo]:
    r = Repo(stack, {"apps/web.yaml": app_yaml("web", "1")})
    yield r
    r.rt.table.delete_table()


def ref_answer(stack: LaunchedStack, repo: str, sha: str) -> dict[str, Any]:
    """What GitHub's ref API answers for main at `sha`, to replay as a lagging answer."""
    base = f"{stack.env['SYNOSCD_GITHUB_API_URL']}/repos/{OWNER}/{repo}"
    return {
        "ref": "refs/heads/main",
        "node_id": "REF_lagging",
        "url": f"{base}/git/refs/heads/main",
        "object": {"sha": sha, "type": "commit", "url": f"{base}/git/commits/{sha}"},
    }


# -- the pushed commit is the target ----------------------------------------------------------------------


def test_a_lagging_ref_does_not_delay_the_pushed_commit(repo: Repo) -> None:
    first = repo.sync()
    assert first.outcome == "succeeded" and repo.image("web") == "nginx:1"
    pushed = repo.commit({"apps/web.yaml": app_yaml("web", "2")})
    # GitHub's ref API may still answer the previous head right after the push (the webhook is faster).
    repo.stack.admin(
        "github",
        "POST",
        "faults",
        {
            "path": "/git/ref/heads/main",
            "count": 1,
            "status": 200,
            "body": ref_answer(repo.stack, repo.name, first.revision),
        },
    )
    repo.clear_calls()
    result = repo.sync("webhook", revision=pushed)
    assert result.outcome == "succeeded", result.to_dict()
    assert result.revision == pushed and repo.image("web") == "nginx:2", "applied in the webhook's own pass"
    assert not [c for c in repo.github_calls() if "/git/ref/" in c], "the ref is not read for a push"
    # The next timer pass meets the lagging answer: it keeps the pushed commit instead of undoing it.
    repo.clear_calls()
    timer = repo.sync("timer")
    assert timer.revision == pushed and repo.arm_writes() == [] and repo.image("web") == "nginx:2"
    assert len(timer.notes) == 1 and "lags" in timer.notes[0] and first.revision[:12] in timer.notes[0]
    # Once the ref has caught up, a timer pass is back to its single conditional request.
    assert repo.sync("timer").revision == pushed
    repo.clear_calls()
    again = repo.sync("timer")
    assert again.revision == pushed and again.notes == [] and repo.arm_writes() == []
    assert [c for c in repo.github_calls() if "/git/" in c] == [
        f"GET /repos/{OWNER}/{repo.name}/git/ref/heads/main 304"
    ]


def test_a_pushed_commit_github_does_not_serve_yet_is_left_to_the_next_pass(repo: Repo) -> None:
    repo.sync()
    unknown = "0123456789abcdef" * 2 + "01234567"
    started = time.monotonic()
    result = repo.sync("webhook", revision=unknown)
    elapsed = time.monotonic() - started
    assert result.outcome == "source-error"
    assert "does not serve the pushed commit 0123456789ab" in (result.source_error or "")
    assert "next pass applies it" in (result.source_error or "")
    assert elapsed < 10, "retried briefly, within the budget"
    tree_reads = [c for c in repo.github_calls() if f"/git/trees/{unknown}" in c]
    assert len(tree_reads) == 5, tree_reads  # the first try and four retries
    recorded = history.list_passes(repo.rt.table, limit=1)[0]
    assert recorded.outcome == "source-error"
    assert any("does not serve the pushed commit" in e for e in recorded.errors), "the record says why"


def test_a_force_push_and_an_older_commit_are_applied_as_pushed_and_named(repo: Repo) -> None:
    c1 = repo.sync().revision
    assert c1 is not None
    c2 = repo.commit({"apps/web.yaml": app_yaml("web", "2")})
    assert repo.sync("timer").notes == [], "a fast-forward needs no note"
    repo.move(c1)  # the branch goes back to an older commit; the timer finds it
    older = repo.sync("timer")
    assert older.outcome == "succeeded" and older.revision == c1 and repo.image("web") == "nginx:1"
    assert len(older.notes) == 1 and "older than the last synced" in older.notes[0], older.notes
    assert c2[:12] in older.notes[0]
    assert history.list_passes(repo.rt.table, limit=1)[0].notes == older.notes, "kept in the pass record"
    c3 = repo.commit({"apps/web.yaml": app_yaml("web", "3")})  # on c1
    repo.move(c2)
    assert repo.sync("webhook", revision=c2).revision == c2
    repo.move(c3)  # c3 does not contain c2: a force-push, and its webhook
    forced = repo.sync("webhook", revision=c3)
    assert forced.revision == c3 and repo.image("web") == "nginx:3"
    assert len(forced.notes) == 1 and forced.notes[0].startswith("force-push:"), forced.notes
    repo.move(c1)  # straight back to an older commit, announced by its webhook: applied at once
    back = repo.sync("webhook", revision=c1)
    assert back.revision == c1 and repo.image("web") == "nginx:1" and "older than" in back.notes[0]


# -- big repositories -------------------------------------------------------------------------------------


def test_a_truncated_tree_is_read_below_the_config_path(stack: LaunchedStack) -> None:
    files = {f"docs/page-{i:03d}.md": f"page {i}\n" for i in range(60)}
    files.update({f"apps/app-{i}.yaml": app_yaml(f"app-{i}") for i in range(5)})
    files["config/web.json"] = '{"a": 1}'
    r = Repo(stack, files)
    try:
        stack.admin("github", "PUT", "trees", {"max_entries": 20})  # the repository has 69 entries
        result = r.sync()
        assert result.outcome == "succeeded", result.to_dict()
        assert sorted(n for n in (f"app-{i}" for i in range(5)) if r.image(n)) == [
            f"app-{i}" for i in range(5)
        ]
        trees = [c for c in r.github_calls() if "/git/trees/" in c]
        assert len(trees) == 3, trees  # truncated root, the root's own entries, the config path below
        snapshot = r.rt.source().snapshot()
        assert snapshot.read("config/web.json") == b'{"a": 1}', "files outside the config path stay readable"
        assert snapshot.read("config/missing.json") is None
    finally:
        r.rt.table.delete_table()


def test_a_tree_still_truncated_below_the_config_path_is_a_source_error_without_prune(
    stack: LaunchedStack,
) -> None:
    r = Repo(stack, {f"apps/app-{i:02d}.yaml": app_yaml(f"app-{i:02d}") for i in range(25)})
    try:
        runtime.save(r.rt.table, {"prune_enabled": True}, who="test")
        assert r.sync().outcome == "succeeded"
        r.commit({"apps/app-00.yaml": None})  # would prune app-00, were the listing complete
        stack.admin("github", "PUT", "trees", {"max_entries": 20})
        r.clear_calls()
        result = r.sync()
        assert result.outcome == "source-error"
        message = result.source_error or ""
        assert "config path apps" in message and "100,000 entries or 7 MB" in message, message
        assert "truncated" in message and "nothing is pruned" in message
        assert r.arm_writes() == [] and r.image("app-00") is not None, "no prune while the set is incomplete"
    finally:
        r.rt.table.delete_table()


# -- installation tokens ----------------------------------------------------------------------------------


def test_a_revoked_token_is_replaced_with_one_extra_token_request(repo: Repo) -> None:
    assert repo.sync().outcome == "succeeded"
    repo.commit({"apps/web.yaml": app_yaml("web", "2")})
    repo.stack.admin("github", "POST", "tokens/expire", {})
    repo.clear_calls()
    result = repo.sync("timer")
    assert result.outcome == "succeeded", result.to_dict()
    assert repo.image("web") == "nginx:2"
    calls = repo.github_calls()
    minted = [c for c in calls if c.startswith("POST /app/installations/")]
    assert len(minted) == 1, calls
    assert [c for c in calls if c.endswith(" 401")] == [
        f"GET /repos/{OWNER}/{repo.name}/git/ref/heads/main 401"
    ]


def test_a_token_refused_twice_is_a_source_error_naming_the_app(repo: Repo) -> None:
    repo.sync()
    repo.stack.admin("github", "POST", "faults", {"path": "/git/ref/heads/main", "count": 2, "status": 401})
    result = repo.sync("timer")
    assert result.outcome == "source-error"
    message = result.source_error or ""
    app_id, installation = (
        repo.stack.env["SYNOSCD_GITHUB_APP_ID"],
        repo.stack.env["SYNOSCD_GITHUB_APP_INSTALLATION_ID"],
    )
    assert f"GitHub App {app_id}, installation {installation}" in message, message


# -- the cache is checked against git -----------------------------------------------------------------------


def test_a_cached_file_changed_in_the_table_is_discarded_and_read_again(
    repo: Repo, caplog: pytest.LogCaptureFixture
) -> None:
    first = repo.sync()
    assert first.outcome == "succeeded" and repo.image("web") == "nginx:1"
    repo.rt.source().persist()  # what the pass does in the background, finished now
    sha = git_blob_id(app_yaml("web", "1").encode())
    packs = t.query(repo.rt.table, PACKS)
    row = next((r for r in packs if r["RowKey"] != INDEX_ROW and sha in unpack(entity_pack(r))), None)
    assert row is not None, "the committed manifest is cached in the table"
    evil = app_yaml("web", "1").replace("nginx:1", "evil.example/miner:666").encode()
    blobs = {**unpack(entity_pack(row)), sha: evil}
    # an operator with table write, through azure-data-tables
    repo.rt.table.upsert_entity(pack_entity(row["RowKey"], pack(blobs)))
    forget_warm_sources()  # a cold instance: its cache comes from the table
    repo.rt = Runtime(repo.rt.settings)
    repo.clear_calls()
    with caplog.at_level(logging.WARNING, logger="synoscd.sources.github"):
        again = repo.sync("timer")
    assert again.outcome == "succeeded" and again.revision == first.revision
    assert repo.image("web") == "nginx:1", "the committed image, never the table's"
    assert repo.arm_writes() == []
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("apps/web.yaml" in w and sha in w and "discarded" in w for w in warnings), warnings
    assert [c for c in repo.github_calls() if f"/git/blobs/{sha}" in c], "read again from GitHub"
    repo.rt.source().persist()
    cached = TableBlobStore(repo.rt.table).load()[1]
    assert cached.get(sha) == app_yaml("web", "1").encode(), "the pack is written again, repaired"
