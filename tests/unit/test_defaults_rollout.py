"""The rollout of a Project's new defaults, one app at a time (synth/defaults_rollout.py, pure), the
merge it compares with (manifests/render.with_defaults) and the plan's hold (rollout-pending)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from synoscd.engine.plan import plan
from synoscd.manifests.render import merge_defaults, with_defaults
from synoscd.manifests.yaml_loader import load_documents
from synoscd.synth import rollout
from synoscd.synth.defaults_rollout import Member, Roll, roll
from synoscd.synth.state import ProjectRecord, RolloutState
from tests.unit.test_plan import desired, live_of, run

APPS = ["a1", "a2", "a3", "a4"]
COOLDOWN = 60.0


def app(name: str, image: str | None = "nginx:1", **env: str) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main"}
    if image:
        container["image"] = image
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {
        "apiVersion": "synoscd.io/v1alpha1",
        "kind": "App",
        "metadata": {"name": name},
        "spec": {"containers": [container]},
    }


def tier(value: str) -> dict[str, Any]:
    return {"containers": [{"name": "main", "env": [{"name": "TIER", "value": value}]}]}


def healthy(_app: str) -> tuple[str, str]:
    return ("Healthy", "")


class Stack:
    """Passes over one Project `shop`: what each pass decided, carried to the next like the state row."""

    def __init__(self, apps: dict[str, dict[str, Any]], defaults: dict[str, Any]) -> None:
        self.apps = apps
        self.defaults = defaults
        self.records: dict[str, ProjectRecord] = {}
        self.state = RolloutState()
        self.revision = "r1"

    def members(self) -> list[Member]:
        return [Member(name, "shop", data) for name, data in self.apps.items()]

    def pass_(self, now: float, health: Any = healthy, **kw: Any) -> Roll:
        out = roll(
            {"shop": self.defaults},
            self.members(),
            self.records,
            self.state,
            health,
            now,
            COOLDOWN,
            self.revision,
            **kw,
        )
        self.records, self.state = out.records, out.state
        return out

    def commit(self, revision: str, defaults: dict[str, Any] | None = None) -> None:
        self.revision = revision
        if defaults is not None:
            self.defaults = defaults


def four(defaults: dict[str, Any] | None = None) -> Stack:
    s = Stack({name: app(name) for name in APPS}, defaults or tier("1"))
    first = s.pass_(0)
    assert first.held == {} and first.stepped is None
    assert s.records["shop"].defaults == s.defaults and s.records["shop"].target is None
    return s


def test_the_first_pass_records_the_defaults_in_force_and_holds_nothing() -> None:
    s = four()
    assert set(s.records["shop"].own) == set(APPS)
    again = s.pass_(10)
    assert again.held == {} and again.state == RolloutState()  # a no-change pass touches no state


def test_a_change_touching_four_apps_rolls_one_app_per_cooldown() -> None:
    s = four()
    s.commit("r2", tier("2"))
    first = s.pass_(100)
    assert first.stepped == "a1" and sorted(first.held) == ["a2", "a3", "a4"]
    assert "waits for its turn" in first.held["a2"]
    assert s.state.status == "Progressing" and s.state.last_apps == ["App/a1"]
    assert "defaults of project shop changed" in s.state.cause
    assert s.records["shop"].defaults == tier("1") and s.records["shop"].rolled == ["a1"]

    soon = s.pass_(100 + COOLDOWN - 1)
    assert soon.stepped is None and sorted(soon.held) == ["a2", "a3", "a4"]
    assert "rollout-cooldown" in s.state.reason
    waiting = s.pass_(200, health=lambda _a: ("Progressing", ""))
    assert waiting.stepped is None and "to become healthy (App/a1: Progressing)" in s.state.reason

    steps = [(s.pass_(t).stepped, t) for t in (200, 230, 260, 290, 320)]
    assert steps == [("a2", 200), (None, 230), ("a3", 260), (None, 290), ("a4", 320)]
    assert s.state.status == "Idle" and s.state.pending == []
    # Every app took the new defaults: they are in force, nothing is held any more.
    assert s.records["shop"] == dataclasses.replace(
        s.records["shop"], defaults=tier("2"), target=None, rolled=[]
    )
    assert s.pass_(400).held == {}


def test_an_unhealthy_app_stops_the_rollout_until_resumed() -> None:
    s = four()
    s.commit("r2", tier("2"))
    assert s.pass_(100).stepped == "a1"

    def sick(name: str) -> tuple[str, str]:
        return ("Degraded", "crash loop") if name == "App/a1" else ("Healthy", "")

    stopped = s.pass_(500, health=sick)
    assert stopped.stepped is None and s.state.status == "Stopped"
    assert s.state.reason.startswith(
        "stopped: App/a1 of project shop's defaults rollout is unhealthy (crash loop)"
    )
    assert "the rollout is stopped: App/a1" in stopped.held["a2"]
    assert s.pass_(900, health=sick).stepped is None  # stays stopped, cooldown or not

    s.state = rollout.resumed(s.state, "me")
    assert s.pass_(901, health=sick).stepped == "a2"


def test_a_new_commit_clears_the_stop_and_a_fix_goes_to_the_broken_app_first() -> None:
    s = four()
    s.commit("r2", tier("bad"))
    assert s.pass_(100).stepped == "a1"

    def sick(name: str) -> tuple[str, str]:
        return ("Degraded", "crash loop") if name == "App/a1" else ("Healthy", "")

    s.pass_(101, health=sick)
    assert s.state.status == "Stopped"
    # A fix: new defaults again; the rollout starts over from the defaults in force, sick app first,
    # at once (neither the stopped step nor the cooldown gates).
    s.commit("r3", tier("3"))
    fix = s.pass_(102, health=sick)
    assert fix.stepped == "a1" and sorted(fix.held) == ["a2", "a3", "a4"]
    assert s.records["shop"].defaults == tier("1") and s.records["shop"].rolled == ["a1"]


def test_a_revert_holds_nothing_and_clears_the_rollout() -> None:
    s = four()
    s.commit("r2", tier("bad"))
    s.pass_(100)
    s.pass_(101, health=lambda a: ("Degraded", "x") if a == "App/a1" else ("Healthy", ""))
    assert s.state.status == "Stopped"
    s.commit("r3", tier("1"))
    back = s.pass_(102)
    assert back.held == {} and back.stepped is None and s.state.status == "Idle"
    assert s.records["shop"].target is None and s.records["shop"].rolled == []


def test_a_change_touching_one_app_applies_at_once() -> None:
    s = Stack({"a1": app("a1"), **{n: app(n, TIER="own") for n in APPS[1:]}}, tier("1"))
    s.pass_(0)
    s.commit("r2", tier("2"))  # the others set TIER themselves: only a1 takes the default
    out = s.pass_(1)
    assert out.held == {} and out.stepped is None and s.state == RolloutState()
    assert s.records["shop"].defaults == tier("2") and s.records["shop"].target is None


def test_an_app_whose_own_manifest_changed_is_not_held_back() -> None:
    s = four()
    s.commit("r2", tier("2"))
    s.apps["a3"] = app("a3", "nginx:2")  # its own change in the same commit
    s.apps["a5"] = app("a5")  # a new app: nothing of it to protect
    first = s.pass_(100)
    assert first.stepped == "a1" and sorted(first.held) == ["a2", "a4"]
    assert sorted(s.records["shop"].rolled) == ["a1", "a3", "a5"]

    # Its own manifest changes again mid-rollout: it is not held either.
    s.apps["a4"] = app("a4", "nginx:3")
    assert sorted(s.pass_(101).held) == ["a2"]


def test_own_changes_that_leave_one_app_apply_the_change_at_once() -> None:
    s = four()
    s.commit("r2", tier("2"))
    for name in ("a2", "a3", "a4"):
        s.apps[name] = app(name, "nginx:2")
    out = s.pass_(100)
    assert out.held == {} and s.records["shop"].defaults == tier("2")


def test_a_pass_for_one_app_rolls_no_other() -> None:
    s = four()
    s.commit("r2", tier("2"))
    out = s.pass_(100, may_step=lambda name: name == "a3")
    assert out.stepped is None and sorted(out.held) == APPS
    assert s.pass_(101).stepped == "a1"


def test_pause_holds_every_app() -> None:
    s = four()
    s.state = rollout.paused(s.state, "me")
    s.commit("r2", tier("2"))
    out = s.pass_(100)
    assert out.stepped is None and sorted(out.held) == APPS and "paused" in out.held["a1"]


def test_records_of_projects_that_left_git_go_only_when_the_set_is_complete() -> None:
    s = four()
    kept = roll({}, [], s.records, s.state, healthy, 1, COOLDOWN, "r2", complete=False)
    assert kept.gone == []
    gone = roll({}, [], s.records, s.state, healthy, 1, COOLDOWN, "r2", complete=True)
    assert gone.gone == ["shop"]


def test_apps_of_other_projects_and_without_a_manifest_are_not_touched() -> None:
    members = [Member("a1", "shop", app("a1")), Member("a2", "shop", None), Member("b1", "other", app("b1"))]
    records = {
        "shop": ProjectRecord("shop", tier("1"), own={"a1": "x"}),
        "other": ProjectRecord("other", tier("1"), own={}),
    }
    out = roll({"shop": tier("2"), "other": tier("1")}, members, records, RolloutState(), healthy, 1, 60, "r")
    assert out.held == {}  # a1 alone is touched (own changed besides): at once
    assert out.records["other"].target is None and out.records["shop"].defaults == tier("2")


# -- the steps of any rollout, whatever the health: at most one per pass, `cooldown` apart ------------


@settings(max_examples=60, deadline=None)
@given(
    healths=st.lists(st.sampled_from(["Healthy", "Progressing", "Degraded"]), min_size=1, max_size=40),
    gaps=st.lists(st.floats(min_value=0, max_value=90), min_size=40, max_size=40),
)
def test_steps_are_a_cooldown_apart_and_never_two_in_a_pass(healths: list[str], gaps: list[float]) -> None:
    s = four()
    s.commit("r2", tier("2"))
    now, stepped_at, rolled = 100.0, [], []
    for status, gap in zip(healths, gaps, strict=False):
        out = s.pass_(now, health=lambda _a, status=status: (status, ""))
        if out.stepped:
            stepped_at.append(now)
            rolled.append(out.stepped)
        assert out.stepped not in out.held
        now += gap
    assert rolled == APPS[: len(rolled)]
    assert all(b - a >= COOLDOWN for a, b in itertools.pairwise(stepped_at))
    if s.state.status == "Stopped":
        assert len(rolled) < len(APPS)


# -- the merge it compares with --------------------------------------------------------------------

leaf = st.one_of(st.integers(), st.text(max_size=3), st.booleans())
names = st.sampled_from(["main", "side", "x"])
env = st.lists(
    st.fixed_dictionaries({"name": st.sampled_from(["A", "B"]), "value": st.text(max_size=2)}), max_size=2
)
containers = st.lists(
    st.fixed_dictionaries({"name": names}, optional={"image": st.text(max_size=4), "env": env}), max_size=3
)
specs = st.fixed_dictionaries(
    {},
    optional={
        "containers": containers,
        "minReplicas": leaf,
        "ingress": st.dictionaries(st.sampled_from(["external", "targetPort"]), leaf),
    },
)


@settings(max_examples=150, deadline=None)
@given(own=specs, defaults=specs)
def test_with_defaults_is_the_loaders_merge(own: dict[str, Any], defaults: dict[str, Any]) -> None:
    data = {"apiVersion": "synoscd.io/v1alpha1", "kind": "App", "metadata": {"name": "a"}, "spec": own}
    project = load_documents(
        "p.yaml", b"apiVersion: synoscd.io/v1alpha1\nkind: Project\nmetadata: {name: p}\n"
    )[0][0]
    project = dataclasses.replace(project, data={**project.data, "spec": {"defaults": defaults}})
    assert with_defaults(data, defaults) == merge_defaults(data, project, "p")[0]


# -- the plan holds what waits -------------------------------------------------------------------------


def test_the_plan_holds_an_update_of_a_pending_app_but_not_a_create_or_a_noop() -> None:
    old, new, fresh, same = desired("a", "nginx:1"), desired("a", "nginx:2"), desired("b"), desired("c")
    why = {"a": "project shop's new defaults ...", "b": "x", "c": "y"}
    got = run([new, fresh, same], [live_of(old), live_of(same)], rollout_pending=why)
    assert got == {"a": ("skip", "rollout-pending"), "b": ("create", "missing"), "c": ("noop", "in-sync")}
    assert run([new], [live_of(old)]) == {"a": ("update", "drift")}


def test_a_held_action_says_why_and_what_waits() -> None:
    from synoscd.engine.plan import PlanInput
    from tests.unit.test_plan import NOW, OURS

    old, new = desired("a", "nginx:1"), desired("a", "nginx:2")
    inp = PlanInput(
        **OURS,
        desired=(new,),
        complete=True,
        live={old.key: live_of(old)},
        now=NOW,
        rollout_pending={"a": "wait"},
    )
    (action,) = plan(inp, "r").actions
    assert action.message == "wait" and action.changes and not action.writes


# -- own-manifest digests, once per parsed document ------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(own=specs, other=specs)
def test_an_own_digest_is_the_documents_digest_cached_or_not(
    own: dict[str, Any], other: dict[str, Any]
) -> None:
    from synoscd.synth.cache import digest
    from synoscd.synth.defaults_rollout import _own_digest

    doc = {"kind": "App", "metadata": {"name": "a"}, "spec": own}
    twin = {"kind": "App", "metadata": {"name": "a"}, "spec": dict(own)}  # equal, another object
    assert _own_digest(doc) == _own_digest(doc) == _own_digest(twin) == digest(doc)[:32]
    changed = {"kind": "App", "metadata": {"name": "a"}, "spec": other}
    assert (_own_digest(changed) == _own_digest(doc)) == (digest(changed) == digest(doc))
