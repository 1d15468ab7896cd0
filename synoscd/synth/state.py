"""Compositions and the deferred rollouts in Table Storage (partition `synth`): one row per composition
(the output in force with its fingerprint, the last attempt, a job still running), one row for the
compositions' rollout, one per Project (the defaults in force, a defaults change rolling out) and one
for the rollout of Project defaults. A pass reads the partition with one query and writes only rows
that changed; the CLI's pause/resume go through the same ETag-guarded read-modify-write, so neither
loses the other's write."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from azure.data.tables import TableClient

from synoscd.state import table as t

PK = "synth"
ROLLOUT_RK = "rollout"  # compositions: synthesizer and deferred-input changes
PROJECTS_ROLLOUT_RK = "rollout-projects"  # apps: Project defaults changes
ROLLOUTS = {"compositions": ROLLOUT_RK, "projects": PROJECTS_ROLLOUT_RK}  # name -> row (the CLI's names)
_JSON = ("fingerprint", "output", "warnings", "revisions", "inflight", "apps")


def composition_rk(name: str) -> str:
    return f"c-{name.lower()}"


def project_rk(name: str) -> str:
    return f"p-{name.lower()}"


@dataclass
class CompositionState:
    name: str
    status: str = "New"  # Ready | Failed | Waiting | Pending | Running | Ignoring | New
    message: str = ""  # the first error, or why it waits
    synthesizer: str = ""
    fingerprint: dict[str, Any] = field(default_factory=dict)  # of the output in force
    output: list[dict[str, Any]] | None = None  # the output in force (None: none yet)
    warnings: list[str] = field(default_factory=list)
    revisions: dict[str, str] = field(default_factory=dict)  # input key -> synoscd.io/revision
    synthesized_at: float | None = None  # of the output in force
    seconds: float | None = None
    attempted_at: float | None = None
    failed_key: str | None = None  # a key whose synthesis failed: not run again before next_retry_at
    attempts: int = 0
    next_retry_at: float | None = None
    inflight: dict[str, Any] = field(default_factory=dict)  # a job execution still running
    apps: list[str] = field(default_factory=list)  # "Kind/name" of the output in force

    @property
    def key(self) -> str | None:
        from synoscd.synth.cache import Fingerprint

        fp = Fingerprint.from_dict(self.fingerprint)
        return fp.key if fp else None

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _JSON:
                t.put_json(row, f.name, value)
            else:
                row[f.name] = value
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> CompositionState:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in _JSON:
                default = (
                    None
                    if f.name == "output"
                    else ({} if f.name in ("fingerprint", "revisions", "inflight") else [])
                )
                values[f.name] = t.get_json(row, f.name, default)
            elif f.name in row:
                values[f.name] = row[f.name]
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "synthesizer": self.synthesizer,
            "status": self.status,
            "message": self.message,
            "warnings": list(self.warnings),
            "revisions": dict(self.revisions),
            "apps": list(self.apps),
            "lastSynthesis": self.synthesized_at,
            "seconds": self.seconds,
            "attempts": self.attempts,
            "nextRetryAt": self.next_retry_at,
            "running": self.inflight.get("execution") if self.inflight else None,
        }


@dataclass
class RolloutState:
    status: str = "Idle"  # Idle | Progressing | Paused | Stopped
    reason: str = ""
    cause: str = ""
    pending: list[str] = field(default_factory=list)  # compositions waiting for their turn
    last_step: str | None = None  # the composition rolled last
    last_apps: list[str] = field(default_factory=list)  # its apps ("App/name"), health-gated
    last_step_at: float | None = None
    acknowledged: bool = False  # the last step's health no longer gates (resume, or a new commit)
    stopped_revision: str | None = None
    paused: bool = False  # `synos rollout pause`: no step until resumed
    updated_by: str | None = None
    updated_at: float | None = None

    def to_row(self) -> dict[str, Any]:
        row = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        t.put_json(row, "pendingList", row.pop("pending"))
        t.put_json(row, "lastApps", row.pop("last_apps"))
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any] | None) -> RolloutState:
        if not row:
            return cls()
        names = {f.name for f in dataclasses.fields(cls)} - {"pending", "last_apps"}
        values = {k: row[k] for k in names if k in row}
        return cls(
            **values,
            pending=list(t.get_json(row, "pendingList", [])),
            last_apps=list(t.get_json(row, "lastApps", [])),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "cause": self.cause,
            "pending": list(self.pending),
            "lastStep": self.last_step,
            "lastApps": list(self.last_apps),
            "lastStepAt": self.last_step_at,
            "acknowledged": self.acknowledged,
            "paused": self.paused,
            "updatedBy": self.updated_by,
            "updatedAt": self.updated_at,
        }


@dataclass
class ProjectRecord:
    """What a pass must remember of a Project to roll a change of its defaults one app at a time
    (synth/defaults_rollout.py): the defaults every app not rolled yet is on, the change in flight,
    and each app's own manifest as last seen (an app whose own manifest changed is not held back)."""

    name: str
    defaults: dict[str, Any] = field(default_factory=dict)  # in force
    target: str | None = None  # digest of the defaults rolling out (None: no change in flight)
    rolled: list[str] = field(default_factory=list)  # apps that took the target defaults
    own: dict[str, str] = field(default_factory=dict)  # app -> digest of its own manifest

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {"name": self.name, "target": self.target}
        t.put_json(row, "defaults", self.defaults)
        t.put_json(row, "rolled", self.rolled)
        t.put_json(row, "own", self.own)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ProjectRecord:
        return cls(
            row.get("name") or "",
            dict(t.get_json(row, "defaults", {})),
            row.get("target"),
            list(t.get_json(row, "rolled", [])),
            dict(t.get_json(row, "own", {})),
        )


