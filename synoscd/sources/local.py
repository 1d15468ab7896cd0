"""A local folder or git repository as the source (SYNOSCD_SOURCE_PATH): for development, CI
(`synos validate`), and running SynosCD without GitHub. In a git repository the revision is the HEAD
commit; with uncommitted changes (or outside git) it is a hash of the content."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from synoscd.sources.snapshot import Snapshot, SourceError, diff_paths, is_manifest


class LocalSource:
    def __init__(self, root: str | Path, config_path: str = "") -> None:
        self.root = Path(root).resolve()
        self.config_path = config_path.strip("/")
        self._last: dict[str, str] = {}
        self._history: dict[str, dict[str, str]] = {}

    def _git(self, *args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(self.root), *args], capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    def _files(self) -> dict[str, bytes]:
        base = self.root / self.config_path if self.config_path else self.root
        if not base.is_dir():
            raise SourceError(
                f"{base} is not a folder; check SYNOSCD_SOURCE_PATH and SYNOSCD_GITHUB_CONFIG_PATH"
            )
        files: dict[str, bytes] = {}
        for path in sorted(base.rglob("*")):
            rel = path.relative_to(self.root).as_posix()
            if ".git" in path.relative_to(self.root).parts or not is_manifest(rel, self.config_path):
                continue
            # Never follow a link out of the repository.
            if path.is_symlink() and not path.resolve().is_relative_to(self.root):
                continue
            if path.is_file():
                files[rel] = path.read_bytes()
        return files

    def snapshot(self) -> Snapshot:
        if not self.root.exists():
            raise SourceError(f"{self.root} does not exist; check SYNOSCD_SOURCE_PATH")
        files = self._files()
        digests = {p: hashlib.sha256(c).hexdigest() for p, c in files.items()}
        head = self._git("rev-parse", "HEAD")
        dirty = self._git("status", "--porcelain", "--", self.config_path or ".")
        if head and dirty == "":
            revision = head
        else:
            content = "\n".join(f"{p}\0{d}" for p, d in sorted(digests.items()))
            revision = "sha256:" + hashlib.sha256(content.encode()).hexdigest()
        changed = diff_paths(self._last, digests) if self._last else None
        self._last = digests
        self._history[revision] = digests
        return Snapshot(revision, files, f"local:{self.root}", changed, reader=self._read)

    def _read(self, path: str) -> bytes | None:
        target = (self.root / path).resolve()
        if not target.is_relative_to(self.root) or not target.is_file():
            return None
        return target.read_bytes()

    def changed_since(self, revision: str) -> frozenset[str] | None:
        old = self._history.get(revision)
        if old is None:
            return None
        return diff_paths(old, self._last)
