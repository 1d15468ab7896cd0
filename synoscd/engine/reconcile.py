"""One reconcile pass, read top to bottom like a story. The timer, the webhook and the CLI all call
`run_pass`; a dry run is the plan without execute."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from synoscd import notify, telemetry
from synoscd.azure.arm import ArmError
from synoscd.azure.translate import Target, app_envelope, config_hash, job_envelope, sync_tags
from synoscd.budget import LeaseLost
from synoscd.engine import record
from synoscd.engine.execute import Outcome
from synoscd.engine.health import Health, app_health, job_health, needs_revision
from synoscd.engine.operation import Runner, failure_note, retry_of, select
from synoscd.engine.plan import Action, DesiredItem, LiveItem, Plan, PlanInput, plan
from synoscd.engine.runtime import Runtime, get_runtime
from synoscd.manifests.desired import DesiredSet, apply_guardrails, fit_target, load_desired, with_errors
from synoscd.manifests.errors import ManifestError
from synoscd.manifests.schema import App
from synoscd.manifests.syncspec import sync_spec
from synoscd.sources.snapshot import Snapshot, SourceError
from synoscd.sources.snapshot import config_prefix as snapshot_folder
from synoscd.state import applied, apps, history, lease, operation, runtime
from synoscd.state.operation import Operation
from synoscd.synth import step as synth_step
from synoscd.telemetry.passes import after_record, traced_pass

log = logging.getLogger("synoscd.pass")

# Skips that leave a resource short of its desired state: a pass with one is not 'succeeded'.
LEFT_BEHIND = ("backoff", "in-progress", "sync-failed", "rollout-pending")


@dataclass
class PassResult:
    id: str
    trigger: str
    dry_run: bool
    revision: str | None = None
    plan: Plan | None = None
    outcomes: list[Outcome] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    source_error: str | None = None
    notes: list[str] = field(default_factory=list)  # e.g. a force-push applied as pushed
    queued: bool = False  # another pass held the lease: this request was coalesced into its re-run
    operation: Operation | None = None
    operation_error: str | None = None
    failure: str | None = None  # the pass stopped: an error before it could finish, or a lost lease
    mode: str = ""  # sync (a revision's operation runs) or heal (it is over: writes undo drift)
    trace_id: str | None = None  # the pass's trace, when telemetry is on
    synthesis: dict[str, Any] | None = None  # compositions: how many, which ran, by status
    watch: tuple[str, ...] = ()  # repository files the manifests read (configFrom, composition inputs)
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for action in self.plan.actions if self.plan else ():
            counts[action.action] = counts.get(action.action, 0) + 1
        for outcome in self.outcomes:
            counts[outcome.result] = counts.get(outcome.result, 0) + 1
        return counts

    @property
    def outcome(self) -> str:
        if self.queued:
            return "queued"
        if self.failure:
            return "failed"
        if self.source_error:
            return "source-error"
        if self.operation_error or any(o.result == "failed" for o in self.outcomes):
            return "failed"
        if self.errors or self._left_behind():
            return "partial"
        return "succeeded"

    def _left_behind(self) -> bool:
        return bool(self.left_behind())

    def left_behind(self) -> list[str]:
        """What this pass left short of its desired state, and why: resources skipped (backoff, an
        operation in progress, a failed sync, a rollout's turn), still progressing, or (in a real
        pass) planned work that did not run because the sync stopped at a wave that is not done yet.
        A partial pass with no error says this in its history row."""
        actions = self.plan.actions if self.plan else ()
        groups: dict[str, list[str]] = {}
        for a in actions:
            if a.action == "skip" and a.reason in LEFT_BEHIND:
                groups.setdefault(f"skipped ({a.reason})", []).append(f"{a.kind} {a.name}")
        for o in self.outcomes:
            if o.result == "progressing":
                groups.setdefault("still progressing", []).append(f"{o.action.kind} {o.action.name}")
        if not self.dry_run:
            ran = {id(o.action) for o in self.outcomes}
            for a in actions:
                if (a.writes or a.action == "run-hook") and a.phase != "SyncFail" and id(a) not in ran:
                    groups.setdefault("not run yet (a later wave)", []).append(f"{a.kind} {a.name}")
        return [
            f"{why}: {', '.join(names[:10])}" + (f" and {len(names) - 10} more" if len(names) > 10 else "")
            for why, names in groups.items()
        ]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "trigger": self.trigger,
            "dryRun": self.dry_run,
            "outcome": self.outcome,
            "revision": self.revision,
            "counts": self.counts,
            "errors": self.errors,
            "warnings": self.warnings,
            "sourceError": self.source_error,
        }
        if self.notes:
            out["notes"] = self.notes
        if self.plan is not None:
            out.update(self.plan.to_dict())
        out["results"] = [
            {
                "kind": o.action.kind,
                "name": o.action.name,
                "action": o.action.action,
                "result": o.result,
                "error": o.error,
            }
            for o in self.outcomes
        ]
        if self.operation is not None:
            out["operation"] = {k: v for k, v in self.operation.to_dict().items() if k != "executions"}
        if self.operation_error:
            out["operationError"] = self.operation_error
        if self.failure:
            out["failure"] = self.failure
        if self.synthesis is not None:
            out["synthesis"] = self.synthesis
        if self.finished_at is not None:
            out["durationMs"] = int((self.finished_at - self.started_at) * 1000)
        return out


# A pass's time budget beyond its wait for ARM operations: reading state, source and live, recording.
PASS_OVERHEAD_SECONDS = 30.0


def run_pass(
    trigger: str,
    dry_run: bool = False,
    *,
    app: str | None = None,
    wait_seconds: float | None = None,
    force_prune: bool = False,
    revision: str | None = None,
    rt: Runtime | None = None,
    progress: Callable[[str], None] | None = None,
) -> PassResult:
    """Run one pass (and the coalesced re-run, if passes were requested meanwhile). `progress`, when
    given, hears what the pass is doing (the CLI shows it on a terminal).

    `revision`: the commit to sync. A webhook (or a queue message carrying one) passes its push's
    `after`: a commit is immutable and read directly, so a branch ref that still lags the push cannot
    serve the previous head. None (timer, CLI, the coalesced re-run) reads the branch ref.

    The pass holds the lease, renewed by a heartbeat, and every wait is bounded by its budget (the
    wait for ARM operations plus PASS_OVERHEAD_SECONDS) and the lease. Whatever fails — storage, ARM,
    Key Vault — the pass leaves a history row; losing the lease stops it cleanly (no more writes)."""
    rt = rt or get_runtime()
    say = progress or (lambda _message: None)
    wait = rt.settings.pass_wait_seconds if wait_seconds is None else wait_seconds
    if dry_run:  # read-only: needs no lease
        result = PassResult(id=_new_id(), trigger=trigger, dry_run=True)
        return _one_pass(rt, result, only=app, wait=0.0, force_prune=force_prune, say=say, at=revision)
    history.flush_unsent()  # records a store outage kept in memory: written first, in order
    # One pass at a time per instance, whatever the lease row says: the timer and the queue trigger
    # share this Runtime, whose budget (deadline, lease) and adapters are the running pass's. A pass
    # whose lease lapsed may still be stopping; another beside it would revive its budget.
    if not rt.passing.acquire(blocking=False):
        lease.request(rt.table, trigger)  # the running pass, or the next timer tick, serves it
        log.info("pass requested while this instance runs one: coalesced", extra={"trigger": trigger})
        telemetry.count("synoscd.lease.waits", 1, {"trigger": trigger})
        return PassResult(id=_new_id(), trigger=trigger, dry_run=False, queued=True, finished_at=time.time())
    try:
        return _leased_pass(rt, trigger, app, wait, force_prune, say, revision)
    finally:
        rt.passing.release()


def _leased_pass(
    rt: Runtime,
    trigger: str,
    app: str | None,
    wait: float,
    force_prune: bool,
    say: Callable[[str], None],
    revision: str | None,
) -> PassResult:
    ttl = rt.settings.lease_seconds
    pass_id, started = _new_id(), time.time()
    holder = f"{trigger}-{pass_id}"
    try:
        acquired = time.monotonic()
        held = lease.acquire(rt.table, holder, ttl, trigger, pass_id=pass_id, started_at=started)
    except Exception as exc:  # the state store does not answer: no pass, but a record of the attempt
        _record_failure(rt, PassResult(id=pass_id, trigger=trigger, dry_run=False, started_at=started), exc)
        raise
    if held is None:
        log.info("pass requested while another runs: coalesced", extra={"trigger": trigger})
        telemetry.count("synoscd.lease.waits", 1, {"trigger": trigger})
        return PassResult(id=holder, trigger=trigger, dry_run=False, queued=True, finished_at=time.time())
    if held.abandoned is not None:
        gone = held.abandoned
        log.warning("took over the lease of a pass that did not finish", extra={"pass_id": gone.pass_id})
        with contextlib.suppress(Exception):
            history.record_abandoned(rt.table, gone.pass_id, gone.trigger, gone.started_at, gone.expired_at)
    try:
        with lease.Heartbeat(rt.table, held, ttl, rt.budget, acquired):
            while True:
                rt.budget.begin(wait + PASS_OVERHEAD_SECONDS, pass_id)
                result = PassResult(id=pass_id, trigger=trigger, dry_run=False, started_at=started)
                _guarded_pass(rt, result, only=app, wait=wait, force_prune=force_prune, say=say, at=revision)
                if rt.budget.lost:
                    return result  # not ours any more: nothing to release
                pass_id, started = _new_id(), time.time()
                if not lease.release(rt.table, held, ttl, next_pass=(pass_id, started)):
                    return result
                # Requests arrived meanwhile: run once more, for everything, at the branch head.
                trigger, app, revision = "coalesced", None, None
                telemetry.count("synoscd.lease.coalesced")
    except BaseException:
        # Let go at once (an expiry of now) so the next pass is not blocked for the lease's lifetime.
        with contextlib.suppress(Exception):
            lease.release(rt.table, held, 0.0)
        raise
    finally:
        rt.budget.end()


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


def _guarded_pass(
    rt: Runtime,
    result: PassResult,
    *,
    only: str | None,
    wait: float,
    force_prune: bool,
    say: Callable[[str], None],
    at: str | None = None,
) -> PassResult:
    """One pass that leaves a history row whatever happens: a lost lease ends it cleanly (recorded
    as failed), any other error is recorded, then raised to the caller."""
    try:
        return _one_pass(rt, result, only=only, wait=wait, force_prune=force_prune, say=say, at=at)
    except LeaseLost as lost:
        result.failure = f"stopped: {lost}; nothing more was written, the lease's new holder carries on"
        log.warning(result.failure, extra={"pass_id": result.id, "trigger": result.trigger})
        _record(rt, result)
        return result
    except Exception as exc:
        _record_failure(rt, result, exc)
        raise


def _record_failure(rt: Runtime, result: PassResult, exc: Exception) -> None:
    result.failure = _describe_failure(exc)
    log.error("pass failed", extra={"pass_id": result.id, "trigger": result.trigger, "error": result.failure})
    _record(rt, result)


def _describe_failure(exc: Exception) -> str:
    from synoscd.state.table import StateError

    first = (str(exc).splitlines() or [""])[0][:300]
    if isinstance(exc, StateError):
        return first
    module = type(exc).__module__
    if module.startswith(("azure.core", "azure.data.tables", "requests", "urllib3")) and not isinstance(
        exc, ArmError
    ):
        return f"the state store did not answer ({type(exc).__name__}: {first}); check SYNOSCD_STATE_STORE"
    return first or type(exc).__name__


def _record_errors(result: PassResult) -> list[str]:
    """What the pass record says went wrong: why it stopped, the source error, why the sync failed,
    then the manifest errors (`get status` shows them; an outcome alone does not say what to do)."""
    reasons = [
        result.failure,
        f"source error: {result.source_error}" if result.source_error else None,
        result.operation_error,
    ]
    said = [r for r in reasons if r] + [e["message"] if "message" in e else str(e) for e in result.errors]
    return said or (result.left_behind() if result.outcome == "partial" else [])


def _record(rt: Runtime, result: PassResult) -> None:
    """The pass's history row; kept in memory and written later when the store does not answer."""
    if result.finished_at is None:
        result.finished_at = time.time()
    _summarise(rt, result)
    errors = _record_errors(result)
    history.record_pass_or_keep(
        rt.table,
        history.PassRecord(
            id=result.id,
            trigger=result.trigger,
            started_at=result.started_at,
            finished_at=result.finished_at,
            revision=result.revision,
            outcome=result.outcome,
            counts=result.counts,
            errors=errors[:50],
            prune=(
                {"enabled": result.plan.prune_enabled, "blocked": result.plan.prune_blocked}
                if result.plan is not None
                else {}
            ),
            notes=result.notes,
            trace_id=result.trace_id,
        ),
    )


