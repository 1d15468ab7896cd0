"""Build what SynosCD ships into dist/ (`make package` runs this with no options):

  dist/synoscd-functions.zip   the Azure Functions deployment package: function_app.py, host.json,
                               requirements.txt, synoscd/ and, under .python_packages/lib/site-packages,
                               the requirements installed for Linux x86_64 and CPython 3.11 (wheels only)
  dist/synoscd-<v>-py3-none-any.whl, dist/synoscd-<v>.tar.gz   the `synos` CLI package

    python infra/package.py                     everything, into dist/
    python infra/package.py --only functions    the zip only
    python infra/package.py --only functions --no-deps --out /tmp/x   the zip without dependencies (tests)

The zip holds no tests, emulators, caches or local settings, and is reproducible: entries are sorted
and carry a fixed timestamp, so the same tree gives the same bytes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZIP_NAME = "synoscd-functions.zip"
APP_FILES = ("function_app.py", "host.json", "requirements.txt")
PACKAGE = "synoscd"
SITE_PACKAGES = ".python_packages/lib/site-packages"
# What the Functions host runs: Linux x86_64, CPython 3.11 (functionAppConfig.runtime in infra/).
PIP_PLATFORM = ("--platform", "manylinux2014_x86_64", "--python-version", "3.11", "--implementation", "cp")
SKIP_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
SKIP_SUFFIXES = {".pyc", ".pyo"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can store; no build time leaks into the bytes


class PackagingError(Exception):
    pass


def _files(top: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix not in SKIP_SUFFIXES:
                yield path


def install_requirements(target: Path, requirements: Path) -> None:
    """The deployed dependencies, as wheels for the Functions host (never this machine's builds)."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        *PIP_PLATFORM,
        "--only-binary=:all:",
        "-r",
        str(requirements),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise PackagingError(
            "pip could not install requirements.txt as Linux x86_64 / CPython 3.11 wheels "
            f"(a requirement without such a wheel cannot be shipped):\n{result.stderr.strip()}"
        )


def build_functions_zip(out: Path, with_deps: bool = True) -> Path:
    """Write out/synoscd-functions.zip and return its path."""
    out.mkdir(parents=True, exist_ok=True)
    entries: list[tuple[str, Path]] = [(name, ROOT / name) for name in APP_FILES]
    entries += [(p.relative_to(ROOT).as_posix(), p) for p in _files(ROOT / PACKAGE)]
    missing = [arc for arc, path in entries if not path.is_file()]
    if missing:
        raise PackagingError(f"missing from the repository: {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="synoscd-deps-") as tmp:
        if with_deps:
            site = Path(tmp) / "site-packages"
            install_requirements(site, ROOT / "requirements.txt")
            entries += [(f"{SITE_PACKAGES}/{p.relative_to(site).as_posix()}", p) for p in _files(site)]
        target = out / ZIP_NAME
        partial = target.with_suffix(".zip.partial")
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
            for arcname, path in sorted(entries):
                info = zipfile.ZipInfo(arcname, date_time=FIXED_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                # Keep the executable bit (console scripts, shared objects), nothing else of the mode.
                mode = 0o755 if os.access(path, os.X_OK) else 0o644
                info.external_attr = (0o100000 | mode) << 16
                zf.writestr(info, path.read_bytes())
        partial.replace(target)
    return target


def build_dists(out: Path) -> list[Path]:
    """The wheel and the sdist of the `synos` CLI, with `python -m build` and the locked setuptools
    (no isolated build env: it would fetch whatever setuptools is newest)."""
    out.mkdir(parents=True, exist_ok=True)
    for old in (*out.glob(f"{PACKAGE}-*.whl"), *out.glob(f"{PACKAGE}-*.tar.gz")):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="synoscd-build-") as tmp:
        # Build from a copy of the sources so no build/ or *.egg-info lands in the work tree.
        src = Path(tmp) / "src"
        shutil.copytree(
            ROOT,
            src,
            ignore=shutil.ignore_patterns(
                ".git",
                ".venv",
                "node_modules",
                "dist",
                "build",
                "*.egg-info",
                ".python_packages",
                ".hypothesis",
                "*.env",
                "local.settings.json",
                *SKIP_DIRS,
            ),
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "build",
                "--no-isolation",
                "--sdist",
                "--wheel",
                "--outdir",
                str(out),
                str(src),
            ],
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        raise PackagingError(f"python -m build failed:\n{(result.stderr or result.stdout).strip()[-3000:]}")
    return sorted((*out.glob(f"{PACKAGE}-*.whl"), *out.glob(f"{PACKAGE}-*.tar.gz")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="infra/package.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default dist/)")
    parser.add_argument(
        "--only", choices=("functions", "dists"), help="build only the zip, or only wheel+sdist"
    )
    parser.add_argument(
        "--no-deps", action="store_true", help="zip without .python_packages (no download; for tests)"
    )
    args = parser.parse_args(argv)
    try:
        built: list[Path] = []
        if args.only in (None, "functions"):
            built.append(build_functions_zip(args.out, with_deps=not args.no_deps))
        if args.only in (None, "dists"):
            built += build_dists(args.out)
        for path in built:
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            print(f"{shown}  {path.stat().st_size:,} bytes")
    except PackagingError as exc:
        print(f"package: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
