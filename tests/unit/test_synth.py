"""Pure parts of synthesizers: the KRM protocol check, manifest rules with file:line:field, inputs and
revision agreement, fingerprints and their classification, the rollout decision, the author helper."""

from __future__ import annotations

import io
import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from synoscd import krm
from synoscd.manifests.desired import load_desired
from synoscd.manifests.schema import Composition
from synoscd.synth import cache, rollout
from synoscd.synth.inputs import Readers, read_inputs
from synoscd.synth.protocol import parse_output
from synoscd.synth.state import RolloutState

APP = {
    "apiVersion": "synoscd.io/v1alpha1",
    "kind": "App",
    "metadata": {"name": "web"},
    "spec": {"containers": [{"name": "c", "image": "nginx:1", "cpu": 0.25, "memory": "0.5Gi"}]},
}


def answer(**doc: Any) -> bytes:
    return json.dumps({"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", **doc}).encode()


# -- protocol ------------------------------------------------------------------------------------------


def test_a_good_answer_has_its_items_and_results_errors_first() -> None:
    out = parse_output(
        answer(
            items=[APP],
            results=[
                {"severity": "info", "message": "i"},
                {"severity": "warning", "message": "w"},
                {"message": "no severity is an error", "resourceRef": {"kind": "App", "name": "web"}},
            ],
        )
    )
    assert out.items == (APP,) and [r.severity for r in out.results] == ["error", "warning", "info"]
    assert out.error == "no severity is an error (App web)" and out.warnings == ["w"]


def test_malformed_answers_are_errors_that_say_what_is_wrong() -> None:
    cases = {
        b"": "output is empty",
        b"nope": "output is not JSON",
        b"[1]": "output is a JSON list, not a ResourceList object",
        json.dumps({"kind": "ConfigMap"}).encode(): "output kind is 'ConfigMap', expected ResourceList",
        answer(apiVersion="v9"): "output apiVersion is 'v9'",
        answer(items={}): "output items must be a list",
        answer(
            items=[{**APP, "kind": "Deployment"}]
        ): "items[0] (Deployment web): kind 'Deployment' is not allowed",
        answer(items=[{**APP, "apiVersion": "apps/v1"}]): "apiVersion 'apps/v1' is not supported",
        answer(items=[{**APP, "metadata": {}}]): "App needs metadata.name",
        answer(results=[{"severity": "fatal", "message": "x"}]): "severity 'fatal' is not one of",
        answer(results=["x"]): "results[0] needs a message",
        b"{" + b" " * 2000: "output is larger than 1024 bytes",
    }
    for raw, expected in cases.items():
        out = parse_output(raw, max_bytes=1024)
        assert out.error is not None and expected in out.error, (raw[:40], out.error)


@given(st.binary(max_size=300))
def test_any_bytes_give_an_answer_never_an_exception(raw: bytes) -> None:
    out = parse_output(raw)
    assert out.ok == (out.error is None)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
        max_leaves=10,
    )
)
def test_any_json_gives_an_answer_never_an_exception(doc: Any) -> None:
    parse_output(answer(items=doc, results=doc))
    parse_output(json.dumps(doc).encode())


# -- manifests -----------------------------------------------------------------------------------------

SYNTH = """apiVersion: synoscd.io/v1alpha1
kind: Synthesizer
metadata:
  name: fleet
spec:
  image: ghcr.io/contoso/fleet:1
"""


def errors(text: str) -> list[tuple[int, str, str]]:
    return [(e.line, e.field, e.message) for e in load_desired({"apps/x.yaml": text.encode()}).errors]


def test_synthesizer_rules_point_at_the_field() -> None:
    both = SYNTH + '  command: ["python3", "x.py"]\n'
    assert errors(both) == [
        (7, "spec.command", "set either image (executor job) or command (executor exec), not both")
    ]
    neither = SYNTH.replace("  image: ghcr.io/contoso/fleet:1\n", "  timeoutSeconds: 5\n")
    assert errors(neither)[0][1] == "spec" and "needs an image" in errors(neither)[0][2]
    pair = SYNTH + "  cpu: 0.5\n"
    assert errors(pair)[0][:2] == (7, "spec.cpu") and "not a valid pair" in errors(pair)[0][2]
    assert errors(SYNTH + "  timeoutSeconds: 0\n")[0][1] == "spec.timeoutSeconds"
    assert errors(SYNTH + "  executor: exec\n")[0][1] == "spec.executor"


