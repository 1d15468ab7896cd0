"""Telemetry for the engine: spans, metrics and log fields, through OpenTelemetry when it is configured
and at no cost when it is not.

This module imports nothing from OpenTelemetry. `ensure()` reads where telemetry goes
(config.TelemetrySettings: Application Insights, an OTLP collector, or nothing) and only then imports
the SDK (setup.py). Until then, and whenever telemetry is off, `span()` returns one shared no-op
context manager, `bind()` returns the function it was given and the metric helpers return at once,
so `import function_app` and a pass without telemetry pay nothing (bench/RESULTS.md).

Instrument names and units: instruments.py and docs/telemetry.md.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

log = logging.getLogger("synoscd.telemetry")

F = TypeVar("F", bound=Callable[..., Any])

_active: Any = None  # setup.Pipeline while telemetry is on
_configured = False
_lock = threading.Lock()
# Fields every log record of the current pass carries (pass_id, trigger, revision, ...): a mutable
# dict per pass, shared by the threads the pass binds (bind() copies the context, not the dict).
_fields: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "synoscd_fields", default=None
)
# Trace contexts (W3C traceparent carriers) the next pass span links to: the webhook that queued it.
_links: contextvars.ContextVar[tuple[Mapping[str, str], ...]] = contextvars.ContextVar(
    "synoscd_links", default=()
)


class _NoSpan:
    trace_id: str | None = None

    def set(self, key: str, value: Any) -> None:
        pass

    def fail(self, message: str) -> None:
        pass


class _NoContext:
    """One reusable no-op context manager: a span costs one attribute check when telemetry is off."""

    def __enter__(self) -> _NoSpan:
        return NO_SPAN

    def __exit__(self, *exc: object) -> bool:
        return False


NO_SPAN = _NoSpan()
_NO_CONTEXT = _NoContext()


# -- switching on and off ----------------------------------------------------------------------------


def enabled() -> bool:
    return _active is not None


def ensure(settings: Any = None) -> bool:
    """Configure telemetry once per process from the environment; True when it is on. Never raises:
    telemetry that cannot start is logged and stays off (a pass must not fail for it)."""
    global _configured
    if _configured:
        return _active is not None
    with _lock:
        if _configured:
            return _active is not None
        try:
            from synoscd.config import load_telemetry_settings

            ts = load_telemetry_settings()
            if ts.mode != "off":
                from synoscd.telemetry import setup

                install(setup.configure(ts, settings))
        except Exception as exc:
            log.warning("telemetry not started: %s", str(exc).splitlines()[0][:300] if str(exc) else exc)
        _configured = True
    return _active is not None


def install(pipeline: Any) -> None:
    """Use this pipeline (setup.configure, or tests' in-memory one) from now on."""
    global _active, _configured
    _active = pipeline
    _configured = True


def uninstall() -> None:
    """Back to off (tests); the pipeline's instrumentations are removed."""
    global _active
    pipeline, _active = _active, None
    if pipeline is not None:
        pipeline.close()


def flush(timeout_seconds: float = 5.0) -> None:
    """Export what is buffered (the CLI, before it exits)."""
    if _active is not None:
        _active.flush(timeout_seconds)


# -- spans -------------------------------------------------------------------------------------------------


def span(name: str, attrs: Mapping[str, Any] | None = None) -> Any:
    """A child span of the current one, as a context manager yielding a handle with set()/fail()."""
    if _active is None:
        return _NO_CONTEXT
    return _active.span(name, attrs)


@contextmanager
def pass_span(trigger: str, attrs: Mapping[str, Any] | None = None) -> Iterator[Any]:
    """The root span of a pass: a new trace (one trace per pass), linked to the span that was current
    (a webhook's, a Functions invocation's) and to any trace context queued with the request. Log
    records inside carry the pass's fields (see annotate)."""
    if _active is None:
        yield NO_SPAN
        return
    links = _links.get()
    token = _fields.set({"trigger": trigger})
    try:
        with _active.span(
            "synoscd.pass", {"synoscd.trigger": trigger, **(attrs or {})}, root=True, links=links
        ) as sp:
            yield sp
    finally:
        _fields.reset(token)


class _Step:
    __slots__ = ("_cm", "handle")

    def __init__(self, cm: Any) -> None:
        self._cm = cm
        self.handle = cm.__enter__()

    def end(self) -> None:
        self._cm.__exit__(None, None, None)


class _NoStep:
    handle = NO_SPAN

    def end(self) -> None:
        pass


_NO_STEP = _NoStep()


def start(name: str, attrs: Mapping[str, Any] | None = None) -> Any:
    """A span over a stretch of code that `end()` closes (where a `with` block would re-indent a
    long function); it is the current span until then."""
    if _active is None:
        return _NO_STEP
    return _Step(_active.span(name, attrs))


def annotate(**fields: Any) -> None:
    """Add fields (pass_id, revision, ...) to the current pass: its span's attributes and every log
    record from here on. None values are left out."""
    if _active is None:
        return
    current = _fields.get()
    values = {k: v for k, v in fields.items() if v is not None}
    if current is not None:
        current.update(values)
    _active.set_attributes({f"synoscd.{k}": v for k, v in values.items()})


def log_fields() -> Mapping[str, Any]:
    """The current pass's fields, for the log bridge."""
    return _fields.get() or {}


def traced(name: str) -> Callable[[F], F]:
    """Decorator: the function runs in a span of this name when telemetry is on."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            if _active is None:
                return fn(*args, **kwargs)
            with _active.span(name, None):
                return fn(*args, **kwargs)

        return inner  # type: ignore[return-value]

    return wrap


def bind(fn: F) -> F:
    """The function, run in the caller's context wherever it runs (a pool thread): its spans stay in
    the pass's trace and its log records carry the pass's fields. Off: the function itself."""
    if _active is None:
        return fn
    captured = contextvars.copy_context()

    def inner(*args: Any, **kwargs: Any) -> Any:
        return captured.copy().run(fn, *args, **kwargs)

    return inner  # type: ignore[return-value]


def trace_id() -> str | None:
    """The current trace id (32 hex digits), for pass records and the CLI; None when off."""
    return None if _active is None else _active.trace_id()


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers (traceparent), to put in a queue message."""
    return {} if _active is None else _active.carrier()


@contextmanager
def linked(*carriers: Mapping[str, str] | None) -> Iterator[None]:
    """The pass started inside links to these trace contexts (e.g. the webhook that queued it)."""
    found = tuple(c for c in carriers if c)
    token = _links.set(_links.get() + found)
    try:
        yield
    finally:
        _links.reset(token)


# -- metrics -------------------------------------------------------------------------------------------------


def count(name: str, value: float = 1, attrs: Mapping[str, Any] | None = None) -> None:
    if _active is not None:
        _active.record(name, value, attrs)


def observe(name: str, value: float, attrs: Mapping[str, Any] | None = None) -> None:
    """A histogram measurement or a gauge value (the instrument's kind decides)."""
    if _active is not None:
        _active.record(name, value, attrs)
