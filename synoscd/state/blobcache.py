"""The GitHub source's blob cache, persisted in the state table so a cold Function instance (or a
`synos` command) does not re-read every manifest (see sources/github.py).

The blobs are packed: zlib-compressed records (git blob id, length, content) in a few rows of one
partition, beside the index row, so a cold start reads them all with one query instead of decoding a
row per manifest (1,000 rows cost a new process about 0.1 s; one pack a few ms). A save rewrites the
packs in the same transaction as the index. The source checks every blob against the id of its tree
entry before serving it, so content changed in the table (operators can write it) is discarded and
read again from GitHub, never deployed; a pack that cannot be read is only a cache miss."""

from __future__ import annotations

import logging
import re
import struct
import zlib
from collections.abc import Collection, Iterator, Mapping
from typing import Any

from azure.data.tables import TableClient

from synoscd.sources.github import PersistedIndex
from synoscd.state import table as t

log = logging.getLogger(__name__)

PACKS = "blobpacks"
INDEX_ROW = "index"
PACK_PREFIX = "p"
LEGACY = ("blobindex", "blobs")  # one row per blob, before packs: collected on the next save
MAX_BLOB = 600 * 1024  # larger blobs are simply not persisted
MAX_PACK_BYTES = 600 * 1024  # content per pack: a compressed pack stays well under the 1 MiB entity
CHUNK_BYTES = 60 * 1024  # a binary property holds at most 64 KiB
MAX_BATCH_BYTES = 3 * 1024 * 1024  # a transaction carries at most 4 MiB
_RECORD = struct.Struct(">20sI")  # git blob id (sha1, raw), content length
_SHA1 = re.compile(r"[0-9a-f]{40}")


def pack(blobs: Mapping[str, bytes]) -> bytes:
    """One pack: the records of `blobs` (git blob id -> content), compressed."""
    records = b"".join(
        _RECORD.pack(bytes.fromhex(sha), len(data)) + data for sha, data in sorted(blobs.items())
    )
    return zlib.compress(records, 6)


def unpack(packed: bytes) -> dict[str, bytes]:
    """The blobs of a pack; ValueError when it is not one (truncated, not zlib, bad records)."""
    try:
        records = zlib.decompress(packed)
    except zlib.error as exc:
        raise ValueError(f"not a pack: {exc}") from exc
    out: dict[str, bytes] = {}
    at = 0
    while at < len(records):
        if at + _RECORD.size > len(records):
            raise ValueError("a record is cut short")
        sha, size = _RECORD.unpack_from(records, at)
        at += _RECORD.size
        if at + size > len(records):
            raise ValueError("a record is cut short")
        out[sha.hex()] = records[at : at + size]
        at += size
    return out


def pack_entity(row: str, packed: bytes) -> dict[str, Any]:
    chunks = [packed[i : i + CHUNK_BYTES] for i in range(0, len(packed), CHUNK_BYTES)] or [b""]
    entity: dict[str, Any] = {"PartitionKey": PACKS, "RowKey": row, "chunks": len(chunks)}
    entity.update({f"c{i}": chunk for i, chunk in enumerate(chunks)})
    return entity


def entity_pack(entity: Mapping[str, Any]) -> bytes:
    return b"".join(bytes(entity[f"c{i}"]) for i in range(int(entity.get("chunks") or 0)))


def _groups(blobs: Mapping[str, bytes]) -> Iterator[dict[str, bytes]]:
    group: dict[str, bytes] = {}
    size = 0
    for sha, data in sorted(blobs.items()):
        if len(data) > MAX_BLOB or not _SHA1.fullmatch(sha):
            continue
        if group and size + len(data) > MAX_PACK_BYTES:
            yield group
            group, size = {}, 0
        group[sha] = data
        size += len(data)
    if group:
        yield group


class TableBlobStore:
    def __init__(self, table: TableClient) -> None:
        self.table = table
        # Old one-row-per-blob partitions may remain until a save has seen to them; a table that holds
        # a pack index was saved in this format already, and so was collected.
        self._legacy_collected = False

    def load(self) -> tuple[PersistedIndex | None, dict[str, bytes]]:
        """The index and every blob, in one query."""
        index: PersistedIndex | None = None
        blobs: dict[str, bytes] = {}
        for entity in self.table.query_entities(f"PartitionKey eq '{PACKS}'"):
            row = dict(entity)
            if entity["RowKey"] == INDEX_ROW:
                index = PersistedIndex(row["head"], t.get_json(row, "manifests", {}))
                self._legacy_collected = True
                continue
            try:
                blobs.update(unpack(entity_pack(row)))
            except (ValueError, KeyError, TypeError) as exc:  # a cache miss, read again from GitHub
                log.warning("discarded blob cache pack %s: %s", entity["RowKey"], exc)
        return index, blobs

    def save(self, index: PersistedIndex, blobs: Mapping[str, bytes], replace: Collection[str] = ()) -> None:
        """Store the index with the blobs its manifests refer to (those given), rewriting the packs:
        rows found corrupted (`replace`) and blobs no manifest refers to any more go with the old ones."""
        del replace  # every pack is written anew
        wanted = set(index.manifests.values())
        packs = [pack(group) for group in _groups({s: d for s, d in blobs.items() if s in wanted})]
        rows = {f"{PACK_PREFIX}{i:05d}" for i in range(len(packs))}
        head: dict[str, Any] = {"PartitionKey": PACKS, "RowKey": INDEX_ROW, "head": index.head}
        t.put_json(head, "manifests", index.manifests)
        ops: list[tuple[str, dict[str, Any]]] = [("upsert", head)]
        ops += [("upsert", pack_entity(f"{PACK_PREFIX}{i:05d}", p)) for i, p in enumerate(packs)]
        stale = self.table.query_entities(f"PartitionKey eq '{PACKS}'", select=["RowKey"])
        ops += [("delete", {"PartitionKey": PACKS, "RowKey": e["RowKey"]}) for e in stale]
        self._submit([op for op in ops if op[0] == "upsert" or op[1]["RowKey"] not in rows | {INDEX_ROW}])
        if not self._legacy_collected:
            for partition in LEGACY:
                old = self.table.query_entities(f"PartitionKey eq '{partition}'", select=["RowKey"])
                self._submit([("delete", {"PartitionKey": partition, "RowKey": e["RowKey"]}) for e in old])
            self._legacy_collected = True

    def _submit(self, ops: list[tuple[str, dict[str, Any]]]) -> None:
        batch: list[tuple[str, dict[str, Any]]] = []
        size = 0
        for op in ops:
            weight = sum(len(v) if isinstance(v, bytes | str) else 8 for v in op[1].values()) * 4 // 3 + 200
            if batch and (len(batch) == 100 or size + weight > MAX_BATCH_BYTES):
                self.table.submit_transaction(batch)
                batch, size = [], 0
            batch.append(op)
            size += weight
        if batch:
            self.table.submit_transaction(batch)
