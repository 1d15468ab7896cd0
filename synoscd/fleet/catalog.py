"""The fleet as declared now: the default target (app settings), SYNOSCD_TARGETS, and the `kind:
Target` manifests of the ops repository's targets path (SYNOSCD_TARGETS_PATH).

`load` reads the repository: on a warm instance one conditional request for the branch head (304
while nothing was pushed), the tree and the changed target files only when the head moved. What it
read is kept in the deployment's table (partition `fleet`, row `catalog`) for the readers that must
not call GitHub: the webhook's fan-out, `synos --target`, `synos get targets` and the dashboard
(`cached`).

A target with errors is left out (and reported); the others are served. A target removed from the
repository is no longer reconciled: nothing of it is deleted.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from synoscd.fleet.targets import TargetDef, combine, default_target, from_manifest, from_settings

PK, CATALOG = "fleet", "catalog"
log = logging.getLogger("synoscd.fleet")


@dataclass(frozen=True)
class Fleet:
    targets: list[TargetDef]
    revision: str | None = None  # the ops repository's commit the repository's targets were read at
    errors: list[str] = field(default_factory=list)
    read_at: float = 0.0

    def get(self, name: str) -> TargetDef | None:
        return next((t for t in self.targets if t.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "targets": [t.to_dict() for t in self.targets],
            "errors": self.errors,
            "readAt": self.read_at,
        }


def _declared(settings: Any) -> tuple[list[TargetDef], list[str]]:
    """The targets of the app settings: the default one and SYNOSCD_TARGETS."""
    default = default_target(settings)
    listed, errors = from_settings(settings.targets)
    return [*([default] if default else []), *listed], errors


def _targets_source(rt: Any) -> Any:
    """The ops repository at the targets path: a source of its own (warm per process like the
    targets' sources), without a persisted cache: the folder is small."""
    from synoscd.sources.factory import build_source

    settings = rt.settings.model_copy(update={"github_config_path": rt.settings.targets_path})
    return build_source(settings, rt.secrets, None)


def load(rt: Any, at: str | None = None) -> Fleet:
    """The fleet read from the repository now (or at commit `at`, a push's `after`); its repository
    part kept in the deployment's table for `cached`. A source error keeps the last catalog's
    repository targets, so GitHub being down stops no target that was known."""
    from synoscd.manifests.desired import load_desired
    from synoscd.sources.github import GitHubSource
    from synoscd.sources.snapshot import SourceError

    rt = rt.deployment
    declared, errors = _declared(rt.settings)
    if not rt.settings.targets_path.strip():
        return Fleet(declared, None, errors, time.time())
    try:
        source = _targets_source(rt)
        snapshot = source.snapshot(at=at) if at else source.snapshot()
    except SourceError as exc:
        log.warning("could not read the targets path: %s; the last catalog is used", exc)
        last = cached(rt)
        return Fleet(last.targets, last.revision, [*last.errors, f"targets: {exc}"], time.time())
    desired = load_desired(snapshot.files)
    repo = [from_manifest(r) for r in desired.targets]
    repo_errors = [
        f"{e.file}:{e.line}: {e.field + ': ' if e.field else ''}{e.message}" for e in desired.errors
    ]
    # Only a GitHub source reads a commit directly; a local folder's passes read it themselves.
    revision = snapshot.revision if isinstance(source, GitHubSource) else None
    _save(rt, repo, repo_errors, revision)
    targets, clashes = combine(declared, repo)
    return Fleet(targets, revision, errors + repo_errors + clashes, time.time())


def _save(rt: Any, repo: list[TargetDef], errors: list[str], revision: str | None) -> None:
    from synoscd.state import table as t

    doc = {"targets": [r.to_dict() for r in repo], "errors": errors}

    def mutate(row: dict[str, Any] | None) -> dict[str, Any] | None:
        if row and row.get("revision") == revision and t.get_json(row, "repository") == doc:
            return None  # nothing new: no write
        new: dict[str, Any] = {"revision": revision, "changed_at": time.time()}
        t.put_json(new, "repository", doc)
        return new

    try:
        t.update(rt.table, PK, CATALOG, mutate)
    except Exception as exc:  # the catalog row is a cache: the next read writes it
        log.warning("could not keep the target catalog: %s", str(exc).splitlines()[0][:200])


def cached(rt: Any) -> Fleet:
    """The fleet without calling GitHub: the app settings' targets now, the repository's as last read
    (none before the first `load`)."""
    from synoscd.state import table as t

    rt = rt.deployment
    declared, errors = _declared(rt.settings)
    row = t.get(rt.table, PK, CATALOG) if rt.settings.targets_path.strip() else None
    doc = t.get_json(row, "repository", {}) if row else {}
    repo = [TargetDef.from_dict(d) for d in doc.get("targets", [])]
    targets, clashes = combine(declared, repo)
    changed_at = float(row.get("changed_at") or 0) if row else 0.0
    return Fleet(
        targets, row.get("revision") if row else None, errors + doc.get("errors", []) + clashes, changed_at
    )


def targets(rt: Any) -> list[TargetDef]:
    return cached(rt).targets


def find(rt: Any, name: str) -> TargetDef | None:
    """A target by name: the app settings' and the cached catalog first, then the repository."""
    found = cached(rt).get(name)
    if found is None and rt.deployment.settings.targets_path.strip():
        found = load(rt).get(name)
    return found
