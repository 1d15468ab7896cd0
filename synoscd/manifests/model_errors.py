"""Pydantic's errors turned into (field path, short actionable message) pairs."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import Path, format_path, show, type_name

Issue = tuple[Path, str]

_EXPECTED = {
    "string_type": "a string",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}
_HINTS = {
    "cpu": " (cpu and memory totals must be a valid pair, e.g. cpu: 0.25 with memory: 0.5Gi)",
    "memory": " (cpu and memory totals must be a valid pair, e.g. cpu: 0.25 with memory: 0.5Gi)",
    "metadata": " with at least a name",
}


def issues_from(exc: ValidationError, root: type[BaseModel]) -> list[Issue]:
    issues: list[Issue] = []
    for error in exc.errors(include_url=False):
        # '[key]' marks an error in a mapping key; the key's own path and line are what we want.
        path = tuple(part for part in error["loc"] if part != "[key]")
        issues.append((path, _message(error, path, root)))
    return issues


def _message(error: Any, path: Path, root: type[BaseModel]) -> str:
    kind = error["type"]
    value = error.get("input")
    leaf = _leaf(path)
    if kind == "synoscd":  # our own validators already say what to do
        return str(error["msg"])
    if kind == "missing":
        return f"missing required field '{leaf}'; add it{_HINTS.get(leaf, '')}"
    if kind == "extra_forbidden":
        return _unknown_field(leaf, _fields_at(root, path[:-1]))
    if kind in _EXPECTED:
        hint = ""
        if kind == "string_type" and not isinstance(value, dict | list):
            hint = "; quote the value"
        elif kind in ("int_type", "float_type", "bool_type") and isinstance(value, str):
            hint = "; remove the quotes"
        return f"{leaf} must be {_EXPECTED[kind]}, got {_describe(value)}{hint}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"{leaf} must be {expected}, got {show(value)}"
    if kind == "too_short":
        minimum = error.get("ctx", {}).get("min_length", 1)
        return f"{leaf} needs at least {minimum} item{'s' if minimum != 1 else ''}; add one"
    return f"{leaf}: {error['msg']}"  # pragma: no cover - a type our models do not produce


def _leaf(path: Path) -> str:
    """The last named part with any list indices after it: ('spec', 'containers', 0) -> 'containers[0]'."""
    for start in range(len(path) - 1, -1, -1):
        if isinstance(path[start], str):
            name = format_path(path[start : start + 1])
            if name.startswith("["):  # a key like synoscd.io/managed reads better quoted
                name = show(path[start])
            return name + format_path(path[start + 1 :])
    return format_path(path) or "document"


def _describe(value: Any) -> str:
    if isinstance(value, dict | list):
        return type_name(value)
    return f"{type_name(value)} {show(value)}" if isinstance(value, str) else show(value)


def _unknown_field(name: str, allowed: list[str] | None) -> str:
    if allowed is None:
        return f"unknown field '{name}'; remove it"
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if not close:  # also catch snake_case and case slips: target_port -> targetPort
        folded = name.replace("_", "").lower()
        close = [field for field in allowed if field.lower() == folded]
    if close:
        return f"unknown field '{name}'; did you mean '{close[0]}'?"
    return f"unknown field '{name}'; remove it (allowed: {', '.join(allowed)})"


def _fields_at(root: type[BaseModel], path: Path) -> list[str] | None:
    """The camelCase field names of the model found at `path` under `root`, if it is a model."""
    current: Any = root
    for part in path:
        current = _strip(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            current = next(
                (f.annotation for n, f in current.model_fields.items() if (f.alias or n) == part), None
            )
        elif typing.get_origin(current) is list and isinstance(part, int):
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
        if current is None:
            return None
    current = _strip(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [f.alias or n for n, f in current.model_fields.items()]
    return None


def _strip(annotation: Any) -> Any:
    """Annotated[X, ...] -> X and X | None -> X."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation
