"""What each api-version shows. ARM serialises a resource through the model of the api-version asked
for: a GET at 2024-03-01 of an app written at 2024-02-02-preview has no `patchingMode`, no
`configuration.runtime`, no `imageType` (test_containerapp_identity_user, test_containerapp_create_with_yaml
recordings read the same app at both). The stand-in stores the newest shape and leaves out, per
recorded api-version, what that version does not know. Api-versions newer than the recordings
(such as the SDK's 2026-07-01) see everything, plus the scale fields added in 2024-08-02-preview."""

from __future__ import annotations

from typing import Any

from emulators.arm import timeline

ALL_RECORDED = ("2023-05-01", "2023-08-01-preview", "2023-11-02-preview", "2024-02-02-preview", "2024-03-01")
_PREVIEW_2024 = ("2024-02-02-preview",)
_SINCE_2023_08 = ("2023-08-01-preview", "2023-11-02-preview", "2024-02-02-preview", "2024-03-01")

# path -> the recorded api-versions that show it (absent from the others)
APP_FIELDS = {
    "properties.patchingMode": _PREVIEW_2024,
    "properties.configuration.identitySettings": _PREVIEW_2024,
    "properties.configuration.runtime": _PREVIEW_2024,
    "properties.configuration.ingress.targetPortHttpScheme": ("2023-11-02-preview", "2024-02-02-preview"),
    "properties.configuration.ingress.additionalPortMappings": _SINCE_2023_08,
    "properties.template.containers[].imageType": _PREVIEW_2024,
    "properties.template.initContainers[].imageType": _PREVIEW_2024,
    "properties.template.scale.cooldownPeriod": (),
    "properties.template.scale.pollingInterval": (),
}
JOB_FIELDS = {
    "properties.configuration.identitySettings": _PREVIEW_2024,
    "properties.template.containers[].imageType": _PREVIEW_2024,
    "properties.template.initContainers[].imageType": _PREVIEW_2024,
}
REVISION_FIELDS = {
    "properties.lastActiveTime": (),
    "properties.template.containers[].imageType": _PREVIEW_2024,
}
# Defaults the newest api-versions show (2024-08-02-preview added them): KEDA's own defaults.
NEWEST_SCALE_DEFAULTS = {"cooldownPeriod": 300, "pollingInterval": 30}


def _drop(node: Any, parts: list[str]) -> None:
    if not parts or node is None:
        return
    head, rest = parts[0], parts[1:]
    if head.endswith("[]"):
        items = node.get(head[:-2]) if isinstance(node, dict) else None
        for item in items or []:
            _drop(item, rest)
        return
    if not isinstance(node, dict):
        return
    if not rest:
        node.pop(head, None)
    else:
        _drop(node.get(head), rest)


def render(
    kind: str, body: dict[str, Any], api_version: str, service_date: str | None = None
) -> dict[str, Any]:
    """`body` (a copy the caller owns) as `api_version` shows it, from the service as of
    `service_date` (None: now; see timeline.py)."""
    props = body.get("properties")
    if isinstance(props, dict):
        if not timeline.patching_mode(service_date, str(body.get("location", ""))):
            props.pop("patchingMode", None)
        if not timeline.since(service_date, timeline.IMAGE_TYPE):
            for part in ("containers", "initContainers"):
                for c in (props.get("template") or {}).get(part) or []:
                    c.pop("imageType", None)
        if not timeline.since(service_date, timeline.DELEGATED_IDENTITIES):
            props.pop("delegatedIdentities", None)
        if not timeline.since(service_date, timeline.IDENTITY_SETTINGS) and isinstance(
            props.get("configuration"), dict
        ):
            props["configuration"].pop("identitySettings", None)
    fields = {"containerApps": APP_FIELDS, "jobs": JOB_FIELDS, "revisions": REVISION_FIELDS}[kind]
    if api_version in ALL_RECORDED:
        for path, versions in fields.items():
            if api_version not in versions:
                _drop(body, path.split("."))
    elif kind == "containerApps":
        scale = ((body.get("properties") or {}).get("template") or {}).get("scale")
        if isinstance(scale, dict):
            for k, v in NEWEST_SCALE_DEFAULTS.items():
                if scale.get(k) is None:
                    scale[k] = v
    return body