@traced_pass
def _one_pass(
    rt: Runtime,
    result: PassResult,
    *,
    only: str | None,
    wait: float,
    force_prune: bool,
    say: Callable[[str], None],
    at: str | None = None,
) -> PassResult:
    trigger, dry_run = result.trigger, result.dry_run
    ctx = {"pass_id": result.id, "trigger": trigger, "dry_run": dry_run}
    telemetry.annotate(pass_id=result.id)
    result.trace_id = telemetry.trace_id()
    log.info("pass started", extra=ctx)

    say("reading the state table and the source, listing live apps and jobs")
    # Independent reads, side by side:
    # 1. runtime settings, per-app flags and memory, the operation (Table Storage; env gives defaults)
    # 2. desired (snapshot -> parse -> validate)
    # 3. live (list apps and jobs; revisions only where health needs them)
    with ThreadPoolExecutor(max_workers=4) as pool:
        live_future = pool.submit(telemetry.bind(_live), rt)
        state_future = pool.submit(telemetry.bind(_state), rt)
        synth_future = pool.submit(telemetry.bind(synth_step.load_state), rt)
        snapshot, desired = _desired(rt, result, at)
        telemetry.annotate(revision=result.revision)
        settings, flags, statuses, current = state_future.result()
        live = live_future.result()
        synth_read = synth_future.result()
    retry = retry_of(settings)
    synthesized = None
    if desired is not None and snapshot is not None:  # 3b. synthesize: Compositions -> Apps and Jobs
        synthesized = synth_step.run(
            rt,
            desired,
            snapshot,
            settings,
            synth_read,
            live,
            wait=0.0 if dry_run else wait,
            dry_run=dry_run,
            retry=retry.backoff,
        )
        desired = synthesized.desired
        result.synthesis = synthesized.summary() if synthesized.state.compositions else None
    if desired is not None:  # the operator guardrails are runtime settings: checked on every pass
        desired = apply_guardrails(desired, settings.guardrails(rt.settings.keyvault_hosts))
        result.errors = [e.to_dict() for e in desired.errors]
    # 3c. a change of a Project's defaults rolls out one app at a time: which apps wait (pure)
    defaults = synth_step.roll_defaults(desired, settings, synth_read, live, result.revision, only)

    # 4. plan (pure)
    target = Target(
        rt.arm.environment().id,
        rt.arm.environment().location,
        snapshot.source if snapshot else rt.settings.source_label,
        result.revision or "unknown",
        rt.target_name,
    )
    items = _render(desired, target, snapshot, rt, synthesized) if desired else ()
    op = select(current, result.revision, trigger, time.time()) if snapshot else None
    result.operation = op
    syncing = op is not None and op.status == "Running"
    inp = PlanInput(
        desired=items,
        complete=bool(desired and desired.complete and snapshot),
        live=live,
        now=time.time(),
        prune_enabled=settings.prune_enabled,
        protected=frozenset(a.lower() for a in settings.protected_apps),
        suspended=frozenset(n.lower() for n, f in flags.items() if f.suspended),
        # A running sync retries what it has to write (its own retry backs off); healing backs off per app.
        memory={} if syncing else record.memory_of(statuses),
        max_prune_fraction=rt.settings.prune_max_fraction,
        force_prune=force_prune,
        incomplete_reason=_incomplete_reason(result),
        only=("", only) if only else None,
        done=frozenset(op.done) if op else frozenset(),
        prune_last=rt.settings.prune_last,
        sync_failed=failure_note(op) if op is not None and op.status == "Failed" else None,
        held=frozenset(op.pending) if op is not None else frozenset(),
        rollout_pending=defaults.held if defaults is not None else {},
        environment_id=target.environment_id,
        source=target.source,
        target=target.name,
    )
    with telemetry.span("synoscd.plan", {"synoscd.resources": len(items)}) as planned:
        result.plan = plan(inp, result.revision or "unknown")
        planned.set("synoscd.actions", len(result.plan.actions))
        planned.set("synoscd.writes", len(result.plan.writes))
    say(f"planned {len(result.plan.actions)} actions, {len(result.plan.writes)} writes")
    if dry_run:
        result.finished_at = time.time()
        return result

    # 5. execute, wave by wave: bounded concurrency, long-running operations within the budget; a sync
    #    that failed and waits for its retry (or has none left) only heals what it already synced
    if op is not None:
        result.mode = "sync" if syncing else "heal"

        def save_operation(o: Operation) -> None:
            rt.budget.check()  # the operation row is the lease holder's to write
            operation.save(rt.table, o)

        if current is None or current.revision != op.revision or current.status != op.status:
            save_operation(op)  # a new operation (or a retry): kept before anything is written
        runner = Runner(
            result.plan,
            rt.arm,
            op,
            max_concurrent=settings.max_concurrent,
            deadline=time.monotonic() + wait,
            before_delete=lambda a: history.put_tombstone(
                rt.table, a.kind, a.name, dict(a.live or {}), result.id
            ),
            save=save_operation,
            health_of=lambda o: record.health_after(o.action, o, lambda app, rev: rt.arm.revision(app, rev)),
            say=say,
            retry=retry,
        )
        result.outcomes = runner.run()
        for o in result.outcomes:
            if o.result == "failed":
                log.warning(
                    f"{o.action.action} {o.action.kind} {o.action.name} failed",
                    extra={
                        "pass_id": result.id,
                        "app": o.action.name,
                        "kind": o.action.kind,
                        "action": o.action.action,
                        "revision": result.revision,
                        "error": o.error,
                    },
                )
        if op.status == "Failed":
            result.operation_error = failure_note(op)
            say(result.operation_error)
    if synthesized is not None:  # compositions that changed, and the rollout
        synth_step.save(rt, synth_read, synthesized)
    if defaults is not None:  # Project records and the defaults rollout
        synth_step.save_defaults(rt, synth_read, defaults)
    # 6. record: per-app status (only what changed), the pass summary
    recording = telemetry.start("synoscd.record")
    changed = record.statuses(
        result.plan,
        result.outcomes,
        statuses,
        result.revision,
        result.id,
        time.time(),
        revision_reader=lambda app, rev: rt.arm.revision(app, rev),
        backoff=retry.backoff,
    )
    result.finished_at = time.time()
    rt.budget.check()  # status rows are the lease holder's to write
    # What was written, for `synos rollback` (one body per revision, a bounded ring per resource).
    written = record.applied_bodies(
        result.outcomes, {**statuses, **{s.row_key: s for s in changed}}, result.id, result.finished_at
    )
    with ThreadPoolExecutor(max_workers=2) as pool:  # the commit status goes out while statuses are written
        reported = pool.submit(telemetry.bind(_report), rt, result)
        kept = pool.submit(telemetry.bind(applied.put), rt.table, written, settings.applied_history)
        apps.put_statuses(rt.table, changed)
        reported.result()
        kept.result()
    if snapshot is not None:  # e.g. a force-push applied as pushed: the pass record says so
        result.notes = [*snapshot.notes, *snapshot.later_notes()]
        for note in result.notes:
            log.warning(note, extra={"pass_id": result.id, "revision": snapshot.revision})
    history.record_pass(
        rt.table,
        history.PassRecord(
            id=result.id,
            trigger=trigger,
            started_at=result.started_at,
            finished_at=result.finished_at,
            revision=result.revision,
            outcome=result.outcome,
            counts=result.counts,
            errors=_record_errors(result)[:50],  # `synos history` and `reconcile` show why
            prune={"enabled": result.plan.prune_enabled, "blocked": result.plan.prune_blocked},
            notes=result.notes,
            trace_id=result.trace_id,
        ),
    )
    _summarise(rt, result)
    recording.end()
    after_record(result, statuses, changed, healing=result.mode == "heal")
    # Sync events to the configured providers, off the pass's path: bounded, never failing it.
    notify.after_pass(rt, result, changed)
    if snapshot is not None:  # the source's cache for a future cold instance, after the pass's own work
        threading.Thread(
            target=getattr(rt.source(), "persist", lambda: None), name="persist", daemon=True
        ).start()
    log.info(
        "pass finished",
        extra={
            **ctx,
            "outcome": result.outcome,
            "counts": result.counts,
            "revision": result.revision,
            "duration_ms": result.to_dict()["durationMs"],
        },
    )
    return result


