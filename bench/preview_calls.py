"""What a pull-request preview costs in GitHub calls, in a 500-file ops repository, for a one-file pull
request: the queued preview (`synoscd.preview.run.handle`: compare, changed blobs, check run) on the
warm instance that synced the base and on a cold one (a new source: installation token, base listing,
blobs from the persisted cache), side by side with `synos diff --ref` of the same head and with reading
the head in full without any cache (what the compare and the blob cache save). Goal: at most 6 calls.

    .venv/bin/python -m bench.preview_calls [--files 500] [--rounds 5]

The stand-ins run in this process (the launcher's in-process stack), so the times include their CPU;
the calls are counted from the GitHub stand-in's own log.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import requests

from emulators.launcher import start_stack
from synoscd.config import Settings
from synoscd.engine.reconcile import run_pass
from synoscd.engine.runtime import Runtime
from synoscd.preview.plan import plan_ref
from synoscd.preview.run import handle
from synoscd.sources.factory import forget_warm_sources

OWNER = "bench"
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
"""


def _settings(env: dict[str, str], repo: str, table: str) -> Settings:
    values = {k.removeprefix("SYNOSCD_").lower(): v for k, v in env.items() if k.startswith("SYNOSCD_")}
    values.update(github_repo_owner=OWNER, github_repo_name=repo, state_table=table, max_concurrent="32")
    return Settings(**{k: v for k, v in values.items() if k in Settings.model_fields})


def _short(path: str) -> str:
    """/repos/OWNER/NAME/git/blobs/SHA -> git/blobs/…: what was asked, without the names."""
    tail = path.split("/", 4)[-1] if path.startswith("/repos/") else path.lstrip("/")
    return re.sub(r"[0-9a-f]{40}", "…", re.sub(r"/\d+/", "/N/", tail))


def run(files: int = 500, rounds: int = 5) -> dict[str, Any]:
    with start_stack() as stack:
        env = stack.env
        os.environ.update(env)  # the CA bundle and the managed-identity endpoint, for the SDKs here
        verify = env["REQUESTS_CA_BUNDLE"]
        github_url = env["SYNOSCD_GITHUB_API_URL"]

        def admin(method: str, path: str, body: Any) -> Any:
            resp = requests.request(
                method, f"{github_url}/_admin/{path}", json=body, verify=verify, timeout=120
            )
            resp.raise_for_status()
            return resp.json()

        repo = f"ops-{uuid.uuid4().hex[:6]}"
        manifests = {f"apps/app-{i:04d}.yaml": APP.format(name=f"app-{i:04d}", tag="1") for i in range(files)}
        admin("POST", "repos", {"owner": OWNER, "name": repo, "files": manifests})
        arm_config = f"{env['SYNOSCD_ARM_ENDPOINT']}/_admin/config"
        requests.put(
            arm_config, json={"provisioningDelay": 0.01}, verify=verify, timeout=30
        ).raise_for_status()
        settings = _settings(env, repo, f"bench{uuid.uuid4().hex[:12]}")
        rt = Runtime(settings)
        synced = run_pass("cli", rt=rt, wait_seconds=120)
        assert synced.outcome == "succeeded", synced.to_dict()
        forget_warm_sources()  # persists the blob cache, as a warm instance does after its pass
        warm = Runtime(settings)
        run_pass("cli", rt=warm, wait_seconds=10)  # the instance that follows the base
        calls = stack.github.calls

        def measure(work: Callable[[], Any]) -> tuple[int, float, list[str]]:
            before = len(calls)
            started = time.perf_counter()
            work()
            elapsed = (time.perf_counter() - started) * 1000
            made = [f"{c['method']} {_short(c['path'])}" for c in calls[before:]]
            return len(made), elapsed, made

        results: dict[str, list[tuple[int, float, list[str]]]] = {
            "preview, warm instance": [],
            "preview, cold instance": [],
            "synos diff --ref, warm": [],
            "full read of the head, no cache": [],
        }
        for i in range(rounds):
            branch = f"change-{i}"
            changed = {f"apps/app-{i:04d}.yaml": APP.format(name=f"app-{i:04d}", tag=f"2{i}")}
            head = admin(
                "POST", f"repos/{OWNER}/{repo}/commits", {"files": changed, "branch": branch, "from": "main"}
            )
            pr = admin("POST", f"repos/{OWNER}/{repo}/pulls", {"head": branch, "base": "main"})["number"]
            message = {
                "kind": "preview",
                "pr": pr,
                "head": head["sha"],
                "action": "opened",
                "queuedAt": time.time(),
            }
            results["preview, warm instance"].append(measure(partial(handle, warm, message)))
            forget_warm_sources()
            cold = Runtime(settings)
            message = {**message, "queuedAt": time.time(), "action": "synchronize"}
            results["preview, cold instance"].append(measure(partial(handle, cold, message)))
            forget_warm_sources()
            warm = Runtime(settings)
            run_pass("cli", rt=warm, wait_seconds=10)
            results["synos diff --ref, warm"].append(measure(partial(plan_ref, branch, rt=warm)))
            bare = Runtime(settings.model_copy(update={"state_table": f"empty{uuid.uuid4().hex[:12]}"}))
            forget_warm_sources()
            results["full read of the head, no cache"].append(measure(partial(plan_ref, branch, rt=bare)))
            forget_warm_sources()
            bare.table.delete_table()
            warm = Runtime(settings)
            run_pass("cli", rt=warm, wait_seconds=10)
        report: dict[str, Any] = {"files": files, "rounds": rounds}
        for name, samples in results.items():
            report[name] = {
                "github calls (median)": statistics.median(s[0] for s in samples),
                "github calls (max)": max(s[0] for s in samples),
                "ms (median)": round(statistics.median(s[1] for s in samples), 1),
                "calls of the last round": samples[-1][2]
                if samples[-1][0] <= 12
                else f"{samples[-1][0]} calls",
            }
        forget_warm_sources()
        rt.table.delete_table()
        return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.preview_calls")
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(args.files, args.rounds), indent=2, ensure_ascii=False))
