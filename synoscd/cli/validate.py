"""`synos validate [PATH]` and `synos schema`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from synoscd.cli.output import CliError, emit, table


def add(sub: Any) -> None:
    p = sub.add_parser(
        "validate",
        help="validate App, Job and Project manifests in a folder",
        description="Parse and validate every .yaml/.yml file under PATH (default: the current "
        "folder). Exit 0 when valid, 1 when any manifest is invalid, 2 on a usage or "
        "I/O error.",
    )
    p.add_argument("path", nargs="?", default=".", help="folder (or single file) to validate")
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

    root = Path(args.path)
    if not root.exists():
        raise CliError(f"{root}: no such file or folder")
    try:
        files = {root.name: root.read_bytes()} if root.is_file() else read_tree(root)
    except OSError as exc:
        raise CliError(f"{root}: cannot read ({exc.strerror or exc})") from exc
    report = validation_report(load_desired(files))
    emit(report, args.output, _table)
    return 0 if report["valid"] else 1


def _table(report: dict[str, Any]) -> str:
    parts = []
    if report["resources"]:
        parts.append(
            table(["kind", "name", "file"], [(r["kind"], r["name"], r["file"]) for r in report["resources"]])
        )
    if report["errors"]:
        parts.append(
            "\n".join(
                f"{e['file']}:{e['line']}: {e['field'] or '(document)'}: {e['message']}"
                for e in report["errors"]
            )
        )
    n = len(report["errors"])
    parts.append("valid" if report["valid"] else f"{n} error{'s' if n != 1 else ''}")
    return "\n\n".join(parts)


def schema(args: argparse.Namespace) -> int:
    from synoscd.manifests.schema import json_schema

    doc = json_schema()
    emit(doc, args.output, lambda d: json.dumps(d, indent=2))
    return 0
