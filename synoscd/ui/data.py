"""What each dashboard page shows, as plain data. The overview and the apps page read only the state
table; an app's detail adds one ARM GET (the live resource). The shapes the CLI prints with `-o json`
are reused as they are (cli/views.py builds them); the pages add what a screen needs on top."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from synoscd.cli import views
from synoscd.state import applied

T = TypeVar("T")

SYNC_STATES = ("Synced", "OutOfSync", "Progressing", "Failed", "Suspended", "Skipped", "Unknown")
HEALTH_STATES = ("Healthy", "Progressing", "Degraded", "Missing", "Unknown")
SORTS: dict[str, Callable[[dict[str, Any]], Any]] = {  # ties: by name, ascending
    "name": lambda r: r["name"].lower(),
    "kind": lambda r: r["kind"],
    "sync": lambda r: r["syncState"],
    "health": lambda r: r["health"],
    "wave": lambda r: r["wave"],
    "synced": lambda r: r["lastSynced"] or "",
    "revision": lambda r: r["appliedRevision"] or "",
}
MASK = "********"


def _parallel(*calls: Callable[[], Any]) -> list[Any]:
    """Independent state reads side by side (each is a round trip to Table Storage)."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result() for f in [pool.submit(c) for c in calls]]


# -- links -------------------------------------------------------------------------------------------


def github_web(api_url: str) -> str:
    """The web address of a GitHub whose API is at `api_url` (github.com, GitHub Enterprise Server)."""
    if api_url.rstrip("/") == "https://api.github.com":
        return "https://github.com"
    return api_url.rstrip("/").removesuffix("/api/v3")


def commit_link(settings: Any) -> Callable[[str | None], str | None]:
    """A function from a commit to its page on GitHub (None for a local source or no commit)."""
    if settings.source_path or not settings.repo_full_name:
        return lambda _sha: None
    base = f"{github_web(settings.github_api_url)}/{settings.repo_full_name}/commit/"
    return lambda sha: f"{base}{sha}" if sha and sha != "unknown" else None


def source_of(settings: Any) -> dict[str, Any]:
    """Where the desired state comes from: settings only (no GitHub call)."""
    local = bool(settings.source_path)
    repo = settings.repo_full_name
    return {
        "kind": "local" if local else "github",
        "repository": settings.source_path if local else repo,
        "branch": None if local else settings.github_branch,
        "path": settings.github_config_path,
        "url": None if local or not repo else f"{github_web(settings.github_api_url)}/{repo}",
    }


# -- apps ----------------------------------------------------------------------------------------------


def _rows(statuses: Mapping[str, Any], flags: Any, last: Any) -> list[dict[str, Any]]:
    """`synos get apps` rows with what a screen filters on: wave, who suspended it and why."""
    from synoscd.state.apps import status_key

    rows = views.apps_rows(statuses, flags, last)
    for row in rows:
        status = statuses.get(status_key(row["kind"], row["name"]))
        flag = flags.get(row["name"])
        suspended = flag is not None and flag.suspended
        row["wave"] = int((status.extra if status else {}).get("wave", 0))
        row["suspended"] = suspended
        row["suspendedBy"] = flag.by if suspended else None
        row["suspendedReason"] = flag.reason if suspended else None
        row["rolledBack"] = (
            flag.reason[len(applied.ROLLBACK_REASON) :]
            if suspended and applied.is_rollback(flag.reason)
            else None
        )
    return rows


def read_rows(rt: Any) -> list[dict[str, Any]]:
    from synoscd.state import apps, history

    statuses, flags, passes = _parallel(
        lambda: apps.get_statuses(rt.table),
        lambda: apps.get_flags(rt.table),
        lambda: history.list_passes(rt.table, limit=1),
    )
    return _rows(statuses, flags, passes[0] if passes else None)


