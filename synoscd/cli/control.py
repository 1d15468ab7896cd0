"""Commands that steer: suspend, resume, set, restore, reconcile. Every write is ETag-guarded (a
concurrent change is retried on fresh data, never overwritten) and asks for confirmation unless --yes."""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
import time
from typing import Any

from synoscd.cli.output import CliError, cell, emit, short_rev, table
from synoscd.cli.prompt import add_yes, confirm
from synoscd.cli.views import when


def add(sub: Any) -> None:
    for name, suspend in (("suspend", True), ("resume", False)):
        p = sub.add_parser(
            name,
            help=f"{name} reconciliation of one app or job at runtime",
            description=(
                "Suspend: passes skip NAME (reason 'suspended') until resumed; it is never "
                "written or deleted."
                if suspend
                else "Resume: the next pass syncs NAME."
            ),
        )
        p.add_argument("name")
        if suspend:
            p.add_argument("--reason", default="", help="why (shown in status and history)")
        add_yes(p)
        p.set_defaults(run=set_suspended, suspend=suspend)

    s = sub.add_parser(
        "set",
        help="show or change runtime settings of the running reconciler",
        description="Runtime settings live in the state table and override the environment's "
        "defaults; the functions pick them up on their next tick.",
    )
    s.add_argument("--show", action="store_true", help="show the current runtime settings")
    s.add_argument(
        "--interval", type=int, metavar="SECONDS", help="seconds between timer passes (at least 10)"
    )
    s.add_argument("--prune", dest="prune", action="store_true", default=None, help="enable prune")
    s.add_argument("--no-prune", dest="prune", action="store_false", help="disable prune")
    s.add_argument("--protected-apps", metavar="CSV", help="apps never written or deleted, comma-separated")
    s.add_argument("--max-concurrent", type=int, metavar="N", help="concurrent ARM writes per pass (1-64)")
    s.add_argument(
        "--applied-history", type=int, metavar="N", help="applied bodies kept per app for rollback (1-100)"
    )
    g = s.add_argument_group(
        "guardrails for every app and job (no manifest can switch them off; 'off': none)"
    )
    g.add_argument("--allowed-registries", metavar="CSV", help="image registries, '*' globs (*.azurecr.io)")
    g.add_argument("--max-cpu", metavar="CORES", help="most cpu per app or job, summed over its containers")
    g.add_argument("--max-memory", metavar="SIZE", help="most memory per app or job, e.g. 4Gi")
    s.add_argument(
        "--notify",
        action="append",
        metavar="NAME=KIND:URL",
        help="send sync events to KIND webhook (HMAC-signed), teams or slack at URL (kept in Key "
        "Vault); NAME=off removes it; repeatable",
    )
    r = s.add_argument_group("retries of a failed sync, with exponential backoff (also per failed app)")
    r.add_argument("--retry-limit", type=int, metavar="N", help="retries before giving up (0-100)")
    r.add_argument("--retry-duration", type=float, metavar="SECONDS", help="first wait")
    r.add_argument("--retry-factor", type=float, metavar="X", help="each further wait is X times longer")
    r.add_argument("--retry-max-duration", type=float, metavar="SECONDS", help="longest wait")
    y = s.add_argument_group("synthesizers")
    y.add_argument(
        "--allow-exec-synthesizers",
        dest="allow_exec",
        action="store_true",
        default=None,
        help="let synthesizers with executor exec run as local processes of SynosCD",
    )
    y.add_argument(
        "--no-allow-exec-synthesizers", dest="allow_exec", action="store_false", help="forbid them"
    )
    y.add_argument(
        "--rollout-cooldown", type=float, metavar="SECONDS", help="seconds between deferred rollout steps"
    )
    add_yes(s)
    s.set_defaults(run=set_runtime)

    r = sub.add_parser(
        "restore",
        help="re-create a pruned app from its tombstone",
        description="PUT the last live configuration recorded before NAME was pruned, then suspend "
        "it so the next pass does not prune it again: add it back to Git, then resume.",
    )
    r.add_argument("name")
    add_yes(r)
    r.set_defaults(run=restore)

    rec = sub.add_parser(
        "reconcile",
        help="request a pass from the deployed functions and wait for it",
        description="synos reconcile source | synos reconcile app NAME: record a request in the "
        "state table (the timer or the running pass serves it) and wait for the pass.",
    )
    rec_sub = rec.add_subparsers(dest="what", metavar="WHAT", required=True)
    for what in ("source", "app"):
        c = sub.child(
            rec_sub, what, help="everything from Git" if what == "source" else "one app (runs a full pass)"
        )
        if what == "app":
            c.add_argument("name")
        c.add_argument("--local", action="store_true", help="run the pass here instead (like `synos sync`)")
        c.add_argument(
            "--timeout", type=float, default=180.0, metavar="SECONDS", help="how long to wait (180)"
        )
        add_yes(c, "with --local: do not ask for confirmation")
        c.set_defaults(run=reconcile)


