"""Registered images: a job execution whose container image is registered runs a local command instead
of pretending (the local stand-in for "ACA pulls the image and runs it"), so synthesizer jobs and other
job images can be tested end to end.

  POST /_admin/images  {"image": "ghcr.io/x/y:1", "command": ["python3", "synth.py"],
                        "env": {"NAME": "value"}, "cwd": "/path"}     register (or replace) one
  GET  /_admin/images                                                 what is registered

The command gets the registration's `env`, the container's own `env` values from the execution's
template (as ACA sets them) and nothing else of the stand-in's environment. The execution is Running
while the process runs and ends Succeeded (exit code 0) or Failed (any other code, or the job's
replicaTimeout passed: the process group is killed).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING, Any

from emulators.arm.model import ArmError, now
from emulators.httpbase import Request, Response

if TYPE_CHECKING:
    from emulators.arm.emulator import ArmEmulator

BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


class ImagesMixin:
    def _admin_register_image(self: ArmEmulator, req: Request) -> Response:
        spec = req.json() or {}
        image, command = spec.get("image"), spec.get("command")
        if not isinstance(image, str) or not isinstance(command, list) or not command:
            raise ArmError(
                400, "InvalidImage", 'Send {"image": IMAGE, "command": [ARGV...], "env"?, "cwd"?}.'
            )
        self.images[image] = {
            "command": [str(part) for part in command],
            "env": {str(k): str(v) for k, v in (spec.get("env") or {}).items()},
            "cwd": spec.get("cwd"),
        }
        return Response.json(201, {"image": image, **self.images[image]})

    def _admin_images(self: ArmEmulator, req: Request) -> Response:
        return Response.json(200, {"images": self.images})

    def _launch(
        self: ArmEmulator, execution: dict[str, Any], template: dict[str, Any], timeout: float
    ) -> None:
        """Start the registered command of the first container whose image is registered, if any."""
        for container in template.get("containers", []):
            registered = self.images.get(container.get("image", ""))
            if registered is None:
                continue
            env = {"PATH": BASE_PATH, **registered["env"]}
            for var in container.get("env") or []:
                if "value" in var:
                    env[var["name"]] = str(var["value"])
            log = tempfile.NamedTemporaryFile(prefix="synoscd-exec-", suffix=".log", delete=False)  # noqa: SIM115
            proc = subprocess.Popen(
                registered["command"],
                cwd=registered["cwd"] or None,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            log.close()
            execution["_proc"] = proc
            execution["_log"] = log.name
            execution["_due"] = time.monotonic() + timeout
            return

    def _settle_process(self: ArmEmulator, execution: dict[str, Any], at: float) -> None:
        proc: subprocess.Popen[bytes] = execution["_proc"]
        props = execution["properties"]
        code = proc.poll()
        if code is None and at < execution["_due"]:
            return
        if code is None:  # the replica timeout passed
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
            code = -1
        props["status"] = "Succeeded" if code == 0 else "Failed"
        props["endTime"] = now()
        with contextlib.suppress(OSError):
            with open(execution["_log"], "rb") as f:
                execution["_output"] = f.read()[-4000:].decode("utf-8", "replace")
            os.unlink(execution["_log"])
        execution.pop("_proc", None)

    def _stop_processes(self: ArmEmulator) -> None:
        for res in self.resources.values():
            for execution in res.executions:
                proc = execution.get("_proc")
                if proc is not None and proc.poll() is None:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)
