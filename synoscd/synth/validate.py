"""Rules for Synthesizer and Composition manifests a schema cannot express, as (field path, message)
pairs the loader turns into file:line:field errors. Pure."""

from __future__ import annotations

from decimal import Decimal

from synoscd.manifests import syntax
from synoscd.manifests.model_errors import Issue
from synoscd.manifests.schema import Composition, Synthesizer
from synoscd.synth.annotations import ANNOTATIONS, IGNORE_SIDE_EFFECTS, PREFIX

EXECUTORS = ("job", "exec")


def executor_of(synthesizer: Synthesizer) -> str:
    """`spec.executor`, or what the spec implies: job with an image, exec with a command."""
    spec = synthesizer.spec
    if spec.executor is not None:
        return spec.executor
    return "exec" if spec.command and spec.image is None else "job"


def check_synthesizer(synthesizer: Synthesizer) -> list[Issue]:
    spec = synthesizer.spec
    issues: list[Issue] = []
    if spec.image is not None and spec.command:
        issues.append(
            (("spec", "command"), "set either image (executor job) or command (executor exec), not both")
        )
    elif spec.image is None and not spec.command:
        issues.append(
            (
                ("spec",),
                "a synthesizer needs an image (runs as an ACA Job execution) or a command (runs as a "
                "local process, executor exec); add one",
            )
        )
    executor = executor_of(synthesizer)
    if executor == "job" and spec.image is None and spec.command:
        issues.append((("spec", "executor"), "executor job runs an image; add spec.image or use exec"))
    if executor == "exec" and not spec.command:
        issues.append((("spec", "executor"), "executor exec runs a command; add spec.command or use job"))
    if any(not part for part in spec.command):
        issues.append((("spec", "command"), "command parts must not be empty strings"))
    cpu, memory = Decimal(repr(spec.cpu)), Decimal(spec.memory.removesuffix("Gi"))
    if executor == "job" and not syntax.is_valid_pair(cpu, memory):
        issues.append(
            (
                ("spec", "cpu"),
                f"cpu {syntax.format_cpu(cpu)} and memory {spec.memory} are not a valid pair; use one of "
                f"{syntax.PAIRS_HINT}",
            )
        )
    issues += _annotations(synthesizer.metadata.annotations, allowed=())
    return issues


def check_composition(composition: Composition, synthesizers: set[str]) -> list[Issue]:
    spec = composition.spec
    issues: list[Issue] = []
    if spec.synthesizer not in synthesizers:
        known = ", ".join(sorted(synthesizers)) or "none"
        issues.append(
            (
                ("spec", "synthesizer"),
                f"no Synthesizer '{spec.synthesizer}' in the repository (known: {known}); add it or fix "
                "the name",
            )
        )
    seen: dict[str, int] = {}
    for i, binding in enumerate(spec.inputs):
        where = ("spec", "inputs", i)
        given = [name for name in ("file", "inline", "secret") if getattr(binding, name) is not None]
        if len(given) != 1:
            issues.append(
                (
                    where,
                    f"input '{binding.key}' needs exactly one of file, inline or secret"
                    + (f" (has {', '.join(given)})" if given else ""),
                )
            )
        if binding.key in seen:
            issues.append(
                (
                    (*where, "key"),
                    f"input key '{binding.key}' is also used by inputs[{seen[binding.key]}]; keys must be "
                    "unique",
                )
            )
        seen.setdefault(binding.key, i)
    issues += _annotations(composition.metadata.annotations, allowed=(IGNORE_SIDE_EFFECTS,))
    value = composition.metadata.annotations.get(IGNORE_SIDE_EFFECTS)
    if value is not None and value not in ("true", "false"):
        issues.append(
            (
                ("metadata", "annotations", IGNORE_SIDE_EFFECTS),
                f'{IGNORE_SIDE_EFFECTS} must be "true" or "false", got \'{value}\'',
            )
        )
    return issues


def _annotations(annotations: dict[str, str], allowed: tuple[str, ...]) -> list[Issue]:
    """A `synoscd.io/` annotation SynosCD does not read here is a typo until proven otherwise."""
    issues: list[Issue] = []
    for key in annotations:
        if key.startswith(PREFIX) and key not in allowed:
            hint = f"; here only {', '.join(allowed)}" if allowed else ""
            where = "input items" if key in ANNOTATIONS else "this kind"
            issues.append(
                (("metadata", "annotations", key), f"annotation '{key}' is not used on {where}{hint}")
            )
    return issues
