"""Conformance of the ARM stand-in to live Azure: every recording in tests/fixtures/aca-recordings is
replayed over HTTPS against the launched stand-in (the same PUT/PATCH/DELETE bodies at the same
api-versions) and each recorded GET and listSecrets answer is compared field by field with the
stand-in's (tests/integration/arm_replay.py; what is never compared is its IGNORED list).

The differences that remain are committed in arm_conformance_known.json, each with its reason, and
the figure is in docs/arm-conformance.md: a new difference fails the test (a regression), and so does
a known one that went away (update the list and the figure)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.identity import ManagedIdentityCredential

from tests.conftest import FIXTURES, REPO_ROOT, LaunchedStack
from tests.integration.arm_replay import Replay, StandIn, load, recordings

pytestmark = pytest.mark.integration

RECORDINGS = FIXTURES / "aca-recordings"
KNOWN = Path(__file__).with_name("arm_conformance_known.json")
DOC = REPO_ROOT / "docs" / "arm-conformance.md"
EXPECTED_RECORDINGS = 93


class HttpStandIn(StandIn):
    """The launched stand-in over HTTPS, with a token from its managed-identity endpoint."""

    def __init__(self, stack: LaunchedStack) -> None:
        self.stack = stack
        self.subscription = stack.env["SYNOSCD_AZURE_SUBSCRIPTION_ID"]
        self.base = stack.url("arm")
        token = ManagedIdentityCredential(client_id=stack.env["SYNOSCD_AZURE_MANAGED_IDENTITY_CLIENT_ID"])
        self.session = requests.Session()
        self.session.verify = stack.env["REQUESTS_CA_BUNDLE"]
        self.session.headers["Authorization"] = (
            f"Bearer {token.get_token('https://management.azure.com/.default').token}"
        )

    def call(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        resp = self.session.request(method, self.base + path, params=query, json=body, timeout=30)
        return resp.status_code, (resp.json() if resp.content else None)

    def admin(self, method: str, path: str, body: Any) -> Any:
        return self.stack.admin("arm", method, path, body)


@pytest.fixture(scope="module")
def replays(stack: LaunchedStack) -> Iterator[dict[str, Replay]]:
    standin = HttpStandIn(stack)
    try:
        yield {p.name: Replay(load(p), standin).run() for p in recordings(RECORDINGS)}
    finally:
        stack.reset()


def known() -> dict[str, Any]:
    return json.loads(KNOWN.read_text())


def found(replay: Replay) -> set[str]:
    """A replay's differences as `<answer kind> <field path>`, e.g. `GET properties.template.scale`."""
    return {f"{d.what.split()[0]} {d.path}" for d in replay.differences}


def test_every_recording_is_replayed_and_compared(replays: dict[str, Replay]) -> None:
    assert len(replays) == EXPECTED_RECORDINGS, (
        f"expected the {EXPECTED_RECORDINGS} recordings in {RECORDINGS}"
    )
    uncompared = [name for name, r in replays.items() if r.compared == 0]
    assert not uncompared, f"recordings with no GET compared: {uncompared}"


@pytest.mark.parametrize("name", [p.name for p in recordings(RECORDINGS)])
def test_recording_differs_only_where_known(name: str, replays: dict[str, Replay]) -> None:
    expected = set(known()["differences"].get(name, {}))
    got = found(replays[name])
    details = "\n".join(
        str(d) for d in replays[name].differences if f"{d.what.split()[0]} {d.path}" in got - expected
    )
    assert not got - expected, f"new differences from live ARM (a regression?):\n{details}"
    assert not expected - got, (
        f"known differences that are gone: {sorted(expected - got)}; remove them from {KNOWN.name} "
        f"and update the figure in {DOC.name}"
    )


def test_known_differences_have_reasons() -> None:
    data = known()
    reasons = data["reasons"]
    for name, fields in data["differences"].items():
        assert (RECORDINGS / name).exists(), f"{KNOWN.name} names a recording that does not exist: {name}"
        for path, reason in fields.items():
            assert reason in reasons, f"{name} {path}: reason {reason!r} is not among {sorted(reasons)}"


def test_figure_in_docs_is_the_measured_one(replays: dict[str, Replay]) -> None:
    identical = sum(1 for r in replays.values() if not r.differences)
    fields = sum(len(found(r)) for r in replays.values())
    answers = sum(r.compared for r in replays.values())
    text = DOC.read_text()
    want = f"**{identical} of {len(replays)} recordings identical**"
    assert want in text, f"{DOC.name} must state {want!r}"
    assert f"**{fields} field-level differences**" in text, (
        f"{DOC.name} must state {fields} field differences"
    )
    assert re.search(rf"\b{answers} answers\b", text), f"{DOC.name} must state {answers} answers compared"
