"""`python -m bench.synth_bench [--compositions 20] [--apps-each 10] [--rounds 2]`: what compositions
cost on a pass where nothing changed.

The same 200 apps, two ways, on one local stack: (A) 200 hand-written App manifests; (B) 20
Compositions x 10 apps each, made by an exec synthesizer (a Python script in the ops repository).
Between variants the repository is switched and converged; then a worker process measures a cold and
five warm no-change passes (20 ms added latency on every ARM and GitHub call, as in bench/__main__.py).
Variants alternate A, B, A, B, ... so drift of the shared machine hits both.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.__main__ import APP, Stack

HERE = Path(__file__).resolve().parent
SYNTHESIZER = """apiVersion: synoscd.io/v1alpha1
kind: Synthesizer
metadata:
  name: fleet
spec:
  command: ["python3", "synth/fleet.py"]
  timeoutSeconds: 30
"""
COMPOSITION = """apiVersion: synoscd.io/v1alpha1
kind: Composition
metadata:
  name: {name}
spec:
  synthesizer: fleet
  inputs:
    - key: fleet
      file: inputs/{name}.json
"""


def names(compositions: int, each: int) -> list[list[str]]:
    return [[f"app-{c * each + i:04d}" for i in range(each)] for c in range(compositions)]


def hand_written(groups: list[list[str]]) -> dict[str, str | None]:
    files: dict[str, str | None] = {f"apps/{n}.yaml": APP.format(name=n, tag="1") for g in groups for n in g}
    files.update({f"apps/c{c:02d}.yaml": None for c in range(len(groups))})
    files.update({f"inputs/c{c:02d}.json": None for c in range(len(groups))})
    files.update({"apps/fleet-synth.yaml": None, "synth/fleet.py": None})
    return files


def synthesized(groups: list[list[str]]) -> dict[str, str | None]:
    files: dict[str, str | None] = {f"apps/{n}.yaml": None for g in groups for n in g}
    for c, group in enumerate(groups):
        files[f"apps/c{c:02d}.yaml"] = COMPOSITION.format(name=f"c{c:02d}")
        files[f"inputs/c{c:02d}.json"] = json.dumps({"apps": group})
    files["apps/fleet-synth.yaml"] = SYNTHESIZER
    files["synth/fleet.py"] = (HERE / "synth_fleet.py").read_text()
    return files


def commit(stack: Stack, files: dict[str, str | None], message: str) -> None:
    repo = Path(stack.env["SYNOSCD_EMULATOR_GITHUB_REPO_DIR"])
    for rel, text in files.items():
        path = repo / rel
        if text is None:
            path.unlink(missing_ok=True)
    stack.commit({k: v for k, v in files.items() if v is not None}, message)


def run(compositions: int, each: int, rounds: int, latency: float) -> dict[str, Any]:
    groups = names(compositions, each)
    stack = Stack()
    env = {"SYNOSCD_ALLOW_EXEC_SYNTHESIZERS": "true", "SYNOSCD_MAX_CONCURRENT": "32"}
    out: dict[str, Any] = {"A": [], "B": []}
    try:
        stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.01, "pageSize": 100})
        for r in range(rounds):
            for variant, files in (("A", hand_written(groups)), ("B", synthesized(groups))):
                for service in ("arm", "github"):
                    stack.admin(service, "PUT", "latency", {"seconds": 0})
                commit(stack, files, f"variant {variant}, round {r}")
                converge = stack.worker("converge", **env)
                for service in ("arm", "github"):
                    stack.admin(service, "PUT", "latency", {"seconds": latency})
                measured = stack.worker("nochange", **env)
                measured["converge"] = converge
                out[variant].append(measured)
                print(json.dumps({"variant": variant, "round": r, "warm": measured["warm"]}), flush=True)
    finally:
        stack.stop()
    for variant in ("A", "B"):
        warm = [s for m in out[variant] for s in m["warm_seconds"]]
        out[f"{variant}_median"] = round(statistics.median(warm), 3)
        out[f"{variant}_all"] = warm
    out["ratio"] = round(out["B_median"] / out["A_median"], 3)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.synth_bench", description=__doc__)
    parser.add_argument("--compositions", type=int, default=20)
    parser.add_argument("--apps-each", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args()
    report = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "args": vars(args),
        **run(args.compositions, args.apps_each, args.rounds, args.latency),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
