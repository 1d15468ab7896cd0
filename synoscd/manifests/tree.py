"""Collect manifest files from a local folder (the one part of this package that touches the disk)."""

from __future__ import annotations

import os
from pathlib import Path

from .yaml_loader import DEFAULT_MAX_FILE_BYTES

_SUFFIXES = (".yaml", ".yml")
# Folders that hold tools, not manifests (their YAML would only be noise and slow a walk of `.`).
_SKIPPED = frozenset({"node_modules", "__pycache__", "site-packages", "venv"})


def _skipped(folder: str, name: str) -> bool:
    """Hidden folders (.git, .github, .venv), tool folders, and any Python virtual environment."""
    return (
        name.startswith(".") or name in _SKIPPED or os.path.isfile(os.path.join(folder, name, "pyvenv.cfg"))
    )


def read_tree(
    root: str | os.PathLike[str], *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> dict[str, bytes]:
    """Every `.yaml`/`.yml` file under `root` as {relative POSIX path: content}.

    Hidden files and folders (.git, .github), node_modules, __pycache__ and Python virtual
    environments are skipped, folder symlinks are not followed, and a
    file symlink is read only when its target stays inside `root`. At most `max_file_bytes + 1`
    bytes are read per file: enough for `load_desired` to report the file as too large without
    reading all of it.
    """
    base = Path(root).resolve(strict=True)
    files: dict[str, bytes] = {}
    for folder, dirnames, filenames in os.walk(base, followlinks=False):
        dirnames[:] = sorted(name for name in dirnames if not _skipped(folder, name))
        for name in sorted(filenames):
            if name.startswith(".") or not name.lower().endswith(_SUFFIXES):
                continue
            path = Path(folder, name)
            target = path.resolve()
            if not target.is_relative_to(base) or not target.is_file():
                continue  # a link out of the repository, or to something that is not a file
            with target.open("rb") as handle:
                files[path.relative_to(base).as_posix()] = handle.read(max_file_bytes + 1)
    return files
