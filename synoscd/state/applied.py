"""The bodies SynosCD applied, per app and job, one per revision: what `synos rollback` can go back to.

Each resource keeps a ring of at most N rows (the runtime setting `applied_history`): the status row
counts the revisions written (`extra.applied`: [seq, revision], engine/record.py), the body goes to
slot seq mod N. No pass reads or trims this partition, so keeping history costs one batched upsert
per pass that wrote something. Re-applying the same revision (a heal) overwrites its slot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from azure.data.tables import TableClient, UpdateMode

from synoscd.state import table as t
from synoscd.state.apps import status_key

PK = "applied"
BATCH_BYTES = 3_000_000
ROLLBACK_REASON = "rolled back to "  # the suspension reason a rollback writes; the dashboard shows it


@dataclass(frozen=True)
class AppliedBody:
    kind: str
    name: str
    seq: int  # the how-manieth revision SynosCD applied to this resource
    revision: str
    applied_at: float
    pass_id: str
    body: dict[str, Any]

    def to_dict(self, with_body: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind,
            "name": self.name,
            "seq": self.seq,
            "revision": self.revision,
            "appliedAt": self.applied_at,
            "passId": self.pass_id,
            "images": [
                c.get("image")
                for c in ((self.body.get("properties") or {}).get("template") or {}).get("containers", [])
            ],
        }
        if with_body:
            out["body"] = self.body
        return out


def _row_key(kind: str, name: str, slot: int) -> str:
    return f"{status_key(kind, name)}|{slot:04d}"


def put(table: TableClient, bodies: list[AppliedBody], keep: int) -> None:
    """Write each body to its ring slot (replacing what the slot held), in as few transactions as fit."""
    ops = []
    for b in bodies:
        row: dict[str, Any] = {
            "PartitionKey": PK,
            "RowKey": _row_key(b.kind, b.name, b.seq % max(keep, 1)),
            "kind": b.kind,
            "name": b.name,
            "seq": b.seq,
            "revision": b.revision,
            "applied_at": b.applied_at,
            "pass_id": b.pass_id,
        }
        t.put_json(row, "body", b.body)
        ops.append(("upsert", row, {"mode": UpdateMode.REPLACE}))
    # A transaction holds at most 100 entities and 4 MiB: large bodies close a batch early.
    batch: list[Any] = []
    size = 0
    for op in ops:
        weight = sum(len(v) for k, v in op[1].items() if k.startswith("body_")) * 2 + 1024
        if batch and (len(batch) == 100 or size + weight > BATCH_BYTES):
            table.submit_transaction(batch)
            batch, size = [], 0
        batch.append(op)
        size += weight
    if batch:
        table.submit_transaction(batch)


def history(table: TableClient, kind: str, name: str, keep: int) -> list[AppliedBody]:
    """The applied bodies of one resource, newest first: the last `keep` revisions (a ring that was
    larger before `keep` shrank may hold older rows; they are not listed)."""
    key = status_key(kind, name)
    rows = table.query_entities(
        "PartitionKey eq @pk and RowKey gt @lo and RowKey lt @hi",
        parameters={"pk": PK, "lo": f"{key}|", "hi": f"{key}|~"},
    )
    out = [
        AppliedBody(
            kind=r["kind"],
            name=r["name"],
            seq=int(r["seq"]),
            revision=r["revision"],
            applied_at=float(r["applied_at"]),
            pass_id=r.get("pass_id") or "",
            body=t.get_json(dict(r), "body", {}),
        )
        for r in rows
    ]
    out.sort(key=lambda b: b.seq, reverse=True)
    return out[:keep] if out else []


def is_rollback(reason: str | None) -> bool:
    return bool(reason) and str(reason).startswith(ROLLBACK_REASON)
