"""The fleet's fan-out decisions (pure): when the timer queues a target, which targets a push runs,
and which files a push payload says it changed."""

from __future__ import annotations

import json

from synoscd import webhook
from synoscd.fleet.fanout import QUEUED_GRACE_SECONDS, due, plan_fanout
from synoscd.fleet.targets import TargetDef

SUB = "00000000-0000-0000-0000-000000000001"


def test_a_target_is_queued_once_until_its_pass_starts_or_the_message_is_given_up() -> None:
    assert due(1000.0, None, 300, 0) == "first pass"
    assert due(1000.0, 900.0, 300, 0) is None
    assert due(1200.0, 900.0, 300, 0) == "interval 300 s passed"
    assert due(1000.0, 990.0, 300, 2) == "2 requested"
    # queued at 1200 and not started since: not again, not even when requested meanwhile
    assert due(1210.0, 900.0, 300, 0, queued_at=1200.0) is None
    assert due(1210.0, 900.0, 300, 3, queued_at=1200.0) is None
    assert due(1210.0, None, 300, 0, queued_at=1200.0) is None
    # its pass started after it was queued: the usual rules again
    assert due(1600.0, 1201.0, 300, 0, queued_at=1200.0) == "interval 300 s passed"
    # a message waiting longer than the grace is taken for lost
    late = 1200.0 + QUEUED_GRACE_SECONDS + 1
    assert due(late, 900.0, 300, 0, queued_at=1200.0) == "interval 300 s passed"


def _t(name: str, path: str, env: str = "env") -> TargetDef:
    return TargetDef(name, SUB, "rg", f"{env}-{name}", path)


def test_a_push_runs_the_targets_it_touched_declared_or_changed() -> None:
    a, b, c = _t("aa", "envs/a"), _t("bb", "envs/b"), _t("cc", "envs/c")
    assert plan_fanout([a, b, c], [a, b, c], ("envs/b/x.yaml",), {}) == [b]
    assert plan_fanout([a, b, c], [a, b, c], ("docs/readme.md",), {}) == []
    assert plan_fanout([a, b, c], [a, b, c], ("config/x.json",), {"cc": ["config/x.json"]}) == [c]
    new = _t("dd", "envs/d")
    moved = TargetDef("aa", SUB, "rg", "env-other", "envs/a")
    assert plan_fanout([a, b, c], [moved, b, c, new], ("targets/d.yaml", "targets/a.yaml"), {}) == [
        moved,
        new,
    ]
    assert plan_fanout([a, b], [a, b], None, {}) == [a, b], "files unknown: every target"
    assert plan_fanout([a, b], [a], ("envs/b/x.yaml",), {}) == [], "a removed target runs no more"


def _payload(**over: object) -> bytes:
    doc: dict[str, object] = {
        "ref": "refs/heads/main",
        "before": "1" * 40,
        "after": "2" * 40,
        "repository": {"full_name": "org/ops"},
        "forced": False,
        "created": False,
        "commits": [
            {"id": "a", "added": ["envs/a/new.yaml"], "modified": ["envs/b/x.yaml"], "removed": []},
            {"id": "b", "added": [], "modified": [], "removed": ["envs/c/old.yaml"]},
        ],
    }
    doc.update(over)
    return json.dumps(doc).encode()


def test_the_files_a_push_changed_come_from_its_commits_when_the_list_is_whole() -> None:
    decision = webhook.decide("push", _payload(), "org/ops", "main")
    assert decision.run and decision.paths == ("envs/a/new.yaml", "envs/b/x.yaml", "envs/c/old.yaml")
    for unknown in (
        _payload(forced=True),
        _payload(created=True),
        _payload(commits=None),
        _payload(commits=[]),
        _payload(commits=[{"id": "x", "added": ["a"]}]),  # no modified/removed lists
        _payload(commits=[{"id": str(i), "added": [], "modified": [], "removed": []} for i in range(2048)]),
        _payload(
            commits=[{"id": "x", "added": [f"f{i}" for i in range(1001)], "modified": [], "removed": []}]
        ),
    ):
        assert webhook.decide("push", unknown, "org/ops", "main").paths is None
