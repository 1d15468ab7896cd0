"""One renderer for every command: tables for people (`-o table`, or `-o wide` with nothing cut),
json and yaml (the same data) for machines. Table cells are rendered for humans — never a Python
repr — and a value that does not fit is cut with an ellipsis, never silently."""

from __future__ import annotations

import contextvars
import difflib
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TextIO

FORMATS = ("table", "wide", "json", "yaml")
MAX_CELL = 50  # characters of one table cell in `-o table`; `-o wide` shows everything
ELLIPSIS = "…"

_wide: contextvars.ContextVar[bool] = contextvars.ContextVar("wide", default=False)


class CliError(Exception):
    """A one- or two-line message for the user, and the exit code (2: usage or runtime error)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def is_wide() -> bool:
    return _wide.get()


def fit(text: str, width: int | None = MAX_CELL) -> str:
    """`text` on one line; cut to `width` with an ellipsis (never in `-o wide`, nor with width None)."""
    text = " ".join(text.split()) if any(c.isspace() and c != " " for c in text) else text
    if width is None or is_wide() or len(text) <= width:
        return text
    return text[: width - 1] + ELLIPSIS


def cell(value: Any) -> str:
    """A value as a person reads it: no None, True, {'a': 1} or ['x'] in a table."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(cell(v) for v in value) or "-"
    return str(value)


def short_rev(revision: str | None) -> str:
    """A commit as git shows it (12 hex digits) and a content hash likewise; whole in `-o wide`."""
    if not revision:
        return "-"
    if is_wide():
        return revision
    if revision.startswith("sha256:"):
        return revision[:19]
    is_sha = len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)
    return revision[:12] if is_sha else revision


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], max_width: int | None = MAX_CELL) -> str:
    """Columns padded to their widest cell; cells cut at `max_width` (None: a detail view, never cut)."""
    cells = [[fit(cell(v), max_width) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def error_line(error: Mapping[str, Any]) -> str:
    """`file:line: field: message`, leaving out the parts that are empty."""
    where = ":".join(str(p) for p in (error.get("file"), error.get("line")) if p not in (None, ""))
    parts = [p for p in (where, error.get("field"), error.get("message")) if p not in (None, "")]
    return ": ".join(str(p) for p in parts)


def suggest(name: str, candidates: Iterable[str]) -> str:
    """'; did you mean "x"?' when a candidate is close (case alone counts as close), else ''."""
    pool = sorted(set(candidates))
    exact = [c for c in pool if c.lower() == name.lower()]
    close = exact or difflib.get_close_matches(name.lower(), pool, n=3, cutoff=0.6)
    if not close:
        return ""
    return "; did you mean " + " or ".join(repr(c) for c in close) + "?"


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
        token = _wide.set(fmt == "wide")
        try:
            out.write((as_table(data) if as_table else json.dumps(data, indent=2, default=str)) + "\n")
        finally:
            _wide.reset(token)
    out.flush()


def human(fmt: str) -> bool:
    return fmt in ("table", "wide")