def test_composition_rules_point_at_the_field() -> None:
    comp = """---
apiVersion: synoscd.io/v1alpha1
kind: Composition
metadata:
  name: web
  annotations:
    synoscd.io/ignore-side-effects: "yes"
    synoscd.io/revision: "1"
spec:
  synthesizer: flet
  inputs:
    - key: a
      file: inputs/a.json
      inline: {x: 1}
    - key: a
      secret: https://v.vault.azure.net/secrets/db
"""
    found = errors(SYNTH + comp)
    fields = [f for _line, f, _m in found]
    assert "spec.synthesizer" in fields and "spec.inputs[0]" in fields and "spec.inputs[1].key" in fields
    assert (
        errors(comp.replace("https://v.vault.azure.net/secrets/db", "not-a-url"))[0][1]
        == "spec.inputs[1].secret"
    )
    assert 'metadata.annotations["synoscd.io/ignore-side-effects"]' in fields or any(
        "ignore-side-effects must be" in m for _l, _f, m in found
    )
    assert any(
        "annotation 'synoscd.io/revision' is not used on input items" in m or "is not used" in m
        for _l, _f, m in found
    )
    line_of = {f: line for line, f, _m in found}
    assert line_of["spec.synthesizer"] == 16
    assert "no Synthesizer 'flet' in the repository (known: fleet)" in next(
        m for _l, f, m in found if f == "spec.synthesizer"
    )


def test_valid_synth_kinds_land_in_synth_not_in_resources() -> None:
    comp = (
        "---\napiVersion: synoscd.io/v1alpha1\nkind: Composition\nmetadata:\n  name: web\n"
        "spec:\n  synthesizer: fleet\n"
    )
    desired = load_desired({"apps/x.yaml": (SYNTH + comp).encode()})
    assert desired.errors == [] and desired.resources == []
    assert [(r.kind, r.name) for r in desired.synth] == [("Synthesizer", "fleet"), ("Composition", "web")]


# -- inputs ---------------------------------------------------------------------------------------------


def composition(inputs: list[dict[str, Any]]) -> Composition:
    return Composition.model_validate(
        {
            "apiVersion": "synoscd.io/v1alpha1",
            "kind": "Composition",
            "metadata": {"name": "web"},
            "spec": {"synthesizer": "fleet", "inputs": inputs},
        }
    )


def test_inputs_become_items_with_their_key_and_revision() -> None:
    files = {
        "a.json": json.dumps({"apps": ["x"]}).encode(),
        "b.yaml": b"apiVersion: example.com/v1\nkind: Fleet\nmetadata:\n  name: b\n"
        b"  annotations:\n    synoscd.io/revision: '7'\n",
        "c.txt": b"hello",
    }
    comp = composition(
        [
            {"key": "a", "file": "a.json"},
            {"key": "b", "file": "b.yaml", "defer": True},
            {"key": "c", "file": "c.txt"},
            {"key": "d", "inline": {"n": 1}},
            {"key": "e", "secret": "https://v.vault.azure.net/secrets/db"},
            {"key": "f", "secret": "https://v.vault.azure.net/secrets/db/abc123"},
        ]
    )
    got = read_inputs(comp, Readers(files.get, lambda url: "v42" if url.endswith("/db") else None))
    items = {i.key: i for i in got.items}
    assert got.errors == []
    assert items["a"].item["kind"] == "Input" and items["a"].item["data"] == {"apps": ["x"]}  # type: ignore[index]
    assert items["b"].item["kind"] == "Fleet" and items["b"].revision == "7" and items["b"].defer  # type: ignore[index]
    assert items["c"].item["data"] == "hello"  # type: ignore[index]
    assert items["e"].item["data"] == {  # type: ignore[index]
        "url": "https://v.vault.azure.net/secrets/db",
        "version": "v42",
        "versionedUrl": "https://v.vault.azure.net/secrets/db/v42",
    }
    assert items["f"].item["data"]["version"] == "abc123"  # type: ignore[index]
    for i in got.items:
        assert i.item["metadata"]["annotations"]["synoscd.io/input-key"] == i.key  # type: ignore[index]
    assert got.disagreement() is None