def _summarise(rt: Runtime, result: PassResult) -> None:
    """The target's row of the fleet overview (synoscd/fleet/summary.py); never fails the pass."""
    from synoscd.fleet import summary

    with contextlib.suppress(Exception):
        summary.record(rt, result, result.watch)


def _watched(desired: DesiredSet, folder: str) -> tuple[str, ...]:
    """Files outside the target's folder its manifests read: a push changing one runs its pass."""
    from synoscd.manifests.schema import Composition

    paths: set[str] = set()
    for res in desired.resources:
        if isinstance(res.manifest, App):
            paths.update(res.manifest.spec.config_from)
    for res in desired.synth:
        if isinstance(res.manifest, Composition):
            paths.update(i.file for i in res.manifest.spec.inputs if i.file)
    prefix = folder.strip("/")
    return tuple(sorted(p for p in paths if prefix and not (p == prefix or p.startswith(prefix + "/"))))


COMMIT_STATES = {"succeeded": "success", "failed": "failure", "partial": "pending"}


def _report(rt: Runtime, result: PassResult) -> None:
    """Post the outcome as a commit status when it differs from what the last pass reported."""
    state = COMMIT_STATES.get(result.outcome)
    source = rt.source() if state and result.revision else None
    if source is None or not hasattr(source, "report"):
        return
    last = history.list_passes(rt.table, limit=1)
    if last and last[0].revision == result.revision and COMMIT_STATES.get(last[0].outcome) == state:
        return  # nothing new to say: a no-change pass costs no GitHub request
    counts = ", ".join(f"{v} {k}" for k, v in sorted(result.counts.items()))
    source.report(result.revision, state, f"SynosCD {result.outcome}: {counts}")


