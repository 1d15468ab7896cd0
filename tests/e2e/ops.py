"""An ops repository in the GitHub stand-in, the `synos` CLI run as a subprocess against it (its own
state table), and a Runtime in this process for what an operator would do in the portal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from synoscd.config import Settings
from synoscd.engine.runtime import Runtime
from tests.conftest import REPO_ROOT, LaunchedStack

OWNER = "synoscd-ui"
EXAMPLES = REPO_ROOT / "examples" / "apps"


class Ops:
    def __init__(self, stack: LaunchedStack, files: dict[str, str] | None = None) -> None:
        self.stack = stack
        self.repo = f"ops-{uuid.uuid4().hex[:8]}"
        if files is None:  # the demo's ops repository (examples/apps)
            files = {f"apps/{p.name}": p.read_text() for p in sorted(EXAMPLES.glob("*.yaml"))}
            inputs = EXAMPLES.parent / "inputs"  # the web-fleet composition's input file
            files.update({f"inputs/{p.name}": p.read_text() for p in sorted(inputs.glob("*"))})
        stack.admin("github", "POST", "repos", {"owner": OWNER, "name": self.repo, "files": files})
        self.env = {
            **os.environ,
            **stack.env,
            "SYNOSCD_STATE_TABLE": f"u{uuid.uuid4().hex[:20]}",
            "SYNOSCD_GITHUB_REPO_OWNER": OWNER,
            "SYNOSCD_GITHUB_REPO_NAME": self.repo,
            "SYNOSCD_PASS_WAIT_SECONDS": "10",
            # orders-api's secret lives in a vault other than the stand-in's, as in `make demo`
            "SYNOSCD_KEYVAULT_ALLOWED_HOSTS": "contoso-vault.vault.azure.net",
        }

    def run(self, *args: str, check: int | None = 0) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [sys.executable, "-m", "synoscd", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            env=self.env,
            stdin=subprocess.DEVNULL,
            timeout=180,
        )
        if check is not None:
            assert out.returncode == check, (
                f"synos {' '.join(args)} -> {out.returncode}\n{out.stdout}\n{out.stderr}"
            )
        return out

    def json(self, *args: str, check: int | None = 0) -> Any:
        return json.loads(self.run(*args, "-o", "json", check=check).stdout)

    def commit(self, files: dict[str, str | None]) -> str:
        path = f"repos/{OWNER}/{self.repo}/commits"
        return str(self.stack.admin("github", "POST", path, {"files": files})["sha"])

    def runtime(self) -> Runtime:
        """This process's view of the same settings (no environment change)."""
        known = set(Settings.model_fields)
        values = {
            k.removeprefix("SYNOSCD_").lower(): v
            for k, v in self.env.items()
            if k.startswith("SYNOSCD_") and k.removeprefix("SYNOSCD_").lower() in known
        }
        return Runtime(Settings(**values))

    def drift_image(self, kind: str, name: str, image: str) -> None:
        """Change a resource's first image in Azure, out of band (as someone in the portal would)."""
        arm = self.runtime().arm
        body = arm.get(kind, name)
        assert body is not None, f"{kind} {name} is not live"
        body["properties"]["template"]["containers"][0]["image"] = image
        arm.begin_put(kind, name, body).result()

    def live_image(self, kind: str, name: str) -> str:
        body = self.runtime().arm.get(kind, name)
        assert body is not None
        return str(body["properties"]["template"]["containers"][0]["image"])


def example(name: str) -> str:
    return (EXAMPLES / f"{name}.yaml").read_text()


def screenshots_dir(tmp: Path) -> Path:
    """docs/screenshots when SYNOSCD_UPDATE_SCREENSHOTS=1 (`make screenshots`), else a temporary folder:
    a test run does not rewrite committed files."""
    return REPO_ROOT / "docs" / "screenshots" if os.environ.get("SYNOSCD_UPDATE_SCREENSHOTS") == "1" else tmp
