"""The fault soak (issue 12, item 9): hundreds of passes over dozens of apps while ~10% of the calls to
ARM, GitHub, Table Storage, the queue and Key Vault fail, operators write with `synos suspend/set`,
signed webhooks arrive, the manifests change and apps drift out of band. At the end it checks:

- converged: after the faults stop, a clean pass leaves nothing to do (a dry run plans zero writes);
- zero writes to foreign or unmanaged resources (apps of another environment and another source,
  apps without the managed tag whose names the manifests use), and they are as seeded;
- zero prunes while the desired set was incomplete (each DELETE's pass and that pass's revision);
- zero lost CLI writes (each writer owns its keys; see bench/soak_writer.py);
- never two passes writing at once (each ARM write names its pass: the `x-synoscd-pass` header);
- no write from a commit Git never had: the soak rewrites cached manifests in the state table (as an
  operator with table write could) with images of no commit, and no app may ever run one.

What runs: the local stack in this process (ARM, GitHub and Key Vault stand-ins, Azurite), storage
proxies in front of Azurite's table and queue endpoints, two Functions hosts (own processes: one with
the timer, both with the webhook and the queue trigger, as two instances of the Function App), two
writer processes, and now and then a `synos sync` of its own. One host is killed (SIGKILL) and
restarted twice. Everything is reproducible from --seed, up to the timing of the processes.

    .venv/bin/python -m bench.soak [--seed 12] [--apps 60] [--passes 200] [--max-minutes 30]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench import soak_checks as checks
from bench.soak_faults import Injector
from emulators.httpbase import RunningServer
from emulators.launcher import GITHUB_OWNER, GITHUB_REPO, WEBHOOK_SECRET, Stack, start_stack
from emulators.storage_proxy import proxy_in_front
from synoscd.engine.reconcile import LEFT_BEHIND

ROOT = Path(__file__).resolve().parent.parent
OTHER_ENV = "other-env"
OTHER_SOURCE = "contoso/other-ops:apps"
WRITER_APPS = {"w0": ["app-010", "app-011", "app-012", "app-013"], "w1": ["app-014", "app-015", "app-016"]}
WRITER_SETTINGS = {"w0": "max_concurrent", "w1": "applied_history"}

APP = """apiVersion: synoscd.io/v1alpha1
kind: App
metadata:
  name: {name}{annotations}
spec:
  containers:
    - name: web
      image: ghcr.io/contoso/{name}:{tag}
      cpu: 0.25
      memory: 0.5Gi
  scale:
    minReplicas: 1
    maxReplicas: 3
"""
BROKEN = """apiVersion: synoscd.io/v1alpha1
kind: App
metadata:
  name: broken
spec:
  containers:
    - name: web
      image: ghcr.io/contoso/broken:1
      cpu: lots
