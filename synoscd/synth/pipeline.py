"""The synthesize step of a pass: parse -> validate -> **synthesize** -> render.

For every Composition: read its inputs, wait while their revisions disagree, fingerprint what the
synthesis depends on, and compare with the output in force. The same fingerprint runs nothing (the
cached output is used); a new one runs the synthesizer now (immediate) or when the rollout gives the
composition its turn (deferred). A failed synthesis keeps the last good output in force and says why;
its error also makes the desired set incomplete, so nothing is pruned that pass.

The outputs in force become manifest files of their own (`composition:<name>.yaml`) and go through
the same loader as hand-written ones, with the hand-written files: schema, rules, project defaults and
policy, duplicate names (two compositions producing one app name is an error for both), then the
operator guardrails like everything else. Each output item carries the label
`synoscd.io/composition` and its Azure resource the tag `synoscd-composition`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from synoscd.manifests.desired import DesiredSet, Resource, apply_guardrails, load_desired, with_errors
from synoscd.manifests.errors import ManifestError
from synoscd.manifests.policy import Guardrails
from synoscd.manifests.schema import API_VERSION, Composition, Synthesizer
from synoscd.synth import cache, rollout
from synoscd.synth.annotations import COMPOSITION_LABEL, COMPOSITION_TAG, IGNORE_SIDE_EFFECTS
from synoscd.synth.executors import repo_files, run_exec
from synoscd.synth.inputs import Inputs, Readers, read_inputs
from synoscd.synth.protocol import DEFAULT_MAX_OUTPUT_BYTES, Output, Run, encode, failed, resource_list
from synoscd.synth.state import CompositionState, RolloutState, SynthState
from synoscd.synth.validate import executor_of

log = logging.getLogger("synoscd.synth")

OUTPUT_PREFIX = "composition:"
JOB_PREFIX = "synthesizer:"
SYNTHESIZER_LABEL = "synoscd.io/synthesizer"
HEALTHY, DEGRADED, MISSING = "Healthy", "Degraded", "Missing"


def output_file(name: str) -> str:
    return f"{OUTPUT_PREFIX}{name}.yaml"


def job_file(name: str) -> str:
    return f"{JOB_PREFIX}{name}.yaml"


@dataclass
class Context:
    desired: DesiredSet  # the hand-written set (Synthesizers and Compositions in `synth`)
    files: Mapping[str, bytes]  # the snapshot's manifest files
    read: Callable[[str], bytes | None]  # any repository file at this revision
    revision: str | None
    source: str
    state: SynthState
    live_health: Callable[[str], tuple[str, str]]  # "Kind/name" -> (status, message)
    live_job_ready: Callable[[str], bool | None]  # job name -> provisioned? (None: absent)
    live_tagged: Callable[[str], list[str]]  # composition -> live managed resources tagged with it
    now: float
    deadline: float  # monotonic: how long this pass may wait for job executions
    allow_exec: bool = False
    cooldown: float = 60.0
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    retry_seconds: Callable[[int], float] = lambda attempts: 60.0 * 2 ** max(attempts - 1, 0)
    secret_version: Callable[[str], str | None] = lambda _url: None
    job_executor: Callable[[], Any] | None = None  # built lazily: blobs + ARM
    guardrails: Guardrails | None = None
    dry_run: bool = False
    only: str | None = None  # `synos synth NAME`: this composition only, always run


@dataclass
class Result:
    desired: DesiredSet  # hand-written + synthesized, with composition errors
    origins: dict[str, str] = field(default_factory=dict)  # synthesized file -> composition
    state: SynthState = field(default_factory=SynthState)
    rollout: RolloutState | None = None  # None: unchanged
    gone: list[str] = field(default_factory=list)  # compositions that left Git (rows to delete)
    ran: list[str] = field(default_factory=list)
    runs: dict[str, Run] = field(default_factory=dict)  # `synos synth`: what each run answered
    would: dict[str, str] = field(default_factory=dict)  # a dry run: composition -> why it would run

    def summary(self) -> dict[str, Any]:
        comps = self.state.compositions.values()
        counts: dict[str, int] = {}
        for c in comps:
            counts[c.status] = counts.get(c.status, 0) + 1
        out = {"compositions": len(self.state.compositions), "ran": list(self.ran), "status": counts}
        if self.would:  # a dry run (a pull-request preview) never synthesises: what merging would
            out["wouldRun"] = [{"composition": c, "why": why} for c, why in sorted(self.would.items())]
        return out

    def tags_for(self, resource: Resource) -> dict[str, str]:
        composition = self.origins.get(resource.file)
        return {COMPOSITION_TAG: composition} if composition else {}


def synthesize(ctx: Context) -> Result:
    synthesizers = {r.name: r for r in ctx.desired.synth if isinstance(r.manifest, Synthesizer)}
    compositions = [r for r in ctx.desired.synth if isinstance(r.manifest, Composition)]
    state = SynthState(
        {k: dataclasses.replace(v) for k, v in ctx.state.compositions.items()},
        ctx.state.rollout,
        ctx.state.rows,
    )
    result = Result(ctx.desired, state=state)
    if not synthesizers and not compositions and not ctx.state.compositions:
        return result
    names = {c.name.lower() for c in compositions}
    result.gone = [n for n in ctx.state.compositions if n not in names]
    for name in result.gone:
        state.compositions.pop(name, None)

    errors: list[ManifestError] = []
    deferred: list[tuple[Resource, Plan]] = []
    for comp in compositions:
        if ctx.only is not None and comp.name != ctx.only:
            continue
        plan = _plan(ctx, comp, synthesizers, state)
        if ctx.dry_run and plan.run is not None:
            result.would[comp.name] = plan.why
        if plan.run == cache.DEFERRED and ctx.only is None:
            deferred.append((comp, plan))
        elif plan.run is not None:
            _execute(ctx, comp, plan, state, result)

    if deferred and ctx.only is None:
        _roll(ctx, deferred, state, result)

    # What goes into the union, by identity: an output in force is fixed by its fingerprint, a
    # synthesizer's job by its spec. The YAML is written only when the union is not kept already.
    parts: dict[str, tuple[str, Callable[[], list[dict[str, Any]]]]] = {}
    for comp in compositions:
        st = state.compositions.get(comp.name.lower())
        if st is not None and st.output is not None:
            path = output_file(comp.name)
            parts[path] = (st.key or cache.digest(st.output), lambda st=st: st.output or [])
            result.origins[path] = comp.name
        errors += _errors(ctx, comp, st)
    for synth in synthesizers.values():
        job = synthesizer_job(synth.manifest)  # type: ignore[arg-type]
        if job is not None:
            parts[job_file(synth.name)] = (cache.digest(job), lambda job=job: [job])
    result.desired = with_errors(_union(ctx, parts), errors)
    _attribute(result)
    return result


# -- one composition ---------------------------------------------------------------------------------


@dataclass
class Plan:
    synthesizer: Synthesizer | None
    fingerprint: cache.Fingerprint | None = None
    inputs: Inputs | None = None
    run: str | None = None  # immediate | deferred | None (nothing to run)
    why: str = ""


def _plan(ctx: Context, comp: Resource, synthesizers: dict[str, Resource], state: SynthState) -> Plan:
    manifest = comp.manifest
    assert isinstance(manifest, Composition)
    st = state.compositions.setdefault(comp.name.lower(), CompositionState(comp.name))
    st.name, st.synthesizer = comp.name, manifest.spec.synthesizer
    synth_res = synthesizers.get(manifest.spec.synthesizer)
    if synth_res is None:  # validation reports it; keep the output in force
        return Plan(None)
    synth = synth_res.manifest
    assert isinstance(synth, Synthesizer)
    inputs = read_inputs(manifest, Readers(ctx.read, ctx.secret_version))
    st.revisions = inputs.revisions
    if inputs.errors:
        _set(st, "Failed", inputs.errors[0] + "; the last good output stays in force")
        return Plan(synth, inputs=inputs)
    waiting = inputs.disagreement()
    if waiting and ctx.only is None:
        _set(st, "Waiting", waiting)
        return Plan(synth, inputs=inputs)
    fp = cache.Fingerprint(
        _synthesizer_identity(synth, ctx.read),
        cache.digest(_function_config(manifest)),
        {i.key: i.digest for i in inputs.items},
        frozenset(i.key for i in inputs.items if i.defer),
    )
    last = cache.Fingerprint.from_dict(st.fingerprint)
    kind = cache.classify(fp, last, manifest.metadata.annotations.get(IGNORE_SIDE_EFFECTS) == "true")
    plan = Plan(synth, fp, inputs, why=cache.why(fp, last))
    if ctx.only is not None:
        plan.run = cache.IMMEDIATE
        return plan
    if kind == cache.SAME:
        _set(st, "Ready", "")
        st.inflight = {} if st.inflight and st.inflight.get("key") != fp.key else st.inflight
        return plan
    if kind == cache.IGNORED:
        _set(st, "Ready", f"not re-synthesised for: {plan.why} ({IGNORE_SIDE_EFFECTS})")
        return plan
    if st.failed_key == fp.key and st.next_retry_at is not None and ctx.now < st.next_retry_at:
        return plan  # failed with exactly this; status and message stay until the retry is due
    if st.inflight and st.inflight.get("key") != fp.key:
        st.inflight = {}  # a job running for an older fingerprint: its answer is no longer wanted
    plan.run = kind
    return plan


def _execute(ctx: Context, comp: Resource, plan: Plan, state: SynthState, result: Result) -> bool:
    """Run (or look in on) one synthesis. True when a new output came into force."""
    st = state.compositions[comp.name.lower()]
    assert plan.synthesizer is not None and plan.fingerprint is not None and plan.inputs is not None
    if ctx.dry_run:
        _set(st, st.status if st.status != "New" else "Pending", f"would synthesise ({plan.why})")
        return False
    run = _run(ctx, comp, plan, st)
    if run is None:
        return False
    result.runs[comp.name] = run
    result.ran.append(comp.name)
    st.attempted_at = ctx.now
    output = run.output
    if output.ok:
        output = _checked(ctx, comp, output)
    if not output.ok:
        st.failed_key = plan.fingerprint.key
        st.attempts += 1
        st.next_retry_at = ctx.now + ctx.retry_seconds(st.attempts)
        detail = (output.error or "") + (
            " ; stderr: " + _tail(run.log) if run.log.strip() and not output.items else ""
        )
        last_good = "the last good output stays in force" if st.output is not None else "no output yet"
        _set(st, "Failed", f"{detail}; {last_good}")
        st.warnings = output.warnings
        log.info("synthesis failed", extra={"composition": comp.name, "error": output.error})
        return False
    st.output = [dict(item) for item in output.items]
    st.fingerprint = plan.fingerprint.to_dict()
    st.synthesized_at, st.seconds = ctx.now, round(run.seconds, 3)
    st.failed_key, st.attempts, st.next_retry_at = None, 0, None
    st.warnings = output.warnings
    st.apps = sorted(f"{i['kind']}/{i['metadata']['name']}" for i in output.items)
    _set(st, "Ready", "")
    return True


def _run(ctx: Context, comp: Resource, plan: Plan, st: CompositionState) -> Run | None:
    synth = plan.synthesizer
    assert synth is not None and plan.fingerprint is not None and plan.inputs is not None
    manifest = comp.manifest
    assert isinstance(manifest, Composition)
    payload = encode(resource_list(plan.inputs.resource_items(), _function_config(manifest)))
    timeout = float(synth.spec.timeout_seconds)
    if executor_of(synth) == "exec":
        if not ctx.allow_exec and ctx.only is None:
            _set(
                st,
                "Failed",
                f"synthesizer {synth.metadata.name} uses executor exec, which is off; an operator enables it "
                "with synos set --allow-exec-synthesizers",
            )
            return None
        files = repo_files(synth.spec.command, ctx.read)
        return run_exec(list(synth.spec.command), payload, files, timeout, ctx.max_output_bytes)
    return _run_job(ctx, synth, plan, st, payload, timeout)


def _run_job(
    ctx: Context, synth: Synthesizer, plan: Plan, st: CompositionState, payload: bytes, timeout: float
) -> Run | None:
    assert plan.fingerprint is not None and synth.spec.image is not None
    if ctx.job_executor is None:
        return Run(failed("executor job is not available here (no ARM)"))
    try:
        executor = ctx.job_executor()
    except Exception as exc:
        return Run(failed(str(exc)))
    name = synth.metadata.name
    wait = max(0.0, ctx.deadline - time.monotonic())
    if not st.inflight:
        ready = ctx.live_job_ready(name)
        if not ready:
            what = "is being created" if ready is None else "is provisioning"
            _set(st, "Pending", f"synthesizer job {name} {what}; synthesis runs once it is ready")
            return None
        try:
            st.inflight = executor.start(
                name,
                synth.spec.image,
                synth.spec.cpu,
                synth.spec.memory,
                payload,
                timeout,
                plan.fingerprint.key,
            )
        except Exception as exc:
            return Run(failed(f"could not start synthesizer job {name}: {exc}"))
    try:
        run = executor.poll(st.inflight, ctx.max_output_bytes, min(wait, timeout + 60))
    except Exception as exc:
        st.inflight = {}
        return Run(failed(f"could not read synthesizer job {name}'s execution: {exc}"))
    if run is None:
        _set(st, "Running", f"job execution {st.inflight.get('execution')} is running")
        return None
    st.inflight = {}
    return run


def _roll(ctx: Context, deferred: list[tuple[Resource, Plan]], state: SynthState, result: Result) -> None:
    """At most one deferred change per pass, health-gated, `cooldown` apart."""

    def unhealthy_first(item: tuple[Resource, Plan]) -> tuple[int, str]:
        st = state.compositions[item[0].name.lower()]
        sick = any(ctx.live_health(app)[0] == DEGRADED for app in st.apps)
        return (0 if sick else 1, item[0].name)

    ordered = sorted(deferred, key=unhealthy_first)
    pending = [comp.name for comp, _plan in ordered]
    causes = sorted({plan.why for _c, plan in ordered})
    decision = rollout.decide(
        state.rollout, pending, ctx.live_health, ctx.now, ctx.cooldown, ctx.revision, "; ".join(causes)[:300]
    )
    new = decision.state
    for comp, item in ordered:
        st = state.compositions[comp.name.lower()]
        if comp.name != decision.go:
            _set(
                st,
                "Pending",
                f"deferred ({item.why}); {decision.wait or new.reason or 'waiting for its turn'}",
            )
    if decision.go is not None and not ctx.dry_run:
        comp, plan = next(item for item in ordered if item[0].name == decision.go)
        st = state.compositions[comp.name.lower()]
        if _execute(ctx, comp, plan, state, result):
            new = rollout.stepped(new, comp.name, list(st.apps), ctx.now)
        elif st.status == "Failed":
            new = rollout.stopped_by_failure(new, comp.name, st.message, ctx.revision)
    if new != state.rollout:
        result.rollout = new
        state.rollout = new


# -- pieces ------------------------------------------------------------------------------------------


def synthesizer_job(synth: Synthesizer) -> dict[str, Any] | None:
    """The ACA Job an `executor: job` synthesizer runs as: managed like any Job (created, healed,
    pruned with the synthesizer, under the guardrails); synthesis starts executions of it."""
    if executor_of(synth) != "job" or synth.spec.image is None:
        return None
    name = synth.metadata.name
    return {
        "apiVersion": API_VERSION,
        "kind": "Job",
        "metadata": {"name": name, "labels": {SYNTHESIZER_LABEL: name}},
        "spec": {
            "containers": [
                {
                    "name": "synthesizer",
                    "image": synth.spec.image,
                    "cpu": synth.spec.cpu,
                    "memory": synth.spec.memory,
                }
            ],
            "triggerType": "Manual",
            "replicaTimeout": synth.spec.timeout_seconds,
            "replicaRetryLimit": 0,
        },
    }


def _synthesizer_identity(synth: Synthesizer, read: Callable[[str], bytes | None]) -> str:
    spec = synth.spec.model_dump(mode="json", by_alias=True)
    files = {p: hashlib.sha256(c).hexdigest() for p, c in repo_files(synth.spec.command, read).items()}
    return cache.digest({"spec": spec, "files": files})


def _function_config(comp: Composition) -> dict[str, Any]:
    """The composition as the synthesizer sees it (KRM functionConfig)."""
    return comp.model_dump(mode="json", by_alias=True, exclude_defaults=False)


def _labelled(items: tuple[dict[str, Any], ...], composition: str) -> list[dict[str, Any]]:
    out = []
    for item in items:
        item = dict(item)
        metadata = dict(item.get("metadata") or {})
        labels = metadata.get("labels")
        metadata["labels"] = {**(labels if isinstance(labels, dict) else {}), COMPOSITION_LABEL: composition}
        item["metadata"] = metadata
        out.append(item)
    return out


def _yaml(items: list[dict[str, Any]]) -> bytes:
    return yaml.safe_dump_all(items, sort_keys=True, allow_unicode=True).encode()


def _checked(ctx: Context, comp: Resource, output: Output) -> Output:
    """Output items validated exactly like hand-written manifests: schema, rules, the projects'
    defaults and policy (with the project files of this revision), and the operator guardrails."""
    items = _labelled(output.items, comp.name)
    path = output_file(comp.name)
    files = {r.file: ctx.files[r.file] for r in ctx.desired.projects if r.file in ctx.files}
    files[path] = _yaml(items)
    checked = load_desired(files)
    if ctx.guardrails is not None:
        checked = apply_guardrails(checked, ctx.guardrails)
    problems = [e for e in checked.errors if e.file == path]
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        where = _item_at(items, first)
        return Output(output.items, output.results, f"output {where}{first.field}: {first.message}{more}")
    return Output(tuple(items), output.results, None)


def _item_at(items: list[dict[str, Any]], error: ManifestError) -> str:
    """'App web-1: ' for the item whose YAML document holds the error's line."""
    text = _yaml(items).decode().splitlines()
    doc, line_no = 0, 0
    for line_no, line in enumerate(text, 1):
        if line_no >= error.line:
            break
        if line == "---":
            doc += 1
    if doc < len(items):
        item = items[doc]
        return f"{item.get('kind')} {item.get('metadata', {}).get('name')}: "
    return ""


