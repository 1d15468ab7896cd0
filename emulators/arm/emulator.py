"""The ARM stand-in: routing, the checks every call makes, environments, and the write path shared
by apps and jobs (409 while an operation runs, validation, a long-running operation)."""

from __future__ import annotations

import copy
import json
import re
import threading
import uuid
from collections.abc import Callable
from typing import Any

from emulators.arm import shapes, versions
from emulators.arm.admin import AdminMixin
from emulators.arm.apps import AppsMixin
from emulators.arm.images import ImagesMixin
from emulators.arm.jobs import JobsMixin
from emulators.arm.model import PROVIDER, ArmError, Operation, Resource, digest
from emulators.arm.operations import OperationsMixin
from emulators.arm.revisions import RevisionsMixin
from emulators.arm.validation import validate_envelope
from emulators.httpbase import Emulator, HttpError, Request, Response
from emulators.identity import TokenIssuer

ARM_AUDIENCE = "https://management."  # management.azure.com / management.core.windows.net
SUB = r"/subscriptions/(?P<sub>[^/]+)"
RG = SUB + r"/resourceGroups/(?P<rg>[^/]+)"
NAME = r"(?P<name>[^/]+)"
_RG_IN_PATH = re.compile(r"/resourceGroups/([^/]+)", re.IGNORECASE)
ENV_ID = re.compile(
    rf"/subscriptions/([^/]+)/resourceGroups/([^/]+)/{PROVIDER}/(managedEnvironments|connectedEnvironments)"
    r"/([^/]+)",
    re.IGNORECASE,
)
# ARM answers an app's id with `containerapps` in lower case whatever the request path said
# (every recording); a job's id says `jobs`.
ID_SEGMENT = {"containerApps": "containerapps", "jobs": "jobs"}


