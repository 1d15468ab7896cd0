"""The OpenTelemetry pipeline, imported only when telemetry is on.

- Azure (APPLICATIONINSIGHTS_CONNECTION_STRING): the Azure Monitor OpenTelemetry distro
  (`configure_azure_monitor`) with SynosCD's credential, since the deployment turns Application
  Insights' local (key) authentication off: the exporter authenticates with the managed identity.
  The distro's Azure SDK instrumentation (azure-core-tracing-opentelemetry) makes every ARM, Table
  and Key Vault call a child span; `requests` (PyGithub) is instrumented here, with a hook that reads
  GitHub's rate-limit headers.
- OTEL_EXPORTER_OTLP_ENDPOINT: the SDK with OTLP/HTTP exporters for traces, metrics and logs.
- Tests and benchmarks: `sdk_pipeline` with the SDK's in-memory exporters.

OpenTelemetry's global providers can be set once per process, so a pipeline is built once and can be
closed (instrumentations removed) and opened again.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import _logs as otel_logs
from opentelemetry import context as otel_context
from opentelemetry import metrics, trace
from opentelemetry.instrumentation.logging.handler import LoggingHandler
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from synoscd import __version__, telemetry
from synoscd.config import Settings, TelemetrySettings, load_settings
from synoscd.logs import _SECRET_WORDS
from synoscd.telemetry.instruments import BY_NAME

_PROPAGATOR = TraceContextTextMapPropagator()
_globals_lock = threading.Lock()
_DISABLED = {"enabled": False}
# The distro's instrumentations SynosCD has no use for (no web framework, no database); urllib3 and
# urllib would repeat the requests and Azure SDK spans one level down.
_DISTRO_INSTRUMENTATIONS = {
    "azure_sdk": {"enabled": True},
    "requests": _DISABLED,  # instrumented here, with the GitHub rate-limit hook
    "django": _DISABLED,
    "fastapi": _DISABLED,
    "flask": _DISABLED,
    "psycopg2": _DISABLED,
    "urllib": _DISABLED,
    "urllib3": _DISABLED,
}


class _Handle:
    __slots__ = ("_span",)

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    @property
    def trace_id(self) -> str | None:
        ctx = self._span.get_span_context()
        return format(ctx.trace_id, "032x") if ctx.is_valid else None

    def set(self, key: str, value: Any) -> None:
        if value is not None:
            self._span.set_attribute(key, _attribute(value))

    def fail(self, message: str) -> None:
        self._span.set_status(Status(StatusCode.ERROR, message[:500]))


def _attribute(value: Any) -> Any:
    """An attribute value OpenTelemetry accepts: primitives as they are, anything else as JSON."""
    if isinstance(value, str | bool | int | float):
        return value
    return json.dumps(value, default=str, sort_keys=True)


def _clean(attrs: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: _attribute(v) for k, v in (attrs or {}).items() if v is not None}


class Pipeline:
    """What the facade (synoscd.telemetry) calls while telemetry is on."""

    def __init__(
        self,
        tracer_provider: Any,
        meter_provider: Any,
        logger_provider: Any,
        hosts: Mapping[str, str],
        azure_sdk: bool = True,
        flush: Callable[[float], None] | None = None,
    ) -> None:
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.logger_provider = logger_provider
        self.tracer = tracer_provider.get_tracer("synoscd", __version__)
        self.meter = meter_provider.get_meter("synoscd", __version__)
        self.hosts = dict(hosts)
        self.azure_sdk = azure_sdk
        self._flush = flush
        self._instruments: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.handler = BridgeHandler(logger_provider=logger_provider)
        self._requests: Any = None
        self.open()

    # -- instrumentation on and off ------------------------------------------------------------------
    def open(self) -> None:
        """Attach the log bridge, the Azure SDK's tracing and the requests instrumentation."""
        logger = logging.getLogger("synoscd")
        if self.handler not in logger.handlers:
            logger.addHandler(self.handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)  # the Functions worker's root level would drop INFO records
        if self.azure_sdk:
            from azure.core.settings import settings
            from azure.core.tracing.ext.opentelemetry_span import OpenTelemetrySpan

            settings.tracing_implementation = OpenTelemetrySpan
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        self._requests = RequestsInstrumentor()
        if not self._requests.is_instrumented_by_opentelemetry:
            # ARM requests are the Azure SDK's (its spans cover them, raw `send_request` paging too):
            # the requests instrumentation would repeat each one.
            arm = [re.escape(host) for host, service in self.hosts.items() if service == "arm"]
            self._requests.instrument(
                tracer_provider=self.tracer_provider,
                response_hook=self._response_hook,
                excluded_urls=",".join(arm) or None,
            )

    def close(self) -> None:
        self.flush(5.0)
        logging.getLogger("synoscd").removeHandler(self.handler)
        if self.azure_sdk:
            from azure.core.settings import settings

            settings.tracing_implementation = None
        if self._requests is not None and self._requests.is_instrumented_by_opentelemetry:
            self._requests.uninstrument()

    def flush(self, timeout_seconds: float) -> None:
        millis = int(timeout_seconds * 1000)
        for provider in (self.tracer_provider, self.logger_provider):
            if hasattr(provider, "force_flush"):
                provider.force_flush(millis)
        if hasattr(self.meter_provider, "force_flush"):
            self.meter_provider.force_flush(millis)
        if self._flush is not None:
            self._flush(timeout_seconds)

    # -- spans -------------------------------------------------------------------------------------
    @contextmanager
    def span(
        self,
        name: str,
        attrs: Mapping[str, Any] | None,
        root: bool = False,
        links: Sequence[Mapping[str, str]] = (),
    ) -> Iterator[_Handle]:
        parent = None
        found: list[Link] = []
        if root:
            current = trace.get_current_span().get_span_context()
            if current.is_valid:  # the webhook's span, a Functions invocation's
                found.append(Link(current, {"synoscd.link": "caller"}))
            for carrier in links:
                ctx = trace.get_current_span(_PROPAGATOR.extract(dict(carrier))).get_span_context()
                if ctx.is_valid:
                    found.append(Link(ctx, {"synoscd.link": "queued-by"}))
            parent = otel_context.Context()  # a new trace: one per pass
        with self.tracer.start_as_current_span(
            name, context=parent, links=found, attributes=_clean(attrs)
        ) as span:
            yield _Handle(span)

    def set_attributes(self, attrs: Mapping[str, Any]) -> None:
        trace.get_current_span().set_attributes(_clean(attrs))

    def trace_id(self) -> str | None:
        ctx = trace.get_current_span().get_span_context()
        return format(ctx.trace_id, "032x") if ctx.is_valid else None

    def carrier(self) -> dict[str, str]:
        out: dict[str, str] = {}
        _PROPAGATOR.inject(out)
        return out

    # -- metrics -------------------------------------------------------------------------------------
    def record(self, name: str, value: float, attrs: Mapping[str, Any] | None) -> None:
        instrument = self._instruments.get(name) or self._create(name)
        kind = BY_NAME[name].kind
        clean = _clean(attrs)
        if kind == "counter":
            instrument.add(value, clean)
        elif kind == "histogram":
            instrument.record(value, clean)
        else:
            instrument.set(value, clean)

    def _create(self, name: str) -> Any:
        spec = BY_NAME[name]  # a name missing from instruments.py is a bug: KeyError
        with self._lock:
            if name not in self._instruments:
                if spec.kind == "counter":
                    made = self.meter.create_counter(name, spec.unit, spec.description)
                elif spec.kind == "histogram":
                    made = self.meter.create_histogram(
                        name,
                        spec.unit,
                        spec.description,
                        explicit_bucket_boundaries_advisory=list(spec.buckets or ()),
                    )
                else:
                    made = self.meter.create_gauge(name, spec.unit, spec.description)
                self._instruments[name] = made
            return self._instruments[name]

    # -- HTTP calls --------------------------------------------------------------------------------------
    def service_of(self, url: str | None) -> str | None:
        host = (urlsplit(url).netloc if url else "").lower()
        return self.hosts.get(host)

    def _response_hook(self, span: Any, request: Any, response: Any) -> None:
        """requests (PyGithub): count GitHub calls and throttling, keep the rate limit remaining."""
        if self.service_of(getattr(request, "url", None)) != "github" or response is None:
            return
        remaining = response.headers.get("X-RateLimit-Remaining")
        status = response.status_code
        method = request.method
        self.record("synoscd.github.calls", 1, {"method": method, "status_code": status})
        if status == 429 or (status == 403 and (remaining == "0" or "Retry-After" in response.headers)):
            self.record("synoscd.github.throttled", 1, {"method": method})
        if remaining is not None and remaining.isdigit():
            self.record("synoscd.github.rate_limit.remaining", int(remaining), None)
            span.set_attribute("github.rate_limit.remaining", int(remaining))


