"""`python -m bench.fleet_bench [--targets 20] [--apps 200] [--workers 1,2,4]`: a fleet on the local stack.

20 targets (`targets/tNN.yaml`, half in a second subscription) of 200 apps each, every app running
the same image. The Functions app runs on the local host (emulators/functions_host.py) with 1, 2 and 4
queue-worker processes; every ARM and GitHub call gets 20 ms of latency at the stand-ins; a long-running
operation takes --lro seconds; SYNOSCD_MAX_CONCURRENT=16 per pass; the ARM write budget is set out of
the way (--budget) so what is measured is the fan-out over workers, not the budget (its effect is
modelled in docs/architecture.md).

Per worker count:
- a no-change timer tick for every target (each due): GitHub requests, ARM requests and state-table
  requests (through a counting proxy in front of Azurite's table endpoint), wall time until every
  target's pass is recorded;
- a fleet-wide change of the one image (one commit touching every app, delivered as a webhook): wall
  time until every target recorded a succeeded pass of that commit, ARM writes and calls.

The apps are seeded through the ARM stand-in's admin API exactly as SynosCD renders them, so the
first passes write nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.__main__ import ROOT, Stack

SUB_B = "00000000-0000-4000-8000-0000000000b2"
APP = """apiVersion: synoscd.io/v1alpha1
kind: App
metadata:
  name: {name}
spec:
  containers:
    - name: web
      image: ghcr.io/contoso/base:{tag}
      cpu: 0.25
      memory: 0.5Gi
"""
TARGET = """apiVersion: synoscd.io/v1alpha1
kind: Target
metadata:
  name: {name}
spec:
  subscriptionId: {sub}
  resourceGroup: rg-{name}
  environment: env-{name}
  path: envs/{name}
