"""The pure parts of the first hour: table cells for people, truncation with an ellipsis, error lines,
"did you mean", exit codes per outcome, the heartbeat rule, error classification, `synos validate`'s
folder walk and the local source's message."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from synoscd.cli.output import ELLIPSIS, MAX_CELL, cell, emit, error_line, fit, short_rev, suggest, table
from synoscd.cli.sync import pass_exit_code
from synoscd.errors import problem, unreachable
from synoscd.manifests.tree import read_tree
from synoscd.sources.local import LocalSource
from synoscd.sources.snapshot import SourceError
from synoscd.state.heartbeat import Beat, serving


def render(fmt: str, headers: list[str], rows: list[list[object]]) -> str:
    out = io.StringIO()
    emit(None, fmt, lambda _d: table(headers, rows), stream=out)
    return out.getvalue()


def test_cells_read_as_words_not_python() -> None:
    assert cell(None) == "-" and cell("") == "-"
    assert cell(True) == "yes" and cell(False) == "no"
    assert cell({"create": 3, "ok": 3}) == "create=3, ok=3"
    assert cell(["synoscd-operator", "payments"]) == "synoscd-operator, payments"
    assert cell([]) == "-" and cell(0) == "0"


def test_a_long_value_is_cut_with_an_ellipsis_and_wide_shows_it_whole() -> None:
    value = "synoscd-demo/ops:apps-" + "x" * 80
    narrow = render("table", ["source"], [[value]])
    row = narrow.splitlines()[1]
    assert row.endswith(ELLIPSIS) and len(row) == MAX_CELL and value not in narrow
    assert render("wide", ["source"], [[value]]).splitlines()[1] == value
    assert render("table", ["a"], [["synoscd-demo/ops:apps"]]).splitlines()[1] == "synoscd-demo/ops:apps"


@given(st.text(min_size=0, max_size=200))
def test_fit_never_cuts_silently(text: str) -> None:
    out = fit(text, 20)
    whole = " ".join(text.split()) if any(c.isspace() and c != " " for c in text) else text
    assert not any(c.isspace() and c != " " for c in out), "one line, whatever the value held"
    assert len(out) <= 20
    if out != whole:  # cut: visibly, and only at the end
        assert out.endswith(ELLIPSIS) and whole.startswith(out[:-1]) and len(whole) > 20


def test_multi_line_values_stay_on_their_row() -> None:
    assert render("table", ["m"], [["line one\nline two"]]).splitlines()[1] == "line one line two"


def test_revisions_are_short_in_tables_and_whole_in_wide() -> None:
    sha = "6115ad79fac60b6fd69573a6ce96ae653070e015"
    assert short_rev(sha) == "6115ad79fac6" and short_rev(None) == "-"
    assert short_rev("sha256:" + "ab" * 32) == "sha256:abababababab"
    out = io.StringIO()
    emit(None, "wide", lambda _d: short_rev(sha), stream=out)
    assert out.getvalue().strip() == sha


def test_error_lines_leave_out_empty_parts() -> None:
    assert error_line({"file": "apps/a.yaml", "line": 5, "field": "spec.x", "message": "bad"}) == (
        "apps/a.yaml:5: spec.x: bad"
    )
    assert error_line({"file": "apps/broken.yaml", "line": 5, "field": "", "message": "YAML"}) == (
        "apps/broken.yaml:5: YAML"
    )
    assert (
        error_line({"file": "apps/b.yaml", "line": None, "field": None, "message": "m"}) == "apps/b.yaml: m"
    )


def test_did_you_mean() -> None:
    names = ["alpha", "bravo", "demo-app"]
    assert suggest("alpah", names) == "; did you mean 'alpha'?"
    assert suggest("Demo-App", names) == "; did you mean 'demo-app'?"
    assert suggest("zzzz", names) == ""


# -- exit codes -------------------------------------------------------------------------------------


def doc(**kw: object) -> dict[str, object]:
    base: dict[str, object] = {"dryRun": False, "outcome": "succeeded", "errors": [], "actions": []}
    return {**base, **kw}


NOOP = {"action": "noop", "reason": "in-sync"}


@pytest.mark.parametrize(
    ("case", "want"),
    [
        (doc(actions=[NOOP]), 0),
        (doc(outcome="partial"), 1),
        (doc(outcome="failed"), 1),
        (doc(errors=[{"file": "a.yaml"}]), 1),
        (doc(actions=[NOOP, {"action": "skip", "reason": "backoff"}]), 1),
        (doc(dryRun=True, actions=[NOOP]), 0),
        (doc(dryRun=True, actions=[{"action": "update", "reason": "drift"}]), 1),
        (doc(dryRun=True, actions=[{"action": "run-hook", "reason": "hook"}]), 1),
        (doc(dryRun=True, errors=[{"file": "a.yaml"}]), 1),
        (doc(dryRun=True, actions=[{"action": "skip", "reason": "suspended"}]), 0),
        ({"queued": True}, 1),
    ],
    ids=[
        "in-sync",
        "partial",
        "failed",
        "invalid-manifest",
        "backoff",
        "dry-nothing",
        "dry-diff",
        "dry-hook",
        "dry-invalid",
        "dry-suspended",
        "queued",
    ],
)
def test_exit_code_per_outcome(case: dict[str, object], want: int) -> None:
    assert pass_exit_code(case) == want


# -- heartbeat --------------------------------------------------------------------------------------


def test_someone_serves_while_the_timer_ticks_or_a_pass_runs() -> None:
    now = 1_000_000.0
    assert serving(None, lease_held=False, now=now)[0] is False
    assert serving(None, lease_held=True, now=now)[0] is True
    assert serving(Beat(now - 8, 5), False, now)[0] is True
    alive, why = serving(Beat(now - 30, 5), False, now)
    assert alive is False and "30 s ago" in why and "every ~5 s" in why
    assert Beat(now - 120, 60).fresh(now) and not Beat(now - 126, 60).fresh(now)


# -- error classification ---------------------------------------------------------------------------


def test_problems_are_told_apart_through_the_exception_chain() -> None:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    def wrapped(inner: BaseException) -> RuntimeError:
        try:
            raise inner
        except BaseException as exc:
            try:
                raise RuntimeError("adapter says") from exc
            except RuntimeError as outer:
                return outer

    assert problem(wrapped(ConnectionRefusedError(111, "Connection refused"))) == "unreachable"
    assert unreachable(wrapped(ConnectionRefusedError(111, "Connection refused"))) == "connection refused"
    bundle = OSError("Could not find a suitable TLS CA certificate bundle, invalid path: /gone/cert.pem")
    assert "/gone/cert.pem does not exist" in (unreachable(ClientAuthenticationError(error=bundle)) or "")
    assert problem(ServiceRequestError("x")) == "unreachable"
    assert problem(wrapped(socket.gaierror(-2, "Name or service not known"))) == "unreachable"
    forbidden = HttpResponseError("no")
    forbidden.status_code = 403
    assert problem(wrapped(forbidden)) == "refused"
    missing = HttpResponseError("gone")
    missing.status_code = 404
    assert problem(missing) == "not-found"
    assert problem(ValueError("x")) == "error"


# -- validate's walk and the local source -------------------------------------------------------------


def test_the_folder_walk_skips_tools_hidden_folders_and_virtual_environments(tmp_path: Path) -> None:
    for folder in ("apps", "node_modules/x", ".git", ".venv", "venv2", "apps/__pycache__"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "m.yaml").write_text("a: 1\n")
    (tmp_path / "venv2" / "pyvenv.cfg").write_text("home = /usr\n")
    assert sorted(read_tree(tmp_path)) == ["apps/m.yaml"]


def test_a_local_source_pointing_at_the_manifests_folder_says_what_to_set(tmp_path: Path) -> None:
    apps = tmp_path / "apps"
    apps.mkdir()
    (apps / "a.yaml").write_text("a: 1\n")
    with pytest.raises(SourceError) as err:
        LocalSource(apps, "apps").snapshot()
    assert "SYNOSCD_GITHUB_CONFIG_PATH=." in str(err.value) and f"SYNOSCD_SOURCE_PATH={tmp_path}" in str(
        err.value
    )
    assert set(LocalSource(apps, ".").snapshot().files) == {"a.yaml"}
    assert set(LocalSource(tmp_path, "apps").snapshot().files) == {"apps/a.yaml"}
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="check both settings"):
        LocalSource(tmp_path / "empty", "apps").snapshot()


def test_the_synos_process_collects_less_and_freezes_what_it_leaves() -> None:
    """`entry()` (the console script and `python -m synoscd`) tunes the collector for a short-lived
    process and freezes the heap when the command is done, so the interpreter's teardown does not
    collect it all again; it returns main's exit code."""
    probe = (
        "import gc\n"
        "from synoscd.cli import main as m\n"
        "m.main = lambda argv=None: 3\n"
        "before = gc.get_threshold()\n"
        "code = m.entry()\n"
        "print(before == (700, 10, 10), gc.get_threshold(), gc.get_freeze_count() > 0, code)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True (50000, 20, 20) True 3", out.stdout
