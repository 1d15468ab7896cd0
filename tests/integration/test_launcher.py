"""The launcher's contract: `python -m emulators up --env-file PATH` writes PATH once everything
answers and, on SIGTERM or Ctrl-C, stops every process it started."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emulators import launcher
from emulators.launcher import read_env_file
from tests.conftest import REPO_ROOT, launch_stack, pid_alive, stop_stack

pytestmark = pytest.mark.integration

REQUIRED = [
    "SYNOSCD_ARM_ENDPOINT",
    "SYNOSCD_AZURE_SUBSCRIPTION_ID",
    "SYNOSCD_AZURE_RESOURCE_GROUP",
    "SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT",
    "SYNOSCD_AZURE_MANAGED_IDENTITY_CLIENT_ID",
    "SYNOSCD_GITHUB_API_URL",
    "SYNOSCD_GITHUB_APP_ID",
    "SYNOSCD_GITHUB_APP_INSTALLATION_ID",
    "SYNOSCD_GITHUB_APP_PRIVATE_KEY",
    "SYNOSCD_GITHUB_REPO_OWNER",
    "SYNOSCD_GITHUB_REPO_NAME",
    "SYNOSCD_KEYVAULT_URL",
    "SYNOSCD_STATE_STORE",
    "REQUESTS_CA_BUNDLE",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
]


def assert_all_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 10
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in pids if pid_alive(p)], "launcher processes left running"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_env_file_is_complete_and_every_process_stops(tmp_path: Path, sig: int) -> None:
    launched = launch_stack(tmp_path / "stack.env", tmp_path / "launcher.log")
    env = launched.env
    assert set(REQUIRED) <= set(env)
    assert all(
        env[k].startswith("https://127.0.0.1:")
        for k in (
            "SYNOSCD_ARM_ENDPOINT",
            "SYNOSCD_GITHUB_API_URL",
            "SYNOSCD_KEYVAULT_URL",
            "IDENTITY_ENDPOINT",
        )
    )
    assert "TableEndpoint=http://127.0.0.1:" in env["SYNOSCD_STATE_STORE"]
    assert env["SYNOSCD_GITHUB_APP_PRIVATE_KEY"].count("\n") > 10, "a multi-line value survives the file"
    pids = [int(p) for p in env["SYNOSCD_EMULATOR_PIDS"].split()]
    assert len(pids) == 3 and pids[0] == launched.proc.pid  # the launcher, Azurite, the blob Azurite
    assert all(pid_alive(p) for p in pids)
    assert stop_stack(launched.proc, sig) == 0
    assert_all_gone(pids)
    assert not launched.env_file.exists(), "a stopped stack leaves no stale settings behind"


def test_sourced_env_file_lets_a_plain_sdk_script_reach_the_stand_ins(tmp_path: Path) -> None:
    launched = launch_stack(tmp_path / "stack.env", tmp_path / "launcher.log")
    script = (
        "import os\n"
        "from azure.identity import DefaultAzureCredential\n"
        "from azure.mgmt.appcontainers import ContainerAppsAPIClient\n"
        "c = ContainerAppsAPIClient(DefaultAzureCredential(), os.environ['SYNOSCD_AZURE_SUBSCRIPTION_ID'],"
        " base_url=os.environ['SYNOSCD_ARM_ENDPOINT'])\n"
        "print(c.managed_environments.get(os.environ['SYNOSCD_AZURE_RESOURCE_GROUP'],"
        " os.environ['SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT']).name)\n"
    )
    try:
        out = subprocess.run(
            ["bash", "-c", f'set -e; source {launched.env_file}; exec {sys.executable} -c "$0"', script],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin"},
        )
        assert out.returncode == 0, out.stderr
        assert (
            out.stdout.strip() == read_env_file(launched.env_file)["SYNOSCD_AZURE_CONTAINER_APP_ENVIRONMENT"]
        )
    finally:
        stop_stack(launched.proc)


def test_orphaned_launcher_stops_itself(tmp_path: Path) -> None:
    # A shell starts the launcher in the background and exits: the launcher must not outlive it for long.
    env_file = tmp_path / "stack.env"
    shell = subprocess.Popen(
        [
            "bash",
            "-c",
            f"{sys.executable} -m emulators up --env-file {env_file} >/dev/null 2>&1 & "
            f"while [ ! -f {env_file} ]; do sleep 0.05; done",
        ],
        cwd=REPO_ROOT,
    )
    shell.wait(timeout=90)
    pids = [int(p) for p in read_env_file(env_file)["SYNOSCD_EMULATOR_PIDS"].split()]
    assert_all_gone(pids)


def test_the_default_repository_accepts_admin_commits(tmp_path: Path) -> None:
    """The launcher's repository has no git identity of its own; admin commits must work all the same."""
    import requests

    from emulators.launcher import GITHUB_OWNER, GITHUB_REPO, start_stack

    with start_stack(tmp_path / "stack", with_azurite=False) as stack:
        url = stack.servers["github"].url
        ca = stack.env["REQUESTS_CA_BUNDLE"]
        resp = requests.post(
            f"{url}/_admin/repos/{GITHUB_OWNER}/{GITHUB_REPO}/commits",
            json={"files": {"apps/web.yaml": "kind: App\n"}, "message": "add web"},
            verify=ca,
            timeout=30,
        )
        assert resp.status_code == 201, resp.text
        sha = resp.json()["sha"]
        log = subprocess.run(
            ["git", "-C", stack.env["SYNOSCD_EMULATOR_GITHUB_REPO_DIR"], "log", "-1", "--format=%H %an"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split(maxsplit=1)
        assert log[0] == sha and log[1].strip() == "SynosCD Test"


def _committed(repo: str) -> list[str]:
    out = subprocess.run(
        ["git", "-C", repo, "ls-tree", "-r", "--name-only", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.split()


def test_the_repository_starts_with_a_given_folder_or_nothing(tmp_path: Path) -> None:
    # The default, examples/apps, is what `make up` commits: tests/e2e/test_readme.py sees it deployed.
    mine = tmp_path / "mine"
    (mine / "team").mkdir(parents=True)
    (mine / "web.yaml").write_text("kind: App\n")
    (mine / "team" / "worker.yml").write_text("kind: App\n")
    (mine / "notes.txt").write_text("not a manifest\n")
    for extra, want in (
        (("--ops", str(mine)), ["apps/team/worker.yml", "apps/web.yaml"]),
        (("--no-ops",), []),
    ):
        run = tmp_path / f"run{len(extra)}-{bool(extra) and extra[0]}"
        run.mkdir()
        launched = launch_stack(run / "stack.env", run / "launcher.log", extra=extra)
        try:
            assert _committed(launched.env["SYNOSCD_EMULATOR_GITHUB_REPO_DIR"]) == want, extra
            assert "SYNOSCD_EMULATOR_FUNCTIONS_URL" not in launched.env, "no Functions host unless asked"
        finally:
            stop_stack(launched.proc)


def test_up_refuses_an_ops_folder_without_manifests(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "emulators", "up", "--env-file", str(tmp_path / "x.env"), "--ops", str(empty)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert (
        out.returncode == 2 and "no .yaml or .yml manifests" in out.stderr and "Traceback" not in out.stderr
    )
    assert not (tmp_path / "x.env").exists()


def test_azurite_starts_on_other_ports_when_one_was_taken_meanwhile(monkeypatch: pytest.MonkeyPatch) -> None:
    # A port free_port() chose, taken by someone else before Azurite binds it (parallel tests do
    # this): bound, not listening, so Azurite cannot bind it and a connect to it is refused.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    port = taken.getsockname()[1]
    chosen = iter([port])
    real = launcher.free_port
    monkeypatch.setattr(launcher, "free_port", lambda: next(chosen, None) or real())
    try:
        azurite = launcher.start_azurite()
        try:
            ports = (azurite.blob_port, azurite.queue_port, azurite.table_port)
            assert port not in ports and azurite.proc.poll() is None
            for p in ports:
                launcher.wait_for_port(p, 5, azurite.proc)
        finally:
            azurite.stop()
    finally:
        taken.close()


def test_a_child_started_to_die_with_its_parent_goes_when_the_parent_is_sigkilled() -> None:
    # The Functions host's queue workers are started so: a host killed by SIGKILL cannot stop them.
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "from emulators.children import DIE_WITH_PARENT\n"
            "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
            " preexec_fn=DIE_WITH_PARENT)\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(60)\n",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert pid_alive(child)
    parent.kill()
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while pid_alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pid_alive(child), f"child {child} outlived its SIGKILLed parent"
