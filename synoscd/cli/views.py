"""Read-only commands: config, get apps|source|status, status app|all, describe, history, logs.

Each builds plain data (the json/yaml shape, documented in docs/cli.md) and a table view of it."""

from __future__ import annotations

import argparse
import time
from typing import Any

from synoscd.cli.output import CliError, cell, emit, short_rev, table
from synoscd.cli.watch import add_watch_options, watch


def add(sub: Any) -> None:
    p = sub.add_parser(
        "config",
        help="show the active configuration (secrets masked) and where it came from",
        description="Every setting SynosCD reads, its value (secrets masked) and its source: "
        "env (a SYNOSCD_* variable) or default.",
    )
    p.set_defaults(run=config)

    get = sub.add_parser(
        "get",
        help="list apps, the source, or the reconciler's status",
        description="synos get apps | source | status",
    )
    get_sub = get.add_subparsers(dest="what", metavar="WHAT", required=True)
    for name, fn, text in (
        ("apps", get_apps, "desired apps and jobs with sync state and health"),
        ("source", get_source, "repository, branch, path, head and last synced commit"),
        ("status", get_status, "last pass, lease holder and pending requests"),
    ):
        g = sub.child(get_sub, name, help=text, description=text)
        g.set_defaults(run=fn)
    ev = sub.child(
        get_sub,
        "events",
        help="sync events: failures, drift healed, prunes, hooks (what notifications announce)",
        description="Sync events SynosCD recorded (each once per app and revision), newest first.",
    )
    ev.add_argument("--since", metavar="WHEN", help="only events after this: 30m, 2h, 7d or an ISO time")
    ev.add_argument("--limit", type=int, default=100, help="how many events (default 100)")
    ev.set_defaults(run=get_events)
    from synoscd.cli import synth

    synth.add_get(sub, get_sub)  # get compositions, get rollouts
    from synoscd.cli import fleet

    fleet.add_get(sub, get_sub)  # get targets

    status = sub.add_parser(
        "status",
        help="detailed live status of one app or all",
        description="synos status app NAME | synos status all",
    )
    status_sub = status.add_subparsers(dest="what", metavar="WHAT", required=True)
    one = sub.child(status_sub, "app", help="one app or job: status, flags and live ARM state")
    one.add_argument("name")
    add_watch_options(one)
    one.set_defaults(run=status_app)
    every = sub.child(status_sub, "all", help="every app and job: status and live ARM state")
    add_watch_options(every)
    every.set_defaults(run=status_all)
    describe = sub.add_parser(
        "describe",
        help="alias of `status app NAME`",
        description="Detailed status of one app or job (alias of `synos status app`).",
    )
    describe.add_argument("name")
    add_watch_options(describe)
    describe.set_defaults(run=status_app)

    history = sub.add_parser(
        "history",
        help="recent passes, or the revisions NAME can roll back to",
        description="synos history: the most recent reconcile passes. synos history NAME: the revisions "
        "SynosCD applied to NAME, which `synos rollback NAME --to REVISION` can go back to.",
    )
    history.add_argument("name", nargs="?", help="an app or job: its applied revisions")
    history.add_argument("--limit", type=int, default=20, help="how many passes (default 20)")
    history.set_defaults(run=show_history)

    logs = sub.add_parser(
        "logs",
        help="one app's status timeline",
        description="synos logs app NAME: every status change SynosCD recorded for it.",
    )
    logs_sub = logs.add_subparsers(dest="what", metavar="WHAT", required=True)
    app_logs = sub.child(logs_sub, "app", help="the status timeline of one app or job")
    app_logs.add_argument("name")
    app_logs.add_argument("--tail", type=int, default=50, help="how many events (default 50)")
    app_logs.set_defaults(run=app_timeline)


def _rt() -> Any:
    from synoscd.engine.runtime import get_runtime

    return get_runtime()


def ago(at: float | None, now: float | None = None) -> str:
    if not at:
        return "-"
    seconds = int((now or time.time()) - at)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{max(seconds, 0)}s ago"


def when(at: float | None) -> str | None:
    return None if not at else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


# -- config ----------------------------------------------------------------------


def config(args: argparse.Namespace) -> int:
    from synoscd.config import Settings, env_name, load_settings

    settings = load_settings()
    origins = settings.origins()
    rows = [
        {
            "name": env_name(name),
            "value": value,
            "source": origins[name],
            "description": Settings.model_fields[name].description,
        }
        for name, value in settings.masked().items()
    ]
    doc = {"settings": rows, "manifests": manifests_location(settings)}
    emit(
        doc,
        args.output,
        lambda d: (
            table(
                ["setting", "value", "source"], [(r["name"], r["value"], r["source"]) for r in d["settings"]]
            )
            + f"\nmanifests: {d['manifests']}"
        ),
    )
    return 0


def manifests_location(s: Any) -> str:
    """Where the manifests are read from, in words: how the source settings combine."""
    folder = "" if s.github_config_path.strip("/") in ("", ".") else s.github_config_path.strip("/")
    if s.source_path:
        where = f"{s.source_path.rstrip('/')}/{folder}" if folder else s.source_path
        return (
            f"the local folder {where} (SYNOSCD_SOURCE_PATH + SYNOSCD_GITHUB_CONFIG_PATH; "
            "at its git HEAD when it is a clean git repository)"
        )
    repo = s.repo_full_name or "<SYNOSCD_GITHUB_REPO_OWNER>/<SYNOSCD_GITHUB_REPO_NAME>"
    return f"GitHub {repo}, branch {s.github_branch}, folder {folder or '(root)'} (via {s.github_api_url})"


# -- get ----------------------------------------------------------------------


def _last_pass(rt: Any) -> Any:
    from synoscd.state import history

    passes = history.list_passes(rt.table, limit=1)
    return passes[0] if passes else None


def apps_view(rt: Any) -> list[dict[str, Any]]:
    from synoscd.state import apps

    return apps_rows(apps.get_statuses(rt.table), apps.get_flags(rt.table), _last_pass(rt))


def apps_rows(statuses: Any, flags: Any, last: Any) -> list[dict[str, Any]]:
    """`synos get apps -o json`'s rows from the status rows, the flags and the last pass (pure)."""
    rows = []
    for status in sorted(statuses.values(), key=lambda s: (s.name, s.kind)):
        if status.sync_state == "Pruned":
            continue
        flag = flags.get(status.name)
        state = "Suspended" if flag and flag.suspended else status.sync_state
        synced = status.last_synced_at
        if state == "Synced" and last is not None and last.finished_at and last.outcome != "source-error":
            synced = max(synced or 0, last.finished_at)  # the last pass confirmed it
        rows.append(
            {
                "name": status.name,
                "kind": status.kind,
                "desiredRevision": (last.revision if last else None) or status.desired_revision,
                "appliedRevision": status.applied_revision,
                "syncState": state,
                "health": status.health,
                "lastSynced": when(synced),
                "lastSyncedAgo": ago(synced),
                "message": status.message,
            }
        )
    return rows


def get_apps(args: argparse.Namespace) -> int:
    rows = apps_view(_rt())
    emit(
        {"apps": rows},
        args.output,
        lambda d: table(
            ["name", "kind", "desired", "applied", "sync", "health", "last synced", "message"],
            [
                (
                    r["name"],
                    r["kind"],
                    short_rev(r["desiredRevision"]),
                    short_rev(r["appliedRevision"]),
                    r["syncState"],
                    r["health"],
                    r["lastSyncedAgo"],
                    r["message"],
                )
                for r in d["apps"]
            ],
        ),
    )
    return 0


def get_source(args: argparse.Namespace) -> int:
    rt = _rt()
    s = rt.settings
    doc: dict[str, Any] = {
        "kind": "local" if s.source_path else "github",
        "repository": s.source_path or s.repo_full_name,
        "branch": None if s.source_path else s.github_branch,
        "path": s.github_config_path,
        "apiUrl": None if s.source_path else s.github_api_url,
    }
    doc["headCommit"] = rt.source().snapshot().revision
    from synoscd.state import history

    synced = next((p for p in history.list_passes(rt.table, limit=50) if p.outcome == "succeeded"), None)
    doc["lastSyncedCommit"] = synced.revision if synced else None
    doc["lastSyncedAt"] = when(synced.finished_at) if synced else None
    doc["manifests"] = manifests_location(s)
    emit(doc, args.output, lambda d: table(["field", "value"], list(d.items()), max_width=None))
    return 0


def status_view(rt: Any) -> dict[str, Any]:
    """`synos get status -o json` (and /api/v1/status): the operation, last pass, lease, pending."""
    from synoscd.state import lease, operation

    holder, pending = lease.read(rt.table)
    last = _last_pass(rt)
    op = operation.load(rt.table)
    return {
        "operation": op.to_dict() if op else None,
        "lastPass": last.to_dict() if last else None,
        "lease": None
        if holder is None
        else {"holder": holder.holder, "expiresAt": when(holder.expires_at), "trigger": holder.trigger},
        "pendingRequests": pending,
        "functions": functions_doc(rt, holder is not None),
    }


def get_status(args: argparse.Namespace) -> int:
    doc = status_view(_rt())

    def view(d: dict[str, Any]) -> str:
        p = d["lastPass"]
        lines = [
            "last pass: none"
            if p is None
            else f"last pass {p['id']} ({p['trigger']}) {p['outcome']} at {short_rev(p['revision'])}, "
            f"{ago(p['startedAt'])}, {p['durationMs']} ms: {cell(p['counts'])}"
        ]
        if p and p["prune"].get("blocked"):
            lines.append(f"prune blocked: {p['prune']['blocked']}")
        lease_doc = d["lease"]
        lines.append(
            "lease: free"
            if lease_doc is None
            else f"lease: held by {lease_doc['holder']} until {lease_doc['expiresAt']}"
        )
        lines.append(f"pending requests: {d['pendingRequests']}")
        lines.append(f"functions: {d['functions']['detail']}")
        o = d["operation"]
        if o is not None:
            where = f" at {o['phase']} wave {o['wave']}" if o["status"] == "Running" else ""
            lines.append(
                f"operation on {short_rev(o['revision'])}: {o['status']}{where}"
                + (f" ({o['message']})" if o["message"] else "")
            )
            if o["status"] == "Failed":
                lines.append(
                    f"retry {o.get('attempts')}/{o.get('retryLimit')} at {when(o['nextRetryAt'])}"
                    if o.get("nextRetryAt")
                    else "retries exhausted: push a new commit, or run `synos sync` to try again"
                )
        return "\n".join(lines)

    emit(doc, args.output, view)
    return 0


def functions_doc(rt: Any, lease_held: bool) -> dict[str, Any]:
    """Whether a Functions host serves requests, from the timer's heartbeat row."""
    from synoscd.state import heartbeat

    beat = heartbeat.read(rt.table)
    now = time.time()
    alive, detail = heartbeat.serving(beat, lease_held, now)
    return {
        "serving": alive,
        "detail": detail,
        "lastTick": when(beat.at) if beat else None,
        "tickSeconds": round(beat.period, 1) if beat else None,
    }


# -- status app / all ----------------------------------------------------------------------


def _live_summary(body: dict[str, Any] | None) -> dict[str, Any] | None:
    if body is None:
        return None
    p = body.get("properties") or {}
    ingress = (p.get("configuration") or {}).get("ingress") or {}
    return {
        "provisioningState": p.get("provisioningState"),
        "runningStatus": p.get("runningStatus"),
        "latestRevision": p.get("latestRevisionName"),
        "latestReadyRevision": p.get("latestReadyRevisionName"),
        "fqdn": ingress.get("fqdn"),
        "images": [c.get("image") for c in (p.get("template") or {}).get("containers", [])],
        "managed": str((body.get("tags") or {}).get("synoscd-managed", "")).lower() == "true",
        "revisionTag": (body.get("tags") or {}).get("synoscd-revision"),
    }


def _sync_of(op: Any, kind: str, name: str) -> dict[str, Any] | None:
    """The sync of the current revision, when it has still to write this resource (a failed sync
    waits for its retry): what failed, which attempt, when the next retry is."""
    from synoscd.engine.plan import resource_key

    if op is None or op.status == "Succeeded" or resource_key(kind, name) not in op.pending:
        return None
    return {
        "revision": op.revision,
        "status": op.status,
        "message": op.message,
        "attempts": op.attempts,
        "retryLimit": op.retry_limit,
        "nextRetryAt": when(op.next_retry_at),
    }


def _trace_of(rt: Any, pass_id: str | None) -> str | None:
    """The trace of the pass that last changed a status (Application Insights: its operation id)."""
    from synoscd.state import history

    record = history.get_pass(rt.table, pass_id) if pass_id else None
    return record.trace_id if record else None


def describe_one(
    name: str, kind: str, status: Any, flags: Any, op: Any, live: Any, trace_id: str | None = None
) -> dict[str, Any]:
    """One entry of `synos status app NAME -o json`'s resources, from what was read (the dashboard's
    app detail builds it from the same reads)."""
    return {
        "name": name,
        "kind": kind,
        "status": None
        if status is None
        else {
            "syncState": status.sync_state,
            "health": status.health,
            "message": status.message,
            "desiredRevision": status.desired_revision,
            "appliedRevision": status.applied_revision,
            "lastAction": status.last_action,
            "lastResult": status.last_result,
            "lastError": status.last_error,
            "attempts": status.attempts,
            "nextRetryAt": when(status.next_retry_at),
            "lastSynced": when(status.last_synced_at),
            "changes": status.extra.get("changes", []),
            "lastPass": status.last_pass,
            "traceId": trace_id,
        },
        "suspended": None
        if flags is None or not flags.suspended
        else {"by": flags.by, "at": when(flags.at), "reason": flags.reason},
        "sync": _sync_of(op, kind, name),
        "live": _live_summary(live),
    }


def describe_view(rt: Any, name: str, kinds: tuple[str, ...] = ("App", "Job")) -> dict[str, Any]:
    """`synos status app NAME -o json` (and /api/v1/apps/NAME): one ARM GET per kind asked."""
    from synoscd.state import apps, operation

    flags = apps.get_flags(rt.table).get(name)
    op = operation.load(rt.table)
    found = []
    for kind in kinds:
        status = apps.get_status(rt.table, kind, name)
        live = rt.arm.get(kind, name)
        if status is None and live is None:
            continue
        trace = _trace_of(rt, status.last_pass) if status is not None else None
        found.append(describe_one(name, kind, status, flags, op, live, trace))
    if not found:
        from synoscd.cli.names import known_names, unknown_name_error

        raise unknown_name_error(rt, name, known_names(rt))
    return {"resources": found}


def _describe_table(doc: dict[str, Any]) -> str:
    out = []
    for r in doc["resources"]:
        rows: list[tuple[str, Any]] = [("name", r["name"]), ("kind", r["kind"])]
        for key, value in (r["status"] or {}).items():
            if key != "changes":
                rows.append((key, value))
        if r["suspended"]:
            rows.append(
                (
                    "suspended",
                    f"by {r['suspended']['by']} at {r['suspended']['at']}: {r['suspended']['reason']}",
                )
            )
        sync = r.get("sync")
        if sync:
            text = f"{sync['status']} at {sync['revision'][:12]}: {sync['message']}"
            if sync["status"] == "Failed":
                text += (
                    f"; retry {sync['attempts']}/{sync['retryLimit']} at {sync['nextRetryAt']}"
                    if sync["nextRetryAt"]
                    else "; no retry left"
                )
            rows.append(("sync", text))
        for key, value in (r["live"] or {"live": "not found in Azure"}).items():
            rows.append((f"live.{key}", value))
        out.append(table(["field", "value"], rows, max_width=None))  # one app in detail: nothing cut
        for change in (r["status"] or {}).get("changes", []):
            out.append(f"  changed {change['field']}: {change['live']} -> {change['desired']}")
    return "\n\n".join(out)


def status_app(args: argparse.Namespace) -> int:
    rt = _rt()
    return watch(args, lambda: describe_view(rt, args.name), _describe_table)


def _all(rt: Any) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        bodies = {kind: pool.submit(rt.arm.list, kind) for kind in ("App", "Job")}
        rows = apps_view(rt)
    live = {(kind, b["name"]): b for kind, future in bodies.items() for b in future.result()}
    for row in rows:
        row["live"] = _live_summary(live.pop((row["kind"], row["name"]), None))
    for (kind, name), body in sorted(live.items()):
        rows.append(
            {
                "name": name,
                "kind": kind,
                "syncState": "Unknown" if _live_summary(body)["managed"] else "Unmanaged",
                "health": None,
                "message": "not in SynosCD's state",
                "live": _live_summary(body),
            }
        )
    return {"apps": rows}


