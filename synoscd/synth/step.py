"""The synthesize step as the pass calls it: builds the pipeline's context from the pass's own reads
(runtime settings, live resources, the source snapshot) and saves what changed afterwards. The
imperative shell around pipeline.synthesize."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

from synoscd.manifests.desired import DesiredSet
from synoscd.manifests.schema import Project
from synoscd.synth import defaults_rollout
from synoscd.synth import state as synth_state
from synoscd.synth.annotations import COMPOSITION_TAG
from synoscd.synth.pipeline import Context, Result, synthesize
from synoscd.synth.state import PROJECTS_ROLLOUT_RK, RolloutState, SynthState

log = logging.getLogger("synoscd.synth")


def load_state(rt: Any) -> SynthState:
    return synth_state.load(rt.table)


def run(
    rt: Any,
    desired: DesiredSet,
    snapshot: Any,
    settings: Any,
    state: SynthState,
    live: Mapping[tuple[str, str], Any],
    *,
    wait: float,
    dry_run: bool,
    retry: Any = None,
    only: str | None = None,
) -> Result:
    health = _health(live)

    def job_ready(name: str) -> bool | None:
        item = live.get(("Job", name.lower()))
        if item is None:
            return None
        return str((item.body.get("properties") or {}).get("provisioningState")) == "Succeeded"

    def tagged(composition: str) -> list[str]:
        return sorted(
            f"{item.kind}/{item.name}"
            for item in live.values()
            if item.managed and (item.body.get("tags") or {}).get(COMPOSITION_TAG) == composition
        )

    ctx = Context(
        desired=desired,
        files=snapshot.files,
        read=snapshot.read,
        revision=snapshot.revision,
        source=snapshot.source,
        state=state,
        live_health=health,
        live_job_ready=job_ready,
        live_tagged=tagged,
        now=time.time(),
        deadline=time.monotonic() + wait,
        allow_exec=settings.allow_exec_synthesizers,
        cooldown=settings.rollout_cooldown_seconds,
        max_output_bytes=rt.settings.synth_max_output_bytes,
        retry_seconds=(retry.seconds if retry is not None else Context.retry_seconds),
        secret_version=rt.secret_version,
        job_executor=lambda: rt.synth_jobs,
        guardrails=settings.guardrails(rt.settings.keyvault_hosts),
        dry_run=dry_run,
        only=only,
    )
    return synthesize(ctx)


def _health(live: Mapping[tuple[str, str], Any]) -> Any:
    def health(app: str) -> tuple[str, str]:
        kind, _, name = app.partition("/")
        item = live.get((kind, name.lower()))
        return ("Missing", "not in Azure yet") if item is None else (item.health.status, item.health.message)

    return health


def roll_defaults(
    desired: DesiredSet | None,
    settings: Any,
    state: SynthState,
    live: Mapping[tuple[str, str], Any],
    revision: str | None,
    only: str | None = None,
) -> defaults_rollout.Roll | None:
    """Which apps wait for their turn in a rollout of their Project's new defaults (None: no desired
    set this pass, nothing to decide or record)."""
    if desired is None:
        return None
    defaults = {p.name: p.manifest.spec.defaults for p in desired.projects if isinstance(p.manifest, Project)}
    members = [
        defaults_rollout.Member(r.name, r.project, r.locator.doc.data if r.locator is not None else None)
        for r in desired.resources
        if r.kind == "App" and r.project is not None
    ]
    return defaults_rollout.roll(
        defaults,
        members,
        state.projects,
        state.projects_rollout,
        _health(live),
        time.time(),
        settings.rollout_cooldown_seconds,
        revision,
        complete=desired.complete,
        may_step=lambda app: only is None or app.lower() == only.lower(),
    )


def save_defaults(rt: Any, read: SynthState, roll: defaults_rollout.Roll) -> None:
    """Project records that changed; the defaults rollout's row merged with what the CLI wrote."""
    records = SynthState(rows=read.rows, projects=roll.records)
    written = synth_state.save_projects(rt.table, records, roll.gone)
    if roll.state != read.projects_rollout:
        ours = roll.state
        synth_state.update_rollout(
            rt.table, lambda fresh: merge(read.projects_rollout, ours, fresh), PROJECTS_ROLLOUT_RK
        )
    if written or roll.stepped:
        log.info("project defaults rollout", extra={"written": written, "stepped": roll.stepped})


def save(rt: Any, read: SynthState, result: Result) -> None:
    """Composition rows that changed; the rollout row merged with what the CLI wrote meanwhile."""
    written = synth_state.save_changes(rt.table, result.state, result.gone)
    if result.rollout is not None:
        ours = result.rollout
        synth_state.update_rollout(rt.table, lambda fresh: merge(read.rollout, ours, fresh))
    if written:
        log.info("compositions recorded", extra={"written": written})


def merge(base: RolloutState, ours: RolloutState, fresh: RolloutState) -> RolloutState | None:
    """Three-way: the fields this pass changed (relative to what it read) applied onto the fresh row,
    so a `synos rollout pause|resume` written meanwhile is kept."""
    if fresh == base:
        return ours
    changes = {
        f.name: getattr(ours, f.name)
        for f in dataclasses.fields(RolloutState)
        if getattr(ours, f.name) != getattr(base, f.name) and f.name not in ("updated_by", "updated_at")
    }
    for kept in ("paused", "acknowledged") if fresh.updated_by != base.updated_by else ():
        changes.pop(kept, None)
    merged = dataclasses.replace(fresh, **changes)
    return None if merged == fresh else merged
