"""One renderer for every command: table for people, json and yaml (the same data) for machines."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

FORMATS = ("table", "json", "yaml")


class CliError(Exception):
    """A one- or two-line message for the user, and the exit code (2: usage or runtime error)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def emit(
    data: Any, fmt: str, as_table: Callable[[Any], str] | None = None, stream: TextIO | None = None
) -> None:
    out = stream or sys.stdout
    if fmt == "json":
        out.write(json.dumps(data, indent=2, default=str) + "\n")
    elif fmt == "yaml":
        import yaml

        out.write(
            yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False, allow_unicode=True)
        )
    else:
        out.write((as_table(data) if as_table else json.dumps(data, indent=2, default=str)) + "\n")
    out.flush()
