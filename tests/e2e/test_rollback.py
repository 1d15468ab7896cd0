"""Rollback end to end with the `synos` CLI against the stand-ins: two revisions, `rollback
--previous` restores the first body and suspends the app with the reason, the next pass leaves it,
`resume` lets the next pass bring it back to Git's revision."""

from __future__ import annotations

import pytest

from tests.conftest import APP_YAML, LaunchedStack
from tests.e2e.ops import Ops

pytestmark = pytest.mark.e2e


@pytest.fixture
def ops(fresh_stack: LaunchedStack) -> Ops:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.1})
    return Ops(
        fresh_stack,
        {
            "apps/web.yaml": APP_YAML.format(name="web", tag="1"),
            "apps/api.yaml": APP_YAML.format(name="api", tag="1"),
        },
    )


def test_rollback_previous_holds_until_resume(ops: Ops) -> None:
    first = ops.json("sync", "--yes")
    assert first["outcome"] == "succeeded"
    rev1 = first["revision"]
    rev2 = ops.commit({"apps/web.yaml": APP_YAML.format(name="web", tag="2")})
    assert ops.json("sync", "--yes")["outcome"] == "succeeded"
    assert ops.live_image("App", "web") == "nginx:2"

    history = ops.json("history", "web")
    assert [r["revision"] for r in history["revisions"]] == [rev2, rev1]
    assert history["appliedRevision"] == rev2 and history["rolledBack"] is None
    assert [r["images"] for r in history["revisions"]] == [["nginx:2"], ["nginx:1"]]
    # api was written once only: nothing to go back to
    assert ops.run("rollback", "api", "--previous", "--yes", check=1).returncode == 1

    done = ops.json("rollback", "web", "--previous", "--yes")
    assert done["rolledBackTo"] == rev1 and done["suspended"] is True
    assert done["reason"] == f"rolled back to {rev1[:12]}"
    assert ops.live_image("App", "web") == "nginx:1", "the first body is live again"
    described = ops.json("status", "app", "web")["resources"][0]
    assert described["suspended"]["reason"] == f"rolled back to {rev1[:12]}"
    assert described["suspended"]["by"], "who rolled it back"
    assert described["live"]["revisionTag"] == rev1
    assert ops.json("history", "web")["rolledBack"] == rev1[:12]

    after = ops.json("sync", "--yes")  # the next pass does not undo the rollback
    web = next(a for a in after["actions"] if a["name"] == "web")
    assert web["action"] == "skip" and web["reason"] == "suspended"
    assert ops.live_image("App", "web") == "nginx:1"
    assert ops.json("get", "apps")["apps"][1]["syncState"] == "Suspended"

    ops.run("resume", "web", "--yes")
    back = ops.json("sync", "--yes")
    web = next(a for a in back["actions"] if a["name"] == "web")
    assert web["action"] == "update" and web["reason"] == "drift"
    assert ops.live_image("App", "web") == "nginx:2", "Git's revision again"
    row = next(a for a in ops.json("get", "apps")["apps"] if a["name"] == "web")
    assert row["syncState"] == "Synced" and row["appliedRevision"] == rev2
    # Re-applying revision 2 reused its slot: still one body per revision.
    assert [r["revision"] for r in ops.json("history", "web")["revisions"]] == [rev2, rev1]


def test_rollback_to_a_revision_and_bad_targets(ops: Ops) -> None:
    rev1 = ops.json("sync", "--yes")["revision"]
    ops.commit({"apps/web.yaml": APP_YAML.format(name="web", tag="2")})
    ops.json("sync", "--yes")
    missing = ops.run("rollback", "web", "--to", "0000000", "--yes", check=1)
    assert "no applied body at revision" in missing.stderr and "synos history web" in missing.stderr
    assert "one of the arguments --to --previous is required" in ops.run("rollback", "web", check=2).stderr
    no_tty = ops.run("rollback", "web", "--to", rev1[:8], check=2)
    assert "pass --yes" in no_tty.stderr and ops.live_image("App", "web") == "nginx:2", (
        "nothing without --yes"
    )
    done = ops.json("rollback", "web", "--to", rev1[:8], "--yes")
    assert done["rolledBackTo"] == rev1 and ops.live_image("App", "web") == "nginx:1"
    assert ops.run("rollback", "nobody", "--previous", "--yes", check=1).returncode == 1
