"""Opening the state table, and the one ETag-guarded read-modify-write every record goes through."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

TABLE_NAME = "synoscd"
SCHEMA_VERSION = 1
# Table Storage caps a string property at 64 KiB (32 K UTF-16 chars); large JSON is split across columns.
CHUNK = 30_000


class StateError(Exception):
    """The state store could not be read or written; the message names the endpoint and the setting."""


class ConcurrentWriteError(StateError):
    """Another writer kept changing the record; nothing was overwritten."""


def open_table(store: str, credential: Any = None, table_name: str = TABLE_NAME) -> TableClient:
    """`store` is a connection string or a table endpoint URL (then `credential`, the managed identity)."""
    if store.startswith(("http://", "https://")):
        service = TableServiceClient(endpoint=store, credential=credential)
    else:
        service = TableServiceClient.from_connection_string(store)
    try:
        return service.create_table_if_not_exists(table_name)
    except (ServiceRequestError, HttpResponseError) as exc:
        raise StateError(
            f"state store {service.url} did not answer ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
            "check SYNOSCD_STATE_STORE"
        ) from exc


def get(table: TableClient, pk: str, rk: str) -> dict[str, Any] | None:
    try:
        entity = table.get_entity(pk, rk)
    except ResourceNotFoundError:
        return None
    out = dict(entity)
    out["_etag"] = entity.metadata["etag"]
    return out


def update(
    table: TableClient,
    pk: str,
    rk: str,
    mutate: Callable[[dict[str, Any] | None], dict[str, Any] | None],
    attempts: int = 8,
) -> dict[str, Any] | None:
    """Read, let `mutate` compute the new entity from fresh data (None = leave as is), write with the
    ETag read; on a conflicting write start again from fresh data. Never overwrites blindly."""
    for _ in range(attempts):
        current = get(table, pk, rk)
        base = {k: v for k, v in current.items() if k != "_etag"} if current else None
        new = mutate(dict(base) if base is not None else None)
        if new is None:
            return current
        new = {**new, "PartitionKey": pk, "RowKey": rk, "schemaVersion": SCHEMA_VERSION}
        try:
            if current is None:
                meta = table.create_entity(new)
            else:
                meta = table.update_entity(
                    new,
                    mode=UpdateMode.REPLACE,
                    etag=current["_etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
        except (ResourceModifiedError, ResourceExistsError):
            continue
        return {**new, "_etag": meta.get("etag")}
    raise ConcurrentWriteError(f"record {pk}/{rk} kept changing under {attempts} attempts; try again")


def delete(table: TableClient, pk: str, rk: str) -> None:
    with contextlib.suppress(ResourceNotFoundError):
        table.delete_entity(pk, rk)


def query(table: TableClient, pk: str) -> list[dict[str, Any]]:
    return [{**dict(e), "_etag": e.metadata["etag"]} for e in table.query_entities(f"PartitionKey eq '{pk}'")]


def put_json(entity: dict[str, Any], name: str, value: Any) -> None:
    """Store JSON under `name`, split into `name_0`, `name_1`, ... when large."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    parts = [text[i : i + CHUNK] for i in range(0, len(text), CHUNK)] or [""]
    entity[f"{name}Parts"] = len(parts)
    for i, part in enumerate(parts):
        entity[f"{name}_{i}"] = part


def get_json(entity: dict[str, Any], name: str, default: Any = None) -> Any:
    n = int(entity.get(f"{name}Parts", 0) or 0)
    if n == 0:
        return default
    return json.loads("".join(entity[f"{name}_{i}"] for i in range(n)))