def who() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def _rt() -> Any:
    from synoscd.engine.runtime import get_runtime

    return get_runtime()


# -- suspend / resume ----------------------------------------------------------------------


def set_suspended(args: argparse.Namespace) -> int:
    from synoscd.cli.names import require_known
    from synoscd.state import apps

    verb = "Suspend" if args.suspend else "Resume"
    rt = _rt()
    require_known(rt, args.name)
    confirm(args, f"{verb} reconciliation of {args.name}?")
    flag = apps.set_suspended(rt.table, args.name, args.suspend, who(), getattr(args, "reason", "") or None)
    doc = {
        "name": flag.name,
        "suspended": flag.suspended,
        "by": flag.by,
        "at": when(flag.at),
        "reason": flag.reason,
    }
    emit(
        doc,
        args.output,
        lambda d: f"{d['name']}: {'suspended' if d['suspended'] else 'resumed'} by {d['by']}",
    )
    return 0


# -- set ----------------------------------------------------------------------


def _runtime_doc(rt: Any) -> dict[str, Any]:
    from synoscd.notify import config
    from synoscd.state import runtime

    doc = runtime.load(rt.table, rt.settings).to_dict()
    doc["notify"] = [{"name": p.name, "kind": p.kind} for p in config.load(rt.table)]
    return doc


def set_runtime(args: argparse.Namespace) -> int:
    from synoscd.state import runtime

    changes: dict[str, Any] = {}
    if args.interval is not None:
        if args.interval < 10:
            raise CliError("--interval must be at least 10 seconds")
        changes["interval_seconds"] = args.interval
    if args.prune is not None:
        changes["prune_enabled"] = args.prune
    if args.protected_apps is not None:
        changes["protected_apps"] = tuple(a.strip() for a in args.protected_apps.split(",") if a.strip())
    if args.max_concurrent is not None:
        if not 1 <= args.max_concurrent <= 64:
            raise CliError("--max-concurrent must be between 1 and 64")
        changes["max_concurrent"] = args.max_concurrent
    if args.applied_history is not None:
        changes["applied_history"] = args.applied_history
    changes.update(_guardrail_changes(args))
    if args.allow_exec is not None:
        changes["allow_exec_synthesizers"] = args.allow_exec
    if args.rollout_cooldown is not None:
        changes["rollout_cooldown_seconds"] = args.rollout_cooldown
    for option, setting in RETRY_OPTIONS.items():
        if getattr(args, option) is not None:
            changes[setting] = getattr(args, option)
    rt = _rt()
    notify_specs = _notify_specs(args)
    if not changes and not args.show and not notify_specs:
        raise CliError(
            "nothing to set: pass --show, --interval, --prune/--no-prune, --protected-apps, "
            "--max-concurrent, --applied-history, a guardrail (--allowed-registries, --max-cpu, "
            "--max-memory), a retry setting (--retry-limit, --retry-duration, --retry-factor, "
            "--retry-max-duration) or a synthesizer setting (--allow-exec-synthesizers, --rollout-cooldown)"
        )
    if changes:
        summary = ", ".join(f"{k}={v}" for k, v in changes.items())
        confirm(args, f"Change runtime settings ({summary})?")
        try:
            runtime.save(rt.table, changes, who())
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    _save_notify(args, rt, notify_specs)
    emit(
        _runtime_doc(rt),
        args.output,
        lambda d: table(
            ["setting", "value", "from"],
            [
                (k, d[v], "table" if f in d["overridden"] else "env/default")
                for k, v, f in (
                    ("interval", "intervalSeconds", "interval_seconds"),
                    ("prune", "prune", "prune_enabled"),
                    ("protected apps", "protectedApps", "protected_apps"),
                    ("max concurrent", "maxConcurrent", "max_concurrent"),
                    ("applied history", "appliedHistory", "applied_history"),
                    ("allowed registries", "allowedRegistries", "allowed_registries"),
                    ("max cpu", "maxCpu", "max_cpu"),
                    ("max memory", "maxMemory", "max_memory"),
                    ("retry limit", "retryLimit", "retry_limit"),
                    ("retry duration (s)", "retryDurationSeconds", "retry_duration_seconds"),
                    ("retry factor", "retryFactor", "retry_factor"),
                    ("retry max duration (s)", "retryMaxDurationSeconds", "retry_max_duration_seconds"),
                    ("allow exec synthesizers", "allowExecSynthesizers", "allow_exec_synthesizers"),
                    ("rollout cooldown (s)", "rolloutCooldownSeconds", "rollout_cooldown_seconds"),
                )
            ]
            + [("notify", ", ".join(f"{p['name']} ({p['kind']})" for p in d["notify"]) or "-", "table")],
            max_width=None,  # settings are read whole
        ),
    )
    return 0


