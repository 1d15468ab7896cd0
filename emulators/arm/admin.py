"""The ARM stand-in's admin API (outside the real API): configuration, seeding (through the normal
rules or verbatim from a recorded GET body), out-of-band drift, injected failures, state dump."""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

from emulators.arm import timeline
from emulators.arm.model import ArmError, Resource, merge_patch
from emulators.httpbase import Request, Response

if TYPE_CHECKING:
    from emulators.arm.emulator import ArmEmulator

SUBSCRIPTION = re.compile(r"/subscriptions/[0-9a-fA-F-]{36}(?=/|$)")


class AdminMixin:
    def _admin_config(self: ArmEmulator, req: Request) -> Response:
        spec = req.json() or {}
        self.provisioning_delay = float(spec.get("provisioningDelay", self.provisioning_delay))
        self.execution_duration = float(spec.get("executionDuration", self.execution_duration))
        self.page_size = int(spec.get("pageSize", self.page_size))
        if "serviceDate" in spec:
            try:
                self.service_date = timeline.check(spec["serviceDate"])
            except ValueError as exc:
                raise ArmError(400, "InvalidServiceDate", str(exc)) from exc
        return Response.json(
            200,
            {
                "provisioningDelay": self.provisioning_delay,
                "executionDuration": self.execution_duration,
                "pageSize": self.page_size,
                "serviceDate": self.service_date,
            },
        )

    def _admin_seed(self: ArmEmulator, req: Request, kind: str) -> Response:
        spec = req.json() or {}
        self.in_subscription(spec.get("subscription"))
        rg = spec.get("resourceGroup", self.default_rg)
        envelope = copy.deepcopy(spec.get("envelope") or {})
        envelope.setdefault("location", self.location)
        props = envelope.setdefault("properties", {})
        if not props.get("environmentId"):
            props["environmentId"] = self._default_env_id()
        apply = self._apply_app if kind == "containerApps" else self._apply_job
        resp = apply(req, rg, spec["name"], envelope, patch=False, settle_now=True)
        res = self._find(kind, rg, spec["name"])
        return Response.json(resp.status, self._visible(res, req))

    def _admin_raw_seed(self: ArmEmulator, req: Request, kind: str) -> Response:
        """Store a recorded GET body verbatim as the resource's GET answer; only its id, name,
        subscription, resource group and environment ids become the stand-in's."""
        spec = req.json() or {}
        name, body = spec.get("name"), spec.get("body")
        if not name or not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise ArmError(400, "InvalidRawSeed", 'Send {"name": NAME, "body": <a recorded GET body>}.')
        self.in_subscription(spec.get("subscription"))
        rg = spec.get("resourceGroup", self.default_rg)
        env = self.environments.get(
            (self._sub().lower(), rg.lower(), str(spec.get("environment", self.default_env)).lower())
        )
        if env is None:
            raise ArmError(404, "ManagedEnvironmentNotFound", f"No environment {spec.get('environment')!r}.")
        self._settle()
        body = copy.deepcopy(body)
        body["id"] = self._resource_id(kind, rg, name)
        body["name"] = name
        props = body["properties"]
        for k in ("environmentId", "managedEnvironmentId"):
            if props.get(k):
                props[k] = env["id"]
        if isinstance(props.get("eventStreamEndpoint"), str):
            props["eventStreamEndpoint"] = re.sub(
                r"/resourceGroups/[^/]+/containerApps/[^/]+/",
                f"/resourceGroups/{rg}/containerApps/{name}/",
                props["eventStreamEndpoint"],
            )
        body = _rewrite_subscription(body, self._sub())
        key = self._key(kind, rg, name)
        previous = self.resources.get(key)
        if previous is not None and previous.op is not None:
            raise ArmError(409, "OperationInProgress", f"'{name}' has an operation in progress.")
        res = Resource(kind, rg, name, body, raw=True, sub=self._sub())
        secrets = (props.get("configuration") or {}).get("secrets") or []
        res.secret_values = {
            s["name"]: s.get("value") or "" for s in secrets if isinstance(s, dict) and "name" in s
        }
        if kind == "containerApps":
            self._raw_revisions(res)
        self.resources[key] = res
        return Response.json(201, self._visible(res, req))

    def _raw_revisions(self: ArmEmulator, res: Resource) -> None:
        """The seeded app's latest (and latest ready) revision, so revision reads work on it."""
        props = res.body["properties"]
        names = [props.get("latestReadyRevisionName"), props.get("latestRevisionName")]
        for rev_name in dict.fromkeys(n for n in names if n):
            ready = rev_name == props.get("latestReadyRevisionName")
            res.revisions.append(
                {
                    "id": f"/subscriptions/{res.sub}/resourceGroups/{res.rg}/providers/"
                    f"Microsoft.App/containerApps/{res.name}/revisions/{rev_name}",
                    "name": rev_name,
                    "type": "Microsoft.App/containerapps/revisions",
                    "properties": {
                        "fqdn": props.get("latestRevisionFqdn") or "",
                        "template": copy.deepcopy(props.get("template") or {}),
                        "active": True,
                        "replicas": 1 if ready else 0,
                        "trafficWeight": 100 if rev_name == names[-1] else 0,
                        "healthState": "Healthy" if ready else "None",
                        "provisioningState": "Provisioned",
                        "runningState": "Running" if ready else "Activating",
                    },
                }
            )

    def _default_env_id(self: ArmEmulator) -> str:
        key = (self._sub().lower(), self.default_rg.lower(), self.default_env.lower())
        if key not in self.environments:
            raise ArmError(
                400, "NoEnvironment", "Name the envelope's properties.environmentId in this subscription."
            )
        return self.environments[key]["id"]

    def _admin_drift(self: ArmEmulator, req: Request, kind: str, name: str) -> Response:
        spec = req.json() or {}
        if isinstance(spec, dict):
            self.in_subscription(spec.pop("subscription", None))
        rg = spec.pop("resourceGroup", self.default_rg) if isinstance(spec, dict) else self.default_rg
        self._settle()
        res = self._find(kind, rg, name)
        envelope = merge_patch(self._request_shape(res.body), spec)
        res.op = None
        apply = self._apply_app if kind == "containerApps" else self._apply_job
        apply(req, rg, res.name, envelope, patch=True, settle_now=True)
        return Response.json(200, self._visible(self._find(kind, rg, name), req))

    def _admin_crashing(self: ArmEmulator, req: Request) -> Response:
        spec = req.json() or {}
        image = spec["image"]
        if spec.get("crashing", True):
            self.crashing_images.add(image)
            for res in self.resources.values():
                for rev in res.revisions[-1:]:
                    if image in {c.get("image") for c in rev["properties"]["template"].get("containers", [])}:
                        rev["properties"].update(runningState="Failed", healthState="Unhealthy", replicas=0)
        else:
            self.crashing_images.discard(image)
        return Response.json(200, {"crashingImages": sorted(self.crashing_images)})

    def _admin_failing_jobs(self: ArmEmulator, req: Request) -> Response:
        spec = req.json() or {}
        if spec.get("job"):
            self.failing_jobs.add(spec["job"].lower())
        if spec.get("image"):
            self.failing_job_images.add(spec["image"])
        return Response.json(
            200, {"jobs": sorted(self.failing_jobs), "images": sorted(self.failing_job_images)}
        )

    def _admin_lro_failures(self: ArmEmulator, req: Request) -> Response:
        spec = req.json() or {}
        rule = {
            "method": str(spec.get("method", "*")).upper(),
            "path": spec.get("path", ".*"),
            "count": int(spec.get("count", 1)),
            "code": spec.get("code", "OperationFailed"),
            "message": spec.get("message", "The operation failed (injected by a test)."),
        }
        self.lro_failures.append(rule)
        return Response.json(201, rule)

    def _admin_environment(self: ArmEmulator, req: Request) -> Response:
        spec = req.json() or {}
        kind = spec.get("kind", "managedEnvironments")
        if kind not in ("managedEnvironments", "connectedEnvironments"):
            raise ArmError(
                400, "InvalidEnvironmentKind", "kind is managedEnvironments or connectedEnvironments."
            )
        env = self.add_environment(
            spec.get("resourceGroup", self.default_rg), spec["name"], kind, spec.get("subscription")
        )
        return Response.json(201, env)

    def _admin_resource_group(self: ArmEmulator, req: Request) -> Response:
        name = str((req.json() or {}).get("name") or "")
        if not name:
            raise ArmError(400, "InvalidResourceGroup", "name is required.")
        self.resource_groups.add(name.lower())
        return Response.json(201, {"name": name})

    def _admin_state(self: ArmEmulator, req: Request) -> Response:
        self._settle()
        return Response.json(
            200,
            {
                "resources": [
                    {
                        "kind": r.kind,
                        "subscription": r.sub or self.subscription_id,
                        "resourceGroup": r.rg,
                        "name": r.name,
                        "raw": r.raw,
                        "body": r.body,
                        "revisions": r.revisions,
                        "executions": [self._public_execution(e) for e in r.executions],
                    }
                    for r in self.resources.values()
                ],
                "environments": list(self.environments.values()),
            },
        )


def _rewrite_subscription(body: dict[str, Any], subscription: str) -> dict[str, Any]:
    """Every `/subscriptions/<guid>` in the body names the stand-in's subscription (ids of identities,
    certificates, environments, the event stream)."""

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {SUBSCRIPTION.sub(f"/subscriptions/{subscription}", k): walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        if isinstance(node, str):
            return SUBSCRIPTION.sub(f"/subscriptions/{subscription}", node)
        return node

    return walk(body)