@telemetry.traced("synoscd.state.read")
def _state(rt: Runtime) -> tuple[Any, Any, Any, Operation | None]:
    return (
        runtime.load(rt.table, rt.settings),
        apps.get_flags(rt.table),
        apps.get_statuses(rt.table),
        operation.load(rt.table),
    )


@telemetry.traced("synoscd.source.fetch")
def _desired(rt: Runtime, result: PassResult, at: str | None) -> tuple[Snapshot | None, DesiredSet | None]:
    try:
        snapshot = rt.source().snapshot(at=at) if at else rt.source().snapshot()
    except SourceError as exc:
        result.source_error = str(exc)
        log.warning("source error: no prune this pass", extra={"pass_id": result.id, "error": str(exc)})
        return None, None
    result.revision = snapshot.revision
    desired = rt.parsed(snapshot, load_desired)
    # Files the source could not read (links out of the repository, too large, ...): errors of the
    # desired set, which is then incomplete (no prune).
    unread = [
        ManifestError(path, 1, "", f"{why} (not read: no prune until it is fixed)")
        for path, why in sorted(snapshot.problems.items())
    ]
    desired = with_errors(fit_target(desired, rt.target_name, rt.settings.targets_path), unread)
    result.errors = [e.to_dict() for e in desired.errors]
    if not snapshot.files:  # a wrong config path or branch looks like this: say so, never silently
        result.warnings.append(f"no manifests found under {snapshot.source} at {snapshot.revision}")
        log.warning(result.warnings[-1], extra={"pass_id": result.id})
    result.watch = _watched(desired, snapshot_folder(rt.settings.github_config_path))
    return snapshot, desired


