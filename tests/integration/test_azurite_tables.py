"""Azurite, started by the launcher, through azure-data-tables: optimistic concurrency works."""

from __future__ import annotations

import uuid

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError
from azure.data.tables import TableServiceClient, UpdateMode

from tests.conftest import LaunchedStack

pytestmark = pytest.mark.integration


def test_table_round_trip_and_412_on_a_stale_etag(stack: LaunchedStack) -> None:
    service = TableServiceClient.from_connection_string(stack.env["SYNOSCD_STATE_STORE"])
    table = service.create_table_if_not_exists(f"t{uuid.uuid4().hex[:12]}")
    try:
        table.create_entity({"PartitionKey": "app", "RowKey": "web", "suspended": False})
        fresh = table.get_entity("app", "web")
        table.update_entity(
            {"PartitionKey": "app", "RowKey": "web", "suspended": True},
            mode=UpdateMode.MERGE,
            etag=fresh.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )
        with pytest.raises(ResourceModifiedError) as err:
            table.update_entity(
                {"PartitionKey": "app", "RowKey": "web", "suspended": False},
                mode=UpdateMode.MERGE,
                etag=fresh.metadata["etag"],
                match_condition=MatchConditions.IfNotModified,
            )
        assert err.value.status_code == 412
        assert table.get_entity("app", "web")["suspended"] is True
    finally:
        service.delete_table(table.table_name)


def test_a_partition_read_equals_the_sdks_query_over_pages_and_types(stack: LaunchedStack) -> None:
    """`state/table.query` reads through the client's pipeline with the SDK's own entity conversion:
    the same rows, values, types and ETags as `query_entities`, across Table Storage's 1,000-row pages,
    and only the partition asked for."""
    from datetime import UTC, datetime

    from azure.data.tables import EdmType, EntityProperty

    from synoscd.state import table as t

    table = t.open_table(stack.env["SYNOSCD_STATE_STORE"], table_name=f"q{uuid.uuid4().hex[:12]}")
    try:
        typed = {
            "PartitionKey": "p",
            "RowKey": "typed",
            "text": "é ünïcode",
            "small": 7,
            "big": EntityProperty(2**40, EdmType.INT64),
            "ratio": 0.25,
            "whole": 3.0,
            "flag": True,
            "when": datetime(2026, 12, 2, 3, 4, 5, tzinfo=UTC),
            "raw": b"\x00\xffbytes",
        }
        table.create_entity(typed)
        ops = [("upsert", {"PartitionKey": "p", "RowKey": f"r{i:05d}", "n": i}) for i in range(1, 1101)]
        for at in range(0, len(ops), 100):
            table.submit_transaction(ops[at : at + 100])
        table.create_entity({"PartitionKey": "other", "RowKey": "x"})
        sdk = [{**dict(e), "_etag": e.metadata["etag"]} for e in table.query_entities("PartitionKey eq 'p'")]
        rows = t.query(table, "p")
        assert len(rows) == 1101 and rows == sdk
        read = next(r for r in rows if r["RowKey"] == "typed")
        assert read["big"] == EntityProperty(2**40, EdmType.INT64) and read["raw"] == b"\x00\xffbytes"
        assert read["when"] == typed["when"] and read["whole"] == 3.0 and read["_etag"]
        assert t.query(table, "nothing-here") == []
    finally:
        table.delete_table()
