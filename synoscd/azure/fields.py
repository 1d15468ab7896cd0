"""The building blocks of the owned-field tree (see normalise.py): each node knows, for one place in an
ARM body, how to

- `canon(raw, want)`: normalise it for comparison. With `want=DESIRED` the raw value is the desired
  body's and the keys it has are the keys the manifest owns; otherwise `want` is that desired canonical
  form and the live value is projected onto it (only owned keys, matched list items);
- `merged(desired, live)`: the full value to write, i.e. the desired value with the live value's unowned
  parts kept (used for list items, which a JSON merge patch replaces whole);
- `patch(desired, live, full)`: a JSON merge patch fragment (RFC 7386) that takes `live` to the desired
  owned value and leaves everything else alone, or SKIP when nothing owned differs (`full`: re-apply
  every owned part even when equal).

Normalisers turn what the service rewrites into one form: enum casing, resource-ID casing, null vs
absent vs empty, numeric strings, memory units, implicit image tags.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

DESIRED: Any = type("Desired", (), {"__repr__": lambda self: "DESIRED"})()
SKIP: Any = type("Skip", (), {"__repr__": lambda self: "SKIP"})()
EMPTY = (None, "", [], {})

# Read-only or server-computed keys: never carried from a live body into a write. (Only names that are
# read-only wherever they occur: `type` and `id` are writable inside probes, identities and rules.)
READ_ONLY = frozenset(
    {
        "systemData",
        "provisioningState",
        "runningStatus",
        "runningState",
        "latestRevisionName",
        "latestReadyRevisionName",
        "latestRevisionFqdn",
        "customDomainVerificationId",
        "outboundIpAddresses",
        "eventStreamEndpoint",
        "fqdn",
        "principalId",
        "tenantId",
        "clientId",
        "managedEnvironmentId",
    }
)


def strip_read_only(value: Any) -> Any:
    """A deep copy of `value` without read-only keys (at any depth)."""
    if isinstance(value, dict):
        return {k: strip_read_only(v) for k, v in value.items() if k not in READ_ONLY}
    if isinstance(value, list):
        return [strip_read_only(v) for v in value]
    return copy.deepcopy(value)


def same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


# -- normalisers --------------------------------------------------------------------------------


def text(value: Any) -> str | None:
    """Absent, null and "" are one thing (a registry's `identity: ""`, an env var's `value: ""`)."""
    return None if value in EMPTY else str(value)


def lower(value: Any) -> str | None:
    """Enums the service re-cases (`single` -> `Single`, `auto` -> `Auto`) and resource IDs it returns in
    another casing than sent (`.../microsoft.managedidentity/...`)."""
    shown = text(value)
    return None if shown is None else shown.lower()


def with_default(norm: Callable[[Any], Any], default: Any) -> Callable[[Any], Any]:
    return lambda value: norm(default if value in EMPTY else value)


def number(value: Any) -> Any:
    """0.5, "0.5" and 0.50 compare equal; anything else is compared as it is."""
    if isinstance(value, bool) or value in EMPTY:
        return None if value in EMPTY else value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    try:
        n = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return value
    return int(n) if n == n.to_integral_value() else float(n)


def flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def memory(value: Any) -> str | None:
    """'0.5Gi', '512Mi' and '0.50Gi' are one amount."""
    shown = text(value)
    if shown is None:
        return None
    shown = shown.strip()
    try:
        if shown.endswith("Gi"):
            return f"{Decimal(shown[:-2]).normalize():f}Gi"
        if shown.endswith("Mi"):
            return f"{(Decimal(shown[:-2]) / 1024).normalize():f}Gi"
    except InvalidOperation:
        pass
    return shown


_TAGGED = re.compile(r"(?::[\w][\w.-]{0,127})?(?:@sha\d+:[0-9a-f]+)?\Z")


def image(value: Any) -> str | None:
    """`nginx` is `nginx:latest`: the runtime pulls the same image."""
    shown = text(value)
    if shown is None:
        return None
    last = shown.rsplit("/", 1)[-1]
    return shown if (":" in last or "@" in last) else f"{shown}:latest"


def strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def string_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def auth_list(value: Any) -> list[dict[str, str | None]]:
    """Scale-rule auth: `auth: []` sent comes back absent; order is not meaningful."""
    items = [
        {"secretRef": text(a.get("secretRef")), "triggerParameter": text(a.get("triggerParameter"))}
        for a in (value or [])
        if isinstance(a, dict)
    ]
    return sorted(items, key=lambda a: (a["triggerParameter"] or "", a["secretRef"] or ""))


# -- nodes --------------------------------------------------------------------------------------


class Node:
    def canon(self, raw: Any, want: Any) -> Any:
        raise NotImplementedError

    def merged(self, desired: Any, live: Any) -> Any:
        return copy.deepcopy(desired)

    def equal(self, desired: Any, live: Any) -> bool:
        """The live value already is what the manifest says (after normalising)."""
        want = self.canon(desired, DESIRED)
        return same(want, self.canon(live, want))

    def kept(self, desired: Any, live: Any) -> Any:
        """What to write for this value inside an object or list that is written whole: the live
        value as it is when it already matches (`512Mi` stays `512Mi`), else the merged one."""
        if live is not None and self.equal(desired, live):
            return strip_read_only(live)
        return self.merged(desired, live)

    def patch(self, desired: Any, live: Any, full: bool) -> Any:
        if not full and self.equal(desired, live):
            return SKIP
        return self.merged(desired, live)


class Leaf(Node):
    """A value compared after `norm`; written as the desired value."""

    def __init__(self, norm: Callable[[Any], Any] = lambda v: v) -> None:
        self.norm = norm

    def canon(self, raw: Any, want: Any) -> Any:
        return self.norm(raw)


class Pre(Node):
    """`node` after rewriting the raw value (request vs response shapes)."""

    def __init__(self, fn: Callable[[Any], Any], node: Node) -> None:
        self.fn = fn
        self.node = node

    def canon(self, raw: Any, want: Any) -> Any:
        return self.node.canon(self.fn(raw), want)

    def merged(self, desired: Any, live: Any) -> Any:
        return self.node.merged(desired, self.fn(live))

    def patch(self, desired: Any, live: Any, full: bool) -> Any:
        return self.node.patch(desired, self.fn(live), full)


class Obj(Node):
    """An object whose owned keys are the keys the desired value has (plus `always`, owned even when
    the desired value leaves them out: they mean "empty"). `nullable`: null is a value of its own
    (ingress off), not "all defaults". `replace`: written whole (a registry, a scale rule), so the
    live value's other keys are not carried into it."""

    def __init__(
        self,
        fields: Mapping[str, Node],
        always: Sequence[str] = (),
        nullable: bool = False,
        replace: bool = False,
    ) -> None:
        self.fields = dict(fields)
        self.always = tuple(always)
        self.nullable = nullable
        self.replace = replace

    def _owned(self, desired: Mapping[str, Any]) -> list[str]:
        return [k for k in self.fields if k in desired or k in self.always]

    def canon(self, raw: Any, want: Any) -> Any:
        raw = raw if isinstance(raw, dict) else None
        if want is DESIRED or want is None:
            if raw is None:
                if self.nullable or want is None:
                    return None
                raw = {}
            return {k: self.fields[k].canon(raw.get(k), DESIRED) for k in self._owned(raw)}
        if raw is None and self.nullable:
            return None
        raw = raw or {}
        return {k: self.fields[k].canon(raw.get(k), w) for k, w in want.items() if k in self.fields}

    def merged(self, desired: Any, live: Any) -> Any:
        if not isinstance(desired, dict):
            return copy.deepcopy(desired)
        if self.replace or not isinstance(live, dict):
            return copy.deepcopy(dict(desired))
        out = strip_read_only(dict(live))
        for k in self._owned(desired):
            if k in desired:
                out[k] = self.fields[k].kept(desired[k], live.get(k))
            else:
                out.pop(k, None)
        return out

    def patch(self, desired: Any, live: Any, full: bool) -> Any:
        if not isinstance(desired, dict):
            if desired is None and (full or live is not None):
                return None  # null in a merge patch removes it
            return SKIP
        if self.replace or not isinstance(live, dict):
            return Node.patch(self, desired, live, full)
        out: dict[str, Any] = {}
        for k in self._owned(desired):
            if k in desired:
                fragment = self.fields[k].patch(desired[k], live.get(k), full)
                if fragment is not SKIP:
                    out[k] = fragment
            elif live.get(k) not in EMPTY:
                out[k] = None
        return out if out else SKIP