def _notify_specs(args: argparse.Namespace) -> list[tuple[str, str | None, str | None]]:
    from synoscd.notify import config

    try:
        return [config.parse(spec) for spec in getattr(args, "notify", None) or ()]
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _save_notify(args: argparse.Namespace, rt: Any, specs: list[tuple[str, str | None, str | None]]) -> None:
    """Each provider's URL goes to Key Vault (never printed); the table lists names and kinds."""
    from synoscd.notify import config

    for name, kind, url in specs:
        confirm(args, f"{'Remove' if kind is None else 'Set'} notification provider {name}?")
        try:
            config.save(rt.table, rt.secrets, name, kind, url, who())
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        if kind == "webhook":
            print(
                f"{name}: requests are signed with the Key Vault secret notify-{name}-signing-key "
                "(header X-SynosCD-Signature-256: sha256=HMAC of the body)",
                file=sys.stderr,
            )


RETRY_OPTIONS = {  # option dest -> runtime setting
    "retry_limit": "retry_limit",
    "retry_duration": "retry_duration_seconds",
    "retry_factor": "retry_factor",
    "retry_max_duration": "retry_max_duration_seconds",
}


def _guardrail_changes(args: argparse.Namespace) -> dict[str, Any]:
    """--allowed-registries, --max-cpu, --max-memory: a value, or 'off' for no limit (None)."""
    out: dict[str, Any] = {}
    if args.allowed_registries is not None:
        items = tuple(r.strip() for r in args.allowed_registries.split(",") if r.strip())
        if not items:
            raise CliError("--allowed-registries needs at least one registry, or 'off' for any registry")
        out["allowed_registries"] = None if items == ("off",) else items
    if args.max_cpu is not None:
        if args.max_cpu.strip().lower() == "off":
            out["max_cpu"] = None
        else:
            try:
                out["max_cpu"] = float(args.max_cpu)
            except ValueError:
                raise CliError(f"--max-cpu {args.max_cpu!r} is not a number; e.g. 2, or 'off'") from None
    if args.max_memory is not None:
        value = args.max_memory.strip()
        out["max_memory"] = None if value.lower() == "off" else value
    return out


# -- restore ----------------------------------------------------------------------


def restorable(body: dict[str, Any]) -> dict[str, Any]:
    """A PUT body from a recorded live body: read-only fields and server-side ids removed."""
    from synoscd.azure.fields import strip_read_only

    out: dict[str, Any] = {k: body[k] for k in ("location", "tags", "kind") if k in body}
    identity = body.get("identity")
    if identity and identity.get("type") not in (None, "None"):
        out["identity"] = {"type": identity["type"]}
        if identity.get("userAssignedIdentities"):
            out["identity"]["userAssignedIdentities"] = {k: {} for k in identity["userAssignedIdentities"]}
    props = dict(body.get("properties") or {})
    props.setdefault("environmentId", props.get("managedEnvironmentId"))
    # Read-only and server-computed keys (ingress fqdn, provisioning state, ...) are not sent back.
    out["properties"] = {k: v for k, v in strip_read_only(props).items() if v is not None}
    return out


