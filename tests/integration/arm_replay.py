"""Replay of recorded ARM traffic (tests/fixtures/aca-recordings) against the ARM stand-in, and the
field-by-field comparison of what the stand-in answers with what live Azure answered.

Each recording is a list of real interactions on one or more apps or jobs: PUT/PATCH/DELETE requests,
the GETs that followed, `listSecrets` answers and one revision GET. The replay sends every write as
recorded (same body, same api-version) and, wherever the recording has a GET or a `listSecrets`, asks
the stand-in the same question and compares the two answers after `normalise()`, which blanks only
what must differ between two deployments (the `IGNORED` list says what and why).

The recordings name their resource groups and environments; the replay creates those environments in
the stand-in under the same names, so ids compare as they are once the subscription is rewritten
(the recordings zero it, the stand-in has its own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RECORDED_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
ABSENT = "<absent>"

# What differs between two deployments of the same app and so is never compared, with the reason.
# Values are blanked (the key's presence is still compared), never dropped, except systemData.
IGNORED = {
    "systemData": "who made the call and when: the recording's user and clock",
    "properties.outboundIpAddresses": "the environment's egress IPs (environment-specific)",
    "properties.customDomainVerificationId": "a hash of the subscription (environment-specific)",
    "properties.eventStreamEndpoint host": "the region's log-stream host (environment-specific)",
    "fqdn domain": "the environment's default domain in ingress.fqdn, latestRevisionFqdn and a "
    "revision's fqdn (environment-specific); the host's first label is compared",
    "identity ids": "principalId, tenantId and clientId of managed identities: minted by Entra ID",
    "revision names": "generated suffixes: a recorded name is paired with the stand-in's name at the "
    "same point of the replay, then compared through that pairing",
    "latestReadyRevisionName while the recorded one lags": "when the recorded GET shows a latest "
    "revision that is not ready yet, readiness was the recorded image's start-up time",
    "revision timestamps": "createdTime / lastActiveTime of a revision: the recording's clock",
    "listSecrets order": "live ARM answers the same secrets in either order (the same job answered "
    "[testsecret2, testsecret] then [testsecret, testsecret2] in test_containerapp_manualjob_withsecret_"
    "crudoperations_e2e): both sides are compared sorted by name",
}

FQDN_FIELDS = ("latestRevisionFqdn", "fqdn")
REVISION_FIELDS = ("latestRevisionName", "latestReadyRevisionName", "revisionName")
GUID_FIELDS = ("principalId", "tenantId", "clientId")


@dataclass
class Difference:
    seq: int
    what: str  # "GET containerApps/NAME", "PUT containerApps/NAME", "listSecrets NAME", ...
    path: str
    recorded: Any
    standin: Any

    def __str__(self) -> str:
        return (
            f"#{self.seq} {self.what} {self.path}: recorded {json.dumps(self.recorded)[:200]}, "
            f"stand-in {json.dumps(self.standin)[:200]}"
        )


class StandIn:
    """How the replay reaches the stand-in: `call` for the ARM API, `admin` for its admin API."""

    subscription: str
    call: Callable[[str, str, dict[str, str], Any], tuple[int, Any]]
    admin: Callable[[str, str, Any], Any]


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def recordings(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json"))


# -- comparison --------------------------------------------------------------------------------
def _key(k: str) -> str:
    return f".{k}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", k) else f"[{k}]"


def diff(recorded: Any, standin: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Field-level differences: dicts key by key (absent differs from null), lists position by
    position, scalars by JSON equality (1 == 1.0, as JSON numbers are)."""
    if isinstance(recorded, dict) and isinstance(standin, dict):
        out: list[tuple[str, Any, Any]] = []
        for k in list(recorded) + [k for k in standin if k not in recorded]:
            out += diff(recorded.get(k, ABSENT), standin.get(k, ABSENT), path + _key(k))
        return out
    if isinstance(recorded, list) and isinstance(standin, list):
        out = []
        for i in range(max(len(recorded), len(standin))):
            a = recorded[i] if i < len(recorded) else ABSENT
            b = standin[i] if i < len(standin) else ABSENT
            out += diff(a, b, f"{path}[{i}]")
        return out
    if (recorded == standin and type(recorded) is type(standin)) or _same_number(recorded, standin):
        return []
    return [(path.lstrip("."), recorded, standin)]


def _same_number(a: Any, b: Any) -> bool:
    numbers = (int, float)
    return (
        isinstance(a, numbers)
        and isinstance(b, numbers)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )


def _blank_domain(value: Any) -> Any:
    """`name.internal.<domain>` / `name.<domain>` keep their first label(s), lose the domain."""
    if not isinstance(value, str) or "." not in value:
        return value
    first, _, rest = value.partition(".")
    return f"{first}.internal.<domain>" if rest.startswith("internal.") else f"{first}.<domain>"


def normalise(body: Any) -> Any:
    """A copy with the IGNORED values blanked."""
    if not isinstance(body, dict):
        return body
    out = json.loads(json.dumps(body))
    out.pop("systemData", None)
    props = out.get("properties")
    if isinstance(props, dict):
        for k in ("outboundIpAddresses", "customDomainVerificationId"):
            if k in props:
                props[k] = f"<{k}>"
        if isinstance(props.get("eventStreamEndpoint"), str):
            props["eventStreamEndpoint"] = re.sub(
                r"^https://[^/]+/", "https://<region>/", props["eventStreamEndpoint"]
            )
        for k in ("createdTime", "lastActiveTime"):
            if props.get(k):
                props[k] = f"<{k}>"

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k in FQDN_FIELDS:
                    node[k] = _blank_domain(v)
                elif k in GUID_FIELDS and isinstance(v, str) and v:
                    node[k] = "<guid>"
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(out)
    return out


