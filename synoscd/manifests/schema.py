"""The manifest schema: App, Job, Project, Synthesizer, Composition and Target as pydantic models
with camelCase field names.

Models check shapes and single values (names, image references, memory, ports, ...). Rules across
fields or documents (cpu/memory totals, secret references, tags, duplicates) live in validate.py so
that each error can point at the exact field. Unknown fields are errors; no value is coerced
(`strict`): in GitOps a surprising coercion is worse than an error.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from . import syntax
from .errors import show

API_VERSION = "synoscd.io/v1alpha1"
KINDS = ("App", "Job", "Project", "Synthesizer", "Composition", "Target")


def _check(check: Callable[[Any], str | None]) -> AfterValidator:
    def validate(value: Any) -> Any:
        message = check(value)
        if message is not None:
            raise PydanticCustomError("synoscd", message)
        return value

    return AfterValidator(validate)


def _pattern(pattern: str) -> Any:
    # The pattern goes only into the JSON Schema (for editors); pydantic's own pattern check would
    # replace our actionable message with a generic one.
    return Field(json_schema_extra={"pattern": pattern})


def _range(name: str, low: int, high: int) -> Any:
    def check(value: int) -> str | None:
        if low <= value <= high:
            return None
        return f"{name} {value} is out of range; use a value from {low} to {high}"

    return Annotated[int, _check(check), Field(json_schema_extra={"minimum": low, "maximum": high})]


def _port(name: str) -> Any:
    def check(value: int) -> str | None:
        return None if 1 <= value <= 65535 else f"{name} {value} is not a valid port; use 1-65535"

    return Annotated[int, _check(check), Field(json_schema_extra={"minimum": 1, "maximum": 65535})]


def _memory(value: str) -> str:
    amount = syntax.parse_memory(value)
    if amount is None or amount <= 0:
        raise PydanticCustomError("synoscd", syntax.memory_error(value))
    return syntax.format_gi(amount)


def _number(value: Any) -> Any:
    # YAML gives int or float; refuse bools and strings here with a message that says so.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PydanticCustomError("synoscd", f"expected a number such as 0.5, got {show(value)}")
    return float(value)


def _positive_cpu(value: float) -> float:
    if not 0 < value < 1000:  # also refuses nan and inf
        raise PydanticCustomError("synoscd", f"cpu {show(value)} must be a positive number such as 0.25")
    return value


AcaName = Annotated[str, _check(syntax.check_aca_name), _pattern(syntax.ACA_NAME_PATTERN)]
ContainerName = Annotated[
    str, _check(lambda v: syntax.check_label(v, "container name")), _pattern(syntax.LABEL_PATTERN)
]
VolumeName = Annotated[
    str, _check(lambda v: syntax.check_label(v, "volume name")), _pattern(syntax.LABEL_PATTERN)
]
RuleName = Annotated[
    str, _check(lambda v: syntax.check_label(v, "scale rule name")), _pattern(syntax.LABEL_PATTERN)
]
Namespace = Annotated[
    str, _check(lambda v: syntax.check_label(v, "namespace")), _pattern(syntax.LABEL_PATTERN)
]
ProjectName = Annotated[
    str, _check(lambda v: syntax.check_label(v, "project name")), _pattern(syntax.LABEL_PATTERN)
]
SecretName = Annotated[str, _check(syntax.check_secret_name), _pattern(syntax.SECRET_NAME_PATTERN)]
EnvName = Annotated[str, _check(syntax.check_env_name), _pattern(syntax.ENV_NAME_PATTERN)]
ImageRef = Annotated[str, _check(syntax.check_image)]
KeyVaultRef = Annotated[str, _check(syntax.check_keyvault_ref)]
# `system` (the app's system-assigned identity) or a user-assigned identity resource ID.
AppIdentity = Annotated[str, _check(lambda v: None if v == "system" else syntax.check_identity_id(v))]
IpRange = Annotated[str, _check(syntax.check_ip_range)]
RegistryServer = Annotated[str, _check(syntax.check_registry_server)]
Origin = Annotated[str, _check(syntax.check_origin)]
RepoPath = Annotated[str, _check(syntax.check_repo_path)]
FolderPath = Annotated[str, _check(syntax.check_folder_path)]
MountPath = Annotated[str, _check(syntax.check_mount_path)]
CronExpression = Annotated[str, _check(syntax.check_cron)]
Cpu = Annotated[
    float,
    BeforeValidator(_number),
    AfterValidator(_positive_cpu),
    Field(json_schema_extra={"exclusiveMinimum": 0}),
]
Memory = Annotated[
    str, AfterValidator(_memory), Field(json_schema_extra={"pattern": r"^[0-9]+(\.[0-9]+)?(Gi|Mi)$"})
]


class Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        strict=True,
        frozen=True,
        field_title_generator=lambda name, _info: to_camel(name),  # titles as users write them
    )


# --- shared parts ------------------------------------------------------------------------------


class Metadata(Model):
    name: AcaName
    namespace: Namespace | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    # Annotations `synoscd.io/*` are kept as they are for sync waves and hooks.
    annotations: dict[str, str] = Field(default_factory=dict)


class ValueFrom(Model):
    secret_ref: str


class EnvVar(Model):
    name: EnvName
    value: str | None = None
    value_from: ValueFrom | None = None


class HttpHeader(Model):
    name: str
    value: str


class HttpGet(Model):
    path: str = "/"
    port: _port("port")  # type: ignore[valid-type]
    host: str | None = None
    scheme: Literal["HTTP", "HTTPS"] | None = None
    http_headers: list[HttpHeader] = Field(default_factory=list)


class TcpSocket(Model):
    port: _port("port")  # type: ignore[valid-type]
    host: str | None = None


class Probe(Model):
    type: Literal["Liveness", "Readiness", "Startup"]
    http_get: HttpGet | None = None
    tcp_socket: TcpSocket | None = None
    initial_delay_seconds: _range("initialDelaySeconds", 0, 60) | None = None  # type: ignore[valid-type]
    period_seconds: _range("periodSeconds", 1, 240) | None = None  # type: ignore[valid-type]
    timeout_seconds: _range("timeoutSeconds", 1, 240) | None = None  # type: ignore[valid-type]
    failure_threshold: _range("failureThreshold", 1, 10) | None = None  # type: ignore[valid-type]
    success_threshold: _range("successThreshold", 1, 10) | None = None  # type: ignore[valid-type]


class VolumeMount(Model):
    volume_name: VolumeName
    mount_path: MountPath
    sub_path: str | None = None


class Volume(Model):
    name: VolumeName
    storage_type: Literal["EmptyDir", "AzureFile", "NfsAzureFile", "Secret"] = "EmptyDir"
    storage_name: str | None = None
    mount_options: str | None = None  # e.g. "dir_mode=0777,file_mode=0777" (AzureFile)


class Container(Model):
    name: ContainerName
    image: ImageRef
    cpu: Cpu
    memory: Memory  # normalised to Gi, e.g. "512Mi" -> "0.5Gi"
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    probes: list[Probe] = Field(default_factory=list)
    volume_mounts: list[VolumeMount] = Field(default_factory=list)

    @property
    def cpu_decimal(self) -> Decimal:
        return Decimal(repr(self.cpu))

    @property
    def memory_gi(self) -> Decimal:
        return Decimal(self.memory.removesuffix("Gi"))


class InitContainer(Model):
    """Runs to completion before the app's containers start (no probes)."""

    name: ContainerName
    image: ImageRef
    cpu: Cpu | None = None
    memory: Memory | None = None
    command: list[str] = Field(default_factory=list)
    args: list[str] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    volume_mounts: list[VolumeMount] = Field(default_factory=list)


