"""End-to-end fixtures: the Functions app served by the local host (emulators/functions_host.py) in a
process of its own, against the session's stack."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import REPO_ROOT, LaunchedStack


@dataclass
class Host:
    proc: subprocess.Popen[str]
    url: str
    env: dict[str, str]
    # The host's (and its workers') output, read all along so a full pipe never blocks them.
    output: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=2000))

    def drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


FUNCTION_KEY = "local-function-key"


def start_host(stack: LaunchedStack, workers: int = 1, **overrides: str) -> Host:
    env = {
        **os.environ,
        **stack.env,
        "SYNOSCD_STATE_TABLE": f"e{uuid.uuid4().hex[:20]}",
        "SYNOSCD_QUEUE_NAME": f"e{uuid.uuid4().hex[:20]}",  # no message of another test's host
        "SYNOSCD_TIMER_SCHEDULE": "0 0 0 1 1 *",
        **overrides,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulators.functions_host",
            "--port",
            "0",
            "--function-key",
            FUNCTION_KEY,
            "--workers",
            str(workers),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    line = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        m = re.search(r"functions host on (http://127\.0\.0\.1:\d+)", line)
        if m:
            host = Host(proc, m.group(1), env)
            threading.Thread(target=host.drain, name="host-output", daemon=True).start()
            return host
        if proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"the functions host did not start: {line}{proc.stdout.read()}")


@pytest.fixture
def host_factory(stack: LaunchedStack) -> Iterator[Callable[..., Host]]:
    hosts: list[Host] = []

    def make(workers: int = 1, **overrides: Any) -> Host:
        host = start_host(stack, workers, **{k: str(v) for k, v in overrides.items()})
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        host.stop()
