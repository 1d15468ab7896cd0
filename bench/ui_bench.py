"""The dashboard's cost: `python -m bench.ui_bench [--apps 1000] [--runs 15]`.

1. Render only: the apps page for N apps from in-memory state rows (rows -> filter/sort -> Jinja2),
   warm (templates compiled once per process, as on a warm instance) and the first render (compile).
2. Served: the whole GET /api/ui/apps and /api/ui/ handlers against Azurite holding N status rows
   (the table reads included; no ARM or GitHub call is made: the stand-ins count them).
Medians over the runs; the goal is "well under 300 ms" for (1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _states(n: int) -> tuple[dict[str, Any], Any, Any]:
    from synoscd.state.apps import AppFlags, AppStatus, Flags
    from synoscd.state.history import PassRecord

    statuses = {}
    sync = ["Synced"] * 8 + ["OutOfSync", "Failed"]
    for i in range(n):
        s = AppStatus(
            f"app-{i:04d}",
            "App" if i % 10 else "Job",
            desired_revision="a" * 40,
            applied_revision="a" * 40,
            sync_state=sync[i % 10],
            health="Healthy" if i % 7 else "Degraded",
            message="" if i % 10 < 8 else "ghcr.io/contoso/app: manifest unknown (retry in 60 s)",
            last_synced_at=time.time() - i,
            extra={"wave": i % 3, "applied": [1, "a" * 40]},
        )
        statuses[s.row_key] = s
    flags = Flags()
    for i in range(0, n, 50):
        flags[f"app-{i:04d}"] = AppFlags(f"app-{i:04d}", True, "ann@host", time.time(), "migration")
    last = PassRecord("p1", "timer", time.time() - 5, time.time(), "a" * 40, outcome="succeeded")
    return statuses, flags, last


def _median_ms(fn: Any, runs: int) -> dict[str, float]:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return {
        "median": round(statistics.median(times), 1),
        "min": round(min(times), 1),
        "max": round(max(times), 1),
    }


def render_only(n: int, runs: int) -> dict[str, Any]:
    from synoscd.ui import data, render

    statuses, flags, last = _states(n)
    common = {"base": "/api/ui", "user": None, "now": "now", "link": lambda sha: None}

    def page(query: dict[str, str]) -> int:
        d = data.select(data._rows(statuses, flags, last), query)
        return len(render.render("apps.html", page="apps", d=d, **common))

    t = time.perf_counter()
    size = page({})
    first = round((time.perf_counter() - t) * 1000, 1)
    return {
        "apps": n,
        "html bytes": size,
        "first render ms (templates compiled)": first,
        "apps page, all rows, ms": _median_ms(lambda: page({}), runs),
        "apps page, sorted by health desc, ms": _median_ms(
            lambda: page({"sort": "health", "dir": "desc"}), runs
        ),
        "apps page, filtered to 1 row, ms": _median_ms(lambda: page({"q": "app-0042"}), runs),
    }


def served(n: int, runs: int) -> dict[str, Any]:
    from emulators.launcher import start_stack

    stack = start_stack()
    try:
        os.environ.update(stack.env)
        os.environ["SYNOSCD_STATE_TABLE"] = f"uibench{uuid.uuid4().hex[:8]}"
        os.environ["SYNOSCD_UI_AUTH"] = "loopback"
        from synoscd.engine.runtime import get_runtime
        from synoscd.state import apps, history
        from synoscd.ui import http

        rt = get_runtime()
        statuses, flags, last = _states(n)
        for s in statuses.values():
            s.etag = None
        apps.put_statuses(rt.table, list(statuses.values()))
        for name, f in list(flags.items())[:20]:
            apps.set_suspended(rt.table, name, True, f.by or "", f.reason)
        history.record_pass(rt.table, last)
        calls_before = (len(stack.arm.calls), len(stack.github.calls))

        def get(path: str) -> None:
            status, _headers, _body = http.ui(path, {}, {}, f"http://127.0.0.1:7071/api/ui/{path}")
            assert status == 200, status

        get("apps")  # warm: settings, table client, templates
        out = {
            "GET /api/ui/apps (table reads + render) ms": _median_ms(lambda: get("apps"), runs),
            "GET /api/ui/ overview ms": _median_ms(lambda: get(""), runs),
        }
        after = (len(stack.arm.calls), len(stack.github.calls))
        out["ARM and GitHub calls made"] = after[0] - calls_before[0] + after[1] - calls_before[1]
        return out
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ui_bench", description=__doc__)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--render-only", action="store_true", help="skip the served measurement (no stack)")
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"render": render_only(args.apps, args.runs)}
    if not args.render_only:
        report["served"] = served(args.apps, args.runs)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
