"""The write for a resource that exists: a JSON merge patch (ARM PATCH, `begin_update`) carrying only
the owned fields that differ, so everything else on the live resource stays exactly as it is
(invariant 9): custom domains, IP rules set by hand, Dapr, service binds, traffic splits, secrets the
manifest does not name, and fields this code does not know yet. Why PATCH and not a PUT of the live
body: a GET omits secret values, so a PUT would have to read them all back (listSecrets) on every
write or erase them; and a PUT at our api-version would drop fields only a newer api-version knows.

Lists are replaced whole by a merge patch, so a list the manifest owns part of (containers, secrets,
registries) is written merged: owned items from the manifest, each keeping the live item's unowned
keys (a container's imageType, ephemeralStorage, undeclared probes and mounts), and unowned items as
they are. The one case that needs secret values: when the manifest's secrets change and the app also
has value secrets set outside Git, those must be sent back with their values; the patch names them
and the executor fills them from listSecrets just before the write (never logged or stored).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from synoscd.azure.fields import SKIP
from synoscd.azure.normalise import TOP, flat, merge_tags


@dataclass(frozen=True)
class Write:
    body: dict[str, Any]  # the merge patch
    fill_secrets: tuple[str, ...] = ()  # value secrets to fill from listSecrets before sending


def write_patch(desired: Mapping[str, Any], live: Mapping[str, Any], full: bool = False) -> Write:
    """The merge patch taking `live` to the owned fields of `desired`. `full`: re-apply every owned
    field (a heal), not only those that differ. The tags always go along (the revision tag moves)."""
    fragment = TOP.patch(flat(desired), flat(live), full)
    fragment = {} if fragment is SKIP else fragment
    body: dict[str, Any] = {"tags": merge_tags(live.get("tags"), desired.get("tags"))}
    if "identity" in fragment:
        body["identity"] = fragment["identity"]
    props = {k: fragment[k] for k in ("workloadProfileName", "configuration", "template") if k in fragment}
    template = props.get("template")
    live_template = (live.get("properties") or {}).get("template") or {}
    if template and _makes_revision(template) and live_template.get("revisionSuffix"):
        # A live suffix would name the new revision like the current one, which ARM refuses.
        template["revisionSuffix"] = None
    if props:
        body["properties"] = props
    secrets = (props.get("configuration") or {}).get("secrets") or []
    fill = tuple(s["name"] for s in secrets if "keyVaultUrl" not in s and "value" not in s)
    return Write(body, fill)


def _makes_revision(template: Mapping[str, Any]) -> bool:
    return any(k != "revisionSuffix" for k in template)


def tags_patch(live: Mapping[str, Any], tags: Mapping[str, str]) -> dict[str, Any]:
    """A tags-only merge patch: every live tag kept, `tags` set (what `synos adopt` writes). The whole
    tag set is sent, so it means the same whether ARM merges or replaces tags on PATCH."""
    return {"tags": merge_tags(live.get("tags"), tags)}


def fill_secrets(body: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """A copy of a patch with the value secrets it keeps filled in from listSecrets."""
    out = dict(body)
    props = dict(out.get("properties") or {})
    config = dict(props.get("configuration") or {})
    filled = []
    for secret in config.get("secrets") or []:
        if "keyVaultUrl" not in secret and "value" not in secret:
            if secret["name"] not in values:
                raise KeyError(secret["name"])
            secret = {**secret, "value": values[secret["name"]]}
        filled.append(secret)
    config["secrets"] = filled
    props["configuration"] = config
    out["properties"] = props
    return out
