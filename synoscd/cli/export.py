"""`synos export NAME... | --all [-d DIR]`: the manifests of live apps and jobs, for adopting them.

Read-only. Each live resource of our environment becomes a manifest with everything the schema can
express (azure/export.py), so that committed and adopted (`synos adopt`) the next pass plans no write
for it. What a manifest cannot express is left unowned (kept as it is by every write) and named on
stderr. Without -d: a multi-document YAML stream on stdout (or one JSON document with -o json); with
-d DIR: one file per resource, DIR/NAME.yaml, and a summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from synoscd.cli.output import CliError, emit, table


def add(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="write manifests of live apps and jobs (to adopt them)",
        description="Write the manifest of each named live app or job of the environment (or --all): "
        "a multi-document YAML stream on stdout, or one file per resource with -d DIR. Fields a "
        "manifest cannot express are left unowned (kept as they are) and named on stderr. Exit 0 "
        "done, 2 on an unknown name or an error.",
    )
    p.add_argument("names", nargs="*", metavar="NAME", help="app or job names")
    p.add_argument("--all", action="store_true", help="every app and job of the environment")
    p.add_argument("-d", "--dir", metavar="DIR", help="write DIR/NAME.yaml per resource")
    p.set_defaults(run=export)


def _live(names: list[str], everything: bool) -> list[tuple[str, dict[str, Any]]]:
    from synoscd.azure.translate import environment_of, same_resource_id
    from synoscd.engine.runtime import get_runtime

    arm = get_runtime().arm
    env = arm.environment()
    found: list[tuple[str, dict[str, Any]]] = []
    for kind in ("App", "Job"):
        found += [(kind, body) for body in arm.list(kind)]
    ours = [(k, b) for k, b in found if same_resource_id(environment_of(b), env.id)]
    if everything:
        return sorted(ours, key=lambda kb: (kb[1]["name"].lower(), kb[0]))
    picked: list[tuple[str, dict[str, Any]]] = []
    for name in names:
        matches = [(k, b) for k, b in ours if b["name"].lower() == name.lower()]
        if not matches:
            elsewhere = [b for _, b in found if b["name"].lower() == name.lower()]
            if elsewhere:
                where = environment_of(elsewhere[0]).rsplit("/", 1)[-1]
                raise CliError(f"{name} is in environment {where}, not in {env.name}; not exported")
            raise CliError(f"no app or job named {name!r} in environment {env.name}")
        picked += matches
    return picked


def export(args: argparse.Namespace) -> int:
    if bool(args.names) == bool(args.all):
        raise CliError("name the apps or jobs to export, or pass --all (not both)")
    import yaml

    from synoscd.azure.export import export as export_one

    exported = [export_one(kind, body) for kind, body in _live(args.names, args.all)]
    names = [e.name.lower() for e in exported]
    files: dict[int, str] = {}
    if args.dir:
        folder = Path(args.dir)
        folder.mkdir(parents=True, exist_ok=True)
        for i, item in enumerate(exported):
            # An app and a job may share a name: the job's file says so.
            suffix = "-job" if item.kind == "Job" and names.count(item.name.lower()) > 1 else ""
            path = folder / f"{item.name}{suffix}.yaml"
            path.write_text(yaml.safe_dump(item.manifest, sort_keys=False, allow_unicode=True))
            files[i] = str(path)
    for item in exported:
        if item.unowned:
            print(
                f"synos: {item.kind} {item.name}: left unowned (a manifest cannot express them; every "
                f"write keeps them as they are): {', '.join(item.unowned)}",
                file=sys.stderr,
            )
    rows = [
        {
            "kind": item.kind,
            "name": item.name,
            "file": files.get(i),
            "unowned": list(item.unowned),
            **({} if args.dir else {"manifest": item.manifest}),
        }
        for i, item in enumerate(exported)
    ]
    if args.dir or args.output == "json":
        emit({"resources": rows}, args.output, _table)
    else:  # table and yaml: the manifests themselves, ready to commit
        sys.stdout.write(
            yaml.safe_dump_all(
                [json.loads(json.dumps(item.manifest)) for item in exported],
                sort_keys=False,
                allow_unicode=True,
                explicit_start=True,
            )
        )
    return 0


def _table(doc: dict[str, Any]) -> str:
    rows = [(r["kind"], r["name"], r["file"] or "", len(r["unowned"])) for r in doc["resources"]]
    return table(["kind", "name", "file", "unowned fields"], rows)
