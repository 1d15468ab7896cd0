"""A composition's bindings turned into KRM input items, and the revision check. Pure apart from the
two readers it is given (a repository file, a Key Vault secret's current version).

Each binding becomes one item carrying `synoscd.io/input-key: <key>`:
- `file`: the file's content (YAML or JSON; other files as text). A document that already is a KRM
  object (apiVersion, kind, metadata) is passed as it is, so its own `synoscd.io/revision`
  annotation counts; anything else is wrapped in `{kind: Input, data: <content>}`.
- `inline`: the same rule for the inline object.
- `secret`: `{kind: SecretVersion, data: {url, version, versionedUrl}}`: the version, never the value
  (a synthesizer pins it into the apps it writes; a new version re-synthesises).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from synoscd.manifests.schema import API_VERSION, Composition, InputBinding
from synoscd.manifests.syntax import keyvault_secret_url
from synoscd.manifests.yaml_loader import load_documents
from synoscd.synth.annotations import INPUT_KEY, REVISION
from synoscd.synth.protocol import encode

MAX_INPUT_BYTES = 1_048_576


@dataclass(frozen=True)
class Input:
    key: str
    defer: bool
    item: dict[str, Any] | None  # None: could not be read (see error)
    digest: str = ""  # sha256 of the item's canonical JSON
    revision: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class Inputs:
    items: tuple[Input, ...] = ()

    @property
    def errors(self) -> list[str]:
        return [i.error for i in self.items if i.error]

    @property
    def revisions(self) -> dict[str, str]:
        return {i.key: i.revision for i in self.items if i.revision is not None}

    def disagreement(self) -> str | None:
        """Why synthesis must wait (Eno's revision synchronisation): the inputs that carry
        `synoscd.io/revision` do not all carry the same one. None when they agree (or none has one)."""
        revisions = self.revisions
        if len(set(revisions.values())) <= 1:
            return None
        listed = ", ".join(f"{k}={v}" for k, v in sorted(revisions.items()))
        return f"waiting for inputs to agree on {REVISION} ({listed})"

    def resource_items(self) -> list[dict[str, Any]]:
        return [i.item for i in self.items if i.item is not None]


@dataclass
class Readers:
    file: Callable[[str], bytes | None]
    secret_version: Callable[[str], str | None] = field(default=lambda _url: None)


def read_inputs(composition: Composition, readers: Readers) -> Inputs:
    return Inputs(tuple(_read(binding, readers) for binding in composition.spec.inputs))


def _read(binding: InputBinding, readers: Readers) -> Input:
    key = binding.key
    try:
        if binding.file is not None:
            raw = readers.file(binding.file)
            if raw is None:
                return Input(key, binding.defer, None, error=f"input '{key}': file {binding.file} not found")
            data, problem = _parse_file(binding.file, raw)
            if problem:
                return Input(key, binding.defer, None, error=f"input '{key}': {problem}")
            item = _item(key, data)
        elif binding.inline is not None:
            item = _item(key, copy.deepcopy(binding.inline))
        elif binding.secret is not None:
            item, problem = _secret_item(key, binding.secret, readers)
            if problem:
                return Input(key, binding.defer, None, error=f"input '{key}': {problem}")
        else:  # validation refuses this; keep the error readable if it ever gets here
            return Input(key, binding.defer, None, error=f"input '{key}' binds nothing")
    except Exception as exc:  # a reader's failure (network, vault) is this input's error, not a crash
        return Input(key, binding.defer, None, error=f"input '{key}': {type(exc).__name__}: {exc}")
    revision = _revision(item)
    return Input(key, binding.defer, item, hashlib.sha256(encode(item)).hexdigest(), revision)


@functools.lru_cache(maxsize=512)
def _parse_file(path: str, raw: bytes) -> tuple[Any, str | None]:
    """Parsed once per (path, content) on a warm instance; the result is shared and never mutated."""
    if len(raw) > MAX_INPUT_BYTES:
        return None, f"file {path} is larger than {MAX_INPUT_BYTES} bytes"
    lower = path.lower()
    if lower.endswith(".json"):
        try:
            return json.loads(raw), None
        except (ValueError, UnicodeDecodeError) as exc:
            return None, f"file {path} is not valid JSON ({str(exc).splitlines()[0]})"
    if lower.endswith((".yaml", ".yml")):
        documents, errors = load_documents(path, raw, max_file_bytes=MAX_INPUT_BYTES)
        if errors:
            first = errors[0]
            return None, f"{first.file}:{first.line}: {first.message}"
        if len(documents) != 1:
            return None, f"file {path} must hold exactly one YAML document, has {len(documents)}"
        return documents[0].data, None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, f"file {path} is neither YAML, JSON nor UTF-8 text"


def _is_krm(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("apiVersion"), str)
        and isinstance(data.get("kind"), str)
        and isinstance(data.get("metadata"), dict)
    )


def _item(key: str, data: Any) -> dict[str, Any]:
    if _is_krm(data):
        item = dict(data)
        metadata = dict(item["metadata"])
        annotations = metadata.get("annotations")
        metadata["annotations"] = {**(annotations if isinstance(annotations, dict) else {}), INPUT_KEY: key}
        metadata.setdefault("name", key)
        item["metadata"] = metadata
        return item
    return {
        "apiVersion": API_VERSION,
        "kind": "Input",
        "metadata": {"name": key, "annotations": {INPUT_KEY: key}},
        "data": data,
    }


def _secret_item(key: str, ref: str, readers: Readers) -> tuple[dict[str, Any], str | None]:
    url = keyvault_secret_url(ref) or ref
    parts = url.rstrip("/").split("/")
    pinned = parts[-1] if len(parts) == 6 else None  # https://host/secrets/name/version
    base = "/".join(parts[:5])
    version = pinned or readers.secret_version(base)
    if not version:
        return {}, f"the current version of secret {base} could not be read"
    item = {
        "apiVersion": API_VERSION,
        "kind": "SecretVersion",
        "metadata": {"name": key, "annotations": {INPUT_KEY: key}},
        "data": {"url": base, "version": version, "versionedUrl": f"{base}/{version}"},
    }
    return item, None


def _revision(item: dict[str, Any]) -> str | None:
    annotations = (item.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(REVISION)
    return None if value is None else str(value)
