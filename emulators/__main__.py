"""`python -m emulators up --env-file PATH`: start the local stack, write PATH once everything
answers, run until SIGTERM or Ctrl-C (or until the process that started us goes away), then stop
everything that was started."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from emulators.launcher import start_stack, write_env_file


def _up(env_file: Path, workdir: Path | None) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.getppid()
    stack = start_stack(workdir)
    try:
        write_env_file(env_file, stack.env)
        print(
            f"local stack up: ARM {stack.env['SYNOSCD_ARM_ENDPOINT']}, "
            f"GitHub {stack.env['SYNOSCD_GITHUB_API_URL']}, Key Vault {stack.env['SYNOSCD_KEYVAULT_URL']}; "
            f"settings in {env_file}",
            flush=True,
        )
        # An orphaned launcher would leak Azurite: stop when our parent is gone.
        while not stop.wait(0.5):
            if os.getppid() != parent:
                break
    finally:
        stack.stop()
        env_file.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emulators", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Azurite and the ARM, Key Vault and GitHub stand-ins")
    up.add_argument("--env-file", required=True, type=Path, help="where to write the export lines")
    up.add_argument("--workdir", type=Path, help="keep certificates and git repositories here")
    args = parser.parse_args(argv)
    return _up(args.env_file, args.workdir)


if __name__ == "__main__":
    sys.exit(main())