"""


TAMPER_FOUND = "does not match its git blob id"  # the source's warning (synoscd/sources/github.py)
IMAGE = re.compile(r"^\s*image: (\S+)$", re.MULTILINE)


def manifest(name: str, tag: int, wave: int) -> str:
    annotations = f"\n  annotations:\n    synoscd.io/sync-wave: '{wave}'" if wave else ""
    return APP.format(name=name, tag=tag, annotations=annotations)


# -- the ops repository over time ------------------------------------------------------------------------


class Repo:
    """The manifests as the soak commits them (through the GitHub stand-in's admin API), and for each
    commit whether every manifest is valid and which resources it names: the ground truth of the prune
    check."""

    def __init__(self, rng: random.Random, admin: Any, apps: int, clash: list[str]) -> None:
        self.rng = rng
        self.admin = admin
        self.tags = {f"app-{i:03d}": 1 for i in range(apps)}
        self.waves = {name: (1 if i < 8 else 0) for i, name in enumerate(self.tags)}
        self.clash = clash  # names the manifests keep, whatever else changes
        self.next_index = apps
        self.removed: list[str] = []
        self.broken = False
        self.commits: dict[str, dict[str, Any]] = {}
        self.history: list[dict[str, Any]] = []
        self.images: set[str] = set()  # every image some commit named

    def files(self) -> dict[str, str | None]:
        return {f"apps/{n}.yaml": manifest(n, t, self.waves.get(n, 0)) for n, t in self.tags.items()}

    def commit(self, files: dict[str, str | None], message: str) -> str:
        out = self.admin(
            "github",
            "POST",
            f"repos/{GITHUB_OWNER}/{GITHUB_REPO}/commits",
            {"files": files, "message": message},
        )
        sha = out["sha"]
        self.images.update(m for text in files.values() if text for m in IMAGE.findall(text))
        self.commits[sha] = {"complete": not self.broken, "names": sorted(self.tags), "time": time.time()}
        self.history.append(
            {"sha": sha, "time": time.time(), "message": message, "complete": not self.broken}
        )
        return sha

    def removable(self) -> list[str]:
        owned = {a for apps in WRITER_APPS.values() for a in apps}
        return [n for n in self.tags if n not in self.clash and n not in owned]

    def change(self) -> str:
        """One commit: a few images, an app added, removed or brought back, or a broken manifest (with
        an app removed in the same commit: a prune that must not happen)."""
        rng = self.rng
        files: dict[str, str | None] = {}
        if self.broken:  # the next commit always fixes it
            self.broken = False
            files["apps/zz-broken.yaml"] = None
            message = "fix the broken manifest"
        else:
            r = rng.random()
            if r < 0.45:
                names = rng.sample(sorted(self.tags), rng.randint(1, 4))
                for n in names:
                    self.tags[n] += 1
                    files[f"apps/{n}.yaml"] = manifest(n, self.tags[n], self.waves.get(n, 0))
                message = f"new images: {', '.join(names)}"
            elif r < 0.58:
                name = f"app-{self.next_index:03d}"
                self.next_index += 1
                self.tags[name] = 1
                files[f"apps/{name}.yaml"] = manifest(name, 1, 0)
                message = f"add {name}"
            elif r < 0.72 and len(self.removable()) > 40:
                name = rng.choice(self.removable())
                del self.tags[name]
                self.removed.append(name)
                files[f"apps/{name}.yaml"] = None
                message = f"remove {name}"
            elif r < 0.86:
                self.broken = True
                files["apps/zz-broken.yaml"] = BROKEN
                message = "a broken manifest"
                if len(self.removable()) > 40:
                    name = rng.choice(self.removable())
                    del self.tags[name]
                    self.removed.append(name)
                    files[f"apps/{name}.yaml"] = None
                    message += f", and remove {name}"
            elif self.removed:
                name = self.removed.pop(rng.randrange(len(self.removed)))
                self.tags[name] = 1
                files[f"apps/{name}.yaml"] = manifest(name, 1, 0)
                message = f"bring back {name}"
            else:
                name = rng.choice(sorted(self.tags))
                self.tags[name] += 1
                files[f"apps/{name}.yaml"] = manifest(name, self.tags[name], self.waves.get(name, 0))
                message = f"new image: {name}"
        return self.commit(files, message)


# -- processes -------------------------------------------------------------------------------------------


class Host:
    """One Functions host (an instance of the Function App) in its own process."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name, self.env, self.log_dir = name, env, log_dir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = self.log_dir / f"host-{self.name}-{self.starts}.log"
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "emulators.functions_host", "--port", "0"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the host and its queue workers
            )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            m = re.search(r"functions host on (http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
            if m:
                self.url = m.group(1)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"host {self.name} did not start: {log.read_text(errors='replace')[-2000:]}")

    def kill(self) -> None:
        """The instance dies: the host and its queue-worker processes (killing the host alone left its
        workers running passes, which no crash of an instance does)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # the host stops its queue workers
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=60)
        self.kill()  # whatever of the group is left


# -- the soak --------------------------------------------------------------------------------------------


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.rng = random.Random(args.seed)
        self.work = Path(tempfile.mkdtemp(prefix="synoscd-soak-"))
        self.stack: Stack | None = None
        self.proxies: dict[str, RunningServer] = {}
        self.hosts: list[Host] = []
        self.writers: list[subprocess.Popen[bytes]] = []
        self.cli: list[tuple[subprocess.Popen[str], float]] = []
        self.cli_results: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []
        self.passes: dict[str, dict[str, Any]] = {}
        self.events: Counter[str] = Counter()
        self.seen_images: dict[str, set[str]] = {}  # app -> every image its revisions ran
        self.out_of_band: set[str] = set()  # images the soak put there itself (drift, foreign seeds)
        self.pool = ThreadPoolExecutor(max_workers=4)
        self.stop_file = self.work / "stop-writers"

    # -- plumbing --------------------------------------------------------------------------------------
    def url(self, service: str) -> str:
        assert self.stack is not None
        if service in self.proxies:
            return self.proxies[service].url
        return self.stack.servers[service].url

    def admin(self, service: str, method: str, path: str, body: Any = None) -> Any:
        assert self.stack is not None
        resp = requests.request(
            method,
            f"{self.url(service)}/_admin/{path}",
            json=body,
            verify=self.stack.env["REQUESTS_CA_BUNDLE"],
            timeout=60,
        )
        resp.raise_for_status()
        return resp.json()

    def env(self, **extra: str) -> dict[str, str]:
        assert self.stack is not None
        env = {**os.environ, **self.stack.env, **self.settings, **extra}
        # GitHub App key and webhook secret from Key Vault, as in Azure: Key Vault down matters.
        for name in ("SYNOSCD_GITHUB_WEBHOOK_SECRET", "SYNOSCD_GITHUB_APP_PRIVATE_KEY"):
            env.pop(name, None)
        return env

    def direct_table(self) -> Any:
        from synoscd.state.table import open_table

        assert self.stack is not None
        return open_table(self.stack.env["SYNOSCD_STATE_STORE"], table_name=self.table_name)

    # -- set up ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self.stack = start_stack(self.work / "stack")
        store = self.stack.env["SYNOSCD_STATE_STORE"]
        for name in ("Table", "Queue"):
            self.proxies[name.lower()], store = proxy_in_front(store, name)
        self.table_name = f"soak{uuid.uuid4().hex[:12]}"
        self.settings = {
            "SYNOSCD_STATE_STORE": store,
            "SYNOSCD_STATE_TABLE": self.table_name,
            "SYNOSCD_QUEUE_NAME": f"soak{uuid.uuid4().hex[:12]}",
            "SYNOSCD_PRUNE_ENABLED": "true",
            "SYNOSCD_LEASE_SECONDS": str(self.args.lease_seconds),
            "SYNOSCD_PASS_WAIT_SECONDS": "8",
            "SYNOSCD_RECONCILE_INTERVAL_SECONDS": "10",
            "SYNOSCD_RETRY_DURATION_SECONDS": "2",
            "SYNOSCD_RETRY_MAX_DURATION_SECONDS": "12",
            "SYNOSCD_RETRY_LIMIT": "50",
            "SYNOSCD_MAX_CONCURRENT": "8",
        }
        self.admin("arm", "PUT", "config", {"provisioningDelay": 0.3})
        self.seed_foreign()
        self.repo = Repo(self.rng, self.admin, self.args.apps, clash=self.clash)
        repo_dir = self.stack.env["SYNOSCD_EMULATOR_GITHUB_REPO_DIR"]
        head = subprocess.run(["git", "-C", repo_dir, "rev-parse", "HEAD"], capture_output=True, text=True)
        # The launcher's empty first commit: a pass there has nothing to prune either.
        self.repo.commits[head.stdout.strip()] = {"complete": True, "names": []}
        self.repo.commit(self.repo.files(), f"{self.args.apps} apps")
        timer_env = self.env(SYNOSCD_TIMER_SCHEDULE="*/2 * * * * *")
        quiet_env = self.env(SYNOSCD_TIMER_SCHEDULE="0 0 0 * * *")  # Azure runs a timer on one instance
        self.hosts = [Host("a", timer_env, self.work), Host("b", quiet_env, self.work)]
        for host in self.hosts:
            host.start()

    def seed_foreign(self) -> None:
        """Apps that are not ours: managed by another source in a second environment of the same
        resource group (two of them with names our manifests use), managed by another source in our
        environment (one named by our manifests), and unmanaged ones with names our manifests use."""
        assert self.stack is not None
        env2 = self.admin("arm", "POST", "environments", {"name": OTHER_ENV})["id"]
        n = self.args.apps
        other_tags = {"synoscd-managed": "true", "synoscd-source": OTHER_SOURCE, "synoscd-revision": "abc"}
        seeds: list[tuple[str, dict[str, str], str | None]] = [
            *((f"other-{i:03d}", other_tags, env2) for i in range(4)),
            (f"app-{n - 5:03d}", other_tags, env2),
            (f"app-{n - 4:03d}", other_tags, env2),
            ("team-b-000", other_tags, None),
            (f"app-{n - 3:03d}", other_tags, None),
            (f"app-{n - 2:03d}", {"owner": "someone-else"}, None),
            (f"app-{n - 1:03d}", {}, None),
            ("legacy-000", {}, None),
        ]
        self.clash = [f"app-{n - i:03d}" for i in range(1, 6)]
        for name, tags, env_id in seeds:
            props: dict[str, Any] = {
                "template": {
                    "containers": [
                        {
                            "name": "main",
                            "image": f"contoso.azurecr.io/{name}:foreign",
                            "resources": {"cpu": 0.5, "memory": "1Gi"},
                        }
                    ],
                    "scale": {"minReplicas": 0, "maxReplicas": 2},
                }
            }
            if env_id:
                props["environmentId"] = env_id
            self.admin("arm", "POST", "apps", {"name": name, "envelope": {"tags": tags, "properties": props}})
            self.out_of_band.add(f"contoso.azurecr.io/{name}:foreign")
        self.foreign = [name for name, _, _ in seeds]
        self.foreign_seeded = self.foreign_state()

    def foreign_state(self) -> dict[str, Any]:
        state = self.admin("arm", "GET", "state")["resources"]
        out: dict[str, Any] = {}
        names = {n.lower() for n in self.foreign}
        for r in state:
            if r["kind"] == "containerApps" and r["name"].lower() in names:
                props = r["body"]["properties"]
                out[r["name"].lower()] = {
                    "tags": r["body"].get("tags"),
                    "environment": props.get("environmentId") or props.get("managedEnvironmentId"),
                    "template": props.get("template"),
                }
        return out

    def start_writers(self) -> None:
        for i, (writer, apps) in enumerate(WRITER_APPS.items()):
            log = self.work / f"writer-{writer}.jsonl"
            with (self.work / f"writer-{writer}.out").open("wb") as out:
                self.writers.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "bench.soak_writer",
                            "--id",
                            writer,
                            "--apps",
                            ",".join(apps),
                            "--setting",
                            WRITER_SETTINGS[writer],
                            "--seed",
                            str(self.args.seed * 100 + i),
                            "--log",
                            str(log),
                            "--stop",
                            str(self.stop_file),
                        ],
                        cwd=ROOT,
                        env=self.env(),
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )

    # -- what happens during the soak -----------------------------------------------------------------------
    def managed_apps(self) -> list[str]:
        return [n for n in self.repo.tags if n not in self.repo.clash]

    def deliver(self, sha: str, delivery_id: str | None = None) -> None:
        host = self.rng.choice([h for h in self.hosts if h.url])
        delivery_id = delivery_id or str(uuid.uuid4())

        def send() -> None:
            try:
                out = self.admin(
                    "github",
                    "POST",
                    "webhooks/deliver",
                    {
                        "url": f"{host.url}/api/github/webhook",
                        "event": "push",
                        "owner": GITHUB_OWNER,
                        "name": GITHUB_REPO,
                        "after": sha,
                        "secret": WEBHOOK_SECRET,
                        "delivery_id": delivery_id,
                    },
                )
                status, body = out.get("status"), out.get("body") or ""
            except Exception as exc:  # the stand-in itself did not answer
                status, body = None, repr(exc)
            self.deliveries.append(
                {"id": delivery_id, "sha": sha, "host": host.name, "status": status, "body": body[:200]}
            )

        self.pool.submit(send)

    def redeliver(self) -> None:
        """GitHub's redelivery of an earlier delivery (same id): a duplicate unless it failed."""
        if self.deliveries:
            d = self.rng.choice(self.deliveries[-10:])
            self.deliver(d["sha"], d["id"])
            self.events["redelivery"] += 1

    def drift(self) -> None:
        name = self.rng.choice(self.managed_apps())
        patch = self.rng.choice(
            [
                {
                    "properties": {
                        "template": {"scale": {"minReplicas": 1, "maxReplicas": self.rng.randint(5, 9)}}
                    }
                },
                {"tags": {"synoscd-managed": "true", "team": "ops"}},  # a tag others add: not drift
                {
                    "properties": {
                        "template": {
                            "containers": [
                                {
                                    "name": "web",
                                    "image": f"ghcr.io/contoso/{name}:hotfix",
                                    "resources": {"cpu": 0.25, "memory": "0.5Gi"},
                                }
                            ]
                        }
                    }
                },
            ]
        )
        self.out_of_band.add(f"ghcr.io/contoso/{name}:hotfix")
        try:
            self.admin("arm", "PATCH", f"apps/{name}", patch)
            self.events["drift"] += 1
        except requests.HTTPError:
            self.events["drift on a missing app"] += 1

    def tamper_cache(self, table: Any) -> None:
        """What an operator with table write could try (issue 12's second finding): rewrite a cached
        manifest in the state table with an image no commit has. The source checks each row against
        its git blob id, so no such image may ever run (checks.images_git_never_had)."""
        from synoscd.state import blobcache
        from synoscd.state import table as t

        try:
            rows = [r for r in t.query(table, blobcache.PACKS) if r["RowKey"] != blobcache.INDEX_ROW]
            if not rows:
                return
            row = self.rng.choice(rows)
            blobs = blobcache.unpack(blobcache.entity_pack(row))
            sha = self.rng.choice(sorted(blobs))
            text = blobs[sha].decode()
            forged = IMAGE.sub(lambda m: m.group(0).rsplit(":", 1)[0] + ":tampered", text)
            if forged == text:
                return
            blobs[sha] = forged.encode()
            table.upsert_entity(blobcache.pack_entity(row["RowKey"], blobcache.pack(blobs)))
            self.events["cache row tampered"] += 1
        except Exception:  # Azurite is never cut; a row pruned meanwhile is tried again later
            pass

    def observe_images(self) -> None:
        """Every image each app's revisions ran, read from the ARM stand-in (in this process)."""
        assert self.stack is not None
        arm = self.stack.arm
        with arm.lock:
            for res in arm.resources.values():
                if res.kind != "containerApps":
                    continue
                templates = [res.body["properties"].get("template") or {}]
                templates += [r["properties"].get("template") or {} for r in res.revisions]
                seen = self.seen_images.setdefault(res.name.lower(), set())
                for tpl in templates:
                    for c in [*(tpl.get("containers") or []), *(tpl.get("initContainers") or [])]:
                        if c.get("image"):
                            seen.add(c["image"])

    def cli_sync(self) -> None:
        if any(p.poll() is None for p, _ in self.cli):
            return
        proc = subprocess.Popen(
            [sys.executable, "-m", "synoscd", "sync", "--yes", "--wait", "8", "-o", "json"],
            cwd=ROOT,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.cli.append((proc, time.time()))
        self.events["cli sync"] += 1

    def reap_cli(self, wait: bool = False) -> None:
        for proc, started in list(self.cli):
            if proc.poll() is None and not wait:
                continue
            out, err = proc.communicate(timeout=120)
            self.cli.remove((proc, started))
            try:
                doc = json.loads(out)
            except ValueError:
                doc = {}
            self.cli_results.append(
                {
                    "rc": proc.returncode,
                    "outcome": doc.get("outcome"),
                    "id": doc.get("id"),
                    "err": err[-300:],
                    "tampered rows found": err.count(TAMPER_FOUND),
                }
            )

    def request_pass(self, table: Any) -> None:
        """What `synos reconcile source` records: a request the timer's next tick (or the running pass,
        once more before it lets go) serves."""
        from synoscd.state import lease

        try:
            lease.request(table, "cli:soak")
            self.events["pass requested"] += 1
        except Exception:
            pass

    def crash(self) -> None:
        host = self.hosts[self.events["host crash"] % 2]
        host.kill()
        self.events["host crash"] += 1
        time.sleep(1.0)
        host.start()

    def poll_passes(self, table: Any) -> None:
        from synoscd.state import history

        try:
            for rec in history.list_passes(table, limit=1000):
                self.passes[rec.id] = rec.to_dict()
        except Exception:  # Azurite is never cut; a hiccup is read again next time
            pass

    # -- the run ---------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        args = self.args
        self.start()
        table = self.direct_table()
        started = time.time()
        self.wait_first_pass(table)
        injector = Injector(self.rng, self.admin, self.managed_apps)
        self.injector = injector
        self.start_writers()
        deadline = started + args.max_minutes * 60
        crash_at = [int(args.passes * 0.4), int(args.passes * 0.75)]
        next_commit = time.time() + self.rng.uniform(8, 16)
        next_poll = time.time()
        baseline = len(self.passes)
        while time.time() < deadline:
            now = time.time()
            if now >= next_poll:
                self.poll_passes(table)
                self.observe_images()
                next_poll = now + 4
                done = len(self.passes) - baseline
                print(
                    f"{time.time() - started:6.0f} s: {done} passes, {dict(self.events)}",
                    file=sys.stderr,
                    flush=True,
                )
                if done >= args.passes:
                    break
                if crash_at and done >= crash_at[0]:
                    crash_at.pop(0)
                    self.crash()
            if self.rng.random() < args.fault_rate:
                injector.inject()
            if now >= next_commit:
                sha = self.repo.change()
                self.events["commit"] += 1
                if self.rng.random() < 0.9:
                    self.deliver(sha)
                next_commit = now + self.rng.uniform(8, 18)
            r = self.rng.random()
            if r < 0.08:
                self.drift()
            elif r < 0.10:
                self.redeliver()
            elif r < 0.13:
                self.cli_sync()
            elif r < 0.25:
                self.request_pass(table)
            elif r < 0.27:
                self.tamper_cache(table)
            self.reap_cli()
            time.sleep(0.5)
        soak_seconds = time.time() - started
        return self.finish(table, soak_seconds, baseline)

    def wait_first_pass(self, table: Any) -> None:
        deadline = time.time() + 120
        while time.time() < deadline:
            self.poll_passes(table)
            if any(p["outcome"] == "succeeded" for p in self.passes.values()):
                return
            time.sleep(1)
        raise RuntimeError(f"no pass succeeded in 120 s: {list(self.passes.values())[-3:]}")

    # -- the end ---------------------------------------------------------------------------------------
    def finish(self, table: Any, soak_seconds: float, baseline: int) -> dict[str, Any]:
        assert self.stack is not None
        self.injector.stop()
        with self.stack.arm.lock:
            self.stack.arm.lro_failures.clear()
        self.stop_file.touch()
        for w in self.writers:
            w.wait(timeout=120)
        self.reap_cli(wait=True)
        for host in self.hosts:
            host.stop()
        self.pool.shutdown(wait=True)
        self.wait_lease_free(table)
        self.poll_passes(table)
        faulted = self.fault_counts()

        # Lost CLI writes: what the writers reported against the table, read directly.
        from synoscd.state import apps, runtime
        from synoscd.state import table as t

        attempts = []
        for writer in WRITER_APPS:
            log = self.work / f"writer-{writer}.jsonl"
            attempts += [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        final: dict[str, Any] = {}
        for name, flag in apps.get_flags(table).items():
            final[f"flags/{name}"] = (flag.suspended, flag.reason or "")
        row = t.get(table, runtime.PK, runtime.RK) or {}
        for setting in WRITER_SETTINGS.values():
            final[f"settings/{setting}"] = row.get(setting)
        lost, keys_checked = checks.lost_writes(attempts, final)

        # Converged: fix the manifests if the last commit broke one, resume what the writers left
        # suspended, run clean passes until one succeeds, then a dry run must plan nothing: no write,
        # and no skip that leaves a resource short of Git (backoff, in-progress, sync-failed).
        if self.repo.broken:
            self.repo.change()
        for app_list in WRITER_APPS.values():
            for app in app_list:
                self.synos("resume", app, "--yes")
        final_passes = []
        for _ in range(8):
            out = self.synos("sync", "--yes", "--wait", "30", "-o", "json")
            final_passes.append(out.get("outcome"))
            if out.get("outcome") == "succeeded":
                break
            time.sleep(4)
        diff = self.synos("diff", "-o", "json")
        planned = [
            a
            for a in diff.get("actions", [])
            if a["action"] in ("create", "update", "heal", "delete")
            or (a["action"] == "skip" and a["reason"] in LEFT_BEHIND)
        ]
        if final_passes[-1] != "succeeded":
            planned.append({"action": "pass", "name": "final", "reason": f"outcomes {final_passes}"})
        self.poll_passes(table)

        self.observe_images()
        calls = list(self.stack.arm.calls)
        writes = checks.writes_of(calls)
        prune_violations, deletes = checks.prunes_while_incomplete(writes, self.passes, self.repo.commits)
        foreign_final = self.foreign_state()
        violations = {
            "not converged (what a dry run plans after the clean pass)": [
                f"{a['action']} {a['name']} ({a['reason']})" for a in planned
            ],
            "writes to foreign or unmanaged resources": checks.foreign_writes(writes, self.foreign),
            "foreign or unmanaged resources changed": checks.foreign_changed(
                self.foreign_seeded, foreign_final
            ),
            "prunes while the desired set was incomplete": prune_violations,
            "lost CLI writes": lost,
            "two passes writing at once": checks.interleaved(writes),
            "writes naming no pass": checks.unattributed(writes),
            "images no commit had (tampered cache rows deployed)": checks.images_git_never_had(
                self.seen_images, self.repo.images, self.out_of_band
            ),
        }
        soak_passes = [p for p in self.passes.values()]
        outcomes = Counter(p["outcome"] for p in soak_passes)
        triggers = Counter(p["trigger"] for p in soak_passes)
        report = {
            "seed": self.args.seed,
            "soak seconds": round(soak_seconds),
            "apps": {
                "initial": self.args.apps,
                "in git at the end": len(self.repo.tags),
                "foreign or unmanaged": len(self.foreign),
            },
            "passes": {
                "recorded": len(soak_passes),
                "during the soak": len(soak_passes) - baseline,
                "outcomes": dict(outcomes),
                "triggers": dict(triggers),
            },
            "final clean passes": final_passes,
            "arm writes": dict(Counter(w.method for w in writes)),
            "writers": checks.handovers(writes),
            "deletes checked": deletes,
            "passes at a revision with a broken manifest": sum(
                1
                for p in soak_passes
                if not self.repo.commits.get(p["revision"] or "", {}).get("complete", True)
            ),
            "passes whose prune was blocked": sum(
                1 for p in soak_passes if (p["prune"] or {}).get("blocked")
            ),
            "broken commits that also removed an app": sum(
                1 for c in self.repo.history if not c["complete"] and "remove" in c["message"]
            ),
            "cli writes": {
                "attempts": len(attempts),
                "done": sum(1 for a in attempts if a["rc"] == 0),
                "keys checked": keys_checked,
            },
            "cache rows tampered": {
                "rewritten": self.events["cache row tampered"],
                "found by the source (its warnings)": self.tamper_warnings(),
            },
            "cli syncs": dict(Counter(str(r["outcome"] or f"rc {r['rc']}") for r in self.cli_results)),
            "webhook deliveries": dict(Counter(str(d["status"]) for d in self.deliveries)),
            "events": dict(self.events),
            "faults injected": dict(self.injector.injected),
            "calls and faulted calls": faulted,
            "violations": {k: len(v) for k, v in violations.items()},
            "violation details": {k: v[:20] for k, v in violations.items() if v},
        }
        (self.work / "report.json").write_text(json.dumps(report, indent=2))
        (self.work / "passes.json").write_text(json.dumps(self.passes, indent=1))
        (self.work / "commits.json").write_text(json.dumps(self.repo.history, indent=1))
        (self.work / "arm-writes.json").write_text(json.dumps([w.__dict__ for w in writes], indent=0))
        report["work directory"] = str(self.work)
        return report

    def tamper_warnings(self) -> int:
        """How often a pass (of a host or a `synos sync`) found a cached row that did not match its blob
        id and read it again: the warning the source logs."""
        hosts = sum(
            log.read_text(errors="replace").count(TAMPER_FOUND) for log in self.work.glob("host-*.log")
        )
        return hosts + sum(r["tampered rows found"] for r in self.cli_results)

    def fault_counts(self) -> dict[str, Any]:
        """Calls each service answered, and how many of them a fault hit (an injected answer, a dropped
        connection, a storage outage, a rate-limited GitHub answer), plus the LROs made to fail."""
        assert self.stack is not None
        out: dict[str, Any] = {}
        total = faulted = 0
        logs = {
            "arm": self.stack.arm.calls,
            "github": self.stack.github.calls,
            "keyvault": self.stack.keyvault.calls,
            "table": self.proxies["table"].emulator.calls,
            "queue": self.proxies["queue"].emulator.calls,
        }
        for service, calls in logs.items():
            hit = sum(
                1
                for c in calls
                if "fault" in c
                or c.get("status") == "dropped"
                or (service == "github" and c.get("status") in (403, 429))
            )
            out[service] = {"calls": len(calls), "faulted": hit}
            total += len(calls)
            faulted += hit
        lro = self.injector.injected.get("arm LRO Failed", 0)
        out["arm LROs failed"] = lro
        out["total"] = {
            "calls": total,
            "faulted": faulted + lro,
            "share": round((faulted + lro) / max(1, total), 3),
        }
        # The queue trigger polls its queue all the time (since the fleet, the timer's passes go through
        # it too): those GETs are most of the calls, and few of them are the passes' own work.
        polls = sum(
            1
            for c in logs["queue"]
            if c["method"] == "GET" and c["path"].endswith("/messages") and "fault" not in c
        )
        out["total without the queue trigger's polls"] = {
            "calls": total - polls,
            "faulted": faulted + lro,
            "share": round((faulted + lro) / max(1, total - polls), 3),
        }
        return out

    def wait_lease_free(self, table: Any) -> None:
        from synoscd.state import lease

        deadline = time.time() + 60
        while time.time() < deadline:
            held, _ = lease.read(table)
            if held is None:
                return
            time.sleep(0.5)

    def synos(self, *argv: str) -> dict[str, Any]:
        env = self.env()
        assert self.stack is not None
        env["SYNOSCD_STATE_STORE"] = self.stack.env["SYNOSCD_STATE_STORE"]  # no proxy: the check's own
        out = subprocess.run(
            [sys.executable, "-m", "synoscd", *argv],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        try:
            return json.loads(out.stdout) if "-o" in argv else {"rc": out.returncode}
        except ValueError:
            return {"rc": out.returncode, "stderr": out.stderr[-500:]}

    def stop(self) -> None:
        self.stop_file.touch()
        for w in self.writers:
            if w.poll() is None:
                w.terminate()
                w.wait(timeout=30)
        for proc, _ in self.cli:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=30)
        for host in self.hosts:
            host.stop()
        for proxy in self.proxies.values():
            proxy.stop()
        if self.stack is not None:
            self.stack.stop()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--apps", type=int, default=60, help="apps in Git at the start (at least 20)")
    parser.add_argument("--passes", type=int, default=200, help="passes to run before the soak ends")
    parser.add_argument("--max-minutes", type=float, default=30.0, help="the soak ends then in any case")
    parser.add_argument(
        "--fault-rate", type=float, default=0.6, help="chance of a fault every half second (at most one)"
    )
    parser.add_argument("--lease-seconds", type=float, default=8.0)
    args = parser.parse_args()
    soak = Soak(args)
    try:
        report = soak.run()
    finally:
        soak.stop()
    print(json.dumps(report, indent=2))
    return 0 if not any(report["violations"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
