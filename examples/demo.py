"""`make demo`: the main job on the local stack.

1. Bring the stack up (Azurite, and the ARM, Key Vault and GitHub stand-ins).
2. Commit examples/apps into the GitHub stand-in's repository.
3. Run one reconcile pass — GitHub App source -> validate -> plan -> ARM — and show the apps.
4. A Composition runs a synthesizer (examples/synthesizers/web_fleet.py, registered with the ARM
   stand-in as the image ghcr.io/contoso/web-fleet-synth:1.0) over examples/inputs/web-fleet.json:
   its job execution writes three apps, which the pass applies.
5. Change one app out of band (its image) and run the next pass: SynosCD heals it.
6. Tear the stack down.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout: emulators/ is not an installed package

from emulators.launcher import start_stack  # noqa: E402


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def commit_examples(repo_dir: Path) -> str:
    shutil.copytree(HERE / "apps", repo_dir / "apps", dirs_exist_ok=True)
    shutil.copytree(HERE / "inputs", repo_dir / "inputs", dirs_exist_ok=True)
    git = [
        "git",
        "-C",
        str(repo_dir),
        "-c",
        "user.name=SynosCD demo",
        "-c",
        "user.email=demo@synoscd.invalid",
    ]
    subprocess.run([*git, "add", "apps", "inputs"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "Add the example ops repository"], check=True)
    return subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def show_pass(result: Any) -> None:
    from synoscd.cli.output import table

    doc = result.to_dict()
    print(
        f"pass {doc['id']} ({doc['trigger']}) at revision {str(doc['revision'])[:12]}: {doc['outcome']} "
        f"in {doc.get('durationMs')} ms"
    )
    rows = [
        (
            a["order"],
            a["kind"],
            a["name"],
            a["action"],
            a["reason"],
            "; ".join(f"{c['field']}: {c['live']} -> {c['desired']}" for c in a.get("changes", [])),
        )
        for a in doc["actions"]
    ]
    print(table(["#", "kind", "name", "action", "reason", "changes"], rows, max_width=160))
    for e in doc["errors"]:
        print(f"  manifest error {e['file']}:{e['line']} {e['field']}: {e['message']}")


def show_round_trips(rt: Any) -> None:
    """ARM (managed identity), Key Vault (challenge auth) and GitHub (App installation token)."""
    env = rt.arm.environment()
    print(f"ARM:       environment {env.name} in {env.location} ({env.id})")
    version = rt.secrets.version("github-app-id")
    print(
        f"Key Vault: secret github-app-id = {rt.secrets.get('github-app-id')} (version {str(version)[:8]}...)"
    )
    snapshot = rt.source().snapshot()
    print(
        f"GitHub:    {rt.settings.repo_full_name}@{rt.settings.github_branch} at {snapshot.revision[:12]}: "
        + ", ".join(sorted(snapshot.files))
    )


def show_live(rt: Any) -> None:
    from synoscd.cli.output import table

    rows = []
    for kind in ("App", "Job"):
        for body in rt.arm.list(kind):
            p = body["properties"]
            image = p["template"]["containers"][0]["image"]
            rows.append(
                (
                    kind,
                    body["name"],
                    image,
                    p.get("provisioningState"),
                    p.get("latestReadyRevisionName", "-"),
                    body.get("tags", {}).get("synoscd-revision", "")[:12],
                )
            )
    print(
        table(
            ["kind", "name", "image", "provisioning", "ready revision", "synoscd-revision"],
            rows,
            max_width=160,
        )
    )


def show_compositions(rt: Any) -> None:
    from synoscd.cli.output import table
    from synoscd.synth import state

    rows = [
        (c.name, c.synthesizer, c.status, ", ".join(c.apps), c.message[:60])
        for c in state.load(rt.table).compositions.values()
    ]
    print(table(["composition", "synthesizer", "status", "apps", "message"], rows, max_width=160))


def register_synthesizer_image(stack: Any) -> None:
    """The local stand-in for "ACA pulls the image": executions of it run the example synthesizer."""
    stack.arm.images["ghcr.io/contoso/web-fleet-synth:1.0"] = {
        "command": [sys.executable, str(HERE / "synthesizers" / "web_fleet.py")],
        "env": {"PYTHONPATH": str(HERE.parent), "SSL_CERT_FILE": stack.env["REQUESTS_CA_BUNDLE"]},
        "cwd": None,
    }


def main() -> int:
    step("starting the local stack (Azurite, ARM, Key Vault and GitHub stand-ins)")
    stack = start_stack()
    try:
        os.environ.update(stack.env)
        # orders-api's secret lives in a vault other than the stand-in's: allow its host explicitly.
        os.environ.setdefault("SYNOSCD_KEYVAULT_ALLOWED_HOSTS", "contoso-vault.vault.azure.net")
        print(
            f"ARM {stack.env['SYNOSCD_ARM_ENDPOINT']}  Key Vault {stack.env['SYNOSCD_KEYVAULT_URL']}  "
            f"GitHub {stack.env['SYNOSCD_GITHUB_API_URL']}"
        )
        stack.arm.provisioning_delay = 0.5
        register_synthesizer_image(stack)
        sha = commit_examples(Path(stack.env["SYNOSCD_EMULATOR_GITHUB_REPO_DIR"]))
        print(
            f"committed examples/apps to {stack.env['SYNOSCD_GITHUB_REPO_OWNER']}/"
            f"{stack.env['SYNOSCD_GITHUB_REPO_NAME']} at {sha[:12]}"
        )

        from synoscd.config import load_settings
        from synoscd.engine.reconcile import run_pass
        from synoscd.engine.runtime import get_runtime

        rt = get_runtime(load_settings())  # GitHub App secrets come from Key Vault, ARM via managed identity
        step("0. the stand-ins through the real SDKs")
        show_round_trips(rt)
        step("1. first pass: GitHub App source -> validate -> plan -> ARM")
        show_pass(run_pass("demo", rt=rt, wait_seconds=30))
        show_live(rt)
        show_compositions(rt)

        step("2. next pass: composition shops runs its synthesizer job; the apps it writes are applied")
        show_pass(run_pass("demo", rt=rt, wait_seconds=60))
        show_compositions(rt)
        show_live(rt)

        step("3. someone changes demo-app's image by hand (out of band)")
        stack.arm.calls.clear()
        body = next(b for b in rt.arm.list("App") if b["name"] == "demo-app")
        body["properties"]["template"]["containers"][0]["image"] = "docker.io/library/nginx:drifted"
        rt.arm.begin_put("App", "demo-app", body).result()
        show_live(rt)

        step("4. next pass: the drift is detected field by field and healed")
        show_pass(run_pass("demo", rt=rt, wait_seconds=30))
        show_live(rt)

        step("5. one more pass on the same revision: nothing to write, no synthesizer runs")
        stack.arm.calls.clear()
        result = run_pass("demo", rt=rt, wait_seconds=30)
        writes = [c for c in stack.arm.calls if c["method"] in ("PUT", "PATCH", "DELETE")]
        counts = ", ".join(f"{k}={v}" for k, v in result.counts.items())
        print(
            f"pass {result.id}: {counts}; ARM calls {len(stack.arm.calls)}, writes {len(writes)}, "
            f"synthesizers run {len((result.synthesis or {}).get('ran', []))}"
        )
        if writes or result.outcome == "failed" or (result.synthesis or {}).get("ran"):
            print("unexpected writes on an unchanged revision", file=sys.stderr)
            return 1
    finally:
        step("stopping the local stack")
        stack.stop()
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
