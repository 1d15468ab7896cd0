"""Notifications on sync events (events.py), to providers configured at runtime (config.py) in their
formats (providers.py), sent after the pass is recorded (sender.py) and kept for `synos get events`
(store.py)."""

from __future__ import annotations

from typing import Any


def after_pass(rt: Any, result: Any, recorded: Any) -> Any:
    """See sender.after_pass; imported lazily so `import synoscd.engine.reconcile` stays light."""
    from synoscd.notify import sender

    return sender.after_pass(rt, result, recorded)


def wait(timeout_seconds: float = 15.0) -> bool:
    import sys

    sender = sys.modules.get("synoscd.notify.sender")
    return True if sender is None else sender.wait(timeout_seconds)
