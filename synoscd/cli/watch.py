"""`--watch`: refresh in place until Ctrl-C (exit 0); `--count N` refreshes N times (it implies
--watch: a bound given alone is not ignored)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from synoscd.cli.output import CliError, emit

CLEAR = "\x1b[H\x1b[2J"


def add_watch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--watch", "-w", action="store_true", help="refresh in place until Ctrl-C")
    p.add_argument(
        "--refresh", type=float, default=2.0, metavar="SECONDS", help="seconds between refreshes (2)"
    )
    p.add_argument("--count", type=int, metavar="N", help="refresh N times, then stop (implies --watch)")


def watch(args: argparse.Namespace, fetch: Callable[[], Any], view: Callable[[Any], str]) -> int:
    if args.count is not None and args.count < 1:
        raise CliError("--count must be at least 1")
    if not args.watch and args.count is None:
        emit(fetch(), args.output, view)
        return 0
    in_place = sys.stdout.isatty() and args.output in ("table", "wide")
    shown = 0
    try:
        while True:
            data = fetch()
            if in_place:
                sys.stdout.write(CLEAR)
            emit(data, args.output, view)
            shown += 1
            if args.count and shown >= args.count:
                return 0
            time.sleep(args.refresh)
    except KeyboardInterrupt:
        return 0