def select(rows: list[dict[str, Any]], query: Mapping[str, str]) -> dict[str, Any]:
    """Filter (name, kind, sync, health, suspended, wave) and sort the app rows; pure."""
    q = (query.get("q") or "").strip().lower()
    want = {k: (query.get(k) or "").strip() for k in ("kind", "sync", "health", "suspended", "wave")}
    shown = [
        r
        for r in rows
        if (not q or q in r["name"].lower())
        and (not want["kind"] or r["kind"] == want["kind"])
        and (not want["sync"] or r["syncState"] == want["sync"])
        and (not want["health"] or r["health"] == want["health"])
        and (not want["suspended"] or r["suspended"] == (want["suspended"] == "yes"))
        and (not want["wave"] or str(r["wave"]) == want["wave"])
    ]
    sort = query.get("sort") if query.get("sort") in SORTS else "name"
    order = "desc" if query.get("dir") == "desc" else "asc"
    shown.sort(key=lambda r: (r["name"].lower(), r["kind"]))
    shown.sort(key=SORTS[sort], reverse=order == "desc")  # stable: ties stay in name order
    return {
        "rows": shown,
        "total": len(rows),
        "filters": {"q": query.get("q") or "", **want},
        "sort": sort,
        "dir": order,
        "options": {
            "sync": sorted({r["syncState"] for r in rows} | {"Synced", "OutOfSync", "Suspended"}),
            "health": sorted({r["health"] for r in rows} | {"Healthy", "Degraded"}),
            "wave": sorted({r["wave"] for r in rows}),
            "kind": ["App", "Job"],
        },
    }