def test_revisions_must_agree() -> None:
    def krm_file(rev: str) -> bytes:
        return json.dumps(
            {
                "apiVersion": "x/v1",
                "kind": "K",
                "metadata": {"name": "n", "annotations": {"synoscd.io/revision": rev}},
            }
        ).encode()

    comp = composition(
        [{"key": "a", "file": "a.json"}, {"key": "b", "file": "b.json"}, {"key": "c", "inline": {}}]
    )
    apart = read_inputs(comp, Readers({"a.json": krm_file("2"), "b.json": krm_file("1")}.get))
    assert apart.disagreement() == "waiting for inputs to agree on synoscd.io/revision (a=2, b=1)"
    together = read_inputs(comp, Readers({"a.json": krm_file("2"), "b.json": krm_file("2")}.get))
    assert together.disagreement() is None


def test_unreadable_inputs_are_errors() -> None:
    comp = composition(
        [
            {"key": "a", "file": "gone.json"},
            {"key": "b", "file": "bad.json"},
            {"key": "s", "secret": "https://v.vault.azure.net/secrets/x"},
        ]
    )
    got = read_inputs(comp, Readers({"bad.json": b"{"}.get))
    assert got.errors[0] == "input 'a': file gone.json not found"
    assert got.errors[1].startswith("input 'b': file bad.json is not valid JSON")
    assert (
        got.errors[2]
        == "input 's': the current version of secret https://v.vault.azure.net/secrets/x could not be read"
    )


# -- fingerprints ---------------------------------------------------------------------------------------


def fp(synth: str = "s", comp: str = "c", **inputs: str) -> cache.Fingerprint:
    return cache.Fingerprint(synth, comp, inputs or {"a": "1", "d": "1"}, frozenset({"d"}))


def test_classification_follows_eno() -> None:
    assert cache.classify(fp(), None) == cache.IMMEDIATE
    assert cache.classify(fp(), fp()) == cache.SAME
    assert cache.classify(fp(comp="c2"), fp()) == cache.IMMEDIATE
    assert cache.classify(fp(a="2", d="1"), fp()) == cache.IMMEDIATE
    assert cache.classify(fp(a="1", d="2"), fp()) == cache.DEFERRED
    assert cache.classify(fp(synth="s2"), fp()) == cache.DEFERRED
    assert cache.classify(fp(synth="s2"), fp(), ignore_side_effects=True) == cache.IGNORED
    assert cache.classify(fp(a="2", d="1"), fp(), ignore_side_effects=True) == cache.IGNORED
    assert cache.classify(fp(comp="c2"), fp(), ignore_side_effects=True) == cache.IMMEDIATE
    assert cache.why(fp(synth="s2", a="2", d="1"), fp()) == "synthesizer changed; input a changed"
    assert cache.Fingerprint.from_dict(fp().to_dict()) == fp()


@given(st.text(max_size=5), st.text(max_size=5), st.dictionaries(st.sampled_from("abc"), st.text(max_size=3)))
def test_the_key_is_a_function_of_the_fingerprint(synth: str, comp: str, inputs: dict[str, str]) -> None:
    one = cache.Fingerprint(synth, comp, inputs)
    two = cache.Fingerprint(synth, comp, dict(reversed(list(inputs.items()))))
    assert one.key == two.key
    assert cache.classify(one, two) == cache.SAME


# -- rollout --------------------------------------------------------------------------------------------


def healthy(_app: str) -> tuple[str, str]:
    return ("Healthy", "")


