"""The first hour of a new user (issue 13), each point as a test through the real `synos` command in a
subprocess against the session's stack: exit codes per outcome, unknown names, tables a person can
read, errors that name the fix (stack down, a garbage connection string, a wrong resource group),
local sources, `validate` without a path, `--count`, and `sync` showing its plan before it asks."""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import APP_YAML, REPO_ROOT, LaunchedStack
from tests.e2e.test_cli import OWNER, Cli
from tests.e2e.test_readme import NOISE

pytestmark = pytest.mark.e2e

DEAD = "127.0.0.1:9"  # the discard port: nothing listens there
BROKEN = "apiVersion: synoscd.io/v1alpha1\nkind: App\nmetadata:\n  name: broken\nspec:\n  containers: [\n"
REPR = re.compile(r"[{\[]'|'[}\]]|\bTrue\b|\bFalse\b|\bNone\b")


class Synos(Cli):
    """`synos` run in this process (main(argv), as the console script does) for speed; `sub=True`
    runs it in a subprocess where what reaches the terminal is the point (log records, warnings)."""

    def run(  # type: ignore[override]
        self,
        *args: str,
        check: int | None = 0,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        sub: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        if sub:
            return super().run(*args, check=check, env=env, timeout=timeout)
        from synoscd.cli.main import main
        from synoscd.engine.runtime import reset_runtime

        wanted = env or self.env
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(wanted)
        reset_runtime()  # settings are read once per runtime: a new one per command, as per process
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                try:
                    code = main(list(args))
                except SystemExit as exc:  # argparse
                    code = int(exc.code or 0)
        finally:
            os.environ.clear()
            os.environ.update(saved)
            reset_runtime()
        done = subprocess.CompletedProcess(["synos", *args], code, out.getvalue(), err.getvalue())
        if check is not None:
            assert code == check, f"synos {' '.join(args)} -> {code}\n{done.stdout}\n{done.stderr}"
        return done


@pytest.fixture
def cli(fresh_stack: LaunchedStack) -> Iterator[Synos]:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.1})
    yield Synos(fresh_stack)


def quiet(out: subprocess.CompletedProcess[str]) -> None:
    """No traceback and no SDK log line, on either stream."""
    noise = [p.pattern for p in NOISE if p.search(out.stdout) or p.search(out.stderr)]
    assert not noise, f"{noise}\n{out.stdout}\n{out.stderr}"


def short_error(out: subprocess.CompletedProcess[str]) -> str:
    quiet(out)
    lines = out.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2, out.stderr
    return out.stderr


# -- 3. exit codes that hold everywhere -----------------------------------------------------------


def test_exit_codes_per_outcome(cli: Synos) -> None:
    assert cli.run("diff", check=1).returncode == 1, "a difference"
    assert cli.json("sync", "--dry-run", check=1)["dryRun"] is True, "a dry run that would change things"
    assert cli.json("sync", "--yes")["outcome"] == "succeeded"
    assert cli.run("diff").returncode == 0 and cli.run("sync", "--dry-run").returncode == 0

    cli.commit({"apps/broken.yaml": BROKEN})
    out = cli.run("diff", check=1)
    quiet(out)
    line = next(line for line in out.stdout.splitlines() if line.startswith("apps/broken.yaml:"))
    assert ": :" not in line and not line.endswith(": "), "no empty parts in file:line: field: message"
    assert cli.run("sync", "--dry-run", check=1).returncode == 1, "invalid manifests are found, dry or not"
    partial = cli.json("sync", "--yes", check=1)
    assert partial["outcome"] == "partial" and partial["errors"]

    cli.commit({"apps/broken.yaml": None, "apps/alpha.yaml": APP_YAML.format(name="alpha", tag="2")})
    cli.stack.admin(
        "arm",
        "POST",
        "lro-failures",
        {"path": "/containerApps/alpha$", "count": 1, "code": "Failed", "message": "boom"},  # PUT or PATCH
    )
    failed = cli.json("sync", "--yes", check=1)
    assert failed["outcome"] == "failed", failed["results"]
    # (An app skipped by backoff: exit 1 too; tests/unit/test_cli_output.py checks that rule, since
    # when the engine backs off is the engine's business.)

    empty = f"empty-{uuid.uuid4().hex[:6]}"
    cli.stack.admin("github", "POST", "repos", {"owner": OWNER, "name": empty})
    env = {**cli.env, "SYNOSCD_GITHUB_REPO_NAME": empty, "SYNOSCD_STATE_TABLE": f"e{uuid.uuid4().hex[:16]}"}
    nothing = json.loads(cli.run("diff", "-o", "json", env=env, check=None).stdout)
    assert nothing["warnings"] == [f"no manifests found under {OWNER}/{empty}:apps at {nothing['revision']}"]
    assert "warning: no manifests found under" in cli.run("diff", env=env, check=None).stdout


