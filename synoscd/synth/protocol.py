"""The KRM function protocol (kpt's Functions Specification, as Eno uses it): a `ResourceList` in,
a `ResourceList` out. Pure: bytes in, checked values out; every malformed answer becomes an error
value that names what was wrong, never an exception.

In:  {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": [...],
      "functionConfig": <the Composition>}
Out: {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": [App or Job, ...],
      "results": [{"severity": "error|warning|info", "message": "...", ...}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from synoscd.manifests.schema import API_VERSION

KRM_API_VERSION = "config.kubernetes.io/v1"
KRM_KIND = "ResourceList"
# kpt also writes the older v1alpha1; accept both on the way back, send the current one.
ACCEPTED_API_VERSIONS = (KRM_API_VERSION, "config.kubernetes.io/v1alpha1")
SEVERITIES = ("error", "warning", "info")
OUTPUT_KINDS = ("App", "Job")
DEFAULT_MAX_OUTPUT_BYTES = 1_048_576
MAX_RESULTS_KEPT = 20
MAX_MESSAGE = 500


@dataclass(frozen=True)
class Result:
    severity: str
    message: str
    item: str = ""  # "App web" when the result names a resource

    def to_dict(self) -> dict[str, str]:
        out = {"severity": self.severity, "message": self.message}
        if self.item:
            out["item"] = self.item
        return out


@dataclass(frozen=True)
class Output:
    """What a synthesizer answered: the items (checked App/Job manifests as plain data), its results,
    and `error`: the first error (a result of severity error, or what was wrong with the answer)."""

    items: tuple[dict[str, Any], ...] = ()
    results: tuple[Result, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def warnings(self) -> list[str]:
        return [r.message for r in self.results if r.severity == "warning"]


def resource_list(items: list[dict[str, Any]], function_config: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": KRM_API_VERSION, "kind": KRM_KIND, "items": items}
    if function_config is not None:
        out["functionConfig"] = function_config
    return out


def encode(doc: dict[str, Any]) -> bytes:
    """Canonical JSON (sorted keys, no spaces): the same input gives the same bytes and hash."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def failed(message: str) -> Output:
    return Output(error=message)


def parse_output(raw: bytes, max_bytes: int = DEFAULT_MAX_OUTPUT_BYTES) -> Output:
    """Check a synthesizer's answer. Errors name the item and field, and say what to do."""
    if len(raw) > max_bytes:
        return failed(f"output is larger than {max_bytes} bytes; write fewer or smaller items")
    if not raw.strip():
        return failed("output is empty; a synthesizer must write a ResourceList (JSON) to stdout")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return failed(f"output is not JSON ({_short(exc)}); write a ResourceList as JSON")
    if not isinstance(doc, dict):
        return failed(f"output is a JSON {type(doc).__name__}, not a ResourceList object")
    if doc.get("kind") != KRM_KIND:
        return failed(f"output kind is {_show(doc.get('kind'))}, expected {KRM_KIND}")
    if doc.get("apiVersion") not in ACCEPTED_API_VERSIONS:
        return failed(f"output apiVersion is {_show(doc.get('apiVersion'))}, expected {KRM_API_VERSION}")
    results, problem = _results(doc.get("results"))
    if problem:
        return Output(results=results, error=problem)
    raw_items = doc.get("items")
    if raw_items is None:
        raw_items = []
    if not isinstance(raw_items, list):
        return Output(results=results, error="output items must be a list")
    items: list[dict[str, Any]] = []
    for index, item in enumerate(raw_items):
        problem = _item_problem(index, item)
        if problem:
            return Output(results=results, error=problem)
        items.append(item)
    first_error = next((r for r in results if r.severity == "error"), None)
    error = None
    if first_error is not None:
        error = first_error.message + (f" ({first_error.item})" if first_error.item else "")
    return Output(tuple(items), results, error)


def _results(raw: Any) -> tuple[tuple[Result, ...], str | None]:
    if raw is None:
        return (), None
    if not isinstance(raw, list):
        return (), "output results must be a list of {severity, message}"
    out: list[Result] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not isinstance(entry.get("message"), str):
            return tuple(out), f"output results[{index}] needs a message (a string)"
        severity = entry.get("severity", "error")  # kpt: severity defaults to error
        if severity not in SEVERITIES:
            return tuple(out), (
                f"output results[{index}] severity {_show(severity)} is not one of {', '.join(SEVERITIES)}"
            )
        ref = entry.get("resourceRef")
        item = ""
        if isinstance(ref, dict) and isinstance(ref.get("name"), str):
            item = f"{ref.get('kind', 'item')} {ref['name']}"
        if len(out) < MAX_RESULTS_KEPT:
            out.append(Result(severity, entry["message"][:MAX_MESSAGE], item))
    # Errors first, so the first error is what the composition's status shows.
    ordered = sorted(out, key=lambda r: SEVERITIES.index(r.severity))
    return tuple(ordered), None


def _item_problem(index: int, item: Any) -> str | None:
    where = f"output items[{index}]"
    if not isinstance(item, dict):
        return f"{where} is a JSON {type(item).__name__}, not a manifest object"
    kind = item.get("kind")
    metadata = item.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    label = f"{where} ({kind} {name})" if isinstance(name, str) else where
    if kind not in OUTPUT_KINDS:
        return f"{label}: kind {_show(kind)} is not allowed; a synthesizer may output App or Job manifests"
    if item.get("apiVersion") != API_VERSION:
        return f"{label}: apiVersion {_show(item.get('apiVersion'))} is not supported; use {API_VERSION}"
    if not isinstance(name, str):
        return f"{where}: {kind} needs metadata.name"
    return None


def _show(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 60 else text[:57] + "..."


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:120]


@dataclass
class Run:
    """One synthesis attempt as an executor reports it: the output, or why there is none, plus a tail
    of the synthesizer's stderr for the status (its own text, never SynosCD's)."""

    output: Output
    seconds: float = 0.0
    log: str = ""
    pending: dict[str, Any] = field(default_factory=dict)  # a job still running: resume next pass