class ArmEmulator(AdminMixin, AppsMixin, JobsMixin, RevisionsMixin, OperationsMixin, ImagesMixin, Emulator):
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
        # Which subscription the request being answered is in (every ARM path names one; admin
        # calls may name one, else the default): keys, ids and listings are per subscription.
        self._scope = threading.local()
        self.default_rg = resource_group
        self.default_env = environment
        self.location = location
        self._defaults()
        self._init_state()
        self._register()

    # -- state ----------------------------------------------------------------------------------
    def _defaults(self) -> None:
        self.provisioning_delay = 0.2
        self.execution_duration = 0.2
        self.page_size = 100
        self.service_date: str | None = None  # None: the service as it is now (see timeline.py)

    def _init_state(self) -> None:
        self.resources: dict[tuple[str, str, str, str], Resource] = {}
        self.environments: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.subscriptions: dict[str, str] = {self.subscription_id.lower(): self.subscription_id}
        self.operations: dict[str, Operation] = {}
        self.crashing_images: set[str] = set()
        self.failing_jobs: set[str] = set()
        self.failing_job_images: set[str] = set()
        self.lro_failures: list[dict[str, Any]] = []
        self._execution_results: dict[str, dict[str, str]] = {}
        self._busy: set[tuple[str, str, str, str]] = set()  # resources with an operation or execution running
        self.images: dict[str, dict[str, Any]] = {}  # registered images: run as local commands (images.py)
        self.resource_groups: set[str] = set()  # groups declared by /_admin/resource-groups
        self.add_environment(self.default_rg, self.default_env)

    def reset(self) -> None:
        with self.lock:
            if hasattr(self, "resources"):
                self._stop_processes()
            super().reset()
            self._defaults()
            self._init_state()

    def _sub(self) -> str:
        """The subscription of the request being answered."""
        return getattr(self._scope, "sub", None) or self.subscription_id

    def in_subscription(self, sub: str | None) -> None:
        """Answer the rest of this request in `sub` (None: the default), adding it when new."""
        if sub:
            self.subscriptions.setdefault(sub.lower(), sub)
            self._scope.sub = self.subscriptions[sub.lower()]
        else:
            self._scope.sub = None

    def add_environment(
        self, rg: str, name: str, kind: str = "managedEnvironments", subscription: str | None = None
    ) -> dict[str, Any]:
        if subscription:
            self.in_subscription(subscription)
        sub = self._sub()
        env_id = f"/subscriptions/{sub}/resourceGroups/{rg}/{PROVIDER}/{kind}/{name}"
        region = self.location.replace(" ", "").lower()
        body = {
            "id": env_id,
            "name": name,
            "type": f"Microsoft.App/{kind}",
            "location": self.location,
            "tags": {},
            "properties": {
                "provisioningState": "Succeeded",
                "defaultDomain": f"local-{digest(env_id.lower())[:8]}.{region}.azurecontainerapps.io",
                "staticIp": "127.0.0.1",
                "eventStreamEndpoint": f"https://{region}.azurecontainerapps.dev/subscriptions/{sub}"
                f"/resourceGroups/{rg}/managedEnvironments/{name}/eventstream",
                "customDomainConfiguration": {"customDomainVerificationId": digest(env_id)[:64].upper()},
                "workloadProfiles": [{"name": "Consumption", "workloadProfileType": "Consumption"}],
                "zoneRedundant": False,
                "infrastructureResourceGroup": f"ME_{name}_{rg}_{region}",
                "peerAuthentication": {"mtls": {"enabled": False}},
                "peerTrafficConfiguration": {"encryption": {"enabled": False}},
            },
        }
        self.environments[(sub.lower(), rg.lower(), name.lower())] = body
        return body

    # -- routes ---------------------------------------------------------------------------------
    def _register(self) -> None:
        apps = RG + rf"/{PROVIDER}/containerApps"
        jobs = RG + rf"/{PROVIDER}/jobs"
        app, job = apps + "/" + NAME, jobs + "/" + NAME
        routes: list[tuple[str, str, Callable[..., Response]]] = [
            ("GET", apps, self._list_apps),
            ("GET", app, self._get_app),
            ("PUT", app, self._put_app),
            ("PATCH", app, self._patch_app),
            ("DELETE", app, self._delete_app),
            ("POST", app + "/listSecrets", self._list_app_secrets),
            ("GET", app + "/revisions", self._list_revisions),
            ("GET", app + r"/revisions/(?P<rev>[^/]+)", self._get_revision),
            ("GET", jobs, self._list_jobs),
            ("GET", job, self._get_job),
            ("PUT", job, self._put_job),
            ("PATCH", job, self._patch_job),
            ("DELETE", job, self._delete_job),
            ("POST", job + "/listSecrets", self._list_job_secrets),
            ("POST", job + "/start", self._start_job),
            ("GET", job + "/executions", self._list_executions),
            ("GET", job + r"/executions/(?P<execution>[^/]+)", self._get_execution),
            ("GET", RG + rf"/{PROVIDER}/managedEnvironments", self._list_environments),
            ("GET", RG + rf"/{PROVIDER}/managedEnvironments/" + NAME, self._get_environment),
            (
                "GET",
                SUB + rf"/{PROVIDER}/locations/(?P<loc>[^/]+)/operationStatuses/(?P<op>[^/]+)",
                self._get_operation,
            ),
            (
                "GET",
                SUB + rf"/{PROVIDER}/locations/(?P<loc>[^/]+)/executionResults/(?P<op>[^/]+)",
                self._get_execution_result,
            ),
        ]
        for method, pattern, handler in routes:
            self.add_route(method, pattern, handler)
        admin: list[tuple[str, str, Callable[..., Response]]] = [
            ("GET", r"/msi/token", self.issuer.handle_token_request),
            ("PUT", r"/_admin/config", self._admin_config),
            ("POST", r"/_admin/apps", lambda r: self._admin_seed(r, "containerApps")),
            ("POST", r"/_admin/jobs", lambda r: self._admin_seed(r, "jobs")),
            ("POST", r"/_admin/raw/apps", lambda r: self._admin_raw_seed(r, "containerApps")),
            ("POST", r"/_admin/raw/jobs", lambda r: self._admin_raw_seed(r, "jobs")),
            (
                "PATCH",
                r"/_admin/apps/(?P<name>[^/]+)",
                lambda r, name: self._admin_drift(r, "containerApps", name),
            ),
            ("PATCH", r"/_admin/jobs/(?P<name>[^/]+)", lambda r, name: self._admin_drift(r, "jobs", name)),
            ("POST", r"/_admin/crashing-images", self._admin_crashing),
            ("POST", r"/_admin/failing-jobs", self._admin_failing_jobs),
            ("POST", r"/_admin/images", self._admin_register_image),
            ("GET", r"/_admin/images", self._admin_images),
            ("POST", r"/_admin/lro-failures", self._admin_lro_failures),
            ("POST", r"/_admin/environments", self._admin_environment),
            ("POST", r"/_admin/resource-groups", self._admin_resource_group),
            ("GET", r"/_admin/state", self._admin_state),
        ]
        for method, pattern, handler in admin:
            self.add_admin_route(method, pattern, handler)

    def dispatch(self, req: Request) -> Response:
        self._scope.sub = None  # a kept-alive connection's thread answered another subscription before
        resp = super().dispatch(req)
        if not req.path.startswith(self.unlogged_prefixes):
            resp.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
            kind = "reads" if req.method == "GET" else ("deletes" if req.method == "DELETE" else "writes")
            resp.headers.setdefault(f"x-ms-ratelimit-remaining-subscription-{kind}", "11999")
        return resp

    def error_response(self, status: int, code: str, message: str) -> Response:
        return Response.json(status, {"error": {"code": code, "message": message, "details": []}})

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
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if sub.lower() not in self.subscriptions:
            raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        self._scope.sub = self.subscriptions[sub.lower()]
        m = _RG_IN_PATH.search(req.path)
        if m and not self._group_exists(m.group(1)):
            # ARM answers every request scoped to a missing group so, listing included.
            raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{m.group(1)}' could not be found.")
        self._settle()

    def _group_exists(self, rg: str) -> bool:
        """Groups exist where an environment or a seeded resource lives, or where the admin API said
        (there is no resource-group API here)."""
        rg, sub = rg.lower(), self._sub().lower()
        return (
            rg in self.resource_groups
            or any((s, g) == (sub, rg) for s, g, _ in self.environments)
            or any(r.rg.lower() == rg and r.sub.lower() == sub for r in self.resources.values())
        )

    # -- shared resource helpers ----------------------------------------------------------------
    def _key(self, kind: str, rg: str, name: str) -> tuple[str, str, str, str]:
        return (kind, self._sub().lower(), rg.lower(), name.lower())

    def _find(self, kind: str, rg: str, name: str) -> Resource:
        res = self.resources.get(self._key(kind, rg, name))
        if res is None:
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.App/{kind}/{name}' under resource group '{rg}' "
                "was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            )
        return res

    def _resource_id(self, kind: str, rg: str, name: str) -> str:
        return f"/subscriptions/{self._sub()}/resourceGroups/{rg}/{PROVIDER}/{ID_SEGMENT[kind]}/{name}"

    def _event_stream(self, env: dict[str, Any], rg: str, kind: str, name: str) -> str:
        """A job's stream too is under `containerApps/` (test_containerapp_manualjob_crudoperations_e2e)."""
        host = env["properties"]["eventStreamEndpoint"].split("/subscriptions/")[0]
        path = f"/subscriptions/{self._sub()}/resourceGroups/{rg}/containerApps/{name}/eventstream"
        return host + path

    def _page(self, req: Request, items: list[Any], render: Callable[[Any], Any] | None = None) -> Response:
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

    def _visible(self, res: Resource, req: Request) -> dict[str, Any]:
        """The GET answer at the request's api-version (a raw-seeded body verbatim)."""
        body = copy.deepcopy(res.body)
        if res.raw:
            return body
        return versions.render(res.kind, body, req.query.get("api-version", ""), self.service_date)

    def _listing(self, kind: str, rg: str) -> list[Resource]:
        sub = self._sub().lower()
        items = [
            r
            for r in self.resources.values()
            if r.kind == kind and r.rg.lower() == rg.lower() and r.sub.lower() == sub
        ]
        return sorted(items, key=lambda r: r.name.lower())

    def _environment_for(self, props: dict[str, Any]) -> dict[str, Any]:
        env_id = props.get("environmentId") or props.get("managedEnvironmentId")
        if not env_id:
            raise ArmError(
                400,
                "InvalidRequestContent",
                "properties.environmentId is required: the id of the managed environment.",
            )
        m = ENV_ID.fullmatch(env_id)
        env = (
            self.environments.get((m.group(1).lower(), m.group(2).lower(), m.group(4).lower())) if m else None
        )
        if env is None:
            raise ArmError(404, "ManagedEnvironmentNotFound", f"The environment '{env_id}' was not found.")
        return env

    def _request_shape(self, body: dict[str, Any]) -> dict[str, Any]:
        """The writable parts of a stored body, as a PUT would send them (the base a PATCH merges into)."""
        keys = ("location", "tags", "identity", "kind", "extendedLocation")
        envelope = {k: copy.deepcopy(body[k]) for k in keys if k in body}
        props = body["properties"]
        envelope["properties"] = {
            "environmentId": props.get("environmentId") or props.get("managedEnvironmentId"),
            "workloadProfileName": props.get("workloadProfileName"),
            "configuration": copy.deepcopy(props.get("configuration")),
            "template": copy.deepcopy(props.get("template")),
        }
        return envelope

    def _json_body(self, req: Request) -> dict[str, Any]:
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArmError(
                400, "InvalidRequestContent", f"The request content was invalid JSON: {exc}"
            ) from exc
        if not isinstance(body, dict):
            raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
        return body

    def _apply(
        self,
        req: Request,
        kind: str,
        rg: str,
        name: str,
        envelope: dict[str, Any],
        build: Callable[..., dict[str, Any]],
        revise: Callable[[Resource, dict[str, Any] | None, dict[str, Any]], None] | None,
        status: int,
        settle_now: bool,
    ) -> Response:
        """PUT/PATCH of an app or job: 409 while an operation runs, validation, then a long-running
        operation (settled at once for admin seeds). Every accepted write answers 201 (PUT) or 202
        (PATCH), a write that changes nothing included (every recorded PUT answered 201)."""
        key = self._key(kind, rg, name)
        previous = self.resources.get(key)
        if previous is not None and previous.op is not None:
            code = "ContainerAppOperationInProgress" if kind == "containerApps" else "JobOperationInProgress"
            raise ArmError(
                409,
                code,
                f"Cannot modify '{name}' because another operation is in progress. Retry after it completes.",
            )
        validate_envelope(envelope, name)
        env = self._environment_for(envelope.get("properties") or {})
        if previous is not None:
            rg, name = previous.rg, previous.name
        body = build(rg, name, envelope, previous, env)
        res = previous or Resource(kind, rg, name, body, sub=self._sub())
        old_body = previous.body if previous else None
        res.body, res.raw = body, False
        config = (envelope.get("properties") or {}).get("configuration") or {}
        res.secret_values = shapes.secret_values(
            config.get("secrets"), previous.secret_values if previous else {}
        )
        if revise is not None:
            revise(res, old_body, env)
        self.resources[key] = res
        op = self._new_operation(req.method, req.path)
        if settle_now:
            op.due = 0.0
        res.op, res.op_kind = op, ("create" if previous is None else "update")
        self._busy.add(key)
        body["properties"]["provisioningState"] = "InProgress"
        if settle_now:
            self._settle()
        return Response.json(status, self._visible(res, req), self._lro_headers(req, op))

    def _delete(self, req: Request, kind: str, rg: str, name: str) -> Response:
        res = self.resources.get(self._key(kind, rg, name))
        if res is None:
            return Response.empty(204)
        if res.op is not None and res.op_kind == "delete":
            return Response.empty(202, self._lro_headers(req, res.op))
        if res.op is not None:
            raise ArmError(
                409,
                "ContainerAppOperationInProgress",
                f"Cannot delete '{name}' because another operation is in progress.",
            )
        op = self._new_operation(req.method, req.path)
        res.op, res.op_kind = op, "delete"
        self._busy.add(self._key(kind, rg, name))
        res.body["properties"]["provisioningState"] = "Deleting"
        return Response.empty(202, self._lro_headers(req, op))

    # -- environments ---------------------------------------------------------------------------
    def _get_environment(self, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        env = self.environments.get((self._sub().lower(), rg.lower(), name.lower()))
        if env is None or env["type"] != "Microsoft.App/managedEnvironments":
            raise ArmError(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.App/managedEnvironments/{name}' under resource group '{rg}' "
                "was not found.",
            )
        return Response.json(200, copy.deepcopy(env))

    def _list_environments(self, req: Request, sub: str, rg: str) -> Response:
        self._guard(req, sub)
        envs = [
            copy.deepcopy(e)
            for (s, r, _), e in sorted(self.environments.items())
            if (s, r) == (self._sub().lower(), rg.lower())
            and e["type"] == "Microsoft.App/managedEnvironments"
        ]
        return self._page(req, envs)
