"""The fault soak's invariants, as pure functions over what the soak collected (bench/soak.py): the ARM
stand-in's call log (each write names its pass: the `x-synoscd-pass` header), the pass records, what
each commit of the ops repository held, the writers' logs and the state table at the end.

Each check returns a list of violations (empty: the invariant held), each a short sentence."""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

WRITE_METHODS = ("PUT", "PATCH", "DELETE", "POST")


@dataclass(frozen=True)
class Write:
    method: str
    kind: str  # containerApps | jobs
    name: str
    time: float
    status: Any
    pass_id: str | None


def writes_of(calls: Iterable[Mapping[str, Any]]) -> list[Write]:
    """ARM writes (PUT, PATCH, DELETE of an app or job, a job's start) from the stand-in's call log, in
    time order. Other POSTs (listSecrets) read."""
    out = []
    for c in calls:
        parts = c["path"].split("/")
        if c["method"] not in WRITE_METHODS or "Microsoft.App" not in parts:
            continue
        i = parts.index("Microsoft.App")
        kind, name, rest = parts[i + 1], parts[i + 2] if len(parts) > i + 2 else "", parts[i + 3 :]
        if kind not in ("containerApps", "jobs") or (c["method"] == "POST" and rest != ["start"]):
            continue
        out.append(Write(c["method"], kind, name.lower(), float(c["time"]), c.get("status"), c.get("pass")))
    return sorted(out, key=lambda w: w.time)


def foreign_writes(writes: Iterable[Write], foreign: Iterable[str]) -> list[str]:
    """Zero writes to foreign or unmanaged resources."""
    names = {n.lower() for n in foreign}
    return [f"{w.method} {w.name} by pass {w.pass_id} at {w.time:.3f}" for w in writes if w.name in names]


def foreign_changed(seeded: Mapping[str, Any], final: Mapping[str, Any | None]) -> list[str]:
    """Foreign and unmanaged resources are as they were seeded (tags, template, environment)."""
    out = []
    for name, before in seeded.items():
        after = final.get(name)
        if after is None:
            out.append(f"{name} is gone")
        elif after != before:
            out.append(f"{name} changed: {before} -> {after}")
    return out


def unattributed(writes: Iterable[Write]) -> list[str]:
    """Every write names the pass that made it (else the other checks could not attribute it)."""
    return [f"{w.method} {w.name} at {w.time:.3f} names no pass" for w in writes if not w.pass_id]


def interleaved(writes: list[Write]) -> list[str]:
    """Never two passes writing at once: in time order, each pass's writes form one unbroken run."""
    out = []
    seen: set[str] = set()
    current = None
    for w in writes:
        pid = w.pass_id or "?"
        if pid == current:
            continue
        if pid in seen:
            out.append(f"pass {pid} writes {w.method} {w.name} at {w.time:.3f} after pass {current} wrote")
        seen.add(pid)
        current = pid
    return out


def handovers(writes: list[Write]) -> dict[str, Any]:
    """How close the passes came: how many passes wrote, how often the writer changed, and the
    shortest time from one pass's last write to the next pass's first."""
    gaps = [b.time - a.time for a, b in itertools.pairwise(writes) if a.pass_id != b.pass_id]
    return {
        "passes that wrote": len({w.pass_id for w in writes}),
        "handovers": len(gaps),
        "closest handover (s)": round(min(gaps), 3) if gaps else None,
    }


