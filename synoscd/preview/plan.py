"""Plan a snapshot other than the followed branch's head — a pull request's merge result, any branch,
tag or commit (`synos diff --ref`) — against the live environment, exactly as a pass plans: the same
`run_pass` dry run (runtime settings, flags, statuses, guardrails, waves and hooks, the pure plan),
with only the source swapped. A dry run takes no lease and writes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from synoscd.engine.reconcile import PassResult, run_pass
from synoscd.engine.runtime import Runtime, get_runtime
from synoscd.sources.snapshot import Snapshot

TRIGGER = "preview"  # the operation a new revision would start: the same for a check and the CLI


class _Pinned:
    """A source that serves one snapshot (read once, by the pass)."""

    def __init__(self, read: Callable[[], Snapshot]) -> None:
        self._read = read

    def snapshot(self, at: str | None = None) -> Snapshot:
        return self._read()

    def changed_since(self, revision: str) -> frozenset[str] | None:
        return None


class _WithSource:
    """The runtime with another source; settings, state table, ARM and Key Vault are its own. Its
    parse is its own too: the runtime keeps the followed revision's parse by (source, revision), and
    a merge result's revision (the pull request's head) does not name one content — the same head
    merged onto a newer base is another tree. Files are parsed once per content all the same
    (manifests/desired.py), so this costs validation only."""

    def __init__(self, rt: Runtime, source: _Pinned) -> None:
        self._rt = rt
        self._source = source
        self._parsed: tuple[Snapshot, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._rt, name)

    def source(self) -> _Pinned:
        return self._source

    def parsed(self, snapshot: Snapshot, load: Callable[[Any], Any]) -> Any:
        if self._parsed is None or self._parsed[0] is not snapshot:
            self._parsed = (snapshot, load(snapshot.files))
        return self._parsed[1]


def plan_snapshot(
    read: Callable[[], Snapshot],
    *,
    rt: Runtime | None = None,
    app: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> PassResult:
    """The dry run of a pass over the snapshot `read` returns. A SourceError it raises is the
    result's `source_error`, as in a pass."""
    pinned = _WithSource(rt or get_runtime(), _Pinned(read))
    return run_pass(TRIGGER, dry_run=True, app=app, rt=pinned, progress=progress)  # type: ignore[arg-type]


def plan_ref(
    ref: str,
    *,
    rt: Runtime | None = None,
    app: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> PassResult:
    """`synos diff --ref`: a branch, tag or commit of the ops repository planned against live. With a
    local source (SYNOSCD_SOURCE_PATH, a git repository) the ref is a commit of that repository."""
    rt = rt or get_runtime()
    source = rt.source()

    def read() -> Snapshot:
        snapshot_of = getattr(source, "snapshot_of", None)  # GitHub: the ref's own listing
        return snapshot_of(ref) if snapshot_of is not None else source.snapshot(at=ref)

    return plan_snapshot(read, rt=rt, app=app, progress=progress)
