"""The dashboard's pure parts: filtering and sorting, counts, secret redaction, the sign-in decision,
every template rendered (strict: a missing field fails), escaping, static files, links; and what
rollback keeps: the applied-body slots a pass records and the revision `--previous` picks."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synoscd.cli.output import CliError
from synoscd.cli.rollback import choose
from synoscd.config import Settings
from synoscd.engine import record
from synoscd.engine.execute import Outcome
from synoscd.engine.plan import Action, Plan
from synoscd.state.applied import AppliedBody
from synoscd.state.apps import AppStatus
from synoscd.ui import auth, data, render
from tests.conftest import REPO_ROOT


def row(name: str, sync: str = "Synced", health: str = "Healthy", wave: int = 0, **kw: Any) -> dict[str, Any]:
    base = {
        "name": name,
        "kind": "App",
        "desiredRevision": "a" * 40,
        "appliedRevision": "a" * 40,
        "syncState": sync,
        "health": health,
        "lastSynced": "2026-01-01T00:00:00Z",
        "lastSyncedAgo": "1m ago",
        "message": "",
        "wave": wave,
        "suspended": sync == "Suspended",
        "suspendedBy": None,
        "suspendedReason": None,
        "rolledBack": None,
    }
    return {**base, **kw}


ROWS = [
    row("web", wave=1),
    row("api", "OutOfSync", "Degraded"),
    row("orders-api", "Suspended", suspendedBy="ann@host", suspendedReason="migration"),
    row("report", kind="Job", wave=2),
]


def test_select_filters_by_each_field_and_sorts() -> None:
    def names(**q: str) -> list[str]:
        return [r["name"] for r in data.select(ROWS, q)["rows"]]

    assert names() == ["api", "orders-api", "report", "web"]
    assert names(q="API") == ["api", "orders-api"]
    assert names(sync="Suspended") == ["orders-api"] and names(suspended="yes") == ["orders-api"]
    assert names(suspended="no") == ["api", "report", "web"]
    assert names(health="Degraded") == ["api"] and names(kind="Job") == ["report"]
    assert names(wave="1") == ["web"] and names(wave="2") == ["report"]
    assert names(sort="wave", dir="desc") == ["report", "web", "api", "orders-api"]
    assert names(sort="nonsense") == names()
    out = data.select(ROWS, {"q": "o", "sort": "name", "dir": "desc"})
    assert (out["total"], out["sort"], out["dir"], out["filters"]["q"]) == (4, "name", "desc", "o")
    assert out["options"]["wave"] == [0, 1, 2]


@given(
    st.lists(
        st.builds(
            row,
            st.text("abcxyz-", min_size=1, max_size=6),
            st.sampled_from(data.SYNC_STATES),
            st.sampled_from(data.HEALTH_STATES),
            st.integers(-2, 3),
        ),
        max_size=30,
    ),
    st.text("abcxyz", max_size=2),
    st.sampled_from(["", *data.SYNC_STATES]),
    st.sampled_from(list(data.SORTS)),
    st.sampled_from(["asc", "desc"]),
)
def test_select_shows_exactly_the_matching_rows_in_order(
    rows: list[dict[str, Any]], q: str, sync: str, sort: str, direction: str
) -> None:
    out = data.select(rows, {"q": q, "sync": sync, "sort": sort, "dir": direction})
    expected = [r for r in rows if q in r["name"].lower() and (not sync or r["syncState"] == sync)]
    assert sorted(map(id, out["rows"])) == sorted(map(id, expected))
    keys = [data.SORTS[sort](r) for r in out["rows"]]
    assert keys == sorted(keys, reverse=direction == "desc")


def test_counts_keep_synced_and_out_of_sync_even_at_zero() -> None:
    c = data.counts(ROWS)
    assert c["sync"] == {"Synced": 2, "OutOfSync": 1, "Suspended": 1}
    assert c["health"] == {"Healthy": 3, "Degraded": 1}
    assert data.counts([])["sync"] == {"Synced": 0, "OutOfSync": 0}


def test_secret_values_are_masked_whatever_the_shape_of_the_change() -> None:
    one = {"field": "configuration.secrets[0].value", "live": "hunter2", "desired": "s3cret"}
    assert data.redact(one) == {**one, "live": data.MASK, "desired": data.MASK}
    whole = {"field": "configuration.secrets", "live": [{"name": "a", "value": "hunter2"}], "desired": []}
    assert "hunter2" not in str(data.redact(whole)) and data.redact(whole)["live"][0]["name"] == "a"
    plain = {"field": "template.containers[0].image", "live": "a", "desired": "b"}
    assert data.redact(plain) is plain


@pytest.mark.parametrize(
    ("mode", "headers", "url", "allowed", "status"),
    [
        ("off", {}, "http://127.0.0.1/api/ui", False, 404),
        ("easyauth", {}, "https://x.azurewebsites.net/api/ui", False, 401),
        (
            "easyauth",
            {"X-MS-CLIENT-PRINCIPAL-ID": "id", "X-MS-CLIENT-PRINCIPAL-NAME": "ann"},
            "https://x/",
            True,
            200,
        ),
        ("loopback", {}, "http://127.0.0.1:7071/api/ui", True, 200),
        ("loopback", {}, "http://10.0.0.5:7071/api/ui", False, 403),
    ],
)
def test_sign_in_decision(mode: str, headers: dict[str, str], url: str, allowed: bool, status: int) -> None:
    d = auth.decide(mode, headers, url)
    assert (d.allowed, d.status) == (allowed, status)
    if mode == "easyauth" and allowed:
        assert d.user == "ann"


def test_commit_links_follow_the_source() -> None:
    gh = Settings(
        github_repo_owner="contoso",
        github_repo_name="ops",
        github_api_url="https://api.github.com",
        source_path=None,
    )
    assert data.commit_link(gh)("abc") == "https://github.com/contoso/ops/commit/abc"
    assert data.commit_link(gh)(None) is None
    ghes = Settings(
        github_repo_owner="c",
        github_repo_name="o",
        github_api_url="https://ghe.example/api/v3",
        source_path=None,
    )
    assert data.commit_link(ghes)("abc") == "https://ghe.example/c/o/commit/abc"
    assert data.commit_link(Settings(source_path="/tmp/ops"))("abc") is None


# -- templates ---------------------------------------------------------------------------------------

COMMON = {
    "base": "/api/ui",
    "user": "ann@contoso.com",
    "now": "now",
    "link": lambda sha: sha and f"https://g/{sha}",
}
PASS = {
    "id": "p1",
    "trigger": "timer",
    "startedAt": 1.7e9,
    "finishedAt": 1.7e9 + 1,
    "durationMs": 1000,
    "revision": "b" * 40,
    "dryRun": False,
    "outcome": "succeeded",
    "counts": {"noop": 3},
    "errors": [],
    "prune": {"enabled": False, "blocked": None},
}
EVIL = "<script>alert(1)</script>"


def overview_doc() -> dict[str, Any]:
    rows = [*ROWS, row("rb", "Suspended", rolledBack="abc123", suspendedBy="bob", suspended=True)]
    return {
        "source": {
            **data.source_of(Settings(github_repo_owner="c", github_repo_name="o")),
            "revision": "b" * 40,
            "commitUrl": "https://g/b",
        },
        "operation": None,
        "lastPass": PASS,
        "lease": {"holder": "timer-1", "expiresAt": "later", "trigger": "timer"},
        "pendingRequests": 2,
        "apps": len(rows),
        "counts": data.counts(rows),
        "rolledBack": [rows[-1]],
        "suspended": [{**ROWS[2], "suspendedReason": EVIL}],
        "failed": [],
        "recentPasses": [PASS],
    }


def fleet_doc() -> dict[str, Any]:
    target = {
        "name": "prod",
        "subscriptionId": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
        "resourceGroup": "rg-prod",
        "environment": "cae-prod",
        "path": "envs/prod",
        "origin": "targets/prod.yaml:1",
        "overrides": {},
        "lastPass": {**PASS, "firstError": EVIL, "errors": 1},
        "watch": [],
        "lease": {"holder": "timer-1", "instance": "host:42", "pending": 0, "queuedAt": None},
        "lastAgo": "1m ago",
        "commitUrl": "https://g/b",
        "queuedAgo": None,
    }
    idle = {
        **target,
        "name": "dev",
        "lastPass": None,
        "lease": {"holder": None, "pending": 2},
        "queuedAgo": "5s ago",
    }
    return {"revision": "b" * 40, "targets": [target, idle], "errors": [f"targets/x.yaml:3: {EVIL}"]}


def test_the_fleet_page_links_each_target_to_its_own_pages() -> None:
    html = render.render("targets.html", page="targets", d=fleet_doc(), **COMMON, root="/api/ui", target=None)
    assert 'href="/api/ui/t/prod/"' in html and 'href="/api/ui/t/dev/"' in html
    assert "held by host:42" in html and "2 requested, queued 5s ago" in html
    assert 'aria-current="page">Fleet' in html
    inside = render.render(
        "history.html",
        page="history",
        d={"passes": [PASS]},
        **{**COMMON, "base": "/api/ui/t/prod"},
        root="/api/ui",
        target="prod",
    )
    assert 'href="/api/ui/t/prod/apps"' in inside and 'href="/api/ui/targets"' in inside
    assert "Target <strong>prod</strong>" in inside


def detail_doc(**kw: Any) -> dict[str, Any]:
    status = {
        "syncState": "Synced",
        "health": "Healthy",
        "message": "",
        "desiredRevision": "a" * 40,
        "appliedRevision": "a" * 40,
        "lastAction": "update",
        "lastResult": "ok",
        "lastError": "boom",
        "attempts": 0,
        "nextRetryAt": None,
        "lastSynced": "t",
        "changes": [{"field": "x", "live": 1, "desired": 2}],
    }
    live = {
        "provisioningState": "Succeeded",
        "runningStatus": "Running",
        "latestRevision": "web--2",
        "latestReadyRevision": "web--1",
        "fqdn": "web.example",
        "images": ["nginx:2"],
        "managed": True,
        "revisionTag": "a" * 40,
    }
    doc = {
        "name": "web",
        "kind": "App",
        "status": status,
        "suspended": {"by": "ann", "at": "t", "reason": "rolled back to abc"},
        "sync": None,
        "live": live,
        "rolledBack": "abc",
        "wave": 0,
        "commit": {"revision": "a" * 40, "url": "https://g/a"},
        "desired": {"revision": "a" * 40, "appliedAt": "t", "url": None},
        "drift": [{"field": "template.containers[0].image", "live": EVIL, "desired": {"k": [1]}}],
        "revisions": [
            {
                "revision": "a" * 40,
                "appliedAt": "t",
                "passId": "p",
                "images": ["nginx:1"],
                "url": None,
                "current": True,
                "live": False,
                "seq": 1,
                "kind": "App",
                "name": "web",
            }
        ],
        "events": [
            {
                "at": "t",
                "kind": "App",
                "syncState": "Synced",
                "health": "Healthy",
                "action": "update",
                "result": "ok",
                "revision": "a" * 40,
                "message": "",
                "pass": "p",
                "url": None,
            }
        ],
    }
    return {**doc, **kw}


@pytest.mark.parametrize(
    ("template", "d"),
    [
        ("overview.html", overview_doc()),
        ("apps.html", data.select([*ROWS, row(EVIL)], {"q": ""})),
        ("app.html", detail_doc()),
        ("app.html", detail_doc(suspended=None, rolledBack=None, drift=[], status=None, live=None)),
        ("app.html", detail_doc(suspended=None, rolledBack=None, drift=None, desired=None, revisions=[])),
        ("operation.html", {"operation": None}),
        ("history.html", {"passes": [PASS]}),
        (
            "tombstones.html",
            {"tombstones": [{"name": "old", "kind": "App", "deletedAt": "t", "passId": "p"}]},
        ),
        ("targets.html", fleet_doc()),
    ],
)
def test_every_page_renders_with_landmarks_and_escapes(template: str, d: dict[str, Any]) -> None:
    html = render.render(template, page="x", d=d, **COMMON)
    for landmark in ("<header", '<nav aria-label="Main"', '<main id="main"', "<footer"):
        assert landmark in html
    assert "<script>alert" not in html, "names and messages are escaped"
    assert "http://" not in html and "//cdn" not in html, "every asset is ours"
    assert html.count("<script ") == 1 and 'src="/api/ui/static/app.js?v=' in html


def test_operation_page_shows_waves_and_hooks() -> None:
    op = {
        "revision": "c" * 40,
        "status": "Running",
        "phase": "Sync",
        "wave": 1,
        "done": ["PreSync/Job/migrate"],
        "executions": {},
        "message": "",
        "startedAt": 1.7e9,
        "updatedAt": None,
        "pending": ["App/web"],
        "attempts": 0,
        "retryLimit": None,
        "nextRetryAt": None,
    }
    d = {
        "operation": op,
        "commitUrl": None,
        "pendingByWave": [{"wave": 1, "resources": ["App/web"]}],
        "hooks": [{"task": "PreSync/Job/migrate", "execution": "migrate-x", "done": True}],
    }
    html = render.render("operation.html", page="operation", d=d, **COMMON)
    assert "phase Sync, wave 1" in html and "Wave 1" in html and "migrate-x" in html


def test_static_assets_are_ours_and_nothing_else() -> None:
    css, kind = render.static("app.css") or (b"", "")
    assert kind.startswith("text/css") and b"--fg" in css
    for bad in ("../render.py", "..", ".hidden", "app.py", "templates/base.html", "missing.css"):
        assert render.static(bad) is None, bad
    assert len(render.asset_version()) == 10


def test_importing_the_function_app_loads_no_template_engine() -> None:
    code = "import sys, function_app; print(any(m.startswith(('jinja2', 'synoscd.ui')) for m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "False", out.stderr


# -- what rollback keeps ---------------------------------------------------------------------------


def _write(status: AppStatus | None, revision: str, action: str = "update", wave: int = 0) -> AppStatus:
    act = Action("App", "web", action, "drift", wave=wave, body={"properties": {"v": revision}})
    plan = Plan(revision, (act,), False, None)
    prev = {status.row_key: status} if status else {}
    out = Outcome(
        act,
        "ok",
        body={
            "properties": {
                "provisioningState": "Succeeded",
                "runningStatus": "Running",
                "latestRevisionName": "r",
                "latestReadyRevisionName": "r",
            }
        },
    )
    changed = record.statuses(plan, [out], prev, revision, "p", 1.0, lambda *_: None)
    (new,) = changed or [status]
    bodies = record.applied_bodies([out], {new.row_key: new}, "p", 1.0)
    assert [b.revision for b in bodies] == [revision] and bodies[0].body == {"properties": {"v": revision}}
    return new


def test_each_new_revision_takes_the_next_slot_and_a_reapply_keeps_it() -> None:
    s1 = _write(None, "r1", "create")
    assert s1.extra["applied"] == [1, "r1"]
    s2 = _write(s1, "r2", wave=3)
    assert s2.extra["applied"] == [2, "r2"] and s2.extra["wave"] == 3
    s3 = _write(s2, "r2", "heal")
    assert s3.extra["applied"] == [2, "r2"], "the same revision overwrites its own slot"
    assert s1.extra["applied"] == [1, "r1"], "the previous status row is not mutated"


def test_failed_and_skipped_writes_keep_no_body() -> None:
    act = Action("App", "web", "update", "drift", body={"x": 1})
    failed = Outcome(act, "failed", "boom")
    status = AppStatus("web", extra={"applied": [3, "r"]})
    assert record.applied_bodies([failed], {status.row_key: status}, "p", 1.0) == []
    hook = Outcome(Action("Job", "m", "run-hook", "hook", body={"x": 1}), "ok")
    assert record.applied_bodies([hook], {}, "p", 1.0) == []


def _kept(*revisions: str) -> list[AppliedBody]:
    return [AppliedBody("App", "web", len(revisions) - i, r, 0.0, "p", {}) for i, r in enumerate(revisions)]


def test_previous_is_the_revision_before_the_one_running() -> None:
    kept = _kept("r3", "r2", "r1")
    assert choose(kept, "r3", None, "web").revision == "r2"
    assert choose(kept, "r2", None, "web").revision == "r1", "a second --previous steps further back"
    assert choose(kept, "unknown", None, "web").revision == "r3"
    with pytest.raises(CliError) as err:
        choose(kept, "r1", None, "web")
    assert err.value.code == 1 and "synos history web" in str(err.value)


def test_to_matches_a_unique_prefix() -> None:
    kept = [
        AppliedBody("App", "web", 2, "abc123", 0.0, "p", {}),
        AppliedBody("App", "web", 1, "abd456", 0.0, "p", {}),
    ]
    assert choose(kept, None, "ABD", "web").revision == "abd456"
    with pytest.raises(CliError, match="ambiguous"):
        choose(kept, None, "ab", "web")
    with pytest.raises(CliError, match="kept: abc123, abd456"):
        choose(kept, None, "fff", "web")


def test_rollback_reason_marks_the_app() -> None:
    from synoscd.state.applied import is_rollback

    assert is_rollback("rolled back to abc") and not is_rollback("migration") and not is_rollback(None)


def test_with_the_dashboard_off_nothing_is_served() -> None:
    from synoscd.engine.runtime import get_runtime, reset_runtime
    from synoscd.ui import http

    get_runtime(Settings(ui_auth="off"))
    try:
        for answer in (
            http.ui("apps", {}, {}, "http://127.0.0.1/api/ui/apps"),
            http.api("apps", {}, {}, "x"),
        ):
            assert answer[0] == 404 and b"SYNOSCD_UI_AUTH=easyauth" in answer[2]
        css = http.ui("static/app.css", {}, {}, "http://127.0.0.1/api/ui/static/app.css")
        assert css[0] == 404, "not even the assets"
    finally:
        reset_runtime()
