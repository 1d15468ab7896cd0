"""The fleet at a glance — `synos get targets`, GET /api/v1/targets and the dashboard's fleet page
build the same document: each declared target with its place, its last pass (outcome, revision,
counts, when) and its lease (held by which instance, requests pending, a pass queued).

Reads the deployment's table (the catalog and one `fleet` partition query for every target's last
pass) and each target's lease row, side by side: no GitHub and no ARM call."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from synoscd.fleet import catalog, summary


def _lease(rt: Any, name: str) -> dict[str, Any]:
    from synoscd.state import lease

    try:
        return lease.view(rt.for_target(name).table).to_dict()
    except Exception as exc:  # one unreadable target must not hide the others
        return {"error": str(exc).splitlines()[0][:200]}


def fleet_view(rt: Any) -> dict[str, Any]:
    rt = rt.deployment
    fleet = catalog.cached(rt)
    last = summary.read(rt)
    names = [t.name for t in fleet.targets]
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(names)))) as pool:
        leases = dict(zip(names, pool.map(lambda n: _lease(rt, n), names), strict=True))
    targets = []
    for target in fleet.targets:
        doc = target.to_dict()
        passed = last.get(target.name)
        doc["lastPass"] = {k: v for k, v in passed.items() if k != "watch"} if passed else None
        doc["watch"] = passed["watch"] if passed else []
        doc["lease"] = leases[target.name]
        targets.append(doc)
    return {"revision": fleet.revision, "targets": targets, "errors": fleet.errors}
