"""The documentation names only what exists: every SYNOSCD_* variable in docs/*.md and README.md is a
setting of synoscd.config.Settings, every `synos ...` command in the operations guide's code blocks
(and in the example GitHub workflow) parses with the real CLI parser, and docs/manifests.md is exactly
what infra/gen_manifest_reference.py generates from the manifest schema."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import shlex
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from synoscd.cli.main import build_parser
from synoscd.config import Settings, env_name
from tests.conftest import REPO_ROOT

DOCS = REPO_ROOT / "docs"
OPERATIONS = DOCS / "operations.md"
WORKFLOW = DOCS / "github-actions-validate.yml"

# SYNOSCD_* names that are not settings but are documented on purpose; each must occur in the code.
NOT_SETTINGS = {"SYNOSCD_CONFIG_HASH"}  # stamped into app templates to roll revisions (configFrom)

_NAME = re.compile(r"SYNOSCD_[A-Z0-9_]+(\*)?")


def _doc_files() -> list[Path]:
    return [*sorted(DOCS.glob("*.md")), REPO_ROOT / "README.md"]


def test_documented_variables_are_settings() -> None:
    settings = {env_name(field) for field in Settings.model_fields}
    code = "\n".join(p.read_text() for p in (REPO_ROOT / "synoscd").rglob("*.py"))
    assert all(name in code for name in NOT_SETTINGS), "NOT_SETTINGS names something the code lacks"
    # The local stack's own variables (written to .stack.env by the launcher, read by no setting).
    launcher = (REPO_ROOT / "emulators" / "launcher.py").read_text()
    local = set(re.findall(r"SYNOSCD_EMULATOR_[A-Z0-9_]+", launcher))
    wrong: list[str] = []
    for path in _doc_files():
        for lineno, line in enumerate(path.read_text().splitlines(), 1):
            for match in _NAME.finditer(line):
                name = match.group(0).rstrip("*")
                if match.group(1):  # a family such as SYNOSCD_GITHUB_APP_*
                    ok = any(s.startswith(name) for s in settings)
                else:
                    ok = name in settings or name in NOT_SETTINGS or name in local
                if not ok:
                    wrong.append(f"{path.relative_to(REPO_ROOT)}:{lineno}: {match.group(0)}")
    assert not wrong, "not a setting in synoscd/config.py:\n" + "\n".join(wrong)


def _fenced_blocks(text: str) -> list[tuple[int, str]]:
    """(first line number, body) of every ``` fenced block."""
    blocks: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("```"):
            start = i + 1
            i += 1
            while i < len(lines) and not lines[i].lstrip().startswith("```"):
                i += 1
            blocks.append((start + 1, "\n".join(lines[start:i])))
        i += 1
    return blocks


def synos_commands(text: str) -> list[tuple[int, list[str]]]:
    """(line, argv after `synos`) for every shell line of the fenced blocks that runs synos."""
    found: list[tuple[int, list[str]]] = []
    for first, block in _fenced_blocks(text):
        joined = block.replace("\\\n", " ")
        for offset, line in enumerate(joined.splitlines()):
            try:
                tokens = shlex.split(line, comments=True)
            except ValueError:
                continue
            if tokens and tokens[0] == "synos":
                found.append((first + offset, tokens[1:]))
    return found


def _parse(argv: list[str]) -> tuple[int, str]:
    """(exit code, stderr) of a dry parse: nothing runs. 0 when argv parses."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            build_parser().parse_args(argv)
        except SystemExit as exc:  # --help and --version exit 0, errors exit 2
            return int(exc.code or 0), err.getvalue()
    return 0, ""


def _has_command(name: str) -> bool:
    return _parse([name, "--help"])[0] == 0


def test_operations_guide_shows_only_commands_that_exist() -> None:
    commands = synos_commands(OPERATIONS.read_text())
    names = {argv[0] for _, argv in commands if argv and not argv[0].startswith("-")}
    assert {"get", "sync", "suspend", "resume", "set", "restore", "history", "logs", "validate"} <= names
    failures: list[str] = []
    for line, argv in commands:
        if argv and argv[0] == "bootstrap" and not _has_command("bootstrap"):
            continue  # documented ahead of the command (another change adds it); checked once it exists
        code, err = _parse(argv)
        if code != 0:
            failures.append(f"docs/operations.md:{line}: synos {' '.join(argv)}\n  {err.strip()}")
    assert not failures, "\n".join(failures)


def test_the_command_check_catches_a_wrong_command() -> None:
    text = "```sh\nsynos get apps\nsynos sync --dry-runn\nsynos frobnicate\n```\n"
    commands = synos_commands(text)
    assert [argv for _, argv in commands] == [["get", "apps"], ["sync", "--dry-runn"], ["frobnicate"]]
    assert [_parse(argv)[0] for _, argv in commands] == [0, 2, 2]


def test_bootstrap_is_skipped_only_while_the_parser_lacks_it() -> None:
    documented = [argv for _, argv in synos_commands(OPERATIONS.read_text()) if argv[:1] == ["bootstrap"]]
    assert documented, "the operations guide starts with synos bootstrap"
    if _has_command("bootstrap"):
        assert all(_parse(argv)[0] == 0 for argv in documented)
    else:
        pytest.skip("synos bootstrap is not in the parser yet; its documented use is checked once it is")


def test_github_workflow_runs_synos_validate() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert "pull_request" in workflow[True if True in workflow else "on"]
    steps = [s for job in workflow["jobs"].values() for s in job["steps"]]
    assert any(s.get("uses", "").startswith("actions/checkout@") for s in steps)
    python = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert str(python["with"]["python-version"]) == "3.11"
    runs = [tokens for s in steps if "run" in s for tokens in [shlex.split(s["run"], comments=True)]]
    validate = [t[1:] for t in runs if t[:2] == ["synos", "validate"]]
    assert validate == [["validate", "apps", "-o", "table"]]
    assert _parse(validate[0]) == (0, "")
    assert any(t[:2] == ["pip", "install"] and any("synoscd" in x for x in t) for t in runs)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "gen_manifest_reference", REPO_ROOT / "infra" / "gen_manifest_reference.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_manifest_reference_is_generated_from_the_schema() -> None:
    from synoscd.manifests.schema import json_schema

    generated = _generator().render(json_schema())
    assert (DOCS / "manifests.md").read_text() == generated, (
        "docs/manifests.md is stale: run python infra/gen_manifest_reference.py"
    )


def test_manifest_reference_covers_every_definition_and_field() -> None:
    from synoscd.manifests.schema import json_schema

    schema = json_schema()
    text = (DOCS / "manifests.md").read_text()
    for name, definition in schema["$defs"].items():
        section = text.split(f"\n## {name}\n", 1)
        assert len(section) == 2, f"no section for {name}"
        body = section[1].split("\n## ", 1)[0]
        for field in definition.get("properties", {}):
            assert f"| `{field}` |" in body, f"{name}.{field} missing"


def test_generator_refuses_notes_for_fields_the_schema_lacks() -> None:
    from synoscd.manifests.schema import json_schema

    generator = _generator()
    generator.FIELD_NOTES["Container.nosuchfield"] = "stale"
    with pytest.raises(SystemExit, match=r"Container\.nosuchfield"):
        generator.render(json_schema())
