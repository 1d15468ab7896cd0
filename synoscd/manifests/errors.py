"""Errors as values: what is wrong, where (file, line, field) and what to do about it."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

# A field path as data: mapping keys and list indices, e.g. ("spec", "containers", 0, "cpu").
Path = tuple[Any, ...]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")


@dataclass(frozen=True, slots=True)
class ManifestError:
    """One problem in one manifest.

    `line` is 1-based; `field` is "" when the whole file or document is meant.
    """

    file: str
    line: int
    field: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "message": self.message}

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


def format_path(path: Iterable[Any]) -> str:
    """("spec", "containers", 0, "cpu") -> "spec.containers[0].cpu"; odd keys are quoted: labels["a.io/b"]."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int) and not isinstance(part, bool):
            out.append(f"[{part}]")
        elif isinstance(part, str) and _PLAIN_KEY.match(part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{json.dumps(str(part))}]")
    return "".join(out)


def show(value: Any, limit: int = 60) -> str:
    """A user value quoted for a message, cut short so hostile input cannot flood the output."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, int | float):
        text = repr(value)
    elif isinstance(value, str):
        text = value if len(value) <= limit else value[:limit] + "..."
        return "'" + text.replace("\n", "\\n") + "'"
    else:
        text = type_name(value)
    return text


def type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__