def restore(args: argparse.Namespace) -> int:
    from synoscd.state import apps, history

    rt = _rt()
    tomb = history.latest_tombstone(rt.table, args.name)
    if tomb is None:
        from synoscd.cli.names import require_known

        require_known(rt, args.name)  # an unknown name is a usage error (2), with "did you mean"
        raise CliError(f"no tombstone for {args.name!r}: SynosCD never pruned it", code=1)
    kind = tomb["kind"]
    if rt.arm.get(kind, args.name) is not None:
        raise CliError(f"{kind} {args.name} exists in Azure; nothing to restore")
    confirm(args, f"Re-create {kind} {args.name} as it was when pruned at {when(tomb['deletedAt'])}?")
    body = restorable(tomb["body"])
    rt.arm.begin_put(kind, args.name, body).result()
    reason = "restored from its tombstone; add it back to Git, then synos resume it"
    apps.set_suspended(rt.table, args.name, True, who(), reason)
    doc = {
        "name": args.name,
        "kind": kind,
        "restored": True,
        "prunedAt": when(tomb["deletedAt"]),
        "prunedByPass": tomb["passId"],
        "suspended": True,
        "note": reason,
    }
    emit(
        doc,
        args.output,
        lambda d: f"{d['kind']} {d['name']} restored (pruned at {d['prunedAt']}); suspended: {d['note']}",
    )
    return 0


# -- reconcile ----------------------------------------------------------------------


def reconcile(args: argparse.Namespace) -> int:
    from synoscd.cli.sync import render_pass
    from synoscd.state import history, lease

    name = getattr(args, "name", None)
    rt = _rt()
    if name:
        from synoscd.cli.names import require_known

        require_known(rt, name)
    if args.local:
        from synoscd.engine.reconcile import run_pass

        confirm(args, "Run a reconcile pass now, here (it writes to Azure)?")
        return render_pass(run_pass("cli", app=name), args)
    say = progress(args)
    requested = time.time()
    lease.request(rt.table, f"cli:{who()}")
    say("requested a pass from the Functions host")
    started = time.monotonic()
    deadline = started + args.timeout
    while True:
        done = [
            p
            for p in history.list_passes(rt.table, limit=10)
            if p.started_at >= requested - 1 and p.finished_at
        ]
        if done:
            return _show_served(rt, done[-1].to_dict(), name, args)
        served, why = serving_now(rt)
        waited = time.monotonic() - started
        if not served and (waited >= NO_HOST_GRACE or time.monotonic() >= deadline):
            raise CliError(
                f"nobody is serving pass requests: {why}. Start the local one with `make up`; in Azure check "
                "that the Function App runs (az functionapp show ... --query state). `synos reconcile "
                f"{args.what}{' ' + name if name else ''} --local` runs the pass here instead."
            )
        if time.monotonic() >= deadline:
            raise CliError(
                f"no pass finished within {args.timeout:.0f} s although {why}; see `synos get status` "
                "(a long pass may still be running)"
            )
        say(f"waiting for the pass ({waited:.0f} s): {why}")
        time.sleep(1.0)


# A host that has just started ticks within its first period: give it that long (and fail well within
# ten seconds when nobody is there).
NO_HOST_GRACE = 7.0


def serving_now(rt: Any) -> tuple[bool, str]:
    from synoscd.state import heartbeat, lease

    holder, _pending = lease.read(rt.table)
    # The timer beats in the deployment's table, for every target of the fleet.
    return heartbeat.serving(heartbeat.read(rt.shared_table), holder is not None, time.time())


def progress(args: argparse.Namespace) -> Any:
    """Progress lines on stderr for people (a terminal, table output); silent for scripts."""
    import sys

    if args.output not in ("table", "wide") or not sys.stderr.isatty():
        return lambda _message: None
    return lambda message: print(f"... {message}", file=sys.stderr, flush=True)


def _show_served(rt: Any, doc: dict[str, Any], name: str | None, args: argparse.Namespace) -> int:
    from synoscd.cli.sync import pass_exit_code

    if name:
        from synoscd.state import apps

        status = apps.get_status(rt.table, "App", name) or apps.get_status(rt.table, "Job", name)
        doc["app"] = (
            None
            if status is None
            else {
                "name": name,
                "syncState": status.sync_state,
                "health": status.health,
                "message": status.message,
            }
        )
    emit(
        doc,
        args.output,
        lambda d: (
            f"pass {d['id']} ({d['trigger']}) {d['outcome']} at revision {short_rev(d['revision'])}: "
            f"{cell(d['counts'])}"
            + (
                ""
                if not d.get("app")
                else f"\n{name}: {d['app']['syncState']}, {d['app']['health']}"
                + (f": {d['app']['message']}" if d["app"]["message"] else "")
            )
            + "".join(f"\nerror: {e}" for e in d.get("errors") or [])
        ),
    )
    if doc["outcome"] == "source-error":  # the error is on stdout already
        return 2
    return pass_exit_code(doc)
