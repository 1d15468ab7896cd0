"""`synos sync` (run one pass here) and `synos diff` (what a pass would do)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from synoscd.cli.output import CliError, emit, table
from synoscd.cli.prompt import add_yes, confirm


def add(sub: Any) -> None:
    p = sub.add_parser(
        "sync",
        help="run one reconcile pass now, here",
        description="Run one reconcile pass from this machine (it takes the same lease as the "
        "deployed functions). --dry-run only plans.",
    )
    p.add_argument("--dry-run", action="store_true", help="plan only: list the actions in execution order")
    p.add_argument("--app", metavar="NAME", help="only this app or job")
    p.add_argument(
        "--force-prune",
        action="store_true",
        help="allow a prune above the safety fraction (never with an incomplete desired set)",
    )
    p.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="how long to wait for long-running operations (default SYNOSCD_PASS_WAIT_SECONDS)",
    )
    add_yes(p)
    p.set_defaults(run=sync)
    d = sub.add_parser(
        "diff",
        help="show desired vs live differences",
        description="Plan a pass without executing it. Exit 0 when nothing differs, 1 when "
        "something would change, 2 on error.",
    )
    d.add_argument("--app", metavar="NAME", help="only this app or job")
    d.set_defaults(run=diff)


def _progress(args: argparse.Namespace) -> Any:
    """Progress lines on a terminal for table output; nothing extra in json or yaml."""
    if args.output != "table" or not sys.stderr.isatty():
        return None
    return lambda message: print(f"... {message}", file=sys.stderr, flush=True)


def _run(dry_run: bool, args: argparse.Namespace) -> Any:
    from synoscd.engine.reconcile import run_pass

    return run_pass(
        "cli",
        dry_run=dry_run,
        app=args.app,
        wait_seconds=getattr(args, "wait", None),
        force_prune=getattr(args, "force_prune", False),
        progress=_progress(args),
    )


def render_pass(result: Any, args: argparse.Namespace) -> int:
    if result.queued:
        emit(
            {"queued": True, "message": "another pass is running; this request runs when it finishes"},
            args.output,
            lambda d: d["message"],
        )
        return 0
    emit(result.to_dict(), args.output, _table)
    if result.source_error:
        raise CliError(f"source error: {result.source_error}")
    return 2 if result.outcome == "failed" else 0


def sync(args: argparse.Namespace) -> int:
    if not args.dry_run:
        confirm(args, "Run a reconcile pass now (it writes to Azure)?")
    return render_pass(_run(args.dry_run, args), args)


def diff(args: argparse.Namespace) -> int:
    result = _run(True, args)
    emit(result.to_dict(), args.output, _table)
    if result.source_error:
        raise CliError(f"source error: {result.source_error}")
    return 1 if any(a.writes for a in result.plan.actions) else 0


def _table(doc: dict[str, Any]) -> str:
    rows = [
        (a["order"], a["kind"], a["name"], a["action"], a["reason"], a["phase"], a["wave"], _changes(a))
        for a in doc.get("actions", [])
    ]
    lines = [
        f"revision {doc.get('revision')}  prune {'on' if doc['prune']['enabled'] else 'off'}"
        + (f" (blocked: {doc['prune']['blocked']})" if doc["prune"].get("blocked") else "")
    ]
    lines.append(table(["#", "kind", "name", "action", "reason", "phase", "wave", "changes"], rows))
    for r in doc.get("results", []):
        if r["result"] != "ok":
            lines.append(
                f"{r['kind']} {r['name']}: {r['result']}" + (f": {r['error']}" if r["error"] else "")
            )
    for e in doc.get("errors", []):
        lines.append(f"{e['file']}:{e['line']}: {e['field']}: {e['message']}")
    if not doc.get("dryRun"):
        lines.append(f"pass {doc['id']}: {doc['outcome']} in {doc.get('durationMs', 0)} ms")
    return "\n".join(lines)


def _changes(action: dict[str, Any]) -> str:
    changes = action.get("changes") or []
    if not changes:
        return action.get("message", "")[:60]
    first = changes[0]
    more = f" (+{len(changes) - 1})" if len(changes) > 1 else ""
    return f"{first['field']}: {first['live']!s:.20} -> {first['desired']!s:.20}{more}"
