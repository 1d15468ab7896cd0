"""A project's policy applied to one of its apps; a violation is an error of the app, naming the project."""

from __future__ import annotations

from decimal import Decimal
from fnmatch import fnmatchcase

from . import syntax
from .errors import Path
from .model_errors import Issue
from .schema import App, Policy


def check_policy(app: App, project: str, policy: Policy) -> list[Issue]:
    issues: list[Issue] = []
    containers = app.spec.containers
    if policy.allowed_registries is not None:
        patterns = [pattern.lower() for pattern in policy.allowed_registries]
        allowed = ", ".join(policy.allowed_registries) or "none"
        for index, container in enumerate(containers):
            registry = syntax.image_registry(container.image)
            if not any(fnmatchcase(registry, pattern) for pattern in patterns):
                issues.append(
                    (
                        ("spec", "containers", index, "image"),
                        f"image registry '{registry}' is not allowed by project '{project}'; "
                        f"use an image from: {allowed}",
                    )
                )
    single = len(containers) == 1  # point at the container's own value when there is only one
    if policy.max_cpu is not None:
        cpu = sum((c.cpu_decimal for c in containers), Decimal(0))
        limit = Decimal(repr(policy.max_cpu))
        if cpu > limit:
            path: Path = ("spec", "containers", 0, "cpu") if single else ("spec", "containers")
            issues.append(
                (
                    path,
                    f"cpu {syntax.format_cpu(cpu)} (total over all containers) exceeds maxCpu "
                    f"{syntax.format_cpu(limit)} of project '{project}'; lower it",
                )
            )
    if policy.max_memory is not None:
        memory = sum((c.memory_gi for c in containers), Decimal(0))
        limit = Decimal(policy.max_memory.removesuffix("Gi"))
        if memory > limit:
            path = ("spec", "containers", 0, "memory") if single else ("spec", "containers")
            issues.append(
                (
                    path,
                    f"memory {syntax.format_gi(memory)} (total over all containers) exceeds maxMemory "
                    f"{policy.max_memory} of project '{project}'; lower it",
                )
            )
    return issues
