"""The `synos` command: parse, run one command, turn every failure into one or two human lines
(no traceback unless --debug) and an exit code: 0 success, 1 "found something", 2 error."""

from __future__ import annotations

import argparse
import gc
import logging
import sys

from synoscd import __version__
from synoscd.cli import adopt, bootstrap, control, export, rollback, sync, synth, validate, views
from synoscd.cli.output import FORMATS, CliError


def _common(defaults: bool) -> argparse.ArgumentParser:
    """The global options. Subcommands take them too; there they must not reset what came before."""
    keep: dict[str, object] = {} if defaults else {"default": argparse.SUPPRESS}
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        help="output format: table (default; long values cut with …), wide (nothing cut), json or yaml",
        **({"default": "table"} if defaults else keep),
    )  # type: ignore[arg-type]
    common.add_argument(
        "-v", "--verbose", action="store_true", help="log what happens (JSON lines on stderr)", **keep
    )  # type: ignore[arg-type]
    common.add_argument(
        "--debug", action="store_true", help="debug logging and full tracebacks on errors", **keep
    )  # type: ignore[arg-type]
    common.add_argument(
        "--target",
        metavar="NAME",
        help="the target of the fleet to work on (default: SYNOSCD_TARGET, else the default target)",
        **({"default": None} if defaults else keep),
    )  # type: ignore[arg-type]
    return common


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="synos",
        parents=[_common(defaults=True)],
        description="SynosCD: GitOps for Azure Container Apps. Reads and steers the reconciler's state in "
        "Table Storage, and can run a pass itself. Configure it with SYNOSCD_* environment variables.",
    )
    parser.add_argument("--version", action="version", version=f"synos {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (views, sync, control, rollback, validate, bootstrap, synth, export, adopt):
        module.add(_Sub(sub, _common(defaults=False)))
    return parser


class _Sub:
    """Every subcommand also takes the global options (after the command name too)."""

    def __init__(self, sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
        self.sub = sub
        self.common = common

    def add_parser(self, name: str, **kwargs: object) -> argparse.ArgumentParser:
        return self.sub.add_parser(name, parents=[self.common], **kwargs)  # type: ignore[arg-type]

    def child(self, sub: argparse._SubParsersAction, name: str, **kwargs: object) -> argparse.ArgumentParser:  # type: ignore[type-arg]
        """A sub-subcommand (`get apps`, `status app`), also taking the global options."""
        return sub.add_parser(name, parents=[self.common], **kwargs)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Every command's runtime is the selected target's (engine/runtime.get_runtime); a process that
    # runs several commands (tests) must not keep the last one's.
    if args.target or "synoscd.engine.runtime" in sys.modules:
        from synoscd.engine.runtime import use_target

        use_target(args.target)
    if args.debug or args.verbose:
        from synoscd.logs import configure

        configure(logging.DEBUG if args.debug else logging.INFO)
    else:
        _quiet()
    try:
        return _run(args)
    finally:
        _flush_sources()
        _flush_telemetry()


def entry() -> int:
    """The `synos` process (console script and `python -m synoscd`): `main` plus the collector tuned
    for a short-lived process. A pass allocates a few hundred thousand objects that all live until the
    end, so the default collector scans them again and again (about 0.15 s over 1,000 apps), and the
    interpreter's teardown collects them all once more (about 0.4 s): collect less often, and freeze
    what is left when the command is done (the process exits right after; nothing is leaked)."""
    gc.set_threshold(50_000, 20, 20)
    try:
        return main()
    finally:
        gc.freeze()


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except CliError as exc:
        print(f"synos: {exc}", file=sys.stderr)
        return exc.code
    except Exception as exc:
        if args.debug:
            raise
        print(f"synos: {_human(exc)}", file=sys.stderr)
        return 2


def _flush_sources() -> None:
    """A pass saves the source's blob cache in the background; finish it before this process ends.
    Only when a source was loaded: `synos validate` must not pay for importing one."""
    factory = sys.modules.get("synoscd.sources.factory")
    if factory is not None:
        try:
            factory.flush_warm_sources()
        except Exception:  # a cache that could not be saved costs requests later, not this command
            logging.getLogger("synoscd.cli").warning("could not save the source cache", exc_info=True)


def _flush_telemetry() -> None:
    """Notifications in flight (bounded) and buffered telemetry go out before the process ends; both
    only when a pass loaded them."""
    if "synoscd.notify.sender" in sys.modules:
        from synoscd import notify

        notify.wait(15.0)
    if "synoscd.telemetry.setup" in sys.modules:
        from synoscd import telemetry

        telemetry.flush(5.0)


def _quiet() -> None:
    """Without -v or --debug the user sees our one- or two-line errors, not the SDKs' log records
    (azure-identity logs every failed token attempt at WARNING) nor Python warnings: a handler that
    drops everything keeps logging's last-resort handler from printing them on stderr."""
    logging.captureWarnings(True)
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.NullHandler())


def _human(exc: Exception) -> str:
    from pydantic import ValidationError

    from synoscd.config import MissingSetting, env_name

    if isinstance(exc, MissingSetting):
        return str(exc)
    if isinstance(exc, ValidationError):  # a SYNOSCD_* variable with a value the settings refuse
        problems = [
            f"{env_name(str(e['loc'][0])) if e['loc'] else 'a setting'}: {e['msg']}" for e in exc.errors()
        ]
        return "invalid setting " + "; ".join(problems)
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__) + ("" if len(text) <= 1 else " (--debug for details)")


if __name__ == "__main__":
    sys.exit(main())
