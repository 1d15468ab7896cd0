"""`python -m bench.import_floor [--runs N]`: what a fresh `synos sync` process pays before any work —
the interpreter and the imports of what a no-change pass uses — layer by layer, each a median of N
fresh processes, the layers interleaved run by run (the machine is shared and noisy).

Each layer adds to the one before it, in the order a pass imports them: the CLI and settings
(pydantic, pydantic-settings), the engine (manifest schema, azure-core, azure-data-tables, requests),
the identity (azure-identity, msal), ARM reads (azure-mgmt-core), the GitHub source (PyGithub) and Key
Vault (the GitHub App's secrets there). What is left of a whole command is the pass itself."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from bench.__main__ import ROOT

LAYERS: list[tuple[str, list[str]]] = [
    ("interpreter", []),
    ("+ CLI and settings", ["synoscd.cli.main", "synoscd.cli.sync", "synoscd.config"]),
    ("+ engine", ["synoscd.engine.reconcile"]),
    ("+ identity", ["azure.identity"]),
    ("+ ARM reads", ["azure.mgmt.core"]),
    ("+ GitHub source", ["synoscd.sources.factory", "github"]),
    ("+ Key Vault", ["azure.keyvault.secrets", "synoscd.state.blobcache"]),
]


def _once(modules: list[str]) -> float:
    code = "".join(f"import {m}\n" for m in modules) or "pass\n"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    return time.perf_counter() - started


def run(runs: int) -> list[dict[str, object]]:
    cumulative: list[list[str]] = []
    for _, modules in LAYERS:
        cumulative.append([*(cumulative[-1] if cumulative else []), *modules])
    times: list[list[float]] = [[] for _ in LAYERS]
    for _ in range(runs):
        for i, modules in enumerate(cumulative):
            times[i].append(_once(modules))
    return [
        {"layer": name, "median_ms": round(statistics.median(ts) * 1000), "min_ms": round(min(ts) * 1000)}
        for (name, _), ts in zip(LAYERS, times, strict=True)
    ]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.import_floor", description=__doc__)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    print(json.dumps({"runs": args.runs, "layers": run(args.runs)}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