"""


class Fleet:
    def __init__(self, stack: Stack, targets: int, apps: int) -> None:
        self.stack = stack
        self.names = [f"t{i:02d}" for i in range(targets)]
        self.apps = apps
        self.sub_a = stack.env["SYNOSCD_AZURE_SUBSCRIPTION_ID"]
        self.subs = {n: (self.sub_a if i < targets // 2 else SUB_B) for i, n in enumerate(self.names)}
        self.owner, self.repo = stack.env["SYNOSCD_GITHUB_REPO_OWNER"], stack.env["SYNOSCD_GITHUB_REPO_NAME"]
        from emulators.storage_proxy import proxy_in_front

        self.proxy, self.store = proxy_in_front(stack.env["SYNOSCD_STATE_STORE"], "Table")
        self.table = f"fleet{int(time.time())}"

    def files(self, tag: str) -> dict[str, str]:
        out = {f"targets/{n}.yaml": TARGET.format(name=n, sub=self.subs[n]) for n in self.names}
        for n in self.names:
            for i in range(self.apps):
                out[f"envs/{n}/{n}-app{i:03d}.yaml"] = APP.format(name=f"{n}-app{i:03d}", tag=tag)
        return out

    def seed(self) -> str:
        """Environments, the repository, and every app as SynosCD would have written it."""
        from synoscd.azure.translate import Target, app_envelope
        from synoscd.manifests.desired import load_desired

        for n in self.names:
            spec = {"name": f"env-{n}", "resourceGroup": f"rg-{n}", "subscription": self.subs[n]}
            self.stack.admin("arm", "POST", "environments", spec)
        files = self.files("1")
        self.stack.commit(files, "a fleet of targets")
        sha = self.head()
        envs = {e["name"]: e for e in self.stack.admin("arm", "GET", "state")["environments"]}
        seeds = []
        for n in self.names:
            env = envs[f"env-{n}"]
            target = Target(env["id"], env["location"], f"{self.owner}/{self.repo}:envs/{n}", sha, n)
            mine = {p: c.encode() for p, c in files.items() if p.startswith(f"envs/{n}/")}
            for res in load_desired(mine).resources:
                body = app_envelope(res.manifest, target)  # type: ignore[arg-type]
                seeds.append(
                    {
                        "name": res.name,
                        "resourceGroup": f"rg-{n}",
                        "subscription": self.subs[n],
                        "envelope": body,
                    }
                )
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda s: self.stack.admin("arm", "POST", "apps", s), seeds))
        return sha

    def head(self) -> str:
        repo = self.stack.env["SYNOSCD_EMULATOR_GITHUB_REPO_DIR"]
        return subprocess.run(
            ["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True
        ).stdout.strip()

    def env(self, **over: str) -> dict[str, str]:
        return {
            **self.stack.env,
            "SYNOSCD_STATE_STORE": self.store,
            "SYNOSCD_STATE_TABLE": self.table,
            "SYNOSCD_AZURE_SUBSCRIPTION_ID": "",
            "SYNOSCD_AZURE_RESOURCE_GROUP": "",
            "SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT": "",
            "SYNOSCD_TIMER_SCHEDULE": "0 0 0 1 1 *",  # the bench ticks the timer itself
            "SYNOSCD_RECONCILE_INTERVAL_SECONDS": "10",
            "SYNOSCD_MAX_CONCURRENT": "16",
            "SYNOSCD_QUEUE_NAME": f"q{self.table}",
            **over,
        }


class Host:
    def __init__(self, fleet: Fleet, workers: int, budget: float) -> None:
        env = {
            **os.environ,
            **fleet.env(SYNOSCD_ARM_WRITE_RATE=str(budget), SYNOSCD_ARM_WRITE_BURST=str(int(budget))),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulators.functions_host", "--port", "0", "--workers", str(workers)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = ""
        while not self.url:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the functions host did not start")
            found = re.search(r"functions host on (http://127\.0\.0\.1:\d+)", line)
            if found:
                self.url = found.group(1)
        import threading

        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()  # type: ignore[union-attr]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def passes(fleet: Fleet) -> dict[str, list[Any]]:
    from synoscd.fleet.targets import table_name
    from synoscd.state import history
    from synoscd.state import table as t

    out = {}
    for n in fleet.names:
        table = t.open_table(fleet.store, table_name=table_name(fleet.table, n))
        out[n] = history.list_passes(table, limit=50)
    return out


def tick(fleet: Fleet) -> dict[str, Any]:
    """The timer function, as the host would run it (in this process: one instance runs the timer)."""
    os.environ.update(fleet.env())
    from synoscd.engine.runtime import reset_runtime
    from synoscd.functions import handlers

    reset_runtime()
    return handlers.on_timer()


def wait_for(fleet: Fleet, done: Any, timeout: float = 1800) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if done(passes(fleet)):
            return time.monotonic() - started
        time.sleep(0.5)
    raise TimeoutError("the fleet did not finish in time")


def calls(fleet: Fleet) -> dict[str, int]:
    arm = fleet.stack.admin("arm", "GET", "calls")["calls"]
    github = fleet.stack.admin("github", "GET", "calls")["calls"]
    table = fleet.proxy.emulator.calls  # type: ignore[attr-defined]
    deployment = [c for c in table if _table_of(c["path"]) == fleet.table.lower()]
    return {
        "arm": len(arm),
        "arm_reads": sum(c["method"] == "GET" for c in arm),
        "arm_writes": sum(c["method"] in ("PUT", "PATCH", "DELETE") for c in arm),
        "arm_list_pages": sum(c["method"] == "GET" and _is_listing(c["path"]) for c in arm),
        "github": len(github),
        "github_paths": sorted({c["path"] for c in github})[:5],
        "table": len(table),
        "table_reads": sum(c["method"] == "GET" for c in table),
        "table_writes": sum(c["method"] != "GET" for c in table),
        # the deployment's table (fleet rows: catalog, summaries, budget, heartbeat) vs the targets'
        "table_deployment": len(deployment),
        "table_deployment_reads": sum(c["method"] == "GET" for c in deployment),
        "table_targets_reads": sum(c["method"] == "GET" for c in table)
        - sum(c["method"] == "GET" for c in deployment),
    }


def _table_of(path: str) -> str:
    """The table a Table service request names: /account/NAME(...) or /account/NAME()?..."""
    parts = path.split("/")
    return re.split(r"[(?]", parts[2])[0].lower() if len(parts) > 2 else ""


def _is_listing(path: str) -> bool:
    return path.rstrip("/").endswith(("/containerApps", "/jobs"))


def clear(fleet: Fleet) -> None:
    fleet.stack.admin("arm", "DELETE", "calls")
    fleet.stack.admin("github", "DELETE", "calls")
    fleet.proxy.emulator.calls.clear()  # type: ignore[attr-defined]


def measure(fleet: Fleet, workers: int, tag: str, budget: float) -> dict[str, Any]:
    host = Host(fleet, workers, budget)
    try:
        # Warm-up: every target due (interval 10 s), one pass each, until every worker knows the commit.
        for _ in range(2):
            time.sleep(10.5)
            before = {n: len(p) for n, p in passes(fleet).items()}
            tick(fleet)
            wait_for(fleet, lambda ps, b=before: all(len(ps[n]) > b[n] for n in fleet.names))
        time.sleep(10.5)
        clear(fleet)
        before = {n: len(p) for n, p in passes(fleet).items()}
        started = time.monotonic()
        decided = tick(fleet)
        seconds = wait_for(fleet, lambda ps: all(len(ps[n]) > before[n] for n in fleet.names))
        nochange = {
            "seconds": round(time.monotonic() - started, 2),
            "queued": len(decided["queued"]),
            **calls(fleet),
        }
        outcomes = {p[0].outcome for p in passes(fleet).values()}
        nochange["outcomes"] = sorted(outcomes)
        # The fleet-wide change: one image, every app of every target, one push.
        fleet.stack.commit(
            {p: c for p, c in fleet.files(tag).items() if p.startswith("envs/")}, f"base:{tag}"
        )
        sha = fleet.head()
        clear(fleet)
        started = time.monotonic()
        spec = {
            "url": f"{host.url}/api/github/webhook",
            "secret": fleet.stack.env["SYNOSCD_GITHUB_WEBHOOK_SECRET"],
            "event": "push",
            "owner": fleet.owner,
            "name": fleet.repo,
        }
        answer = fleet.stack.admin("github", "POST", "webhooks/deliver", spec)
        assert answer["status"] == 202, answer

        def converged(ps: dict[str, list[Any]]) -> bool:
            return all(
                any(p.revision == sha and p.outcome == "succeeded" for p in ps[n]) for n in fleet.names
            )

        wait_for(fleet, converged)
        change = {"seconds": round(time.monotonic() - started, 2), **calls(fleet)}
        images = {
            r["body"]["properties"]["template"]["containers"][0]["image"]
            for r in fleet.stack.admin("arm", "GET", "state")["resources"]
            if r["resourceGroup"].startswith("rg-t")
        }
        change["images"] = sorted(images)
        return {"workers": workers, "nochange_tick": nochange, "change": change, "seconds_per_tick": seconds}
    finally:
        host.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet_bench", description=__doc__)
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--apps", type=int, default=200)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--lro", type=float, default=1.0)
    parser.add_argument(
        "--budget", type=float, default=10000.0, help="ARM writes per second per subscription"
    )
    args = parser.parse_args()
    stack = Stack()
    results: list[dict[str, Any]] = []
    try:
        fleet = Fleet(stack, args.targets, args.apps)
        stack.admin("arm", "PUT", "config", {"provisioningDelay": args.lro, "pageSize": 100})
        fleet.seed()
        # A fleet-wide change reads one blob per changed file (20 x 200 = 4,000), and a new worker
        # process reads every target's files once: more than the stand-in's default 5,000 requests an
        # hour (GitHub's for an installation). Raised here so the bench measures the fan-out; the
        # limit itself is part of the model in docs/architecture.md.
        stack.admin("github", "PUT", "ratelimit", {"limit": 1_000_000, "remaining": 1_000_000})
        for service in ("arm", "github"):
            stack.admin(service, "PUT", "latency", {"seconds": args.latency})
        for i, workers in enumerate(int(w) for w in args.workers.split(",")):
            result = measure(fleet, workers, str(i + 2), args.budget)
            print(json.dumps(result), flush=True)
            results.append(result)
    finally:
        stack.stop()
    base = next((r for r in results if r["workers"] == 1), None)
    for r in results:
        if base:
            r["change"]["speedup_vs_1"] = round(base["change"]["seconds"] / r["change"]["seconds"], 2)
    print(json.dumps({"args": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
