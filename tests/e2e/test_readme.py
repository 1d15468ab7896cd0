"""The README alone takes a newcomer from a clone to a webhook-triggered sync on the local stack.

This test does what they would: `make up` (in its own process group, as in a terminal), then every
command of the README's walkthrough pasted one by one into one bash session, then every example of
the README's command table, run in their clone of the ops repository. Each command's exit code is
checked (the walkthrough marks the ones that exit 1 with `# exit 1`), and no command may print a
traceback or a log line of an SDK. At the end Ctrl-C (SIGINT to the process group) must stop every
process `make up` started."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from emulators.launcher import read_env_file
from tests.conftest import REPO_ROOT, pid_alive

pytestmark = pytest.mark.e2e

README = REPO_ROOT / "README.md"
WALKTHROUGH = "## Try it on the local stack"
COMMANDS = "## The `synos` command"

# Table examples whose exit code is not 0 on the local stack, and why.
EXPECTED_EXIT = {
    "synos restore orders-api --yes": 1,  # nothing was pruned: no tombstone to restore
}
# What must never reach a newcomer's terminal: tracebacks and the SDKs' own log records.
NOISE = [
    re.compile(p, re.MULTILINE)
    for p in (
        r"Traceback \(most recent call last\)",
        r"get_token(_info)? failed",
        r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL):",
        r"\bazure\.(core|identity|data|keyvault|mgmt)\b",
        r"urllib3|HTTPSConnectionPool|HTTPConnectionPool",
        r"^\{\"time\": ",  # our JSON log lines appear only with -v
    )
]


def section(text: str, heading: str) -> str:
    start = text.index(heading + "\n")
    rest = text[start + len(heading) + 1 :]
    nxt = re.search(r"^## ", rest, re.MULTILINE)
    return rest[: nxt.start()] if nxt else rest


def sh_blocks(text: str) -> list[list[str]]:
    return [
        [line for line in block.splitlines() if line.strip()]
        for block in re.findall(r"^```sh\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    ]


def expected_exit(line: str) -> int:
    m = re.search(r"#\s*exit (\d)\b", line)
    return int(m.group(1)) if m else 0


def table_examples(text: str) -> list[str]:
    """Every `synos ...` code span in the Example column of the command table."""
    examples = []
    for row in text.splitlines():
        if not row.startswith("| `synos"):
            continue
        cells = re.split(r"(?<!\\)\|", row)
        examples += [c for c in re.findall(r"`([^`]+)`", cells[-2]) if c.startswith("synos ")]
    return examples


def test_the_readme_parsers_find_what_they_must() -> None:
    text = README.read_text()
    blocks = sh_blocks(section(text, WALKTHROUGH))
    assert blocks[0] == ["make up"], "the walkthrough starts with `make up`, alone"
    steps = blocks[1]
    assert steps[0].startswith("source .venv/bin/activate && source .stack.env")
    assert any("git -C" in s and "push" in s for s in steps), "the walkthrough ends with a push"
    assert [expected_exit(s) for s in steps].count(1) >= 1
    examples = table_examples(section(text, COMMANDS))
    assert "synos bootstrap" in examples and "synos validate" in examples and len(examples) >= 17
    assert table_examples("| `synos x` | `synos a \\| b` then `synos c` |\n") == ["synos a \\| b", "synos c"]
    assert expected_exit("synos diff   # exit 1: the drift") == 1 and expected_exit("synos get apps") == 0


def _clean_env(tmp: Path) -> dict[str, str]:
    """A newcomer's shell: none of the session stack's settings; git knows who they are."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SYNOSCD_", "IDENTITY_", "MAKE", "MFLAGS")) and k != "REQUESTS_CA_BUNDLE"
    }
    env.update(
        GIT_AUTHOR_NAME="Newcomer",
        GIT_AUTHOR_EMAIL="newcomer@example.invalid",
        GIT_COMMITTER_NAME="Newcomer",
        GIT_COMMITTER_EMAIL="newcomer@example.invalid",
        TMPDIR=str(tmp),
    )
    return env


def _script(steps: list[str], examples: list[str], env_file: Path, out: Path) -> str:
    """One bash session: each command's output and exit code in files of its own."""
    lines = [f"cd {shlex.quote(str(REPO_ROOT))}"]
    for i, cmd in enumerate(
        [*steps, 'echo "$OPS" > ' + shlex.quote(str(out / "ops")), 'cd "$OPS"', *examples]
    ):
        cmd = cmd.replace("source .stack.env", f"source {shlex.quote(str(env_file))}")
        lines.append(
            f"T=$(date +%s%N); {{ {cmd}\n}} >{out}/{i}.out 2>{out}/{i}.err; echo $? >{out}/{i}.rc; "
            f"echo $(( ($(date +%s%N) - T) / 1000000 )) >{out}/{i}.ms"
        )
    return "\n".join(lines) + "\n"


