"""The state table on Azurite through azure-data-tables: ETag-guarded writes, the lease, history."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from azure.data.tables import TableClient

from synoscd.config import Settings
from synoscd.state import apps, history, lease, runtime
from synoscd.state import table as t
from tests.conftest import LaunchedStack

pytestmark = pytest.mark.integration


@pytest.fixture
def table(stack: LaunchedStack) -> TableClient:
    client = t.open_table(stack.env["SYNOSCD_STATE_STORE"], table_name=f"s{uuid.uuid4().hex[:16]}")
    yield client
    client.delete_table()


def test_unreachable_store_names_endpoint_and_setting() -> None:
    store = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;"
    )
    with pytest.raises(t.StateError) as err:
        t.open_table(store)
    assert "127.0.0.1:9" in str(err.value) and "SYNOSCD_STATE_STORE" in str(err.value)


def test_runtime_settings_default_from_env_and_table_overrides(table: TableClient) -> None:
    settings = Settings(reconcile_interval_seconds=300, prune_enabled=False, protected_apps_csv="a,b")
    base = runtime.load(table, settings)
    assert (base.interval_seconds, base.prune_enabled, base.protected_apps) == (300, False, ("a", "b"))
    runtime.save(table, {"interval_seconds": 60}, who="alice")
    runtime.save(table, {"prune_enabled": True}, who="bob")
    got = runtime.load(table, settings)
    assert (got.interval_seconds, got.prune_enabled, got.max_concurrent) == (
        60,
        True,
        settings.max_concurrent,
    )
    assert got.overridden == ("interval_seconds", "prune_enabled") and got.updated_by == "bob"
    with pytest.raises(ValueError):
        runtime.save(table, {"nope": 1}, who="x")


def test_update_retries_on_fresh_data_and_loses_no_write(table: TableClient) -> None:
    # Twenty writers increment one counter at once; ETags make every increment count.
    def bump() -> None:
        t.update(table, "test", "counter", lambda row: {"n": int((row or {}).get("n", 0)) + 1}, attempts=50)

    threads = [threading.Thread(target=bump) for _ in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert t.get(table, "test", "counter")["n"] == 20


def test_flag_written_during_a_status_write_is_kept(table: TableClient) -> None:
    apps.put_statuses(table, [apps.AppStatus("web", sync_state="Synced")])
    read = apps.get_statuses(table)["App.web"]
    apps.set_suspended(table, "web", True, who="alice", reason="incident")
    read.sync_state = "OutOfSync"
    apps.put_statuses(table, [read])
    assert apps.get_flags(table)["web"].suspended is True
    assert apps.get_flags(table)["web"].reason == "incident"
    assert apps.get_statuses(table)["App.web"].sync_state == "OutOfSync"


def test_status_batch_falls_back_when_a_row_changed_meanwhile(table: TableClient) -> None:
    apps.put_statuses(table, [apps.AppStatus(f"app-{i}") for i in range(150)])
    statuses = apps.get_statuses(table)
    assert len(statuses) == 150
    stale = statuses["App.app-3"]
    fresh = apps.get_statuses(table)["App.app-3"]
    fresh.message = "written by someone else"
    apps.put_statuses(table, [fresh])
    stale.message = "from the pass"
    apps.put_statuses(table, [stale, statuses["App.app-4"]])
    assert apps.get_status(table, "App", "app-3").message == "from the pass"
    events = apps.get_events(table, "App", "app-3")
    assert [e.message for e in events][:2] == ["from the pass", "written by someone else"]


def test_lease_one_holder_coalesces_requests_and_expires(table: TableClient) -> None:
    first = lease.acquire(table, "timer-1", ttl=30, trigger="timer")
    assert first is not None
    assert lease.acquire(table, "webhook-1", ttl=30, trigger="webhook") is None
    assert lease.acquire(table, "cli-1", ttl=30, trigger="cli") is None
    holder, pending = lease.read(table)
    assert holder.holder == "timer-1" and pending == 2
    assert lease.release(table, first, ttl=30) is True, "pending requests make the holder run once more"
    assert lease.release(table, first, ttl=30) is False
    assert lease.read(table) == (None, 0)
    short = lease.acquire(table, "crashed", ttl=0.2, trigger="timer")
    assert short is not None
    time.sleep(0.3)
    assert lease.acquire(table, "next", ttl=30, trigger="timer") is not None, "an expired lease is taken over"
    with pytest.raises(lease.LeaseLost):
        lease.renew(table, short, ttl=30)


def test_concurrent_acquire_has_one_winner(table: TableClient) -> None:
    winners: list[str] = []

    def contend(name: str) -> None:
        if lease.acquire(table, name, ttl=30, trigger="timer") is not None:
            winners.append(name)

    threads = [threading.Thread(target=contend, args=(f"w{i}",)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(winners) == 1
    assert lease.read(table)[1] == 7


def test_pass_history_is_bounded_and_newest_first(table: TableClient) -> None:
    for i in range(5):
        history.record_pass(
            table,
            history.PassRecord(
                id=f"p{i}", trigger="timer", started_at=1000.0 + i, finished_at=1001.0 + i, counts={"noop": i}
            ),
        )
    assert [p.id for p in history.list_passes(table, limit=3)] == ["p4", "p3", "p2"]
    assert history.trim_passes(table, keep=2) == 3
    assert [p.id for p in history.list_passes(table)] == ["p4", "p3"]
    assert history.list_passes(table)[0].counts == {"noop": 4}


def test_delivery_dedup_with_expiry(table: TableClient) -> None:
    assert history.seen_delivery(table, "d-1") is False
    assert history.seen_delivery(table, "d-1") is True
    assert history.seen_delivery(table, "d-2", ttl=0.1) is False
    time.sleep(0.2)
    assert history.seen_delivery(table, "d-2") is False, "an expired delivery id counts as new"


def test_tombstone_keeps_a_large_body(table: TableClient) -> None:
    body = {"properties": {"template": {"containers": [{"name": "c", "image": "x" * 100_000}]}}}
    history.put_tombstone(table, "App", "web", body, pass_id="p1")
    time.sleep(0.01)
    history.put_tombstone(table, "App", "web", {"v": 2}, pass_id="p2")
    latest = history.latest_tombstone(table, "web")
    assert latest["body"] == {"v": 2} and latest["passId"] == "p2"
    assert history.latest_tombstone(table, "we") is None


def test_retention_bounds_history_timeline_and_deliveries(table: TableClient) -> None:
    from synoscd.state import retention

    for i in range(3):
        history.record_pass(table, history.PassRecord(id=f"p{i}", trigger="timer", started_at=1000.0 + i))
    old = apps.AppStatus("web", sync_state="Synced")
    apps.put_statuses(table, [old])
    history.seen_delivery(table, "old-delivery", ttl=0.01)
    history.seen_delivery(table, "fresh-delivery")
    time.sleep(0.05)
    far_future = time.time() + (retention.TIMELINE_DAYS + 1) * 86400
    done = retention.apply(table, now=far_future)
    assert done["events"] == 1 and apps.get_events(table, "App", "web") == []
    assert done["deliveries"] == 2, "both ids are past their window that far in the future"
    assert done["passes"] == 0, "three passes are within the kept number"
    assert retention.apply(table)["deliveries"] == 0
