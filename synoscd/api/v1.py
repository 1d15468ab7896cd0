"""GET /api/v1/...: the CLI's JSON, built by the same functions (cli/views.py, cli/rollback.py).

apps                     synos get apps -o json
apps/NAME[?kind=App]     synos status app NAME -o json (one ARM GET per kind; the table says which)
apps/NAME/timeline       synos logs app NAME -o json
apps/NAME/history        synos history NAME -o json (the revisions it can roll back to)
status                   synos get status -o json
history[?limit=N]        synos history -o json
tombstones               what SynosCD pruned (the dashboard's tombstones page)
targets                  synos get targets -o json (the fleet)

Every endpoint but `targets` answers for one target of the fleet: `?target=NAME` (default: the
default target), as `synos --target NAME` does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from synoscd.cli import views
from synoscd.cli.output import CliError

KINDS = ("App", "Job")
ENDPOINTS = [
    "apps",
    "apps/{name}",
    "apps/{name}/timeline",
    "apps/{name}/history",
    "status",
    "history",
    "tombstones",
    "targets",
]


def _limit(query: Mapping[str, str], default: int, most: int) -> int:
    try:
        return max(1, min(int(query.get("limit") or default), most))
    except ValueError:
        return default


def _describe(rt: Any, name: str, kind: str | None) -> dict[str, Any]:
    from synoscd.state import apps

    if kind in KINDS:
        kinds: tuple[str, ...] = (kind,)
    else:  # the kinds SynosCD knows NAME as; none known: ask ARM for both, as the CLI does
        kinds = tuple(k for k in KINDS if apps.get_status(rt.table, k, name)) or KINDS
    return views.describe_view(rt, name, kinds)


def _target(rt: Any, name: str | None) -> Any:
    from synoscd.engine.runtime import UnknownTarget

    try:
        return rt.for_target(name) if name else rt
    except UnknownTarget as exc:
        raise CliError(str(exc), code=1) from exc


def handle(rt: Any, path: str, query: Mapping[str, str]) -> tuple[int, Any]:
    """(status, JSON document) for a GET of /api/v1/<path>."""
    parts = [p for p in path.strip("/").split("/") if p]
    try:
        if parts == ["targets"]:
            from synoscd.fleet.overview import fleet_view

            return 200, fleet_view(rt)
        rt = _target(rt, query.get("target"))
        match parts:
            case []:
                return 200, {"endpoints": [f"/api/v1/{e}" for e in ENDPOINTS]}
            case ["apps"]:
                return 200, {"apps": views.apps_view(rt)}
            case ["apps", name]:
                return 200, _describe(rt, name, query.get("kind"))
            case ["apps", name, "timeline"]:
                doc = views.timeline_view(rt, name, _limit(query, 50, 500))
                if not doc["events"]:
                    raise CliError(f"no recorded events for {name!r}", code=1)
                return 200, doc
            case ["apps", name, "history"]:
                from synoscd.cli.rollback import revisions_view

                return 200, revisions_view(rt, name)
            case ["status"]:
                return 200, views.status_view(rt)
            case ["history"]:
                from synoscd.state import history

                passes = history.list_passes(rt.table, limit=_limit(query, 20, 200))
                return 200, {"passes": [p.to_dict() for p in passes]}
            case ["tombstones"]:
                from synoscd.ui.data import tombstones

                return 200, tombstones(rt)
    except CliError as exc:
        return 404, {"error": str(exc)}
    return 404, {"error": f"no such endpoint /api/v1/{path}", "endpoints": ENDPOINTS}
