"""`python -m bench [--apps N] [--changes K] [--quick]`: the benchmarks of bench/RESULTS.md.

The local stack runs in its own process (the launcher); each measured pass runs in a fresh worker
process so its peak RSS is SynosCD's alone. Both strategies run in the same invocation, side by side.
Progress goes to stderr as it happens; at the end stdout gets the whole report as JSON, then the same
figures as a table for people.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from bench import validate_bench
from emulators.launcher import read_env_file

ROOT = Path(__file__).resolve().parent.parent
APP = """apiVersion: synoscd.io/v1alpha1
kind: App
metadata:
  name: {name}
spec:
  containers:
    - name: web
      image: ghcr.io/contoso/{name}:{tag}
      cpu: 0.25
      memory: 0.5Gi
  ingress:
    enabled: true
    external: true
    targetPort: 8080
  scale:
    minReplicas: 1
    maxReplicas: 3
"""


class Stack:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="synoscd-bench-"))
        env_file = self.dir / "stack.env"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "emulators", "up", "--env-file", str(env_file), "--no-ops"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 90
        while not env_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the local stack did not start")
            time.sleep(0.05)
        self.env = read_env_file(env_file)
        self.env["SYNOSCD_STATE_TABLE"] = "bench" + str(int(time.time()))

    def admin(self, service: str, method: str, path: str, body: Any = None) -> Any:
        url = {"arm": self.env["SYNOSCD_ARM_ENDPOINT"], "github": self.env["SYNOSCD_GITHUB_API_URL"]}[service]
        resp = requests.request(
            method, f"{url}/_admin/{path}", json=body, verify=self.env["REQUESTS_CA_BUNDLE"], timeout=60
        )
        resp.raise_for_status()
        return resp.json()

    def commit(self, files: dict[str, str], message: str) -> None:
        repo = Path(self.env["SYNOSCD_EMULATOR_GITHUB_REPO_DIR"])
        for rel, text in files.items():
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text(text)
        git = ["git", "-C", str(repo), "-c", "user.name=bench", "-c", "user.email=bench@synoscd.invalid"]
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", message], check=True)

    def worker(self, scenario: str, before: Any = None, **env: str) -> dict[str, Any]:
        """Run a worker; each time it says 'ready', call `before(round)` (a commit), then say go."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.pass_worker", scenario],
            cwd=ROOT,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, **self.env, **env},
        )
        assert proc.stdin is not None and proc.stdout is not None
        for round_, line in enumerate(proc.stdout):
            if line.strip() != "ready":
                last = line
                break
            before(round_)
            proc.stdin.write("go\n")
            proc.stdin.flush()
        else:
            last = ""
        stdout, stderr = proc.communicate(timeout=1800)
        if proc.returncode != 0:
            raise RuntimeError(f"worker {scenario} failed: {stderr[-3000:]}")
        return json.loads((last + stdout).strip().splitlines()[-1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def apps(n: int, tag: str, only: range | None = None) -> dict[str, str]:
    return {f"apps/app-{i:04d}.yaml": APP.format(name=f"app-{i:04d}", tag=tag) for i in (only or range(n))}


STARTED = time.monotonic()


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.0f} s] {message}", file=sys.stderr, flush=True)


def pass_benchmarks(n: int, k: int, latency: float, lro: float, concurrency: int) -> dict[str, Any]:
    progress("starting the local stack")
    stack = Stack()
    try:
        progress(f"committing {n} apps and converging them once (setup, not measured)")
        stack.commit(apps(n, "1"), f"{n} apps")
        stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.01, "pageSize": 100})
        setup = stack.worker("converge", SYNOSCD_MAX_CONCURRENT="32")
        for service in ("arm", "github"):
            stack.admin(service, "PUT", "latency", {"seconds": latency})
        results: dict[str, Any] = {"setup": setup}
        progress(f"no-change pass, engine: 1 cold + 5 warm rounds ({latency * 1000:.0f} ms per call)")
        results["engine_nochange"] = stack.worker("nochange")
        progress(f"no-change pass, sequential strategy ({n} GETs one after another)")
        results["seq_nochange"] = stack.worker("seq-nochange")
        stack.admin("arm", "PUT", "config", {"provisioningDelay": lro})
        progress(f"{k}-change pass, engine: 5 rounds, max_concurrent {concurrency}, {lro:g} s LROs")

        def next_round(r: int) -> None:
            progress(f"  round {r + 1} of 5")
            stack.commit(apps(n, f"2{r}", range(k)), f"change {k} apps, round {r}")

        results["engine_change"] = stack.worker("change", next_round, SYNOSCD_MAX_CONCURRENT=str(concurrency))
        progress(f"{k}-change pass, sequential strategy (each PUT waits for its LRO: the longest step)")
        results["seq_change"] = stack.worker(
            "seq-change", lambda r: stack.commit(apps(n, "3", range(k)), f"change {k} apps again")
        )
        return results
    finally:
        progress("stopping the local stack")
        stack.stop()


def _ratio(slow: float | None, fast: float | None) -> str:
    return f"{slow / fast:.0f}x" if slow and fast else ""


def summary(report: dict[str, Any]) -> str:
    """The report's figures as a table for people (the JSON above carries everything)."""
    from synoscd.cli.output import table

    args, v, p = report["args"], report["validate"], report.get("pass") or {}
    rows: list[tuple[Any, ...]] = [
        (f"parse + validate {v['files']} files, cold", f"{v['cold_median_s']:.2f} s", "", "", ""),
        (f"parse + validate {v['files']} files, warm", f"{v['warm_median_s']:.2f} s", "", "", ""),
    ]
    if p:
        nochange, seq_nochange = p["engine_nochange"], p["seq_nochange"]
        change, seq_change = p["engine_change"], p["seq_change"]
        warm = nochange["warm"]
        rows += [
            (
                f"no-change pass, {args['apps']} apps, warm",
                f"{warm['seconds']:.2f} s",
                f"{seq_nochange['seconds']:.1f} s",
                _ratio(seq_nochange["seconds"], warm["seconds"]),
                f"ARM {warm['arm_calls']}, GitHub {warm['github_calls']}; RSS {nochange['peak_rss_mb']} MB",
            ),
            (
                f"no-change pass, {args['apps']} apps, cold",
                f"{nochange['cold']['seconds']:.2f} s",
                "",
                "",
                f"ARM {nochange['cold']['arm_calls']}, GitHub {nochange['cold']['github_calls']}",
            ),
            (
                f"{args['changes']}-change pass, {args['lro']:g} s LROs",
                f"{change['seconds']:.2f} s",
                f"{seq_change['seconds']:.1f} s",
                _ratio(seq_change["seconds"], change["seconds"]),
                f"ARM {change['arm_calls']} ({change['arm_writes']} writes), "
                f"GitHub {change['github_calls']}; RSS {change['peak_rss_mb']} MB",
            ),
        ]
    return table(["workload", "engine (median)", "sequential", "ratio", "calls, memory"], rows, max_width=90)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds the stand-ins add to every call")
    parser.add_argument("--lro", type=float, default=2.0, help="seconds a long-running operation takes")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="200 apps, 20 changes")
    args = parser.parse_args()
    if args.quick:
        args.apps, args.changes = 200, 20
    report: dict[str, Any] = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "args": vars(args),
    }
    progress("parse + validate 1,000 files, 7 rounds")
    report["validate"] = validate_bench.run(1000)
    report["pass"] = pass_benchmarks(args.apps, args.changes, args.latency, args.lro, args.concurrency)
    print(json.dumps(report, indent=2))
    print()
    print(summary(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
