"""A snapshot of the ops repository at one revision: the manifest files under the config path, and
a reader for any other repository file (for `spec.configFrom`)."""

from __future__ import annotations

import hashlib
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol


class SourceError(Exception):
    """The desired state could not be read completely. The engine turns this into 'no prune this
    pass'; the message names the endpoint or path and what to check."""


@dataclass(frozen=True)
class Snapshot:
    revision: str
    files: Mapping[str, bytes]  # manifest files (.yaml/.yml) under the config path, repo-relative
    source: str  # owner/repo:path or local:PATH, for the synoscd-source tag
    # Paths whose content differs from the previous snapshot this source served; None = unknown.
    changed: frozenset[str] | None = None
    reader: Callable[[str], bytes | None] = field(default=lambda _path: None, compare=False, repr=False)
    # Manifest paths the source could not read, with why: the desired set is then incomplete (no prune).
    problems: Mapping[str, str] = field(default_factory=dict)
    # What the pass record should say about this revision, e.g. that it is a force-push or older than
    # the revision served before (applied as pushed all the same: Git is the truth).
    notes: tuple[str, ...] = ()
    # More of them, asked for only when the pass is recorded: a source may work them out meanwhile
    # (the GitHub source compares commits off the pass's critical path).
    later_notes: Callable[[], tuple[str, ...]] = field(default=lambda: (), compare=False, repr=False)

    def read(self, path: str) -> bytes | None:
        """Any file of the repository at this revision (None when absent)."""
        if path in self.files:
            return self.files[path]
        return self.reader(path)


@dataclass(frozen=True)
class ChangedFile:
    """One file a pull request changes, as GitHub's compare lists it."""

    path: str
    status: str  # added | removed | modified | renamed | copied | changed
    previous: str | None = None  # a renamed file's old path


@dataclass(frozen=True)
class Change:
    """How a snapshot of a pull request came about: the base branch's commit it was merged onto, the
    merge base, the head, and the files the pull request changes (from the merge base to the head)."""

    base: str
    merge_base: str
    head: str
    files: tuple[ChangedFile, ...]

    @property
    def up_to_date(self) -> bool:
        """The pull request contains the base's head: the merge result is exactly the head."""
        return self.merge_base == self.base

    @property
    def paths(self) -> frozenset[str]:
        return frozenset(p for f in self.files for p in (f.path, f.previous) if p)


class Source(Protocol):
    def snapshot(self, at: str | None = None) -> Snapshot:
        """The manifests at commit `at` (a pushed commit: immutable, read directly) or, when None, at
        whatever the branch says now."""
        ...

    def changed_since(self, revision: str) -> frozenset[str] | None: ...


def config_prefix(config_path: str) -> str:
    """The config path as a repository-relative folder: '', '.', '/' and './' all mean the root."""
    return posixpath.normpath("/" + config_path.strip()).strip("/")


def git_blob_id(data: bytes) -> str:
    """The id git gives this content as a blob: sha1 of `blob <len>\\0` + content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def is_manifest(path: str, config_path: str) -> bool:
    prefix = config_prefix(config_path)
    inside = not prefix or path == prefix or path.startswith(prefix + "/")
    return inside and path.lower().endswith((".yaml", ".yml"))


def diff_paths(old: Mapping[str, str], new: Mapping[str, str]) -> frozenset[str]:
    """Paths added, removed or changed between two {path: content id} maps."""
    return frozenset(p for p in old.keys() | new.keys() if old.get(p) != new.get(p))
