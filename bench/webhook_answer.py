"""How fast the webhook answers GitHub while ARM and GitHub are slow and throttling: the local stack,
the Functions app in the local host (its own process), 12 s of added latency and 429s with
Retry-After 30 on every ARM and GitHub call, and signed pushes POSTed straight to
/api/github/webhook. The answer must not wait for either (it verifies, de-duplicates and queues);
GitHub gives a delivery 10 s. Goal: well under a second.

    .venv/bin/python -m bench.webhook_answer [--pushes 30]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from emulators.launcher import GITHUB_OWNER, GITHUB_REPO, WEBHOOK_SECRET, start_stack
from synoscd.webhook import signature

ROOT = Path(__file__).resolve().parent.parent


def _host(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    with log.open("wb") as out:  # a file, not a pipe nobody drains
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulators.functions_host", "--port", "0"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(r"functions host on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        if m:
            return proc, m.group(1)
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the functions host did not start: {log.read_text(errors='replace')[-2000:]}")


def run(pushes: int = 30) -> dict[str, Any]:
    with start_stack() as stack:
        env = {
            **os.environ,
            **stack.env,
            "SYNOSCD_STATE_TABLE": f"b{uuid.uuid4().hex[:16]}",
            "SYNOSCD_QUEUE_NAME": f"b{uuid.uuid4().hex[:16]}",
            "SYNOSCD_TIMER_SCHEDULE": "0 0 0 1 1 *",
        }
        proc, url = _host(env, stack.workdir / "functions-host.log")
        try:
            for emulator in (stack.arm, stack.github):
                emulator.latency = 12.0
                emulator.faults.clear()
            times: list[float] = []
            statuses: list[int] = []
            for i in range(pushes):
                body = json.dumps(
                    {
                        "ref": "refs/heads/main",
                        "after": f"{i + 1:040x}",
                        "repository": {"full_name": f"{GITHUB_OWNER}/{GITHUB_REPO}"},
                    }
                ).encode()
                headers = {
                    "X-GitHub-Event": "push",
                    "X-GitHub-Delivery": str(uuid.uuid4()),
                    "X-Hub-Signature-256": signature(WEBHOOK_SECRET, body),
                    "Content-Type": "application/json",
                }
                started = time.perf_counter()
                resp = requests.post(f"{url}/api/github/webhook", data=body, headers=headers, timeout=30)
                times.append((time.perf_counter() - started) * 1000)
                statuses.append(resp.status_code)
            warm = times[1:]
            return {
                "pushes": pushes,
                "statuses": sorted(set(statuses)),
                "first (cold instance) ms": round(times[0], 1),
                "warm median ms": round(statistics.median(warm), 1),
                "warm max ms": round(max(warm), 1),
                "arm and github latency s": 12.0,
            }
        finally:
            proc.terminate()  # its queued passes are stuck behind the latency: do not wait for them
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.webhook_answer")
    parser.add_argument("--pushes", type=int, default=30)
    print(json.dumps(run(parser.parse_args().pushes), indent=2))