# -- 4. names are checked -------------------------------------------------------------------------


def test_unknown_names_are_refused_with_did_you_mean(cli: Synos) -> None:
    cli.json("sync", "--yes")
    for args in (
        ["suspend", "alpah", "--yes"],
        ["resume", "alpah", "--yes"],
        ["describe", "alpah"],
        ["status", "app", "alpah"],
        ["logs", "app", "alpah"],
        ["diff", "--app", "alpah"],
        ["sync", "--dry-run", "--app", "alpah"],
        ["sync", "--app", "alpah", "--yes"],
        ["restore", "alpah", "--yes"],
        ["reconcile", "app", "alpah", "--local", "--yes"],
        ["reconcile", "app", "alpah"],
    ):
        err = short_error(cli.run(*args, check=2))
        assert "no app or job named 'alpah'" in err and "did you mean 'alpha'?" in err, (args, err)
    assert "did you mean 'alpha'?" in cli.run("suspend", "Alpha", "--yes", check=2).stderr, "case counts"
    assert "did you mean" not in cli.run("suspend", "zzzzzz", "--yes", check=2).stderr
    assert {a["syncState"] for a in cli.json("get", "apps")["apps"]} == {"Synced"}, "nothing was suspended"
    assert cli.json("history")["passes"][0]["trigger"] == "cli" and len(cli.json("history")["passes"]) == 1
    # A name only in Git (not deployed yet) is known: it may be suspended before its first sync.
    cli.commit({"apps/delta.yaml": APP_YAML.format(name="delta", tag="1")})
    assert cli.json("suspend", "delta", "--yes")["suspended"] is True


# -- 5. output a person can read --------------------------------------------------------------------


def test_tables_cut_long_values_with_an_ellipsis_and_wide_shows_them(cli: Synos) -> None:
    long_path = "/tmp/" + "a-very-long-folder-name/" * 4 + "ops"
    env = {**cli.env, "SYNOSCD_SOURCE_PATH": long_path}
    table = cli.run("config", env=env).stdout
    row = next(line for line in table.splitlines() if line.startswith("SYNOSCD_SOURCE_PATH"))
    assert "…" in row and long_path not in row, "cut, and visibly so"
    wide = cli.run("config", "-o", "wide", env=env).stdout
    assert long_path in wide and "…" not in next(
        line for line in wide.splitlines() if line.startswith("SYNOSCD_SOURCE_PATH")
    )
    assert f"manifests: the local folder {long_path}/apps" in wide

    cli.json("sync", "--yes")
    cli.json("set", "--protected-apps", "a,b", "--yes")
    for args in (["history"], ["get", "status"], ["set", "--show"], ["describe", "alpha"], ["get", "apps"]):
        out = cli.run(*args).stdout
        assert not REPR.search(out), (args, out)
    assert "create=3" in cli.run("history").stdout and "a, b" in cli.run("set", "--show").stdout


