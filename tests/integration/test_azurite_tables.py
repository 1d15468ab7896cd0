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
