"""Read (and, for the admin API, write) access to local git work trees, the stand-in's storage."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from emulators.github.common import EMPTY_TREE, SHA_RE, gh_error, iso_utc, not_found, safe_ref
from emulators.httpbase import HttpError

BLOB_CACHE_BYTES = 256 * 1024 * 1024
ADMIN_NAME, ADMIN_EMAIL = "SynosCD Test", "test@synoscd.invalid"  # for admin commits without an identity


def _git_env() -> dict[str, str]:
    """A fixed environment: no user or system config, C locale, never prompt."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.devnull,
        "LC_ALL": "C",
        "LANG": "C",
        "TZ": "UTC",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
    }


GIT_ENV = _git_env()


class GitError(Exception):
    pass


def run_git(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(
        ["git", "-c", "safe.directory=*", "-c", "core.quotepath=off", *args],
        cwd=cwd,
        env=GIT_ENV,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args)}: {proc.stderr.decode('utf-8', 'replace').strip()}")
    return proc


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    epoch: int
    tz: str  # "+0100"

    @classmethod
    def parse(cls, line: str) -> Person:
        m = re.match(r"^(.*?) ?<(.*)> (\d+) ([+-]\d{4})$", line)
        if not m:
            return cls(line, "", 0, "+0000")
        return cls(m.group(1), m.group(2), int(m.group(3)), m.group(4))

    def iso_local(self) -> str:
        sign = -1 if self.tz.startswith("-") else 1
        offset = dt.timedelta(hours=int(self.tz[1:3]), minutes=int(self.tz[3:5])) * sign
        return dt.datetime.fromtimestamp(self.epoch, dt.timezone(offset)).isoformat()

    def rest(self) -> dict[str, str]:
        return {"name": self.name, "email": self.email, "date": iso_utc(self.epoch)}


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Person
    committer: Person
    message: str


@dataclass(frozen=True)
class TreeEntry:
    path: str
    mode: str
    type: str  # blob | tree | commit
    sha: str
    size: int | None


@dataclass(frozen=True)
class FileChange:
    status: str  # git letter: A M D R C T
    path: str
    previous_path: str | None
    old_sha: str
    new_sha: str
    additions: int
    deletions: int


@dataclass
class TreeIndex:
    entries: dict[str, TreeEntry]
    children: dict[str, list[TreeEntry]]