def prunes_while_incomplete(
    writes: Iterable[Write],
    passes: Mapping[str, Mapping[str, Any]],
    commits: Mapping[str, Mapping[str, Any]],
) -> tuple[list[str], int]:
    """Zero prunes while the desired set was incomplete: each DELETE's pass worked on a revision whose
    manifests were all valid (as the soak wrote them), and that revision did not name the resource.
    A pass killed mid-way has no revision in its record (the pass that took over its lease wrote it):
    then every commit that could have been the head it read, from its start to the DELETE, must pass.
    Returns the violations and the number of DELETEs checked."""
    out = []
    deletes = [w for w in writes if w.method == "DELETE"]
    for w in deletes:
        rec = passes.get(w.pass_id or "")
        if rec is None:
            out.append(f"DELETE {w.name} by pass {w.pass_id}: no record of that pass")
            continue
        if (rec.get("prune") or {}).get("blocked"):
            out.append(f"DELETE {w.name} by pass {w.pass_id}, whose record says prune was blocked")
            continue
        revision = rec.get("revision")
        if revision:
            candidates = [revision]
        else:
            candidates = heads_between(commits, float(rec.get("startedAt") or 0), w.time)
            if not candidates:
                out.append(f"DELETE {w.name} by pass {w.pass_id}: no revision recorded, and no commit then")
        for sha in candidates:
            commit = commits.get(sha)
            which = f"revision {sha[:12]}" + ("" if revision else " (a head it may have read)")
            if commit is None:
                out.append(f"DELETE {w.name} by pass {w.pass_id} at revision {sha}: not a commit of the soak")
            elif not commit["complete"]:
                out.append(f"DELETE {w.name} by pass {w.pass_id}: {which} has a broken manifest")
            elif w.name in commit["names"]:
                out.append(f"DELETE {w.name} by pass {w.pass_id}: {which} names it")
    return out, len(deletes)


def heads_between(
    commits: Mapping[str, Mapping[str, Any]], start: float, end: float, skew: float = 1.0
) -> list[str]:
    """The commits that were the branch's head at some time from `start` to `end`: the head at `start`
    and those made after it. Commit times are taken once the commit was made, so `skew` seconds earlier
    count as well."""
    ordered = sorted(commits.items(), key=lambda kv: float(kv[1].get("time", 0.0)))
    before = [sha for sha, c in ordered if float(c.get("time", 0.0)) <= start - skew]
    during = [sha for sha, c in ordered if start - skew < float(c.get("time", 0.0)) <= end]
    return before[-1:] + during


def lost_writes(attempts: Iterable[Mapping[str, Any]], final: Mapping[str, Any]) -> tuple[list[str], int]:
    """Zero lost CLI writes. Each key has one writer, so its attempts are ordered; the table must hold
    the value of the last attempt reported done, or of a later attempt whose result is unknown (it
    failed, perhaps after its write landed). Returns the violations and the keys checked."""
    by_key: dict[str, list[Mapping[str, Any]]] = {}
    for a in attempts:
        by_key.setdefault(a["key"], []).append(a)
    out = []
    checked = 0
    for key, tries in sorted(by_key.items()):
        tries = sorted(tries, key=lambda a: a["n"])
        done = [i for i, a in enumerate(tries) if a["rc"] == 0]
        if not done:
            continue
        checked += 1
        last = done[-1]
        allowed = [_value(tries[last])] + [_value(a) for a in tries[last + 1 :]]
        have = final.get(key)
        if have not in allowed:
            out.append(f"{key}: the table holds {have}, the last write reported done was {allowed[0]}")
    return out, checked


def _value(attempt: Mapping[str, Any]) -> Any:
    if attempt["key"].startswith("flags/"):
        return (bool(attempt["suspended"]), attempt["reason"])
    return attempt["value"]


def images_git_never_had(
    seen: Mapping[str, Iterable[str]], in_git: Collection[str], out_of_band: Collection[str]
) -> list[str]:
    """No write from a commit Git never had: every image an app ever ran (each revision's template, as
    the ARM stand-in kept it) is one some commit of the ops repository named, or one the soak itself
    put there out of band (drift, the foreign apps' seeds). The soak rewrites cached manifests in the
    state table with images of no commit; one deployed would be found here."""
    allowed = set(in_git) | set(out_of_band)
    return [
        f"{app} ran {image}, which no commit had"
        for app, images in sorted(seen.items())
        for image in sorted(images)
        if image not in allowed
    ]
