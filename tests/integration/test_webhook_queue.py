"""The webhook verifies, de-duplicates and enqueues (issue 12, item 6), against Azurite's tables and
queues through the real SDKs; a storage proxy cuts the queue. The answer never waits for ARM or
GitHub; the queued message runs the pass; a delivery counts as seen only once its message is queued,
and a delivery whose pass failed runs again when GitHub redelivers it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from azure.storage.queue import QueueClient, TextBase64DecodePolicy

from emulators.storage_proxy import proxy_in_front
from synoscd import webhook
from synoscd.config import Settings
from synoscd.engine.runtime import Runtime, get_runtime, reset_runtime
from synoscd.functions import handlers
from synoscd.state import history
from tests.conftest import LaunchedStack

pytestmark = pytest.mark.integration

SHA = "c0ffee" + "0" * 34


def settings(stack: LaunchedStack, **over: Any) -> Settings:
    env = {k.removeprefix("SYNOSCD_").lower(): v for k, v in stack.env.items() if k.startswith("SYNOSCD_")}
    values = {k: v for k, v in env.items() if k in Settings.model_fields}
    values.update(
        state_table=f"w{uuid.uuid4().hex[:20]}",
        queue_name=f"w{uuid.uuid4().hex[:20]}",
        **over,
    )
    return Settings(**values)


@pytest.fixture
def hook_rt(fresh_stack: LaunchedStack) -> Iterator[Runtime]:
    rt = get_runtime(settings(fresh_stack))
    yield rt
    reset_runtime()
    rt.table.delete_table()


def deliver(rt: Runtime, delivery: str, after: str = SHA) -> tuple[int, dict[str, Any]]:
    body = json.dumps(
        {"ref": "refs/heads/main", "after": after, "repository": {"full_name": rt.settings.repo_full_name}}
    ).encode()
    secret = rt.settings.github_webhook_secret.get_secret_value()  # type: ignore[union-attr]
    headers = {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": webhook.signature(secret, body),
    }
    return handlers.on_webhook(headers, body)


def messages(rt: Runtime, store: str | None = None) -> list[dict[str, Any]]:
    queue = QueueClient.from_connection_string(
        store or rt.settings.state_store.get_secret_value(),  # type: ignore[union-attr]
        rt.settings.queue_name,
        message_decode_policy=TextBase64DecodePolicy(),
    )
    return [json.loads(m.content) for m in queue.peek_messages(max_messages=32)]


def test_an_accepted_push_is_one_queued_message_and_its_redelivery_a_duplicate(
    hook_rt: Runtime, fresh_stack: LaunchedStack
) -> None:
    fresh_stack.admin("arm", "DELETE", "calls")
    fresh_stack.admin("github", "DELETE", "calls")
    status, answer = deliver(hook_rt, "7c1f3c80-0000-4000-8000-000000000001")
    assert (status, answer["status"]) == (202, "queued"), answer
    queued = messages(hook_rt)
    assert [(m["delivery"], m["after"], m["trigger"]) for m in queued] == [
        ("7c1f3c80-0000-4000-8000-000000000001", SHA, "webhook")
    ]
    again = deliver(hook_rt, "7c1f3c80-0000-4000-8000-000000000001")
    assert again[0] == 200 and again[1]["status"] == "duplicate"
    assert len(messages(hook_rt)) == 1
    assert fresh_stack.calls("arm") == [] and fresh_stack.calls("github") == [], (
        "the answer waits for neither ARM nor GitHub"
    )


def test_the_answer_does_not_wait_for_a_throttled_arm_or_github(
    hook_rt: Runtime, fresh_stack: LaunchedStack
) -> None:
    for service in ("arm", "github"):
        fresh_stack.admin(
            service, "POST", "faults", {"path": ".*", "count": 100, "status": 429, "retryAfter": 30}
        )
        fresh_stack.admin(service, "PUT", "latency", {"seconds": 5})
    status, answer = deliver(hook_rt, "throttled-1")
    assert (status, answer["status"]) == (202, "queued")
    assert fresh_stack.calls("arm") == [] and fresh_stack.calls("github") == []


def test_a_delivery_that_could_not_be_queued_runs_when_redelivered(fresh_stack: LaunchedStack) -> None:
    proxy, store = proxy_in_front(fresh_stack.env["SYNOSCD_STATE_STORE"], "Queue")
    try:
        rt = get_runtime(settings(fresh_stack, state_store=store))
        proxy.emulator.down = True  # type: ignore[attr-defined]
        status, answer = deliver(rt, "queue-down-1")
        assert (status, answer["status"]) == (503, "error"), answer
        assert "not queued" in answer["reason"]
        assert history.delivery_state(rt.table, "queue-down-1") is None, "not marked seen"
        proxy.emulator.down = False  # type: ignore[attr-defined]
        status, answer = deliver(rt, "queue-down-1")
        assert (status, answer["status"]) == (202, "queued"), "GitHub's redelivery is accepted"
        assert [m["delivery"] for m in messages(rt, store)] == ["queue-down-1"]
        rt.table.delete_table()
    finally:
        reset_runtime()
        proxy.stop()


def test_a_delivery_whose_pass_failed_runs_when_redelivered(fresh_stack: LaunchedStack) -> None:
    rt = get_runtime(settings(fresh_stack, arm_endpoint="https://127.0.0.1:9"))  # ARM unreachable
    try:
        assert deliver(rt, "pass-fails-1")[0] == 202
        (message,) = messages(rt)
        with pytest.raises(Exception, match="SYNOSCD_ARM_ENDPOINT"):
            handlers.on_queue_message(json.dumps(message).encode(), 1)  # the host would retry it
        assert history.delivery_state(rt.table, "pass-fails-1") == "failed"
        failed = history.list_passes(rt.table, limit=1)[0]
        assert (failed.trigger, failed.outcome) == ("webhook", "failed")
        status, answer = deliver(rt, "pass-fails-1")
        assert (status, answer["status"]) == (202, "queued"), "the redelivery runs again"
        rt.table.delete_table()
    finally:
        reset_runtime()


def test_a_queued_message_runs_a_webhook_pass_and_marks_its_delivery_done(fresh_stack: LaunchedStack) -> None:
    rt = get_runtime(settings(fresh_stack))
    try:
        assert deliver(rt, "runs-1")[0] == 202
        (message,) = messages(rt)
        outcome = handlers.on_queue_message(json.dumps(message).encode(), 1)
        assert outcome["ran"] is True and outcome["trigger"] == "webhook", outcome
        assert history.delivery_state(rt.table, "runs-1") == "done"
        assert history.list_passes(rt.table, limit=1)[0].trigger == "webhook"
        rt.table.delete_table()
    finally:
        reset_runtime()


def test_a_pass_the_write_budget_cut_short_puts_the_targets_next_pass_on_the_queue(
    fresh_stack: LaunchedStack,
) -> None:
    from tests.integration.test_reconcile import manifest

    owner, repo = "synoscd-budget", f"b{uuid.uuid4().hex[:8]}"
    files = {f"apps/a{i}.yaml": manifest(f"a{i}") for i in range(3)}
    fresh_stack.admin("github", "POST", "repos", {"owner": owner, "name": repo, "files": files})
    sha = fresh_stack.admin("github", "POST", f"repos/{owner}/{repo}/commits", {"files": {"README": "x"}})[
        "sha"
    ]
    # Two writes at once, then one every 50 s: a pass allowed ~31 s sends two and defers the third.
    over = {"github_repo_owner": owner, "github_repo_name": repo, "pass_wait_seconds": 1.0}
    rt = get_runtime(settings(fresh_stack, arm_write_rate=0.02, arm_write_burst=2, **over))
    try:
        assert deliver(rt, "budget-1", after=sha)[0] == 202
        (message,) = messages(rt)
        outcome = handlers.on_queue_message(json.dumps(message).encode(), 1)
        assert outcome["ran"] is True and outcome["outcome"] == "partial", outcome
        queued = messages(rt)[1:]
        assert [(m.get("target"), m.get("after"), m.get("trigger")) for m in queued] == [
            ("default", sha, "webhook")
        ], "the target's next pass is queued at once, for the same commit"
        rt.table.delete_table()
    finally:
        reset_runtime()


def test_a_queue_another_sender_created_meanwhile_still_takes_the_message(fresh_stack: LaunchedStack) -> None:
    # The fan-out's threads send to a new queue at once: each finds it missing, one creates it, and
    # the others' create answers 409 (QueueAlreadyExists). Their messages must go all the same.
    from azure.core.exceptions import ResourceNotFoundError

    from synoscd.state import queue as q

    store, name = fresh_stack.env["SYNOSCD_STATE_STORE"], f"race{uuid.uuid4().hex[:12]}"

    class Overtaken(QueueClient):
        def send_message(self, *args: Any, **kwargs: Any) -> Any:
            if not getattr(self, "overtaken", False):
                self.overtaken = True
                try:
                    return super().send_message(*args, **kwargs)
                except ResourceNotFoundError:
                    QueueClient.from_connection_string(store, name).create_queue()  # the other sender
                    raise
            return super().send_message(*args, **kwargs)

    q.send(Overtaken.from_connection_string(store, name), {"kind": "pass", "target": "t1"})
    got = [json.loads(m.content) for m in QueueClient.from_connection_string(store, name).receive_messages()]
    assert got == [{"kind": "pass", "target": "t1"}]