def _synos_json(env: dict[str, str], *args: str) -> Any:
    out = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "synos"), *args, "-o", "json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


@pytest.mark.timeout(600)
def test_a_newcomer_goes_from_make_up_to_a_webhook_triggered_sync(tmp_path: Path) -> None:
    text = README.read_text()
    blocks = sh_blocks(section(text, WALKTHROUGH))
    steps, examples = blocks[1], table_examples(section(text, COMMANDS))
    env = _clean_env(tmp_path)
    env_file = tmp_path / "stack.env"
    log = (tmp_path / "make-up.log").open("wb")
    make = subprocess.Popen(
        ["make", "-s", "up", f"ENV_FILE={env_file}"],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, like a terminal's foreground job
    )
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not env_file.exists():
            assert make.poll() is None, (tmp_path / "make-up.log").read_text()
            assert time.monotonic() < deadline, "make up did not write its env file"
            time.sleep(0.2)
        stack = read_env_file(env_file)
        pids = [int(p) for p in stack["SYNOSCD_EMULATOR_PIDS"].split()]
        assert len(pids) >= 3 and all(pid_alive(p) for p in pids), "launcher, Azurite(s), Functions host"

        out = tmp_path / "out"
        out.mkdir()
        script = tmp_path / "newcomer.sh"
        script.write_text(_script(steps, examples, env_file, out))
        subprocess.run(["bash", str(script)], env=env, timeout=600, check=True)

        commands = [*steps, "(remember OPS)", "cd $OPS", *examples]
        failures = []
        for i, cmd in enumerate(commands):
            rc = int((out / f"{i}.rc").read_text())
            stdout, stderr = (out / f"{i}.out").read_text(), (out / f"{i}.err").read_text()
            if i < len(steps):
                want: set[int] = {expected_exit(cmd)}
            elif i >= len(steps) + 2:
                want = {EXPECTED_EXIT[cmd]} if cmd in EXPECTED_EXIT else {0}
            else:
                want = {0}
            if rc not in want:
                failures.append(
                    f"{cmd!r} exited {rc}, README says {sorted(want)}\n{stdout[-800:]}{stderr[-800:]}"
                )
            noise = [p.pattern for p in NOISE if p.search(stdout) or p.search(stderr)]
            if noise:
                failures.append(f"{cmd!r} printed {noise}:\n{stdout[-800:]}{stderr[-800:]}")
        assert not failures, "\n\n".join(failures)

        # What the walkthrough promises happened, seen through synos itself.
        settings = {**env, **stack}
        ops = Path((out / "ops").read_text().strip())
        pushed = subprocess.run(
            ["git", "-C", str(ops), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        deadline = time.monotonic() + 60
        while True:
            passes = _synos_json(settings, "history", "--limit", "50")["passes"]
            # "coalesced": the push arrived while a timer pass ran, which then ran once more for it.
            webhook = [
                p for p in passes if p["trigger"] in ("webhook", "coalesced") and p["revision"] == pushed
            ]
            if webhook or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert webhook and webhook[0]["outcome"] == "succeeded", passes[:5]
        by_id = {p["id"]: p for p in passes}
        heals = [
            e
            for e in _synos_json(settings, "logs", "app", "demo-app")["events"]
            if e["action"] == "update" and by_id.get(e["pass"], {}).get("trigger") == "timer"
        ]
        assert heals, "the timer healed the drift of demo-app"
        assert _synos_json(settings, "get", "status")["functions"]["serving"] is True, "the host's heartbeat"
        push_answer = (out / f"{next(i for i, s in enumerate(steps) if 'push' in s)}.err").read_text()
        assert "push webhook for refs/heads/main" in push_answer and "202" in push_answer
    finally:
        # Ctrl-C in the terminal: SIGINT to the foreground process group.
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGINT)
        try:
            make.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(make.pid, signal.SIGKILL)
            make.wait(timeout=10)
        log.close()
    deadline = time.monotonic() + 20
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pids and not [p for p in pids if pid_alive(p)], "Ctrl-C stops every process make up started"
    assert not env_file.exists(), "and removes the env file"
