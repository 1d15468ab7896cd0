"""Semantic rules over one validated manifest: rules that span fields, each pointing at one field.

Every check returns issues as (field path, message); locate.py adds the file and line. Rules across
documents (duplicate names, an app in two projects) live in desired.py, policy rules in policy.py.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable, Sequence
from decimal import Decimal

from . import syntax
from .errors import Path, show
from .model_errors import Issue
from .schema import (
    APP_SPEC_FIELDS,
    App,
    AppSpec,
    Container,
    EnvVar,
    Ingress,
    InitContainer,
    Job,
    JobSpec,
    Project,
    Registry,
    ScaleRuleAuth,
)

SPEC: Path = ("spec",)
USER_TAG_LIMIT = syntax.MAX_TAGS - len(syntax.OWNERSHIP_TAGS)


def check_app(app: App) -> list[Issue]:
    spec = app.spec
    issues = _check_workload(spec)
    ingress = spec.ingress
    if ingress is not None and ingress.enabled and ingress.target_port is None:
        issues.append(
            (
                (*SPEC, "ingress", "targetPort"),
                "ingress is enabled but has no targetPort; add the port your container listens on",
            )
        )
    if ingress is not None:
        _check_ip_rules(issues, ingress)
    scale = spec.scale
    if scale is not None:
        if scale.min_replicas > scale.max_replicas:
            issues.append(
                (
                    (*SPEC, "scale", "minReplicas"),
                    f"minReplicas {scale.min_replicas} is greater than maxReplicas {scale.max_replicas}; "
                    "lower minReplicas or raise maxReplicas",
                )
            )
        _unique_names(issues, [rule.name for rule in scale.rules], (*SPEC, "scale", "rules"), "scale rule")
        for index, rule in enumerate(scale.rules):
            path = (*SPEC, "scale", "rules", index)
            kinds = [
                (name, part)
                for name, part in (
                    ("http", rule.http),
                    ("tcp", rule.tcp),
                    ("custom", rule.custom),
                    ("azureQueue", rule.azure_queue),
                )
                if part is not None
            ]
            if len(kinds) != 1:
                issues.append(
                    (
                        path,
                        f"scale rule '{rule.name}' needs exactly one of http, tcp, custom or azureQueue; "
                        "keep one",
                    )
                )
            for name, part in kinds:
                _check_auth(issues, part.auth, (*path, name, "auth"), _secret_names(spec))
    return issues


def check_job(job: Job) -> list[Issue]:
    spec = job.spec
    issues = _check_workload(spec)
    if spec.trigger_type == "Schedule" and spec.cron_expression is None:
        issues.append(
            (
                (*SPEC, "cronExpression"),
                "triggerType Schedule needs a cronExpression, e.g. '*/5 * * * *'; add one",
            )
        )
    if spec.trigger_type != "Schedule" and spec.cron_expression is not None:
        issues.append(
            (
                (*SPEC, "cronExpression"),
                f"cronExpression is only used with triggerType Schedule (this job is {spec.trigger_type}); "
                "remove it or set triggerType: Schedule",
            )
        )
    if spec.trigger_type == "Event":
        if spec.scale is None or not spec.scale.rules:
            path = (*SPEC, "scale") if spec.scale is None else (*SPEC, "scale", "rules")
            issues.append((path, "triggerType Event needs scale.rules with at least one rule; add one"))
    elif spec.scale is not None:
        issues.append(
            (
                (*SPEC, "scale"),
                "scale is only used with triggerType Event; remove it or set triggerType: Event",
            )
        )
    if spec.scale is not None:
        scale = spec.scale
        if scale.min_executions > scale.max_executions:
            issues.append(
                (
                    (*SPEC, "scale", "minExecutions"),
                    f"minExecutions {scale.min_executions} is greater than "
                    f"maxExecutions {scale.max_executions}; lower minExecutions or raise maxExecutions",
                )
            )
        _unique_names(issues, [rule.name for rule in scale.rules], (*SPEC, "scale", "rules"), "scale rule")
        for index, rule in enumerate(scale.rules):
            _check_auth(issues, rule.auth, (*SPEC, "scale", "rules", index, "auth"), _secret_names(spec))
    return issues


def check_project(project: Project) -> list[Issue]:
    issues: list[Issue] = []
    spec = project.spec
    _unique_names(issues, list(spec.apps), (*SPEC, "apps"), "app", field=None)
    for key in spec.defaults:
        if key not in APP_SPEC_FIELDS:
            close = difflib.get_close_matches(str(key), APP_SPEC_FIELDS, n=1, cutoff=0.6)
            hint = (
                f"did you mean '{close[0]}'?"
                if close
                else f"use App spec fields ({', '.join(APP_SPEC_FIELDS)})"
            )
            issues.append(((*SPEC, "defaults", key), f"unknown field {show(key)} in defaults; {hint}"))
    return issues


# --- shared by App and Job ---------------------------------------------------------------------


def _secret_names(spec: AppSpec | JobSpec) -> set[str]:
    """What a secretRef may name: the manifest's secrets and the live app's external ones."""
    return set(spec.secrets) | set(spec.external_secrets)


def _check_workload(spec: AppSpec | JobSpec) -> list[Issue]:
    issues: list[Issue] = []
    secrets = _secret_names(spec)
    for index, name in enumerate(spec.external_secrets):
        if name in spec.secrets:
            issues.append(
                (
                    (*SPEC, "externalSecrets", index),
                    f"secret '{name}' is in both secrets and externalSecrets; keep it in one "
                    "(secrets: SynosCD writes it from Key Vault; externalSecrets: set outside Git)",
                )
            )
    _unique_names(issues, list(spec.external_secrets), (*SPEC, "externalSecrets"), "secret", field=None)
    if spec.workload_profile_name in (None, "Consumption"):
        # Dedicated profiles allow other cpu/memory totals (a GPU profile's 0.1/0.1Gi is recorded).
        _check_resources(issues, spec.containers)
    _unique_names(issues, [c.name for c in spec.containers], (*SPEC, "containers"), "container")
    _unique_names(issues, [c.name for c in spec.init_containers], (*SPEC, "initContainers"), "init container")
    app_names = {c.name for c in spec.containers}
    for index, init in enumerate(spec.init_containers):
        if init.name in app_names:
            issues.append(
                (
                    (*SPEC, "initContainers", index, "name"),
                    f"init container '{init.name}' has the name of a container; rename one",
                )
            )
    _check_env(issues, spec.environment, (*SPEC, "environment"), secrets)
    volumes = {volume.name for volume in spec.volumes}
    _unique_names(issues, [v.name for v in spec.volumes], (*SPEC, "volumes"), "volume")
    for index, volume in enumerate(spec.volumes):
        if volume.storage_type in ("AzureFile", "NfsAzureFile") and not volume.storage_name:
            issues.append(
                (
                    (*SPEC, "volumes", index, "storageName"),
                    f"volume '{volume.name}' of storageType {volume.storage_type} needs storageName; "
                    "add the environment's storage name",
                )
            )
    for index, container in enumerate(spec.containers):
        _check_container(issues, container, (*SPEC, "containers", index), secrets, volumes)
    for index, init in enumerate(spec.init_containers):
        _check_init_container(issues, init, (*SPEC, "initContainers", index), secrets, volumes)
    _check_registries(issues, spec.registries, spec.identity, secrets)
    _check_tags(issues, spec.tags)
    return issues


def _check_resources(issues: list[Issue], containers: Sequence[Container]) -> None:
    cpu = sum((c.cpu_decimal for c in containers), Decimal(0))
    memory = sum((c.memory_gi for c in containers), Decimal(0))
    if not containers or syntax.is_valid_pair(cpu, memory):
        return
    if len(containers) == 1:  # point at the value to change
        cpu_ok = any(cpu == valid for valid, _ in syntax.VALID_PAIRS)
        path: Path = (*SPEC, "containers", 0, "memory" if cpu_ok else "cpu")
    else:
        path = (*SPEC, "containers")
    issues.append(
        (
            path,
            f"cpu {syntax.format_cpu(cpu)} and memory {syntax.format_gi(memory)} "
            f"(totals over all containers) are not a valid pair; use one of {syntax.PAIRS_HINT}",
        )
    )


def _check_container(
    issues: list[Issue], container: Container, path: Path, secrets: Collection[str], volumes: set[str]
) -> None:
    _check_env(issues, container.env, (*path, "env"), secrets)
    seen: dict[str, int] = {}
    for index, probe in enumerate(container.probes):
        probe_path = (*path, "probes", index)
        if (probe.http_get is None) == (probe.tcp_socket is None):
            issues.append(
                (probe_path, f"{probe.type} probe needs exactly one of httpGet or tcpSocket; keep one")
            )
        if probe.type in seen:
            issues.append(
                ((*probe_path, "type"), f"container '{container.name}' has two {probe.type} probes; keep one")
            )
        seen.setdefault(probe.type, index)
    _check_mounts(issues, container, path, volumes)


def _check_init_container(
    issues: list[Issue], init: InitContainer, path: Path, secrets: Collection[str], volumes: set[str]
) -> None:
    _check_env(issues, init.env, (*path, "env"), secrets)
    if (init.cpu is None) != (init.memory is None):
        missing = "memory" if init.memory is None else "cpu"
        issues.append(((*path, missing), f"init container '{init.name}' sets cpu or memory; set both"))
    _check_mounts(issues, init, path, volumes)


def _check_mounts(
    issues: list[Issue], container: Container | InitContainer, path: Path, volumes: set[str]
) -> None:
    for index, mount in enumerate(container.volume_mounts):
        if mount.volume_name not in volumes:
            issues.append(
                (
                    (*path, "volumeMounts", index, "volumeName"),
                    f"volume '{mount.volume_name}' is not declared in spec.volumes; "
                    "add it there or fix the name",
                )
            )


def _check_ip_rules(issues: list[Issue], ingress: Ingress) -> None:
    rules = ingress.ip_security_restrictions
    path = (*SPEC, "ingress", "ipSecurityRestrictions")
    _unique_names(issues, [rule.name for rule in rules], path, "ip security restriction")
    actions = {rule.action for rule in rules}
    if len(actions) > 1:
        first = rules[0].action
        index = next(i for i, rule in enumerate(rules) if rule.action != first)
        issues.append(
            (
                (*path, index, "action"),
                f"ipSecurityRestrictions mix Allow and Deny; ACA needs every rule to be {first} "
                "(an allow-list or a deny-list); make them all one action",
            )
        )


def _check_env(issues: list[Issue], env: Sequence[EnvVar], path: Path, secrets: Collection[str]) -> None:
    first: dict[str, int] = {}
    for index, var in enumerate(env):
        item = (*path, index)
        if var.name in first:
            issues.append(
                (
                    (*item, "name"),
                    f"env var '{var.name}' is set twice in this list (also at [{first[var.name]}]); "
                    "remove one",
                )
            )
        first.setdefault(var.name, index)
        if var.value is None and var.value_from is None:
            issues.append((item, f"env var '{var.name}' has neither value nor valueFrom; set one"))
        elif var.value is not None and var.value_from is not None:
            issues.append(
                ((*item, "valueFrom"), f"env var '{var.name}' has both value and valueFrom; keep one")
            )
        if var.value_from is not None:
            _check_secret_ref(issues, var.value_from.secret_ref, (*item, "valueFrom", "secretRef"), secrets)


def _check_auth(
    issues: list[Issue], auth: Sequence[ScaleRuleAuth], path: Path, secrets: Collection[str]
) -> None:
    for index, entry in enumerate(auth):
        _check_secret_ref(issues, entry.secret_ref, (*path, index, "secretRef"), secrets)


def _check_secret_ref(issues: list[Issue], name: str, path: Path, secrets: Collection[str]) -> None:
    if name not in secrets:
        issues.append(
            (
                path,
                f"secretRef {show(name)} is not declared in spec.secrets; add it there (or, for a secret "
                "set on the live app outside Git, to spec.externalSecrets) or fix the name",
            )
        )


def _check_registries(
    issues: list[Issue], registries: Sequence[Registry], identities: Sequence[str], secrets: Collection[str]
) -> None:
    assigned = {identity.lower() for identity in identities}
    _unique_names(issues, [r.server for r in registries], (*SPEC, "registries"), "registry", field="server")
    for index, registry in enumerate(registries):
        path = (*SPEC, "registries", index)
        server = registry.server
        if registry.identity is not None and (registry.username or registry.password_secret_ref):
            issues.append(
                (
                    path,
                    f"registry '{server}' sets both identity and username/passwordSecretRef; "
                    "keep one way to sign in",
                )
            )
        elif registry.identity is not None and registry.identity not in ("system", "system-environment"):
            message = syntax.check_identity_id(registry.identity)
            if message is None and registry.identity.lower() not in assigned:
                shown = show(registry.identity)
                message = f"registry identity {shown} is not listed in spec.identity; add it there"
            if message is not None:
                issues.append(((*path, "identity"), message))
        elif registry.username and not registry.password_secret_ref:
            issues.append(
                (
                    (*path, "passwordSecretRef"),
                    f"registry '{server}' has a username but no passwordSecretRef; add one",
                )
            )
        elif registry.password_secret_ref and not registry.username:
            issues.append(
                ((*path, "username"), f"registry '{server}' has a passwordSecretRef but no username; add one")
            )
        if registry.password_secret_ref:
            _check_secret_ref(issues, registry.password_secret_ref, (*path, "passwordSecretRef"), secrets)


def _check_tags(issues: list[Issue], tags: dict[str, str]) -> None:
    path = (*SPEC, "tags")
    if len(tags) > USER_TAG_LIMIT:
        issues.append(
            (
                path,
                f"{len(tags)} tags is too many; use at most {USER_TAG_LIMIT} "
                f"(Azure allows {syntax.MAX_TAGS} and SynosCD adds its "
                f"{len(syntax.OWNERSHIP_TAGS)} ownership tags)",
            )
        )
    seen: dict[str, str] = {}
    for name, value in tags.items():
        message = syntax.check_tag_name(name) or syntax.check_tag_value(name, value)
        if message is None and name.lower() in seen:
            message = (
                f"tag {show(name)} duplicates {show(seen[name.lower()])} (tag names ignore case); keep one"
            )
        seen.setdefault(name.lower(), name)
        if message is not None:
            issues.append(((*path, name), message))


def _unique_names(
    issues: list[Issue], names: Iterable[str], path: Path, what: str, field: str | None = "name"
) -> None:
    first: dict[str, int] = {}
    for index, name in enumerate(names):
        if name in first:
            where = (*path, index, field) if field else (*path, index)
            issues.append(
                (where, f"{what} '{name}' appears twice (also at [{first[name]}]); remove or rename one")
            )
        first.setdefault(name, index)
