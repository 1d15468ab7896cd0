"""The Functions app end to end over HTTP through the local host: the GitHub stand-in commits and
delivers signed webhooks, the webhook queues them on Azurite's queue and the queue-triggered function
runs the pass; ARM and the state table show the result; the timer honours the runtime interval from
the table; passes never overlap."""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests

from synoscd.state import history, runtime
from synoscd.state import table as t
from tests.conftest import APP_YAML, LaunchedStack
from tests.e2e.conftest import FUNCTION_KEY, Host

pytestmark = pytest.mark.e2e

OWNER = "synoscd-e2e"
APP = APP_YAML


def new_repo(stack: LaunchedStack, files: dict[str, str]) -> str:
    name = f"ops-{uuid.uuid4().hex[:8]}"
    stack.admin("github", "POST", "repos", {"owner": OWNER, "name": name, "files": files})
    return name


def commit(stack: LaunchedStack, repo: str, files: dict[str, str]) -> str:
    return stack.admin("github", "POST", f"repos/{OWNER}/{repo}/commits", {"files": files})["sha"]


def deliver(stack: LaunchedStack, host: Host, repo: str, **kw: Any) -> dict[str, Any]:
    spec = {
        "url": f"{host.url}/api/github/webhook",
        "secret": stack.env["SYNOSCD_GITHUB_WEBHOOK_SECRET"],
        "event": "push",
        "owner": OWNER,
        "name": repo,
        **kw,
    }
    return stack.admin("github", "POST", "webhooks/deliver", spec)


def arm_writes(stack: LaunchedStack) -> list[dict[str, Any]]:
    return [c for c in stack.calls("arm") if c["method"] in ("PUT", "DELETE", "PATCH")]


@pytest.fixture
def repo_host(
    fresh_stack: LaunchedStack, host_factory: Callable[..., Host]
) -> tuple[LaunchedStack, Host, str]:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.2})
    repo = new_repo(fresh_stack, {"apps/web.yaml": APP.format(name="web", tag="1")})
    host = host_factory(SYNOSCD_GITHUB_REPO_OWNER=OWNER, SYNOSCD_GITHUB_REPO_NAME=repo)
    return fresh_stack, host, repo


def wait_for_passes(table: Any, n: int, timeout: float = 20) -> list[Any]:
    deadline = time.monotonic() + timeout
    while len(passes := history.list_passes(table, limit=100)) < n and time.monotonic() < deadline:
        time.sleep(0.1)
    return passes


def test_signed_push_reaches_arm_and_redelivery_runs_nothing(repo_host: Any) -> None:
    stack, host, repo = repo_host
    table = t.open_table(host.env["SYNOSCD_STATE_STORE"], table_name=host.env["SYNOSCD_STATE_TABLE"])
    sha = commit(stack, repo, {"apps/web.yaml": APP.format(name="web", tag="2")})
    stack.admin("arm", "DELETE", "calls")
    pushed_at = time.time()
    answer = deliver(stack, host, repo, delivery_id="delivery-1")
    assert answer["status"] == 202 and '"queued"' in answer["body"], answer
    assert [p.trigger for p in wait_for_passes(table, 1)] == ["webhook"], "the queued message ran the pass"
    puts = [c for c in arm_writes(stack) if c["method"] == "PUT" and c["path"].endswith("/containerApps/web")]
    # How fast is a benchmark's business (bench/), not a test's: this machine is shared and noisy.
    assert len(puts) == 1 and puts[0]["time"] > pushed_at, "the push reached ARM"
    from synoscd.state import apps

    status = apps.get_status(table, "App", "web")
    assert status is not None and status.applied_revision == sha
    stack.admin("arm", "DELETE", "calls")
    stack.admin("github", "DELETE", "calls")
    again = deliver(stack, host, repo, delivery_id="delivery-1")
    assert again["status"] == 200 and '"duplicate"' in again["body"]
    time.sleep(2.0)  # longer than the queue's polling interval: a message would have run by now
    assert stack.calls("arm") == [] and stack.calls("github") == []
    assert len(history.list_passes(table)) == 1