class Registry(Model):
    server: RegistryServer
    identity: str | None = None  # "system", "system-environment" or a user-assigned identity resource ID
    username: str | None = None
    password_secret_ref: str | None = None


class ScaleRuleAuth(Model):
    secret_ref: str
    trigger_parameter: str


class HttpScaleRule(Model):
    metadata: dict[str, str] = Field(default_factory=dict)
    auth: list[ScaleRuleAuth] = Field(default_factory=list)


class CustomScaleRule(Model):
    type: str
    metadata: dict[str, str] = Field(default_factory=dict)
    auth: list[ScaleRuleAuth] = Field(default_factory=list)
    identity: str | None = None


class QueueScaleRule(Model):
    queue_name: str
    queue_length: _range("queueLength", 1, 1_000_000)  # type: ignore[valid-type]
    account_name: str | None = None
    auth: list[ScaleRuleAuth] = Field(default_factory=list)
    identity: str | None = None


class ScaleRule(Model):
    """One of http, tcp, custom or azureQueue (checked in validate.py to point at the rule)."""

    name: RuleName
    http: HttpScaleRule | None = None
    tcp: HttpScaleRule | None = None
    custom: CustomScaleRule | None = None
    azure_queue: QueueScaleRule | None = None


class Scale(Model):
    min_replicas: _range("minReplicas", 0, 1000) = 0  # type: ignore[valid-type]
    max_replicas: _range("maxReplicas", 1, 1000) = 10  # type: ignore[valid-type]
    rules: list[ScaleRule] = Field(default_factory=list)


