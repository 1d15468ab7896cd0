"""Telemetry's cost on the 1,000-app no-change pass: the same warm pass with telemetry off and on
(the OpenTelemetry SDK with in-memory exporters, batch processors as in production), each in fresh
worker processes, alternating. Run: `python -m bench.telemetry [--apps N] [--workers K]`."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from typing import Any

from bench.__main__ import Stack, apps


def install_memory_pipeline(settings: Any) -> None:
    """In a worker: telemetry on, exporting to memory (spans, metrics and logs are all produced)."""
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from synoscd import telemetry
    from synoscd.telemetry.setup import hosts_of, sdk_pipeline

    telemetry.install(
        sdk_pipeline(
            InMemorySpanExporter(), InMemoryMetricReader(), InMemoryLogRecordExporter(), hosts_of(settings)
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.telemetry", description=__doc__)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument(
        "--workers", type=int, default=3, help="worker processes per mode (5 warm passes each)"
    )
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    stack = Stack()
    try:
        stack.commit(apps(args.apps, "1"), f"{args.apps} apps")
        stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.01, "pageSize": 100})
        stack.worker("converge", SYNOSCD_MAX_CONCURRENT="32")
        for service in ("arm", "github"):
            stack.admin(service, "PUT", "latency", {"seconds": args.latency})
        warm: dict[str, list[float]] = {"off": [], "memory": []}
        rss: dict[str, list[float]] = {"off": [], "memory": []}
        for i in range(args.workers):
            for mode in ("off", "memory") if i % 2 == 0 else ("memory", "off"):
                out = stack.worker("nochange", SYNOSCD_BENCH_TELEMETRY=mode)
                warm[mode] += out["warm_seconds"]
                rss[mode].append(out["peak_rss_mb"])
                print(f"{mode}: warm {out['warm_seconds']}", file=sys.stderr, flush=True)
    finally:
        stack.stop()
    result = {
        mode: {
            "warm_median_s": round(statistics.median(times), 3),
            "warm_min_s": round(min(times), 3),
            "passes": len(times),
            "peak_rss_mb": max(rss[mode]),
        }
        for mode, times in warm.items()
    }
    result["ratio_on_over_off"] = round(result["memory"]["warm_median_s"] / result["off"]["warm_median_s"], 3)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
