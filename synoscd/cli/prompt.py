"""Confirmation for mutating commands: asked on a terminal, refused (exit 2) without one unless --yes."""

from __future__ import annotations

import argparse
import sys

from synoscd.cli.output import CliError


def add_yes(p: argparse.ArgumentParser, help: str = "do not ask for confirmation") -> None:
    p.add_argument("--yes", "-y", action="store_true", help=help)


def refuse_without_terminal(args: argparse.Namespace, question: str) -> None:
    if not getattr(args, "yes", False) and not sys.stdin.isatty():
        raise CliError(f"{question.rstrip('?')}: refusing without a terminal; pass --yes to confirm")


def confirm(args: argparse.Namespace, question: str) -> None:
    if getattr(args, "yes", False):
        return
    refuse_without_terminal(args, question)
    answer = input(f"{question} [y/N] ").strip().lower()
    if answer not in ("y", "yes"):
        raise CliError("cancelled", code=2)
