"""What a preview reports on the pull request: pure, from the plan document a dry run produces (the
shape of `synos diff -o json`).

- conclusion: `failure` for a blocking problem (manifests that do not validate or break a policy, a
  prune the safety valve or the empty-set guard would block, a pull request that cannot be read),
  `neutral` when merging would change something, `success` when it would change nothing;
- a Markdown summary: the actions by wave (create, update, heal, delete with the field-level
  changes), the hooks that would run, what is skipped and why, and the errors;
- an annotation at file:line for each validation error and policy violation.

Within GitHub's limits whatever the plan holds: the summary stays under `limit` bytes (GitHub takes
65,535), cutting tables short with a count of what is left out; annotations stop at MAX_ANNOTATIONS
(each request carries 50: sources/checks.py batches them) with the count in the summary."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from synoscd.sources.checks import Annotation

SUMMARY_LIMIT = 65535
MAX_ANNOTATIONS = 500  # ten update requests; the summary counts the rest
MAX_CHANGES_SHOWN = 8  # field-level changes per action in the table
VALUE_CHARS = 80
WRITES = ("create", "update", "heal", "delete")
RESERVE = 700  # room kept for the closing notes and the footer while tables are filled


@dataclass(frozen=True)
class Context:
    """Where the plan comes from and what it is planned against."""

    head: str
    branch: str
    environment: str  # resource group / environment
    base: str | None = None  # the followed branch's commit the pull request is merged onto
    pr: int | None = None
    up_to_date: bool = True  # the pull request contains the base's head (merge result == head)
    changed: tuple[str, ...] = ()  # files the pull request changes
    max_prune_fraction: float = 0.5


@dataclass(frozen=True)
class Report:
    conclusion: str  # success | neutral | failure
    title: str
    summary: str
    annotations: tuple[Annotation, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)


def render(doc: Mapping[str, Any], ctx: Context, limit: int = SUMMARY_LIMIT) -> Report:
    actions = list(doc.get("actions") or [])
    errors = list(doc.get("errors") or [])
    source_error = doc.get("sourceError")
    prune = doc.get("prune") or {}
    blocked = prune.get("blocked") if prune.get("enabled") else None
    writes = [a for a in actions if a["action"] in WRITES]
    hooks = [a for a in actions if a["action"] == "run-hook"]
    skips = [a for a in actions if a["action"] == "skip"]
    unchanged = sum(1 for a in actions if a["action"] == "noop")
    counts = {k: n for k in WRITES if (n := sum(1 for a in writes if a["action"] == k))}
    synth = list((doc.get("synthesis") or {}).get("wouldRun") or [])
    conclusion, title = _verdict(source_error, errors, blocked, writes, hooks, counts, len(synth))

    out = _Writer(limit)
    out.line(f"### {_headline(ctx, writes, [*hooks, *synth], conclusion)}")
    out.line("")
    out.line(_provenance(ctx, prune))
    if not ctx.up_to_date and ctx.base:
        out.line("")
        out.line(
            f"> This pull request does not contain `{ctx.branch}`'s latest commit `{ctx.base[:12]}`: "
            f"the plan is for the merge result ({ctx.branch} with this pull request's changes on top), "
            "not for the head's own tree. Update the branch to plan exactly what it holds."
        )
    if source_error:
        out.section("The pull request could not be read")
        out.line(_cell(str(source_error), 2000, code=False))
    if errors:
        out.section(f"Invalid manifests and policy violations ({len(errors)})")
        out.table(["File", "Line", "Field", "Problem"], [_error_row(e) for e in errors], "errors")
        if len(errors) > MAX_ANNOTATIONS:
            out.line(f"Annotated at their lines: the first {MAX_ANNOTATIONS} of {len(errors)}.")
    if blocked:
        out.section("Prune blocked" + (" by the safety valve" if "more than" in str(blocked) else ""))
        out.line(f"{_cell(str(blocked), 1000, code=False)}. Merged as it is, nothing would be deleted.")
    out.section("Actions by wave")
    if not writes:
        out.line("Nothing to create, update or delete.")
    for (phase, wave), group in groupby(writes, key=lambda a: (a.get("phase", "Sync"), a.get("wave", 0))):
        out.line(f"**{phase}, wave {wave}**")
        out.line("")
        out.table(ACTION_COLUMNS, [_action_row(a) for a in group], "actions", align_first="---:")
    if hooks:
        out.section(f"Hooks that would run ({len(hooks)})")
        out.table(HOOK_COLUMNS, [_hook_row(a) for a in hooks], "hooks", align_first="---:")
        if any(a.get("phase") == "SyncFail" for a in hooks):
            out.line("SyncFail hooks run only if the sync fails.")
    if synth:
        out.section(f"Compositions that would re-synthesise ({len(synth)})")
        out.line(
            "A preview never runs a synthesizer (it would run the pull request's code): the apps they "
            "write are planned here from their current output; the new output is synthesised, and "
            "planned, after the merge."
        )
        out.line("")
        out.table(SYNTH_COLUMNS, [_synth_row(c) for c in synth], "compositions")
    if skips:
        out.section(f"Skipped ({len(skips)})")
        out.table(SKIP_COLUMNS, [_skip_row(a) for a in skips], "skipped resources")
    out.line("")
    summary = out.finish(
        f"<sub>{unchanged} unchanged · the same plan from any machine: "
        f"<code>synos diff --ref {ctx.head[:12]}</code></sub>",
        f"`synos diff --ref {ctx.head[:12]}` lists everything.",
    )
    return Report(conclusion, title, summary, tuple(_annotations(errors)), counts)


ACTION_COLUMNS = ("#", "Action", "Kind", "Name", "Reason", "Changes")
HOOK_COLUMNS = ("#", "Phase", "Wave", "Job")
SKIP_COLUMNS = ("Kind", "Name", "Reason", "Why")
SYNTH_COLUMNS = ("Composition", "Why")


def _synth_row(c: Mapping[str, Any]) -> list[str]:
    return [_code(str(c.get("composition") or "")), _cell(str(c.get("why") or ""), 200, code=False)]


def _action_row(a: Mapping[str, Any]) -> list[str]:
    return [
        str(a.get("order", "")),
        a["action"],
        a["kind"],
        _code(a["name"]),
        a.get("reason", ""),
        _changes(a),
    ]


def _hook_row(a: Mapping[str, Any]) -> list[str]:
    return [str(a.get("order", "")), a.get("phase", ""), str(a.get("wave", 0)), _code(a["name"])]


def _skip_row(a: Mapping[str, Any]) -> list[str]:
    return [a["kind"], _code(a["name"]), a.get("reason", ""), _cell(a.get("message") or "", 200, code=False)]


def _error_row(e: Mapping[str, Any]) -> list[str]:
    return [
        _code(e.get("file") or "?"),
        str(e.get("line") or ""),
        _code(e.get("field") or ""),
        _cell(e.get("message") or "", 300, code=False),
    ]


def _verdict(
    source_error: Any,
    errors: Sequence[Mapping[str, Any]],
    blocked: Any,
    writes: Sequence[Mapping[str, Any]],
    hooks: Sequence[Mapping[str, Any]],
    counts: Mapping[str, int],
    synth: int = 0,
) -> tuple[str, str]:
    if source_error:
        return "failure", "The pull request could not be read"
    if errors:
        return "failure", _n(
            len(errors), "invalid manifest or policy violation", "invalid manifests or violations"
        )
    if blocked:
        valve = "more than" in str(blocked)
        return "failure", "Prune blocked by the safety valve" if valve else "Prune blocked"
    if writes or hooks or synth:
        parts = [f"{v} {k}" for k, v in counts.items()]
        if hooks:  # "1 hook" among the changes, "1 hook to run" alone
            parts.append(_n(len(hooks), "hook", "hooks") + ("" if writes else " to run"))
        if synth:
            parts.append(_n(synth, "composition to re-synthesise", "compositions to re-synthesise"))
        if not writes:
            return "neutral", ", ".join(parts)
        return "neutral", f"{_n(len(writes), 'change', 'changes')}: {', '.join(parts)}"
    return "success", "No changes"


def _headline(ctx: Context, writes: Sequence[Any], hooks: Sequence[Any], conclusion: str) -> str:
    what = f"Merging #{ctx.pr}" if ctx.pr else f"Merging `{ctx.head[:12]}`"
    if conclusion == "failure":
        return f"{what} is blocked"
    if not writes and not hooks:
        return f"{what} would change nothing in `{ctx.environment}`"
    return f"{what} would make {_n(len(writes), 'change', 'changes')} in `{ctx.environment}`"


def _provenance(ctx: Context, prune: Mapping[str, Any]) -> str:
    onto = (
        f" merged onto `{ctx.branch}` at `{ctx.base[:12]}`"
        if ctx.base
        else f" against `{ctx.branch}`'s live state"
    )
    valve = f", safety valve {ctx.max_prune_fraction:.0%}" if prune.get("enabled") else ""
    state = "on" if prune.get("enabled") else "off"
    changed = f"; the pull request changes {_n(len(ctx.changed), 'file', 'files')}" if ctx.changed else ""
    return (
        f"Planned for `{ctx.head[:12]}`{onto}, against the live environment; prune {state}{valve}{changed}."
    )


def _annotations(errors: Iterable[Mapping[str, Any]]) -> Iterable[Annotation]:
    found = 0
    for e in errors:
        if not e.get("file") or found >= MAX_ANNOTATIONS:
            continue
        found += 1
        field_name = str(e.get("field") or "")
        yield Annotation(
            path=str(e["file"]),
            line=int(e.get("line") or 1),
            message=str(e.get("message") or ""),
            title=f"SynosCD: {field_name}" if field_name else "SynosCD: invalid manifest",
        )


def _changes(action: Mapping[str, Any]) -> str:
    if action["action"] == "create":
        return "new"
    if action["action"] == "delete":
        return _cell(action.get("message") or "not in Git after the merge", 200, code=False)
    changes = list(action.get("changes") or [])
    if not changes:
        return _cell(action.get("message") or "", 200, code=False)
    shown = [
        f"{_code(c.get('field', ''))}: {_code(_value(c.get('live')))} → {_code(_value(c.get('desired')))}"
        for c in changes[:MAX_CHANGES_SHOWN]
    ]
    if len(changes) > MAX_CHANGES_SHOWN:
        shown.append(f"… {len(changes) - MAX_CHANGES_SHOWN} more")
    return "<br>".join(shown)


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _code(text: str) -> str:
    return _cell(text, VALUE_CHARS, code=True)


def _cell(text: str, limit: int, code: bool) -> str:
    """Safe in a Markdown table cell: escaped, on one line, cut to `limit` characters."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    text = html.escape(text, quote=False).replace("|", "&#124;")
    return f"<code>{text}</code>" if code and text else text


