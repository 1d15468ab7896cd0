"""One row per pull request (partition `preview`, row `pr-<number>`): the head whose preview was asked
for last, its check run, the base it was planned against, its outcome. What keeps previews fresh:

- a newer push to the pull request supersedes a preview still running (its check run is concluded
  `cancelled`, naming the newer head);
- a push to the followed branch finds the finished previews planned against an older base and marks
  them stale;
- a queue retry of a preview finds the check run it already created.

Rows of this partition are the only state a preview writes (besides the webhook's delivery rows);
nothing here is sync status. Writes are ETag-guarded (state/table.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from azure.data.tables import TableClient

from synoscd.state import table as t

PK = "preview"
KEPT_DAYS = 30  # a row not touched for this long belongs to a pull request long gone (retention)


@dataclass(frozen=True)
class PreviewRow:
    pr: int
    head: str
    requested_at: float
    state: str  # running | done | stale | superseded
    run_id: int | None = None
    base: str | None = None
    conclusion: str | None = None
    title: str = ""
    summary: str = ""
    updated_at: float = 0.0


def key(pr: int) -> str:
    return f"pr-{pr:010d}"


def _row(entity: dict[str, Any] | None) -> PreviewRow | None:
    if not entity:
        return None
    return PreviewRow(
        pr=int(entity["pr"]),
        head=str(entity["head"]),
        requested_at=float(entity.get("requested_at") or 0.0),
        state=str(entity.get("state") or "running"),
        run_id=int(entity["run_id"]) if entity.get("run_id") else None,
        base=entity.get("base") or None,
        conclusion=entity.get("conclusion") or None,
        title=str(entity.get("title") or ""),
        summary=str(t.get_json(entity, "summary", "")),
        updated_at=float(entity.get("updated_at") or 0.0),
    )


def _entity(row: PreviewRow) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "pr": row.pr,
        "head": row.head,
        "requested_at": row.requested_at,
        "state": row.state,
        "run_id": str(row.run_id) if row.run_id else "",  # check run ids pass 2^32
        "base": row.base or "",
        "conclusion": row.conclusion or "",
        "title": row.title,
        "updated_at": time.time(),
    }
    t.put_json(entity, "summary", row.summary)
    return entity


def get(table: TableClient, pr: int) -> PreviewRow | None:
    return _row(t.get(table, PK, key(pr)))


def claim(table: TableClient, pr: int, head: str, requested_at: float) -> tuple[bool, PreviewRow | None]:
    """Record that `head`'s preview, asked for at `requested_at`, is the pull request's latest. False
    (and the row) when a later request for another head is recorded already: this one is superseded.
    The same head asked again keeps the check run a first attempt created (a queue retry)."""
    outcome: dict[str, Any] = {}

    def mutate(old: dict[str, Any] | None) -> dict[str, Any] | None:
        row = _row(old)
        outcome["row"] = row
        if row is not None and row.head != head and row.requested_at > requested_at:
            outcome["superseded"] = True
            return None
        run_id = row.run_id if row is not None and row.head == head and row.state == "running" else None
        fresh = PreviewRow(pr, head, max(requested_at, row.requested_at if row else 0.0), "running", run_id)
        outcome["row"] = fresh
        return _entity(fresh)

    t.update(table, PK, key(pr), mutate)
    return not outcome.get("superseded", False), outcome.get("row")


def set_run(table: TableClient, pr: int, head: str, run_id: int) -> None:
    """The check run the preview of `head` reports on (kept only while `head` is the latest)."""

    def mutate(old: dict[str, Any] | None) -> dict[str, Any] | None:
        row = _row(old)
        if row is None or row.head != head:
            return None
        return _entity(PreviewRow(pr, head, row.requested_at, row.state, run_id))

    t.update(table, PK, key(pr), mutate)


def finish(
    table: TableClient,
    pr: int,
    head: str,
    run_id: int,
    base: str | None,
    conclusion: str,
    title: str,
    summary: str,
) -> None:
    """The preview of `head` reported: kept for stale marking (unless a newer head took the row)."""

    def mutate(old: dict[str, Any] | None) -> dict[str, Any] | None:
        row = _row(old)
        if row is not None and row.head != head:
            return None
        requested = row.requested_at if row else time.time()
        return _entity(PreviewRow(pr, head, requested, "done", run_id, base, conclusion, title, summary))

    t.update(table, PK, key(pr), mutate)


def mark(table: TableClient, pr: int, head: str, state: str) -> None:
    def mutate(old: dict[str, Any] | None) -> dict[str, Any] | None:
        row = _row(old)
        if row is None or row.head != head:
            return None
        r = row
        return _entity(
            PreviewRow(
                r.pr, r.head, r.requested_at, state, r.run_id, r.base, r.conclusion, r.title, r.summary
            )
        )

    t.update(table, PK, key(pr), mutate)


def finished(table: TableClient) -> list[PreviewRow]:
    """The previews that reported and are still current (candidates to mark stale)."""
    rows = [_row(e) for e in t.query(table, PK)]
    return [r for r in rows if r is not None and r.state == "done" and r.run_id]


def by_head(table: TableClient, head: str) -> PreviewRow | None:
    """The pull request whose latest head is `head` (a rerequest from a fork carries no number)."""
    for entity in table.query_entities(
        "PartitionKey eq @pk and head eq @head", parameters={"pk": PK, "head": head}
    ):
        return _row({**dict(entity)})
    return None


def forget(table: TableClient, pr: int) -> None:
    t.delete(table, PK, key(pr))


def purge(table: TableClient, now: float | None = None) -> int:
    """Rows of pull requests not heard of in KEPT_DAYS (a closed event that never came)."""
    cutoff = (now or time.time()) - KEPT_DAYS * 86400
    old = [
        e["RowKey"]
        for e in table.query_entities(f"PartitionKey eq '{PK}'", select=["RowKey", "updated_at"])
        if float(e.get("updated_at") or 0) < cutoff
    ]
    for rk in old:
        t.delete(table, PK, rk)
    return len(old)
