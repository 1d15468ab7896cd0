"""Policy a manifest cannot switch off: a project's policy over its apps, and the operator guardrails
(runtime settings, `synos set`) over every App and Job. A violation is an error of the workload, naming
who set the limit; `Validate=false` skips none of it (it skips only SynosCD's advisory checks)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from fnmatch import fnmatchcase
from urllib.parse import urlsplit

from . import syntax
from .errors import Path
from .model_errors import Issue
from .schema import App, Container, Job, Policy

GUARDRAILS = "the operator guardrails"


@dataclass(frozen=True)
class Guardrails:
    """What the operators allow, for every App and Job. `vault_hosts`: the Key Vault hosts secret URLs
    may name (host or host:port, '*' globs allowed); None leaves secret URLs unchecked (offline
    validation), an empty tuple allows none."""

    policy: Policy = field(default_factory=Policy)
    vault_hosts: tuple[str, ...] | None = None

    @property
    def empty(self) -> bool:
        p = self.policy
        return (
            p.allowed_registries is None
            and p.max_cpu is None
            and p.max_memory is None
            and self.vault_hosts is None
        )


def check_policy(workload: App | Job, policy: Policy, by: str, hint: str = "") -> list[Issue]:
    """`by` names who set the policy ("project 'p'", the operator guardrails); `hint` says where to
    change it, appended to each message."""
    issues: list[Issue] = []
    containers = _containers(workload)
    if policy.allowed_registries is not None:
        patterns = [pattern.lower() for pattern in policy.allowed_registries]
        allowed = ", ".join(policy.allowed_registries) or "none"
        for path, container in containers:
            registry = syntax.image_registry(container.image)
            if not any(fnmatchcase(registry, pattern) for pattern in patterns):
                issues.append(
                    (
                        (*path, "image"),
                        f"image registry '{registry}' is not allowed by {by}; use an image from: {allowed}"
                        + _hint(hint, "--allowed-registries"),
                    )
                )
    running = [c for path, c in containers if path[1] == "containers"]
    single = len(running) == 1  # point at the container's own value when there is only one
    if policy.max_cpu is not None:
        cpu = sum((c.cpu_decimal for c in running), Decimal(0))
        limit = Decimal(repr(policy.max_cpu))
        if cpu > limit:
            where: Path = ("spec", "containers", 0, "cpu") if single else ("spec", "containers")
            issues.append(
                (
                    where,
                    f"cpu {syntax.format_cpu(cpu)} (total over all containers) exceeds maxCpu "
                    f"{syntax.format_cpu(limit)} of {by}; lower it" + _hint(hint, "--max-cpu"),
                )
            )
    if policy.max_memory is not None:
        memory = sum((c.memory_gi for c in running), Decimal(0))
        limit = Decimal(policy.max_memory.removesuffix("Gi"))
        if memory > limit:
            where = ("spec", "containers", 0, "memory") if single else ("spec", "containers")
            issues.append(
                (
                    where,
                    f"memory {syntax.format_gi(memory)} (total over all containers) exceeds maxMemory "
                    f"{policy.max_memory} of {by}; lower it" + _hint(hint, "--max-memory"),
                )
            )
    return issues


def check_guardrails(workload: App | Job, guardrails: Guardrails) -> list[Issue]:
    issues = check_policy(workload, guardrails.policy, GUARDRAILS, hint="synos set")
    if guardrails.vault_hosts is not None:
        issues += check_vault_hosts(workload, guardrails.vault_hosts)
    return issues


def check_vault_hosts(workload: App | Job, allowed: Sequence[str]) -> list[Issue]:
    """Every secret URL must name an allowed vault: SynosCD (and ACA, with the app's identity) would
    otherwise call a host a manifest chose — an open door to internal endpoints."""
    issues: list[Issue] = []
    for name, ref in workload.spec.secrets.items():
        host = vault_host(ref)
        if host is None or host_allowed(host, allowed):
            continue
        if allowed:
            message = (
                f"Key Vault host '{host}' is not allowed (allowed: {', '.join(allowed)}); use a vault of "
                "SYNOSCD_KEYVAULT_URL or SYNOSCD_KEYVAULT_ALLOWED_HOSTS"
            )
        else:
            message = (
                f"Key Vault host '{host}' is not allowed: no Key Vault is configured; set "
                "SYNOSCD_KEYVAULT_URL or SYNOSCD_KEYVAULT_ALLOWED_HOSTS"
            )
        issues.append((("spec", "secrets", name), message))
    return issues


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """`host` (normalised) matches one of `allowed` (hosts or host:port, '*' globs)."""
    return any(fnmatchcase(host, normal_host(pattern)) for pattern in allowed)


def vault_host(ref: str) -> str | None:
    """The host (and non-default port) of a Key Vault secret URL or resource ID, lower case."""
    url = syntax.keyvault_secret_url(ref)
    return normal_host(urlsplit(url).netloc) if url else None


def normal_host(host: str) -> str:
    host = host.strip().lower().rstrip("/")
    return host.removesuffix(":443")


def _containers(workload: App | Job) -> list[tuple[Path, Container]]:
    """Every container with its path; init containers too when the schema has them (their images run
    in the environment as well; only their images are checked, the totals stay those of `containers`)."""
    out: list[tuple[Path, Container]] = [
        (("spec", "containers", i), c) for i, c in enumerate(workload.spec.containers)
    ]
    for i, c in enumerate(getattr(workload.spec, "init_containers", None) or ()):
        out.append((("spec", "initContainers", i), c))
    return out


def _hint(hint: str, option: str) -> str:
    return f" ({hint} {option})" if hint else ""
