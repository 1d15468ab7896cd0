"""`synos sync` (run one pass here) and `synos diff` (what a pass would do)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from synoscd.cli.output import CliError, cell, emit, error_line, human, short_rev, table
from synoscd.cli.prompt import add_yes, confirm, refuse_without_terminal


def add(sub: Any) -> None:
    p = sub.add_parser(
        "sync",
        help="run one reconcile pass now, here",
        description="Run one reconcile pass from this machine (it takes the same lease as the "
        "deployed functions). Without --yes it shows the plan first, then asks. --dry-run only plans. "
        "Exit 0 when the pass succeeded with nothing wrong, 1 when it is partial or failed, a manifest is "
        "invalid or an app waits in backoff (for --dry-run: when it would change anything), 2 on error.",
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
        "something would change (or a manifest is invalid, or an app waits in backoff), 2 on error.",
    )
    d.add_argument("--app", metavar="NAME", help="only this app or job")
    d.add_argument(
        "--ref",
        metavar="BRANCH|SHA",
        help="plan this branch, tag or commit of the ops repository instead of the followed branch "
        "(what a pull-request preview plans)",
    )
    d.set_defaults(run=diff)


def _progress(args: argparse.Namespace) -> Any:
    """Progress lines on a terminal for table output; nothing extra in json or yaml."""
    if args.output not in ("table", "wide") or not sys.stderr.isatty():
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


# What `synos` reports as "found something / not fully done" (exit 1).
CHANGES = ("create", "update", "heal", "delete", "run-hook")


def pass_exit_code(doc: dict[str, Any]) -> int:
    """0: done and nothing wrong; 1: something found or not fully done. Pure; a source error is a
    runtime error and raised before this is asked (exit 2).

    A dry run (and `diff`) finds something when it would change anything, when a manifest is
    invalid, or when an app waits in backoff; a real pass when it did not end `succeeded`, a
    manifest is invalid or an app was skipped by backoff."""
    if doc.get("queued"):
        return 1
    actions = doc.get("actions") or []
    if doc.get("errors") or any(a.get("reason") == "backoff" for a in actions):
        return 1
    if doc.get("dryRun"):
        return 1 if any(a.get("action") in CHANGES for a in actions) else 0
    return 0 if doc.get("outcome") == "succeeded" else 1


def render_pass(result: Any, args: argparse.Namespace) -> int:
    if result.queued:
        doc = {"queued": True, "message": "another pass is running; this request runs when it finishes"}
        emit(doc, args.output, lambda d: d["message"])
        return pass_exit_code(doc)
    doc = result.to_dict()
    if result.source_error:  # machines get the document; people get the one line that matters
        if not human(args.output):
            emit(doc, args.output)
        raise CliError(f"source error: {result.source_error}")
    emit(doc, args.output, _table)
    return pass_exit_code(doc)


def _require_app(args: argparse.Namespace) -> None:
    if args.app:
        from synoscd.cli.names import require_known
        from synoscd.engine.runtime import get_runtime

        require_known(get_runtime(), args.app)


def sync(args: argparse.Namespace) -> int:
    _require_app(args)
    if args.dry_run:
        return render_pass(_run(True, args), args)
    if not args.yes:  # show what it will do, then ask (on a terminal; refused without one)
        refuse_without_terminal(args, "Run a reconcile pass (it writes to Azure)?")
        preview = _run(True, args)
        code = render_pass(preview, args)
        writes = [a for a in preview.plan.actions if a.action in CHANGES] if preview.plan else []
        if not writes:
            print("nothing to change; no pass run", file=sys.stderr)
            return code
        confirm(args, f"Apply these {len(writes)} change{'s' if len(writes) != 1 else ''} now?")
    return render_pass(_run(False, args), args)


def diff(args: argparse.Namespace) -> int:
    if getattr(args, "ref", None):  # another branch, tag or commit: what a pull-request preview plans
        from synoscd.preview.plan import plan_ref

        # no name check: the ref may add the app the followed branch does not know yet
        return render_pass(plan_ref(args.ref, app=args.app, progress=_progress(args)), args)
    _require_app(args)
    return render_pass(_run(True, args), args)


def _table(doc: dict[str, Any]) -> str:
    rows = [
        (a["order"], a["kind"], a["name"], a["action"], a["reason"], a["phase"], a["wave"], _changes(a))
        for a in doc.get("actions", [])
    ]
    lines = [
        f"revision {short_rev(doc.get('revision'))}  prune {'on' if doc['prune']['enabled'] else 'off'}"
        + (f" (blocked: {doc['prune']['blocked']})" if doc["prune"].get("blocked") else "")
    ]
    if rows:
        lines.append(table(["#", "kind", "name", "action", "reason", "phase", "wave", "changes"], rows))
    # Each changed field whole, below the table: the values are what a reviewer reads.
    for a in doc.get("actions", []):
        for c in a.get("changes") or []:
            change = f"{c['field']}: {cell(c['live'])} -> {cell(c['desired'])}"
            lines.append(f"  {a['kind']} {a['name']}: {change}")
    # One line per distinct error, naming every resource it hit: a long error is shown once.
    failed: dict[str, list[str]] = {}
    for r in doc.get("results", []):
        if r["result"] != "ok":
            failed.setdefault(f"{r['result']}" + (f": {r['error']}" if r["error"] else ""), []).append(
                f"{r['kind']} {r['name']}"
            )
    lines += [f"{', '.join(names)}: {text}" for text, names in failed.items()]
    lines += [error_line(e) for e in doc.get("errors", [])]
    lines += [f"warning: {w}" for w in doc.get("warnings", [])]
    if doc.get("operationError"):
        lines.append(str(doc["operationError"]))
    if not doc.get("dryRun"):
        lines.append(f"pass {doc['id']}: {doc['outcome']} in {doc.get('durationMs', 0)} ms")
    elif not rows:
        lines.append("nothing desired and nothing live")
    return "\n".join(lines)


def _changes(action: dict[str, Any]) -> str:
    """The changed fields (their values are listed below the table)."""
    changes = action.get("changes") or []
    if not changes:
        return str(action.get("message", ""))
    return ", ".join(c["field"] for c in changes)
