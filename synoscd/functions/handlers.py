"""The Function handlers: the timer heals drift on the runtime interval, the webhook syncs after a push,
health says whether the state store answers. Each returns plain data; function_app.py wraps it.

Nothing heavy is imported at module level: a rejected webhook (bad size, bad signature) is answered
without loading an Azure SDK or PyGithub."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from synoscd import webhook

log = logging.getLogger("synoscd.functions")


def _runtime() -> Any:
    from synoscd.engine.runtime import get_runtime

    return get_runtime()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def _summary(result: Any) -> dict[str, Any]:
    return {
        "passId": result.id,
        "outcome": result.outcome,
        "revision": result.revision,
        "counts": result.counts,
        "trigger": result.trigger,
    }


# -- timer ------------------------------------------------------------------------------------------


def due(now: float, last_started: float | None, interval: float, pending: int) -> str | None:
    """Why a timer tick should run a pass (None: it should not)."""
    if pending:
        return f"{pending} requested"
    if last_started is None:
        return "first pass"
    if now - last_started >= interval:
        return f"interval {int(interval)} s passed"
    return None


def on_timer(past_due: bool = False) -> dict[str, Any]:
    from synoscd.engine.reconcile import run_pass
    from synoscd.state import history, lease, runtime

    if past_due:
        log.warning("timer is past due", extra={"trigger": "timer"})
    rt = _runtime()
    settings = runtime.load(rt.table, rt.settings)
    latest = history.list_passes(rt.table, limit=1)
    _holder, pending = lease.read(rt.table)
    reason = due(time.time(), latest[0].started_at if latest else None, settings.interval_seconds, pending)
    if reason is None:
        return {"ran": False, "reason": f"next pass in {settings.interval_seconds} s interval"}
    if latest and int(latest[0].started_at // 3600) != int(time.time() // 3600):
        from synoscd.state import retention

        retention.apply(rt.table)  # once an hour: bounded history, timeline and delivery ids
    result = run_pass("timer", wait_seconds=rt.settings.pass_wait_seconds, rt=rt)
    if result.queued:
        return {"ran": False, "reason": "a pass is running; queued behind it"}
    return {"ran": True, "reason": reason, **_summary(result)}


# -- webhook ------------------------------------------------------------------------------------------


def _webhook_secret(rt: Any) -> str:
    # In Azure the setting is a Key Vault reference the platform resolves: no SDK on this path.
    if rt.settings.github_webhook_secret is not None:
        return str(rt.settings.github_webhook_secret.get_secret_value())
    if rt.secrets is not None:
        return str(rt.secrets.get("github-webhook-secret"))
    return ""


def on_webhook(headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    rt = _runtime()
    settings = rt.settings
    if len(body) > settings.webhook_max_body_bytes:
        return 413, {
            "status": "rejected",
            "reason": f"body larger than {settings.webhook_max_body_bytes} bytes",
        }
    if not webhook.verify(_webhook_secret(rt), body, _header(headers, "X-Hub-Signature-256")):
        log.warning("webhook rejected: missing or bad signature", extra={"trigger": "webhook"})
        return 401, {"status": "rejected", "reason": "missing or bad X-Hub-Signature-256"}
    event = _header(headers, "X-GitHub-Event")
    decision = webhook.decide(event, body, settings.repo_full_name, settings.github_branch)
    if not decision.run:
        return decision.status, {
            "status": "ignored" if decision.status == 202 else "ok",
            "reason": decision.reason,
        }
    from synoscd.engine.reconcile import run_pass
    from synoscd.state import history

    delivery = _header(headers, "X-GitHub-Delivery")
    if delivery and history.seen_delivery(rt.table, delivery):
        return 200, {
            "status": "duplicate",
            "delivery": delivery,
            "reason": "this delivery was handled already",
        }
    try:
        # The pushed commit, not whatever the branch ref says now (GitHub's ref API can lag the hook).
        result = run_pass(
            "webhook", wait_seconds=settings.webhook_wait_seconds, revision=decision.revision, rt=rt
        )
    except Exception as exc:
        log.exception("webhook pass failed", extra={"trigger": "webhook", "delivery": delivery})
        return 502, {"status": "error", "delivery": delivery, "error": str(exc).splitlines()[0][:300]}
    if result.queued:
        return 202, {
            "status": "queued",
            "delivery": delivery,
            "reason": "a pass is running; it runs once more for this push",
        }
    return 202, {"status": "accepted", "delivery": delivery, **_summary(result)}


# -- health ----------------------------------------------------------------------------------------------


def on_health() -> tuple[int, dict[str, Any]]:
    from synoscd import __version__

    body: dict[str, Any] = {"version": __version__}
    try:
        from synoscd.state import history

        rt = _runtime()
        latest = history.list_passes(rt.table, limit=1)
        body["stateStore"] = {"ok": True}
        body["lastPass"] = latest[0].to_dict() if latest else None
    except Exception as exc:
        body["status"] = "degraded"
        body["stateStore"] = {"ok": False, "error": str(exc).splitlines()[0][:300]}
        return 503, body
    body["status"] = "ok"
    return 200, body
