"""Compositions and rollouts: `synos get compositions`, `synos get rollouts`, `synos synth NAME`,
`synos rollout pause|resume`."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from synoscd.cli.output import CliError, emit, table
from synoscd.cli.prompt import add_yes, confirm

# The two rollouts (synth/state.py ROLLOUTS): compositions' deferred changes, Project defaults' changes.
ROLLOUTS = ("compositions", "projects")


def add(sub: Any) -> None:
    s = sub.add_parser(
        "synth",
        help="run one composition's synthesizer now and print its output or results",
        description="Read the source, run NAME's synthesizer over its inputs (executor exec: here, as a "
        "local process; executor job: an execution of its job in the target environment) and print the "
        "Apps and Jobs it writes, or its results. Records nothing: passes decide what applies. "
        "--dry-run prints the ResourceList the synthesizer would get instead of running it. Exit 1 when "
        "the synthesis fails.",
    )
    s.add_argument("name", help="the Composition")
    s.add_argument("--dry-run", action="store_true", help="print the input ResourceList, run nothing")
    s.set_defaults(run=synth)

    r = sub.add_parser(
        "rollout",
        help="pause or resume the deferred rollouts",
        description="synos rollout pause: no further composition takes a deferred change (a synthesizer "
        "or a defer: true input) and no further app a change of its Project's defaults until resumed. "
        "synos rollout resume: go on after a pause or a stop (an unhealthy app); the step that stopped "
        "it no longer gates. NAME (compositions or projects) steers one of the two rollouts; without it, "
        "both.",
    )
    r_sub = r.add_subparsers(dest="what", metavar="ACTION", required=True)
    for action in ("pause", "resume"):
        c = sub.child(r_sub, action, help=f"{action} the deferred rollouts")
        c.add_argument("name", nargs="?", choices=ROLLOUTS, help="one rollout (default: both)")
        add_yes(c)
        c.set_defaults(run=steer, action=action)


def add_get(sub: Any, get_sub: Any) -> None:
    """`synos get compositions` and `synos get rollouts` (registered by views.add)."""
    for name, fn, text in (
        (
            "compositions",
            get_compositions,
            "compositions: synthesizer, inputs' revisions, last synthesis, status",
        ),
        (
            "rollouts",
            get_rollouts,
            "the deferred rollouts (compositions, project defaults): status, why, what is pending, last step",
        ),
    ):
        g = sub.child(get_sub, name, help=text, description=text)
        g.set_defaults(run=fn)


def _rt() -> Any:
    from synoscd.engine.runtime import get_runtime

    return get_runtime()


def _ago(at: float | None) -> str:
    from synoscd.cli.views import ago

    return ago(at)


def get_compositions(args: argparse.Namespace) -> int:
    from synoscd.synth import state

    read = state.load(_rt().table)
    rows = [c.to_dict() for _, c in sorted(read.compositions.items())]
    emit(
        {"compositions": rows},
        args.output,
        lambda d: table(
            ["name", "synthesizer", "status", "revisions", "last synthesis", "apps", "error"],
            [
                (
                    c["name"],
                    c["synthesizer"],
                    c["status"],
                    ",".join(f"{k}={v}" for k, v in sorted(c["revisions"].items())) or "-",
                    _ago(c["lastSynthesis"]),
                    len(c["apps"]),
                    c["message"][:100],
                )
                for c in d["compositions"]
            ],
        ),
    )
    return 1 if any(c["status"] in ("Failed", "Invalid") for c in rows) else 0


def rollouts_doc(read: Any) -> dict[str, Any]:
    """The `get rollouts -o json` document of a loaded synth state (synth/state.SynthState): both
    rollouts under `rollouts`; the top-level fields stay the compositions' rollout, the document's
    shape before Project defaults had a rollout (machine output only gains fields, docs/cli.md)."""
    return {
        **read.rollout.to_dict(),
        "rollouts": [
            {"name": "compositions", **read.rollout.to_dict()},
            {"name": "projects", **read.projects_rollout.to_dict()},
        ],
    }


def _rollouts_table(doc: dict[str, Any]) -> str:
    return table(
        ["rollout", "status", "pending", "last step", "when", "reason"],
        [
            (
                r["name"],
                r["status"],
                ", ".join(r["pending"]) or "-",
                r["lastStep"] or "-",
                _ago(r["lastStepAt"]),
                r["reason"] or r["cause"] or "-",
            )
            for r in doc["rollouts"]
        ],
    )


def get_rollouts(args: argparse.Namespace) -> int:
    from synoscd.synth import state

    doc = rollouts_doc(state.load(_rt().table))
    emit(doc, args.output, _rollouts_table)
    return 1 if any(r["status"] == "Stopped" for r in doc["rollouts"]) else 0


def steer(args: argparse.Namespace) -> int:
    from synoscd.cli.control import who
    from synoscd.synth import rollout, state

    names = [args.name] if args.name else list(ROLLOUTS)
    what = f"the {args.name} rollout" if args.name else "the deferred rollouts"
    confirm(args, f"{args.action.capitalize()} {what}?")
    me = who()
    change = rollout.paused if args.action == "pause" else rollout.resumed
    rows = []
    for name in names:
        new = state.update_rollout(_rt().table, lambda s: change(s, me), state.ROLLOUTS[name])
        rows.append({"name": name, **new.to_dict()})
    top = {k: v for k, v in rows[0].items() if k != "name"}  # compositions' without NAME, as before
    emit(
        {**top, "rollouts": rows},
        args.output,
        lambda d: "\n".join(f"rollout {r['name']} {r['status']}: {r['reason']}" for r in d["rollouts"]),
    )
    return 0


def synth(args: argparse.Namespace) -> int:
    from synoscd.manifests.desired import load_desired
    from synoscd.synth import state as synth_state
    from synoscd.synth.inputs import Readers, read_inputs
    from synoscd.synth.pipeline import Context, _function_config, synthesize
    from synoscd.synth.protocol import resource_list
    from synoscd.synth.state import SynthState

    rt = _rt()
    snapshot = rt.source().snapshot()
    desired = load_desired(snapshot.files)
    comp = next((r for r in desired.synth if r.kind == "Composition" and r.name == args.name), None)
    if comp is None:
        problems = [e for e in desired.errors if args.name in e.message or args.name in e.file]
        hint = (
            f"; first error: {problems[0].file}:{problems[0].line}: {problems[0].message}" if problems else ""
        )
        raise CliError(f"no valid Composition {args.name!r} at {snapshot.revision[:12]}{hint}")
    if args.dry_run:
        inputs = read_inputs(comp.manifest, Readers(snapshot.read, rt.secret_version))  # type: ignore[arg-type]
        if inputs.errors:
            raise CliError(inputs.errors[0], code=1)
        doc = resource_list(inputs.resource_items(), _function_config(comp.manifest))  # type: ignore[arg-type]
        emit(doc, "json" if args.output == "table" else args.output)
        return 0

    def job_ready(name: str) -> bool | None:
        body = rt.arm.get("Job", name)
        if body is None:
            return None
        return (body.get("properties") or {}).get("provisioningState") == "Succeeded"

    read = synth_state.load(rt.table) if rt.settings.state_store else SynthState()
    current = read.compositions.get(args.name.lower())
    ctx = Context(
        desired=desired,
        files=snapshot.files,
        read=snapshot.read,
        revision=snapshot.revision,
        source=snapshot.source,
        # A fresh state for NAME: run it whatever its fingerprint, and never record it.
        state=SynthState(
            {k: v for k, v in read.compositions.items() if k != args.name.lower()}, read.rollout, read.rows
        ),
        live_health=lambda _app: ("Healthy", ""),
        live_job_ready=job_ready,
        live_tagged=lambda _c: [],
        now=time.time(),
        deadline=time.monotonic() + 600,
        max_output_bytes=rt.settings.synth_max_output_bytes,
        secret_version=rt.secret_version,
        job_executor=lambda: rt.synth_jobs,
        only=args.name,
    )
    result = synthesize(ctx)
    st = result.state.compositions[args.name.lower()]
    run = result.runs.get(args.name)
    doc: dict[str, Any] = {
        "composition": args.name,
        "synthesizer": st.synthesizer,
        "revision": snapshot.revision,
        "status": "Ready" if st.status == "Ready" else st.status,
        "error": st.message if st.status != "Ready" else None,
        "seconds": round(run.seconds, 3) if run else None,
        "results": [r.to_dict() for r in run.output.results] if run else [],
        "items": st.output if st.status == "Ready" else [],
        "inForce": {"status": current.status, "apps": current.apps} if current else None,
    }
    emit(doc, args.output, _synth_table)
    return 0 if st.status == "Ready" else 1


def _synth_table(doc: dict[str, Any]) -> str:
    lines = [
        f"composition {doc['composition']} (synthesizer {doc['synthesizer']}) at "
        f"{str(doc['revision'])[:12]}: {doc['status']}"
        + (f" in {doc['seconds']} s" if doc["seconds"] is not None else "")
    ]
    if doc["error"]:
        lines.append(f"error: {doc['error']}")
    if doc["items"]:
        rows = [(i["kind"], i["metadata"]["name"], i["spec"]["containers"][0]["image"]) for i in doc["items"]]
        lines.append(table(["kind", "name", "image"], rows))
    for r in doc["results"]:
        lines.append(f"{r['severity']}: {r['message']}" + (f" ({r['item']})" if r.get("item") else ""))
    if doc["items"]:
        lines.append("(-o yaml prints the manifests)")
    return "\n".join(lines) if lines else json.dumps(doc)
