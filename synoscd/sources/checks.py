"""GitHub check runs for one repository, through the GitHub source's requester (its App installation
token, renewal, retry and rate-limit handling). Needs the App permission `checks: write`.

Within GitHub's limits whatever the caller hands over: a title, summary or text is cut to what GitHub
takes (65,535 bytes: GitHub counts characters in its schema and bytes in its model), an annotation's
message and details to 64 KB, and annotations go out 50 per request (each update appends to the
run's). A cut says so; nothing here fails for size."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from synoscd.sources.snapshot import SourceError

MAX_TEXT_BYTES = 65535
MAX_ANNOTATION_BYTES = 64 * 1024
MAX_TITLE_CHARS = 255
ANNOTATIONS_PER_REQUEST = 50
CUT_MARK = "\n\n… (cut to fit GitHub's limit)"


class CheckRunError(SourceError):
    """GitHub refused a check-run request; the message says what to check."""


@dataclass(frozen=True)
class Annotation:
    path: str
    line: int
    message: str
    title: str = ""
    level: str = "failure"  # notice | warning | failure
    details: str = ""

    def to_json(self) -> dict[str, Any]:
        line = max(1, int(self.line or 1))
        out: dict[str, Any] = {
            "path": self.path,
            "start_line": line,
            "end_line": line,
            "annotation_level": self.level,
            "message": fit_bytes(self.message or "(no message)", MAX_ANNOTATION_BYTES),
        }
        if self.title:
            out["title"] = self.title[:MAX_TITLE_CHARS]
        if self.details:
            out["raw_details"] = fit_bytes(self.details, MAX_ANNOTATION_BYTES)
        return out


@dataclass(frozen=True)
class Output:
    title: str
    summary: str
    text: str | None = None
    annotations: Sequence[Annotation] = field(default_factory=tuple)

    def to_json(self, annotations: Sequence[Annotation] = ()) -> dict[str, Any]:
        out: dict[str, Any] = {
            "title": self.title[:MAX_TITLE_CHARS],
            "summary": fit_bytes(self.summary, MAX_TEXT_BYTES),
        }
        if self.text:
            out["text"] = fit_bytes(self.text, MAX_TEXT_BYTES)
        if annotations:
            out["annotations"] = [a.to_json() for a in annotations]
        return out


def fit_bytes(text: str, limit: int) -> str:
    """`text` cut (on a character boundary, with a mark) so its UTF-8 form is at most `limit` bytes."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    room = limit - len(CUT_MARK.encode("utf-8"))
    return data[:room].decode("utf-8", "ignore") + CUT_MARK


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


class CheckRuns:
    """Create and complete check runs on the source's repository."""

    def __init__(self, source: Any) -> None:
        self.source = source  # GitHubSource: api(), repo_path()

    def create(
        self,
        head_sha: str,
        name: str,
        output: Output,
        *,
        external_id: str = "",
        conclusion: str | None = None,
    ) -> int:
        """A new check run on `head_sha` (GitHub files it in the App's suite for that commit): in
        progress, or completed at once with `conclusion` (and the first 50 annotations)."""
        now = iso(time.time())
        body: dict[str, Any] = {
            "name": name,
            "head_sha": head_sha,
            "status": "in_progress",
            "external_id": external_id,
            "started_at": now,
            "output": output.to_json(output.annotations[:ANNOTATIONS_PER_REQUEST]),
        }
        if conclusion is not None:
            body.update(status="completed", conclusion=conclusion, completed_at=now)
        data = self._call("POST", self.source.repo_path("check-runs"), body, f"create check run {name!r}")
        return int(data["id"])

    def complete(self, run_id: int, conclusion: str, output: Output) -> int:
        """Conclude the run with `output`: its annotations 50 per request (the earlier batches while
        the run is still in progress, the last one with the conclusion). The requests made."""
        batches = [
            output.annotations[i : i + ANNOTATIONS_PER_REQUEST]
            for i in range(0, len(output.annotations), ANNOTATIONS_PER_REQUEST)
        ] or [()]
        path = self.source.repo_path(f"check-runs/{run_id}")
        for batch in batches[:-1]:
            self._call("PATCH", path, {"output": output.to_json(batch)}, f"annotate check run {run_id}")
        final = {
            "status": "completed",
            "conclusion": conclusion,
            "completed_at": iso(time.time()),
            "output": output.to_json(batches[-1]),
        }
        self._call("PATCH", path, final, f"complete check run {run_id}")
        return len(batches)

    def update(self, run_id: int, **fields: Any) -> None:
        """Change a run as it is (e.g. mark a finished preview stale); `output` as an Output."""
        body = dict(fields)
        if isinstance(body.get("output"), Output):
            body["output"] = body["output"].to_json()
        self._call("PATCH", self.source.repo_path(f"check-runs/{run_id}"), body, f"update check run {run_id}")

    def _call(self, method: str, path: str, body: dict[str, Any], what: str) -> dict[str, Any]:
        status, _headers, data = self.source.api(method, path, body)
        if status < 300 and isinstance(data, dict):
            return data
        message = data.get("message") if isinstance(data, dict) else str(data)[:200]
        if status == 403:
            raise CheckRunError(
                f"GitHub refused to {what} ({status}: {message}); give the GitHub App the permission "
                "Checks: Read and write and accept it on the installation (docs/operations.md)"
            )
        raise CheckRunError(f"GitHub refused to {what} ({status}: {message})")
