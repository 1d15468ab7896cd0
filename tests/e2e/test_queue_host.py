"""The local Functions host runs queue triggers as the Azure host does (emulators/functions_host.py):
messages of the trigger's queue on Azurite, base64 as host.json says, a failing message retried and
moved to <queue>-poison after maxDequeueCount attempts, a handled one deleted."""

from __future__ import annotations

import time
import uuid

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from emulators.functions_host import FunctionsHost
from tests.conftest import LaunchedStack
from tests.e2e import queue_app

pytestmark = pytest.mark.e2e


def client(stack: LaunchedStack, name: str) -> QueueClient:
    return QueueClient.from_connection_string(
        stack.env["SYNOSCD_STATE_STORE"],
        name,
        message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(),
    )


def peek(stack: LaunchedStack, name: str) -> list[str]:
    try:
        return [m.content for m in client(stack, name).peek_messages(max_messages=32)]
    except ResourceNotFoundError:  # the host creates the poison queue when it starts polling
        return []


def test_a_failing_message_is_retried_then_poisoned_and_a_good_one_deleted(
    stack: LaunchedStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing, good = f"f{uuid.uuid4().hex[:12]}", f"g{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("TEST_FAILING_QUEUE", failing)
    monkeypatch.setenv("TEST_GOOD_QUEUE", good)
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)  # the local stack's store stands in
    for name in (failing, good):
        client(stack, name).create_queue()
    client(stack, failing).send_message("doomed")
    client(stack, good).send_message("fine")
    queue_app.attempts.clear()
    host = FunctionsHost(
        module="tests.e2e.queue_app",
        host_json={
            "extensions": {
                "queues": {
                    "maxDequeueCount": 3,
                    "visibilityTimeout": "00:00:00",
                    "maxPollingInterval": "00:00:00.2",
                }
            }
        },
    ).start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not peek(stack, f"{failing}-poison"):
            time.sleep(0.1)
    finally:
        host.stop()
    assert peek(stack, f"{failing}-poison") == ["doomed"], "moved to the poison queue"
    assert [a for a in queue_app.attempts if a[0] == "doomed"] == [
        ("doomed", 1),
        ("doomed", 2),
        ("doomed", 3),
    ]
    assert ("fine", 1) in queue_app.attempts
    assert peek(stack, failing) == [] and peek(stack, good) == []
    for name in (failing, good, f"{failing}-poison"):
        client(stack, name).delete_queue()
