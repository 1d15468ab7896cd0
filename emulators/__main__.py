"""The local stack from the command line.

`python -m emulators up --env-file PATH [--ops DIR | --no-ops] [--functions]`: start the local stack,
commit an ops folder (examples/ by default) to the GitHub stand-in's repository, with
`--functions` also start the local Functions host and wire push webhooks to it, write PATH once
everything answers, run until SIGTERM or Ctrl-C (or until the process that started us goes away),
then stop everything that was started. `make up` is `up --env-file .stack.env --functions`.

`python -m emulators drift NAME --image IMAGE`: change an app's image behind SynosCD's back, through
the ARM API as `az containerapp update --image` would (run it with the stack's settings sourced).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from emulators.launcher import EXAMPLES, ops_files, start_stack, write_env_file


def _up(env_file: Path, workdir: Path | None, ops: Path | None, functions: bool) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.getppid()
    stack = start_stack(workdir, ops=ops, functions=functions)
    try:
        write_env_file(env_file, stack.env)
        print(_banner(stack.env, env_file, ops), flush=True)
        # An orphaned launcher would leak Azurite: stop when our parent is gone.
        while not stop.wait(0.5):
            if os.getppid() != parent:
                break
    finally:
        stack.stop()
        env_file.unlink(missing_ok=True)
    return 0


def _banner(env: dict[str, str], env_file: Path, ops: Path | None) -> str:
    lines = [
        "local stack up:",
        f"  ARM (Microsoft.App)  {env['SYNOSCD_ARM_ENDPOINT']}",
        f"  Key Vault            {env['SYNOSCD_KEYVAULT_URL']}",
        f"  GitHub               {env['SYNOSCD_GITHUB_API_URL']}  repository "
        f"{env['SYNOSCD_GITHUB_REPO_OWNER']}/{env['SYNOSCD_GITHUB_REPO_NAME']}"
        + (f" (with {ops})" if ops else " (empty)"),
        f"  git clone {env['SYNOSCD_EMULATOR_GITHUB_REPO_DIR']}  (a push there sends the push webhook)"
        if "SYNOSCD_EMULATOR_FUNCTIONS_URL" in env
        else f"  its git work tree    {env['SYNOSCD_EMULATOR_GITHUB_REPO_DIR']}",
    ]
    if "SYNOSCD_EMULATOR_FUNCTIONS_URL" in env:
        lines.append(
            f"  Functions host       {env['SYNOSCD_EMULATOR_FUNCTIONS_URL']}  timer "
            f"'{env['SYNOSCD_TIMER_SCHEDULE']}', a pass every {env['SYNOSCD_RECONCILE_INTERVAL_SECONDS']} s"
        )
    lines += [
        f"settings in {env_file}; in another shell: source {env_file}",
        "Ctrl-C stops everything",
    ]
    return "\n".join(lines)


def _drift(name: str, image: str, container: int) -> int:
    """GET the app, change one container's image, PUT it back: out-of-band drift, as a person would."""
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.appcontainers import ContainerAppsAPIClient

    missing = [
        v
        for v in ("SYNOSCD_ARM_ENDPOINT", "SYNOSCD_AZURE_SUBSCRIPTION_ID", "SYNOSCD_AZURE_RESOURCE_GROUP")
        if v not in os.environ
    ]
    if missing:
        print(f"drift: {', '.join(missing)} not set: source .stack.env first", file=sys.stderr)
        return 2
    client = ContainerAppsAPIClient(
        DefaultAzureCredential(),
        os.environ["SYNOSCD_AZURE_SUBSCRIPTION_ID"],
        base_url=os.environ["SYNOSCD_ARM_ENDPOINT"],
    )
    group = os.environ["SYNOSCD_AZURE_RESOURCE_GROUP"]
    app = client.container_apps.get(group, name)
    before = app.template.containers[container].image
    app.template.containers[container].image = image
    client.container_apps.begin_create_or_update(group, name, app).result()
    print(f"{name}: image {before} -> {image} (out of band)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Azurite and the ARM, Key Vault and GitHub stand-ins")
    up.add_argument("--env-file", required=True, type=Path, help="where to write the export lines")
    up.add_argument("--workdir", type=Path, help="keep certificates and git repositories here")
    ops = up.add_mutually_exclusive_group()
    ops.add_argument(
        "--ops",
        type=Path,
        default=EXAMPLES,
        metavar="DIR",
        help="commit DIR to the repository: an ops repository (DIR/apps/...) as it is, any other folder's "
        "manifests under apps/ (default: examples)",
    )
    ops.add_argument("--no-ops", action="store_true", help="leave the repository empty")
    up.add_argument(
        "--functions",
        action="store_true",
        help="also start the local Functions host (timer every 5 s) and send it a push webhook on git push",
    )
    drift = sub.add_parser("drift", help="change an app's image out of band (with .stack.env sourced)")
    drift.add_argument("name")
    drift.add_argument("--image", required=True)
    drift.add_argument("--container", type=int, default=0, help="index of the container (0)")
    args = parser.parse_args(argv)
    if args.command == "drift":
        return _drift(args.name, args.image, args.container)
    ops_dir = None if args.no_ops else args.ops.resolve()
    try:
        if ops_dir is not None:
            ops_files(ops_dir)  # before anything starts
        return _up(args.env_file, args.workdir, ops_dir, args.functions)
    except FileNotFoundError as exc:  # a missing tool or an ops folder without manifests
        print(f"python -m emulators up: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
