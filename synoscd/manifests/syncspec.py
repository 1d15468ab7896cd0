"""Sync annotations (Argo CD's gitops-engine semantics, on ACA): waves, hooks, hook delete policies
and per-resource sync options, read from `metadata.annotations`. Pure."""

from __future__ import annotations

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
_WAVE = re.compile(r"[+-]?[0-9]+", re.ASCII)


def parse_wave(text: str | None) -> int:
    """An optional sign and ASCII digits; anything else (spaces, '1_0', '٣', '1.5') counts as 0."""
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
