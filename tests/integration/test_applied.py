"""The applied-body ring on Azurite: at most N rows per resource whatever number of revisions, newest
first, a heal of the same revision in its own slot, and a shrunk N lists only the newest N."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.data.tables import TableClient

from synoscd.state import applied
from synoscd.state import table as t
from tests.conftest import LaunchedStack

pytestmark = pytest.mark.integration


@pytest.fixture
def table(stack: LaunchedStack) -> Iterator[TableClient]:
    client = t.open_table(stack.env["SYNOSCD_STATE_STORE"], table_name=f"a{uuid.uuid4().hex[:16]}")
    yield client
    client.delete_table()


def body(seq: int) -> applied.AppliedBody:
    image = {"properties": {"template": {"containers": [{"image": f"nginx:{seq}"}]}}, "pad": "x" * 40_000}
    return applied.AppliedBody("App", "web", seq, f"rev{seq}", float(seq), f"p{seq}", image)


def test_the_ring_keeps_n_bodies_per_resource(table: TableClient) -> None:
    for seq in range(1, 8):  # one pass after another, each writing a new revision
        applied.put(
            table, [body(seq), applied.AppliedBody("Job", "web", seq, f"j{seq}", 0.0, "p", {})], keep=3
        )
    rows = list(table.query_entities("PartitionKey eq 'applied'", select=["RowKey"]))
    assert len(rows) == 6, "3 for the App, 3 for the Job of the same name"
    kept = applied.history(table, "App", "web", keep=3)
    assert [b.revision for b in kept] == ["rev7", "rev6", "rev5"]
    assert kept[0].to_dict()["images"] == ["nginx:7"] and kept[0].body["pad"] == "x" * 40_000
    applied.put(table, [applied.AppliedBody("App", "web", 7, "rev7", 9.0, "p9", {"healed": True})], keep=3)
    again = applied.history(table, "App", "web", keep=3)
    assert [b.revision for b in again] == ["rev7", "rev6", "rev5"] and again[0].body == {"healed": True}
    assert [b.revision for b in applied.history(table, "App", "web", keep=2)] == ["rev7", "rev6"]
    assert applied.history(table, "App", "other", keep=3) == []


def test_a_pass_writes_many_resources_in_batches(table: TableClient) -> None:
    pad = "y" * 45_000  # 250 of these are far over a transaction's 4 MiB: batches close early
    many = [
        applied.AppliedBody("App", f"app{i:03d}", 1, "r", 0.0, "p", {"i": i, "pad": pad}) for i in range(250)
    ]
    applied.put(table, many, keep=10)
    assert applied.history(table, "App", "app249", keep=10)[0].body == {"i": 249, "pad": pad}
