"""A local folder or git repository as the source (SYNOSCD_SOURCE_PATH): for development, CI
(`synos validate`), and running SynosCD without GitHub. In a git repository the revision is the HEAD
commit; with uncommitted changes (or outside git) it is a hash of the content.

A manifest that cannot be read — a link out of the repository, a broken link, a link to a folder, a
special file, an unreadable or oversized file — is never skipped in silence: it is reported in the
snapshot's `problems`, which makes the desired set incomplete (no prune of the app it defines). No file
is read past the size limit."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

from synoscd.manifests.yaml_loader import DEFAULT_MAX_FILE_BYTES
from synoscd.sources.snapshot import Snapshot, SourceError, config_prefix, diff_paths, is_manifest


class LocalSource:
    def __init__(
        self, root: str | Path, config_path: str = "", *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    ) -> None:
        self.root = Path(root).resolve()
        self.config_path = config_prefix(config_path)
        self.max_file_bytes = max_file_bytes
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

    def _files(self) -> tuple[dict[str, bytes], dict[str, str]]:
        base = self.root / self.config_path if self.config_path else self.root
        if not base.is_dir():
            raise SourceError(self._no_folder(base))
        files: dict[str, bytes] = {}
        problems: dict[str, str] = {}
        for folder, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            for name in list(dirnames):
                path = Path(folder, name)
                if path.is_symlink():  # os.walk lists it but does not enter it: say so
                    problems[self._rel(path)] = (
                        "this is a link to a folder, which SynosCD does not follow (GitHub does not "
                        "either); replace the link with the files"
                    )
            for name in sorted(filenames):
                path = Path(folder, name)
                rel = self._rel(path)
                if not is_manifest(rel, self.config_path):
                    continue
                content, problem = self._read_manifest(path)
                if problem is not None:
                    problems[rel] = problem
                elif content is not None:
                    files[rel] = content
        return files, problems

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _read_manifest(self, path: Path) -> tuple[bytes | None, str | None]:
        try:
            target = path.resolve(strict=True)
        except FileNotFoundError:
            return None, "this file is a broken link (its target does not exist); fix or remove it"
        except (OSError, RuntimeError) as exc:  # a link loop, a path too long
            return None, f"this file cannot be resolved ({_why(exc)}); fix or remove it"
        if not target.is_relative_to(self.root):
            return None, (
                "this file is a link that points outside the repository; SynosCD reads only files "
                "inside it, replace the link with the file"
            )
        return _bounded_read(target, self.max_file_bytes)

    def _no_folder(self, base: Path) -> str:
        """Say which setting to change: the config path is joined to the source path, and a common
        mistake is to point SYNOSCD_SOURCE_PATH at the manifests folder itself."""
        joined = (
            f"{base} does not exist: SYNOSCD_GITHUB_CONFIG_PATH ({self.config_path}) is a folder inside "
            f"SYNOSCD_SOURCE_PATH ({self.root})"
        )
        holds = self.root.is_dir() and any(
            p.suffix.lower() in (".yaml", ".yml") for p in self.root.iterdir() if p.is_file()
        )
        if not holds:
            return f"{joined}; check both settings"
        fix = f"set SYNOSCD_GITHUB_CONFIG_PATH=. to read the manifests in {self.root} itself"
        if self.root.name == self.config_path:
            fix += f", or SYNOSCD_SOURCE_PATH={self.root.parent}"
        return f"{joined}, and {self.root} holds manifests: {fix}"

    def snapshot(self, at: str | None = None) -> Snapshot:
        if not self.root.exists():
            raise SourceError(f"{self.root} does not exist; check SYNOSCD_SOURCE_PATH")
        if at is not None:
            return self._at_commit(at)
        files, problems = self._files()
        digests = {p: hashlib.sha256(c).hexdigest() for p, c in files.items()}
        head = self._git("rev-parse", "HEAD")
        dirty = self._git("status", "--porcelain", "--", self.config_path or ".")
        if head and dirty == "":
            revision = head
        else:
            content = "\n".join(f"{p}\0{d}" for p, d in sorted(digests.items()))
            content += "".join(f"\n{p}\0!{why}" for p, why in sorted(problems.items()))
            revision = "sha256:" + hashlib.sha256(content.encode()).hexdigest()
        changed = diff_paths(self._last, digests) if self._last else None
        self._last = digests
        self._history[revision] = digests
        return Snapshot(revision, files, f"local:{self.root}", changed, reader=self._read, problems=problems)

    def _at_commit(self, at: str) -> Snapshot:
        """The manifests as committed at `at`, whatever the work tree holds now."""
        sha = self._git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{at}^{{commit}}")
        if not sha:
            raise SourceError(f"{self.root}: {at[:80]!r} is not a commit of this git repository")
        listing = self._git_bytes("ls-tree", "-r", "-z", "--full-tree", sha, "--", self.config_path or ".")
        if listing is None:
            raise SourceError(f"{self.root}: could not list commit {sha[:12]}")
        blobs: dict[str, str] = {}
        for record in listing.split(b"\0"):
            meta, _, path = record.partition(b"\t")
            parts = meta.split()
            rel = path.decode("utf-8", "replace")
            if len(parts) == 3 and parts[1] == b"blob" and is_manifest(rel, self.config_path):
                blobs[rel] = parts[2].decode()
        files: dict[str, bytes] = {}
        problems: dict[str, str] = {}
        for rel, blob in sorted(blobs.items()):
            data = self._blob(blob)
            if len(data) > self.max_file_bytes:
                problems[rel] = (
                    f"this file is larger than {_size(self.max_file_bytes)}; split it into smaller files"
                )
            else:
                files[rel] = data
        digests = {p: hashlib.sha256(c).hexdigest() for p, c in files.items()}
        changed = diff_paths(self._last, digests) if self._last else None
        self._last = digests
        self._history[sha] = digests

        def read(path: str) -> bytes | None:
            return self._git_bytes("show", f"{sha}:{path}") if not path.startswith("-") else None

        return Snapshot(sha, files, f"local:{self.root}", changed, reader=read, problems=problems)

    def _blob(self, sha: str) -> bytes:
        data = self._git_bytes("cat-file", "blob", sha)
        if data is None:
            raise SourceError(f"{self.root}: could not read blob {sha}")
        return data

    def _git_bytes(self, *args: str) -> bytes | None:
        try:
            out = subprocess.run(
                ["git", "-C", str(self.root), *args], capture_output=True, timeout=30, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout if out.returncode == 0 else None

    def _read(self, path: str) -> bytes | None:
        """A repository file for `spec.configFrom`: None when absent, outside the root or too large."""
        try:
            target = (self.root / path).resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not target.is_relative_to(self.root):
            return None
        content, problem = _bounded_read(target, self.max_file_bytes)
        return None if problem else content

    def changed_since(self, revision: str) -> frozenset[str] | None:
        old = self._history.get(revision)
        if old is None:
            return None
        return diff_paths(old, self._last)


def _bounded_read(target: Path, limit: int) -> tuple[bytes | None, str | None]:
    """The file's content, or why it is not read: never more than `limit` bytes come into memory."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway.
        fd = os.open(target, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        return None, f"this file cannot be read ({_why(exc)}); check its permissions"
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None, "this is not a regular file (a device, socket or pipe); replace it with a file"
        if info.st_size > limit:
            return None, f"this file is larger than {_size(limit)}; split it into smaller files"
        try:
            content = handle.read(limit + 1)
        except OSError as exc:
            return None, f"this file cannot be read ({_why(exc)}); check its permissions"
    if len(content) > limit:  # it grew after the size check
        return None, f"this file is larger than {_size(limit)}; split it into smaller files"
    return content, None


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or type(exc).__name__


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"
