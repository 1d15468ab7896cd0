"""`synos get targets`: the fleet at a glance (synoscd/fleet/overview.py). The --target option every
command takes is in cli/main.py."""

from __future__ import annotations

import argparse
from typing import Any

from synoscd.cli.output import cell, emit, short_rev, table


def add_get(sub: Any, get_sub: Any) -> None:
    text = "every target of the fleet: where, its last pass, its lease and counts"
    g = sub.child(get_sub, "targets", help=text, description=text)
    g.set_defaults(run=get_targets)


def get_targets(args: argparse.Namespace) -> int:
    from synoscd.engine.runtime import deployment_runtime
    from synoscd.fleet.overview import fleet_view

    doc = fleet_view(deployment_runtime())
    emit(doc, args.output, _view)
    failed = [t for t in doc["targets"] if (t["lastPass"] or {}).get("outcome") in ("failed", "source-error")]
    return 1 if failed or doc["errors"] else 0


def _lease(doc: dict[str, Any]) -> str:
    if "error" in doc:
        return f"unreadable: {doc['error']}"
    if doc.get("holder"):
        return f"held ({doc.get('instance') or doc['holder']})"
    parts = ["free"]
    if doc.get("pending"):
        parts.append(f"{doc['pending']} requested")
    if doc.get("queuedAt"):
        from synoscd.cli.views import ago

        parts.append(f"queued {ago(doc['queuedAt'])}")
    return ", ".join(parts)


def _view(doc: dict[str, Any]) -> str:
    from synoscd.cli.views import ago

    rows = []
    for t in doc["targets"]:
        last = t["lastPass"] or {}
        rows.append(
            (
                t["name"],
                f"{t['subscriptionId'][:8]}…/{t['resourceGroup']}/{t['environment']}",
                t["path"] or ".",
                last.get("outcome", "never"),
                short_rev(last.get("revision")),
                ago(last.get("startedAt")),
                cell(last.get("counts") or {}),
                _lease(t["lease"]),
            )
        )
    out = table(["target", "where", "path", "last pass", "revision", "when", "counts", "lease"], rows)
    if doc["errors"]:
        out += "\n" + "\n".join(f"error: {e}" for e in doc["errors"])
    return out