class IpSecurityRestriction(Model):
    name: str
    ip_address_range: IpRange
    action: Literal["Allow", "Deny"]
    description: str | None = None


class StickySessions(Model):
    affinity: Literal["none", "sticky"]


class Ingress(Model):
    enabled: bool = True
    external: bool = False
    target_port: _port("targetPort") | None = None  # type: ignore[valid-type]
    transport: Literal["auto", "http", "http2", "tcp"] = "auto"
    allow_insecure: bool = False
    allowed_origins: list[Origin] = Field(default_factory=list)
    ip_security_restrictions: list[IpSecurityRestriction] = Field(default_factory=list)
    sticky_sessions: StickySessions | None = None


# --- App ---------------------------------------------------------------------------------------


class AppSpec(Model):
    containers: list[Container] = Field(min_length=1)
    environment: list[EnvVar] = Field(default_factory=list)  # applied to every container
    ingress: Ingress | None = None
    scale: Scale | None = None
    # name -> Key Vault secret URL; a Key Vault resource ID is accepted and rendered into the URL
    secrets: dict[SecretName, KeyVaultRef] = Field(default_factory=dict)
    # Secrets set on the live app outside Git (e.g. a registry password): referenced, never written.
    external_secrets: list[SecretName] = Field(default_factory=list)
    identity: list[AppIdentity] = Field(default_factory=list)
    registries: list[Registry] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    suspend: bool = False
    config_from: list[RepoPath] = Field(default_factory=list)  # repository paths hashed into rollouts
    volumes: list[Volume] = Field(default_factory=list)
    init_containers: list[InitContainer] = Field(default_factory=list)
    workload_profile_name: str | None = None
    active_revisions_mode: Literal["Single", "Multiple"] | None = None
    max_inactive_revisions: _range("maxInactiveRevisions", 0, 100) | None = None  # type: ignore[valid-type]
    termination_grace_period_seconds: _range("terminationGracePeriodSeconds", 0, 600) | None = None  # type: ignore[valid-type]


class App(Model):
    api_version: Literal["synoscd.io/v1alpha1"]
    kind: Literal["App"]
    metadata: Metadata
    spec: AppSpec


# --- Job ---------------------------------------------------------------------------------------


class JobScaleRule(Model):
    name: RuleName
    type: str
    metadata: dict[str, str] = Field(default_factory=dict)
    auth: list[ScaleRuleAuth] = Field(default_factory=list)
    identity: str | None = None


