"""The fault soak's checks (bench/soak_checks.py) find what they look for: a soak whose invariants all
read zero means something only if each check can fail."""

from __future__ import annotations

from typing import Any

from bench import soak_checks as checks

ARM = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.App/containerApps"


def call(method: str, name: str, at: float, pass_id: str | None) -> dict[str, Any]:
    c: dict[str, Any] = {"method": method, "path": f"{ARM}/{name}", "time": at, "status": 201}
    if pass_id:
        c["pass"] = pass_id
    return c


def test_writes_are_read_from_the_call_log_in_time_order_and_reads_left_out() -> None:
    calls = [
        call("PATCH", "b", 2.0, "p1"),
        {"method": "GET", "path": ARM, "time": 0.5},
        call("PUT", "A", 1.0, "p1"),
        {"method": "POST", "path": f"{ARM}/b/listSecrets", "time": 3.0},
        {"method": "POST", "path": ARM.replace("containerApps", "jobs") + "/j/start", "time": 4.0},
    ]
    writes = checks.writes_of(calls)
    assert [(w.method, w.kind, w.name) for w in writes] == [
        ("PUT", "containerApps", "a"),
        ("PATCH", "containerApps", "b"),
        ("POST", "jobs", "j"),
    ]


def test_interleaved_writes_of_two_passes_are_found() -> None:
    one_after_another = checks.writes_of(
        [call("PUT", "a", 1, "p1"), call("PUT", "b", 2, "p1"), call("PUT", "c", 3, "p2")]
    )
    assert checks.interleaved(one_after_another) == []
    side_by_side = checks.writes_of(
        [call("PUT", "a", 1, "p1"), call("PUT", "b", 2, "p2"), call("PUT", "c", 3, "p1")]
    )
    assert len(checks.interleaved(side_by_side)) == 1
    assert checks.handovers(side_by_side)["handovers"] == 2


def test_writes_to_foreign_resources_and_writes_naming_no_pass_are_found() -> None:
    writes = checks.writes_of([call("PUT", "Legacy", 1, "p1"), call("DELETE", "web", 2, None)])
    assert len(checks.foreign_writes(writes, ["legacy"])) == 1
    assert len(checks.unattributed(writes)) == 1
    assert checks.foreign_changed({"x": {"tags": {}}}, {"x": {"tags": {"a": "b"}}})
    assert checks.foreign_changed({"x": {"tags": {}}}, {}) == ["x is gone"]


def test_a_prune_at_a_broken_revision_or_of_a_named_app_is_found() -> None:
    commits = {
        "good": {"complete": True, "names": ["web"]},
        "broken": {"complete": False, "names": []},
    }
    passes = {
        "p1": {"revision": "good", "prune": {}},
        "p2": {"revision": "broken", "prune": {}},
        "p3": {"revision": None, "prune": {}},
    }
    ok = checks.writes_of([call("DELETE", "old", 1, "p1")])
    assert checks.prunes_while_incomplete(ok, passes, commits) == ([], 1)
    for bad in (call("DELETE", "old", 1, "p2"), call("DELETE", "web", 1, "p1"), call("DELETE", "x", 1, "p3")):
        found, _ = checks.prunes_while_incomplete(checks.writes_of([bad]), passes, commits)
        assert len(found) == 1, bad


def test_a_prune_by_a_killed_pass_is_checked_against_every_head_it_may_have_read() -> None:
    commits = {
        "seed": {"complete": True, "names": ["web", "old"], "time": 0.0},
        "broken": {"complete": False, "names": ["web"], "time": 100.0},  # removes "old" and breaks
        "fixed": {"complete": True, "names": ["web"], "time": 110.0},
        "back": {"complete": True, "names": ["web", "old"], "time": 130.0},
    }
    # A killed pass's record: written by the pass that took over its lease, with no revision.
    killed = {"revision": None, "startedAt": 0.0, "prune": {}}
    for started, deleted, found in (
        (112.0, 113.0, 0),  # only "fixed" was head: a rightful prune
        (105.0, 113.0, 1),  # "broken" may have been read
        (110.5, 113.0, 1),  # "fixed" was made at 110 s; within the skew "broken" may still be the head
        (112.0, 131.0, 1),  # "back" names it again
    ):
        passes = {"k": {**killed, "startedAt": started}}
        delete = checks.writes_of([call("DELETE", "old", deleted, "k")])
        assert len(checks.prunes_while_incomplete(delete, passes, commits)[0]) == found, (started, deleted)
    assert checks.heads_between(commits, 112.0, 131.0) == ["fixed", "back"]


def test_a_lost_cli_write_is_found_and_an_unknown_later_attempt_is_allowed() -> None:
    attempts = [
        {"key": "flags/a", "n": 1, "rc": 0, "suspended": True, "reason": "w0-1"},
        {"key": "flags/a", "n": 2, "rc": 2, "suspended": False, "reason": ""},  # result unknown
        {"key": "settings/max_concurrent", "n": 3, "rc": 0, "value": 7},
    ]
    assert checks.lost_writes(attempts, {"flags/a": (True, "w0-1"), "settings/max_concurrent": 7}) == ([], 2)
    assert checks.lost_writes(attempts, {"flags/a": (False, ""), "settings/max_concurrent": 7})[0] == []
    lost, _ = checks.lost_writes(attempts, {"flags/a": (True, "w0-1"), "settings/max_concurrent": 6})
    assert len(lost) == 1 and "settings/max_concurrent" in lost[0]


def test_an_image_no_commit_had_is_found() -> None:
    seen = {"web": {"ghcr.io/c/web:1", "ghcr.io/c/web:hotfix"}, "api": {"ghcr.io/c/api:tampered-3"}}
    in_git = {"ghcr.io/c/web:1", "ghcr.io/c/api:1"}
    assert checks.images_git_never_had(seen, in_git, {"ghcr.io/c/web:hotfix"}) == [
        "api ran ghcr.io/c/api:tampered-3, which no commit had"
    ]
    assert checks.images_git_never_had({"web": {"ghcr.io/c/web:1"}}, in_git, set()) == []