def _incomplete_reason(result: PassResult) -> str:
    if result.source_error:
        return f"source error: {result.source_error}"
    if result.errors:
        first = result.errors[0]
        return f"{len(result.errors)} manifest error(s), first {first.get('file')}:{first.get('line')}"
    return ""


def _render(
    desired: DesiredSet, target: Target, snapshot: Snapshot | None, rt: Runtime, synthesized: Any = None
) -> tuple[DesiredItem, ...]:
    items = []
    for res in desired.resources:
        manifest = res.manifest
        spec = sync_spec(manifest.metadata.annotations)
        tags = sync_tags(spec.wave if spec.wave_set else None, spec.options, spec.hook_phases)
        if synthesized is not None:  # made by a composition: its name tags the resource
            tags.update(synthesized.tags_for(res))
        if isinstance(manifest, App):
            digest = _config_hash(manifest, snapshot, rt) if manifest.spec.config_from else None
            body = app_envelope(manifest, target, digest, tags)
        else:
            body = job_envelope(manifest, target, None, tags, manual=spec.is_hook)  # type: ignore[arg-type]
        items.append(
            DesiredItem(
                res.kind,
                res.name,
                body,
                res.file,
                res.line,
                suspend=manifest.spec.suspend,
                wave=spec.wave,
                hooks=spec.hooks,
                policies=spec.delete_policies,
            )
        )
    return tuple(items)


