"""Cold start of the Function app: `import function_app` in a fresh interpreter, and a rejected
(bad-signature) webhook handled in process. Goals: under 150 ms and under 5 ms."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
IMPORT = "import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
REJECT = """
import json, os, statistics, time
from synoscd.functions import handlers
headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + "0" * 64}
body = json.dumps({"ref": "refs/heads/main", "commits": [{"id": "x" * 40}] * 20}).encode()
handlers.on_webhook(headers, body)  # first call: settings load
times = []
for _ in range(200):
    t = time.perf_counter()
    status, _ = handlers.on_webhook(headers, body)
    times.append((time.perf_counter() - t) * 1000)
    assert status == 401
print(json.dumps({"median_ms": statistics.median(times), "max_ms": max(times)}))
"""


# Telemetry configured as in Azure: the connection string is set, so the first pass will start the
# Azure Monitor distro; importing function_app must not.
TELEMETRY_ENV = {
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
    "IngestionEndpoint=https://127.0.0.1:9/"
}
# What the first pass pays once per instance: OpenTelemetry's setup (OTLP to a closed loopback port,
# so nothing is sent), and importing the Azure Monitor distro (configuring it would call Azure).
SETUP = """
import os, time
t = time.perf_counter()
from synoscd import telemetry
from synoscd.config import Settings
assert telemetry.ensure(Settings())
print((time.perf_counter() - t) * 1000, flush=True)
os._exit(0)
"""


def _python(code: str, **extra: str) -> str:
    env = {**os.environ, "SYNOSCD_GITHUB_WEBHOOK_SECRET": "bench-secret", **extra}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def run(repeats: int = 15) -> dict[str, Any]:
    modules = {
        "function_app": "function_app",
        "all SDKs (for comparison)": "azure.identity, azure.mgmt.appcontainers, azure.data.tables, "
        "azure.keyvault.secrets, github, pydantic, yaml",
    }
    # Interleaved, so the shared machine's load falls on every variant alike.
    variants = {
        **{f"import {label} ms": (IMPORT.format(module=module), {}) for label, module in modules.items()},
        "import function_app ms, telemetry configured": (
            IMPORT.format(module="function_app"),
            TELEMETRY_ENV,
        ),
    }
    times: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(repeats):
        for label, (code, extra) in variants.items():
            times[label].append(float(_python(code, **extra)))
    result: dict[str, Any] = {
        label: {"median": round(statistics.median(ts), 1), "min": round(min(ts), 1)}
        for label, ts in times.items()
    }
    result["telemetry configured / not, import function_app (medians)"] = round(
        statistics.median(times["import function_app ms, telemetry configured"])
        / statistics.median(times["import function_app ms"]),
        2,
    )
    setup = [float(_python(SETUP, OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:9")) for _ in range(5)]
    result["first pass: telemetry setup (OTLP) ms"] = round(statistics.median(setup), 1)
    distro = [float(_python(IMPORT.format(module="azure.monitor.opentelemetry"))) for _ in range(5)]
    result["first pass: import azure.monitor.opentelemetry ms"] = round(statistics.median(distro), 1)
    result["bad-signature webhook in process"] = json.loads(_python(REJECT))
    result["bad-signature webhook in process, telemetry configured"] = json.loads(
        _python(REJECT, **TELEMETRY_ENV)
    )
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