def status_all(args: argparse.Namespace) -> int:
    rt = _rt()

    def view(d: dict[str, Any]) -> str:
        return table(
            ["name", "kind", "sync", "health", "provisioning", "running", "ready revision", "message"],
            [
                (
                    r["name"],
                    r["kind"],
                    r["syncState"],
                    r["health"],
                    (r["live"] or {}).get("provisioningState"),
                    (r["live"] or {}).get("runningStatus"),
                    (r["live"] or {}).get("latestReadyRevision"),
                    r.get("message"),
                )
                for r in d["apps"]
            ],
        )

    return watch(args, lambda: _all(rt), view)


# -- history and logs ----------------------------------------------------------------------


def show_history(args: argparse.Namespace) -> int:
    if getattr(args, "name", None):
        from synoscd.cli.rollback import show_history as revisions

        return revisions(args)
    from synoscd.state import history

    passes = [p.to_dict() for p in history.list_passes(_rt().table, limit=args.limit)]
    emit(
        {"passes": passes},
        args.output,
        lambda d: table(
            ["id", "trigger", "started", "duration", "outcome", "revision", "counts", "trace"],
            [
                (
                    p["id"],
                    p["trigger"],
                    ago(p["startedAt"]),
                    f"{p['durationMs']} ms",
                    p["outcome"],
                    short_rev(p["revision"]),
                    p["counts"],
                    p.get("traceId") or "-",
                )
                for p in d["passes"]
            ],
        ),
    )
    return 0


def since(text: str | None, now: float | None = None) -> float | None:
    """`--since`: 30s, 30m, 2h, 7d ago, or an ISO 8601 time (UTC unless it says otherwise)."""
    import datetime as dt
    import re

    if not text:
        return None
    now = time.time() if now is None else now
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if m:
        return now - float(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    try:
        parsed = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise CliError(
            f"--since {text!r}: write a duration (30m, 2h, 7d) or an ISO time (2026-11-30T08:00)"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def get_events(args: argparse.Namespace) -> int:
    from synoscd.notify import store

    after = since(args.since)
    found = store.list_events(_rt().table, since=after, limit=args.limit)
    emit(
        {"events": [{**e.to_dict(), "at": when(e.at)} for e in found]},
        args.output,
        lambda d: (
            table(
                ["at", "type", "app", "revision", "message", "trace"],
                [
                    (
                        e["at"],
                        e["type"],
                        f"{e['kind']} {e['app']}".strip() or "-",
                        (e["revision"] or "-")[:12],
                        e["message"][:120],
                        e["traceId"] or "-",
                    )
                    for e in d["events"]
                ],
            )
            if d["events"]
            else "no events" + (f" since {args.since}" if args.since else "")
        ),
    )
    return 0


def timeline_view(
    rt: Any, name: str, tail: int = 50, kinds: tuple[str, ...] = ("App", "Job")
) -> dict[str, Any]:
    """`synos logs app NAME -o json` (and the dashboard's timeline): newest first."""
    from synoscd.state import apps

    events = []
    for kind in kinds:
        for e in apps.get_events(rt.table, kind, name, limit=tail):
            events.append(
                {
                    "at": when(e.updated_at),
                    "kind": kind,
                    "syncState": e.sync_state,
                    "health": e.health,
                    "action": e.last_action,
                    "result": e.last_result,
                    "revision": e.applied_revision,
                    "message": e.message,
                    "pass": e.last_pass,
                }
            )
    events.sort(key=lambda e: e["at"] or "", reverse=True)
    return {"name": name, "events": events[:tail]}


def app_timeline(args: argparse.Namespace) -> int:
    rt = _rt()
    doc = timeline_view(rt, args.name, args.tail)
    if not doc["events"]:
        from synoscd.cli.names import require_known

        require_known(rt, args.name)  # an unknown name is a usage error (2), with "did you mean"
        raise CliError(f"no recorded events for {args.name!r} yet", code=1)
    emit(
        doc,
        args.output,
        lambda d: table(
            ["at", "kind", "sync", "health", "action", "result", "message"],
            [
                (
                    e["at"],
                    e["kind"],
                    e["syncState"],
                    e["health"],
                    e["action"],
                    e["result"],
                    e["message"],
                )
                for e in d["events"]
            ],
        ),
    )
    return 0