def test_count_alone_refreshes_that_many_times(cli: Synos) -> None:
    cli.json("sync", "--yes")
    out = cli.run("status", "all", "--count", "2", "--refresh", "0.1", "-o", "json").stdout
    assert len([json.loads(c) for c in out.replace("}\n{", "}\x00{").split("\x00")]) == 2


def test_sync_shows_the_plan_then_asks(cli: Synos) -> None:
    """On a terminal, `synos sync` prints what it would do before the question; 'n' writes nothing."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "synoscd", "sync"],
        cwd=REPO_ROOT,
        env=cli.env,
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 90
    while b"[y/N]" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if ready:
            try:
                seen += os.read(leader, 4096)
            except OSError:
                break
    text = seen.decode(errors="replace")
    assert "[y/N]" in text, text
    assert text.index("alpha") < text.index("Apply these 3 changes now?"), "the plan comes first"
    os.write(leader, b"n\n")
    assert proc.wait(timeout=30) == 2
    os.close(leader)
    assert cli.json("history")["passes"] == [], "answered no: no pass ran"


# -- 6. errors that name the fix ------------------------------------------------------------------


def _stack_down(cli: Synos, tmp: Path) -> dict[str, str]:
    """What a shell that sourced .stack.env sees after the stack stopped: nothing answers, and the
    certificate file is gone."""
    return {
        **cli.env,
        "SYNOSCD_ARM_ENDPOINT": f"https://{DEAD}",
        "SYNOSCD_GITHUB_API_URL": f"https://{DEAD}",
        "SYNOSCD_KEYVAULT_URL": f"https://{DEAD}",
        "IDENTITY_ENDPOINT": f"https://{DEAD}/msi/token",
        "REQUESTS_CA_BUNDLE": str(tmp / "gone" / "cert.pem"),
        "SYNOSCD_STATE_STORE": "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        f"AccountKey=a2V5;TableEndpoint=http://{DEAD}/devstoreaccount1;",
    }


def test_errors_name_the_setting_with_the_stack_down(cli: Synos, tmp_path: Path) -> None:
    down = _stack_down(cli, tmp_path)
    for args in (
        ["get", "apps"],
        ["diff"],
        ["status", "all"],
        ["get", "source"],
        ["suspend", "alpha", "--yes"],
        ["sync", "--yes"],
        ["reconcile", "source"],
    ):
        err = short_error(cli.run(*args, env=down, check=2, sub=args[0] in ("diff", "suspend")))
        assert re.search(r"SYNOSCD_[A-Z_]+", err) and "make up" in err, (args, err)
        assert "cannot reach" in err, (args, err)
    # Only the state store down: ARM and the source still answer; the error names the store.
    only_table = {**cli.env, "SYNOSCD_STATE_STORE": down["SYNOSCD_STATE_STORE"]}
    assert "SYNOSCD_STATE_STORE" in short_error(cli.run("diff", env=only_table, check=2))
    boot = cli.run("bootstrap", env=down, check=1, sub=True)
    quiet(boot)
    assert "CANNOT REACH" in boot.stdout and "grant" not in boot.stdout and "None" not in boot.stdout
    assert "(same as" in boot.stdout, "a long error repeated on every row is shown once"
    # --debug shows what the SDKs said, tracebacks included.
    assert "Traceback" in cli.run("--debug", "get", "apps", env=down, check=None, sub=True).stderr


def test_a_garbage_connection_string_names_the_setting(cli: Synos) -> None:
    env = {**cli.env, "SYNOSCD_STATE_STORE": "garbage"}
    err = short_error(cli.run("get", "apps", env=env, check=2, sub=True))
    assert "SYNOSCD_STATE_STORE" in err and "connection string" in err
    doc = json.loads(cli.run("bootstrap", "-o", "json", env=env, check=1).stdout)
    failed = {c["check"]: c for c in doc["checks"] if not c["ok"]}
    assert set(failed) == {"state table"} and "SYNOSCD_STATE_STORE" in failed["state table"]["fix"]


def test_a_wrong_resource_group_is_an_error_naming_the_setting(cli: Synos) -> None:
    cli.json("sync", "--yes")
    env = {**cli.env, "SYNOSCD_AZURE_RESOURCE_GROUP": "no-such-group"}
    for args in (["status", "all"], ["diff"], ["describe", "alpha"]):
        err = short_error(cli.run(*args, env=env, check=2, sub=args == ["status", "all"]))
        assert "ResourceGroupNotFound" in err and "SYNOSCD_AZURE_RESOURCE_GROUP" in err, (args, err)
    doc = json.loads(cli.run("bootstrap", "-o", "json", env=env, check=1).stdout)
    group = next(c for c in doc["checks"] if c["check"] == "resource group")
    assert group["problem"] == "not-found" and "SYNOSCD_AZURE_RESOURCE_GROUP (no-such-group)" in group["fix"]
    env = {**cli.env, "SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT": "no-such-env"}
    assert "SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT" in short_error(cli.run("diff", env=env, check=2))


def test_bootstrap_with_nothing_set_suggests_no_command_with_none() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNOSCD_")}
    out = subprocess.run(
        [sys.executable, "-m", "synoscd", "bootstrap"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr
    quiet(out)
    assert "None" not in out.stdout and "SYNOSCD_AZURE_RESOURCE_GROUP" in out.stdout


# -- 2. local sources, documented and forgiving -------------------------------------------------------


def test_a_local_source_says_which_setting_to_change(cli: Synos) -> None:
    manifests = REPO_ROOT / "examples" / "apps"
    env = {**cli.env, "SYNOSCD_SOURCE_PATH": str(manifests)}
    err = short_error(cli.run("diff", env=env, check=2))
    assert "SYNOSCD_GITHUB_CONFIG_PATH=." in err and f"SYNOSCD_SOURCE_PATH={manifests.parent}" in err
    fixed = json.loads(
        cli.run("diff", "-o", "json", env={**env, "SYNOSCD_GITHUB_CONFIG_PATH": "."}, check=1).stdout
    )
    assert {a["name"] for a in fixed["actions"]} >= {"demo-app", "orders-api"}
    parent_env = {**env, "SYNOSCD_SOURCE_PATH": str(manifests.parent)}
    parent = json.loads(cli.run("diff", "-o", "json", env=parent_env, check=1).stdout)
    assert {a["name"] for a in parent["actions"]} == {a["name"] for a in fixed["actions"]}


# -- 7. validate with no path ----------------------------------------------------------------------


def test_validate_without_a_path_reads_the_configured_folder_or_apps_and_skips_tools(
    cli: Synos, tmp_path: Path
) -> None:
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "alpha.yaml").write_text(APP_YAML.format(name="alpha", tag="1"))
    for tool in ("node_modules/pkg", ".venv/lib", "env/lib", ".git", "apps/node_modules"):
        (tmp_path / tool).mkdir(parents=True)
        (tmp_path / tool / "bad.yaml").write_text(BROKEN)
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    env = {k: v for k, v in cli.env.items() if k != "SYNOSCD_SOURCE_PATH"}

    def validate(
        cwd: Path, extra: dict[str, str] | None = None, check: int = 0
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "-m", "synoscd", "validate", "-o", "json"],
            cwd=cwd,
            env={**env, "PYTHONPATH": str(REPO_ROOT), **(extra or {})},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == check, out.stdout + out.stderr
        return out

    doc = json.loads(validate(tmp_path).stdout)
    assert doc["valid"] is True and [r["file"] for r in doc["resources"]] == ["apps/alpha.yaml"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert "synos validate DIR" in validate(elsewhere, check=2).stderr
    configured = json.loads(validate(elsewhere, {"SYNOSCD_SOURCE_PATH": str(tmp_path)}).stdout)
    assert [r["name"] for r in configured["resources"]] == ["alpha"]
    (tmp_path / "apps" / "broken.yaml").write_text(BROKEN)
    assert json.loads(validate(tmp_path, check=1).stdout)["errors"][0]["file"] == "apps/broken.yaml"