class GitRepo:
    """Read access to one work tree's committed objects; immutable objects are cached by sha."""

    def __init__(self, path: Path, owner: str, name: str) -> None:
        self.path = path
        self.owner = owner
        self.name = name
        self._commits: dict[str, CommitInfo] = {}
        self._trees: dict[tuple[str, bool], list[TreeEntry]] = {}
        self._indexes: dict[str, TreeIndex] = {}
        self._blobs: dict[str, bytes] = {}
        self._blob_bytes = 0
        self._diffs: dict[tuple[str, str, bool], list[FileChange]] = {}
        self._archives: dict[tuple[str, str], bytes] = {}
        self._ranges: dict[tuple[str, str], list[str]] = {}

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    def git(self, *args: str) -> bytes:
        return run_git(self.path, *args).stdout

    def try_git(self, *args: str) -> bytes | None:
        proc = run_git(self.path, *args, check=False)
        return proc.stdout if proc.returncode == 0 else None

    # -- names ------------------------------------------------------------------------------
    def default_branch(self) -> str:
        # Reading .git/HEAD saves a subprocess on the hottest path (every repository answer).
        head = self.path / ".git" / "HEAD"
        try:
            text = head.read_text("utf-8").strip()
        except OSError:
            text = ""
        if text.startswith("ref: refs/heads/"):
            return text.removeprefix("ref: refs/heads/")
        out = self.try_git("symbolic-ref", "--short", "-q", "HEAD")
        return out.decode().strip() if out else "main"

    def resolve(self, ref: str, kind: str = "commit") -> str | None:
        """The sha of `ref` peeled to `kind` (commit or tree), or None."""
        if not safe_ref(ref, allow_path=kind == "tree"):
            return None
        if kind == "commit" and ref in self._commits:
            return ref
        if kind == "tree" and (ref, True) in self._trees:
            return ref
        if ":" in ref:  # "main:dir" names a subtree; a ^{tree} suffix would join the path
            out = self.try_git("rev-parse", "--verify", "--quiet", "--end-of-options", ref)
            sha = out.decode().strip() if out else ""
            kind_out = self.try_git("cat-file", "-t", sha) if SHA_RE.match(sha) else None
            return sha if kind_out is not None and kind_out.decode().strip() == "tree" else None
        out = self.try_git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{{kind}}}")
        sha = out.decode().strip() if out else ""
        return sha if SHA_RE.match(sha) else None

    def branch_sha(self, branch: str) -> str | None:
        if not safe_ref(branch):
            return None
        return self.resolve(f"refs/heads/{branch}")

    def refs(self, prefix: str = "refs/") -> list[tuple[str, str, str]]:
        """(refname, sha, object type) of refs under `prefix` (whole path components)."""
        out = self.git("for-each-ref", "--format=%(refname)%00%(objectname)%00%(objecttype)", prefix)
        rows = []
        for line in out.decode("utf-8", "replace").splitlines():
            name, sha, kind = line.split("\0")
            rows.append((name, sha, kind))
        return rows

    # -- objects ----------------------------------------------------------------------------
    def commit(self, sha: str) -> CommitInfo:
        cached = self._commits.get(sha)
        if cached is not None:
            return cached
        raw = self.try_git("cat-file", "commit", sha)
        if raw is None:
            raise not_found()
        info = self._parse_commit(sha, raw.decode("utf-8", "replace"))
        self._commits[sha] = info
        return info

    @staticmethod
    def _parse_commit(sha: str, text: str) -> CommitInfo:
        header, _, message = text.partition("\n\n")
        fields: dict[str, list[str]] = {}
        for line in header.split("\n"):
            if line.startswith(" "):
                continue  # continuation of a multi-line header (gpgsig, mergetag)
            key, _, value = line.partition(" ")
            fields.setdefault(key, []).append(value)
        return CommitInfo(
            sha=sha,
            tree=fields["tree"][0],
            parents=tuple(fields.get("parent", [])),
            author=Person.parse(fields.get("author", [""])[0]),
            committer=Person.parse(fields.get("committer", [""])[0]),
            message=message.rstrip("\n"),
        )

    def tree(self, sha: str, recursive: bool) -> list[TreeEntry]:
        key = (sha, recursive)
        cached = self._trees.get(key)
        if cached is not None:
            return cached
        args = ["ls-tree", "-l", "-z", *(["-r", "-t"] if recursive else []), sha]
        out = self.try_git(*args)
        if out is None:
            raise not_found()
        entries = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            mode, kind, obj, size = meta.decode("ascii").split()
            entries.append(
                TreeEntry(
                    path.decode("utf-8", "replace"), mode, kind, obj, None if size == "-" else int(size)
                )
            )
        self._trees[key] = entries
        if recursive:
            self.prefetch([e.sha for e in entries if e.type == "blob" and (e.size or 0) < 1 << 20])
        return entries

    def prefetch(self, shas: list[str]) -> None:
        """Read many blobs with one `git cat-file --batch`: clients that list a tree read its blobs
        next, and one git process per blob would make the stand-in, not the client, the bottleneck."""
        missing = [sha for sha in dict.fromkeys(shas) if sha not in self._blobs and SHA_RE.match(sha)]
        if not missing:
            return
        proc = subprocess.run(
            ["git", "-c", "safe.directory=*", "cat-file", "--batch"],
            cwd=self.path,
            env=GIT_ENV,
            input=("\n".join(missing) + "\n").encode(),
            capture_output=True,
            timeout=60,
            check=False,
        )
        out, pos = proc.stdout, 0
        for sha in missing:
            end = out.find(b"\n", pos)
            if end < 0:
                return
            header = out[pos:end].split()
            if len(header) < 3:  # "<sha> missing"
                pos = end + 1
                continue
            size = int(header[2])
            if header[1] == b"blob":
                self._remember_blob(sha, out[end + 1 : end + 1 + size])
            pos = end + 1 + size + 1

    def index(self, tree_sha: str) -> TreeIndex:
        """Path -> entry and directory -> children of a root tree, for the contents API."""
        cached = self._indexes.get(tree_sha)
        if cached is not None:
            return cached
        entries = self.tree(tree_sha, recursive=True)
        children: dict[str, list[TreeEntry]] = {"": []}
        for entry in entries:
            parent = entry.path.rpartition("/")[0]
            children.setdefault(parent, []).append(entry)
        index = TreeIndex({e.path: e for e in entries}, children)
        self._indexes[tree_sha] = index
        return index

    def blob(self, sha: str) -> bytes | None:
        cached = self._blobs.get(sha)
        if cached is not None:
            return cached
        if not SHA_RE.match(sha):
            return None
        data = self.try_git("cat-file", "blob", sha)
        if data is None:
            return None
        self._remember_blob(sha, data)
        return data

    def _remember_blob(self, sha: str, data: bytes) -> None:
        self._blobs[sha] = data
        self._blob_bytes += len(data)
        while self._blob_bytes > BLOB_CACHE_BYTES and len(self._blobs) > 1:
            oldest = next(iter(self._blobs))
            self._blob_bytes -= len(self._blobs.pop(oldest))

    def diff(self, old: str | None, new: str, renames: bool = True) -> list[FileChange]:
        """Changes from commit `old` (None: the empty tree) to commit `new`."""
        base = old or EMPTY_TREE
        key = (base, new, renames)
        cached = self._diffs.get(key)
        if cached is not None:
            return cached
        rename_flag = "-M" if renames else "--no-renames"
        out = self.git("diff-tree", "-r", "-z", rename_flag, "--raw", "--numstat", base, new)
        changes = self._parse_diff(out)
        self._diffs[key] = changes
        return changes

    @staticmethod
    def _parse_diff(out: bytes) -> list[FileChange]:
        """Parse `--raw --numstat -z`: raw records (":" first) then numstat records."""
        tokens = [t.decode("utf-8", "replace") for t in out.split(b"\0")]
        raw: list[tuple[str, str | None, str, str, str]] = []
        stats: dict[str, tuple[int, int]] = {}
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if not token:
                i += 1
            elif token.startswith(":"):
                _, _, old_sha, new_sha, status = token[1:].split(" ")
                if status[0] in "RC":
                    raw.append((status[0], tokens[i + 1], tokens[i + 2], old_sha, new_sha))
                    i += 3
                else:
                    raw.append((status[0], None, tokens[i + 1], old_sha, new_sha))
                    i += 2
            else:
                added, deleted, path = token.split("\t", 2)
                if not path:  # a rename: old and new paths follow
                    path = tokens[i + 2]
                    i += 2
                stats[path] = (int(added) if added.isdigit() else 0, int(deleted) if deleted.isdigit() else 0)
                i += 1
        return [
            FileChange(status, path, prev, old_sha, new_sha, *stats.get(path, (0, 0)))
            for status, prev, path, old_sha, new_sha in raw
        ]

    def rev_list(self, *spec: str, path: str | None = None) -> list[str]:
        """Commit shas of a rev-list spec, newest first."""
        args = ["rev-list", *spec, "--"] + ([path] if path else [])
        return self.git(*args).decode().split()

    def range_commits(self, base: str, head: str) -> list[str]:
        """Commits in head but not base, oldest first (immutable for shas, so cached)."""
        key = (base, head)
        if key not in self._ranges:
            self._ranges[key] = list(reversed(self.rev_list(f"{base}..{head}")))
        return self._ranges[key]

    def merge_base(self, a: str, b: str) -> str | None:
        out = self.try_git("merge-base", a, b)
        return out.decode().strip() if out else None

    def is_ancestor(self, a: str, b: str) -> bool:
        return run_git(self.path, "merge-base", "--is-ancestor", a, b, check=False).returncode == 0

    def archive(self, sha: str, fmt: str) -> bytes:
        key = (sha, fmt)
        if key not in self._archives:
            prefix = f"{self.owner}-{self.name}-{sha[:7]}/"
            self._archives[key] = self.git("archive", f"--format={fmt}", f"--prefix={prefix}", sha)
        return self._archives[key]