_UNION_LOCK = threading.Lock()
_UNION: dict[str, Any] = {}


def _union(ctx: Context, parts: dict[str, tuple[str, Callable[[], list[dict[str, Any]]]]]) -> DesiredSet:
    """Hand-written and synthesized manifests loaded together (so duplicates across them are found);
    kept per (revision, identities of the synthesized files) on a warm instance: a no-change pass
    neither writes nor loads anything."""
    if not parts:
        return ctx.desired
    key = cache.digest(
        [ctx.source, ctx.revision, sorted((path, ident) for path, (ident, _) in parts.items())]
    )
    with _UNION_LOCK:
        if _UNION.get("key") == key:
            return _UNION["set"]  # type: ignore[no-any-return]
    synthesized = {path: _yaml(items()) for path, (_ident, items) in parts.items()}
    union = load_desired({**ctx.files, **synthesized})
    # Files the source could not read stay errors of the set (with_errors added them to ctx.desired).
    extra = [e for e in ctx.desired.errors if e not in union.errors and e.file not in ctx.files]
    union = with_errors(union, extra)
    with _UNION_LOCK:
        _UNION.update(key=key, set=union)
    return union


def _errors(ctx: Context, comp: Resource, st: CompositionState | None) -> list[ManifestError]:
    """A composition that failed, or has no output while Azure holds resources it made, makes the set
    incomplete: no prune this pass."""
    if st is None:
        return []
    if st.status == "Failed":
        return [ManifestError(comp.file, comp.line, "spec", f"composition '{comp.name}': {st.message}")]
    if st.output is None and st.status in ("Waiting", "Pending", "Running"):
        tagged = ctx.live_tagged(comp.name)
        if tagged:
            return [
                ManifestError(
                    comp.file,
                    comp.line,
                    "spec",
                    f"composition '{comp.name}' has no output yet ({st.message}) while {len(tagged)} "
                    f"resource(s) it made exist ({', '.join(tagged[:3])}); no prune until it has",
                )
            ]
    return []


def _attribute(result: Result) -> None:
    """Errors found in a composition's output after loading (project policy, duplicates) are its status."""
    by_comp: dict[str, ManifestError] = {}
    for error in result.desired.errors:
        comp = result.origins.get(error.file)
        if comp is not None and comp not in by_comp:
            by_comp[comp] = error
    for comp, error in by_comp.items():
        st = result.state.compositions.get(comp.lower())
        if st is not None and st.status in ("Ready", "Pending", "Waiting"):
            _set(st, "Invalid", f"{error.field}: {error.message}" if error.field else error.message)


def _set(st: CompositionState, status: str, message: str) -> None:
    st.status, st.message = status, message[:1000]


def _tail(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""
