"""Notifications against a loopback receiver, after real passes (Azurite, the ARM and Key Vault
stand-ins): the generic webhook's signature verifies, Teams and Slack bodies have their documented
shapes, an event is sent once, and a dead receiver does not hold the pass."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from synoscd import notify
from synoscd.notify import config, providers, sender
from synoscd.state import runtime
from tests.integration.test_reconcile import Ops, manifest, ops  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


class Receiver:
    """A loopback HTTP receiver that records what it is sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"1")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [json.loads(b) for p, _, b in self.requests if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _fresh_rate_limit() -> Iterator[None]:
    sender._sent.clear()
    yield
    notify.wait(10)
    sender._sent.clear()


def _vaulted(o: Ops) -> Any:
    assert o.rt.secrets is not None, "the stack's Key Vault stand-in is configured"
    return o.rt.secrets


def _failing_pass(o: Ops) -> Any:
    o.write("doomed", manifest("doomed"))
    o.arm(
        "POST",
        "lro-failures",
        {
            "method": "PUT",
            "path": "/containerApps/doomed$",
            "code": "ContainerAppOperationError",
            "message": "quota",
        },
    )
    return o.sync()


def test_webhook_teams_and_slack_get_one_message_each_in_their_formats(ops: Ops, receiver: Receiver) -> None:  # noqa: F811
    vault = _vaulted(ops)
    for name, kind in (("hook", "webhook"), ("teams", "teams"), ("slack", "slack")):
        config.save(ops.rt.table, vault, name, kind, receiver.url(f"/{name}"), who="test")
    result = _failing_pass(ops)
    assert result.outcome == "failed"
    assert notify.wait(10)

    # generic webhook: SynosCD's event, signed with the key Key Vault holds
    ((_path, headers, raw),) = [r for r in receiver.requests if r[0] == "/hook"]
    key = vault.get("notify-hook-signing-key")
    assert len(key) == 64
    assert providers.verify(key, raw, headers[providers.SIGNATURE_HEADER])
    assert not providers.verify(key, raw + b" ", headers[providers.SIGNATURE_HEADER])
    assert not providers.verify("wrong", raw, headers[providers.SIGNATURE_HEADER])
    event = json.loads(raw)["event"]
    assert headers[providers.EVENT_HEADER] == event["type"] == "sync-failed"
    assert (
        event["revision"] == result.revision and event["passId"] == result.id and "quota" in event["message"]
    )

    # Teams: a message with one Adaptive Card attachment (the incoming-webhook format)
    (teams,) = receiver.bodies("/teams")
    assert teams["type"] == "message"
    (attachment,) = teams["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["contentUrl"] is None
    card = attachment["content"]
    assert (
        card["type"] == "AdaptiveCard"
        and card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    )
    assert card["version"] and all(block["type"] in ("TextBlock", "FactSet") for block in card["body"])
    assert "Sync failed" in card["body"][0]["text"]
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["Revision"] == result.revision[:12] and facts["Pass"] == result.id

    # Slack: text (the notification fallback) and Block Kit blocks
    (slack,) = receiver.bodies("/slack")
    assert "Sync failed" in slack["text"]
    assert [b["type"] for b in slack["blocks"]] == ["header", "section", "context"]
    assert (
        slack["blocks"][0]["text"]["type"] == "plain_text" and len(slack["blocks"][0]["text"]["text"]) <= 150
    )
    assert slack["blocks"][1]["text"]["type"] == "mrkdwn" and "quota" in slack["blocks"][1]["text"]["text"]

    # The same failure on the next pass (same revision): nothing is sent again.
    count = len(receiver.requests)
    again = ops.sync()
    assert again.revision == result.revision
    assert notify.wait(10)
    assert len(receiver.requests) == count


def test_a_dead_receiver_does_not_hold_the_pass_and_is_counted(ops: Ops) -> None:  # noqa: F811
    # A receiver that accepts connections and never answers: each request waits for the read timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        config.save(ops.rt.table, _vaulted(ops), "dead", "slack", url, who="test")
        started = time.monotonic()
        result = _failing_pass(ops)
        pass_seconds = time.monotonic() - started
        assert result.outcome == "failed"
        # The pass returned without waiting for the receiver; the delivery ends at its timeout.
        waited = time.monotonic()
        assert notify.wait(sender.TIMEOUT[0] + sender.TIMEOUT[1] + 5)
        delivery_seconds = time.monotonic() - waited
        assert delivery_seconds <= sender.TIMEOUT[0] + sender.TIMEOUT[1] + 2
        assert pass_seconds < 30  # the pass's own work; the receiver's timeout is not in it
    finally:
        silent.close()


def test_rate_limit_holds_back_a_burst(ops: Ops, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(sender, "RATE_LIMIT", 2)
    config.save(ops.rt.table, _vaulted(ops), "slack", "slack", receiver.url("/slack"), who="test")
    for n in ("aaa", "bbb", "ccc", "ddd"):
        ops.write(n, manifest(n))
    runtime.save(ops.rt.table, {"prune_enabled": True}, who="test")
    ops.sync()
    for n in ("bbb", "ccc", "ddd"):
        ops.remove(n)
    pruned = ops.sync(force_prune=True)
    assert [a.name for a in pruned.plan.actions if a.action == "delete"] == ["bbb", "ccc", "ddd"]
    assert notify.wait(10)
    assert len(receiver.bodies("/slack")) == 2  # three prune-executed events, two sent


def test_notify_specs_are_checked() -> None:
    assert config.parse("ops=slack:https://hooks.slack.com/services/T/B/x")[:2] == ("ops", "slack")
    assert config.parse("ops=off") == ("ops", None, None)
    for bad in ("ops", "Ops!=slack:https://x", "ops=email:https://x", "ops=slack:http://example.com/x"):
        with pytest.raises(ValueError):
            config.parse(bad)
