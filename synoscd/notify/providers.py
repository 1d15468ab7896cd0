"""Message formats, one per provider kind. Pure: an event in, (body bytes, headers) out.

- webhook  SynosCD's JSON event, signed like GitHub signs its webhooks: X-SynosCD-Signature-256 is
           "sha256=" + hex HMAC-SHA256 of the exact body with the provider's signing key.
- teams    a Teams incoming webhook (or a Workflows "post to a channel when a webhook request is
           received" flow): a message with one Adaptive Card attachment.
- slack    a Slack incoming webhook: `text` (the notification's fallback) and Block Kit blocks.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from synoscd.notify.events import Event

KINDS = ("webhook", "teams", "slack")
SIGNATURE_HEADER = "X-SynosCD-Signature-256"
EVENT_HEADER = "X-SynosCD-Event"
JSON = {"Content-Type": "application/json"}
_COLOR = {"error": "Attention", "warning": "Warning", "info": "Good"}
_EMOJI = {"error": ":red_circle:", "warning": ":warning:", "info": ":large_green_circle:"}


def sign(key: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def verify(key: str, body: bytes, signature: str | None) -> bool:
    """For receivers (and tests): constant-time check of the signature header."""
    return bool(signature) and hmac.compare_digest(sign(key, body), str(signature))


def _stamp(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def _facts(event: Event) -> list[tuple[str, str]]:
    facts = [("Revision", event.revision[:12]), ("Pass", event.pass_id), ("At", _stamp(event.at))]
    if event.app:
        facts.insert(0, (event.kind or "Resource", event.app))
    if event.trace_id:
        facts.append(("Trace", event.trace_id))
    return facts


def webhook(event: Event, signing_key: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"source": "synoscd", "event": event.to_dict()}, sort_keys=True).encode()
    headers = {**JSON, EVENT_HEADER: event.type, SIGNATURE_HEADER: sign(signing_key, body)}
    return body, headers


def teams(event: Event) -> tuple[bytes, dict[str, str]]:
    card: dict[str, Any] = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": f"SynosCD: {event.title}",
                "weight": "Bolder",
                "size": "Medium",
                "color": _COLOR.get(event.severity, "Default"),
                "wrap": True,
            },
            {"type": "TextBlock", "text": event.message[:2000], "wrap": True},
            {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in _facts(event)]},
        ],
    }
    message = {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }
    return json.dumps(message).encode(), dict(JSON)


def slack(event: Event) -> tuple[bytes, dict[str, str]]:
    context = " · ".join(f"*{k}* `{v}`" for k, v in _facts(event))
    message = {
        "text": f"SynosCD {event.title}: {event.message}"[:3000],  # the notification's fallback
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f"SynosCD: {event.title}"[:150]}},
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"{_EMOJI.get(event.severity, '')} {event.message}"[:3000],
                },
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context[:3000]}]},
        ],
    }
    return json.dumps(message).encode(), dict(JSON)


def render(kind: str, event: Event, secrets: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
    if kind == "webhook":
        return webhook(event, secrets.get("signing_key", ""))
    if kind == "teams":
        return teams(event)
    if kind == "slack":
        return slack(event)
    raise ValueError(f"unknown notification provider kind {kind!r}; use one of {', '.join(KINDS)}")