class Named(Node):
    """A list of objects matched by a key field. `extra="drift"`: the manifest owns the whole list (live
    items it does not name are drift and are dropped on write); `extra="keep"`: it owns only the items
    it names (the others are kept as they are). A JSON merge patch replaces a list whole, so a write
    sends the merged list."""

    def __init__(
        self,
        item: Node,
        key: str = "name",
        key_norm: Callable[[Any], Any] = text,
        extra: str = "drift",
        sort: bool = False,
    ) -> None:
        self.item = item
        self.key = key
        self.key_norm = key_norm
        self.extra = extra
        self.sort = sort

    def _key(self, raw: Any) -> Any:
        return self.key_norm(raw.get(self.key)) if isinstance(raw, dict) else None

    def _items(self, raw: Any) -> list[Mapping[str, Any]]:
        return [i for i in raw if isinstance(i, dict)] if isinstance(raw, list) else []

    def _ordered(self, items: list[Any]) -> list[Any]:
        return sorted(items, key=lambda i: str(i.get(self.key) or "")) if self.sort else items

    def canon(self, raw: Any, want: Any) -> Any:
        items = self._items(raw)
        if want is DESIRED or not isinstance(want, list):
            return self._ordered([self.item.canon(i, DESIRED) for i in items])
        by_key = {self._key(i): i for i in items}
        wanted = [w.get(self.key) if isinstance(w, dict) else None for w in want]
        out = [
            self.item.canon(by_key[k], w) if k in by_key else None for k, w in zip(wanted, want, strict=True)
        ]
        if self.extra == "drift":
            extra = [self.item.canon(i, DESIRED) for i in items if self._key(i) not in wanted]
            out += self._ordered(extra)
        return out

    def merged(self, desired: Any, live: Any) -> Any:
        wanted = self._items(desired)
        by_live = {self._key(i): i for i in self._items(live)}
        if self.extra == "drift":
            return [self.item.kept(d, by_live.get(self._key(d))) for d in wanted]
        by_desired = {self._key(d): d for d in wanted}
        out = [
            self.item.kept(by_desired[k], i) if k in by_desired else self.keep(i)
            for k, i in ((self._key(i), i) for i in self._items(live))
        ]
        return out + [copy.deepcopy(dict(d)) for k, d in by_desired.items() if k not in by_live]

    def keep(self, live_item: Mapping[str, Any]) -> dict[str, Any]:
        """An unowned live item, as it must be written back."""
        return {k: v for k, v in strip_read_only(dict(live_item)).items() if v not in EMPTY}


