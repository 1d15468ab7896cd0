"""`python -m bench.sync_command [--apps N] [--changes K] [--rounds R] [--seq-rounds S]
[--seq-change-rounds C]`: whole
`synos sync --yes -o json` commands measured from outside, as an operator (or a CI job) runs them:
a fresh process each time, imports, settings, the state table, the source, the listing, the plan, the
writes and the records included.

The local stack runs in its own process; every ARM and GitHub call gets 20 ms of latency at the
stand-ins (`PUT /_admin/latency`, the same as a proxy in front of them adding 20 ms per call). Two
workloads, each a median of R commands: a no-change pass over N apps (nothing to write), and a pass
applying K changed apps (2 s long-running operations, SYNOSCD_MAX_CONCURRENT=16). Beside them, the
seed SynosCD's sequential strategy (bench/pass_worker.py seq-*: per app GET, compare, PUT and wait,
one after another) over the same apps: S no-change runs, C change runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.__main__ import ROOT, Stack, apps
from synoscd.config import Settings

WRITE_RATE = float(Settings.model_fields["arm_write_rate"].default)


def synos_sync(stack: Stack, **env: str) -> dict[str, Any]:
    stack.admin("arm", "DELETE", "calls")
    stack.admin("github", "DELETE", "calls")
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "synoscd", "sync", "--yes", "-o", "json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **stack.env, **env},
        timeout=600,
    )
    seconds = time.perf_counter() - started
    if out.returncode not in (0, 1):
        raise RuntimeError(f"synos sync failed ({out.returncode}): {out.stderr[-2000:]}")
    doc = json.loads(out.stdout)
    arm = stack.admin("arm", "GET", "calls")["calls"]
    github = stack.admin("github", "GET", "calls")["calls"]
    return {
        "seconds": round(seconds, 3),
        "outcome": doc["outcome"],
        "counts": doc["counts"],
        "arm_calls": len(arm),
        "arm_writes": sum(c["method"] in ("PUT", "PATCH", "DELETE") for c in arm),
        "github_calls": len(github),
    }


def median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {
        **ordered[len(ordered) // 2],
        "median_seconds": round(statistics.median(r["seconds"] for r in runs), 3),
        "all_seconds": [r["seconds"] for r in runs],
    }


def run(
    n: int, k: int, rounds: int, seq_rounds: int, seq_change_rounds: int, latency: float, lro: float
) -> dict[str, Any]:
    stack = Stack()
    try:
        stack.commit(apps(n, "1"), f"{n} apps")
        stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.01, "pageSize": 100})
        setup = synos_sync(stack, SYNOSCD_MAX_CONCURRENT="32", SYNOSCD_PASS_WAIT_SECONDS="300")
        while setup["arm_writes"]:
            setup = synos_sync(stack, SYNOSCD_MAX_CONCURRENT="32", SYNOSCD_PASS_WAIT_SECONDS="300")
        for service in ("arm", "github"):
            stack.admin(service, "PUT", "latency", {"seconds": latency})
        synos_sync(stack)  # the first command after converging: caches in the table are written
        out: dict[str, Any] = {"nochange": median([synos_sync(stack) for _ in range(rounds)])}
        stack.admin("arm", "PUT", "config", {"provisioningDelay": lro})
        changes = []
        for r in range(rounds):
            # The subscription's ARM write budget (SynosCD's default, like ARM's own bucket) refills at
            # arm_write_rate per second: back-to-back 100-write passes would measure the budget, not
            # the pass. Wait until a round's writes are refilled, as between pushes.
            time.sleep(k / WRITE_RATE + 1)
            stack.commit(apps(n, f"2{r}", range(k)), f"change {k} apps, round {r}")
            changes.append(synos_sync(stack, SYNOSCD_MAX_CONCURRENT="16"))
        out["change"] = median(changes)
        stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.01})
        out["seq_nochange"] = median([stack.worker("seq-nochange") for _ in range(seq_rounds)])
        out["nochange_ratio"] = round(
            out["seq_nochange"]["median_seconds"] / out["nochange"]["median_seconds"], 1
        )
        stack.admin("arm", "PUT", "config", {"provisioningDelay": lro})
        seq_changes = []
        for r in range(seq_change_rounds):
            seq_changes.append(
                stack.worker(
                    "seq-change", lambda _r, r=r: stack.commit(apps(n, f"3{r}", range(k)), f"seq change {r}")
                )
            )
        out["seq_change"] = median(seq_changes)
        out["change_ratio"] = round(out["seq_change"]["median_seconds"] / out["change"]["median_seconds"], 1)
        return out
    finally:
        stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sync_command", description=__doc__)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seq-rounds", type=int, default=3)
    parser.add_argument("--seq-change-rounds", type=int, default=1, help="each takes about 4 minutes")
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--lro", type=float, default=2.0)
    args = parser.parse_args()
    result = run(
        args.apps, args.changes, args.rounds, args.seq_rounds, args.seq_change_rounds, args.latency, args.lro
    )
    print(json.dumps({"args": vars(args), "result": result}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
