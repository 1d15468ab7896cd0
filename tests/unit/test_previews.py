"""Pull-request previews, the pure parts: which webhook deliveries ask for a preview
(synoscd/preview/events.py through synoscd/webhook.py), and what the check run says
(synoscd/preview/report.py): the conclusion, the action table, annotations, and GitHub's limits
whatever the plan holds (property tests)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from synoscd import webhook
from synoscd.preview.events import PREVIEW_CHECK
from synoscd.preview.report import MAX_ANNOTATIONS, SUMMARY_LIMIT, Context, render
from synoscd.sources.checks import MAX_TEXT_BYTES, Annotation, Output, fit_bytes

HEAD = "b" * 40
BASE = "c" * 40
REPO = {"full_name": "org/ops"}


def pull_request(action: str = "opened", **pull: Any) -> bytes:
    doc = {
        "number": 7,
        "draft": False,
        "head": {"ref": "feature", "sha": HEAD},
        "base": {"ref": "main", "sha": BASE},
        **pull,
    }
    return json.dumps({"action": action, "number": 7, "pull_request": doc, "repository": REPO}).encode()


def decide(event: str, body: bytes, app_id: int | None = 42) -> webhook.Decision:
    return webhook.decide(event, body, "org/ops", "main", app_id)


# -- events ----------------------------------------------------------------------------------------------


def test_pull_requests_into_the_followed_branch_are_queued_for_a_preview() -> None:
    for action in ("opened", "synchronize", "reopened", "ready_for_review"):
        decision = decide("pull_request", pull_request(action))
        assert decision.run and decision.status == 202 and decision.revision == HEAD
        assert decision.message == {
            "kind": "preview",
            "pr": 7,
            "head": HEAD,
            "headRef": "feature",
            "action": action,
        }


def test_other_pull_requests_are_answered_without_a_preview() -> None:
    cases = {
        "into another branch": pull_request(base={"ref": "release", "sha": BASE}),
        "a draft": pull_request(draft=True),
        "labeled": pull_request("labeled"),
    }
    for why, body in cases.items():
        decision = decide("pull_request", body)
        assert decision.status == 202 and not decision.run, why
        assert decision.reason.startswith("ignored"), why
    other_repo = json.loads(pull_request())
    other_repo["repository"] = {"full_name": "org/elsewhere"}
    assert not decide("pull_request", json.dumps(other_repo).encode()).run


def test_a_closed_pull_request_is_forgotten() -> None:
    decision = decide("pull_request", pull_request("closed"))
    assert decision.run and decision.message == {"kind": "preview-closed", "pr": 7}


def test_malformed_pull_request_payloads_are_400s_naming_the_field() -> None:
    cases = {
        "pull_request.number": pull_request(number="7"),
        "pull_request.head.sha": pull_request(head={"ref": "f", "sha": "not-a-sha"}),
        "pull_request.base.ref": pull_request(base={"sha": BASE}),
        "pull_request.head": pull_request(head="feature"),
    }
    for field, body in cases.items():
        decision = decide("pull_request", body)
        assert decision.status == 400 and field in decision.reason and not decision.run, field
    assert decide("pull_request", b"[1]").status == 400
    assert decide("pull_request", b"{").reason.startswith("pull_request payload is not JSON")


def check_run(
    action: str = "rerequested", name: str = PREVIEW_CHECK, app: int = 42, base: str = "main"
) -> bytes:
    pulls = [{"number": 7, "head": {"ref": "feature", "sha": HEAD}, "base": {"ref": base, "sha": BASE}}]
    item = {"name": name, "head_sha": HEAD, "app": {"id": app}, "pull_requests": pulls}
    return json.dumps({"action": action, "check_run": item, "repository": REPO}).encode()


def test_rerequested_preview_check_runs_and_suites_run_again() -> None:
    decision = decide("check_run", check_run())
    assert decision.run and decision.message is not None
    assert (
        decision.message["pr"] == 7 and decision.message["head"] == HEAD and decision.message["appId"] == 42
    )
    suite = {"head_sha": HEAD, "app": {"id": 42}, "pull_requests": []}  # a fork's: no pull requests listed
    body = json.dumps({"action": "rerequested", "check_suite": suite, "repository": REPO}).encode()
    decision = decide("check_suite", body)
    assert decision.run and decision.message is not None and decision.message["pr"] is None


def test_check_events_that_are_not_ours_are_ignored() -> None:
    for why, body in {
        "another check": check_run(name="CI"),
        "another App": check_run(app=7),
        "completed, not rerequested": check_run("completed"),
        "a pull request into another branch": check_run(base="release"),
    }.items():
        decision = decide("check_run", body)
        assert not decision.run and decision.status == 202, why
    # without the App id in the settings, the queued preview checks it with the App's credentials
    assert decide("check_run", check_run(app=7), app_id=None).run


# -- the report ------------------------------------------------------------------------------------------

CTX = Context(head=HEAD, branch="main", environment="rg/env", base=BASE, pr=7, changed=("apps/web.yaml",))


def action(order: int, act: str, name: str, **kw: Any) -> dict[str, Any]:
    return {"order": order, "kind": "App", "name": name, "action": act, "phase": "Sync", "wave": 0, **kw}


def doc(
    actions: list[dict[str, Any]], errors: list[dict[str, Any]] | None = None, **prune: Any
) -> dict[str, Any]:
    return {"actions": actions, "errors": errors or [], "prune": {"enabled": True, "blocked": None, **prune}}


PLAN = doc(
    [
        action(1, "create", "new", reason="missing"),
        action(2, "delete", "old", reason="pruned"),
        action(
            3,
            "update",
            "web",
            reason="drift",
            changes=[{"field": "template.containers[0].image", "live": "nginx:1", "desired": "nginx:2"}],
        ),
        action(4, "noop", "same", reason="in-sync"),
        action(5, "skip", "frozen", reason="suspended", message="suspended at runtime"),
        {**action(6, "run-hook", "migrate", reason="hook"), "kind": "Job", "phase": "PreSync"},
    ]
)


def test_changes_planned_are_neutral_with_the_actions_by_wave() -> None:
    report = render(PLAN, CTX)
    assert report.conclusion == "neutral"
    assert report.title == "3 changes: 1 create, 1 update, 1 delete, 1 hook"
    s = report.summary
    assert "| 3 | update | App | <code>web</code> | drift | <code>template.containers[0].image</code>: " in s
    assert "<code>nginx:1</code> → <code>nginx:2</code>" in s
    assert "#### Hooks that would run (1)" in s and "<code>migrate</code>" in s
    assert "| App | <code>frozen</code> | suspended | suspended at runtime |" in s
    assert "1 unchanged" in s and f"synos diff --ref {HEAD[:12]}" in s
    assert report.annotations == ()


def test_compositions_that_would_re_synthesise_are_listed_and_planned_changes() -> None:
    plan = {**doc([action(1, "noop", "web", reason="in-sync")]), "synthesis": {"wouldRun": [
        {"composition": "shops", "why": "input fleet changed"}]}}  # fmt: skip
    report = render(plan, CTX)
    assert (report.conclusion, report.title) == ("neutral", "1 composition to re-synthesise")
    assert "| <code>shops</code> | input fleet changed |" in report.summary
    assert "never runs a synthesizer" in report.summary
    hooks_only = render(doc([{**action(1, "run-hook", "migrate", reason="hook"), "kind": "Job"}]), CTX)
    assert hooks_only.title == "1 hook to run"


def test_nothing_to_do_is_success() -> None:
    report = render(doc([action(1, "noop", "web", reason="in-sync")]), CTX)
    assert (report.conclusion, report.title) == ("success", "No changes")


def test_invalid_manifests_fail_with_an_annotation_each() -> None:
    errors = [
        {
            "file": "apps/bad.yaml",
            "line": 9,
            "field": "spec.containers[0].cpu",
            "message": "expected a number",
        },
        {"file": "apps/worse.yaml", "line": 3, "field": "", "message": "not YAML"},
    ]
    report = render(doc([], errors), CTX)
    assert report.conclusion == "failure" and report.title == "2 invalid manifests or violations"
    assert report.annotations == (
        Annotation("apps/bad.yaml", 9, "expected a number", "SynosCD: spec.containers[0].cpu"),
        Annotation("apps/worse.yaml", 3, "not YAML", "SynosCD: invalid manifest"),
    )


def test_a_prune_the_safety_valve_blocks_fails_naming_it() -> None:
    blocked = "would delete 3 of 4 managed resources, more than 50%; prune with force to allow it"
    report = render(
        doc([action(1, "skip", "old", reason="prune-blocked", message=blocked)], blocked=blocked), CTX
    )
    assert report.conclusion == "failure" and report.title == "Prune blocked by the safety valve"
    assert "#### Prune blocked by the safety valve" in report.summary and blocked in report.summary


def test_a_pull_request_behind_its_base_says_it_plans_the_merge_result() -> None:
    report = render(
        PLAN, Context(head=HEAD, branch="main", environment="rg/env", base=BASE, up_to_date=False)
    )
    assert "merge result" in report.summary and BASE[:12] in report.summary


def test_table_cells_are_escaped() -> None:
    hostile = "a|b\n<script>`x`"
    report = render(
        doc(
            [
                action(
                    1,
                    "update",
                    "web",
                    changes=[{"field": hostile, "live": hostile, "desired": {"k": hostile}}],
                )
            ]
        ),
        CTX,
    )
    row = next(line for line in report.summary.splitlines() if line.startswith("| 1 |"))
    assert row.count(" | ") == 5, "a pipe in a value does not split the row"
    assert "<script>" not in report.summary and "&lt;script&gt;" in report.summary


names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=300)
actions_st = st.lists(
    st.builds(
        lambda i, act, name, n: action(
            i, act, name, reason="r", changes=[{"field": name, "live": name * 3, "desired": name}] * n
        ),
        st.integers(1, 10_000),
        st.sampled_from(["create", "update", "delete", "heal", "skip", "run-hook", "noop"]),
        names,
        st.integers(0, 12),
    ),
    max_size=400,
)
errors_st = st.lists(
    st.builds(
        lambda f, line, m: {"file": f, "line": line, "field": "spec", "message": m},
        names,
        st.integers(1, 10**6),
        names,
    ),
    max_size=700,
)


@settings(max_examples=60, deadline=None)
@given(actions=actions_st, errors=errors_st, limit=st.sampled_from([2_000, 20_000, SUMMARY_LIMIT]))
def test_whatever_the_plan_the_report_fits_githubs_limits(
    actions: list[dict[str, Any]], errors: list[dict[str, Any]], limit: int
) -> None:
    report = render(doc(actions, errors), CTX, limit=limit)
    assert len(report.summary.encode("utf-8")) <= limit
    assert len(report.annotations) == min(len(errors), MAX_ANNOTATIONS)
    shown = sum(1 for line in report.summary.splitlines() if line.startswith("| ") and line[2:3].isdigit())
    writes = [a for a in actions if a["action"] in ("create", "update", "delete", "heal", "run-hook")]
    if shown < len(writes):
        assert "Not shown, to stay within" in report.summary, "what is cut is counted"
    for a in report.annotations:  # every annotation request GitHub would take
        body = Output("t", "s", annotations=[a]).to_json([a])["annotations"][0]
        assert len(body["message"].encode("utf-8")) <= 64 * 1024


@given(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40_000),
    st.integers(100, 70_000),
)
def test_fit_bytes_never_exceeds_the_limit(text: str, limit: int) -> None:
    fitted = fit_bytes(text, limit)
    assert len(fitted.encode("utf-8")) <= max(limit, 0)
    assert fitted == text or fitted.endswith("(cut to fit GitHub's limit)")
    assert len(Output("t", text * 3).to_json()["summary"].encode("utf-8")) <= MAX_TEXT_BYTES


# -- docs/previews.md shows what the renderer really writes -----------------------------------------------

EXAMPLE_HEAD = "9f3c2a7e41d05b6c8e1f2a3b4c5d6e7f8091a2b3"
EXAMPLE_BASE = "4e1a8c0d2b3f4a5e6d7c8b9a0f1e2d3c4b5a6978"
EXAMPLE_PLAN = doc(
    [
        {**action(1, "run-hook", "db-migrate", reason="hook"), "kind": "Job", "phase": "PreSync"},
        action(2, "create", "api", reason="missing"),
        action(
            3,
            "update",
            "web",
            reason="drift",
            changes=[
                {
                    "field": "template.containers[0].image",
                    "live": "ghcr.io/contoso/web:1.4.2",
                    "desired": "ghcr.io/contoso/web:1.5.0",
                },
                {"field": "template.scale.maxReplicas", "live": 3, "desired": 5},
            ],
        ),
        action(4, "noop", "worker", reason="in-sync"),
        action(
            5,
            "update",
            "frontend",
            wave=1,
            reason="drift",
            changes=[
                {
                    "field": "template.containers[0].env",
                    "live": [{"name": "API_URL", "value": "http://api-v1"}],
                    "desired": [{"name": "API_URL", "value": "http://api"}],
                }
            ],
        ),
        action(
            6,
            "skip",
            "reports",
            wave=1,
            reason="suspended",
            message="suspended at runtime (synos resume to undo)",
        ),
        action(7, "delete", "legacy", wave=2, reason="pruned"),
    ]
)


def test_the_example_in_the_docs_is_what_the_renderer_writes() -> None:
    from tests.conftest import REPO_ROOT

    ctx = Context(
        head=EXAMPLE_HEAD,
        branch="main",
        environment="apps-rg/apps-env",
        base=EXAMPLE_BASE,
        pr=42,
        changed=("apps/api.yaml", "apps/frontend.yaml", "apps/legacy.yaml", "apps/web.yaml"),
    )
    report = render(EXAMPLE_PLAN, ctx)
    page = (REPO_ROOT / "docs" / "previews.md").read_text()
    assert f"```markdown\n{report.summary}\n```" in page, "regenerate the example in docs/previews.md"
    assert f"**{report.conclusion}**, title **{report.title}**" in page
