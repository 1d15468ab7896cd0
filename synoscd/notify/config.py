"""Notification providers, configured at runtime (`synos set --notify NAME=KIND:URL`).

The state table keeps only each provider's name and kind (row runtime/notify); its URL (Slack and
Teams URLs are credentials) is the Key Vault secret `notify-NAME-url`, and a generic webhook's
signing key is `notify-NAME-signing-key` (generated when the provider is added, never printed: a
receiver's operator reads it from the vault)."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from synoscd.notify.providers import KINDS
from synoscd.state import table as t

PK, RK = "runtime", "notify"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,23}$")


@dataclass(frozen=True)
class Provider:
    name: str
    kind: str

    @property
    def url_secret(self) -> str:
        return f"notify-{self.name}-url"

    @property
    def key_secret(self) -> str:
        return f"notify-{self.name}-signing-key"


def parse(spec: str) -> tuple[str, str | None, str | None]:
    """`NAME=KIND:URL` -> (name, kind, url); `NAME=off` -> (name, None, None). Raises ValueError
    with what to write instead."""
    name, sep, rest = spec.partition("=")
    name = name.strip().lower()
    if not sep or not _NAME.match(name):
        raise ValueError(
            f"--notify {spec!r}: write NAME=KIND:URL (NAME: lower-case letters, digits and dashes, "
            f"up to 24) or NAME=off"
        )
    if rest.strip().lower() == "off":
        return name, None, None
    kind, sep, url = rest.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS:
        raise ValueError(
            f"--notify {name}=...: the kind is one of {', '.join(KINDS)} (e.g. {name}=slack:https://...)"
        )
    parts = urlsplit(url.strip())
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ValueError(f"--notify {name}: the URL must be https:// (plain http only to 127.0.0.1)")
    return name, kind, url.strip()


def load(table: Any) -> list[Provider]:
    row = t.get(table, PK, RK)
    if not row:
        return []
    return [Provider(p["name"], p["kind"]) for p in t.get_json(row, "providers", []) or []]


def save(table: Any, vault: Any, name: str, kind: str | None, url: str | None, who: str) -> list[Provider]:
    """Add, replace (kind None: remove) one provider; the URL (and a new signing key) go to Key Vault
    first, so the table never names a provider whose secret is missing."""
    if kind is not None:
        if vault is None:
            raise ValueError(
                "notification URLs are kept in Key Vault: set SYNOSCD_KEYVAULT_URL (and allow this "
                "identity to set secrets in it)"
            )
        provider = Provider(name, kind)
        vault.set(provider.url_secret, url or "")
        if kind == "webhook":
            try:
                vault.get(provider.key_secret)
            except Exception:
                vault.set(provider.key_secret, secrets.token_hex(32))

    def mutate(row: dict[str, Any] | None) -> dict[str, Any]:
        row = dict(row or {})
        current = [p for p in t.get_json(row, "providers", []) or [] if p["name"] != name]
        if kind is not None:
            current.append({"name": name, "kind": kind})
        t.put_json(row, "providers", sorted(current, key=lambda p: p["name"]))
        row.update(updated_by=who, updated_at=time.time())
        return row

    t.update(table, PK, RK, mutate)
    return load(table)