def test_one_step_per_cooldown_and_only_when_healthy() -> None:
    s = RolloutState()
    d = rollout.decide(s, ["a", "b"], healthy, now=100, cooldown=60, revision="r1")
    assert d.go == "a"
    s = rollout.stepped(d.state, "a", ["App/a-1"], now=100)
    d = rollout.decide(s, ["b"], healthy, now=130, cooldown=60, revision="r1")
    assert d.go is None and "next step in 31 s" in d.wait
    d = rollout.decide(s, ["b"], lambda _a: ("Progressing", ""), now=200, cooldown=60, revision="r1")
    assert d.go is None and "waiting for composition a to become healthy" in d.wait
    d = rollout.decide(s, ["b"], healthy, now=200, cooldown=60, revision="r1")
    assert d.go == "b"
    done = rollout.stepped(d.state, "b", [], now=200)
    assert done.status == "Idle" and done.pending == []


def test_degraded_stops_until_resume_or_a_new_commit() -> None:
    s = rollout.stepped(RolloutState(pending=["a", "b"]), "a", ["App/a-1"], now=0)
    sick = lambda _a: ("Degraded", "revision failing")  # noqa: E731
    d = rollout.decide(s, ["b"], sick, now=100, cooldown=1, revision="r1")
    assert (
        d.go is None
        and d.state.status == "Stopped"
        and "App/a-1 of composition a is unhealthy" in d.state.reason
    )
    again = rollout.decide(d.state, ["b"], healthy, now=200, cooldown=1, revision="r1")
    assert again.go is None and again.state.status == "Stopped"
    assert (
        rollout.decide(rollout.resumed(d.state, "me"), ["b"], sick, now=200, cooldown=1, revision="r1").go
        == "b"
    )
    assert rollout.decide(d.state, ["b"], sick, now=200, cooldown=1, revision="r2").go == "b"
    paused = rollout.paused(s, "me")
    assert rollout.decide(paused, ["b"], healthy, now=200, cooldown=1, revision="r2").state.status == "Paused"


def test_a_new_commit_after_a_stop_goes_at_once_whatever_the_cooldown() -> None:
    s = rollout.stepped(RolloutState(pending=["a", "b"]), "a", ["App/a-1"], now=100)
    sick = lambda _a: ("Degraded", "revision failing")  # noqa: E731
    stopped = rollout.decide(s, ["b"], sick, now=101, cooldown=60, revision="r1").state
    assert stopped.status == "Stopped"
    fix = rollout.decide(stopped, ["a", "b"], sick, now=102, cooldown=60, revision="r2")
    assert fix.go == "a", fix.wait  # the broken composition takes the fix first, not 60 s later


# -- the author helper ----------------------------------------------------------------------------------


def test_krm_run_speaks_stdin_stdout() -> None:
    def fn(inputs: krm.Inputs) -> list[dict[str, Any]]:
        if inputs.revision("fleet") != "3":
            inputs.warning("old revision")
        return [krm.app(f"{inputs.name}-{n}", image="nginx:1") for n in inputs.data("fleet")["apps"]]

    rl = {
        "items": [
            {
                "kind": "Input",
                "metadata": {"name": "fleet", "annotations": {"synoscd.io/input-key": "fleet"}},
                "data": {"apps": ["x"]},
            }
        ],
        "functionConfig": {"metadata": {"name": "web"}},
    }
    out = io.StringIO()
    assert krm.run(fn, io.StringIO(json.dumps(rl)), out, environ={}) == 0
    parsed = parse_output(out.getvalue().encode())
    assert (
        parsed.ok and parsed.items[0]["metadata"]["name"] == "web-x" and parsed.warnings == ["old revision"]
    )

    def broken(_inputs: krm.Inputs) -> list[dict[str, Any]]:
        raise KeyError("apps")

    out = io.StringIO()
    assert krm.run(broken, io.StringIO(json.dumps(rl)), out, environ={}) == 1
    assert parse_output(out.getvalue().encode()).error == "KeyError: 'apps'"
