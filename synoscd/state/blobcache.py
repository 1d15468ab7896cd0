"""The GitHub source's blob cache, persisted in the state table so a cold Function instance does not
re-read every manifest (see sources/github.py). Rows are keyed by git blob id; the source checks each
one against the id of its tree entry before serving it, so a row changed in the table (operators can
write it) is discarded and read again from GitHub, never deployed."""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping
from typing import Any

from azure.data.tables import TableClient

from synoscd.sources.github import PersistedIndex
from synoscd.state import table as t

INDEX, BLOBS = "blobindex", "blobs"
MAX_BLOB = 600 * 1024  # an entity holds at most 1 MiB; larger blobs are simply not persisted
MAX_BATCH_BYTES = 3 * 1024 * 1024  # a transaction carries at most 4 MiB


class TableBlobStore:
    def __init__(self, table: TableClient) -> None:
        self.table = table

    def load(self) -> tuple[PersistedIndex | None, dict[str, bytes]]:
        row = t.get(self.table, INDEX, "latest")
        index = PersistedIndex(row["head"], t.get_json(row, "manifests", {})) if row else None
        blobs = {
            r["RowKey"]: base64.b64decode(t.get_json(dict(r), "data", ""))
            for r in self.table.query_entities(f"PartitionKey eq '{BLOBS}'")
        }
        return index, blobs

    def save(self, index: PersistedIndex, blobs: Mapping[str, bytes], replace: Collection[str] = ()) -> None:
        """Store the blobs not stored yet and overwrite those in `replace` (the source found their rows
        corrupted); drop rows no manifest of the index refers to."""
        existing = {
            r["RowKey"] for r in self.table.query_entities(f"PartitionKey eq '{BLOBS}'", select=["RowKey"])
        }
        wanted = set(index.manifests.values())
        ops: list[tuple[str, dict[str, Any]]] = []
        for sha, data in blobs.items():
            if (sha in existing and sha not in replace) or len(data) > MAX_BLOB:
                continue
            entity: dict[str, Any] = {"PartitionKey": BLOBS, "RowKey": sha}
            t.put_json(entity, "data", base64.b64encode(data).decode())
            ops.append(("upsert", entity))
        ops += [("delete", {"PartitionKey": BLOBS, "RowKey": sha}) for sha in existing - wanted]
        self._submit(ops)
        row: dict[str, Any] = {"head": index.head}
        t.put_json(row, "manifests", index.manifests)
        t.update(self.table, INDEX, "latest", lambda _old: row)

    def _submit(self, ops: list[tuple[str, dict[str, Any]]]) -> None:
        batch: list[tuple[str, dict[str, Any]]] = []
        size = 0
        for op in ops:
            weight = sum(len(str(v)) for v in op[1].values()) + 200
            if batch and (len(batch) == 100 or size + weight > MAX_BATCH_BYTES):
                self.table.submit_transaction(batch)
                batch, size = [], 0
            batch.append(op)
            size += weight
        if batch:
            self.table.submit_transaction(batch)
