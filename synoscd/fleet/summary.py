"""One row per target in the deployment's table (partition `fleet`, row `target-NAME`): its last
pass (outcome, revision, counts, when) and the repository files its manifests read outside its
folder (`spec.configFrom`, composition inputs). The fleet overview (`synos get targets`, the
dashboard) reads one partition instead of every target's table, and the webhook's fan-out knows which
targets a changed file concerns. Written by each pass of that target only (its own row); a failed
write costs the overview a stale row, never the pass."""

from __future__ import annotations

import logging
import time
from typing import Any

from synoscd.state import table as t

PK, PREFIX = "fleet", "target-"
log = logging.getLogger("synoscd.fleet")


def record(rt: Any, result: Any, watch: tuple[str, ...] = ()) -> None:
    row: dict[str, Any] = {
        "PartitionKey": PK,
        "RowKey": PREFIX + rt.target_name,
        "target": rt.target_name,
        "pass_id": result.id,
        "trigger": result.trigger,
        "outcome": result.outcome,
        "revision": result.revision,
        "started_at": result.started_at,
        "finished_at": result.finished_at or time.time(),
        "errors": len(result.errors) + (1 if result.failure or result.source_error else 0),
        "first_error": (result.failure or result.source_error or "")[:500] or None,
    }
    t.put_json(row, "counts", result.counts)
    t.put_json(row, "watch", sorted(watch))
    try:
        rt.shared_table.upsert_entity(row)
    except Exception as exc:
        log.warning("could not update the fleet overview row: %s", str(exc).splitlines()[0][:200])


def read(rt: Any) -> dict[str, dict[str, Any]]:
    """Every target's row, by target name (one query)."""
    out: dict[str, dict[str, Any]] = {}
    query = "PartitionKey eq @pk and RowKey ge @lo and RowKey lt @hi"
    params = {"pk": PK, "lo": PREFIX, "hi": PREFIX + "~"}
    for row in rt.deployment.table.query_entities(query, parameters=params):
        row = dict(row)
        out[row["target"]] = {
            "passId": row.get("pass_id"),
            "trigger": row.get("trigger"),
            "outcome": row.get("outcome"),
            "revision": row.get("revision"),
            "startedAt": row.get("started_at"),
            "finishedAt": row.get("finished_at"),
            "counts": t.get_json(row, "counts", {}),
            "errors": int(row.get("errors") or 0),
            "firstError": row.get("first_error"),
            "watch": t.get_json(row, "watch", []),
        }
    return out


def watched(rt: Any) -> dict[str, list[str]]:
    """The files each target's manifests read outside its folder, as its last pass found them."""
    return {name: doc["watch"] for name, doc in read(rt).items() if doc["watch"]}
