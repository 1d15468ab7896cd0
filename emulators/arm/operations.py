"""Long-running operations and lazy settling.

Operations settle lazily: each resource carries the time its operation completes and every request
first settles what is due, so no background thread mutates state behind a test's back."""

from __future__ import annotations

import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from emulators.arm.model import API_VERSION, PROVIDER, ArmError, Operation, Resource, now
from emulators.httpbase import Request, Response

if TYPE_CHECKING:
    from emulators.arm.emulator import ArmEmulator


class OperationsMixin:
    def _new_operation(self: ArmEmulator, method: str, path: str) -> Operation:
        failure = None
        for rule in self.lro_failures:
            if rule["count"] > 0 and rule["method"] in ("*", method) and re.search(rule["path"], path):
                rule["count"] -= 1
                failure = {"code": rule["code"], "message": rule["message"]}
                break
        op = Operation(id=str(uuid.uuid4()), due=time.monotonic() + self.provisioning_delay, failure=failure)
        self.operations[op.id] = op
        return op

    def _lro_headers(self: ArmEmulator, req: Request, op: Operation) -> dict[str, str]:
        loc = self.location.replace(" ", "").lower()
        url = (
            f"{req.base_url}/subscriptions/{self._sub()}/{PROVIDER}/locations/{loc}"
            f"/operationStatuses/{op.id}?api-version={API_VERSION}"
        )
        return {"Azure-AsyncOperation": url, **self._retry_after(op)}

    def _retry_after(self, op: Operation) -> dict[str, str]:
        """Whole seconds like ARM while a second or more remains, else milliseconds: the SDK reads
        Retry-After as an int and treats 0 as absent (falling back to its 30 s default)."""
        remaining = op.due - time.monotonic()
        if remaining >= 1:
            return {"Retry-After": str(int(remaining))}
        return {"retry-after-ms": str(max(20, int(remaining * 1000)))}

    def _get_operation(self: ArmEmulator, req: Request, sub: str, loc: str, op: str) -> Response:
        self._guard(req, sub)
        operation = self.operations.get(op)
        if operation is None:
            raise ArmError(404, "OperationNotFound", f"Operation '{op}' was not found.")
        status = operation.status(time.monotonic())
        body: dict[str, Any] = {"id": req.path, "name": op, "status": status, "startTime": operation.started}
        headers: dict[str, str] = {}
        if status == "InProgress":
            headers.update(self._retry_after(operation))
        else:
            body["endTime"] = operation.ended or now()
        if status == "Failed":
            body["error"] = operation.failure
        return Response.json(200, body, headers)

    # -- lazy settling --------------------------------------------------------------------------
    def _settle(self: ArmEmulator) -> None:
        """Finish what is due. Only resources with work in flight are looked at (`_busy`), so a
        thousand settled apps cost nothing per request."""
        at = time.monotonic()
        for key in list(self._busy):
            res = self.resources.get(key)
            if res is None:
                self._busy.discard(key)
                continue
            self._settle_operation(key, res, at)
            for execution in res.executions:
                p = execution["properties"]
                if p["status"] == "Running" and "_proc" in execution:
                    self._settle_process(execution, at)
                elif p["status"] == "Running" and at >= execution["_due"]:
                    p["status"] = "Failed" if execution["_fails"] else "Succeeded"
                    p["endTime"] = now()
            if res.op is None and all(e["properties"]["status"] != "Running" for e in res.executions):
                self._busy.discard(key)

    def _settle_operation(
        self: ArmEmulator, key: tuple[str, str, str, str], res: Resource, at: float
    ) -> None:
        op = res.op
        if op is None or op.status(at) == "InProgress":
            return
        op.ended = now()
        res.op = None
        props = res.body["properties"]
        if res.op_kind == "delete":
            if op.failure:
                props["provisioningState"] = "Failed"
            else:
                del self.resources[key]
            return
        if op.failure:
            props["provisioningState"] = "Failed"
            if res.kind == "containerApps":
                props["runningStatus"] = "Stopped" if not props.get("latestReadyRevisionName") else "Running"
            return
        props["provisioningState"] = "Succeeded"
        if res.kind == "containerApps":
            self._finish_revision(res)
