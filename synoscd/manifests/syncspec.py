"""Sync annotations (Argo CD's gitops-engine semantics, on ACA): waves, hooks, hook delete policies
and per-resource sync options, read from `metadata.annotations`. Pure."""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

WAVE = "synoscd.io/sync-wave"
HOOK = "synoscd.io/hook"
DELETE_POLICY = "synoscd.io/hook-delete-policy"
OPTIONS = "synoscd.io/sync-options"

PHASES = ("PreSync", "Sync", "PostSync", "SyncFail")
HOOK_VALUES = (*PHASES, "Skip")
DELETE_POLICIES = ("HookSucceeded", "HookFailed", "BeforeHookCreation")
SYNC_OPTIONS = ("Prune=false", "Validate=false", "PruneLast=true")
PREFIX = "synoscd.io/"
KEYS = (WAVE, HOOK, DELETE_POLICY, OPTIONS)
_WAVE = re.compile(r"[+-]?[0-9]+", re.ASCII)
_ALLOWED = {
    HOOK: ("hook", HOOK_VALUES),
    DELETE_POLICY: ("hook delete policy", DELETE_POLICIES),
    OPTIONS: ("sync option", SYNC_OPTIONS),
}


def check_annotations(annotations: Mapping[str, str]) -> list[tuple[tuple[str, ...], str]]:
    """Every `synoscd.io/` annotation SynosCD does not understand, as (field path, message).

    A typo must not be ignored: a hook spelt `PostSnyc` would otherwise be applied as an ordinary
    resource in the Sync phase, a mistyped wave would run in wave 0."""
    issues: list[tuple[tuple[str, ...], str]] = []
    for key, value in annotations.items():
        if not key.startswith(PREFIX):
            continue
        path = ("metadata", "annotations", key)
        if key not in KEYS:
            issues.append((path, f"unknown annotation {_quote(key)}{_hint(key, KEYS)}"))
        elif key == WAVE:
            if not _WAVE.fullmatch(value):
                issues.append(
                    (
                        path,
                        f"sync wave {_quote(value)} is not an integer; use an optional sign and digits, "
                        "e.g. '-1' or '2'",
                    )
                )
        else:
            what, allowed = _ALLOWED[key]
            for raw in value.split(","):
                item = raw.strip()
                if item and item not in allowed:
                    issues.append((path, f"unknown {what} {_quote(item)}{_hint(item, allowed)}"))
    return issues


def _quote(text: str) -> str:
    return "'" + (text if len(text) <= 60 else text[:60] + "...") + "'"


def _hint(text: str, allowed: tuple[str, ...]) -> str:
    listed = ", ".join(allowed[:-1]) + " or " + allowed[-1]
    close = difflib.get_close_matches(text, allowed, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'? Use {listed}" if close else f"; use {listed}"


def parse_wave(text: str | None) -> int:
    """An optional sign and ASCII digits; anything else (spaces, '1_0', '٣', '1.5') counts as 0 here
    (and is a validation error of the manifest, see `check_annotations`; live tags are read with it too)."""
    if text is None or not _WAVE.fullmatch(text):
        return 0
    return int(text)


def _items(text: str | None, allowed: tuple[str, ...]) -> tuple[str, ...]:
    if not text:
        return ()
    seen: list[str] = []
    for raw in text.split(","):
        item = raw.strip()
        if item in allowed and item not in seen:
            seen.append(item)
    return tuple(seen)


@dataclass(frozen=True)
class SyncSpec:
    wave: int = 0
    hooks: tuple[str, ...] = ()  # phases (and possibly Skip), in the order written
    delete_policies: frozenset[str] = frozenset({"BeforeHookCreation"})
    options: frozenset[str] = frozenset()
    wave_set: bool = False

    @property
    def hook_phases(self) -> tuple[str, ...]:
        return tuple(h for h in self.hooks if h != "Skip")

    @property
    def skipped(self) -> bool:
        """`Skip` alone: neither applied nor pruned."""
        return "Skip" in self.hooks and not self.hook_phases

    @property
    def is_hook(self) -> bool:
        return bool(self.hook_phases)

    @property
    def prune(self) -> bool:
        return "Prune=false" not in self.options

    @property
    def prune_last(self) -> bool:
        return "PruneLast=true" in self.options

    @property
    def validate(self) -> bool:
        return "Validate=false" not in self.options


def sync_spec(annotations: Mapping[str, str]) -> SyncSpec:
    policies = _items(annotations.get(DELETE_POLICY), DELETE_POLICIES)
    return SyncSpec(
        wave=parse_wave(annotations.get(WAVE)),
        hooks=_items(annotations.get(HOOK), HOOK_VALUES),
        delete_policies=frozenset(policies or ("BeforeHookCreation",)),
        options=frozenset(_items(annotations.get(OPTIONS), SYNC_OPTIONS)),
        wave_set=WAVE in annotations,
    )


def options_from_tag(value: str | None) -> frozenset[str]:
    """The options recorded on a live resource (tag synoscd-sync-options)."""
    return frozenset(_items(value, SYNC_OPTIONS))
