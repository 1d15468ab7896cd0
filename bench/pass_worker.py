"""One measured pass in a process of its own (so peak RSS is SynosCD's alone). Prints one JSON line.

Scenarios: converge (pass until nothing is written), nochange (a warm no-change pass),
change (a pass applying whatever the last commit changed), and the seed SynosCD's strategy for
comparison: seq-nochange / seq-change (per app: GET, compare, PUT and wait for it, one after another).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from typing import Any

import requests

from synoscd.config import load_settings
from synoscd.engine.reconcile import run_pass
from synoscd.engine.runtime import get_runtime


def admin(service_url: str, method: str, path: str, body: Any = None) -> Any:
    import os

    resp = requests.request(
        method, f"{service_url}/_admin/{path}", json=body, timeout=30, verify=os.environ["REQUESTS_CA_BUNDLE"]
    )
    resp.raise_for_status()
    return resp.json()


def counted(rt: Any, fn: Any) -> dict[str, Any]:
    arm, gh = rt.settings.arm_endpoint, rt.settings.github_api_url
    admin(arm, "DELETE", "calls")
    admin(gh, "DELETE", "calls")
    started = time.perf_counter()
    detail = fn()
    elapsed = time.perf_counter() - started
    arm_calls = admin(arm, "GET", "calls")["calls"]
    gh_calls = admin(gh, "GET", "calls")["calls"]
    return {
        "seconds": round(elapsed, 3),
        "arm_calls": len(arm_calls),
        "arm_writes": sum(c["method"] in ("PUT", "DELETE", "PATCH") for c in arm_calls),
        "github_calls": len(gh_calls),
        **detail,
    }


ROUNDS = 5


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median duration (its call counts and outcome come with it)."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return ordered[len(ordered) // 2]


def pass_detail(result: Any) -> dict[str, Any]:
    detail = {"outcome": result.outcome, "counts": result.counts}
    if getattr(result, "synthesis", None) is not None:  # compositions: which synthesizers ran
        detail["synthesis"] = result.synthesis
    return detail


def sequential(rt: Any) -> dict[str, Any]:
    """The seed SynosCD's loop: for each desired app, GET it, compare, and PUT-and-wait when it differs."""
    from synoscd.azure.translate import Target, app_envelope, diff
    from synoscd.manifests.desired import load_desired

    snapshot = rt.source().snapshot()
    desired = load_desired(snapshot.files)
    env = rt.arm.environment()
    target = Target(env.id, env.location, snapshot.source, snapshot.revision)
    written = 0
    for res in desired.resources:
        body = app_envelope(res.manifest, target)
        live = rt.arm.get("App", res.name)
        if live is None or diff(body, live):
            rt.arm.begin_put("App", res.name, body).result()
            written += 1
    return {"written": written}


def main(scenario: str) -> None:
    rt = get_runtime(load_settings())
    import os

    if os.environ.get("SYNOSCD_BENCH_TELEMETRY") == "memory":  # bench/telemetry.py: telemetry on
        from bench.telemetry import install_memory_pipeline

        install_memory_pipeline(rt.settings)
    out: dict[str, Any] = {"scenario": scenario}
    if scenario == "converge":
        for _ in range(5):
            result = run_pass("bench", rt=rt, wait_seconds=300)
            if not result.plan.writes:
                break
        out.update(pass_detail(result))
    elif scenario == "nochange":
        cold = counted(rt, lambda: pass_detail(run_pass("bench", rt=rt)))
        warm = [counted(rt, lambda: pass_detail(run_pass("bench", rt=rt))) for _ in range(ROUNDS)]
        out.update(cold=cold, warm=median_of(warm), warm_seconds=[w["seconds"] for w in warm])
    elif scenario == "change":
        # A warm instance: one pass before each commit; the driver commits, then says go.
        rounds = []
        for _ in range(ROUNDS):
            run_pass("bench", rt=rt)
            print("ready", flush=True)
            sys.stdin.readline()
            rounds.append(counted(rt, lambda: pass_detail(run_pass("bench", rt=rt, wait_seconds=120))))
        out.update(median_of(rounds), seconds_each=[r["seconds"] for r in rounds])
    elif scenario in ("seq-nochange", "seq-change"):
        rt.source().snapshot()  # warm the source like the engine's measurements
        if scenario == "seq-change":
            print("ready", flush=True)
            sys.stdin.readline()
        out.update(counted(rt, lambda: sequential(rt)))
    from synoscd.sources.factory import flush_warm_sources

    flush_warm_sources()  # as the CLI does before it exits: the next (cold) worker finds the cache
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
