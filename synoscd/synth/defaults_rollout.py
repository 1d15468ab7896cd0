"""A change of a Project's defaults rolled out one app at a time. Pure: this revision's Projects and
their Apps (hand-written or synthesized), what earlier passes recorded and the rollout state in; which
apps wait (the plan holds them back: `skip`, reason `rollout-pending`), the new records and state out.

Each Project has a record (synth/state.py ProjectRecord): the defaults **in force** (every app not
rolled yet is on them), the digest of the defaults rolling out (`target`), the apps that took them
(`rolled`), and a digest of each app's own manifest as last seen. An app is *touched* by a change when
its data merged with the new defaults differs from its data merged with the defaults in force (the
same merge the loader does, manifests/render.py). So no earlier body has to be read back: the app's
own manifest at this revision and the defaults in force say what it would be without the change.

- No record yet (a new Project, or the first pass with this code): the defaults are in force.
- Defaults equal to those in force (nothing changed, or a revert): nothing is held, the record forgets
  any change in flight; the apps that took it go back at once.
- A new change that touches at most one app, beyond apps whose own manifest changed too: at once.
- Otherwise one app at a time through rollout.decide (the cooldown, the health gate, stop/pause and
  resume) with a state of its own (`rollout-projects`), global across Projects like the compositions'
  cooldown. An app whose own manifest changed (or that is new) takes its change at once, with the new
  defaults. A newer change of the defaults while one rolls starts over from the defaults in force.
  When no app waits any more, the new defaults are in force.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from synoscd.manifests.render import with_defaults
from synoscd.synth import rollout
from synoscd.synth.cache import digest
from synoscd.synth.state import ProjectRecord, RolloutState

HELD = "rollout-pending"  # the plan's skip reason for an app that waits for its turn
DEGRADED = "Degraded"


@dataclass(frozen=True)
class Member:
    """An App listed by a Project, with its own manifest (before the project's defaults)."""

    name: str
    project: str
    own: Any  # the manifest's data; None when unknown (then it is never held back)


@dataclass
class Roll:
    held: dict[str, str] = field(default_factory=dict)  # app (lower case) -> why it waits
    records: dict[str, ProjectRecord] = field(default_factory=dict)  # by project, lower case
    gone: list[str] = field(default_factory=list)  # records of Projects that left Git
    state: RolloutState = field(default_factory=RolloutState)
    stepped: str | None = None  # the app that took the new defaults this pass


def roll(
    defaults: Mapping[str, Mapping[str, Any]],
    members: Sequence[Member],
    records: Mapping[str, ProjectRecord],
    state: RolloutState,
    health: Callable[[str], tuple[str, str]],
    now: float,
    cooldown: float,
    revision: str | None,
    *,
    complete: bool = True,
    may_step: Callable[[str], bool] = lambda _app: True,
) -> Roll:
    """`defaults`: each valid Project's `spec.defaults` at this revision (by name). `complete`: the
    desired set had no error, so records of Projects (and apps) not seen may be forgotten. `may_step`:
    whether this pass may roll the app (a pass for one app rolls no other)."""
    out = Roll(state=state)
    plain: dict[str, Any] = {}
    waiting: list[tuple[str, str]] = []  # (project, app)
    project_of = {m.name: m.project for m in members}
    for name in sorted(defaults):
        plain[name] = _plain(defaults[name])
        listed = [m for m in members if m.project == name]
        record, wait = _project(name, plain[name], listed, records.get(name.lower()), complete)
        out.records[name.lower()] = record
        waiting += [(name, app) for app in wait]
    if complete:
        out.gone = sorted(k for k in records if k not in out.records)
    if not waiting and state.status == "Idle" and not state.pending:
        return out  # nothing rolls (the common pass): the state row stays as it is

    def sick_first(item: tuple[str, str]) -> tuple[int, str, str]:
        return (0 if health(f"App/{item[1]}")[0] == DEGRADED else 1, *item)

    waiting.sort(key=sick_first)
    changed = sorted({project for project, _ in waiting})
    cause = "; ".join(f"defaults of project {p} changed" for p in changed)[:300]
    decision = rollout.decide(
        state,
        [app for _, app in waiting],
        health,
        now,
        cooldown,
        revision,
        cause,
        label=lambda step: f"project {project_of.get(step, '?')}'s defaults rollout",
    )
    new, go = decision.state, decision.go
    if go is not None and may_step(go):
        project = project_of[go]
        record = out.records[project.lower()]
        record.rolled = [*record.rolled, go]
        if all(app in record.rolled for p, app in waiting if p == project):
            out.records[project.lower()] = _in_force(record, plain[project])
        new = rollout.stepped(new, go, [f"App/{go}"], now)
        out.stepped = go
    for project, app in waiting:
        if app != out.stepped:
            out.held[app.lower()] = _why(project, new)
    out.state = new
    return out


def _project(
    name: str, defaults: Any, members: list[Member], record: ProjectRecord | None, complete: bool
) -> tuple[ProjectRecord, list[str]]:
    """The Project's new record and the apps that wait for the new defaults, in name order."""
    own_now = {m.name: _own_digest(m.own) for m in members if m.own is not None}
    own = own_now if complete or record is None else {**record.own, **own_now}
    if record is None or digest(defaults) == digest(record.defaults):
        return ProjectRecord(name, defaults, None, [], own), []
    target = digest(defaults)[:32]
    touched = sorted(
        m.name
        for m in members
        if m.own is not None and with_defaults(m.own, defaults) != with_defaults(m.own, record.defaults)
    )
    own_changed = {m.name for m in members if m.own is not None and record.own.get(m.name) != own_now[m.name]}
    if record.target != target:  # a new change (or a newer one while one rolls: start over)
        if record.target is None and len([a for a in touched if a not in own_changed]) <= 1:
            return ProjectRecord(name, defaults, None, [], own), []  # touches one app: at once
        rolled: list[str] = []
    else:
        rolled = [a for a in record.rolled if a in touched]
    rolled += [a for a in touched if a in own_changed and a not in rolled]  # its own change goes now
    wait = [a for a in touched if a not in rolled]
    if not wait:
        return ProjectRecord(name, defaults, None, [], own), []
    return ProjectRecord(name, record.defaults, target, rolled, own), wait


_DIGESTS: OrderedDict[int, tuple[Any, str]] = OrderedDict()
_DIGESTS_MAX = 8192
_DIGESTS_LOCK = threading.Lock()


def _own_digest(data: Any) -> str:
    """A manifest's digest, once per parsed document: the loader shares parsed documents between
    passes (manifests/desired.py), so a warm no-change pass hashes no manifest again. The entry keeps
    the data alive, so its id cannot be reused while cached."""
    with _DIGESTS_LOCK:
        hit = _DIGESTS.get(id(data))
        if hit is not None and hit[0] is data:
            _DIGESTS.move_to_end(id(data))
            return hit[1]
    value = digest(data)[:32]
    with _DIGESTS_LOCK:
        _DIGESTS[id(data)] = (data, value)
        while len(_DIGESTS) > _DIGESTS_MAX:
            _DIGESTS.popitem(last=False)
    return value


def _in_force(record: ProjectRecord, defaults: Any) -> ProjectRecord:
    return dataclasses.replace(record, defaults=defaults, target=None, rolled=[])


def _why(project: str, state: RolloutState) -> str:
    """The held app's status message: stable while the rollout's status is (no status row rewritten
    for a countdown); `synos get rollouts` has the live reason."""
    head = f"project {project}'s new defaults roll out one app at a time"
    if state.status == "Stopped":
        return f"{head}; the rollout is {state.reason}"
    if state.status == "Paused":
        return f"{head}; the rollout is paused (synos rollout resume)"
    return f"{head}; this app waits for its turn (synos get rollouts)"


def _plain(value: Any) -> Any:
    """As stored (JSON), so the defaults read back from the record compare equal to this revision's."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))
