"""Every metric SynosCD records: name, kind, unit (UCUM, as OpenTelemetry asks), description and the
attributes it carries. docs/telemetry.md lists the same table; a unit test keeps the two equal."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Instrument:
    name: str
    kind: str  # counter | histogram | gauge
    unit: str
    description: str
    attributes: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None  # histogram bucket boundaries (advisory)


PASS_SECONDS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0)

INSTRUMENTS: tuple[Instrument, ...] = (
    Instrument(
        "synoscd.passes",
        "counter",
        "{pass}",
        "Reconcile passes finished, by trigger and outcome (succeeded, partial, failed, source-error, error)",
        ("trigger", "outcome"),
    ),
    Instrument(
        "synoscd.pass.duration",
        "histogram",
        "s",
        "Duration of a reconcile pass",
        ("trigger", "outcome"),
        PASS_SECONDS,
    ),
    Instrument(
        "synoscd.resources",
        "gauge",
        "{resource}",
        "Apps and jobs by sync state and health, as the last pass recorded them",
        ("kind", "sync_state", "health"),
    ),
    Instrument(
        "synoscd.drift.detected",
        "counter",
        "{resource}",
        "Resources found changed outside Git (live differs from the manifest synced at this commit)",
        ("kind",),
    ),
    Instrument(
        "synoscd.drift.healed",
        "counter",
        "{resource}",
        "Drifted resources written back to their manifest",
        ("kind",),
    ),
    Instrument(
        "synoscd.writes",
        "counter",
        "{write}",
        "ARM writes by action (create, update, heal, delete) and result (ok, failed, progressing)",
        ("kind", "action", "result"),
    ),
    Instrument(
        "synoscd.prune.blocked",
        "counter",
        "{pass}",
        "Passes that held back a prune, by reason (incomplete, empty, fraction)",
        ("reason",),
    ),
    Instrument(
        "synoscd.lease.waits",
        "counter",
        "{request}",
        "Pass requests that found another pass running and were queued behind it",
        ("trigger",),
    ),
    Instrument(
        "synoscd.lease.coalesced",
        "counter",
        "{pass}",
        "Extra passes run for the requests that arrived while a pass held the lease",
    ),
    Instrument(
        "synoscd.arm.calls",
        "counter",
        "{request}",
        "HTTP requests to Azure Resource Manager, by method and status code",
        ("method", "status_code"),
    ),
    Instrument(
        "synoscd.arm.throttled",
        "counter",
        "{request}",
        "ARM requests answered 429 (throttled)",
        ("method",),
    ),
    Instrument(
        "synoscd.github.calls",
        "counter",
        "{request}",
        "HTTP requests to the GitHub API, by method and status code",
        ("method", "status_code"),
    ),
    Instrument(
        "synoscd.github.throttled",
        "counter",
        "{request}",
        "GitHub requests refused for a rate limit (429, or 403 with no requests remaining)",
        ("method",),
    ),
    Instrument(
        "synoscd.github.rate_limit.remaining",
        "gauge",
        "{request}",
        "GitHub's X-RateLimit-Remaining on its last answer",
    ),
    Instrument(
        "synoscd.webhook.deliveries",
        "counter",
        "{delivery}",
        "GitHub webhook deliveries by result (accepted, queued, duplicate, ignored, rejected, error)",
        ("result",),
    ),
    Instrument(
        "synoscd.notifications",
        "counter",
        "{notification}",
        "Notifications by provider, event and result (sent, failed, duplicate, rate-limited)",
        ("provider", "event", "result"),
    ),
    Instrument(
        "synoscd.synthesis.runs",
        "counter",
        "{run}",
        "Synthesizer runs by synthesizer and result (recorded once synthesizers exist)",
        ("synthesizer", "result"),
    ),
    Instrument(
        "synoscd.rollout.progress",
        "gauge",
        "%",
        "Traffic share of the new revision during a progressive rollout (recorded once rollouts exist)",
        ("app",),
    ),
)

BY_NAME = {i.name: i for i in INSTRUMENTS}
