"""`synos rollback NAME [--to REVISION | --previous]` and `synos history NAME`.

A rollback re-applies a body SynosCD applied at an earlier revision (kept in the state table,
state/applied.py) and suspends GitOps for the resource, as Argo CD's rollback turns auto-sync off:
passes leave it alone until `synos resume NAME`, and the next pass after that brings it back to Git.
The suspension is written before the PUT, so no pass that starts afterwards undoes the rollback."""

from __future__ import annotations

import argparse
from typing import Any

from synoscd.cli.output import CliError, emit, table
from synoscd.cli.prompt import add_yes, confirm
from synoscd.cli.views import ago, when

KINDS = ("App", "Job")


def add(sub: Any) -> None:
    p = sub.add_parser(
        "rollback",
        help="re-apply what SynosCD applied at an earlier revision, and suspend GitOps for it",
        description="Re-apply the body SynosCD applied to NAME at an earlier revision (`synos history "
        "NAME` lists them) and suspend NAME with the reason 'rolled back to REVISION', so passes leave "
        "it alone. `synos resume NAME` hands it back to Git: the next pass applies Git's revision.",
    )
    p.add_argument("name")
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", metavar="REVISION", help="a revision (or a unique prefix of one)")
    target.add_argument(
        "--previous", action="store_true", help="the revision applied before the one running now"
    )
    add_yes(p)
    p.set_defaults(run=rollback)


def _rt() -> Any:
    from synoscd.engine.runtime import get_runtime

    return get_runtime()


def revisions_view(rt: Any, name: str) -> dict[str, Any]:
    """What `synos history NAME -o json` prints and /api/v1 serves: the revisions NAME can go back to."""
    from synoscd.state import applied, apps, runtime

    keep = runtime.load(rt.table, rt.settings).applied_history
    flag = apps.get_flags(rt.table).get(name)
    for kind in KINDS:
        status = apps.get_status(rt.table, kind, name)
        kept = applied.history(rt.table, kind, name, keep)
        if status is None and not kept:
            continue
        current = status.applied_revision if status else None
        rolled = flag is not None and flag.suspended and applied.is_rollback(flag.reason)
        return {
            "name": name,
            "kind": kind,
            "appliedRevision": current,
            "rolledBack": (flag.reason or "")[len(applied.ROLLBACK_REASON) :] if rolled else None,
            "kept": keep,
            "revisions": [{**b.to_dict(), "appliedAt": when(b.applied_at)} for b in kept],
        }
    raise CliError(f"SynosCD has no record of an app or job named {name!r}", code=1)


def show_history(args: argparse.Namespace) -> int:
    doc = revisions_view(_rt(), args.name)

    def view(d: dict[str, Any]) -> str:
        if not d["revisions"]:
            return f"{d['kind']} {d['name']}: no applied body kept yet (one is kept per revision written)"
        lines = [
            table(
                ["revision", "applied", "pass", "images", ""],
                [
                    (
                        r["revision"][:12],
                        r["appliedAt"],
                        r["passId"],
                        ", ".join(i or "-" for i in r["images"]),
                        "current (Git)" if r["revision"] == d["appliedRevision"] else "",
                    )
                    for r in d["revisions"]
                ],
            )
        ]
        if d["rolledBack"]:
            lines.append(f"rolled back to {d['rolledBack']}: `synos resume {d['name']}` follows Git again")
        return "\n".join(lines)

    emit(doc, args.output, view)
    return 0


def choose(revisions: list[Any], running: str | None, to: str | None, name: str) -> Any:
    """The applied body to go back to. `running`: the revision the live resource carries."""
    if to:
        wanted = to.strip().lower()
        found = [b for b in revisions if b.revision.lower().startswith(wanted)]
        if len({b.revision for b in found}) > 1:
            raise CliError(f"revision {to!r} is ambiguous for {name}: use more characters")
        if not found:
            kept = ", ".join(b.revision[:12] for b in revisions) or "none"
            raise CliError(
                f"{name} has no applied body at revision {to!r} (kept: {kept}; see `synos history {name}`)",
                code=1,
            )
        return found[0]
    at = next((i for i, b in enumerate(revisions) if b.revision == running), -1)
    earlier = [b for b in revisions[at + 1 :] if b.revision != running]
    if not earlier:
        raise CliError(
            f"no revision of {name} before {(running or 'the current one')[:12]} is kept "
            f"(see `synos history {name}`)",
            code=1,
        )
    return earlier[0]


def _write(arm: Any, kind: str, name: str, body: dict[str, Any], live: dict[str, Any] | None) -> None:
    """The kept body holds the fields SynosCD owned at that revision: written like any pass writes
    (a merge patch of those fields), so what others set on the live resource stays (invariant 9)."""
    if live is None:
        arm.begin_put(kind, name, body).result()
        return
    from synoscd.azure.merge import fill_secrets, write_patch

    write = write_patch(body, live)
    patch = fill_secrets(write.body, arm.list_secrets(kind, name)) if write.fill_secrets else write.body
    arm.begin_patch(kind, name, patch).result()


def rollback(args: argparse.Namespace) -> int:
    from synoscd.cli.control import who
    from synoscd.state import applied, apps, runtime

    rt = _rt()
    keep = runtime.load(rt.table, rt.settings).applied_history
    found = [(k, applied.history(rt.table, k, args.name, keep)) for k in KINDS]
    kind, revisions = next(((k, r) for k, r in found if r), (None, []))
    if kind is None:
        raise CliError(
            f"no applied body kept for {args.name!r}: SynosCD keeps one per revision it writes", code=1
        )
    live = rt.arm.get(kind, args.name)
    if live is not None and str((live.get("tags") or {}).get("synoscd-managed", "")).lower() != "true":
        raise CliError(f"{kind} {args.name} exists without tag synoscd-managed=true; SynosCD leaves it alone")
    status = apps.get_status(rt.table, kind, args.name)
    running = ((live or {}).get("tags") or {}).get("synoscd-revision") or (status and status.applied_revision)
    target = choose(revisions, running, args.to, args.name)
    confirm(
        args,
        f"Roll {kind} {args.name} back to revision {target.revision[:12]} (applied {ago(target.applied_at)}) "
        f"and suspend GitOps for it until `synos resume {args.name}`?",
    )
    before = apps.get_flags(rt.table).get(args.name)
    reason = f"{applied.ROLLBACK_REASON}{target.revision[:12]}"
    flag = apps.set_suspended(rt.table, args.name, True, who(), reason)  # first: no new pass undoes it
    try:
        _write(rt.arm, kind, args.name, target.body, live)
    except Exception as exc:
        if before is None or not before.suspended:  # as it was: the rollback did not happen
            apps.set_suspended(rt.table, args.name, False, who(), f"rollback failed: {exc}"[:300])
        else:
            apps.set_suspended(rt.table, args.name, True, before.by or who(), before.reason)
        raise CliError(f"rollback of {kind} {args.name} failed: {str(exc).splitlines()[0]}") from exc
    doc = {
        "name": args.name,
        "kind": kind,
        "rolledBackTo": target.revision,
        "appliedAt": when(target.applied_at),
        "suspended": True,
        "by": flag.by,
        "reason": flag.reason,
    }
    emit(
        doc,
        args.output,
        lambda d: (
            f"{d['kind']} {d['name']} rolled back to {d['rolledBackTo'][:12]} "
            f"(applied {d['appliedAt']}); suspended until `synos resume {d['name']}`"
        ),
    )
    return 0
