"""`synos validate [PATH]` and `synos schema`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from synoscd.cli.output import CliError, emit, error_line, table


def add(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help="validate App, Job and Project manifests in a folder",
        description="Parse and validate every .yaml/.yml file under PATH. Without PATH: the configured "
        "source folder (SYNOSCD_SOURCE_PATH joined with SYNOSCD_GITHUB_CONFIG_PATH), else ./apps. "
        "Hidden folders, node_modules and virtual environments are never read. Exit 0 when valid, "
        "1 when any manifest is invalid, 2 on a usage or I/O error.",
    )
    p.add_argument(
        "path",
        nargs="?",
        default=None,
        help="folder (or single file) to validate; default: the configured source folder, else ./apps",
    )
    p.set_defaults(run=validate)
    s = sub.add_parser(
        "schema",
        help="print the JSON Schema of the manifests (for editors)",
        description="Print the JSON Schema of App, Job and Project (yaml-language-server, IDEs).",
    )
    s.set_defaults(run=schema)


def validate(args: argparse.Namespace) -> int:
    from synoscd.manifests.desired import load_desired, validation_report
    from synoscd.manifests.tree import read_tree

    root = Path(args.path) if args.path else default_folder()
    if not root.exists():
        raise CliError(f"{root}: no such file or folder")
    try:
        files = {root.name: root.read_bytes()} if root.is_file() else read_tree(root)
    except OSError as exc:
        raise CliError(f"{root}: cannot read ({exc.strerror or exc})") from exc
    if not args.path and root.is_dir():  # a folder chosen for the user: name files as they see them
        files = {f"{root.as_posix().rstrip('/')}/{name}": data for name, data in files.items()}
    report = validation_report(load_desired(files))
    emit(report, args.output, _table)
    return 0 if report["valid"] else 1


def default_folder() -> Path:
    """The configured local source folder, else ./apps (./<SYNOSCD_GITHUB_CONFIG_PATH>)."""
    from pydantic import ValidationError

    from synoscd.config import load_settings

    try:
        settings = load_settings()
        source, folder = settings.source_path, settings.github_config_path.strip("/")
    except ValidationError:  # validating files needs no other setting to be right
        source, folder = None, "apps"
    folder = "" if folder in ("", ".") else folder
    if source:
        joined = Path(source) / folder
        return joined if folder and joined.is_dir() else Path(source)
    default = Path(folder or "apps")
    if not default.is_dir():
        raise CliError(
            f"no PATH given and ./{default} does not exist here (SYNOSCD_SOURCE_PATH is not set); "
            "name the folder of your manifests: synos validate DIR"
        )
    return default


def _table(report: dict[str, Any]) -> str:
    parts = []
    if report["resources"]:
        parts.append(
            table(["kind", "name", "file"], [(r["kind"], r["name"], r["file"]) for r in report["resources"]])
        )
    if report["errors"]:
        parts.append("\n".join(error_line(e) for e in report["errors"]))
    n = len(report["errors"])
    if not report["resources"] and not n:
        parts.append("no manifests found")
    parts.append("valid" if report["valid"] else f"{n} error{'s' if n != 1 else ''}")
    return "\n\n".join(parts)


def schema(args: argparse.Namespace) -> int:
    from synoscd.manifests.schema import json_schema

    doc = json_schema()
    emit(doc, args.output, lambda d: json.dumps(d, indent=2))
    return 0
