"""The webhook answers right without storage, ARM or GitHub (issue 12, item 6 and the Low findings):
every malformed signed body is a 400 with a clear message, never a 500; bad delivery ids are
refused; a 400 never says "ok"; an unsigned request is a 401 without a Key Vault call, and a Key Vault
that is down is a 503. Through the real handler, with a Runtime on settings only (these answers
come before any storage call: a state store that does not exist proves it)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from synoscd import webhook
from synoscd.config import Settings
from synoscd.engine.runtime import get_runtime, reset_runtime
from synoscd.functions import handlers

SECRET = "s3cret"
SHA = "a" * 40
DEAD = "https://127.0.0.1:9"  # nothing listens: any call there fails


@pytest.fixture
def runtime() -> Iterator[Any]:
    rt = get_runtime(
        Settings(
            github_webhook_secret=SECRET,
            github_repo_owner="org",
            github_repo_name="ops",
            state_store=f"{DEAD}/devstoreaccount1",
            keyvault_url=DEAD,
        )
    )
    yield rt
    reset_runtime()


def push(**over: Any) -> bytes:
    doc: dict[str, Any] = {"ref": "refs/heads/main", "after": SHA, "repository": {"full_name": "org/ops"}}
    doc.update(over)
    return json.dumps(doc).encode()


def call(
    body: bytes, delivery: str | None = "d-1", event: str = "push", secret: str = SECRET
) -> tuple[int, Any]:
    headers = {"X-GitHub-Event": event, "X-Hub-Signature-256": webhook.signature(secret, body)}
    if delivery is not None:
        headers["X-GitHub-Delivery"] = delivery
    return handlers.on_webhook(headers, body)


def deep(levels: int) -> bytes:
    return b'{"ref": "refs/heads/main", "x": ' + b"[" * levels + b"]" * levels + b"}"


MALFORMED = {
    "deep JSON (RecursionError in the parser)": (deep(100_000), "nests deeper"),
    "deep JSON below the parser's limit": (deep(500), "nests deeper"),
    "repository as a string": (push(repository="org/ops"), "`repository` must be an object"),
    "repository without full_name": (push(repository={"name": "ops"}), "`repository` must be an object"),
    "ref as a number": (push(ref=7), "`ref` must be a string"),
    "after not a commit id": (push(after="HEAD; rm -rf /"), "`after` must be a commit id"),
    "after missing": (push(after=None), "`after` must be a commit id"),
    "not JSON": (b"\xff\xfe not json", "not JSON"),
    "a JSON list": (b"[1, 2]", "not a JSON object"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_signed_push_is_a_400_with_a_clear_message(runtime: Any, case: str) -> None:
    body, words = MALFORMED[case]
    status, answer = call(body)
    assert status == 400, answer
    assert words in answer["reason"]
    assert answer["status"] == "rejected", "a 400 never says ok"


@pytest.mark.parametrize(
    "delivery",
    ["../../etc", "a#b", "what?x=1", "x" * 2000, "tab\there", "", "-starts-with-a-dash"],
    ids=["slash", "hash", "question", "2000 chars", "control", "empty", "dash"],
)
def test_a_bad_delivery_id_is_a_400(runtime: Any, delivery: str) -> None:
    status, answer = call(push(), delivery=delivery)
    assert status == 400 and answer["status"] == "rejected"
    assert "X-GitHub-Delivery" in answer["reason"]


def test_a_missing_delivery_id_is_a_400(runtime: Any) -> None:
    status, answer = call(push(), delivery=None)
    assert status == 400 and "X-GitHub-Delivery is missing" in answer["reason"]


def test_answers_tell_the_truth_in_their_status_field(runtime: Any) -> None:
    assert call(b"{}", event="ping") == (200, {"status": "ok", "reason": "pong"})
    status, answer = call(push(ref="refs/heads/feature"))
    assert (status, answer["status"]) == (202, "ignored")
    status, answer = call(b"[]")
    assert (status, answer["status"]) == (400, "rejected")


def test_an_unsigned_request_is_a_401_without_touching_key_vault() -> None:
    # No webhook secret setting: the secret would come from Key Vault, which is down.
    get_runtime(
        Settings(
            github_repo_owner="org", github_repo_name="ops", keyvault_url=DEAD, github_webhook_secret=None
        )
    )
    before = {m for m in sys.modules if m.startswith("azure.keyvault")}
    try:
        for headers in (
            {"X-GitHub-Event": "push"},
            {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=nothex"},
            {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha1=" + "0" * 40},
        ):
            status, answer = handlers.on_webhook(headers, push())
            assert status == 401 and answer["status"] == "rejected"
        assert {m for m in sys.modules if m.startswith("azure.keyvault")} == before, "Key Vault was loaded"
    finally:
        reset_runtime()


def test_a_signed_request_while_key_vault_is_down_is_a_503_not_a_500() -> None:
    get_runtime(
        Settings(
            github_repo_owner="org", github_repo_name="ops", keyvault_url=DEAD, github_webhook_secret=None
        )
    )
    try:
        status, answer = call(push())
    finally:
        reset_runtime()
    assert status == 503 and answer["status"] == "error"
    assert "webhook secret" in answer["reason"]


def test_the_decision_carries_the_pushed_commit() -> None:
    decision = webhook.decide("push", push(), "org/ops", "main")
    assert decision.run and decision.revision == SHA
    sha256 = "b" * 64
    assert webhook.decide("push", push(after=sha256), "org/ops", "main").revision == sha256
    deleted = webhook.decide("push", push(after="0" * 40, deleted=True), "org/ops", "main")
    assert not deleted.run and "deleted" in deleted.reason


def test_the_queue_is_in_the_state_stores_account() -> None:
    from synoscd.state.queue import QueueError, queue_endpoint

    assert queue_endpoint("https://acct.table.core.windows.net") == "https://acct.queue.core.windows.net"
    assert (
        queue_endpoint("https://acct.table.core.usgovcloudapi.net/")
        == "https://acct.queue.core.usgovcloudapi.net"
    )
    with pytest.raises(QueueError, match="SYNOSCD_STATE_STORE"):
        queue_endpoint("https://tables.example.com")