class JobScale(Model):
    """Event-trigger scaling (ARM eventTriggerConfig.scale)."""

    min_executions: _range("minExecutions", 0, 1000) = 0  # type: ignore[valid-type]
    max_executions: _range("maxExecutions", 1, 1000) = 100  # type: ignore[valid-type]
    polling_interval: _range("pollingInterval", 1, 3600) = 30  # type: ignore[valid-type]
    rules: list[JobScaleRule] = Field(default_factory=list)


class JobSpec(Model):
    containers: list[Container] = Field(min_length=1)
    environment: list[EnvVar] = Field(default_factory=list)
    trigger_type: Literal["Manual", "Schedule", "Event"] = "Manual"
    cron_expression: CronExpression | None = None
    replica_timeout: _range("replicaTimeout", 1, 86_400) = 1800  # type: ignore[valid-type]
    replica_retry_limit: _range("replicaRetryLimit", 0, 100) = 0  # type: ignore[valid-type]
    parallelism: _range("parallelism", 1, 1000) = 1  # type: ignore[valid-type]
    replica_completion_count: _range("replicaCompletionCount", 1, 1000) = 1  # type: ignore[valid-type]
    scale: JobScale | None = None
    secrets: dict[SecretName, KeyVaultRef] = Field(default_factory=dict)
    external_secrets: list[SecretName] = Field(default_factory=list)
    identity: list[AppIdentity] = Field(default_factory=list)
    registries: list[Registry] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    suspend: bool = False
    volumes: list[Volume] = Field(default_factory=list)
    init_containers: list[InitContainer] = Field(default_factory=list)
    workload_profile_name: str | None = None


class Job(Model):
    api_version: Literal["synoscd.io/v1alpha1"]
    kind: Literal["Job"]
    metadata: Metadata
    spec: JobSpec


# --- Project -----------------------------------------------------------------------------------

APP_SPEC_FIELDS: tuple[str, ...] = tuple(field.alias or name for name, field in AppSpec.model_fields.items())


class Policy(Model):
    allowed_registries: list[str] | None = None  # host names, '*' globs allowed (e.g. *.azurecr.io)
    max_cpu: Cpu | None = None  # per app, summed over containers
    max_memory: Memory | None = None


class ProjectMetadata(Metadata):
    # A project is no Azure resource: any DNS label will do, "p" included.
    name: ProjectName


class ProjectSpec(Model):
    apps: list[AcaName] = Field(default_factory=list)
    # Deep-merged into each listed app's spec, the app's own values win. Checked when merged, so an
    # error points at the default's own line (see render.py).
    defaults: dict[str, Any] = Field(
        default_factory=dict,
        json_schema_extra={
            "description": "Parts of an App spec merged into every listed app; the app's own values win. "
            "A change that touches more than one app rolls out one app at a time (docs/synthesizers.md).",
            "propertyNames": {"enum": list(APP_SPEC_FIELDS)},
        },
    )
    policy: Policy = Field(default_factory=Policy)


class Project(Model):
    api_version: Literal["synoscd.io/v1alpha1"]
    kind: Literal["Project"]
    metadata: ProjectMetadata
    spec: ProjectSpec = Field(default_factory=ProjectSpec)


# --- Synthesizer and Composition (programs that generate Apps and Jobs; synoscd/synth/) -----------

InputKey = Annotated[
    str, _check(lambda v: syntax.check_label(v, "input key")), _pattern(syntax.LABEL_PATTERN)
]


class SynthesizerSpec(Model):
    """A KRM function: `image` runs as an ACA Job execution (executor job), `command` as a local
    subprocess (executor exec, off unless the operators allow it). Checked in synth/validate.py."""

    executor: Literal["job", "exec"] | None = None  # default: job with an image, exec with a command
    image: ImageRef | None = None
    command: list[str] = Field(default_factory=list)
    timeout_seconds: _range("timeoutSeconds", 1, 3600) = 60  # type: ignore[valid-type]
    cpu: Cpu = 0.25  # the job's container (executor job)
    memory: Memory = "0.5Gi"


