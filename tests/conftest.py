"""Shared fixtures. `stack` launches the local stack once per test session exactly as tools do
(`python -m emulators up --env-file PATH`), exports its settings into this process, and stops it at
the end; function-scoped fixtures reset the stand-ins so tests do not see each other's state."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators.launcher import read_env_file

REPO_ROOT = Path(__file__).resolve().parent.parent

# A fleet target whose names derive from NAME, in subscription SUB (fleet tests).
TARGET_MANIFEST = """apiVersion: synoscd.io/v1alpha1
kind: Target
metadata:
  name: {name}
spec:
  subscriptionId: {sub}
  resourceGroup: rg-{name}
  environment: env-{name}
  path: envs/{name}
"""
FIXTURES = REPO_ROOT / "tests" / "fixtures"  # recorded traffic and official examples (see its README)


APP_YAML = """apiVersion: synoscd.io/v1alpha1
kind: App
metadata:
  name: {name}
spec:
  containers:
    - name: web
      image: nginx:{tag}
      cpu: 0.25
      memory: 0.5Gi
"""


def app_yaml(name: str, tag: str = "1") -> str:
    """The smallest valid App manifest, for tests that need a few in a repository."""
    return APP_YAML.format(name=name, tag=tag)


@dataclass
class LaunchedStack:
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    env_file: Path

    def url(self, service: str) -> str:
        return {
            "arm": self.env["SYNOSCD_ARM_ENDPOINT"],
            "github": self.env["SYNOSCD_GITHUB_API_URL"],
            "keyvault": self.env["SYNOSCD_KEYVAULT_URL"],
        }[service]

    def admin(self, service: str, method: str, path: str, body: Any = None) -> Any:
        """Call a stand-in's admin API (`/_admin/...`); raises on an error status."""
        resp = requests.request(
            method,
            f"{self.url(service)}/_admin/{path.lstrip('/')}",
            json=body,
            verify=self.env["REQUESTS_CA_BUNDLE"],
            timeout=30,
        )
        resp.raise_for_status()
        return resp.json()

    def calls(self, service: str) -> list[dict[str, Any]]:
        return self.admin(service, "GET", "calls")["calls"]

    def reset(self) -> None:
        for service in ("arm", "github", "keyvault"):
            self.admin(service, "POST", "reset")


def launch_stack(
    env_file: Path, log_file: Path, timeout: float = 90.0, extra: tuple[str, ...] = ()
) -> LaunchedStack:
    with log_file.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "emulators", "up", "--env-file", str(env_file), *extra],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout
    while not env_file.exists():
        if proc.poll() is not None:
            raise RuntimeError(f"launcher exited with {proc.returncode}: {log_file.read_text()[-2000:]}")
        if time.monotonic() > deadline:
            stop_stack(proc)
            raise TimeoutError(
                f"launcher did not write {env_file} in {timeout} s: {log_file.read_text()[-2000:]}"
            )
        time.sleep(0.05)
    return LaunchedStack(read_env_file(env_file), proc, env_file)


def stop_stack(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            return proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait(timeout=5)
    return proc.returncode


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has stopped running all the same.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(autouse=True)
def _fresh_validation_caches() -> Iterator[None]:
    """Validated documents are cached by content in the process: a test that swaps a validator
    must not meet another test's result for the same document."""
    from synoscd.manifests.desired import clear_parse_cache

    clear_parse_cache()
    yield


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LaunchedStack]:
    workdir = tmp_path_factory.mktemp("stack")
    launched = launch_stack(workdir / "stack.env", workdir / "launcher.log")
    mp = pytest.MonkeyPatch()
    for name, value in launched.env.items():
        mp.setenv(name, value)
    try:
        yield launched
    finally:
        mp.undo()
        stop_stack(launched.proc)


@pytest.fixture
def fresh_stack(stack: LaunchedStack) -> LaunchedStack:
    """The session's stack with every stand-in reset (GitHub keeps its repositories on disk)."""
    stack.reset()
    return stack