def test_the_webhook_answers_at_once_while_arm_and_github_are_slow(repo_host: Any) -> None:
    stack, host, repo = repo_host
    commit(stack, repo, {"apps/web.yaml": APP.format(name="web", tag="3")})
    for service in ("arm", "github"):
        stack.admin(service, "PUT", "latency", {"seconds": 12})  # beyond GitHub's 10 s delivery timeout
    started = time.monotonic()
    answer = deliver(stack, host, repo, delivery_id="slow-1")
    answered_in = time.monotonic() - started
    assert answer["status"] == 202 and '"queued"' in answer["body"], answer
    assert answered_in < 10, f"GitHub gives up after 10 s; the answer took {answered_in:.1f} s"
    for service in ("arm", "github"):
        stack.admin(service, "PUT", "latency", {"seconds": 0})


def test_a_redelivery_after_a_failed_pass_runs_again(
    fresh_stack: LaunchedStack, host_factory: Callable[..., Host]
) -> None:
    repo = new_repo(fresh_stack, {"apps/web.yaml": APP.format(name="web", tag="1")})
    host = host_factory(
        SYNOSCD_GITHUB_REPO_OWNER=OWNER,
        SYNOSCD_GITHUB_REPO_NAME=repo,
        SYNOSCD_ARM_ENDPOINT="https://127.0.0.1:9",
    )
    table = t.open_table(host.env["SYNOSCD_STATE_STORE"], table_name=host.env["SYNOSCD_STATE_TABLE"])
    assert deliver(fresh_stack, host, repo, delivery_id="fails-1")["status"] == 202
    failed = wait_for_passes(table, 1)
    assert failed and failed[0].outcome == "failed", "the queued pass failed (ARM is unreachable)"
    deadline = time.monotonic() + 10
    while history.delivery_state(table, "fails-1") != "failed" and time.monotonic() < deadline:
        time.sleep(0.1)  # the handler marks the delivery once the pass has raised
    again = deliver(fresh_stack, host, repo, delivery_id="fails-1")
    assert again["status"] == 202 and '"queued"' in again["body"], again


def test_bad_or_missing_signature_is_401_and_touches_nothing(repo_host: Any) -> None:
    stack, host, repo = repo_host
    stack.admin("arm", "DELETE", "calls")
    stack.admin("github", "DELETE", "calls")
    wrong = deliver(stack, host, repo, secret="not-the-secret")
    assert wrong["status"] == 401
    missing = requests.post(
        f"{host.url}/api/github/webhook",
        data=b'{"ref": "refs/heads/main"}',
        headers={"X-GitHub-Event": "push", "Content-Type": "application/json"},
        timeout=10,
    )
    assert missing.status_code == 401
    assert stack.calls("arm") == [] and stack.calls("github") == []


def test_ping_other_branch_other_events_and_oversize(repo_host: Any) -> None:
    stack, host, repo = repo_host
    assert deliver(stack, host, repo, event="ping")["status"] == 200
    stack.admin("arm", "DELETE", "calls")
    payload = {"ref": "refs/heads/feature", "after": "0" * 40, "repository": {"full_name": f"{OWNER}/{repo}"}}
    other = deliver(stack, host, repo, payload=payload)
    assert other["status"] == 202 and "ignored" in other["body"] and "refs/heads/feature" in other["body"]
    assert stack.calls("arm") == []
    from synoscd.webhook import signature

    secret = stack.env["SYNOSCD_GITHUB_WEBHOOK_SECRET"]
    body = b'{"action": "opened"}'
    issues = requests.post(
        f"{host.url}/api/github/webhook",
        data=body,
        timeout=10,
        headers={"X-GitHub-Event": "issues", "X-Hub-Signature-256": signature(secret, body)},
    )
    assert issues.status_code == 204
    huge = b"x" * (5 * 1024 * 1024 + 1)
    too_big = requests.post(
        f"{host.url}/api/github/webhook",
        data=huge,
        timeout=30,
        headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": signature(secret, huge)},
    )
    assert too_big.status_code == 413
    assert requests.get(f"{host.url}/api/github/webhook", timeout=10).status_code == 405


