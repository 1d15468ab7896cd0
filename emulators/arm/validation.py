"""The 400s ACA answers before it stores anything: names, location, tags, containers, and the
cpu/memory combinations the Consumption profile allows."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from emulators.arm.model import ArmError

VALID_TOTALS = {Decimal("0.25") * i: Decimal("0.5") * i for i in range(1, 17)}  # up to 4 cpu / 8Gi
TAG_NAME_FORBIDDEN = set("<>%&\\?/")


def parse_memory_gi(text: Any) -> Decimal | None:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(Gi|Mi)\s*", str(text))
    if not m:
        return None
    value = Decimal(m.group(1))
    return value if m.group(2) == "Gi" else value / 1024


def validate_envelope(envelope: dict[str, Any], name: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,30}[a-z0-9]", name) or "--" in name:
        raise ArmError(
            400,
            "ContainerAppInvalidName",
            f"Invalid name '{name}': 2-32 lowercase letters, digits or '-', starting with a "
            "letter, ending with a letter or digit, without '--'.",
        )
    if not envelope.get("location"):
        raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
    tags = envelope.get("tags") or {}
    if len(tags) > 50:
        raise ArmError(400, "InvalidTagCount", f"{len(tags)} tags given; at most 50 are allowed.")
    for tag, value in tags.items():
        if len(tag) > 512 or TAG_NAME_FORBIDDEN & set(tag):
            raise ArmError(
                400,
                "InvalidTagNameCharacters",
                f"The tag name '{tag}' has characters that are not allowed (<>%&\\?/) or is "
                "longer than 512 characters.",
            )
        if len(str(value)) > 256:
            raise ArmError(400, "InvalidTagValueLength", f"The value of tag '{tag}' exceeds 256 characters.")
    props = envelope.get("properties") or {}
    containers = (props.get("template") or {}).get("containers") or []
    if not containers:
        raise ArmError(
            400, "ContainerAppInvalidTemplate", "template.containers must hold at least one container."
        )
    for c in containers:
        if not c.get("name") or not c.get("image"):
            raise ArmError(400, "ContainerAppInvalidTemplate", "Each container needs a name and an image.")
    if props.get("workloadProfileName") in (None, "Consumption"):
        validate_totals(containers)
    validate_secret_refs(props.get("configuration") or {})


def validate_secret_refs(config: dict[str, Any]) -> None:
    """A registry's passwordSecretRef must name a secret of the app (test_container_acr: a PUT
    without the registry's secret answered this 400)."""
    names = {s.get("name") for s in config.get("secrets") or [] if isinstance(s, dict)}
    for r in config.get("registries") or []:
        ref = r.get("passwordSecretRef") if isinstance(r, dict) else None
        if ref and ref not in names:
            raise ArmError(
                400,
                "ContainerAppRegistriesPasswordSecretRefNotFound",
                f"PasswordSecretRef '{ref}' defined for registry server '{r.get('server')}' not found.",
            )


def validate_totals(containers: list[dict[str, Any]]) -> None:
    """Consumption apps must add up to one of ACA's cpu/memory pairs (0.25/0.5Gi ... 4/8Gi)."""
    cpu = Decimal(0)
    mem = Decimal(0)
    for c in containers:
        res = c.get("resources") or {}
        try:
            cpu += Decimal(str(res.get("cpu") if res.get("cpu") is not None else 0.5))
        except InvalidOperation:
            cpu = Decimal(-1)
        parsed = parse_memory_gi(res.get("memory") if res.get("memory") is not None else "1Gi")
        mem += parsed if parsed is not None else Decimal(-1)
    if VALID_TOTALS.get(cpu) != mem:
        raise ArmError(
            400,
            "ContainerAppInvalidResourceTotal",
            f"The total requested CPU and memory resources for this application (CPU: {cpu}, memory: "
            f"{mem}Gi) is invalid. Total CPU and memory for all containers defined in a Container App "
            "must add up to one of the following CPU - Memory combinations: [cpu: 0.25, memory: 0.5Gi]; "
            "[cpu: 0.5, memory: 1.0Gi]; ... [cpu: 4.0, memory: 8.0Gi]",
        )
