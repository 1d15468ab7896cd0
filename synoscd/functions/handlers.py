"""The Function handlers: the timer queues a pass for each target of the fleet that is due, the webhook
verifies and queues a push (or a pull request to preview), the queue-triggered function fans a push
out to the targets it touched and runs one target's pass per message (synoscd/fleet/fanout.py), or
the preview (synoscd/preview/run.py); health says the app is alive. Each returns plain data;
function_app.py wraps it.

Nothing heavy is imported at module level: a rejected webhook (bad size, bad signature) is answered
without loading an Azure SDK or PyGithub."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any

from synoscd import telemetry, webhook

log = logging.getLogger("synoscd.functions")


def _runtime() -> Any:
    """The deployment's runtime: the default target's, and the fleet's shared parts."""
    from synoscd.engine.runtime import deployment_runtime

    return deployment_runtime()


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
    """Why a timer tick should queue a target's pass (None: it should not)."""
    from synoscd.fleet.fanout import due as target_due

    return target_due(now, last_started, interval, pending)


def on_timer(past_due: bool = False) -> dict[str, Any]:
    """Queue one pass per target that is due (its interval passed, a pass was requested, or it never
    ran); the queue-triggered function runs them, spread over the instances."""
    from synoscd.fleet import fanout
    from synoscd.state import heartbeat

    if past_due:
        log.warning("timer is past due", extra={"trigger": "timer"})
    rt = _runtime()
    heartbeat.beat(rt.table, "timer")  # `synos reconcile` checks that someone serves its request
    return fanout.tick(rt)


# -- webhook ------------------------------------------------------------------------------------------


def _webhook_secret(rt: Any) -> str:
    # In Azure the setting is a Key Vault reference the platform resolves: no SDK on this path.
    if rt.settings.github_webhook_secret is not None:
        return str(rt.settings.github_webhook_secret.get_secret_value())
    if rt.secrets is not None:
        return str(rt.secrets.get("github-webhook-secret"))
    return ""


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


def _notified() -> None:
    """Notifications in flight, bounded: an instance that scales in after the invocation drops them."""
    from synoscd import notify

    notify.wait(10.0)


def _observed(fn: Any) -> Any:
    """The webhook's span (the pass it queues links to it) and synoscd.webhook.deliveries by result,
    once telemetry runs on this instance (a pass started it): answering GitHub never waits for
    OpenTelemetry to load, and a rejected delivery loads nothing (the Functions host's request log
    counts those; see the webhook signature alert)."""

    def inner(headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        if not telemetry.enabled():
            return fn(headers, body)
        attrs = {"synoscd.delivery_id": _header(headers, "X-GitHub-Delivery")}
        with telemetry.span("synoscd.webhook", attrs) as span:
            status, out = fn(headers, body)
            span.set("http.response.status_code", status)
        telemetry.count("synoscd.webhook.deliveries", 1, {"result": out.get("status", "error")})
        return status, out

    return inner


@_observed
def on_webhook(headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
    """Verify, de-duplicate and enqueue: the answer never waits for a pass (nor ARM, nor GitHub), so
    GitHub hears back well within its 10 s; the queue-triggered function runs the pass."""
    rt = _runtime()
    settings = rt.settings
    if len(body) > settings.webhook_max_body_bytes:
        return 413, {
            "status": "rejected",
            "reason": f"body larger than {settings.webhook_max_body_bytes} bytes",
        }
    signed = _header(headers, "X-Hub-Signature-256")
    if not webhook.well_formed_signature(signed):  # decided before any secret is loaded
        log.warning("webhook rejected: missing or malformed signature", extra={"trigger": "webhook"})
        return 401, {"status": "rejected", "reason": "missing or malformed X-Hub-Signature-256"}
    try:
        secret = _webhook_secret(rt)
    except Exception as exc:  # Key Vault down: GitHub may redeliver; the timer heals meanwhile
        log.error("webhook secret unavailable", extra={"trigger": "webhook", "error": _first_line(exc)})
        return 503, {
            "status": "error",
            "reason": f"the webhook secret cannot be read now: {_first_line(exc)}",
        }
    if not webhook.verify(secret, body, signed):
        log.warning("webhook rejected: bad signature", extra={"trigger": "webhook"})
        return 401, {"status": "rejected", "reason": "bad X-Hub-Signature-256"}
    event = _header(headers, "X-GitHub-Event")
    decision = webhook.decide(
        event, body, settings.repo_full_name, settings.github_branch, settings.github_app_id
    )
    if not decision.run:
        status = {200: "ok", 202: "ignored", 204: "ignored"}.get(decision.status, "rejected")
        return decision.status, {"status": status, "reason": decision.reason}
    delivery = _header(headers, "X-GitHub-Delivery")
    problem = webhook.delivery_problem(delivery)
    if problem:
        return 400, {"status": "rejected", "reason": problem}
    assert delivery is not None
    return _enqueue(rt, delivery, decision.revision, decision.message, decision.paths)


def _enqueue(
    rt: Any,
    delivery: str,
    after: str | None,
    extra: Mapping[str, Any] | None = None,
    paths: tuple[str, ...] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One message per accepted delivery. The delivery is marked seen only once its message is on
    the queue: a delivery that could not be queued (or whose pass failed) runs when redelivered."""
    from synoscd.state import history
    from synoscd.state import queue as passes

    fast = {"retry_total": 0}  # the client's short timeouts, and no retry: GitHub waits 10 s at most
    try:
        if history.delivery_state(rt.request_table, delivery, **fast) in ("queued", "done"):
            log.info(
                "webhook redelivered: already handled", extra={"trigger": "webhook", "delivery_id": delivery}
            )
            return 200, {
                "status": "duplicate",
                "delivery": delivery,
                "reason": "this delivery was handled already",
            }
        message_id = passes.send(
            rt.passes_queue,
            {
                "delivery": delivery,
                "after": after,
                "paths": None if paths is None else list(paths),  # which targets: fleet/fanout.py
                "trigger": "webhook",
                "queuedAt": time.time(),
                "trace": telemetry.carrier(),  # the pass links to the webhook's span
                **(extra or {}),
            },
        )
        history.mark_delivery(rt.request_table, delivery, "queued", **fast)
    except Exception as exc:  # storage down: not accepted, so GitHub's redelivery will be
        log.error(
            "webhook not queued",
            extra={"trigger": "webhook", "delivery_id": delivery, "error": _first_line(exc)},
        )
        return 503, {"status": "error", "delivery": delivery, "reason": f"not queued: {_first_line(exc)}"}
    log.info("webhook queued", extra={"trigger": "webhook", "delivery_id": delivery, "revision": after})
    return 202, {"status": "queued", "delivery": delivery, "messageId": message_id, "revision": after}


# -- the queue-triggered pass ------------------------------------------------------------------------------


def _run_pass_for(rt: Any, trigger: str, after: str | None) -> Any:
    from synoscd.engine.reconcile import run_pass

    # The pushed commit (or the timer's head), not whatever the branch ref says now: GitHub's ref
    # API can lag the hook, and the fleet's targets all sync the commit the tick read.
    return run_pass(trigger, wait_seconds=rt.settings.pass_wait_seconds, revision=after, rt=rt)


def _after_dead_holder(rt: Any, trigger: str, after: str | None) -> Any:
    """A retried message (its first run died, e.g. the instance was killed mid-pass) found the
    lease held: most likely by that dead run, whose lease nobody renews. Wait until the lease is
    released or runs out (at most its lifetime) and try once more; a live holder keeps renewing, and
    then the request recorded on its lease is its coalesced re-run."""
    from synoscd.state import lease

    deadline = time.monotonic() + rt.settings.lease_seconds + 2.0
    while time.monotonic() < deadline:
        view = lease.view(rt.table)
        if view.holder is None:
            break
        time.sleep(min(1.0, max(0.1, view.expires_at - time.time())))
    return _run_pass_for(rt, trigger, after)


def _requeue(deployment: Any, target: str, trigger: str, after: str | None, delivery: Any) -> None:
    """Writes the ARM write budget deferred: the target's next pass goes on the queue now (it
    continues the same sync), rather than at the timer's next due tick."""
    from synoscd.fleet import fanout
    from synoscd.state import queue as passes

    with contextlib.suppress(Exception):
        passes.send(deployment.passes_queue, fanout.message(target, trigger, after, delivery=delivery))
        log.info("write budget exhausted: next pass queued", extra={"target": target})


def on_queue_message(body: bytes | str, dequeue_count: int = 1) -> dict[str, Any]:
    """One message of the fleet's queue. A webhook's delivery (no target named) is fanned out to the
    targets its push touched: each gets a message of its own (a single one runs here at once, as in
    a single-environment deployment: no second hop). A
    message naming a target runs that target's pass. An error is raised to the host, which retries
    the message and moves it to the poison queue after maxDequeueCount attempts (host.json); the
    delivery is marked failed, so GitHub's redelivery of it runs again."""
    from synoscd.state import history
    from synoscd.state import queue as passes

    try:
        message = passes.parse(body)
    except ValueError as exc:  # not ours: nothing to retry
        log.error("queue message dropped: %s", _first_line(exc))
        return {"ran": False, "reason": f"not a SynosCD message: {_first_line(exc)}"}
    delivery, after = message.get("delivery"), message.get("after")
    after = str(after) if after else None
    trigger = str(message.get("trigger") or "webhook")
    deployment = _runtime()
    if message.get("kind") in ("preview", "preview-closed"):  # a pull request: never a pass
        return _preview(deployment, message, delivery, dequeue_count)
    name = message.get("target")
    if not isinstance(name, str):  # a webhook's delivery: which targets did the push touch?
        from synoscd.fleet import fanout

        chosen, info = fanout.fan_out(deployment, message)
        if not chosen:
            if delivery:
                with contextlib.suppress(Exception):
                    history.mark_delivery(deployment.table, str(delivery), "done")
            return {"ran": False, "delivery": delivery, "reason": "the push touched no target", **info}
        if len(chosen) > 1:  # one message each: the platform spreads them over instances
            extra = {"delivery": delivery, "trace": message.get("trace")}
            fanned = fanout.enqueue(deployment, chosen, trigger, after, **extra)
            return {"ran": False, "delivery": delivery, "fannedOut": fanned, **info}
        name = chosen[0].name
    from synoscd.engine.runtime import UnknownTarget
    from synoscd.fleet import catalog

    try:  # the definition as declared now (a push may have moved the target since it was queued)
        rt = deployment.for_target(name, catalog.find(deployment, name) if name != "default" else None)
    except UnknownTarget as exc:  # declared when queued, removed since: nothing to run
        log.warning("queue message for an unknown target dropped: %s", _first_line(exc))
        return {"ran": False, "target": name, "reason": _first_line(exc)}
    writes = rt.deployment.write_budget(rt.settings.azure_subscription_id or "")
    deferred = writes.deferred
    try:
        trace = message.get("trace") if isinstance(message.get("trace"), dict) else None
        with telemetry.linked(trace):
            result = _run_pass_for(rt, trigger, after)
            if result.queued and dequeue_count > 1:
                result = _after_dead_holder(rt, trigger, after)
        _notified()
    except Exception:
        log.exception(
            "queued pass failed", extra={"trigger": trigger, "delivery_id": delivery, "target": name}
        )
        if delivery:
            with contextlib.suppress(Exception):
                history.mark_delivery(deployment.table, str(delivery), "failed")
        raise
    # The subscription's write budget ran dry during this pass and left writes behind (the counter is
    # the process's: another target's pass in this process may have drawn it, hence `partial` too).
    if writes.deferred > deferred and result.outcome == "partial":
        _requeue(deployment, name, trigger, after, delivery)
    if delivery:
        with contextlib.suppress(Exception):
            history.mark_delivery_outcome(deployment.table, str(delivery), result.outcome != "failed")
    if after and trigger == "webhook":  # the branch moved: open previews are planned against an old base
        _mark_previews_stale(deployment, str(after))
    out = {"target": name}
    if result.queued:
        return {
            "ran": False,
            "delivery": delivery,
            **out,
            "reason": "a pass is running; it runs once more for this push",
        }
    return {"ran": True, "delivery": delivery, "attempt": dequeue_count, **out, **_summary(result)}


def _preview(rt: Any, message: dict[str, Any], delivery: Any, dequeue_count: int) -> dict[str, Any]:
    """A pull request's preview (synoscd/preview/run.py): a check run, no lease, nothing written to ARM
    or to the sync status. An error goes back to the host, which retries the message."""
    from synoscd.preview.run import handle
    from synoscd.state import history

    try:
        outcome = handle(rt, message)
    except Exception:
        log.exception("preview failed", extra={"trigger": "preview", "delivery_id": delivery})
        if delivery:
            with contextlib.suppress(Exception):
                history.mark_delivery(rt.table, str(delivery), "failed")
        raise
    if delivery:
        with contextlib.suppress(Exception):
            history.mark_delivery(rt.table, str(delivery), "done")
    return {"ran": True, "delivery": delivery, "attempt": dequeue_count, "preview": outcome}


def _mark_previews_stale(rt: Any, base: str) -> None:
    """Best effort: a preview that cannot be marked is re-run by its next event all the same."""
    try:
        from synoscd.preview.run import mark_stale

        mark_stale(rt, base)
    except Exception as exc:
        log.warning(
            "could not mark open previews stale", extra={"trigger": "webhook", "error": _first_line(exc)}
        )


# -- health ----------------------------------------------------------------------------------------------


def on_health() -> tuple[int, dict[str, Any]]:
    """Anonymous liveness: the app answers, and which version. Nothing about passes, revisions or
    errors (those are behind the function key: `on_health_details`)."""
    from synoscd import __version__

    return 200, {"status": "ok", "version": __version__}


def on_health_details() -> tuple[int, dict[str, Any]]:
    """For operators (function key): whether the state store answers, and the last pass."""
    from synoscd import __version__

    body: dict[str, Any] = {"version": __version__}
    try:
        from synoscd.state import history

        rt = _runtime()
        latest = history.list_passes(rt.request_table, limit=1)
        body["stateStore"] = {"ok": True}
        body["lastPass"] = latest[0].to_dict() if latest else None
    except Exception as exc:
        body["status"] = "degraded"
        body["stateStore"] = {"ok": False, "error": _first_line(exc)}
        return 503, body
    body["status"] = "ok"
    return 200, body