def test_health_is_liveness_for_anyone_and_details_behind_the_function_key(repo_host: Any) -> None:
    stack, host, repo = repo_host
    deliver(stack, host, repo)
    table = t.open_table(host.env["SYNOSCD_STATE_STORE"], table_name=host.env["SYNOSCD_STATE_TABLE"])
    wait_for_passes(table, 1)
    anonymous = requests.get(f"{host.url}/api/health", timeout=10)
    assert anonymous.status_code == 200
    assert set(anonymous.json()) == {"status", "version"}, "no pass, revision or error for anyone"
    assert requests.get(f"{host.url}/api/health/details", timeout=10).status_code == 401
    resp = requests.get(
        f"{host.url}/api/health/details", headers={"x-functions-key": FUNCTION_KEY}, timeout=10
    )
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["status"] == "ok" and doc["stateStore"]["ok"] is True
    assert doc["lastPass"]["trigger"] == "webhook"
    for text in (anonymous.text, resp.text):
        for secret in (stack.env["SYNOSCD_GITHUB_WEBHOOK_SECRET"], "PRIVATE KEY", "AccountKey"):
            assert secret not in text


def test_timer_honours_an_interval_changed_in_the_table_without_restart(
    fresh_stack: LaunchedStack, host_factory: Callable[..., Host]
) -> None:
    repo = new_repo(fresh_stack, {"apps/web.yaml": APP.format(name="web", tag="1")})
    host = host_factory(
        SYNOSCD_GITHUB_REPO_OWNER=OWNER,
        SYNOSCD_GITHUB_REPO_NAME=repo,
        SYNOSCD_TIMER_SCHEDULE="*/1 * * * * *",
        SYNOSCD_RECONCILE_INTERVAL_SECONDS=3600,
    )
    table = t.open_table(host.env["SYNOSCD_STATE_STORE"], table_name=host.env["SYNOSCD_STATE_TABLE"])
    deadline = time.monotonic() + 15
    while not history.list_passes(table) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [p.trigger for p in history.list_passes(table)] == ["timer"], "the first tick runs the first pass"
    time.sleep(2.5)
    assert len(history.list_passes(table)) == 1, "ticks within the interval run nothing"
    runtime.save(table, {"interval_seconds": 1}, who="test")
    deadline = time.monotonic() + 10
    while len(history.list_passes(table)) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(history.list_passes(table)) >= 3, "the next ticks saw the new interval"


def test_timer_ticks_and_webhooks_together_run_one_pass_at_a_time(
    fresh_stack: LaunchedStack, host_factory: Callable[..., Host]
) -> None:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.5})
    repo = new_repo(fresh_stack, {f"apps/app{i}.yaml": APP.format(name=f"app{i}", tag="1") for i in range(3)})
    host = host_factory(
        SYNOSCD_GITHUB_REPO_OWNER=OWNER,
        SYNOSCD_GITHUB_REPO_NAME=repo,
        SYNOSCD_TIMER_SCHEDULE="*/1 * * * * *",
        SYNOSCD_RECONCILE_INTERVAL_SECONDS=10,
    )
    table = t.open_table(host.env["SYNOSCD_STATE_STORE"], table_name=host.env["SYNOSCD_STATE_TABLE"])
    runtime.save(table, {"interval_seconds": 1}, who="test")
    answers: list[int] = []

    def push(i: int) -> None:
        commit(fresh_stack, repo, {f"apps/app{i}.yaml": APP.format(name=f"app{i}", tag=f"{i + 5}")})
        answers.append(deliver(fresh_stack, host, repo)["status"])

    threads = [threading.Thread(target=push, args=(i,)) for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert answers == [202, 202, 202]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # the queued passes first, then a timer tick finds the lease free
        passes = sorted(history.list_passes(table, limit=100), key=lambda p: p.started_at)
        if len(passes) >= 3 and "timer" in {p.trigger for p in passes}:
            break
        time.sleep(0.2)
    assert len(passes) >= 3
    assert {p.trigger for p in passes} >= {"timer"}
    for earlier, later in itertools.pairwise(passes):
        assert earlier.finished_at is not None and earlier.finished_at <= later.started_at, (
            "passes overlapped"
        )
