"""Container apps: PUT (whole body), PATCH (JSON merge patch of the stored body, then the same
rules), GET/list at any api-version, DELETE, listSecrets."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from emulators.arm import shapes, timeline
from emulators.arm.model import Resource, merge_patch, now
from emulators.arm.regions import display_name
from emulators.httpbase import Request, Response

if TYPE_CHECKING:
    from emulators.arm.emulator import ArmEmulator

STATUS_FIELDS = ("latestRevisionName", "latestReadyRevisionName", "latestRevisionFqdn", "runningStatus")


class AppsMixin:
    def _app_body(
        self: ArmEmulator,
        rg: str,
        name: str,
        envelope: dict[str, Any],
        previous: Resource | None,
        env: dict[str, Any],
    ) -> dict[str, Any]:
        create = previous is None
        props_in = envelope.get("properties") or {}
        connected = env["type"].endswith("connectedEnvironments")
        domain = env["properties"]["defaultDomain"]
        props: dict[str, Any] = {
            "provisioningState": "InProgress",
            "runningStatus": "Progressing",
            # A connected (Arc) environment is no managed one (test_containerapp_preview_environment_type).
            "managedEnvironmentId": None if connected else env["id"],
            "environmentId": env["id"],
            "workloadProfileName": props_in.get("workloadProfileName")
            or (None if connected else "Consumption"),
            "patchingMode": "Automatic",
            "outboundIpAddresses": None if connected else ["127.0.0.1"],
            "latestRevisionName": "",
            "latestReadyRevisionName": "",
            "latestRevisionFqdn": "",
            "customDomainVerificationId": env["properties"]["customDomainConfiguration"][
                "customDomainVerificationId"
            ],
            "configuration": shapes.app_configuration(
                props_in.get("configuration"),
                create and timeline.since(self.service_date, timeline.MAX_INACTIVE_REVISIONS_DEFAULT),
                name,
                domain,
            ),
            "template": shapes.app_template(props_in.get("template")),
            "eventStreamEndpoint": self._event_stream(env, rg, "containerApps", name),
            "delegatedIdentities": [],
        }
        if previous is not None:
            for carried in STATUS_FIELDS:
                props[carried] = previous.body["properties"].get(carried, props[carried])
        return self._envelope_body("containerApps", rg, name, envelope, previous, props)

    def _envelope_body(
        self: ArmEmulator,
        kind: str,
        rg: str,
        name: str,
        envelope: dict[str, Any],
        previous: Resource | None,
        props: dict[str, Any],
    ) -> dict[str, Any]:
        """The top level ARM adds around `props`: ids, location display name, tags, systemData, identity."""
        rid = self._resource_id(kind, rg, name)
        created = (previous.body.get("systemData") or {}).get("createdAt") if previous else None
        created = created or now()
        body: dict[str, Any] = {
            "id": rid,
            "name": name,
            "type": f"Microsoft.App/{kind}",
            "location": display_name(envelope["location"]),
        }
        if envelope.get("tags") is not None:
            body["tags"] = dict(envelope["tags"])
        if envelope.get("extendedLocation"):
            body["extendedLocation"] = copy.deepcopy(envelope["extendedLocation"])
        if envelope.get("kind"):
            body["kind"] = envelope["kind"]
        body["systemData"] = {
            "createdBy": "synoscd-local",
            "createdByType": "Application",
            "createdAt": created,
            "lastModifiedBy": "synoscd-local",
            "lastModifiedByType": "Application",
            "lastModifiedAt": now(),
        }
        body["properties"] = props
        previous_identity = previous.body.get("identity") if previous else None
        body["identity"] = shapes.identity_block(envelope.get("identity"), previous_identity, rid)
        return body

    def _put_app(self: ArmEmulator, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        return self._apply_app(req, rg, name, self._json_body(req), patch=False)

    def _patch_app(self: ArmEmulator, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        res = self._find("containerApps", rg, name)
        envelope = merge_patch(self._request_shape(res.body), self._json_body(req))
        return self._apply_app(req, rg, res.name, envelope, patch=True)

    def _apply_app(
        self: ArmEmulator,
        req: Request,
        rg: str,
        name: str,
        envelope: dict[str, Any],
        patch: bool,
        settle_now: bool = False,
    ) -> Response:
        def revise(res: Resource, old: dict[str, Any] | None, env: dict[str, Any]) -> None:
            template_changed = (
                old is None or old["properties"].get("template") != res.body["properties"]["template"]
            )
            if template_changed or not res.revisions:
                self._new_revision(res, env["properties"]["defaultDomain"])  # only template changes make one
            # Follows the ingress even without a new revision (test_containerapp_tcp_ingress: external
            # -> internal moved it under `.internal.`).
            props = res.body["properties"]
            ingress = props["configuration"].get("ingress")
            internal = "" if ingress is None or ingress.get("external") else "internal."
            domain = env["properties"]["defaultDomain"]
            props["latestRevisionFqdn"] = (
                f"{props['latestRevisionName']}.{internal}{domain}" if ingress else ""
            )

        return self._apply(
            req,
            "containerApps",
            rg,
            name,
            envelope,
            self._app_body,
            revise,
            202 if patch else 201,
            settle_now,
        )

    def _get_app(self: ArmEmulator, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        return Response.json(200, self._visible(self._find("containerApps", rg, name), req))

    def _list_apps(self: ArmEmulator, req: Request, sub: str, rg: str) -> Response:
        self._guard(req, sub)
        return self._page(req, self._listing("containerApps", rg), lambda r: self._visible(r, req))

    def _delete_app(self: ArmEmulator, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        return self._delete(req, "containerApps", rg, name)

    def _list_app_secrets(self: ArmEmulator, req: Request, sub: str, rg: str, name: str) -> Response:
        self._guard(req, sub)
        return self._secrets_answer(self._find("containerApps", rg, name))

    def _secrets_answer(self, res: Resource) -> Response:
        """listSecrets: every secret with its value (Key Vault ones with their reference instead), in
        the stored order (test_containerapp_create_with_yaml, test_container_acr recordings)."""
        out = []
        for s in res.body["properties"]["configuration"].get("secrets") or []:
            if s.get("keyVaultUrl"):
                out.append(dict(s))
            else:
                out.append({"name": s["name"], "value": res.secret_values.get(s["name"])})
        return Response.json(200, {"value": out})