# -- replay ------------------------------------------------------------------------------------
@dataclass
class Replay:
    recording: dict[str, Any]
    standin: StandIn
    differences: list[Difference] = field(default_factory=list)
    compared: int = 0  # answers compared (GETs and listSecrets)
    lagging_ready: int = 0  # GETs whose latestReadyRevisionName was not compared (IGNORED)
    # recorded revision name <-> stand-in revision name, per app
    _rev_r2s: dict[str, str] = field(default_factory=dict)
    _rev_s2r: dict[str, str] = field(default_factory=dict)

    def rewrite_in(self, obj: Any) -> Any:
        """A recorded request as the stand-in must receive it: its subscription, its revision names."""
        text = json.dumps(obj).replace(RECORDED_SUBSCRIPTION, self.standin.subscription)
        for recorded, standin in self._rev_r2s.items():
            text = text.replace(f'"{recorded}"', f'"{standin}"')
        return json.loads(text)

    def rewrite_out(self, obj: Any) -> Any:
        return json.loads(json.dumps(obj).replace(self.standin.subscription, RECORDED_SUBSCRIPTION))

    def recorded_date(self) -> str | None:
        """The day the recording was made (its first resource's systemData.createdAt): the stand-in
        answers as the service did then (emulators/arm/timeline.py)."""
        for i in self.recording["interactions"]:
            created = ((i["response"] or {}).get("systemData") or {}).get("createdAt")
            if created:
                return str(created)[:10]
        return None

    def resource_groups(self) -> dict[tuple[str, str], str]:
        groups: dict[tuple[str, str], str] = {}
        for i in self.recording["interactions"]:
            for body in (i["request"], i["response"]):
                if (
                    isinstance(body, dict)
                    and isinstance(body.get("id"), str)
                    and i["kind"] in ("containerApps", "jobs")
                ):
                    groups.setdefault((i["kind"], i["name"].lower()), body["id"].split("/")[4])
        return groups

    def environments(self) -> set[tuple[str, str, str]]:
        envs = set()
        for i in self.recording["interactions"]:
            for body in (i["request"], i["response"]):
                props = body.get("properties") if isinstance(body, dict) else None
                for k in ("environmentId", "managedEnvironmentId"):
                    value = props.get(k) if isinstance(props, dict) else None
                    m = re.fullmatch(
                        r"/subscriptions/[^/]+/resourceGroups/([^/]+)/providers/Microsoft\.App/"
                        r"(managedEnvironments|connectedEnvironments)/([^/]+)",
                        value or "",
                        re.IGNORECASE,
                    )
                    if m:
                        envs.add((m.group(1), m.group(2), m.group(3)))
        return envs

    def run(self) -> Replay:
        s = self.standin
        s.admin("POST", "reset", None)
        s.admin(
            "PUT",
            "config",
            {"provisioningDelay": 0, "executionDuration": 0, "serviceDate": self.recorded_date()},
        )
        for rg, kind, name in sorted(self.environments()):
            s.admin("POST", "environments", {"resourceGroup": rg, "name": name, "kind": kind})
        groups = self.resource_groups()
        for rg in sorted({*groups.values(), "clitest.rg000001"}):  # they existed when it was recorded
            s.admin("POST", "resource-groups", {"name": rg})
        for i in self.recording["interactions"]:
            self.step(i, groups)
        return self

    def _path(self, kind: str, rg: str, name: str) -> str:
        sub = self.standin.subscription
        return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.App/{kind}/{name}"

    def step(self, i: dict[str, Any], groups: dict[tuple[str, str], str]) -> None:
        query = {"api-version": i["api_version"]}
        kind = {"revision": "containerApps", "listSecrets": i.get("resource_kind")}.get(i["kind"], i["kind"])
        owner = i.get("app") or i["name"]
        rg = groups.get((kind, owner.lower()), "clitest.rg000001")
        path = self._path(kind, rg, owner)
        what = f"{i['method']} {kind}/{owner}"
        if i["method"] in ("PUT", "PATCH", "DELETE"):
            body = self.rewrite_in(i["request"]) if i["request"] is not None else None
            status, _ = self.standin.call(i["method"], path, query, body)
            if status != i["status"]:
                self.differences.append(Difference(i["seq"], what, "(status)", i["status"], status))
            return
        if i["kind"] == "listSecrets":
            status, got = self.standin.call("POST", path + "/listSecrets", query, None)
            self.compare(i, f"listSecrets {kind}/{owner}", status, got, owner)
            return
        if i["kind"] == "revision":
            rev = self._rev_r2s.get(i["name"], i["name"])
            status, got = self.standin.call("GET", f"{path}/revisions/{rev}", query, None)
            self.compare(i, f"GET revision {i['name']}", status, got, owner)
            return
        status, got = self.standin.call("GET", path, query, None)
        self.compare(i, what, status, got, owner)

    def compare(self, i: dict[str, Any], what: str, status: int, got: Any, app: str) -> None:
        self.compared += 1
        if status != i["status"]:
            self.differences.append(Difference(i["seq"], what, "(status)", i["status"], status))
            return
        recorded = normalise(i["response"])
        standin = normalise(self.rewrite_out(got))
        if i["kind"] == "listSecrets":
            for side in (recorded, standin):
                if isinstance(side, dict) and isinstance(side.get("value"), list):
                    side["value"].sort(key=lambda s: str(s.get("name")))
        self.pair_revisions(recorded, standin, app)
        for path, a, b in diff(recorded, standin):
            self.differences.append(Difference(i["seq"], what, path, a, b))

    def pair_revisions(self, recorded: Any, standin: Any, app: str) -> None:
        """Map the stand-in's generated revision names onto the recorded ones (pairing each on first
        sight), in place in `standin`; a recorded GET whose new revision is not ready yet has its
        latestReadyRevisionName taken as the stand-in's (IGNORED: readiness timing)."""

        def rename(value: Any, recorded_value: Any) -> Any:
            if not isinstance(value, str) or not value.lower().startswith(app.lower() + "--"):
                return value
            first, dot, rest = value.partition(".")
            rec_first = recorded_value.partition(".")[0] if isinstance(recorded_value, str) else None
            if first in self._rev_s2r:
                return self._rev_s2r[first] + dot + rest
            if (
                rec_first
                and rec_first.lower().startswith(app.lower() + "--")
                and rec_first not in self._rev_r2s
            ):
                self._rev_s2r[first] = rec_first
                self._rev_r2s[rec_first] = first
                return rec_first + dot + rest
            return value

        def walk(rec: Any, got: Any) -> None:
            if isinstance(rec, dict) and isinstance(got, dict):
                for k in got:
                    if k in REVISION_FIELDS or k in ("latestRevisionFqdn", "fqdn", "name"):
                        got[k] = rename(got[k], rec.get(k))
                    elif k == "id" and isinstance(got[k], str) and "/revisions/" in got[k]:
                        head, _, rev = got[k].rpartition("/")
                        rec_rev = str(rec.get(k, "")).rpartition("/")[2]
                        got[k] = f"{head}/{rename(rev, rec_rev)}"
                    else:
                        walk(rec.get(k), got[k])
            elif isinstance(rec, list) and isinstance(got, list):
                for a, b in zip(rec, got, strict=False):
                    walk(a, b)

        walk(recorded, standin)
        rp, sp = (recorded or {}).get("properties"), (standin or {}).get("properties")
        if (
            isinstance(rp, dict)
            and isinstance(sp, dict)
            and "latestReadyRevisionName" in sp
            and rp.get("latestReadyRevisionName") != rp.get("latestRevisionName")
        ):
            self.lagging_ready += 1
            sp["latestReadyRevisionName"] = rp.get("latestReadyRevisionName")
