"""Server-side rendering with Jinja2 (autoescaped), and the static assets shipped in the package.
Built once per process: the templates are compiled on first use and kept."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from synoscd import __version__
from synoscd.cli.views import ago, when

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,  # a misspelt field fails the render instead of showing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals["version"] = __version__
    env.globals["asset_version"] = asset_version()
    env.filters["short"] = lambda sha, n=12: (sha or "-")[:n]
    env.filters["dash"] = lambda v: "-" if v in (None, "") else v
    env.filters["when"] = when
    env.filters["ago"] = ago
    env.filters["show"] = lambda v: json.dumps(v, sort_keys=True, default=str)
    env.globals["qs"] = query_string
    return env


def query_string(filters: dict[str, Any], **more: Any) -> str:
    """A page's query string keeping the filters that are set (sort links keep the filter)."""
    return urlencode({k: v for k, v in {**filters, **more}.items() if v not in (None, "")})


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


@cache
def asset_version() -> str:
    """Changes when any static file does, so browsers may cache assets for long."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:10]


def static(name: str) -> tuple[bytes, str] | None:
    """(content, content type) of a shipped asset; None for anything else (no path escapes)."""
    path = STATIC / name
    if "/" in name or "\\" in name or name.startswith(".") or path.suffix not in TYPES or not path.is_file():
        return None
    return path.read_bytes(), TYPES[path.suffix]
