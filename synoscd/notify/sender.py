"""Delivering events to the configured providers, after the pass is recorded and off its path.

Never blocking or failing the pass: `after_pass` only starts a daemon thread. Each request has a
bounded timeout (connect and read), there is no retry (the event stays in `synos get events`), and a
provider gets at most RATE_LIMIT messages per RATE_WINDOW seconds (Teams allows 100 an hour per
webhook; Slack about one a second). Failures are counted (synoscd.notifications) and logged with the
provider's name, never its URL (Slack and Teams URLs are credentials)."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import Any

from synoscd import telemetry
from synoscd.notify import config, events, providers, store

log = logging.getLogger("synoscd.notify")

TIMEOUT = (2.0, 3.0)  # seconds to connect, seconds to read: a dead receiver costs at most this
RATE_LIMIT = 20
RATE_WINDOW = 600.0

_sent: dict[str, deque[float]] = {}
_sent_lock = threading.Lock()
_threads: list[threading.Thread] = []


def _allowed(provider: str, now: float) -> bool:
    with _sent_lock:
        window = _sent.setdefault(provider, deque())
        while window and window[0] <= now - RATE_WINDOW:
            window.popleft()
        if len(window) >= RATE_LIMIT:
            return False
        window.append(now)
        return True


def after_pass(rt: Any, result: Any, recorded: Sequence[Any]) -> threading.Thread | None:
    """Find the pass's events and deliver them in the background; None when there are none (a quiet
    pass costs no table read and no thread)."""
    if getattr(result, "dry_run", False):
        return None
    found = events.of_pass(result, recorded, result.trace_id, time.time())
    if not found:
        return None
    thread = threading.Thread(target=telemetry.bind(deliver), args=(rt, found), name="notify", daemon=True)
    thread.start()
    _threads[:] = [t for t in _threads if t.is_alive()] + [thread]
    return thread


def wait(timeout_seconds: float = 15.0) -> bool:
    """Wait (bounded) for deliveries in flight: the CLI before it exits, a function before it returns
    (so a scaled-in instance does not drop them). True when none is left."""
    deadline = time.monotonic() + timeout_seconds
    for thread in list(_threads):
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in _threads)


def deliver(rt: Any, found: Sequence[events.Event]) -> dict[str, int]:
    """Record each event once (de-duplicated) and send the new ones to every provider. Never raises."""
    tally: dict[str, int] = {}
    try:
        with telemetry.span("synoscd.notify", {"synoscd.events": len(found)}):
            fresh = [e for e in found if store.claim(rt.table, e)]
            for e in found:
                if e not in fresh:
                    telemetry.count(
                        "synoscd.notifications", 1, {"provider": "*", "event": e.type, "result": "duplicate"}
                    )
            tally["duplicate"] = len(found) - len(fresh)
            if not fresh:
                return tally
            for provider in config.load(rt.table):
                for result in _send_all(rt, provider, fresh):
                    tally[result] = tally.get(result, 0) + 1
    except Exception as exc:
        log.warning("notifications not sent: %s", _first_line(exc), extra={"error": _first_line(exc)})
        tally["error"] = tally.get("error", 0) + 1
    return tally


def _send_all(rt: Any, provider: config.Provider, fresh: Sequence[events.Event]) -> list[str]:
    import requests

    try:
        url = rt.secrets.get(provider.url_secret)
        keys = {"signing_key": rt.secrets.get(provider.key_secret)} if provider.kind == "webhook" else {}
    except Exception as exc:
        log.warning(
            "notification provider %s has no readable URL in Key Vault: %s",
            provider.name,
            _first_line(exc),
            extra={"provider": provider.name},
        )
        for e in fresh:
            _count(provider, e, "failed")
        return ["failed"] * len(fresh)
    results = []
    with requests.Session() as session:
        for e in fresh:
            if not _allowed(provider.name, time.monotonic()):
                log.warning(
                    "notification to %s rate-limited: %s (see synos get events)",
                    provider.name,
                    e.type,
                    extra={"provider": provider.name, "event": e.type, "app": e.app, "revision": e.revision},
                )
                results.append(_count(provider, e, "rate-limited"))
                continue
            body, headers = providers.render(provider.kind, e, keys)
            try:
                resp = session.post(url, data=body, headers=headers, timeout=TIMEOUT)
                ok = 200 <= resp.status_code < 300
                why = f"answered {resp.status_code}"
            except requests.RequestException as exc:
                ok, why = False, type(exc).__name__
            if not ok:
                log.warning(
                    "notification to %s failed: %s",
                    provider.name,
                    why,
                    extra={"provider": provider.name, "event": e.type, "app": e.app, "revision": e.revision},
                )
            results.append(_count(provider, e, "sent" if ok else "failed"))
    return results


def _count(provider: config.Provider, e: events.Event, result: str) -> str:
    telemetry.count(
        "synoscd.notifications", 1, {"provider": provider.kind, "event": e.type, "result": result}
    )
    return result


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]