class ArmCalls(SpanProcessor):
    """Counts ARM requests from the Azure SDK's own HTTP spans (azure-core-tracing-opentelemetry):
    every request the SDK sends, retries included, with no hook in our adapters."""

    def __init__(self, pipeline: Callable[[], Pipeline | None]) -> None:
        self._pipeline = pipeline

    def on_end(self, span: ReadableSpan) -> None:
        pipeline = self._pipeline()
        if pipeline is None or span.kind != SpanKind.CLIENT:
            return
        if span.instrumentation_scope is not None and "requests" in span.instrumentation_scope.name:
            return  # only the Azure SDK's own spans: one per request sent
        a = span.attributes or {}
        url = a.get("url.full") or a.get("http.url")
        if pipeline.service_of(str(url) if url else None) != "arm":
            return
        method = a.get("http.request.method") or a.get("http.method")
        status = a.get("http.response.status_code") or a.get("http.status_code")
        pipeline.record("synoscd.arm.calls", 1, {"method": method, "status_code": status})
        if status == 429:
            pipeline.record("synoscd.arm.throttled", 1, {"method": method})


def _current_pipeline() -> Pipeline | None:
    active = telemetry._active
    return active if isinstance(active, Pipeline) else None


class BridgeHandler(LoggingHandler):
    """Python logging -> OpenTelemetry log records. Every `extra=` field and the current pass's fields
    (pass_id, trigger, revision, ...) become attributes, which Application Insights shows as custom
    dimensions; secret-looking keys are masked as in the JSON logs; structured values become JSON."""

    def _get_attributes(self, record: logging.LogRecord) -> tuple[dict[str, Any], str | None]:
        attributes, event_name = super()._get_attributes(record)
        merged = {**telemetry.log_fields(), **attributes}
        out: dict[str, Any] = {}
        for key, value in merged.items():
            if value is None or key.startswith("_"):
                continue
            if key.startswith("exception.") or key.startswith("code."):
                out[key] = value
            elif any(w in key.lower() for w in _SECRET_WORDS):
                out[key] = "********"
            else:
                out[key] = _attribute(value)
        return out, event_name