def commit_files(path: Path, files: dict[str, Any], message: str) -> str:
    """Write (or delete, for None) `files` in the work tree and commit them; the new HEAD sha."""
    for rel, text in files.items():
        target = _safe_join(path, str(rel))
        if text is None:
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(str(text), encoding="utf-8")
    run_git(path, "add", "-A")
    # The stand-in runs git without user or system config: a work tree made elsewhere (the launcher's
    # default repository) may have no identity of its own, and git would refuse to commit.
    identity = []
    for key, default in (("user.name", ADMIN_NAME), ("user.email", ADMIN_EMAIL)):
        if not run_git(path, "config", "--get", key, check=False).stdout.strip():
            identity += ["-c", f"{key}={default}"]
    run_git(path, *identity, "commit", "-q", "--allow-empty", "--no-verify", "-m", message)
    return run_git(path, "rev-parse", "HEAD").stdout.decode().strip()


def commit_to_branch(path: Path, branch: str, files: dict[str, Any], message: str, start: str) -> str:
    """Commit `files` (None deletes) on `branch` without touching the work tree: the branch's tip as
    parent, or `start` (a commit) when the branch does not exist yet. The new commit's sha."""
    if not safe_ref(branch):
        raise HttpError(gh_error(400, f"invalid branch name: {branch!r}"))
    current = run_git(path, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
    parent = current.stdout.decode().strip() if current.returncode == 0 else start
    index = path / ".git" / f"synoscd-index-{os.getpid()}-{abs(hash(branch))}"
    env = {**GIT_ENV, "GIT_INDEX_FILE": str(index), **_identity(path)}

    def git(*args: str, data: bytes | None = None) -> str:
        proc = subprocess.run(
            ["git", "-c", "safe.directory=*", *args],
            cwd=path,
            env=env,
            input=data,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if proc.returncode != 0:
            raise GitError(f"git {' '.join(args)}: {proc.stderr.decode('utf-8', 'replace').strip()}")
        return proc.stdout.decode().strip()

    try:
        git("read-tree", parent)
        for rel, text in files.items():
            _safe_join(path, str(rel))  # the same path rules as a work-tree commit
            if text is None:
                git("update-index", "--force-remove", "--", str(rel))
                continue
            blob = git("hash-object", "-w", "--stdin", data=str(text).encode("utf-8"))
            git("update-index", "--add", "--cacheinfo", f"100644,{blob},{rel}")
        tree = git("write-tree")
        commit = git("commit-tree", tree, "-p", parent, "-m", message)
        git("update-ref", f"refs/heads/{branch}", commit)
        return commit
    finally:
        index.unlink(missing_ok=True)


def _identity(path: Path) -> dict[str, str]:
    """Author and committer from the repository's config, else the admin identity."""
    out = {}
    for key, default, names in (
        ("user.name", ADMIN_NAME, ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME")),
        ("user.email", ADMIN_EMAIL, ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL")),
    ):
        value = run_git(path, "config", "--get", key, check=False).stdout.decode().strip() or default
        out.update(dict.fromkeys(names, value))
    return out


def _safe_join(root: Path, rel: str) -> Path:
    parts = PurePosixPath(rel).parts
    if not parts or rel.startswith("/") or ".." in parts or parts[0] == ".git":
        raise HttpError(gh_error(400, f"invalid file path: {rel!r}"))
    return root.joinpath(*parts)
