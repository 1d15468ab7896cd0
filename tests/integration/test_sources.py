"""Sources against the GitHub stand-in over a real git repository, through PyGithub with the GitHub
App; request counts read from the stand-in's call log."""

from __future__ import annotations

import random
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableClient

from synoscd.azure.credentials import make_credential
from synoscd.azure.keyvault import KeyVaultSecrets, SecretUnavailable
from synoscd.config import Settings
from synoscd.sources.factory import build_source, forget_warm_sources, github_credentials
from synoscd.sources.github import GitHubSource
from synoscd.sources.local import LocalSource
from synoscd.sources.snapshot import SourceError, git_blob_id
from synoscd.state import table as t
from synoscd.state.blobcache import PACKS, TableBlobStore
from tests.conftest import APP_YAML, LaunchedStack

pytestmark = pytest.mark.integration

APP = APP_YAML


@pytest.fixture
def gh(fresh_stack: LaunchedStack) -> Iterator[LaunchedStack]:
    forget_warm_sources()
    yield fresh_stack
    forget_warm_sources()


def new_repo(stack: LaunchedStack, files: dict[str, str]) -> str:
    name = f"ops-{uuid.uuid4().hex[:8]}"
    stack.admin("github", "POST", "repos", {"owner": "synoscd-test", "name": name, "files": files})
    return name


def settings_for(stack: LaunchedStack, repo: str, **extra: object) -> Settings:
    env = {k.removeprefix("SYNOSCD_").lower(): v for k, v in stack.env.items() if k.startswith("SYNOSCD_")}
    env.update(github_repo_owner="synoscd-test", github_repo_name=repo, **extra)
    known = set(Settings.model_fields)
    return Settings(**{k: v for k, v in env.items() if k in known})


def commit(stack: LaunchedStack, repo: str, files: dict[str, str | None]) -> str:
    return stack.admin("github", "POST", f"repos/synoscd-test/{repo}/commits", {"files": files})["sha"]


def github_calls(stack: LaunchedStack) -> list[str]:
    return [f"{c['method']} {c['path']} {c['status']}" for c in stack.calls("github")]


def many_apps(n: int) -> dict[str, str]:
    return {f"apps/app-{i:03d}.yaml": APP.format(name=f"app-{i:03d}", tag="1") for i in range(n)}


def test_unchanged_commit_costs_at_most_two_requests(gh: LaunchedStack) -> None:
    repo = new_repo(gh, {**many_apps(3), "README.md": "not a manifest", "apps/notes.txt": "ignored"})
    source = build_source(settings_for(gh, repo))
    first = source.snapshot()
    assert sorted(first.files) == ["apps/app-000.yaml", "apps/app-001.yaml", "apps/app-002.yaml"]
    assert first.source == f"synoscd-test/{repo}:apps"
    gh.admin("github", "DELETE", "calls")
    again = build_source(settings_for(gh, repo)).snapshot()  # the warm instance's source
    calls = github_calls(gh)
    assert len(calls) <= 2, calls
    assert calls == [f"GET /repos/synoscd-test/{repo}/git/ref/heads/main 304"], "a conditional request"
    assert again.revision == first.revision and again.files == first.files
    assert again.changed == frozenset()


def test_one_changed_file_of_500_costs_o_k_requests(gh: LaunchedStack) -> None:
    repo = new_repo(gh, many_apps(500))
    source = build_source(settings_for(gh, repo))
    before = source.snapshot()
    assert len(before.files) == 500
    head = commit(gh, repo, {"apps/app-123.yaml": APP.format(name="app-123", tag="2")})
    gh.admin("github", "DELETE", "calls")
    after = source.snapshot()
    calls = github_calls(gh)
    assert len(calls) <= 5, calls
    assert after.revision == head
    assert after.changed == frozenset({"apps/app-123.yaml"})
    assert b"nginx:2" in after.files["apps/app-123.yaml"]
    assert source.changed_since(before.revision) == frozenset({"apps/app-123.yaml"})


class _CountingStore(TableBlobStore):
    """The table's store, counting saves."""

    saves = 0

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.saves += 1
        super().save(*args, **kwargs)


def test_cold_start_with_the_persisted_cache(gh: LaunchedStack) -> None:
    repo = new_repo(gh, many_apps(50))
    table = t.open_table(gh.env["SYNOSCD_STATE_STORE"], table_name=f"b{uuid.uuid4().hex[:16]}")
    try:
        warm = build_source(settings_for(gh, repo), store=TableBlobStore(table))
        first = warm.snapshot()
        forget_warm_sources()  # a new Function instance: no token, no ETag, no memory cache
        gh.admin("github", "DELETE", "calls")
        store = _CountingStore(table)
        cold_source = build_source(settings_for(gh, repo), store=store)
        cold = cold_source.snapshot()
        calls = github_calls(gh)
        assert len(calls) <= 5, calls
        assert not [c for c in calls if "/git/blobs/" in c], "no blob is read again"
        assert cold.files == first.files and cold.revision == first.revision
        cold_source.persist()  # type: ignore[attr-defined]
        assert store.saves == 0, "the table holds this head and its blobs already: nothing is saved again"
    finally:
        table.delete_table()