def _n(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


class _Writer:
    """Markdown that never grows past `limit` UTF-8 bytes. Once a table does not fit, nothing more is
    added but one closing note counting what was left out (its room, and the footer's, is kept)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.size = 0
        self.left_out: dict[str, int] = {}

    def _fits(self, text: str, reserve: int = RESERVE) -> bool:
        return self.size + len(text.encode("utf-8")) + 1 + reserve <= self.limit

    def _add(self, text: str) -> None:
        self.parts.append(text)
        self.size += len(text.encode("utf-8")) + 1

    def line(self, text: str) -> bool:
        if self.left_out or not self._fits(text):
            return False
        self._add(text)
        return True

    def section(self, title: str) -> None:
        self.line("")
        self.line(f"#### {title}")
        self.line("")

    def table(
        self, headers: Sequence[str], rows: Sequence[Sequence[str]], what: str, align_first: str = "---"
    ) -> None:
        head = "| " + " | ".join(headers) + " |"
        rule = "|" + "|".join([align_first, *["---"] * (len(headers) - 1)]) + "|"
        shown = 0
        for row in rows:
            text = "| " + " | ".join(row) + " |"
            extra = f"{head}\n{rule}\n" if shown == 0 else ""
            if self.left_out or not self._fits(extra + text):
                break
            if shown == 0:
                self._add(head)
                self._add(rule)
            self._add(text)
            shown += 1
        if shown < len(rows):
            self.left_out[what] = self.left_out.get(what, 0) + len(rows) - shown
        self.line("")

    def finish(self, footer: str, everything: str) -> str:
        """The closing note (what did not fit, and where to see `everything`), the footer, the text."""
        if self.left_out:
            counted = ", ".join(f"{n} {what}" for what, n in self.left_out.items())
            self._add("")
            self._add(
                f"*Not shown, to stay within the {self.limit:,} bytes GitHub takes: {counted}. {everything}*"
            )
        if self.size + len(footer.encode("utf-8")) + 1 <= self.limit:
            self._add(footer)
        out = re.sub(r"\n{3,}", "\n\n", "\n".join(self.parts))  # one blank line between blocks
        data = out.encode("utf-8")
        if len(data) > self.limit:  # cannot happen by construction; never let GitHub refuse it
            out = data[: self.limit - 3].decode("utf-8", "ignore") + "…"
        return out