class Items(Node):
    """A list compared item by item in order (IP rules, volume mounts); written whole."""

    def __init__(self, item: Node) -> None:
        self.item = item

    def canon(self, raw: Any, want: Any) -> Any:
        items = raw if isinstance(raw, list) else []
        if want is DESIRED or not isinstance(want, list) or len(want) != len(items):
            return [self.item.canon(i, DESIRED) for i in items]
        return [self.item.canon(i, w) for i, w in zip(items, want, strict=True)]


class Cut(Node):
    """Objects (probes) the server fills with defaults: only the keys the manifest sets are compared."""

    def __init__(self, clean: Callable[[Any], Any]) -> None:
        self.clean = clean

    def canon(self, raw: Any, want: Any) -> Any:
        value = self.clean(raw)
        return value if want is DESIRED else _cut(value, want)


def _cut(value: Any, shape: Any) -> Any:
    if isinstance(value, dict) and isinstance(shape, dict):
        return {k: _cut(value.get(k), v) for k, v in shape.items()}
    if isinstance(value, list) and isinstance(shape, list) and len(value) == len(shape):
        return [_cut(v, s) for v, s in zip(value, shape, strict=True)]
    return value


def clean(value: Any) -> Any:
    """Empty values dropped at every depth; for objects whose absent keys mean "server default"."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items() if v not in EMPTY}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value