def test_config_from_reads_any_repository_file(gh: LaunchedStack) -> None:
    repo = new_repo(gh, {**many_apps(1), "config/web.json": '{"a": 1}'})
    snap = build_source(settings_for(gh, repo)).snapshot()
    assert snap.read("config/web.json") == b'{"a": 1}'
    assert snap.read("config/missing.json") is None


def test_5xx_burst_is_a_clear_source_error_in_bounded_time(gh: LaunchedStack) -> None:
    repo = new_repo(gh, many_apps(1))
    gh.admin("github", "POST", "faults", {"path": "/git/ref/heads/", "count": 20, "status": 502})
    started = time.monotonic()
    with pytest.raises(SourceError) as err:
        build_source(settings_for(gh, repo)).snapshot()
    assert time.monotonic() - started < 10
    assert gh.env["SYNOSCD_GITHUB_API_URL"] in str(err.value)


def test_rate_limit_is_a_clear_source_error(gh: LaunchedStack) -> None:
    repo = new_repo(gh, many_apps(1))
    source = build_source(settings_for(gh, repo))
    source.snapshot()
    commit(gh, repo, {"apps/app-000.yaml": APP.format(name="app-000", tag="9")})
    gh.admin("github", "PUT", "ratelimit", {"remaining": 0})
    started = time.monotonic()
    with pytest.raises(SourceError) as err:
        source.snapshot()
    assert time.monotonic() - started < 10
    assert "rate limit" in str(err.value)


def test_missing_repository_names_the_settings(gh: LaunchedStack) -> None:
    with pytest.raises(SourceError) as err:
        build_source(settings_for(gh, "no-such-repo")).snapshot()
    assert "SYNOSCD_GITHUB_REPO_NAME" in str(err.value)


def test_github_app_secrets_come_from_key_vault(gh: LaunchedStack) -> None:
    settings = settings_for(gh, "unused")
    secrets = KeyVaultSecrets(settings.keyvault_url or "", make_credential(settings))
    creds = github_credentials(settings, secrets)
    assert creds.app_id == int(gh.env["SYNOSCD_GITHUB_APP_ID"])
    assert creds.private_key == gh.env["SYNOSCD_GITHUB_APP_PRIVATE_KEY"]
    assert "BEGIN" not in repr(creds), "the key never shows in a repr"
    with pytest.raises(SecretUnavailable) as err:
        secrets.get("no-such-secret")
    assert settings.keyvault_url in str(err.value) and "no-such-secret" in str(err.value)


def test_local_folder_and_git_repository(tmp_path: Path) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "a.yaml").write_text(APP.format(name="a", tag="1"))
    (tmp_path / "apps" / "b.txt").write_text("ignored")
    folder = LocalSource(tmp_path, "apps").snapshot()
    assert folder.revision.startswith("sha256:") and list(folder.files) == ["apps/a.yaml"]
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    head = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    source = LocalSource(tmp_path, "apps")
    assert source.snapshot().revision == head
    (tmp_path / "apps" / "a.yaml").write_text(APP.format(name="a", tag="2"))
    dirty = source.snapshot()
    assert dirty.revision.startswith("sha256:") and dirty.changed == frozenset({"apps/a.yaml"})
    assert source.changed_since(head) == frozenset({"apps/a.yaml"})


def test_source_is_kept_warm_per_process(gh: LaunchedStack) -> None:
    repo = new_repo(gh, many_apps(1))
    assert isinstance(build_source(settings_for(gh, repo)), GitHubSource)
    assert build_source(settings_for(gh, repo)) is build_source(settings_for(gh, repo))


def test_blob_store_round_trip(gh: LaunchedStack) -> None:
    table: TableClient = t.open_table(gh.env["SYNOSCD_STATE_STORE"], table_name=f"c{uuid.uuid4().hex[:16]}")
    try:
        from synoscd.sources.github import PersistedIndex

        legacy = [
            {"PartitionKey": "blobs", "RowKey": "s0", "data": "x"},
            {"PartitionKey": "blobindex", "RowKey": "latest"},
        ]
        for row in legacy:  # what SynosCD before packs kept: one row per blob
            table.upsert_entity(row)
        store = TableBlobStore(table)
        assert store.load() == (None, {}), "old rows are not read"
        s1, s2, s3 = (git_blob_id(b) for b in (b"a", b"b", b"\xff\x00binary"))
        store.save(PersistedIndex("h1", {"apps/a.yaml": s1, "apps/b.yaml": s2}), {s1: b"a", s2: b"b"})
        assert store.load()[1] == {s1: b"a", s2: b"b"}
        assert [r for p in ("blobs", "blobindex") for r in t.query(table, p)] == [], (
            "the first save collects them"
        )
        store.save(PersistedIndex("h2", {"apps/a.yaml": s3}), {s3: b"\xff\x00binary"})
        index, blobs = store.load()
        assert index == PersistedIndex("h2", {"apps/a.yaml": s3})
        assert blobs == {s3: b"\xff\x00binary"}, "blobs no longer referenced are collected"
        rng = random.Random(0)  # incompressible: the packs' size limits are what is tested
        contents = [rng.randbytes(200_000) for _ in range(8)]
        many = {git_blob_id(c): c for c in contents}
        store.save(PersistedIndex("h3", {f"apps/{s}.yaml": s for s in many}), many)
        assert store.load() == (PersistedIndex("h3", {f"apps/{s}.yaml": s for s in many}), many), (
            "several packs"
        )
        assert len(t.query(table, PACKS)) > 2
        store.save(PersistedIndex("h4", {"apps/a.yaml": s1}), {s1: b"a"})
        assert store.load()[1] == {s1: b"a"} and len(t.query(table, PACKS)) == 2, "packs beyond are deleted"
    finally:
        table.delete_table()