class Synthesizer(Model):
    api_version: Literal["synoscd.io/v1alpha1"]
    kind: Literal["Synthesizer"]
    metadata: Metadata
    spec: SynthesizerSpec


class InputBinding(Model):
    """One input of a composition: exactly one of file, inline or secret."""

    key: InputKey
    file: RepoPath | None = None
    inline: dict[str, Any] | None = None
    secret: KeyVaultRef | None = None
    defer: bool = False


class CompositionSpec(Model):
    synthesizer: AcaName
    inputs: list[InputBinding] = Field(default_factory=list)
    config: dict[str, Any] = Field(default_factory=dict)


class Composition(Model):
    api_version: Literal["synoscd.io/v1alpha1"]
    kind: Literal["Composition"]
    metadata: Metadata
    spec: CompositionSpec


# --- Target (one environment of a fleet; read from the targets path, synoscd/fleet/) ---------------

TargetName = Annotated[str, _check(syntax.check_target_name), _pattern(syntax.TARGET_NAME_PATTERN)]
SubscriptionId = Annotated[str, _check(syntax.check_subscription), _pattern(syntax.SUBSCRIPTION_PATTERN)]
ResourceGroup = Annotated[str, _check(syntax.check_resource_group), _pattern(syntax.RESOURCE_GROUP_PATTERN)]
EnvironmentName = Annotated[
    str, _check(syntax.check_environment_name), _pattern(syntax.ENVIRONMENT_NAME_PATTERN)
]


class TargetMetadata(Model):
    name: TargetName
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class TargetOverrides(Model):
    """Runtime defaults of this target (what SYNOSCD_* gives the default target); `synos set
    --target NAME` still overrides them."""

    interval_seconds: _range("intervalSeconds", 10, 86400) | None = None  # type: ignore[valid-type]
    prune: bool | None = None
    protected_apps: list[AcaName] | None = None
    max_concurrent: _range("maxConcurrent", 1, 64) | None = None  # type: ignore[valid-type]
    retry_limit: _range("retryLimit", 0, 100) | None = None  # type: ignore[valid-type]
    applied_history: _range("appliedHistory", 1, 100) | None = None  # type: ignore[valid-type]
    pass_wait_seconds: _range("passWaitSeconds", 0, 1800) | None = None  # type: ignore[valid-type]


class TargetSpec(Model):
    subscription_id: SubscriptionId
    resource_group: ResourceGroup
    environment: EnvironmentName
    path: FolderPath
    overrides: TargetOverrides = Field(default_factory=TargetOverrides)


class Target(Model):
    api_version: Literal["synoscd.io/v1alpha1"]
    kind: Literal["Target"]
    metadata: TargetMetadata
    spec: TargetSpec


Manifest = App | Job | Project | Synthesizer | Composition | Target
MODELS: dict[str, type[Manifest]] = {
    "App": App,
    "Job": Job,
    "Project": Project,
    "Synthesizer": Synthesizer,
    "Composition": Composition,
    "Target": Target,
}


@functools.cache
def _schema() -> dict[str, Any]:
    adapter: TypeAdapter[Any] = TypeAdapter(
        Annotated[App | Job | Project | Synthesizer | Composition | Target, Field(discriminator="kind")]
    )
    schema = adapter.json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://synoscd.io/schemas/v1alpha1/manifest.json",
        "title": "SynosCD manifest (App, Job, Project, Synthesizer, Composition or Target)",
        **schema,
    }


def json_schema() -> dict[str, Any]:
    """JSON Schema of every kind: a oneOf discriminated on `kind` (for `synos schema` and editors)."""
    return copy.deepcopy(_schema())
