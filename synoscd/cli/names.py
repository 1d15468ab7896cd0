"""Commands that take an app or job name check it: a name that is neither in Git, nor live in the
resource group, nor in SynosCD's state table is a typo, and `synos suspend typo --yes` must not
report success. The cheapest read goes first and the first that knows the name ends the check; only
an unknown name pays for all three (for its "did you mean"). One read that fails does not hide the
others. (One after another on purpose: lazy SDK imports in parallel threads can deadlock.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from synoscd.cli.output import CliError, suggest


@dataclass
class KnownNames:
    desired: set[str] = field(default_factory=set)
    live: set[str] = field(default_factory=set)
    table: set[str] = field(default_factory=set)
    failures: dict[str, str] = field(default_factory=dict)  # part -> error

    @property
    def all(self) -> set[str]:
        return self.desired | self.live | self.table


def _desired(rt: Any) -> set[str]:
    from synoscd.manifests.desired import load_desired

    snapshot = rt.source().snapshot()
    desired = rt.parsed(snapshot, load_desired)
    return {r.name for r in desired.resources}


def _live(rt: Any) -> set[str]:
    return {b["name"] for kind in ("App", "Job") for b in rt.arm.list(kind)}


def _table(rt: Any) -> set[str]:
    from synoscd.state import apps, history

    names = {s.name for s in apps.get_statuses(rt.table).values()}
    names |= set(apps.get_flags(rt.table))
    rows = rt.table.query_entities(f"PartitionKey eq '{history.TOMBSTONES}'", select=["name"])
    return names | {str(r["name"]) for r in rows if r.get("name")}


def known_names(rt: Any, looking_for: str | None = None) -> KnownNames:
    """What the table, ARM and Git know; stops early once `looking_for` is found."""
    from synoscd.errors import first_line

    known = KnownNames()
    for part, read in (("table", _table), ("live", _live), ("desired", _desired)):
        try:
            setattr(known, part, read(rt))
        except Exception as exc:
            known.failures[part] = first_line(exc)
        if looking_for is not None and looking_for in getattr(known, part):
            break
    return known


def unknown_name_error(rt: Any, name: str, known: KnownNames) -> CliError:
    s = rt.settings
    where = [
        f"in Git ({s.source_label})",
        f"live in resource group {s.azure_resource_group}",
        f"in the state table {s.state_table}",
    ]
    text = f"no app or job named {name!r} {', '.join(where[:-1])} or {where[-1]}{suggest(name, known.all)}"
    if known.failures:
        text += "\n" + "; ".join(f"could not read {part}: {error}" for part, error in known.failures.items())
    return CliError(text, code=2)


def require_known(rt: Any, name: str) -> KnownNames:
    """Return what is known, or raise a CliError (exit 2) with "did you mean" for an unknown name.
    When every part failed, the failure itself is the error (nothing could be checked)."""
    known = known_names(rt, looking_for=name)
    if name in known.all:
        return known
    if len(known.failures) == 3:
        raise CliError("cannot check the name: " + "; ".join(known.failures.values()))
    raise unknown_name_error(rt, name, known)