def test_a_pass_posts_a_commit_status_only_when_there_is_news(gh: LaunchedStack) -> None:
    import uuid as _uuid

    from synoscd.engine.reconcile import run_pass
    from synoscd.engine.runtime import Runtime

    repo = new_repo(gh, many_apps(1))
    rt = Runtime(settings_for(gh, repo, state_table=f"s{_uuid.uuid4().hex[:16]}"))
    try:
        gh.admin("arm", "PUT", "config", {"provisioningDelay": 0.05})
        first = run_pass("cli", rt=rt, wait_seconds=10)
        assert first.outcome == "succeeded"
        statuses = rt.source().gh.get_repo(f"synoscd-test/{repo}").get_commit(first.revision).get_statuses()
        got = [(s.state, s.context) for s in statuses]
        assert got == [("success", "synoscd")]
        gh.admin("github", "DELETE", "calls")
        run_pass("cli", rt=rt, wait_seconds=10)
        assert not [c for c in github_calls(gh) if c.startswith("POST")], "no news, no status"
    finally:
        rt.table.delete_table()


def test_a_pushed_commit_is_read_without_the_ref(gh: LaunchedStack) -> None:
    repo = new_repo(gh, many_apps(2))
    source = build_source(settings_for(gh, repo))
    first = source.snapshot()
    pushed = commit(gh, repo, {"apps/app-001.yaml": APP.format(name="app-001", tag="2")})
    commit(gh, repo, {"apps/app-000.yaml": APP.format(name="app-000", tag="3")})  # the branch moved on
    gh.admin("github", "DELETE", "calls")
    snap = source.snapshot(at=pushed)
    assert snap.revision == pushed and snap.changed == frozenset({"apps/app-001.yaml"})
    assert b"nginx:2" in snap.files["apps/app-001.yaml"] and b"nginx:1" in snap.files["apps/app-000.yaml"]
    assert not [c for c in github_calls(gh) if "/git/ref/" in c]
    assert source.snapshot(at=pushed).files == snap.files and source.changed_since(first.revision)
    with pytest.raises(SourceError, match="40-character"):
        source.snapshot(at="main")


def test_a_forged_index_in_the_table_cannot_redirect_a_manifest(gh: LaunchedStack) -> None:
    """The persisted index only hints at what changed: paths and blob ids always come from GitHub."""
    from synoscd.sources.github import PersistedIndex

    repo = new_repo(gh, many_apps(1))
    table = t.open_table(gh.env["SYNOSCD_STATE_STORE"], table_name=f"f{uuid.uuid4().hex[:16]}")
    try:
        warm = build_source(settings_for(gh, repo), store=TableBlobStore(table))
        first = warm.snapshot()
        warm.persist()
        evil = APP.format(name="app-000", tag="1").replace("nginx:1", "evil:6").encode()
        forged = PersistedIndex(first.revision, {"apps/app-000.yaml": git_blob_id(evil)})
        TableBlobStore(table).save(forged, {git_blob_id(evil): evil})  # a consistent forgery
        forget_warm_sources()
        cold = build_source(settings_for(gh, repo), store=TableBlobStore(table)).snapshot()
        assert cold.files == first.files and b"evil" not in cold.files["apps/app-000.yaml"]
    finally:
        table.delete_table()


def test_local_source_reads_a_given_commit(tmp_path: Path) -> None:
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t.invalid"]
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "a.yaml").write_text(APP.format(name="a", tag="1"))
    (tmp_path / "config.json").write_text("{}")
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    one = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    (tmp_path / "apps" / "a.yaml").write_text(APP.format(name="a", tag="2"))
    (tmp_path / "apps" / "b.yaml").write_text(APP.format(name="b", tag="2"))
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "two"], check=True)
    source = LocalSource(tmp_path, "apps")
    at_one = source.snapshot(at=one)
    assert at_one.revision == one and list(at_one.files) == ["apps/a.yaml"]
    assert b"nginx:1" in at_one.files["apps/a.yaml"] and at_one.read("config.json") == b"{}"
    assert source.snapshot().files["apps/a.yaml"] != at_one.files["apps/a.yaml"]
    with pytest.raises(SourceError, match="not a commit"):
        source.snapshot(at="0" * 40)