def hosts_of(settings: Settings) -> dict[str, str]:
    return {
        urlsplit(settings.arm_endpoint).netloc.lower(): "arm",
        urlsplit(settings.github_api_url).netloc.lower(): "github",
    }


def _resource(ts: TelemetrySettings) -> Resource:
    return Resource.create({"service.name": ts.otel_service_name, "service.version": __version__})


def configure(ts: TelemetrySettings, settings: Settings | None = None) -> Pipeline:
    settings = settings or load_settings()
    if ts.mode == "azure-monitor":
        return _azure_monitor(ts, settings)
    return _otlp(ts, settings)


def _azure_monitor(ts: TelemetrySettings, settings: Settings) -> Pipeline:
    from azure.monitor.opentelemetry import configure_azure_monitor

    from synoscd.azure.credentials import make_credential

    assert ts.applicationinsights_connection_string is not None
    configure_azure_monitor(
        connection_string=ts.applicationinsights_connection_string.get_secret_value(),
        # Local (instrumentation key) authentication is off on the deployed component: the exporter
        # gets tokens from SynosCD's managed identity (Monitoring Metrics Publisher).
        credential=make_credential(settings),
        resource=_resource(ts),
        # The distro's own log handler would go on a logger nobody writes to: ours is attached to
        # "synoscd" by the pipeline, with the pass's fields and secrets masked.
        logger_name="synoscd.telemetry.distro",
        instrumentation_options=_DISTRO_INSTRUMENTATIONS,
        span_processors=[ArmCalls(_current_pipeline)],
        enable_live_metrics=False,
        enable_performance_counters=False,
    )
    return Pipeline(
        trace.get_tracer_provider(),
        metrics.get_meter_provider(),
        otel_logs.get_logger_provider(),
        hosts_of(settings),
    )


def _otlp(ts: TelemetrySettings, settings: Settings) -> Pipeline:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

    base = str(ts.otel_exporter_otlp_endpoint).rstrip("/")
    return sdk_pipeline(
        OTLPSpanExporter(endpoint=f"{base}/v1/traces", timeout=5),
        PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics", timeout=5)),
        OTLPLogExporter(endpoint=f"{base}/v1/logs", timeout=5),
        hosts_of(settings),
        resource=_resource(ts),
    )


def sdk_pipeline(
    span_exporter: SpanExporter,
    metric_reader: MetricReader,
    log_exporter: LogRecordExporter,
    hosts: Mapping[str, str],
    *,
    resource: Resource | None = None,
    batch: bool = True,
) -> Pipeline:
    """The SDK's providers with these exporters, set as the process's global providers (the Azure
    SDK's tracing plugin uses the global one). `batch=False` exports each span and log record as it
    ends (tests read them at once)."""
    resource = resource or Resource.create({"service.name": "synoscd", "service.version": __version__})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(ArmCalls(_current_pipeline))
    tracer_provider.add_span_processor(
        BatchSpanProcessor(span_exporter) if batch else SimpleSpanProcessor(span_exporter)
    )
    meter_provider = MeterProvider(metric_readers=[metric_reader], resource=resource)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        BatchLogRecordProcessor(log_exporter) if batch else SimpleLogRecordProcessor(log_exporter)
    )
    with _globals_lock:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        otel_logs.set_logger_provider(logger_provider)
    return Pipeline(tracer_provider, meter_provider, logger_provider, hosts)
