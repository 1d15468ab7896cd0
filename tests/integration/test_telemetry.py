"""Telemetry of real passes (Azurite, the ARM stand-in, the real SDKs), read back through the
OpenTelemetry SDK's in-memory exporters: the spans of one pass, the metric points it records and the
attributes of its log records, also as Azure Monitor's exporter turns them into Application Insights
items (custom dimensions, operation id)."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from synoscd import notify, telemetry
from synoscd.engine.reconcile import run_pass
from synoscd.engine.runtime import get_runtime, reset_runtime
from synoscd.functions import handlers
from synoscd.notify import store
from synoscd.state import history, runtime
from synoscd.telemetry.setup import hosts_of, sdk_pipeline
from tests.integration.test_reconcile import DRIFTS, Ops, manifest, ops  # noqa: F401 (fixture)

pytestmark = pytest.mark.integration


@functools.cache
def _pipeline(arm: str, github: str) -> tuple[Any, InMemorySpanExporter, InMemoryMetricReader, Any]:
    """One in-memory pipeline per test process (OpenTelemetry's global providers are set once)."""
    spans, reader, logs = InMemorySpanExporter(), InMemoryMetricReader(), InMemoryLogRecordExporter()
    from synoscd.config import Settings

    hosts = hosts_of(Settings(arm_endpoint=arm, github_api_url=github))
    return sdk_pipeline(spans, reader, logs, hosts, batch=False), spans, reader, logs


@pytest.fixture
def otel(ops: Ops) -> Iterator[Any]:  # noqa: F811
    pipeline, spans, reader, logs = _pipeline(ops.stack.url("arm"), ops.stack.url("github"))
    pipeline.open()
    telemetry.install(pipeline)
    spans.clear()
    logs.clear()

    class Captured:
        def __init__(self) -> None:
            self.spans, self.reader, self.logs = spans, reader, logs

        def points(self) -> dict[tuple[str, frozenset[tuple[str, Any]]], Any]:
            return points(reader)

    try:
        yield Captured()
    finally:
        notify.wait(10)
        telemetry.uninstall()


def points(reader: InMemoryMetricReader) -> dict[tuple[str, frozenset[tuple[str, Any]]], Any]:
    """(name, attributes) -> value (sums and gauges) or count (histograms), cumulative."""
    out: dict[tuple[str, frozenset[tuple[str, Any]]], Any] = {}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for p in metric.data.data_points:
                    key = (metric.name, frozenset((p.attributes or {}).items()))
                    out[key] = p.count if hasattr(p, "bucket_counts") else p.value
    return out


def delta(before: dict[Any, Any], after: dict[Any, Any], name: str, **attrs: Any) -> float:
    """How much a counter (or histogram count) with exactly these attributes grew."""
    key = (name, frozenset(attrs.items()))
    return after.get(key, 0) - before.get(key, 0)


def total(after: dict[Any, Any], name: str, **attrs: Any) -> float:
    """Sum over every point of `name` whose attributes include these."""
    want = set(attrs.items())
    return sum(v for (n, a), v in after.items() if n == name and want <= set(a))


def test_a_pass_with_a_create_a_heal_a_failure_and_a_blocked_prune(ops: Ops, otel: Any) -> None:  # noqa: F811
    # Setup: keep and gone are healthy, sick runs an image that crashes (Degraded); prune is on.
    ops.arm("POST", "crashing-images", {"image": "broken:1"})
    for name in ("keep", "gone"):
        ops.write(name, manifest(name))
    ops.write("sick", manifest("sick", image="broken:1"))
    runtime.save(ops.rt.table, {"prune_enabled": True}, who="test")
    ops.sync()
    # The measured pass: fresh is created, doomed's creation fails (its operation ends Failed), sick
    # is re-applied (heal), gone left Git but a broken manifest makes the set incomplete (no prune).
    ops.write("fresh", manifest("fresh"))
    ops.write("doomed", manifest("doomed"))
    ops.arm(
        "POST",
        "lro-failures",
        {
            "method": "PUT",
            "path": "/containerApps/doomed$",
            "code": "ContainerAppOperationError",
            "message": "quota",
        },
    )
    ops.remove("gone")
    ops.write("broken", "apiVersion: synoscd.io/v1alpha1\nkind: App\nmetadata: [unclosed\n")
    otel.spans.clear()
    otel.logs.clear()
    before = otel.points()

    result = ops.sync()
    assert notify.wait(10)

    planned = {a.name: (a.action, a.reason) for a in result.plan.actions}
    assert planned["fresh"] == ("create", "missing") and planned["doomed"] == ("create", "missing")
    assert planned["sick"] == ("heal", "unhealthy") and planned["gone"] == ("skip", "prune-blocked")
    assert result.outcome == "failed"

    # -- spans: one trace for the pass, with a span for every step --------------------------------------
    finished = otel.spans.get_finished_spans()
    (root,) = [s for s in finished if s.name == "synoscd.pass"]
    trace = root.context.trace_id
    assert root.parent is None, "a pass starts its own trace"
    assert format(trace, "032x") == result.trace_id == history.get_pass(ops.rt.table, result.id).trace_id
    attrs = dict(root.attributes)
    assert attrs["synoscd.trigger"] == "cli" and attrs["synoscd.pass_id"] == result.id
    assert attrs["synoscd.revision"] == result.revision and attrs["synoscd.outcome"] == "failed"
    assert root.status.status_code == StatusCode.ERROR
    ours = [s for s in finished if s.context.trace_id == trace]
    by_id = {s.context.span_id: s for s in ours}
    names = [s.name for s in ours]
    for step in ("synoscd.source.fetch", "synoscd.live.list", "synoscd.state.read", "synoscd.plan"):
        assert names.count(step) == 1, f"{step}: {names}"
    assert "synoscd.wave" in names and names.count("synoscd.record") == 1

    def under(span: Any, name: str) -> bool:
        while span.parent is not None:
            span = by_id[span.parent.span_id]
            if span.name == name:
                return True
        return False

    writes = {s.attributes["synoscd.app"]: s for s in ours if s.name == "synoscd.write"}
    assert {k: v.attributes["synoscd.action"] for k, v in writes.items()} == {
        "fresh": "create",
        "doomed": "create",
        "sick": "heal",
    }
    assert all(under(s, "synoscd.wave") and under(s, "synoscd.pass") for s in writes.values())
    lros = {s.attributes["synoscd.app"]: s for s in ours if s.name == "synoscd.lro"}
    assert {k: v.attributes["synoscd.result"] for k, v in lros.items()} == {
        "fresh": "ok",
        "doomed": "failed",
        "sick": "ok",
    }
    assert lros["doomed"].status.status_code == StatusCode.ERROR
    assert "quota" in lros["doomed"].status.description
    # The Azure SDK's own spans (azure-core-tracing-opentelemetry) are children of ours.
    http = [s for s in ours if s.kind == SpanKind.CLIENT]

    def write_of(span: Any) -> str | None:
        while span.parent is not None:
            span = by_id[span.parent.span_id]
            if span.name == "synoscd.write":
                return str(span.attributes["synoscd.app"])
        return None

    # Creates are PUTs, the heal a PATCH (a merge patch of the owned fields).
    assert {write_of(s) for s in http if _method(s) == "PUT" and write_of(s)} == {"fresh", "doomed"}
    assert {write_of(s) for s in http if _method(s) == "PATCH" and write_of(s)} == {"sick"}
    lists = [s for s in http if under(s, "synoscd.live.list") and "/containerApps?" in str(s.attributes)]
    assert len(lists) == 1, "one span per request: the requests instrumentation leaves ARM to the SDK's"
    assert any(under(s, "synoscd.live.list") and _method(s) == "GET" for s in http), "ARM listing"
    assert any(under(s, "synoscd.state.read") for s in http), "state table reads"
    assert any(under(s, "synoscd.record") for s in http), "status and pass record writes"

    # -- metrics --------------------------------------------------------------------------------------
    after = otel.points()
    assert delta(before, after, "synoscd.passes", trigger="cli", outcome="failed") == 1
    assert delta(before, after, "synoscd.pass.duration", trigger="cli", outcome="failed") == 1
    assert delta(before, after, "synoscd.writes", kind="App", action="create", result="ok") == 1
    assert delta(before, after, "synoscd.writes", kind="App", action="create", result="failed") == 1
    assert delta(before, after, "synoscd.writes", kind="App", action="heal", result="ok") == 1
    assert delta(before, after, "synoscd.prune.blocked", reason="incomplete") == 1
    puts_counted = total(after, "synoscd.arm.calls", method="PUT") - total(
        before, "synoscd.arm.calls", method="PUT"
    )
    patches_counted = total(after, "synoscd.arm.calls", method="PATCH") - total(
        before, "synoscd.arm.calls", method="PATCH"
    )
    assert (puts_counted, patches_counted) == (2, 1), "two creates, one heal"
    assert (
        after[
            (
                "synoscd.resources",
                frozenset({"kind": "App", "sync_state": "Synced", "health": "Healthy"}.items()),
            )
        ]
        == 2
    )
    assert total(after, "synoscd.resources", kind="App", sync_state="Failed") == 1  # doomed
    assert total(after, "synoscd.resources", kind="App", sync_state="OutOfSync") == 1  # gone
    assert total(after, "synoscd.resources", kind="App", health="Degraded") == 1  # sick

    # -- logs: the fields as attributes, and as Application Insights custom dimensions ---------------------
    records = [r.log_record for r in otel.logs.get_finished_logs()]
    mine = [r for r in records if r.trace_id == trace]
    finished_log = next(r for r in mine if r.body == "pass finished")
    assert finished_log.attributes["pass_id"] == result.id
    assert finished_log.attributes["trigger"] == "cli"
    assert finished_log.attributes["revision"] == result.revision
    assert finished_log.attributes["outcome"] == "failed"
    assert json.loads(finished_log.attributes["counts"])["failed"] == 1
    failed_log = next(r for r in mine if r.attributes.get("app") == "doomed")
    assert failed_log.attributes["pass_id"] == result.id and failed_log.attributes["trigger"] == "cli"
    assert failed_log.attributes["revision"] == result.revision

    from azure.monitor.opentelemetry.exporter.export.logs._exporter import _convert_log_to_envelope

    readable = next(r for r in otel.logs.get_finished_logs() if r.log_record is failed_log)
    envelope = _convert_log_to_envelope(readable)
    dims = envelope.data.base_data.properties
    assert {k: dims[k] for k in ("pass_id", "trigger", "app", "revision")} == {
        "pass_id": result.id,
        "trigger": "cli",
        "app": "doomed",
        "revision": result.revision,
    }
    assert envelope.tags["ai.operation.id"] == result.trace_id  # jump from `synos history` to the trace

    # -- events (what notifications announce), recorded once --------------------------------------------
    kinds = {(e.type, e.app) for e in store.list_events(ops.rt.table)}
    assert {("sync-failed", ""), ("prune-blocked", ""), ("app-unhealthy", "sick")} <= kinds


def _method(span: Any) -> str | None:
    a = span.attributes or {}
    return a.get("http.request.method") or a.get("http.method")


def test_drift_healed_is_counted_and_becomes_an_event(ops: Ops, otel: Any) -> None:  # noqa: F811
    ops.write("web", manifest("web"))
    ops.sync()
    ops.arm("PATCH", "apps/web", DRIFTS["image"][0])
    before = otel.points()
    result = ops.sync()
    assert result.mode == "heal" and result.outcome == "succeeded"
    after = otel.points()
    assert delta(before, after, "synoscd.drift.detected", kind="App") == 1
    assert delta(before, after, "synoscd.drift.healed", kind="App") == 1
    assert notify.wait(10)
    (event,) = [e for e in store.list_events(ops.rt.table) if e.type == "drift-healed"]
    assert event.app == "web" and event.trace_id == result.trace_id and "image" in event.message
    # The same drift at the same revision again: healed again, announced once.
    ops.arm("PATCH", "apps/web", DRIFTS["image"][0])
    ops.sync()
    assert notify.wait(10)
    assert len([e for e in store.list_events(ops.rt.table) if e.type == "drift-healed"]) == 1


def test_lease_waits_are_counted(ops: Ops, otel: Any) -> None:  # noqa: F811
    from synoscd.state import lease

    before = otel.points()
    held = lease.acquire(ops.rt.table, "someone-else", 60, "cli")
    assert held is not None
    assert run_pass("timer", rt=ops.rt).queued
    assert delta(before, otel.points(), "synoscd.lease.waits", trigger="timer") == 1
    lease.release(ops.rt.table, held, 0.0)


def test_the_webhook_span_is_linked_from_the_pass_it_queued_and_delivery_id_is_a_log_attribute(
    ops: Ops,  # noqa: F811
    otel: Any,
) -> None:
    from tests.integration.test_webhook_queue import deliver, messages, settings

    ops.write("web", manifest("web"))
    rt = get_runtime(settings(ops.stack, source_path=str(ops.root), github_config_path="apps"))
    try:
        before = otel.points()
        status, answer = deliver(rt, "d-42")
        assert status == 202 and answer["status"] == "queued", answer
        (message,) = messages(rt)
        assert message["trace"]["traceparent"], "the message carries the webhook's trace context"
        outcome = handlers.on_queue_message(json.dumps(message).encode(), 1)
        assert outcome["ran"] is True, outcome
        finished = otel.spans.get_finished_spans()
        (hook,) = [s for s in finished if s.name == "synoscd.webhook"]
        (root,) = [s for s in finished if s.name == "synoscd.pass"]
        assert hook.attributes["synoscd.delivery_id"] == "d-42"
        assert root.context.trace_id != hook.context.trace_id, "the pass has its own trace"
        assert hook.context.span_id in [link.context.span_id for link in root.links]
        assert delta(before, otel.points(), "synoscd.webhook.deliveries", result="queued") == 1
        logged = [r.log_record for r in otel.logs.get_finished_logs()]
        queued = next(r for r in logged if r.body == "webhook queued")
        assert queued.attributes["delivery_id"] == "d-42" and queued.attributes["trigger"] == "webhook"
        assert deliver(rt, "d-42")[1]["status"] == "duplicate"
        assert delta(before, otel.points(), "synoscd.webhook.deliveries", result="duplicate") == 1
        rt.table.delete_table()
    finally:
        reset_runtime()
