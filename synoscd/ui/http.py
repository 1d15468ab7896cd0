"""The dashboard's and the JSON API's answers to GET requests: (status, headers, body). function_app.py
calls these lazily, so importing the Function app loads neither Jinja2 nor the state code."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from synoscd.ui import auth

log = logging.getLogger("synoscd.ui")
Response = tuple[int, dict[str, str], bytes]

# Every asset is ours and served from here: nothing else may load (no CDN, no inline script).
SECURITY = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
PAGES = {
    "": "overview",
    "targets": "targets",
    "apps": "apps",
    "operation": "operation",
    "history": "history",
    "tombstones": "tombstones",
}


def _runtime() -> Any:
    from synoscd.engine.runtime import get_runtime

    return get_runtime()


def _base(url: str, path: str) -> str:
    """The URL path the dashboard lives under (/api/ui), from the request's own URL."""
    full = unquote(urlsplit(url).path).rstrip("/")
    rest = path.strip("/")
    return full[: len(full) - len(rest)].rstrip("/") if rest and full.endswith(rest) else full


def _decide(headers: Mapping[str, str], url: str) -> auth.Decision:
    return auth.decide(_runtime().settings.ui_auth, headers, url)


def _json(status: int, doc: Any) -> Response:
    body = json.dumps(doc, indent=2, default=str).encode()
    return status, {"Content-Type": "application/json", "Cache-Control": "no-store", **SECURITY}, body


def _html(status: int, text: str) -> Response:
    headers = {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store", **SECURITY}
    return status, headers, text.encode()


def api(path: str, query: Mapping[str, str], headers: Mapping[str, str], url: str) -> Response:
    decision = _decide(headers, url)
    if not decision.allowed:
        return _json(decision.status, {"error": decision.reason})
    from synoscd.api import v1

    try:
        return _json(*v1.handle(_runtime(), path, query))
    except Exception as exc:  # the state store or ARM failed: say so, without internals
        log.exception("api request failed", extra={"path": path})
        return _json(503, {"error": f"could not read SynosCD's state ({type(exc).__name__}); see the log"})


def ui(path: str, query: Mapping[str, str], headers: Mapping[str, str], url: str) -> Response:
    decision = _decide(headers, url)
    from synoscd.ui import render

    base = _base(url, path)
    if not decision.allowed:
        page = render.render(
            "error.html",
            base=base,
            user=None,
            page="",
            title="Not signed in" if decision.status == 401 else "Not available",
            message=decision.reason,
            now=_now(),
        )
        return _html(decision.status, page)
    parts = [p for p in path.strip("/").split("/") if p]
    root = base
    target = None
    if len(parts) >= 2 and parts[0] == "t":  # /api/ui/t/NAME/...: the pages of target NAME
        target, parts = parts[1], parts[2:]
        base = _base(url, "/".join(parts))
    if len(parts) == 2 and parts[0] == "static":
        found = render.static(parts[1])
        if found is None:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        content, kind = found
        return 200, {"Content-Type": kind, "Cache-Control": "public, max-age=86400", **SECURITY}, content
    from synoscd.ui.data import commit_link

    common = {
        "base": base,
        "root": root,
        "target": target,
        "user": decision.user,
        "now": _now(),
        "link": commit_link(_runtime().settings),
    }
    try:
        return _page(parts, query, common)
    except Exception as exc:
        log.exception("dashboard page failed", extra={"path": path})
        text = render.render(
            "error.html",
            **common,
            page="",
            title="State unavailable",
            message=f"Could not read SynosCD's state ({type(exc).__name__}); the function's log says why.",
        )
        return _html(503, text)


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())


def _page(parts: list[str], query: Mapping[str, str], common: dict[str, Any]) -> Response:
    from synoscd.engine.runtime import UnknownTarget
    from synoscd.ui import data, render

    try:
        rt = _runtime().for_target(common["target"])
    except UnknownTarget as exc:
        return _html(
            404, render.render("error.html", page="", title="No such target", message=str(exc), **common)
        )
    key = "/".join(parts)
    if key in PAGES:
        name = PAGES[key]
        build = {
            "targets": lambda: data.targets_page(rt),
            "overview": lambda: data.overview(rt),
            "apps": lambda: data.apps_page(rt, query),
            "operation": lambda: data.operation_page(rt),
            "history": lambda: data.history_page(rt),
            "tombstones": lambda: data.tombstones(rt),
        }[name]
        return _html(200, render.render(f"{name}.html", page=name, d=build(), **common))
    if len(parts) == 3 and parts[0] == "apps" and parts[1] in ("App", "Job"):
        detail = data.app_detail(rt, parts[1], parts[2])
        if detail is not None:
            return _html(200, render.render("app.html", page="apps", d=detail, **common))
        message = f"SynosCD has no record of {parts[1]} {parts[2]}, and Azure has none either."
    else:
        message = "There is no such page."
    return _html(404, render.render("error.html", page="", title="Not found", message=message, **common))
