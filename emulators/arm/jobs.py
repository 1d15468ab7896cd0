"""Container Apps jobs: PUT/PATCH/GET/list/DELETE like apps, listSecrets, and executions (start,
list, get) that end Succeeded or Failed after `executionDuration`."""

from __future__ import annotations

import copy
import time
import uuid
from typing import TYPE_CHECKING, Any

from emulators.arm import shapes, timeline
from emulators.arm.model import API_VERSION, PROVIDER, ArmError, Operation, Resource, merge_patch, now, suffix
from emulators.httpbase import Request, Response

if TYPE_CHECKING:
    from emulators.arm.emulator import ArmEmulator


class JobsMixin:
    def _job_body(
        self: ArmEmulator,
        rg: str,
        name: str,
        envelope: dict[str, Any],
        previous: Resource | None,
        env: dict[str, Any],
    ) -> dict[str, Any]:
        props_in = envelope.get("properties") or {}
        connected = env["type"].endswith("connectedEnvironments")
        props = {
            "provisioningState": "InProgress",
            "environmentId": env["id"],
            "workloadProfileName": props_in.get("workloadProfileName")
            or (None if connected else "Consumption"),
            "configuration": shapes.job_configuration(props_in.get("configuration"), previous is None),
            "template": shapes.job_template(
                props_in.get("template"), previous is None, timeline.job_ephemeral_blank(self.service_date)
            ),
            "eventStreamEndpoint": self._event_stream(env, rg, "jobs", name),
        }
        return self._envelope_body("jobs", rg, name, envelope, previous, props)

    def _put_job(self: ArmEmulator, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        return self._apply_job(req, rg, name, self._json_body(req), patch=False)

    def _patch_job(self: ArmEmulator, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        res = self._find("jobs", rg, name)
        envelope = merge_patch(self._request_shape(res.body), self._json_body(req))
        return self._apply_job(req, rg, res.name, envelope, patch=True)

    def _apply_job(
        self: ArmEmulator,
        req: Request,
        rg: str,
        name: str,
        envelope: dict[str, Any],
        patch: bool = False,
        settle_now: bool = False,
    ) -> Response:
        return self._apply(
            req, "jobs", rg, name, envelope, self._job_body, None, 202 if patch else 201, settle_now
        )

    def _get_job(self: ArmEmulator, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        return Response.json(200, self._visible(self._find("jobs", rg, name), req))

    def _list_jobs(self: ArmEmulator, req: Request, sub: str, rg: str) -> Response:
        self._guard(req, sub)
        return self._page(req, self._listing("jobs", rg), lambda r: self._visible(r, req))

    def _delete_job(self: ArmEmulator, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        return self._delete(req, "jobs", rg, name)

    def _list_job_secrets(self: ArmEmulator, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        return self._secrets_answer(self._find("jobs", rg, name))

    # -- executions -----------------------------------------------------------------------------
    def _start_job(self: ArmEmulator, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        res = self._find("jobs", rg, name)
        if res.body["properties"].get("provisioningState") != "Succeeded":
            raise ArmError(
                409,
                "JobNotReady",
                f"Job '{name}' cannot start while provisioningState is "
                f"{res.body['properties'].get('provisioningState')}.",
            )
        override = self._json_body(req) if req.body else {}
        template = copy.deepcopy(override or res.body["properties"]["template"])
        images = {c.get("image") for c in template.get("containers", [])}
        exec_name = f"{res.name}-{suffix()}"
        execution = {
            "id": f"{res.body['id']}/executions/{exec_name}",
            "name": exec_name,
            "type": "Microsoft.App/jobs/executions",
            "properties": {"status": "Running", "startTime": now(), "template": template},
            "_due": time.monotonic() + self.execution_duration,
            "_fails": res.name.lower() in self.failing_jobs or bool(images & self.failing_job_images),
        }
        timeout = float(res.body["properties"].get("configuration", {}).get("replicaTimeout") or 1800)
        self._launch(execution, template, timeout)  # a registered image runs its local command
        res.executions.append(execution)
        self._busy.add(self._key("jobs", rg, name))
        op_id = str(uuid.uuid4())
        self.operations[op_id] = Operation(id=op_id, due=0.0)
        self._execution_results[op_id] = {"name": exec_name, "id": execution["id"]}
        loc = self.location.replace(" ", "").lower()
        location = (
            f"{req.base_url}/subscriptions/{self._sub()}/{PROVIDER}/locations/{loc}"
            f"/executionResults/{op_id}?api-version={API_VERSION}"
        )
        return Response.empty(202, {"Location": location, "retry-after-ms": "20"})

    def _get_execution_result(self: ArmEmulator, req: Request, sub: str, loc: str, op: str) -> Response:
        self._guard(req, sub)
        result = self._execution_results.get(op)
        if result is None:
            raise ArmError(404, "OperationNotFound", f"Operation '{op}' was not found.")
        return Response.json(200, result)

    @staticmethod
    def _public_execution(execution: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in execution.items() if not k.startswith("_")}

    def _list_executions(self: ArmEmulator, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        res = self._find("jobs", rg, name)
        newest_first = [self._public_execution(e) for e in reversed(res.executions)]
        return self._page(req, newest_first)

    def _get_execution(
        self: ArmEmulator, req: Request, sub: str, rg: str, name: str, execution: str
    ) -> Response:
        self._guard(req, sub)
        res = self._find("jobs", rg, name)
        for e in res.executions:
            if e["name"].lower() == execution.lower():
                return Response.json(200, self._public_execution(e))
        raise ArmError(404, "ResourceNotFound", f"Execution '{execution}' of job '{name}' was not found.")
