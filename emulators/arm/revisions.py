"""Revisions of container apps: a new one only when the template changes, readiness when its
operation settles (never for a crashing image), single-revision mode's traffic hand-over."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from emulators.arm import versions
from emulators.arm.model import ArmError, Resource, now, suffix
from emulators.httpbase import Request, Response

if TYPE_CHECKING:
    from emulators.arm.emulator import ArmEmulator


def revision_template(template: dict[str, Any]) -> dict[str, Any]:
    """A revision's copy of the app template as ACA shows it: `revisionSuffix` null when none was
    given, containers without ephemeral storage and with `probes: []`
    (test_containerapp_ingress_traffic_e2e, the one recorded revision GET)."""
    t = copy.deepcopy(template)
    t["revisionSuffix"] = t.get("revisionSuffix") or None
    for c in t.get("containers") or []:
        (c.get("resources") or {}).pop("ephemeralStorage", None)
        c.setdefault("probes", [])
    return t


class RevisionsMixin:
    def _new_revision(self: ArmEmulator, res: Resource, domain: str) -> None:
        props = res.body["properties"]
        template = props["template"]
        rev_name = f"{res.name}--{template.get('revisionSuffix') or suffix()}"
        ingress = props["configuration"].get("ingress")
        fqdn = ""
        if ingress:
            fqdn = f"{rev_name}.{'' if ingress.get('external') else 'internal.'}{domain}"
        revision = {
            # A revision's id keeps the request path's `containerApps` (the app's own id says
            # `containerapps`): test_containerapp_ingress_traffic_e2e.
            "id": f"/subscriptions/{res.sub}/resourceGroups/{res.rg}/providers/Microsoft.App"
            f"/containerApps/{res.name}/revisions/{rev_name}",
            "name": rev_name,
            "type": "Microsoft.App/containerapps/revisions",
            "properties": {
                "createdTime": now(),
                "lastActiveTime": now(),
                "fqdn": fqdn,
                "template": revision_template(template),
                "active": True,
                "replicas": 0,
                "trafficWeight": 0,
                "healthState": "None",
                "provisioningState": "Provisioning",
                "runningState": "Processing",
            },
        }
        res.revisions.append(revision)
        props["latestRevisionName"] = rev_name
        props["latestRevisionFqdn"] = fqdn

    def _finish_revision(self: ArmEmulator, res: Resource) -> None:
        props = res.body["properties"]
        latest = res.revisions[-1] if res.revisions else None
        if latest is None or latest["properties"]["provisioningState"] != "Provisioning":
            return  # no revision of this write to finish (settled ones keep their state)
        rp = latest["properties"]
        images = {c.get("image") for c in rp["template"].get("containers", [])}
        if images & self.crashing_images:
            rp.update(
                provisioningState="Failed",
                runningState="Failed",
                healthState="Unhealthy",
                replicas=0,
                active=True,
            )
        else:
            min_replicas = (rp["template"].get("scale") or {}).get("minReplicas") or 0
            rp.update(
                provisioningState="Provisioned",
                runningState="Running",
                healthState="Healthy",
                replicas=max(1, int(min_replicas)),
                active=True,
            )
            props["latestReadyRevisionName"] = latest["name"]
            if props["configuration"].get("activeRevisionsMode") == "Single":
                # Single revision mode: the ready revision takes all traffic, the older ones go inactive.
                for older in res.revisions[:-1]:
                    older["properties"].update(
                        active=False, trafficWeight=0, replicas=0, runningState="Stopped"
                    )
                rp["trafficWeight"] = 100
        props["runningStatus"] = "Running" if props.get("latestReadyRevisionName") else "Progressing"

    def _revision_view(self: ArmEmulator, revision: dict[str, Any], api_version: str) -> dict[str, Any]:
        return versions.render("revisions", copy.deepcopy(revision), api_version, self.service_date)

    def _list_revisions(self: ArmEmulator, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        res = self._find("containerApps", rg, name)
        av = req.query["api-version"]
        return self._page(req, [self._revision_view(r, av) for r in res.revisions])

    def _get_revision(self: ArmEmulator, req: Request, sub: str, rg: str, name: str, rev: str) -> Response:
        self._guard(req, sub)
        res = self._find("containerApps", rg, name)
        for revision in res.revisions:
            if revision["name"].lower() == rev.lower():
                return Response.json(200, self._revision_view(revision, req.query["api-version"]))
        raise ArmError(
            404, "ContainerAppRevisionNotFound", f"Revision '{rev}' of app '{name}' was not found."
        )