def counts(rows: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    sync = Counter(r["syncState"] for r in rows)
    health = Counter(r["health"] for r in rows)
    return {
        "sync": {s: sync.get(s, 0) for s in SYNC_STATES if sync.get(s) or s in ("Synced", "OutOfSync")}
        | {s: n for s, n in sync.items() if s not in SYNC_STATES},
        "health": {h: health.get(h, 0) for h in HEALTH_STATES if health.get(h) or h == "Healthy"}
        | {h: n for h, n in health.items() if h not in HEALTH_STATES},
    }


# -- pages -----------------------------------------------------------------------------------------------


def overview(rt: Any) -> dict[str, Any]:
    from synoscd.state import history

    status, rows, passes = _parallel(
        lambda: views.status_view(rt),
        lambda: read_rows(rt),
        lambda: history.list_passes(rt.table, limit=10),
    )
    link = commit_link(rt.settings)
    revision = (status["lastPass"] or {}).get("revision")
    return {
        "source": {**source_of(rt.settings), "revision": revision, "commitUrl": link(revision)},
        **status,
        "apps": len(rows),
        "counts": counts(rows),
        "rolledBack": [r for r in rows if r["rolledBack"]],
        "suspended": [r for r in rows if r["suspended"] and not r["rolledBack"]],
        "failed": [r for r in rows if r["syncState"] == "Failed"][:20],
        "recentPasses": [p.to_dict() for p in passes],
    }


def apps_page(rt: Any, query: Mapping[str, str]) -> dict[str, Any]:
    return select(read_rows(rt), query)


def _mask(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: MASK if k == "value" and v is not None else _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


def redact(change: dict[str, Any]) -> dict[str, Any]:
    """A secret's value never reaches a page (Key Vault references carry none; this is the guard)."""
    if "secrets" not in change["field"]:
        return change
    if change["field"].endswith(".value"):
        return {**change, "live": MASK, "desired": MASK}
    return {**change, "live": _mask(change["live"]), "desired": _mask(change["desired"])}


def _diff(desired: Mapping[str, Any] | None, live: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
    from synoscd.azure.translate import diff

    if desired is None or live is None:
        return None
    return [redact(c) for c in diff(desired, live)]


def app_detail(rt: Any, kind: str, name: str) -> dict[str, Any] | None:
    """Everything about one app or job: table reads side by side, then its one ARM GET."""
    from synoscd.state import apps, operation, runtime

    def kept() -> list[applied.AppliedBody]:
        return applied.history(rt.table, kind, name, runtime.load(rt.table, rt.settings).applied_history)

    status, flags, op, timeline, bodies, live = _parallel(
        lambda: apps.get_status(rt.table, kind, name),
        lambda: apps.get_flags(rt.table),
        lambda: operation.load(rt.table),
        lambda: views.timeline_view(rt, name, 30, kinds=(kind,)),
        kept,
        lambda: rt.arm.get(kind, name),
    )
    if status is None and live is None:
        return None
    flag = flags.get(name)
    doc = views.describe_one(name, kind, status, flag, op, live)
    link = commit_link(rt.settings)
    desired = bodies[0] if bodies else None
    current = status.applied_revision if status else None
    suspended = doc["suspended"]
    return {
        **doc,
        "rolledBack": suspended["reason"][len(applied.ROLLBACK_REASON) :]
        if suspended and applied.is_rollback(suspended["reason"])
        else None,
        "wave": int((status.extra if status else {}).get("wave", 0)),
        "commit": {"revision": current, "url": link(current)},
        "desired": None
        if desired is None
        else {
            "revision": desired.revision,
            "appliedAt": views.when(desired.applied_at),
            "url": link(desired.revision),
        },
        "drift": _diff(desired.body if desired else None, live),
        "revisions": [
            {
                **b.to_dict(),
                "appliedAt": views.when(b.applied_at),
                "url": link(b.revision),
                "current": b.revision == current,
                "live": b.revision == ((live or {}).get("tags") or {}).get("synoscd-revision"),
            }
            for b in bodies
        ],
        "events": [{**e, "url": link(e["revision"])} for e in timeline["events"]],
    }


def operation_page(rt: Any) -> dict[str, Any]:
    """The sync operation in flight: phase and wave reached, hooks, what it has still to write by wave."""
    from synoscd.state import apps, operation

    op, statuses = _parallel(lambda: operation.load(rt.table), lambda: apps.get_statuses(rt.table))
    if op is None:
        return {"operation": None}
    waves: dict[int, list[str]] = {}
    for key in sorted(op.pending):
        kind, _, lname = key.partition("/")
        status = statuses.get(f"{kind}.{lname}")
        waves.setdefault(int((status.extra if status else {}).get("wave", 0)), []).append(key)
    hooks = sorted(set(op.done) | set(op.executions))
    return {
        "operation": op.to_dict(),
        "commitUrl": commit_link(rt.settings)(op.revision),
        "pendingByWave": [{"wave": w, "resources": waves[w]} for w in sorted(waves)],
        "hooks": [{"task": h, "execution": op.executions.get(h), "done": h in op.done} for h in hooks],
    }


def targets_page(rt: Any) -> dict[str, Any]:
    """The fleet: every target, its last pass and its lease (synoscd/fleet/overview.py)."""
    from synoscd.fleet.overview import fleet_view

    doc = fleet_view(rt)
    link = commit_link(rt.settings)
    for t in doc["targets"]:
        last = t["lastPass"] or {}
        t["lastAgo"] = views.ago(last.get("startedAt"))
        t["commitUrl"] = link(last.get("revision"))
        lease = t["lease"]
        t["queuedAgo"] = views.ago(lease.get("queuedAt")) if lease.get("queuedAt") else None
    return doc


def history_page(rt: Any, limit: int = 50) -> dict[str, Any]:
    from synoscd.state import history

    link = commit_link(rt.settings)
    passes = [p.to_dict() for p in history.list_passes(rt.table, limit=limit)]
    return {"passes": passes, "links": {p["id"]: link(p["revision"]) for p in passes}}


def tombstones(rt: Any, limit: int = 200) -> dict[str, Any]:
    """What SynosCD pruned (newest first); the bodies stay in the table for `synos restore`."""
    from synoscd.state.history import TOMBSTONES

    rows = rt.table.query_entities(
        f"PartitionKey eq '{TOMBSTONES}'", select=["name", "kind", "deleted_at", "pass_id"]
    )
    out = sorted(
        (
            {
                "name": r["name"],
                "kind": r["kind"],
                "deletedAt": views.when(r["deleted_at"]),
                "passId": r.get("pass_id"),
            }
            for r in rows
        ),
        key=lambda r: r["deletedAt"] or "",
        reverse=True,
    )
    return {"tombstones": out[:limit]}
