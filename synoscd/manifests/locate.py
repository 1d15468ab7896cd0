"""Where a field came from: its file, line and path, also after project defaults were merged in."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .errors import ManifestError, Path, format_path
from .yaml_loader import LoadedDocument


@dataclass(frozen=True, slots=True)
class Origin:
    """A subtree of merged data came from `doc` at `path` (a project's defaults when `project` is set)."""

    doc: LoadedDocument
    path: Path
    project: str | None = None


class Locator:
    """Turns (field path, message) into a ManifestError naming the file and line the value came from.

    `origins` maps merged paths to the subtree they were copied from; paths not under any entry come
    from the document itself. The longest matching prefix wins, so a default copied into an app is
    reported at the project's line and path (spec.defaults...), everything else at the app's.
    """

    def __init__(
        self, doc: LoadedDocument, origins: Mapping[Path, Origin] | None = None, subject: str = ""
    ) -> None:
        self.doc = doc
        self.origins = origins or {}
        self.subject = subject

    def hides(self, path: Path) -> bool:
        """True when the value at `path` could not be read, so an error about it says nothing new."""
        origin, rest = self._origin(path)
        doc, full = (self.doc, path) if origin is None else (origin.doc, origin.path + rest)
        return any(full[: len(bad)] == bad for bad in doc.unreadable)

    def errors(self, issues: Iterable[tuple[Path, str]]) -> list[ManifestError]:
        return [self.error(path, message) for path, message in issues if not self.hides(path)]

    def error(self, path: Path, message: str) -> ManifestError:
        origin, rest = self._origin(path)
        if origin is None:
            return ManifestError(self.doc.file, self.doc.line_of(path), format_path(path), message)
        full = origin.path + rest
        if origin.project is not None:
            message = (
                f"{message} (from the defaults of project '{origin.project}', applied to {self.subject})"
            )
        return ManifestError(origin.doc.file, origin.doc.line_of(full), format_path(full), message)

    def _origin(self, path: Path) -> tuple[Origin | None, Path]:
        if self.origins:
            for end in range(len(path), 0, -1):
                origin = self.origins.get(path[:end])
                if origin is not None:
                    return origin, path[end:]
        return None, path
