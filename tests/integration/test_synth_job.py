"""The job executor end to end on the local stack: a Synthesizer with an image runs as an ACA Job
execution (the ARM stand-in runs the registered image as a local command), and the ResourceList goes
in and out through blobs in Azurite with user-delegation SAS URLs the managed identity obtained."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, LaunchedStack
from tests.integration.test_synth import SynthOps

pytestmark = pytest.mark.integration

IMAGE = "ghcr.io/contoso/web-fleet-synth:1.0"


@pytest.fixture
def jops(fresh_stack: LaunchedStack, tmp_path: Path) -> Iterator[SynthOps]:
    fresh_stack.admin("arm", "PUT", "config", {"provisioningDelay": 0.05})
    fresh_stack.admin(
        "arm",
        "POST",
        "images",
        {
            "image": IMAGE,
            "command": [sys.executable, str(REPO_ROOT / "examples" / "synthesizers" / "web_fleet.py")],
            # the image's own trust store and installed packages
            "env": {"PYTHONPATH": str(REPO_ROOT), "SSL_CERT_FILE": fresh_stack.env["REQUESTS_CA_BUNDLE"]},
        },
    )
    o = SynthOps(fresh_stack, tmp_path / "ops")
    shutil.copy(REPO_ROOT / "examples" / "apps" / "web-fleet.yaml", o.root / "apps" / "web-fleet.yaml")
    o.put("inputs/web-fleet.json", (REPO_ROOT / "examples" / "inputs" / "web-fleet.json").read_bytes())
    yield o
    o.rt.table.delete_table()


def test_a_registered_image_synthesises_through_a_job_execution(jops: SynthOps) -> None:
    first = jops.sync()
    # The synthesizer's Job is managed like any Job: created by the plan, then synthesis can start it.
    assert jops.live("web-fleet-synth", "jobs") is not None, first.to_dict()
    assert jops.compositions()["shops"].status == "Pending"

    second = jops.sync(wait_seconds=30)
    state = jops.compositions()["shops"]
    assert state.status == "Ready", state
    assert second.synthesis is not None and second.synthesis["ran"] == ["shops"]
    assert state.apps == ["App/shops-berlin", "App/shops-lisbon", "App/shops-oslo"]
    job = jops.live("web-fleet-synth", "jobs")
    assert job is not None and len(job["executions"]) == 1
    execution = job["executions"][0]
    assert execution["properties"]["status"] == "Succeeded"
    env = {e["name"]: e["value"] for e in execution["properties"]["template"]["containers"][0]["env"]}
    assert "skoid=" in env["KRM_INPUT_URL"], "a user-delegation SAS (signed object id)"
    assert "sp=r" in env["KRM_INPUT_URL"] and "sp=cw" in env["KRM_OUTPUT_URL"]
    lisbon = jops.live("shops-lisbon")
    assert lisbon is not None
    assert lisbon["body"]["properties"]["template"]["scale"]["minReplicas"] == 2
    assert lisbon["body"]["tags"]["synoscd-composition"] == "shops"

    # The blobs are gone after the synthesis; the same inputs start no execution again.
    from azure.storage.blob import BlobServiceClient

    blobs = BlobServiceClient.from_connection_string(
        "DefaultEndpointsProtocol=https;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        f"BlobEndpoint={jops.stack.env['SYNOSCD_SYNTH_BLOB_STORE']};"
    )
    assert list(blobs.get_container_client("synoscd-synth").list_blobs()) == []
    third = jops.sync()
    assert third.synthesis is not None and third.synthesis["ran"] == []
    assert len(jops.live("web-fleet-synth", "jobs")["executions"]) == 1  # type: ignore[index]


def test_a_failing_job_execution_keeps_the_last_good_output(jops: SynthOps) -> None:
    jops.sync()
    assert jops.sync(wait_seconds=30).outcome == "succeeded"
    jops.put("inputs/web-fleet.json", '{"apps": [{"name": "berlin"}]}')  # no image: the synthesizer errs
    result = jops.sync(wait_seconds=30)
    state = jops.compositions()["shops"]
    assert state.status == "Failed" and "the fleet input needs an image" in state.message
    assert result.outcome == "partial" and jops.live("shops-oslo") is not None
