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


def _python(code: str) -> str:
    env = {**os.environ, "SYNOSCD_GITHUB_WEBHOOK_SECRET": "bench-secret"}
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
    result: dict[str, Any] = {}
    for label, module in modules.items():
        times = [float(_python(IMPORT.format(module=module))) for _ in range(repeats)]
        result[f"import {label} ms"] = {
            "median": round(statistics.median(times), 1),
            "min": round(min(times), 1),
        }
    result["bad-signature webhook in process"] = json.loads(_python(REJECT))
    return result


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
