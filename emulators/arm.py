"""ARM `Microsoft.App` stand-in at api-version 2026-07-01: container apps (with revisions), jobs (with
executions), managed environments (read), long-running operations, and ACA's habits — server
defaults, read-only fields, revisions only on template changes, 409 while provisioning, 400 on
invalid cpu/memory totals. Shapes follow tests/fixtures/aca-examples/2026-07-01.

Operations settle lazily: each record carries the time its operation completes and every request
first settles what is due, so no background thread mutates state behind a test's back.

ARM-specific admin API (besides the base's reset/calls/faults/latency):
  PUT  /_admin/config           {"provisioningDelay": s, "executionDuration": s, "pageSize": n}
  POST /_admin/apps             {"name", "resourceGroup"?, "envelope": <PUT body>}  seed, settled
  POST /_admin/jobs             same for jobs
  PATCH /_admin/apps/{name}     JSON merge patch of the stored app (drift made out of band)
  PATCH /_admin/jobs/{name}     same for jobs
  POST /_admin/crashing-images  {"image", "crashing": true}: revisions of it fail, never become ready
  POST /_admin/failing-jobs     {"job"?, "image"?}: executions of it end Failed
  POST /_admin/lro-failures     {"method", "path" (regex), "count", "code", "message"}: the next
                                matching long-running operations end Failed
  POST /_admin/environments     {"name", "resourceGroup"?}
  GET  /_admin/state            everything, for debugging
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
import secrets
import string
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from emulators.httpbase import Emulator, HttpError, Request, Response
from emulators.identity import TokenIssuer

API_VERSION = "2026-07-01"
ARM_AUDIENCE = "https://management."  # management.azure.com / management.core.windows.net
PROVIDER = "providers/Microsoft.App"
SUB = r"/subscriptions/(?P<sub>[^/]+)"
RG = SUB + r"/resourceGroups/(?P<rg>[^/]+)"
NAME = r"(?P<name>[^/]+)"

VALID_TOTALS = {Decimal("0.25") * i: Decimal("0.5") * i for i in range(1, 17)}  # up to 4 cpu / 8Gi
TAG_NAME_FORBIDDEN = set("<>%&\\?/")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def _suffix(n: int = 7) -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(n))


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def parse_memory_gi(text: str) -> Decimal | None:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(Gi|Mi)\s*", str(text))
    if not m:
        return None
    value = Decimal(m.group(1))
    return value if m.group(2) == "Gi" else value / 1024


@dataclass
class Operation:
    """A long-running operation: its status URL answers InProgress until `due`, then the outcome."""

    id: str
    due: float
    failure: dict[str, Any] | None = None
    started: str = field(default_factory=_now)
    ended: str | None = None

    def status(self, now: float) -> str:
        if now < self.due:
            return "InProgress"
        return "Failed" if self.failure else "Succeeded"


@dataclass
class Resource:
    """A container app or job as stored: `body` is what GET answers (status fields settled lazily)."""

    kind: str  # "containerApps" | "jobs"
    rg: str
    name: str
    body: dict[str, Any]
    op: Operation | None = None
    op_kind: str | None = None  # create | update | delete
    revisions: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)


class ArmEmulator(Emulator):
    name = "arm"
    # The managed-identity endpoint lives beside ARM but is no ARM call: not logged, no faults.
    unlogged_prefixes = ("/_admin/", "/msi/")

    def __init__(
        self,
        issuer: TokenIssuer,
        subscription_id: str,
        resource_group: str,
        environment: str,
        location: str = "East US",
    ) -> None:
        super().__init__()
        self.issuer = issuer
        self.subscription_id = subscription_id
        self.default_rg = resource_group
        self.default_env = environment
        self.location = location
        self.provisioning_delay = 0.2
        self.execution_duration = 0.2
        self.page_size = 100
        self._init_state()
        self._register()

    # -- state ----------------------------------------------------------------------------------
    def _init_state(self) -> None:
        self.resources: dict[tuple[str, str, str], Resource] = {}
        self.environments: dict[tuple[str, str], dict[str, Any]] = {}
        self.operations: dict[str, Operation] = {}
        self.crashing_images: set[str] = set()
        self.failing_jobs: set[str] = set()
        self.failing_job_images: set[str] = set()
        self.lro_failures: list[dict[str, Any]] = []
        self._execution_results: dict[str, dict[str, str]] = {}
        self._busy: set[tuple[str, str, str]] = set()  # resources with an operation or execution running
        self.add_environment(self.default_rg, self.default_env)

    def reset(self) -> None:
        with self.lock:
            super().reset()
            self.provisioning_delay = 0.2
            self.execution_duration = 0.2
            self.page_size = 100
            self._init_state()

    def add_environment(self, rg: str, name: str) -> dict[str, Any]:
        env_id = (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{rg}/{PROVIDER}/managedEnvironments/{name}"
        )
        body = {
            "id": env_id,
            "name": name,
            "type": "Microsoft.App/managedEnvironments",
            "location": self.location,
            "tags": {},
            "properties": {
                "provisioningState": "Succeeded",
                "defaultDomain": f"{name}.local-{_digest(name)[:8]}.eastus.azurecontainerapps.io",
                "staticIp": "127.0.0.1",
                "eventStreamEndpoint": f"https://eastus.azurecontainerapps.dev/subscriptions/{self.subscription_id}"
                f"/resourceGroups/{rg}/managedEnvironments/{name}/eventstream",
                "customDomainConfiguration": {"customDomainVerificationId": _digest(env_id)[:40].upper()},
                "workloadProfiles": [{"name": "Consumption", "workloadProfileType": "Consumption"}],
                "zoneRedundant": False,
                "infrastructureResourceGroup": f"ME_{name}_{rg}_eastus",
                "peerAuthentication": {"mtls": {"enabled": False}},
                "peerTrafficConfiguration": {"encryption": {"enabled": False}},
            },
        }
        self.environments[(rg.lower(), name.lower())] = body
        return body

    # -- routes ---------------------------------------------------------------------------------
    def _register(self) -> None:
        apps = RG + rf"/{PROVIDER}/containerApps"
        jobs = RG + rf"/{PROVIDER}/jobs"
        self.add_route("GET", apps, self._list_apps)
        self.add_route("GET", apps + "/" + NAME, self._get_app)
        self.add_route("PUT", apps + "/" + NAME, self._put_app)
        self.add_route("PATCH", apps + "/" + NAME, self._patch_app)
        self.add_route("DELETE", apps + "/" + NAME, self._delete_app)
        self.add_route("GET", apps + "/" + NAME + "/revisions", self._list_revisions)
        self.add_route("GET", apps + "/" + NAME + r"/revisions/(?P<rev>[^/]+)", self._get_revision)
        self.add_route("GET", jobs, self._list_jobs)
        self.add_route("GET", jobs + "/" + NAME, self._get_job)
        self.add_route("PUT", jobs + "/" + NAME, self._put_job)
        self.add_route("DELETE", jobs + "/" + NAME, self._delete_job)
        self.add_route("POST", jobs + "/" + NAME + "/start", self._start_job)
        self.add_route("GET", jobs + "/" + NAME + "/executions", self._list_executions)
        self.add_route("GET", jobs + "/" + NAME + r"/executions/(?P<execution>[^/]+)", self._get_execution)
        self.add_route("GET", RG + rf"/{PROVIDER}/managedEnvironments", self._list_environments)
        self.add_route("GET", RG + rf"/{PROVIDER}/managedEnvironments/" + NAME, self._get_environment)
        self.add_route(
            "GET",
            SUB + rf"/{PROVIDER}/locations/(?P<loc>[^/]+)/operationStatuses/(?P<op>[^/]+)",
            self._get_operation,
        )
        self.add_route(
            "GET",
            SUB + rf"/{PROVIDER}/locations/(?P<loc>[^/]+)/executionResults/(?P<op>[^/]+)",
            self._get_execution_result,
        )
        self.add_admin_route("GET", r"/msi/token", self.issuer.handle_token_request)
        self.add_admin_route("PUT", r"/_admin/config", self._admin_config)
        self.add_admin_route("POST", r"/_admin/apps", lambda r: self._admin_seed(r, "containerApps"))
        self.add_admin_route("POST", r"/_admin/jobs", lambda r: self._admin_seed(r, "jobs"))
        self.add_admin_route(
            "PATCH",
            r"/_admin/apps/(?P<name>[^/]+)",
            lambda r, name: self._admin_drift(r, "containerApps", name),
        )
        self.add_admin_route(
            "PATCH", r"/_admin/jobs/(?P<name>[^/]+)", lambda r, name: self._admin_drift(r, "jobs", name)
        )
        self.add_admin_route("POST", r"/_admin/crashing-images", self._admin_crashing)
        self.add_admin_route("POST", r"/_admin/failing-jobs", self._admin_failing_jobs)
        self.add_admin_route("POST", r"/_admin/lro-failures", self._admin_lro_failures)
        self.add_admin_route("POST", r"/_admin/environments", self._admin_environment)
        self.add_admin_route("GET", r"/_admin/state", self._admin_state)

    def dispatch(self, req: Request) -> Response:
        resp = super().dispatch(req)
        if not req.path.startswith(self.unlogged_prefixes):
            resp.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
            kind = "reads" if req.method == "GET" else ("deletes" if req.method == "DELETE" else "writes")
            resp.headers.setdefault(f"x-ms-ratelimit-remaining-subscription-{kind}", "11999")
        return resp

    def error_response(self, status: int, code: str, message: str) -> Response:
        return Response.json(status, {"error": {"code": code, "message": message, "details": []}})

    def _fail(self, status: int, code: str, message: str) -> HttpError:
        return HttpError(self.error_response(status, code, message))

    def _guard(self, req: Request, sub: str) -> None:
        """Bearer token, api-version and subscription checks every ARM call makes, then settle."""
        if self.issuer.verify(req.header("Authorization"), ARM_AUDIENCE) is None:
            raise HttpError(
                Response(
                    401,
                    json.dumps(
                        {
                            "error": {
                                "code": "AuthenticationFailed",
                                "message": "Authentication failed. The 'Authorization' header is "
                                "missing or its token is not valid for this resource.",
                            }
                        }
                    ).encode(),
                    {
                        "Content-Type": "application/json",
                        "WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com'
                        '/common", error="invalid_token"',
                    },
                )
            )
        if "api-version" not in req.query:
            raise self._fail(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if sub.lower() != self.subscription_id.lower():
            raise self._fail(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        self._settle()

    # -- lazy settling --------------------------------------------------------------------------
    def _settle(self) -> None:
        """Finish what is due. Only resources with work in flight are looked at (`_busy`), so a
        thousand settled apps cost nothing per request."""
        now = time.monotonic()
        for key in list(self._busy):
            res = self.resources.get(key)
            if res is None:
                self._busy.discard(key)
                continue
            self._settle_operation(key, res, now)
            for execution in res.executions:
                p = execution["properties"]
                if p["status"] == "Running" and now >= execution["_due"]:
                    p["status"] = "Failed" if execution["_fails"] else "Succeeded"
                    p["endTime"] = _now()
            if res.op is None and all(e["properties"]["status"] != "Running" for e in res.executions):
                self._busy.discard(key)

    def _settle_operation(self, key: tuple[str, str, str], res: Resource, now: float) -> None:
        op = res.op
        if op is None or op.status(now) == "InProgress":
            return
        op.ended = _now()
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
        else:
            props["runningState"] = "Ready"

    def _finish_revision(self, res: Resource) -> None:
        props = res.body["properties"]
        latest = res.revisions[-1] if res.revisions else None
        if latest is None:
            return
        rp = latest["properties"]
        images = {c.get("image") for c in rp["template"].get("containers", [])}
        if images & self.crashing_images:
            rp.update(
                provisioningState="Failed",
                runningState="Failed",
                healthState="Unhealthy",
                replicas=0,
                active=True,
            )
        else:
            rp.update(
                provisioningState="Provisioned",
                runningState="Running",
                healthState="Healthy",
                replicas=max(1, int(rp["template"].get("scale", {}).get("minReplicas", 0) or 0)),
                active=True,
            )
            props["latestReadyRevisionName"] = latest["name"]
            # Single revision mode: the ready revision takes all traffic, the older ones go inactive.
            for older in res.revisions[:-1]:
                older["properties"].update(active=False, trafficWeight=0, replicas=0, runningState="Stopped")
            rp["trafficWeight"] = 100
        props["runningStatus"] = "Running" if props.get("latestReadyRevisionName") else "Progressing"

    def _new_operation(self, method: str, path: str) -> Operation:
        failure = None
        for rule in self.lro_failures:
            if rule["count"] > 0 and rule["method"] in ("*", method) and re.search(rule["path"], path):
                rule["count"] -= 1
                failure = {
                    "code": rule.get("code", "OperationFailed"),
                    "message": rule.get("message", "The operation failed (injected by a test)."),
                }
                break
        op = Operation(id=str(uuid.uuid4()), due=time.monotonic() + self.provisioning_delay, failure=failure)
        self.operations[op.id] = op
        return op

    def _lro_headers(self, req: Request, op: Operation) -> dict[str, str]:
        loc = self.location.replace(" ", "").lower()
        url = (
            f"{req.base_url}/subscriptions/{self.subscription_id}/{PROVIDER}/locations/{loc}"
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

    def _get_operation(self, req: Request, sub: str, loc: str, op: str) -> Response:
        self._guard(req, sub)
        operation = self.operations.get(op)
        if operation is None:
            raise self._fail(404, "OperationNotFound", f"Operation '{op}' was not found.")
        status = operation.status(time.monotonic())
        body: dict[str, Any] = {"id": req.path, "name": op, "status": status, "startTime": operation.started}
        headers: dict[str, str] = {}
        if status == "InProgress":
            headers.update(self._retry_after(operation))
        else:
            body["endTime"] = operation.ended or _now()
        if status == "Failed":
            body["error"] = operation.failure
        return Response.json(200, body, headers)

    # -- shared resource helpers ----------------------------------------------------------------
    def _key(self, kind: str, rg: str, name: str) -> tuple[str, str, str]:
        return (kind, rg.lower(), name.lower())

    def _find(self, kind: str, rg: str, name: str) -> Resource:
        res = self.resources.get(self._key(kind, rg, name))
        if res is None:
            label = "containerApps" if kind == "containerApps" else "jobs"
            raise self._fail(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.App/{label}/{name}' under resource group '{rg}' "
                "was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            )
        return res

    def _resource_id(self, kind: str, rg: str, name: str) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{rg}/{PROVIDER}/{kind}/{name}"

    def _page(self, req: Request, items: list[Any], render: Any = None) -> Response:
        """One page of `items` (copied through `render` only for the page served) with ARM's nextLink."""
        start = int(req.query.get("$skipToken", "0") or 0)
        size = self.page_size
        page = items[start : start + size]
        if render is not None:
            page = [render(item) for item in page]
        next_link = None
        if start + size < len(items):
            next_link = (
                f"{req.base_url}{req.path}?api-version={req.query['api-version']}&$skipToken={start + size}"
            )
        return Response.json(200, {"value": page, "nextLink": next_link})

    def _visible(self, res: Resource) -> dict[str, Any]:
        return copy.deepcopy(res.body)

    def _environment_for(self, props: dict[str, Any]) -> dict[str, Any]:
        env_id = props.get("environmentId") or props.get("managedEnvironmentId")
        if not env_id:
            raise self._fail(
                400,
                "InvalidRequestContent",
                "properties.environmentId is required: the id of the managed environment.",
            )
        m = re.fullmatch(
            rf"/subscriptions/[^/]+/resourceGroups/([^/]+)/{PROVIDER}/managedEnvironments/([^/]+)",
            env_id,
            re.IGNORECASE,
        )
        env = self.environments.get((m.group(1).lower(), m.group(2).lower())) if m else None
        if env is None:
            raise self._fail(404, "ManagedEnvironmentNotFound", f"The environment '{env_id}' was not found.")
        return env

    def _validate_common(self, envelope: dict[str, Any], name: str) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", name) or "--" in name:
            raise self._fail(
                400,
                "ContainerAppInvalidName",
                f"Invalid name '{name}': 2-32 lowercase letters, digits or '-', starting with a "
                "letter, ending with a letter or digit, without '--'.",
            )
        if not envelope.get("location"):
            raise self._fail(
                400, "LocationRequired", "The location property is required for this definition."
            )
        tags = envelope.get("tags") or {}
        if len(tags) > 50:
            raise self._fail(400, "InvalidTagCount", f"{len(tags)} tags given; at most 50 are allowed.")
        for tag, value in tags.items():
            if len(tag) > 512 or TAG_NAME_FORBIDDEN & set(tag):
                raise self._fail(
                    400,
                    "InvalidTagNameCharacters",
                    f"The tag name '{tag}' has characters that are not allowed (<>%&\\?/) or is "
                    "longer than 512 characters.",
                )
            if len(str(value)) > 256:
                raise self._fail(
                    400, "InvalidTagValueLength", f"The value of tag '{tag}' exceeds 256 characters."
                )
        template = envelope.get("properties", {}).get("template") or {}
        containers = template.get("containers") or []
        if not containers:
            raise self._fail(
                400, "ContainerAppInvalidTemplate", "template.containers must hold at least one container."
            )
        for c in containers:
            if not c.get("name") or not c.get("image"):
                raise self._fail(
                    400, "ContainerAppInvalidTemplate", "Each container needs a name and an image."
                )
        self._validate_totals(containers)

    def _validate_totals(self, containers: list[dict[str, Any]]) -> None:
        cpu = Decimal(0)
        mem = Decimal(0)
        for c in containers:
            res = c.get("resources") or {}
            try:
                cpu += Decimal(str(res.get("cpu", 0.5)))
            except InvalidOperation:
                cpu = Decimal(-1)
            parsed = parse_memory_gi(res.get("memory", "1Gi"))
            mem += parsed if parsed is not None else Decimal(-1)
        if VALID_TOTALS.get(cpu) != mem:
            raise self._fail(
                400,
                "ContainerAppInvalidResourceTotal",
                f"The total requested CPU and memory resources for this application (CPU: {cpu}, memory: "
                f"{mem}Gi) is invalid. Total CPU and memory for all containers defined in a Container App "
                "must add up to one of the following CPU - Memory combinations: [cpu: 0.25, memory: 0.5Gi]; "
                "[cpu: 0.5, memory: 1.0Gi]; ... [cpu: 4.0, memory: 8.0Gi]",
            )

    def _normalise_identity(self, identity: dict[str, Any] | None) -> dict[str, Any] | None:
        if not identity:
            return None
        out = copy.deepcopy(identity)
        if "SystemAssigned" in str(out.get("type", "")):
            out.setdefault(
                "principalId", str(uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(identity, sort_keys=True)))
            )
            out.setdefault("tenantId", "72f988bf-0000-4000-8000-00000000feed")
        for rid, entry in (out.get("userAssignedIdentities") or {}).items():
            entry = dict(entry or {})
            entry.setdefault("clientId", str(uuid.uuid5(uuid.NAMESPACE_URL, "client" + rid.lower())))
            entry.setdefault("principalId", str(uuid.uuid5(uuid.NAMESPACE_URL, "principal" + rid.lower())))
            out["userAssignedIdentities"][rid] = entry
        return out

    def _normalise_template(self, template: dict[str, Any], ingress: dict[str, Any] | None) -> dict[str, Any]:
        t = copy.deepcopy(template)
        for c in t.get("containers", []) + t.get("initContainers", []):
            res = c.setdefault("resources", {})
            res.setdefault("cpu", 0.5)
            res.setdefault("memory", "1Gi")
            res.setdefault("ephemeralStorage", "2Gi")
        if ingress and ingress.get("targetPort"):
            # ACA adds TCP probes on the target port when ingress is on and a container gives none.
            port = ingress["targetPort"]
            for c in t.get("containers", []):
                if not c.get("probes"):
                    c["probes"] = [
                        {
                            "type": kind,
                            "tcpSocket": {"port": port},
                            "initialDelaySeconds": delay,
                            "periodSeconds": 10 if kind != "Startup" else 1,
                            "timeoutSeconds": 5,
                            "failureThreshold": 3 if kind != "Startup" else 240,
                            "successThreshold": 1,
                        }
                        for kind, delay in (("Liveness", 1), ("Readiness", 1), ("Startup", 1))
                    ]
        scale = t.setdefault("scale", {})
        scale.setdefault("minReplicas", 0)
        scale.setdefault("maxReplicas", 10)
        scale.setdefault("cooldownPeriod", 300)
        scale.setdefault("pollingInterval", 30)
        for rule in scale.get("rules") or []:
            custom = rule.get("custom")
            # A request's {"custom": {"type": "http"|"tcp"}} comes back as {"http": ...} / {"tcp": ...}.
            if isinstance(custom, dict) and custom.get("type") in ("http", "tcp"):
                kind = rule.pop("custom").pop("type")
                rule[kind] = custom
        return t

    def _resource_body(
        self,
        kind: str,
        rg: str,
        name: str,
        envelope: dict[str, Any],
        previous: Resource | None,
        env: dict[str, Any],
        props: dict[str, Any],
    ) -> dict[str, Any]:
        """What GET answers for an app or job: the request's owned parts, the kind's `props`, and the
        fields ARM adds (ids, systemData, environment, workload profile, outbound IPs, event stream)."""
        created = previous.body["systemData"]["createdAt"] if previous else _now()
        props_in = envelope.get("properties") or {}
        body: dict[str, Any] = {
            "id": self._resource_id(kind, rg, name),
            "name": name,
            "type": f"Microsoft.App/{kind}",
            "location": envelope["location"],
            "systemData": {
                "createdBy": "synoscd-local",
                "createdByType": "Application",
                "createdAt": created,
                "lastModifiedBy": "synoscd-local",
                "lastModifiedByType": "Application",
                "lastModifiedAt": _now(),
            },
            "properties": {
                "environmentId": env["id"],
                "workloadProfileName": props_in.get("workloadProfileName", "Consumption"),
                "outboundIpAddresses": ["127.0.0.1"],
                "eventStreamEndpoint": env["properties"]["eventStreamEndpoint"].replace(
                    "/eventstream", f"/{kind}/{name}/eventstream"
                ),
                **props,
            },
        }
        if envelope.get("tags"):
            body["tags"] = dict(envelope["tags"])
        identity = self._normalise_identity(envelope.get("identity"))
        if identity:
            body["identity"] = identity
        return body

    # -- container apps -------------------------------------------------------------------------
    def _app_body(
        self, rg: str, name: str, envelope: dict[str, Any], previous: Resource | None, env: dict[str, Any]
    ) -> dict[str, Any]:
        props_in = envelope.get("properties") or {}
        config = copy.deepcopy(props_in.get("configuration") or {})
        config.setdefault("activeRevisionsMode", "Single")
        config.setdefault("maxInactiveRevisions", 100)
        secrets_in = config.get("secrets")
        if secrets_in:
            # Secret values never come back on GET (only listSecrets returns them).
            config["secrets"] = [{k: v for k, v in s.items() if k != "value"} for s in secrets_in]
        ingress = config.get("ingress")
        domain = env["properties"]["defaultDomain"]
        if ingress is not None:
            ingress.setdefault("external", False)
            ingress.setdefault("transport", "auto")
            ingress.setdefault("allowInsecure", False)
            ingress.setdefault("traffic", [{"latestRevision": True, "weight": 100}])
            ingress.setdefault("stickySessions", {"affinity": "none"})
            ingress["fqdn"] = f"{name}{'' if ingress['external'] else '.internal'}.{domain}"
        dapr = config.get("dapr")
        if dapr is not None:
            dapr.setdefault("appProtocol", "http")
        template = self._normalise_template(props_in.get("template") or {}, ingress)
        props = {
            "managedEnvironmentId": env["id"],
            "customDomainVerificationId": env["properties"]["customDomainConfiguration"][
                "customDomainVerificationId"
            ],
            "configuration": config,
            "template": template,
        }
        body = self._resource_body("containerApps", rg, name, envelope, previous, env, props)
        if envelope.get("kind"):
            body["kind"] = envelope["kind"]
        return body

    def _owned_view(self, body: dict[str, Any]) -> Any:
        """What a PUT can change: used to tell 'no change' (200) from a real update (201)."""
        props = body["properties"]
        return {k: body.get(k) for k in ("location", "tags", "identity", "kind")} | {
            "configuration": props.get("configuration"),
            "template": props.get("template"),
            "workloadProfileName": props.get("workloadProfileName"),
            "environmentId": props.get("environmentId"),
        }

    def _unchanged(self, previous: Resource | None, body: dict[str, Any]) -> bool:
        """A PUT of an unchanged, settled resource answers 200 with no operation; a failed one retries."""
        return (
            previous is not None
            and previous.body["properties"].get("provisioningState") == "Succeeded"
            and self._owned_view(previous.body) == self._owned_view(body)
        )

    def _put_app(self, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        return self._apply_app(req, rg, name, self._json_body(req), patch=False)

    def _patch_app(self, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        res = self._find("containerApps", rg, name)
        envelope = merge_patch(self._request_shape(res.body), self._json_body(req))
        return self._apply_app(req, rg, res.name, envelope, patch=True)

    def _request_shape(self, body: dict[str, Any]) -> dict[str, Any]:
        envelope = {k: copy.deepcopy(body[k]) for k in ("location", "tags", "identity", "kind") if k in body}
        props = body["properties"]
        envelope["properties"] = {
            "environmentId": props["environmentId"],
            "workloadProfileName": props.get("workloadProfileName"),
            "configuration": copy.deepcopy(props.get("configuration")),
            "template": copy.deepcopy(props.get("template")),
        }
        return envelope

    def _json_body(self, req: Request) -> dict[str, Any]:
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise self._fail(
                400, "InvalidRequestContent", f"The request content was invalid JSON: {exc}"
            ) from exc
        if not isinstance(body, dict):
            raise self._fail(400, "InvalidRequestContent", "The request content must be a JSON object.")
        return body

    def _apply_app(
        self,
        req: Request,
        rg: str,
        name: str,
        envelope: dict[str, Any],
        patch: bool,
        settle_now: bool = False,
    ) -> Response:
        def revise(res: Resource, old: dict[str, Any] | None, env: dict[str, Any]) -> None:
            old_props = old["properties"] if old else {}
            props = res.body["properties"]
            for carried in (
                "latestRevisionName",
                "latestReadyRevisionName",
                "latestRevisionFqdn",
                "runningStatus",
            ):
                if carried in old_props:
                    props[carried] = old_props[carried]
            if old is None or old_props.get("template") != props["template"]:
                self._new_revision(res, env)  # only template changes make a revision
            if old is None:
                props["runningStatus"] = "Progressing"

        return self._apply(
            req,
            "containerApps",
            rg,
            name,
            envelope,
            self._app_body,
            revise,
            status=202 if patch else 201,
            settle_now=settle_now,
        )

    def _apply(
        self,
        req: Request,
        kind: str,
        rg: str,
        name: str,
        envelope: dict[str, Any],
        build: Any,
        revise: Any,
        status: int,
        settle_now: bool,
    ) -> Response:
        """PUT/PATCH of an app or job: 409 while an operation runs, validation, 200 when unchanged,
        else a long-running operation (settled at once for admin seeds)."""
        previous = self.resources.get(self._key(kind, rg, name))
        if previous is not None and previous.op is not None:
            code = "ContainerAppOperationInProgress" if kind == "containerApps" else "JobOperationInProgress"
            raise self._fail(
                409,
                code,
                f"Cannot modify '{name}' because another operation is in progress. Retry after it completes.",
            )
        self._validate_common(envelope, name)
        env = self._environment_for(envelope.get("properties") or {})
        body = build(rg, previous.name if previous else name, envelope, previous, env)
        if self._unchanged(previous, body):
            return Response.json(200, self._visible(previous))  # type: ignore[arg-type]
        res = previous or Resource(kind, rg, name, body)
        old_body = previous.body if previous else None
        res.body = body
        revise(res, old_body, env)
        self.resources[self._key(kind, rg, name)] = res
        op = self._new_operation(req.method, req.path)
        if settle_now:
            op.due = 0.0
        res.op, res.op_kind = op, ("create" if previous is None else "update")
        self._busy.add(self._key(kind, rg, name))
        body["properties"]["provisioningState"] = "InProgress"
        if settle_now:
            self._settle()
        return Response.json(status, self._visible(res), self._lro_headers(req, op))

    def _new_revision(self, res: Resource, env: dict[str, Any]) -> None:
        props = res.body["properties"]
        template = props["template"]
        suffix = template.get("revisionSuffix") or _suffix()
        rev_name = f"{res.name}--{suffix}"
        domain = env["properties"]["defaultDomain"]
        revision = {
            "id": f"{res.body['id']}/revisions/{rev_name}",
            "name": rev_name,
            "type": "Microsoft.App/containerApps/revisions",
            "properties": {
                "active": True,
                "createdTime": _now(),
                "lastActiveTime": _now(),
                "fqdn": f"{rev_name}.{domain}",
                "replicas": 0,
                "runningState": "Processing",
                "healthState": "None",
                "provisioningState": "Provisioning",
                "trafficWeight": 0,
                "template": copy.deepcopy(template),
            },
        }
        res.revisions.append(revision)
        props["latestRevisionName"] = rev_name
        props["latestRevisionFqdn"] = revision["properties"]["fqdn"]

    def _get_app(self, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        return Response.json(200, self._visible(self._find("containerApps", rg, name)))

    def _list_apps(self, req: Request, sub: str, rg: str) -> Response:
        self._guard(req, sub)
        return self._page(req, self._listing("containerApps", rg), self._visible)

    def _listing(self, kind: str, rg: str) -> list[Resource]:
        items = [r for r in self.resources.values() if r.kind == kind and r.rg.lower() == rg.lower()]
        return sorted(items, key=lambda r: r.name.lower())

    def _delete_app(self, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        return self._delete(req, "containerApps", rg, name)

    def _delete(self, req: Request, kind: str, rg: str, name: str) -> Response:
        res = self.resources.get(self._key(kind, rg, name))
        if res is None:
            return Response.empty(204)
        if res.op is not None and res.op_kind == "delete":
            return Response.empty(202, self._lro_headers(req, res.op))
        if res.op is not None:
            raise self._fail(
                409,
                "ContainerAppOperationInProgress",
                f"Cannot delete '{name}' because another operation is in progress.",
            )
        op = self._new_operation(req.method, req.path)
        res.op, res.op_kind = op, "delete"
        self._busy.add(self._key(kind, rg, name))
        res.body["properties"]["provisioningState"] = "Deleting"
        return Response.empty(202, self._lro_headers(req, op))

    def _list_revisions(self, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        res = self._find("containerApps", rg, name)
        return self._page(req, copy.deepcopy(res.revisions))

    def _get_revision(self, req: Request, sub: str, rg: str, name: str, rev: str) -> Response:
        self._guard(req, sub)
        res = self._find("containerApps", rg, name)
        for revision in res.revisions:
            if revision["name"].lower() == rev.lower():
                return Response.json(200, copy.deepcopy(revision))
        raise self._fail(
            404, "ContainerAppRevisionNotFound", f"Revision '{rev}' of app '{name}' was not found."
        )

    # -- jobs -----------------------------------------------------------------------------------
    def _job_body(
        self, rg: str, name: str, envelope: dict[str, Any], previous: Resource | None, env: dict[str, Any]
    ) -> dict[str, Any]:
        props_in = envelope.get("properties") or {}
        config = copy.deepcopy(props_in.get("configuration") or {})
        trigger = config.get("triggerType")
        if trigger not in ("Manual", "Schedule", "Event"):
            raise self._fail(
                400,
                "JobInvalidTriggerType",
                f"configuration.triggerType must be Manual, Schedule or Event, not {trigger!r}.",
            )
        if not config.get("replicaTimeout"):
            raise self._fail(400, "JobInvalidReplicaTimeout", "configuration.replicaTimeout is required.")
        config.setdefault("replicaRetryLimit", 0)
        if trigger == "Manual":
            mtc = config.setdefault("manualTriggerConfig", {})
            mtc.setdefault("parallelism", 1)
            mtc.setdefault("replicaCompletionCount", 1)
        elif trigger == "Schedule":
            stc = config.get("scheduleTriggerConfig") or {}
            if not stc.get("cronExpression"):
                raise self._fail(
                    400,
                    "JobInvalidCronExpression",
                    "configuration.scheduleTriggerConfig.cronExpression is required for Schedule jobs.",
                )
            stc.setdefault("parallelism", 1)
            stc.setdefault("replicaCompletionCount", 1)
            config["scheduleTriggerConfig"] = stc
        if config.get("secrets"):
            config["secrets"] = [{k: v for k, v in s.items() if k != "value"} for s in config["secrets"]]
        template = self._normalise_template(props_in.get("template") or {}, None)
        template.pop("scale", None)  # jobs have no scale block
        props = {"configuration": config, "template": template}
        return self._resource_body("jobs", rg, name, envelope, previous, env, props)

    def _put_job(self, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        return self._apply_job(req, rg, name, self._json_body(req))

    def _apply_job(
        self, req: Request, rg: str, name: str, envelope: dict[str, Any], settle_now: bool = False
    ) -> Response:
        def revise(res: Resource, old: dict[str, Any] | None, env: dict[str, Any]) -> None:
            res.body["properties"]["runningState"] = "Progressing"

        return self._apply(
            req, "jobs", rg, name, envelope, self._job_body, revise, status=201, settle_now=settle_now
        )

    def _get_job(self, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        return Response.json(200, self._visible(self._find("jobs", rg, name)))

    def _list_jobs(self, req: Request, sub: str, rg: str) -> Response:
        self._guard(req, sub)
        return self._page(req, self._listing("jobs", rg), self._visible)

    def _delete_job(self, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        return self._delete(req, "jobs", rg, name)

    def _start_job(self, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        res = self._find("jobs", rg, name)
        if res.body["properties"].get("provisioningState") != "Succeeded":
            raise self._fail(
                409,
                "JobNotReady",
                f"Job '{name}' cannot start while provisioningState is "
                f"{res.body['properties'].get('provisioningState')}.",
            )
        override = self._json_body(req) if req.body else {}
        template = copy.deepcopy(override or res.body["properties"]["template"])
        images = {c.get("image") for c in template.get("containers", [])}
        exec_name = f"{res.name}-{_suffix()}"
        execution = {
            "id": f"{res.body['id']}/executions/{exec_name}",
            "name": exec_name,
            "type": "Microsoft.App/jobs/executions",
            "properties": {"status": "Running", "startTime": _now(), "template": template},
            "_due": time.monotonic() + self.execution_duration,
            "_fails": res.name.lower() in self.failing_jobs or bool(images & self.failing_job_images),
        }
        res.executions.append(execution)
        self._busy.add(self._key("jobs", rg, name))
        op_id = str(uuid.uuid4())
        self.operations[op_id] = Operation(id=op_id, due=0.0)
        self._execution_results[op_id] = {"name": exec_name, "id": execution["id"]}
        loc = self.location.replace(" ", "").lower()
        location = (
            f"{req.base_url}/subscriptions/{self.subscription_id}/{PROVIDER}/locations/{loc}"
            f"/executionResults/{op_id}?api-version={API_VERSION}"
        )
        return Response.empty(202, {"Location": location, "retry-after-ms": "20"})

    def _get_execution_result(self, req: Request, sub: str, loc: str, op: str) -> Response:
        self._guard(req, sub)
        result = self._execution_results.get(op)
        if result is None:
            raise self._fail(404, "OperationNotFound", f"Operation '{op}' was not found.")
        return Response.json(200, result)

    def _public_execution(self, execution: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in execution.items() if not k.startswith("_")}

    def _list_executions(self, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        res = self._find("jobs", rg, name)
        newest_first = [self._public_execution(e) for e in reversed(res.executions)]
        return self._page(req, newest_first)

    def _get_execution(self, req: Request, sub: str, rg: str, name: str, execution: str) -> Response:
        self._guard(req, sub)
        res = self._find("jobs", rg, name)
        for e in res.executions:
            if e["name"].lower() == execution.lower():
                return Response.json(200, self._public_execution(e))
        raise self._fail(404, "ResourceNotFound", f"Execution '{execution}' of job '{name}' was not found.")

    # -- environments ---------------------------------------------------------------------------
    def _get_environment(self, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        env = self.environments.get((rg.lower(), name.lower()))
        if env is None:
            raise self._fail(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.App/managedEnvironments/{name}' under resource group "
                f"'{rg}' was not found.",
            )
        return Response.json(200, copy.deepcopy(env))

    def _list_environments(self, req: Request, sub: str, rg: str) -> Response:
        self._guard(req, sub)
        envs = [copy.deepcopy(e) for (r, _), e in sorted(self.environments.items()) if r == rg.lower()]
        return self._page(req, envs)

    # -- admin ----------------------------------------------------------------------------------
    def _admin_config(self, req: Request) -> Response:
        spec = req.json() or {}
        self.provisioning_delay = float(spec.get("provisioningDelay", self.provisioning_delay))
        self.execution_duration = float(spec.get("executionDuration", self.execution_duration))
        self.page_size = int(spec.get("pageSize", self.page_size))
        return Response.json(
            200,
            {
                "provisioningDelay": self.provisioning_delay,
                "executionDuration": self.execution_duration,
                "pageSize": self.page_size,
            },
        )

    def _admin_seed(self, req: Request, kind: str) -> Response:
        spec = req.json() or {}
        rg = spec.get("resourceGroup", self.default_rg)
        envelope = copy.deepcopy(spec.get("envelope") or {})
        envelope.setdefault("location", self.location)
        envelope.setdefault("properties", {}).setdefault("environmentId", self._default_env_id())
        apply = self._apply_app if kind == "containerApps" else self._apply_job
        kwargs = {"patch": False} if kind == "containerApps" else {}
        resp = apply(req, rg, spec["name"], envelope, settle_now=True, **kwargs)  # type: ignore[operator]
        res = self._find(kind, rg, spec["name"])
        return Response.json(resp.status, self._visible(res))

    def _default_env_id(self) -> str:
        return self.environments[(self.default_rg.lower(), self.default_env.lower())]["id"]

    def _admin_drift(self, req: Request, kind: str, name: str) -> Response:
        spec = req.json() or {}
        rg = spec.pop("resourceGroup", self.default_rg) if isinstance(spec, dict) else self.default_rg
        self._settle()
        res = self._find(kind, rg, name)
        envelope = merge_patch(self._request_shape(res.body), spec)
        res.op = None
        if kind == "containerApps":
            self._apply_app(req, rg, res.name, envelope, patch=True, settle_now=True)
        else:
            self._apply_job(req, rg, res.name, envelope, settle_now=True)
        return Response.json(200, self._visible(self._find(kind, rg, name)))

    def _admin_crashing(self, req: Request) -> Response:
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

    def _admin_failing_jobs(self, req: Request) -> Response:
        spec = req.json() or {}
        if spec.get("job"):
            self.failing_jobs.add(spec["job"].lower())
        if spec.get("image"):
            self.failing_job_images.add(spec["image"])
        return Response.json(
            200, {"jobs": sorted(self.failing_jobs), "images": sorted(self.failing_job_images)}
        )

    def _admin_lro_failures(self, req: Request) -> Response:
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

    def _admin_environment(self, req: Request) -> Response:
        spec = req.json() or {}
        return Response.json(
            201, self.add_environment(spec.get("resourceGroup", self.default_rg), spec["name"])
        )

    def _admin_state(self, req: Request) -> Response:
        self._settle()
        return Response.json(
            200,
            {
                "resources": [
                    {
                        "kind": r.kind,
                        "resourceGroup": r.rg,
                        "name": r.name,
                        "body": r.body,
                        "revisions": r.revisions,
                        "executions": [self._public_execution(e) for e in r.executions],
                    }
                    for r in self.resources.values()
                ],
                "environments": list(self.environments.values()),
            },
        )
