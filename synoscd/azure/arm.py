"""The ARM adapter over azure-mgmt-appcontainers: list, get, put, patch, delete and start, with the
SDK's own retry policy and LRO pollers. Bodies in and out are plain dicts in wire shape (the SDK sends
a dict as JSON as it is: nulls of a merge patch and fields it has no model for included).

Every wait is bounded by the pass's `Budget`: the retry policy retries only when ARM's Retry-After (or
the jittered backoff) fits in it, and the pollers handed out wait no longer than it. Every write asks
the budget first whether the pass still holds its lease (invariant 11), then takes a token of the
subscription's ARM write budget (synoscd/fleet/writes.py), shared by every instance and target; a
write ARM answers 429 closes that budget until its Retry-After."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synoscd.budget import UNBOUNDED, BoundedRetry, Budget
from synoscd.config import Settings

KINDS = ("App", "Job")
# The api-version azure-mgmt-appcontainers 5.1.0 sends (a test checks it still is the SDK's default).
API_VERSION = "2026-07-01"
RESOURCE_TYPES = {"App": "containerApps", "Job": "jobs"}
MAX_RETRY_WAIT = 10.0  # seconds: the longest single wait (Retry-After or backoff) before a retry
# The scope azure-mgmt-appcontainers asks tokens for, whatever the endpoint (its default).
ARM_SCOPE = "https://management.azure.com/.default"
PASS_HEADER = "x-synoscd-pass"  # names the pass on each write it makes


class ArmError(Exception):
    """An ARM call failed; `code` is ARM's error code when it gave one."""

    def __init__(self, message: str, code: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


# ARM error codes whose fix is a setting: say which.
SETTING_FOR_CODE = {
    "ResourceGroupNotFound": "SYNOSCD_AZURE_RESOURCE_GROUP",
    "SubscriptionNotFound": "SYNOSCD_AZURE_SUBSCRIPTION_ID",
    "InvalidSubscriptionId": "SYNOSCD_AZURE_SUBSCRIPTION_ID",
}


def describe(exc: Exception, what: str, endpoint: str) -> ArmError:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    from synoscd.errors import first_line, local_hint, unreachable

    if isinstance(exc, ArmError):
        return exc
    reason = unreachable(exc)
    if reason:  # before the credential: a token endpoint that cannot be reached is not a refusal
        return ArmError(
            f"{what}: cannot reach ARM {endpoint} or its token endpoint ({reason}); check "
            f"SYNOSCD_ARM_ENDPOINT and the network{local_hint(endpoint)}"
        )
    if isinstance(exc, ClientAuthenticationError):
        return ArmError(
            f"{what}: ARM {endpoint} refused the credential ({first_line(exc)}); check "
            "SYNOSCD_AZURE_MANAGED_IDENTITY_CLIENT_ID and the identity's role assignment",
            "Unauthorized",
            401,
        )
    if isinstance(exc, HttpResponseError) and exc.status_code == 429:
        response = getattr(exc, "response", None)
        retry_after = response.headers.get("Retry-After") if response is not None else None
        return ArmError(
            f"{what}: ARM throttled the request (429"
            + (f", Retry-After {retry_after} s" if retry_after else "")
            + "), longer than this pass may wait; the next pass retries",
            "TooManyRequests",
            429,
        )
    if isinstance(exc, HttpResponseError):
        code = getattr(getattr(exc, "error", None), "code", None)
        message = getattr(getattr(exc, "error", None), "message", None) or first_line(exc)
        hint = ""
        if code in SETTING_FOR_CODE:
            hint = f"; check {SETTING_FOR_CODE[code]}"
        elif code == "AuthorizationFailed" or exc.status_code == 403:
            hint = "; grant the identity 'Container Apps Contributor' on the resource group"
        return ArmError(f"{what}: {code or exc.status_code}: {message}{hint}", code, exc.status_code)
    return ArmError(f"{what}: {type(exc).__name__}: {first_line(exc)}")


def _group_missing(exc: Exception) -> bool:
    return getattr(getattr(exc, "error", None), "code", None) == "ResourceGroupNotFound"


@dataclass(frozen=True)
class Environment:
    id: str
    name: str
    location: str


def _pooled_transport(size: int = 64) -> Any:
    """azure-core's transport over a session with a larger connection pool: a pass keeps many writes
    and LRO polls in flight, and requests' default pool of 10 would reconnect (TLS again) for the rest."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    session = requests.Session()
    # Retries stay with azure-core's policy (which honours Retry-After); requests must not retry too.
    adapter = HTTPAdapter(
        pool_connections=4,
        pool_maxsize=size,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return RequestsTransport(session=session, session_owner=False)


def _retry_policy(budget: Budget) -> Any:
    from azure.core.pipeline.policies import RetryPolicy

    class ArmRetry(BoundedRetry, RetryPolicy):
        pass

    # Up to 4 retries, 0.5 s exponential backoff (jittered), no single wait above MAX_RETRY_WAIT nor
    # beyond the pass's budget: ARM's Retry-After is honoured when it fits, else the 429 is the answer
    # (the next pass retries: a timer tick is a minute, a longer sleep would only hold the lease).
    return ArmRetry(
        budget=budget.remaining,
        max_wait=MAX_RETRY_WAIT,
        retry_total=4,
        retry_backoff_factor=0.5,
        retry_backoff_max=MAX_RETRY_WAIT,
    )


class BoundedPoller:
    """The SDK's LRO poller, waited on no longer than the pass's budget (its polling thread goes on,
    reading only, until ARM says the operation is done)."""

    SLICE = 0.5  # re-read the budget this often: a renewed lease extends it, a lost one ends it

    def __init__(self, poller: Any, budget: Budget) -> None:
        self._poller = poller
        self._budget = budget

    def done(self) -> bool:
        return bool(self._poller.done())

    def wait(self, timeout: float | None = None) -> None:
        end = None if timeout is None else time.monotonic() + timeout
        while not self._poller.done():
            left = self._budget.remaining()
            if end is not None:
                left = min(left, end - time.monotonic())
            if left <= 0:
                return
            self._poller.wait(timeout=min(left, self.SLICE))

    def result(self, timeout: float | None = None) -> Any:
        self.wait(timeout)
        if not self._poller.done():
            raise ArmError("the operation was still running when the pass's time budget ran out")
        return self._poller.result()


class Arm:
    def __init__(
        self,
        settings: Settings,
        credential: Any,
        polling_interval: float = 5.0,
        budget: Budget | None = None,
        writes: Any = None,
    ) -> None:
        settings.require("azure_subscription_id", "azure_resource_group", "azure_container_app_environment")
        self.settings = settings
        self.budget = budget or UNBOUNDED
        self.rg: str = settings.azure_resource_group or ""
        self.endpoint = settings.arm_endpoint
        self._credential = credential
        self._polling_interval = polling_interval
        self.writes = writes  # the subscription's write budget (fleet/writes.py), if any
        self._client: Any = None
        self._reads: Any = None
        self._lock = threading.Lock()
        self._environment: Environment | None = None

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                from azure.mgmt.appcontainers import ContainerAppsAPIClient

                # polling_interval is only the fallback: ARM's Retry-After on each poll wins.
                self._client = ContainerAppsAPIClient(
                    self._credential,
                    self.settings.azure_subscription_id,
                    base_url=self.endpoint,
                    polling_interval=self._polling_interval,
                    retry_policy=_retry_policy(self.budget),
                    # Every attempt's answer, retries included: a 429 to a write closes the budget.
                    raw_response_hook=self._on_response,
                )
            return self._client

    @property
    def reads(self) -> Any:
        """A plain ARM pipeline (azure-mgmt-core) for the reads every pass makes — the environment and
        the listings — with the SDK client's policies (credential, bounded retry, 429 hook, tracing)
        but without importing azure-mgmt-appcontainers' models: a pass that writes nothing never
        loads them."""
        with self._lock:
            if self._reads is None:
                from azure.core.pipeline import policies
                from azure.mgmt.core import ARMPipelineClient
                from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy

                self._reads = ARMPipelineClient(
                    base_url=self.endpoint,
                    policies=[
                        policies.RequestIdPolicy(),
                        policies.HeadersPolicy(),
                        policies.UserAgentPolicy(sdk_moniker="synoscd"),
                        policies.ContentDecodePolicy(),
                        policies.RedirectPolicy(),
                        _retry_policy(self.budget),
                        ARMChallengeAuthenticationPolicy(self._credential, ARM_SCOPE),
                        policies.CustomHookPolicy(raw_response_hook=self._on_response),
                        policies.DistributedTracingPolicy(),
                        ARMHttpLoggingPolicy(),
                    ],
                )
            return self._reads

    def _get_json(self, path: str) -> dict[str, Any]:
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
        from azure.core.rest import HttpRequest
        from azure.mgmt.core.exceptions import ARMErrorFormat

        url = self.reads.format_url(f"{path}?api-version={API_VERSION}")
        response = self.reads.send_request(HttpRequest("GET", url))
        if response.status_code == 404:
            raise ResourceNotFoundError(response=response, error_format=ARMErrorFormat)
        if response.status_code != 200:
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)
        return dict(response.json())

    def _on_response(self, pipeline_response: Any) -> None:
        response = pipeline_response.http_response
        if response.status_code != 429 or self.writes is None:
            return
        if pipeline_response.http_request.method in ("PUT", "PATCH", "DELETE", "POST"):
            from synoscd.fleet.writes import retry_after_of

            self.writes.throttled(retry_after_of(response.headers))

    def _write_token(self, what: str) -> None:
        """The pass still holds its lease, and the subscription's write budget allows one more write."""
        self.budget.check()  # raises LeaseLost: the pass no longer holds its lease
        if self.writes is None:
            return
        from synoscd.fleet.writes import WriteBudgetExhausted

        try:
            self.writes.take(self.budget.remaining)
        except WriteBudgetExhausted as exc:
            raise ArmError(f"{what}: {exc}", "WriteBudgetExhausted", 429) from exc

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise describe(exc, what, self.endpoint) from exc

    def environment(self) -> Environment:
        """The target environment (id, location); read once per process: it does not move."""
        if self._environment is None:
            name = self.settings.azure_container_app_environment or ""
            sub = self.settings.azure_subscription_id
            path = f"/subscriptions/{sub}/resourceGroups/{self.rg}/providers/Microsoft.App"
            path += f"/managedEnvironments/{name}"
            try:
                env = self._call(f"reading environment {name}", self._get_json, path)
            except ArmError as exc:
                if exc.code != "ResourceNotFound":
                    raise
                raise ArmError(
                    f"{exc}; check SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT ({name} in {self.rg})",
                    exc.code,
                    exc.status,
                ) from exc
            self._environment = Environment(env["id"], env["name"], env["location"])
        return self._environment

    def _ops(self, kind: str) -> Any:
        return self.client.container_apps if kind == "App" else self.client.jobs

    def list(self, kind: str) -> list[dict[str, Any]]:
        """Every App or Job of the resource group as wire-shaped dicts, following nextLink.

        Through the client's own pipeline (credential, retry, 429 handling) with `send_request`, but
        without building SDK models: a pass only needs the JSON, and model deserialisation of a
        thousand apps costs most of a second."""
        return self._call(f"listing {kind}s in {self.rg}", self._list_raw, RESOURCE_TYPES[kind])

    def _list_raw(self, resource_type: str) -> list[dict[str, Any]]:
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest
        from azure.mgmt.core.exceptions import ARMErrorFormat

        sub = self.settings.azure_subscription_id
        url: str | None = (
            f"/subscriptions/{sub}/resourceGroups/{self.rg}/providers/Microsoft.App/{resource_type}"
            f"?api-version={API_VERSION}"
        )
        items: list[dict[str, Any]] = []
        while url:
            response = self.reads.send_request(HttpRequest("GET", self.reads.format_url(url)))
            if response.status_code != 200:
                raise HttpResponseError(response=response, error_format=ARMErrorFormat)
            page = response.json()
            items.extend(page.get("value") or [])
            url = page.get("nextLink")
        return items

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._ops(kind).get(self.rg, name).as_dict()
        except ResourceNotFoundError as exc:
            if _group_missing(exc):  # not "no such app": nothing in that group can be read
                raise describe(exc, f"reading {kind} {name}", self.endpoint) from exc
            return None
        except Exception as exc:
            raise describe(exc, f"reading {kind} {name}", self.endpoint) from exc

    def revision(self, app: str, revision: str) -> dict[str, Any] | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.client.container_apps_revisions.get_revision(self.rg, app, revision).as_dict()
        except ResourceNotFoundError as exc:
            if _group_missing(exc):
                raise describe(exc, f"reading revision {revision} of {app}", self.endpoint) from exc
            return None
        except Exception as exc:
            raise describe(exc, f"reading revision {revision} of {app}", self.endpoint) from exc

    def remaining(self) -> float:
        """Seconds the current pass may still wait (infinite outside a pass)."""
        return self.budget.remaining()

    def write_headers(self) -> dict[str, str]:
        """Headers of every write: the pass making it (ARM ignores the header; a stand-in's call log
        shows which pass wrote what, e.g. for the fault soak's never-two-writers check)."""
        pass_id = self.budget.pass_id
        return {PASS_HEADER: pass_id} if pass_id else {}

    def begin_put(self, kind: str, name: str, body: Mapping[str, Any]) -> BoundedPoller:
        """Submit a PUT; returns the SDK's poller (the write is accepted once this returns)."""
        self._write_token(f"applying {kind} {name}")
        poller = self._call(
            f"applying {kind} {name}",
            self._ops(kind).begin_create_or_update,
            self.rg,
            name,
            dict(body),
            headers=self.write_headers(),
        )
        return BoundedPoller(poller, self.budget)

    def begin_patch(self, kind: str, name: str, body: Mapping[str, Any]) -> BoundedPoller:
        """Submit a PATCH (JSON merge patch: what the body leaves out stays as it is); the poller."""
        self._write_token(f"updating {kind} {name}")
        poller = self._call(
            f"updating {kind} {name}",
            self._ops(kind).begin_update,
            self.rg,
            name,
            dict(body),
            headers=self.write_headers(),
        )
        return BoundedPoller(poller, self.budget)

    def list_secrets(self, kind: str, name: str) -> dict[str, str]:
        """Secret values of an app or job (a GET never shows them). Only for writing them back."""
        result = self._call(
            f"reading the secrets of {kind} {name}", self._ops(kind).list_secrets, self.rg, name
        )
        return {s.name: s.value for s in result.value or [] if s.value is not None}

    def begin_delete(self, kind: str, name: str) -> BoundedPoller:
        self._write_token(f"deleting {kind} {name}")
        poller = self._call(
            f"deleting {kind} {name}",
            self._ops(kind).begin_delete,
            self.rg,
            name,
            headers=self.write_headers(),
        )
        return BoundedPoller(poller, self.budget)

    def start_job(self, name: str, template: Mapping[str, Any] | None = None) -> str:
        """Start an execution; `template` (wire shape) overrides the job's template for this one only."""
        import io
        import json

        self._write_token(f"starting job {name}")
        body = io.BytesIO(json.dumps(template).encode()) if template is not None else None
        poller = BoundedPoller(
            self._call(
                f"starting job {name}",
                self.client.jobs.begin_start,
                self.rg,
                name,
                body,
                headers=self.write_headers(),
            ),
            self.budget,
        )
        return str(self._call(f"starting job {name}", poller.result).name)

    def execution_status(self, job: str, execution: str) -> str:
        result = self._call(
            f"reading execution {execution} of {job}", self.client.job_execution, self.rg, job, execution
        )
        status = result.properties.status
        # The SDK's enums subclass str, but str() of one is 'JobExecutionRunningState.SUCCEEDED'.
        return str(getattr(status, "value", status) or "Unknown")
