"""`synos adopt NAME... [--yes]`: make existing live apps and jobs ours, explicitly (invariant 1).

For each NAME that a manifest in the desired set names, the live resource of our environment gets
the tags that manifest owns (synoscd-managed, synoscd-source, synoscd-revision, its spec.tags and sync
tags) in one tags-only write: an ARM PATCH carrying `tags` alone, so nothing else on the resource
changes (no new revision, secrets untouched). Refused: a name no manifest names or no live resource
has (exit 2, before anything is written), a resource in another environment or managed from another
source (exit 1). Resources made before the source tag existed are adopted this way, never implicitly.
"""

from __future__ import annotations

import argparse
from typing import Any

from synoscd.cli.output import CliError, emit, table
from synoscd.cli.prompt import add_yes, confirm


def add(sub: Any) -> None:
    p = sub.add_parser(
        "adopt",
        help="put the ownership tags on live apps and jobs that manifests name (tags only)",
        description="Tag each named live app or job, in this environment, as managed from this source "
        "with the tags its manifest owns: one tags-only write, nothing else changes. Export it first "
        "(synos export NAME -d apps/) and commit the manifest. Exit 0 done, 1 when a resource was "
        "refused (another environment or source), 2 when a name has no manifest or no live resource.",
    )
    p.add_argument("names", nargs="+", metavar="NAME", help="app or job names")
    add_yes(p)
    p.set_defaults(run=adopt)


def _desired_tags(resource: Any, target: Any) -> dict[str, str]:
    from synoscd.azure.translate import app_envelope, job_envelope, sync_tags
    from synoscd.manifests.schema import App
    from synoscd.manifests.syncspec import sync_spec

    manifest = resource.manifest
    spec = sync_spec(manifest.metadata.annotations)
    extra = sync_tags(spec.wave if spec.wave_set else None, spec.options, spec.hook_phases)
    if isinstance(manifest, App):
        return dict(app_envelope(manifest, target, None, extra)["tags"])
    return dict(job_envelope(manifest, target, None, extra, manual=spec.is_hook)["tags"])


def adopt(args: argparse.Namespace) -> int:
    from synoscd.azure.merge import tags_patch
    from synoscd.azure.translate import Target, ownership
    from synoscd.engine.runtime import get_runtime
    from synoscd.manifests.desired import load_desired
    from synoscd.sources.snapshot import SourceError

    rt = get_runtime()
    try:
        snapshot = rt.source().snapshot()
    except SourceError as exc:
        raise CliError(f"source error: {exc}") from exc
    desired = rt.parsed(snapshot, load_desired)
    env = rt.arm.environment()
    target = Target(env.id, env.location, snapshot.source, snapshot.revision, rt.target_name)

    plan: list[tuple[Any, dict[str, Any]]] = []
    problems: list[str] = []
    for name in dict.fromkeys(n.lower() for n in args.names):
        resources = [r for r in desired.resources if r.name.lower() == name]
        if not resources:
            problems.append(f"no valid manifest in {snapshot.source} names {name!r}")
        for res in resources:
            live = rt.arm.get(res.kind, res.name)
            if live is None:
                problems.append(f"no live {res.kind} named {res.name!r} (the next pass creates it)")
            else:
                plan.append((res, live))
    if problems:
        raise CliError("; ".join(problems) + "; nothing adopted")

    results: list[dict[str, Any]] = []
    writes: list[tuple[Any, dict[str, Any], dict[str, Any]]] = []
    for res, live in plan:
        row: dict[str, Any] = {"kind": res.kind, "name": res.name}
        owner = ownership(res.kind, res.name, live, env.id, target.source, target.name)
        # A fleet's target may take over what the default target (no target tag) manages here.
        moving = not owner.ours and ownership(res.kind, res.name, live, env.id, target.source).ours
        if owner.ours:
            results.append({**row, "result": "already-adopted", "message": f"managed from {target.source}"})
        elif owner.reason == "foreign-owner" and not moving:
            results.append({**row, "result": "refused", "message": owner.message})
        else:
            writes.append((res, live, row))
    if writes:
        confirm(args, f"Tag {len(writes)} resource(s) as managed from {target.source} (tags only)?")
    failed = False
    for res, live, row in writes:
        try:
            rt.arm.begin_patch(res.kind, res.name, tags_patch(live, _desired_tags(res, target))).result()
        except Exception as exc:  # one failure does not stop the others; reported, exit 2
            from synoscd.azure.arm import describe

            failed = True
            results.append(
                {**row, "result": "failed", "message": str(describe(exc, "adopting", rt.arm.endpoint))}
            )
            continue
        results.append({**row, "result": "adopted", "message": f"tagged as managed from {target.source}"})
    order = {(r.kind, r.name): i for i, (r, _) in enumerate(plan)}
    results.sort(key=lambda r: order[(r["kind"], r["name"])])
    emit({"source": target.source, "revision": target.revision, "resources": results}, args.output, _table)
    if failed:
        return 2
    return 1 if any(r["result"] == "refused" for r in results) else 0


def _table(doc: dict[str, Any]) -> str:
    rows = [(r["kind"], r["name"], r["result"], r["message"]) for r in doc["resources"]]
    return f"source {doc['source']} at {doc['revision'][:12]}\n" + table(
        ["kind", "name", "result", "message"], rows
    )
