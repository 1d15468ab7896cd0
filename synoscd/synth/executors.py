"""Running a synthesizer: `exec` (a subprocess, ResourceList on stdin, stdout back) and `job` (an ACA
Job execution in the target environment; the ResourceList travels through blobs with SAS URLs, see
blobs.py). Every failure is an `Output` error naming what happened; nothing here raises on a
synthesizer's behaviour.

exec runs with a clean environment (PATH, HOME, LANG only: no SynosCD setting or secret reaches it),
in a fresh working directory holding the repository files its command names, with a timeout and a
limit on what it may write; the process group is killed on timeout.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from synoscd.synth.protocol import Output, Run, failed, parse_output

CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"
STDERR_TAIL = 2000
INPUT_ENV, OUTPUT_ENV = "KRM_INPUT_URL", "KRM_OUTPUT_URL"
CONTAINER = "synthesizer"


def repo_files(command: list[str], read: Callable[[str], bytes | None]) -> dict[str, bytes]:
    """The arguments of `command` that name files of the repository, with their content."""
    found: dict[str, bytes] = {}
    for part in command:
        if "/" in part.strip("/") or part.endswith((".py", ".sh", ".js", ".rb")):
            path = part.removeprefix("./")
            if path.startswith("/") or ".." in path.split("/"):
                continue
            content = read(path)
            if content is not None:
                found[path] = content
    return found


def run_exec(
    command: list[str],
    payload: bytes,
    files: dict[str, bytes],
    timeout: float,
    max_bytes: int,
) -> Run:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="synoscd-synth-") as workdir:
        for rel, content in files.items():
            path = Path(workdir, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            if content.startswith(b"#!"):
                path.chmod(0o700)
        env = {"PATH": CLEAN_PATH, "HOME": workdir, "LANG": "C.UTF-8", "TMPDIR": workdir}
        try:
            proc = subprocess.Popen(
                command,
                cwd=workdir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # its own process group: a timeout kills its children too
            )
        except OSError as exc:
            return Run(failed(f"command {command[0]!r} could not start ({exc.strerror or exc})"))
        out = _Capped(proc.stdout, max_bytes + 1)
        err = _Capped(proc.stderr, 64 * 1024, keep_tail=True)
        feeder = threading.Thread(target=_feed, args=(proc, payload), daemon=True)
        for thread in (out, err, feeder):
            thread.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(proc)
        if out.overflow and proc.poll() is None:
            _kill(proc)
        for thread in (out, err, feeder):
            thread.join(timeout=5)
        seconds = time.monotonic() - started
        log = err.text()
        if timed_out:
            return Run(failed(f"timed out after {timeout:g} s (spec.timeoutSeconds)"), seconds, log)
        if out.overflow:
            return Run(
                failed(f"output is larger than {max_bytes} bytes; write fewer or smaller items"), seconds, log
            )
        output = parse_output(out.data(), max_bytes)
        if proc.returncode != 0 and output.ok:
            tail = log.strip().splitlines()[-1:] if log.strip() else []
            detail = f": {tail[0][:300]}" if tail else ""
            output = failed(f"exited with code {proc.returncode}{detail}")
        elif proc.returncode != 0 and output.error and output.error.startswith("output is"):
            tail = log.strip().splitlines()[-1:] if log.strip() else []
            output = failed(f"exited with code {proc.returncode}" + (f": {tail[0][:300]}" if tail else ""))
        return Run(output, seconds, log)


def _feed(proc: subprocess.Popen[bytes], payload: bytes) -> None:
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError, OSError):
        proc.stdin.write(payload)
    with contextlib.suppress(BrokenPipeError, OSError):
        proc.stdin.close()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


class _Capped(threading.Thread):
    """Reads a pipe to its end, keeping at most `limit` bytes (the head, or the tail)."""

    def __init__(self, pipe: Any, limit: int, keep_tail: bool = False) -> None:
        super().__init__(daemon=True)
        self.pipe, self.limit, self.keep_tail = pipe, limit, keep_tail
        self.chunks: list[bytes] = []
        self.size = 0
        self.overflow = False

    def run(self) -> None:
        while True:
            try:
                chunk = self.pipe.read1(65536)
            except (OSError, ValueError):
                break
            if not chunk:
                break
            self.chunks.append(chunk)
            self.size += len(chunk)
            if self.size >= self.limit:
                if self.keep_tail:
                    joined = b"".join(self.chunks)[-self.limit :]
                    self.chunks, self.size = [joined], len(joined)
                else:
                    self.overflow = True
                    break
        with contextlib.suppress(OSError):
            self.pipe.close()

    def data(self) -> bytes:
        return b"".join(self.chunks)

    def text(self) -> str:
        return self.data()[-STDERR_TAIL:].decode("utf-8", "replace")


# -- job ------------------------------------------------------------------------------------------


class JobExecutor:
    """Synthesis as an ACA Job execution: the synthesizer's Job (SynosCD manages it like any Job; see
    pipeline.synthesizer_job) is started with a template override that adds the two SAS URLs."""

    def __init__(self, arm: Any, blobs: Any) -> None:
        self.arm = arm
        self.blobs = blobs

    def start(
        self, job: str, image: str, cpu: float, memory: str, payload: bytes, timeout: float, key: str
    ) -> dict[str, Any]:
        prefix = f"{job}/{key}-{uuid.uuid4().hex[:8]}"
        lifetime = dt.timedelta(seconds=timeout + 600)
        read_url, write_url = self.blobs.hand_over(prefix, payload, lifetime)
        template = {
            "containers": [
                {
                    "name": CONTAINER,
                    "image": image,
                    "resources": {"cpu": cpu, "memory": memory},
                    "env": [{"name": INPUT_ENV, "value": read_url}, {"name": OUTPUT_ENV, "value": write_url}],
                }
            ]
        }
        execution = self.arm.start_job(job, template=template)
        return {
            "job": job,
            "execution": execution,
            "prefix": prefix,
            "key": key,
            "startedAt": time.time(),
            "deadline": time.time() + timeout + 60,  # the replica timeout, plus the platform's start-up
        }

    def poll(self, inflight: dict[str, Any], max_bytes: int, wait: float) -> Run | None:
        """The finished execution's output, or None while it runs (for at most `wait` seconds here)."""
        job, execution, prefix = inflight["job"], inflight["execution"], inflight["prefix"]
        until = time.monotonic() + max(wait, 0.0)
        delay = 0.2
        while True:
            status = self.arm.execution_status(job, execution)
            if status not in ("Running", "Processing", "Unknown"):
                break
            if time.time() > inflight["deadline"]:
                self.blobs.clean(prefix)
                return Run(failed(f"job execution {execution} did not finish within its timeout"))
            if time.monotonic() + delay > until:
                return None
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
        seconds = time.time() - inflight["startedAt"]
        raw = self.blobs.take_output(prefix, max_bytes)
        self.blobs.clean(prefix)
        if raw is None:
            why = "failed" if status != "Succeeded" else "succeeded"
            return Run(
                failed(f"job execution {execution} {why} without writing its output ({OUTPUT_ENV})"), seconds
            )
        output = parse_output(raw, max_bytes)
        if status != "Succeeded" and output.ok:
            output = Output(output.items, output.results, f"job execution {execution} ended {status}")
        return Run(output, seconds)