def _config_hash(app: App, snapshot: Snapshot | None, rt: Runtime) -> str:
    parts: dict[str, bytes | str | None] = {}
    for path in app.spec.config_from:
        parts[f"file:{path}"] = snapshot.read(path) if snapshot else None
    for name, url in app.spec.secrets.items():
        parts[f"secret:{name}"] = rt.secret_version(url)
    return config_hash(parts)


@telemetry.traced("synoscd.live.list")
def _live(rt: Runtime) -> Mapping[tuple[str, str], LiveItem]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        apps_future = pool.submit(telemetry.bind(rt.arm.list), "App")
        jobs_future = pool.submit(telemetry.bind(rt.arm.list), "Job")
        app_bodies, job_bodies = apps_future.result(), jobs_future.result()
    troubled = [b for b in app_bodies if needs_revision(b)]
    revisions: dict[str, Any] = {}
    if troubled:
        with ThreadPoolExecutor(max_workers=min(8, len(troubled))) as pool:
            fetched = pool.map(
                telemetry.bind(lambda b: rt.arm.revision(b["name"], b["properties"]["latestRevisionName"])),
                troubled,
            )
            revisions = {b["name"]: r for b, r in zip(troubled, fetched, strict=True)}
    live: dict[tuple[str, str], LiveItem] = {}
    for body in app_bodies:
        health: Health = app_health(body, revisions.get(body["name"]))
        item = LiveItem("App", body["name"], body, health)
        live[item.key] = item
    for body in job_bodies:
        item = LiveItem("Job", body["name"], body, job_health(body))
        live[item.key] = item
    return live


__all__ = ["Action", "PassResult", "run_pass"]
