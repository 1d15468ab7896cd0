"""What a synthesis depends on, and what changed since the output in force. Pure.

A synthesis result is cached by its key: the synthesizer's identity (its spec, and for exec the
content of the repository files its command names), the composition (everything the synthesizer sees
of it as functionConfig), and every input's content (revision annotations included). The same key
means the same output: no synthesizer runs.

Eno's classification decides when a new key is synthesised:
- immediate: the first synthesis, a change of the composition, or of an input bound without `defer`;
- deferred: only the synthesizer or inputs bound with `defer: true` changed; such changes touch many
  compositions at once and roll out one composition at a time (rollout.py);
- ignored: a deferred change (or any input change) of a composition annotated
  `synoscd.io/ignore-side-effects: "true"`: only its own spec re-synthesises.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

PROTOCOL = "krm/v1"  # part of every key: a change of how SynosCD speaks the protocol re-synthesises

SAME, IMMEDIATE, DEFERRED, IGNORED = "same", "immediate", "deferred", "ignored"


def digest(value: Any) -> str:
    data = value if isinstance(value, bytes) else json.dumps(value, sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Fingerprint:
    synthesizer: str
    composition: str
    inputs: dict[str, str] = field(default_factory=dict)  # key -> digest of the item
    deferred: frozenset[str] = frozenset()  # keys bound with defer: true

    @property
    def key(self) -> str:
        return digest([PROTOCOL, self.synthesizer, self.composition, sorted(self.inputs.items())])[:32]

    def to_dict(self) -> dict[str, Any]:
        return {
            "synthesizer": self.synthesizer,
            "composition": self.composition,
            "inputs": dict(sorted(self.inputs.items())),
            "deferred": sorted(self.deferred),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Fingerprint | None:
        if not data:
            return None
        return cls(
            data.get("synthesizer", ""),
            data.get("composition", ""),
            dict(data.get("inputs") or {}),
            frozenset(data.get("deferred") or ()),
        )


def classify(now: Fingerprint, last: Fingerprint | None, ignore_side_effects: bool = False) -> str:
    if last is None:
        return IMMEDIATE
    if now.key == last.key:
        return SAME
    if now.composition != last.composition:
        return IMMEDIATE
    changed = {k for k in now.inputs.keys() | last.inputs.keys() if now.inputs.get(k) != last.inputs.get(k)}
    if ignore_side_effects:
        return IGNORED
    if changed - now.deferred:  # (a change of a binding's defer flag is a change of the composition)
        return IMMEDIATE
    return DEFERRED


def why(now: Fingerprint, last: Fingerprint | None) -> str:
    """What changed, in words, for status and the rollout's cause."""
    if last is None:
        return "first synthesis"
    parts = []
    if now.synthesizer != last.synthesizer:
        parts.append("synthesizer changed")
    if now.composition != last.composition:
        parts.append("composition changed")
    changed = sorted(
        k for k in now.inputs.keys() | last.inputs.keys() if now.inputs.get(k) != last.inputs.get(k)
    )
    if changed:
        parts.append("input " + ", ".join(changed) + " changed")
    return "; ".join(parts) or "unchanged"
