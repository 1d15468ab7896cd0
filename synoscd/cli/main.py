"""Entry point of the `synos` command."""

from __future__ import annotations

import argparse
import sys

from synoscd import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synos",
        description="SynosCD: GitOps for Azure Container Apps. Reads and steers the reconciler's state.",
    )
    parser.add_argument("--version", action="version", version=f"synos {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
