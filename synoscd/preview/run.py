"""A queued preview, from the message to the check run (the queue-triggered function calls `handle`):

1. freshness: a pull request's preview claims its row; a newer push to it already claimed supersedes
   this one (nothing is reported for a head that is no longer the pull request's);
2. read what merging would deploy (sources/github.py `merged_snapshot`: one compare, the changed
   blobs); a pull request that touches no manifest, nor a file a manifest reads, gets a `skipped`
   check run and nothing else;
3. a check run `SynosCD preview`, in progress, on the head commit;
4. plan it as a pass would (plan.py: a dry run — no lease, no write);
5. before reporting, freshness again: superseded meanwhile, the run is concluded `cancelled`;
6. the report (report.py): conclusion, summary, annotations 50 per request.

`mark_stale` runs after a push to the followed branch: finished previews planned against an older
base are marked stale (re-run by the pull request's next event, or "Re-run" on the check)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synoscd.engine.runtime import Runtime
from synoscd.manifests.desired import DesiredSet, load_desired
from synoscd.manifests.schema import App, Composition, Synthesizer
from synoscd.preview.events import PREVIEW_CHECK
from synoscd.preview.plan import plan_snapshot
from synoscd.preview.report import Context, render
from synoscd.sources.checks import CheckRuns, Output, fit_bytes
from synoscd.sources.snapshot import Change, Snapshot, SourceError, is_manifest
from synoscd.state import previews as store

log = logging.getLogger("synoscd.preview")


@dataclass(frozen=True)
class Request:
    head: str
    pr: int | None
    action: str
    requested_at: float
    app_id: int | None = None

    @classmethod
    def of(cls, message: Mapping[str, Any]) -> Request:
        pr = message.get("pr")
        app_id = message.get("appId")
        return cls(
            head=str(message["head"]).lower(),
            pr=pr if isinstance(pr, int) and not isinstance(pr, bool) else None,
            action=str(message.get("action") or "opened"),
            requested_at=float(message.get("queuedAt") or time.time()),
            app_id=app_id if isinstance(app_id, int) else None,
        )


def handle(rt: Runtime, message: Mapping[str, Any]) -> dict[str, Any]:
    if message.get("kind") == "preview-closed":
        pr = int(message["pr"])
        store.forget(rt.table, pr)
        return {"pr": pr, "forgotten": True}
    return preview(rt, Request.of(message))


def preview(rt: Runtime, req: Request) -> dict[str, Any]:
    source = rt.source()
    if not hasattr(source, "merged_snapshot"):
        return {"skipped": "previews need the GitHub source; SYNOSCD_SOURCE_PATH is set"}
    ours = _app_id(rt) if req.app_id is not None else None
    if req.app_id is not None and ours is not None and req.app_id != ours:
        return {"skipped": f"a rerequest for GitHub App {req.app_id}, not this one"}
    ctx = {"trigger": "preview", "pr": req.pr, "revision": req.head}
    run_id: int | None = None
    if req.pr is not None:
        current, row = store.claim(rt.table, req.pr, req.head, req.requested_at)
        if not current:
            assert row is not None
            log.info("preview superseded before it started", extra={**ctx, "by": row.head})
            return {"pr": req.pr, "head": req.head, "superseded": row.head}
        run_id = row.run_id if row else None
    checks = CheckRuns(source)
    external_id = f"pr-{req.pr}@{req.head}" if req.pr else req.head

    snapshot: Snapshot | None = None
    change: Change | None = None
    read_error: SourceError | None = None
    try:
        snapshot, change = source.merged_snapshot(req.head)
    except SourceError as exc:
        read_error = exc
    if (
        snapshot is not None
        and change is not None
        and not _relevant(rt, snapshot, change, source.config_path)
    ):
        output = Output(
            "No manifest changed",
            f"This pull request changes {len(change.files)} file(s), none under "
            f"`{source.config_path or '/'}` nor read by a manifest: merging it changes nothing SynosCD "
            "deploys.",
        )
        if run_id is None:
            run_id = checks.create(
                req.head, PREVIEW_CHECK, output, external_id=external_id, conclusion="skipped"
            )
        else:
            checks.complete(run_id, "skipped", output)
        _finish(rt, req, run_id, change.base, "skipped", output)
        return {"pr": req.pr, "head": req.head, "conclusion": "skipped", "checkRun": run_id}

    if run_id is None:
        planning = Output("Planning…", f"SynosCD is planning what merging `{req.head[:12]}` would do.")
        run_id = checks.create(req.head, PREVIEW_CHECK, planning, external_id=external_id)
        if req.pr is not None:
            store.set_run(rt.table, req.pr, req.head, run_id)

    def read() -> Snapshot:
        if read_error is not None:
            raise read_error
        assert snapshot is not None
        return snapshot

    result = plan_snapshot(read, rt=rt)
    env = f"{rt.settings.azure_resource_group}/{rt.settings.azure_container_app_environment}"
    report = render(
        result.to_dict(),
        Context(
            head=req.head,
            branch=rt.settings.github_branch,
            environment=env,
            base=change.base if change else None,
            pr=req.pr,
            up_to_date=change.up_to_date if change else True,
            changed=tuple(sorted(change.paths)) if change else (),
            max_prune_fraction=rt.settings.prune_max_fraction,
        ),
    )
    newer = _newer_head(rt, req)
    if newer is not None:
        output = Output(
            f"Superseded by {newer[:12]}",
            f"A newer push to #{req.pr} (`{newer[:12]}`) is being previewed; this plan of "
            f"`{req.head[:12]}` is no longer what merging would do.",
        )
        checks.complete(run_id, "cancelled", output)
        log.info("preview superseded", extra={**ctx, "by": newer})
        return {"pr": req.pr, "head": req.head, "superseded": newer, "checkRun": run_id}
    output = Output(report.title, report.summary, annotations=report.annotations)
    requests = checks.complete(run_id, report.conclusion, output)
    _finish(rt, req, run_id, change.base if change else None, report.conclusion, output)
    log.info(
        "preview reported",
        extra={**ctx, "conclusion": report.conclusion, "check_run": run_id, "counts": dict(report.counts)},
    )
    return {
        "pr": req.pr,
        "head": req.head,
        "conclusion": report.conclusion,
        "title": report.title,
        "checkRun": run_id,
        "annotations": len(report.annotations),
        "updateRequests": requests,
    }


def mark_stale(rt: Runtime, base: str) -> int:
    """After a push to the followed branch (its new head `base`): the finished previews planned against
    another base say so, and stop counting as a green light (a stale `success` or `neutral` becomes
    `action_required`; a `failure` stays one). Their next event, or "Re-run", plans them again."""
    source = rt.source()
    if not hasattr(source, "merged_snapshot"):
        return 0
    checks = CheckRuns(source)
    marked = 0
    for row in store.finished(rt.table):
        if row.base == base or row.run_id is None:
            continue
        branch = rt.settings.github_branch
        banner = (
            f"> **Stale:** `{branch}` has moved to `{base[:12]}` since this preview planned "
            f"`{row.head[:12]}` against `{(row.base or '?')[:12]}`. Re-run this check, or push to the pull "
            "request, to see what merging would do now.\n\n"
        )
        conclusion = "failure" if row.conclusion == "failure" else "action_required"
        output = Output(f"Stale: {branch} moved — {row.title}", fit_bytes(banner + row.summary, 65535))
        checks.update(row.run_id, status="completed", conclusion=conclusion, output=output)
        store.mark(rt.table, row.pr, row.head, "stale")
        marked += 1
    if marked:
        log.info("previews marked stale", extra={"trigger": "webhook", "revision": base, "count": marked})
    return marked


def _finish(
    rt: Runtime, req: Request, run_id: int, base: str | None, conclusion: str, output: Output
) -> None:
    if req.pr is not None:
        store.finish(rt.table, req.pr, req.head, run_id, base, conclusion, output.title, output.summary)


def _newer_head(rt: Runtime, req: Request) -> str | None:
    """The head of a newer push to the pull request, when one was asked for meanwhile."""
    if req.pr is None:
        return None
    row = store.get(rt.table, req.pr)
    if row is None or row.head == req.head or row.requested_at < req.requested_at:
        return None
    return row.head


def _relevant(rt: Runtime, snapshot: Snapshot, change: Change, config_path: str) -> bool:
    """Whether the pull request changes what SynosCD deploys: a manifest under the config path, or a
    file a manifest reads — an App's `spec.configFrom`, a Composition's input file, a file an exec
    Synthesizer's command names."""
    paths = change.paths
    if any(is_manifest(p, config_path) for p in paths):
        return True
    desired: DesiredSet = load_desired(snapshot.files)  # each file parsed once per content anyway
    read = {p for r in desired.resources if isinstance(r.manifest, App) for p in r.manifest.spec.config_from}
    for r in desired.synth:
        if isinstance(r.manifest, Composition):
            read |= {b.file for b in r.manifest.spec.inputs if b.file}
        elif isinstance(r.manifest, Synthesizer):
            read |= set(r.manifest.spec.command)
    return bool(paths & read)


def _app_id(rt: Runtime) -> int | None:
    from synoscd.sources.factory import github_credentials

    try:
        return github_credentials(rt.settings, rt.secrets).app_id
    except Exception:  # cannot tell: the rerequest is served (the webhook checked what it could)
        return None