@dataclass
class SynthState:
    compositions: dict[str, CompositionState] = field(default_factory=dict)  # by name, lower case
    rollout: RolloutState = field(default_factory=RolloutState)
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)  # as read, to write only changes
    projects: dict[str, ProjectRecord] = field(default_factory=dict)  # by name, lower case
    projects_rollout: RolloutState = field(default_factory=RolloutState)


def load(table: TableClient) -> SynthState:
    state = SynthState()
    for row in t.query(table, PK):
        rk = row["RowKey"]
        clean = {
            k: v for k, v in row.items() if k not in ("PartitionKey", "RowKey", "_etag", "schemaVersion")
        }
        state.rows[rk] = clean
        if rk == ROLLOUT_RK:
            state.rollout = RolloutState.from_row(clean)
        elif rk == PROJECTS_ROLLOUT_RK:
            state.projects_rollout = RolloutState.from_row(clean)
        elif rk.startswith("p-"):
            record = ProjectRecord.from_row(clean)
            state.projects[record.name.lower()] = record
        elif rk.startswith("c-"):
            comp = CompositionState.from_row(clean)
            state.compositions[comp.name.lower()] = comp
    return state


def save_changes(table: TableClient, state: SynthState, gone: list[str]) -> int:
    """Write the composition rows that differ from what was read, delete rows of compositions that
    left Git. The rollout row is saved with `update_rollout` (the CLI writes it too)."""
    return _save(table, state, state.compositions, composition_rk, gone)


def save_projects(table: TableClient, state: SynthState, gone: list[str]) -> int:
    """Write the Project records that differ from what was read, delete those of Projects gone."""
    return _save(table, state, state.projects, project_rk, gone)


def _save(
    table: TableClient,
    state: SynthState,
    records: dict[str, Any],
    rk_of: Callable[[str], str],
    gone: list[str],
) -> int:
    written = 0
    for name, record in records.items():
        rk = rk_of(name)
        row = record.to_row()
        if _same(state.rows.get(rk), row):
            continue
        t.update(table, PK, rk, lambda _old, row=row: row)
        written += 1
    for name in gone:
        t.delete(table, PK, rk_of(name))
    return written


def update_rollout(table: TableClient, change: Any, rk: str = ROLLOUT_RK) -> RolloutState:
    """ETag-guarded: `change(RolloutState) -> RolloutState | None` runs on fresh data (None: keep).
    `rk`: which rollout (ROLLOUT_RK, the compositions'; PROJECTS_ROLLOUT_RK, Project defaults')."""
    result: dict[str, RolloutState] = {}

    def mutate(row: dict[str, Any] | None) -> dict[str, Any] | None:
        current = RolloutState.from_row(row)
        new = change(dataclasses.replace(current))
        if new is None:
            result["state"] = current
            return None
        new.updated_at = time.time()
        result["state"] = new
        return new.to_row()

    t.update(table, PK, rk, mutate)
    return result["state"]


def _same(old: dict[str, Any] | None, new: dict[str, Any]) -> bool:
    """Table Storage drops None properties: a missing key reads as None."""
    if old is None:
        return False
    return all(old.get(k) == v for k, v in new.items()) and all(k in new for k in old)
