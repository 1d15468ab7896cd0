"""Rendering: project defaults deep-merged into an app (remembering where each value came from) and
Key Vault resource IDs turned into secret URLs."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from .errors import Path
from .locate import Origin
from .schema import APP_SPEC_FIELDS, App, Job
from .syntax import keyvault_secret_url
from .yaml_loader import LoadedDocument

DEFAULTS_PATH: Path = ("spec", "defaults")

W = TypeVar("W", bound=App | Job)


def merge_defaults(data: Any, project: LoadedDocument, project_name: str) -> tuple[Any, dict[Path, Origin]]:
    """An app's data with the project's `spec.defaults` merged under its `spec`; the app's values win.

    Mappings merge key by key; lists of mappings that all have a `name` (containers, environment)
    merge item by item on that name, the app's items first; any other value is the app's if it has
    one (an explicit empty list included). Also returns the origin of every subtree that came from
    the defaults, so that errors point at the project's line.
    """
    defaults = _defaults_of(project.data)
    if not isinstance(data, dict) or not isinstance(data.get("spec"), dict) or not defaults:
        return data, {}
    # Unknown keys are the project's error (reported there once), not every app's.
    defaults = {key: value for key, value in defaults.items() if key in APP_SPEC_FIELDS}
    merger = _Merger(project, project_name)
    merged = merger.merge(defaults, data["spec"], ("spec",), DEFAULTS_PATH)
    return {**data, "spec": merged}, merger.origins


def with_defaults(data: Any, defaults: Any) -> Any:
    """`merge_defaults` with the defaults given as a value and no origins: what an app's data would be
    under other defaults (the project defaults rollout compares an app under old and new ones)."""
    if not isinstance(data, dict) or not isinstance(data.get("spec"), dict) or not isinstance(defaults, dict):
        return data
    defaults = {key: value for key, value in defaults.items() if key in APP_SPEC_FIELDS}
    if not defaults:
        return data
    return {**data, "spec": _Merger(None, "").merge(defaults, data["spec"], ("spec",), DEFAULTS_PATH)}


def _defaults_of(data: Any) -> dict[str, Any] | None:
    spec = data.get("spec") if isinstance(data, dict) else None
    defaults = spec.get("defaults") if isinstance(spec, dict) else None
    return defaults if isinstance(defaults, dict) else None


class _Merger:
    def __init__(self, project: LoadedDocument | None, project_name: str) -> None:
        self.project = project
        self.project_name = project_name
        self.origins: dict[Path, Origin] = {}

    def take_default(self, value: Any, path: Path, default_path: Path) -> Any:
        if self.project is not None:  # None: only the merged value is wanted
            self.origins[path] = Origin(self.project, default_path, self.project_name)
        return value

    def merge(self, default: Any, own: Any, path: Path, default_path: Path) -> Any:
        if isinstance(default, dict) and isinstance(own, dict):
            out = {}
            for key, value in own.items():
                out[key] = (
                    self.merge(default[key], value, (*path, key), (*default_path, key))
                    if key in default
                    else value
                )
            for key, value in default.items():
                if key not in own:
                    out[key] = self.take_default(value, (*path, key), (*default_path, key))
            return out
        default_items, own_items = _by_name(default), _by_name(own)
        if default_items is not None and own_items:  # an app's explicit empty list still wins
            # App items keep their indices, so app paths need no origin entry; defaults-only items follow.
            merged = []
            for index, item in enumerate(own):
                if item["name"] in default_items:
                    at = default_items[item["name"]]
                    merged.append(self.merge(default[at], item, (*path, index), (*default_path, at)))
                else:
                    merged.append(item)
            for at, item in enumerate(default):
                if item["name"] not in own_items:
                    merged.append(self.take_default(item, (*path, len(merged)), (*default_path, at)))
            return merged
        return own


def _by_name(value: Any) -> dict[str, int] | None:
    """name -> index for a list of mappings with unique string names; None for anything else."""
    if not isinstance(value, list):
        return None
    index: dict[str, int] = {}
    for at, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or item["name"] in index:
            return None
        index[item["name"]] = at
    return index


def render(workload: W) -> W:
    """The validated App or Job as the engine should apply it: secrets as Key Vault secret URLs."""
    secrets = workload.spec.secrets
    if not secrets:
        return workload
    urls = {name: keyvault_secret_url(ref) or ref for name, ref in secrets.items()}
    if urls == secrets:
        return workload
    spec = workload.spec.model_copy(update={"secrets": urls})
    return cast(W, workload.model_copy(update={"spec": spec}))  # model_copy keeps the class
