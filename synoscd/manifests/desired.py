"""The pure entry point: files in, the desired set out (valid, rendered resources plus every error).

Reads as the story of one load: read each YAML file, check each document's header, flag duplicate
names, validate projects, then validate and render every App and Job with its project's defaults and
policy. No step stops the others: every file and document is looked at, and `complete` is False as
soon as anything was wrong, which the engine uses to block pruning.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .errors import ManifestError, Path, show, type_name
from .locate import Locator, Origin
from .model_errors import Issue, issues_from
from .policy import Guardrails, check_guardrails, check_policy
from .render import merge_defaults, render
from .schema import API_VERSION, KINDS, MODELS, App, Composition, Job, Project, Synthesizer, Target
from .syncspec import HOOK, check_annotations, sync_spec
from .validate import check_app, check_job, check_project
from .yaml_loader import DEFAULT_MAX_FILE_BYTES, LoadedDocument, load_documents

MANIFEST_SUFFIXES = (".yaml", ".yml")
NAME_PATH: Path = ("metadata", "name")
MAX_ERRORS_PER_FILE = 100  # a hostile file of 30,000 tiny documents must not flood the output
SYNTH_KINDS = ("Synthesizer", "Composition")
_KIND_LIST = ", ".join(KINDS[:-1]) + " or " + KINDS[-1]


@dataclass(frozen=True, slots=True)
class Resource:
    """A validated manifest and where it was defined."""

    kind: str
    name: str
    file: str
    line: int  # line of the document's root node
    manifest: App | Job | Project | Synthesizer | Composition | Target
    project: str | None = None  # the project whose defaults and policy were applied (Apps only)
    # Where each field came from (project defaults included), for checks made after loading.
    locator: Locator | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class DesiredSet:
    resources: list[Resource]  # valid, rendered Apps and Jobs
    projects: list[Resource]  # valid Projects
    errors: list[ManifestError]
    synth: list[Resource] = field(default_factory=list)  # valid Synthesizers and Compositions
    targets: list[Resource] = field(default_factory=list)  # valid Targets (synoscd/fleet/)

    @property
    def complete(self) -> bool:
        """False when anything could not be read or validated: never prune from an incomplete set."""
        return not self.errors

    def get(self, kind: str, name: str) -> Resource | None:
        every = [*self.resources, *self.projects, *self.synth, *self.targets]
        return next((r for r in every if r.kind == kind and r.name == name), None)


@dataclass(slots=True)
class _Entry:
    doc: LoadedDocument
    data: Any = None
    kind: str | None = None
    name: str | None = None  # metadata.name when it is a string, even if the rest is invalid
    errors: list[ManifestError] = field(default_factory=list)
    model: App | Job | Project | Synthesizer | Composition | Target | None = None
    project: str | None = None
    locator: Locator | None = None

    @property
    def ok(self) -> bool:
        return self.model is not None and not self.errors and self.doc.clean

    @property
    def where(self) -> str:
        return f"{self.doc.file}:{self.doc.line_of(NAME_PATH)}"


def load_desired(files: Mapping[str, bytes], *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> DesiredSet:
    """Parse, validate and render every `.yaml`/`.yml` file of `files` (path -> content).

    Other files are ignored. Never raises on file content: every problem becomes an error value.
    """
    errors: list[ManifestError] = []
    entries: list[_Entry] = []
    for file in sorted(files):
        if not file.lower().endswith(MANIFEST_SUFFIXES):
            continue
        try:
            documents, file_errors = _load_cached(file, files[file], max_file_bytes)
        except Exception as exc:  # a bug must not hide other files' errors
            documents, file_errors = [], [_internal(file, 1, exc)]
        errors.extend(file_errors)
        for doc in documents:
            entry = _Entry(doc)
            _guarded(entry, _header)
            entries.append(entry)

    _flag_duplicates(entries)
    projects = [entry for entry in entries if entry.kind == "Project"]
    for entry in projects:
        _guarded(entry, _validate_project)
    membership = _membership(projects)
    for entry in entries:
        if entry.kind in ("App", "Job"):
            _guarded(entry, lambda e: _validate_workload_cached(e, membership.get(e.name or "")))
    synthesizers = {e.name for e in entries if e.kind == "Synthesizer" and e.name}
    for entry in entries:
        if entry.kind in SYNTH_KINDS:
            _guarded(entry, lambda e: _validate_synth(e, synthesizers))
    targets = [entry for entry in entries if entry.kind == "Target"]
    for entry in targets:
        _guarded(entry, _validate_target)
    _flag_shared_places(targets)

    for entry in entries:
        errors.extend(entry.errors)
    return DesiredSet(
        resources=[_resource(e) for e in entries if e.ok and e.kind in ("App", "Job")],
        projects=[_resource(e) for e in projects if e.ok],
        errors=_sorted(errors),
        synth=[_resource(e) for e in entries if e.ok and e.kind in SYNTH_KINDS],
        targets=[_resource(e) for e in targets if e.ok],
    )


_PARSED: OrderedDict[tuple[str, str, int], tuple[list[LoadedDocument], list[ManifestError]]] = OrderedDict()
_PARSED_MAX = 8192
_PARSED_LOCK = threading.Lock()


def _load_cached(
    file: str, content: bytes, max_file_bytes: int
) -> tuple[list[LoadedDocument], list[ManifestError]]:
    """YAML parsing is most of the cost, and a commit changes few files: parse each (path, content) once.
    Results are immutable (frozen documents whose data is only ever read), so sharing them is safe."""
    key = (file, hashlib.sha256(content).hexdigest(), max_file_bytes)
    with _PARSED_LOCK:
        hit = _PARSED.get(key)
        if hit is not None:
            _PARSED.move_to_end(key)
            return list(hit[0]), list(hit[1])
    parsed = load_documents(file, content, max_file_bytes=max_file_bytes)
    with _PARSED_LOCK:
        _PARSED[key] = parsed
        while len(_PARSED) > _PARSED_MAX:
            _PARSED.popitem(last=False)
    return list(parsed[0]), list(parsed[1])


def apply_guardrails(desired: DesiredSet, guardrails: Guardrails) -> DesiredSet:
    """The desired set under the operator guardrails (runtime settings, so checked on every pass, not
    cached with the parse): a violating App or Job leaves the set and becomes an error at its
    file:line:field, which also makes the set incomplete (no prune this pass)."""
    if guardrails.empty:
        return desired
    kept: list[Resource] = []
    errors: list[ManifestError] = []
    for resource in desired.resources:
        assert isinstance(resource.manifest, App | Job)
        locator = resource.locator or Locator(_EmptyDoc(resource.file, resource.line))
        found = locator.errors(check_guardrails(resource.manifest, guardrails))
        errors.extend(found)
        if not found:
            kept.append(resource)
    if not errors:
        return desired
    return DesiredSet(kept, desired.projects, _sorted([*desired.errors, *errors]), desired.synth)


def fit_target(desired: DesiredSet, target: str, targets_path: str) -> DesiredSet:
    """The set as one target of a fleet applies it: Target manifests belong in the targets path (one
    found elsewhere is an error: it declares nothing there); a target other than the default one adds
    the synoscd-target tag, so a resource already at the tag limit leaves the set with an error."""
    from .syntax import DEFAULT_TARGET, MAX_TAGS, OWNERSHIP_TAGS

    errors: list[ManifestError] = []
    folder = targets_path.strip().strip("/")
    for res in desired.targets:
        if not folder or not (res.file == folder or res.file.startswith(folder + "/")):
            errors.append(
                ManifestError(
                    res.file,
                    res.line,
                    "kind",
                    f"Target '{res.name}' is outside the targets path ({folder or 'none set'}): it declares "
                    "nothing here; move it to SYNOSCD_TARGETS_PATH",
                )
            )
    kept = list(desired.resources)
    if target != DEFAULT_TARGET:
        room = MAX_TAGS - len(OWNERSHIP_TAGS) - 1
        kept = []
        for res in desired.resources:
            count = len(res.manifest.spec.tags)  # type: ignore[union-attr]
            if count > room:
                locator = res.locator or Locator(_EmptyDoc(res.file, res.line))
                errors.extend(
                    locator.errors(
                        [
                            (
                                ("spec", "tags"),
                                f"{count} tags is too many in target {target}; use at most {room} (Azure "
                                "allows 50 and SynosCD adds its ownership tags and synoscd-target)",
                            )
                        ]
                    )
                )
            else:
                kept.append(res)
    if not errors:
        return desired
    return DesiredSet(kept, desired.projects, _sorted([*desired.errors, *errors]), desired.synth)


def with_errors(desired: DesiredSet, errors: list[ManifestError]) -> DesiredSet:
    """The set with errors found outside the manifests (files the source could not read)."""
    if not errors:
        return desired
    return DesiredSet(desired.resources, desired.projects, _sorted([*desired.errors, *errors]), desired.synth)


def _sorted(errors: list[ManifestError]) -> list[ManifestError]:
    return _capped(sorted(dict.fromkeys(errors), key=lambda e: (e.file, e.line, e.field, e.message)))


class _EmptyDoc:
    """Stands in for a document when a Resource was built without its locator (tests, old callers)."""

    def __init__(self, file: str, line: int) -> None:
        self.file, self.line, self.unreadable = file, line, ()

    def line_of(self, _path: Path) -> int:
        return self.line


def clear_parse_cache() -> None:
    """Forget parsed files and validated documents (benchmarks measure a cold parse with it)."""
    with _PARSED_LOCK:
        _PARSED.clear()
    with _VALIDATED_LOCK:
        _VALIDATED.clear()


def validation_report(desired: DesiredSet) -> dict[str, Any]:
    """The `synos validate -o json` payload."""
    resources = sorted([*desired.projects, *desired.resources], key=lambda r: (r.file, r.line))
    return {
        "valid": desired.complete,
        "resources": [{"kind": r.kind, "name": r.name, "file": r.file} for r in resources],
        "errors": [error.to_dict() for error in desired.errors],
    }


# --- steps -------------------------------------------------------------------------------------


def _header(entry: _Entry) -> None:
    doc = entry.doc
    data = doc.data
    if not isinstance(data, dict):
        entry.errors.append(
            Locator(doc).error(
                (),
                f"document must be a mapping with apiVersion, kind, metadata and spec, got {type_name(data)}",
            )
        )
        return
    issues: list[Issue] = []
    if "kind" not in data:
        issues.append((("kind",), f"missing required field 'kind'; set it to {_KIND_LIST}"))
    elif data["kind"] not in KINDS:
        issues.append((("kind",), f"kind {show(data['kind'])} is not supported; use {_KIND_LIST}"))
    if "apiVersion" not in data:
        issues.append((("apiVersion",), f"missing required field 'apiVersion'; set it to {API_VERSION}"))
    elif data["apiVersion"] != API_VERSION:
        issues.append(
            (("apiVersion",), f"apiVersion {show(data['apiVersion'])} is not supported; use {API_VERSION}")
        )
    entry.errors.extend(Locator(doc).error(path, message) for path, message in issues)
    if data.get("kind") in KINDS:
        entry.kind = data["kind"]
        # Reported once above; validate the rest as if it were right so no other error hides behind it.
        entry.data = {**data, "apiVersion": API_VERSION}
        metadata = data.get("metadata")
        name = metadata.get("name") if isinstance(metadata, dict) else None
        entry.name = name if isinstance(name, str) else None


def _flag_duplicates(entries: list[_Entry]) -> None:
    """The same kind and name in two places is an error at both places."""
    groups: dict[tuple[str, str], list[_Entry]] = defaultdict(list)
    for entry in entries:
        if entry.kind is not None and entry.name is not None:
            groups[(entry.kind, entry.name)].append(entry)
    for (kind, name), group in groups.items():
        if len(group) < 2:
            continue
        for entry in group:
            others = ", ".join(other.where for other in group if other is not entry)
            entry.errors.append(
                Locator(entry.doc).error(
                    NAME_PATH,
                    f"{kind} '{name}' is also defined at {others}; "
                    f"each {kind} name must be unique, rename or remove one",
                )
            )


def _validate_project(entry: _Entry) -> None:
    model = _validated(entry, Locator(entry.doc))
    if isinstance(model, Project):
        locator = Locator(entry.doc)
        entry.errors.extend(locator.errors(check_project(model)))
        entry.model = model


def _membership(projects: list[_Entry]) -> dict[str, _Entry]:
    """App name -> the project listing it. An app listed by two projects is an error at both listings."""
    listed: dict[str, list[tuple[_Entry, int]]] = defaultdict(list)
    for entry in projects:
        spec = entry.data.get("spec") if entry.name is not None else None
        apps = spec.get("apps") if isinstance(spec, dict) else None
        for index, app in enumerate(apps if isinstance(apps, list) else []):
            if isinstance(app, str) and all(other is not entry for other, _ in listed[app]):
                listed[app].append((entry, index))
    membership: dict[str, _Entry] = {}
    for app, listings in listed.items():
        membership[app] = listings[0][0]
        if len(listings) < 2:
            continue
        for entry, index in listings:
            others = ", ".join(f"'{o.name}' ({o.where})" for o, _ in listings if o is not entry)
            entry.errors.append(
                Locator(entry.doc).error(
                    ("spec", "apps", index),
                    f"app '{app}' is also listed in project {others}; list each app in one project only",
                )
            )
    return membership


# Validated Apps and Jobs by document: a commit changes few documents, and validating every App and Job
# again is most of what loading a parsed set costs. The parse cache hands out the same
# LoadedDocument for the same file content, so a document (and its project's, with that project's
# standing) identifies a validation; the entries are kept (pinned) with their result so ids stay unique.
_VALIDATED: OrderedDict[tuple[int, int, bool], tuple[Any, ...]] = OrderedDict()
_VALIDATED_LOCK = threading.Lock()


def _validate_workload_cached(entry: _Entry, project: _Entry | None) -> None:
    """`_validate_workload`, done once per (document, project document, project valid)."""
    project_doc = project.doc if project is not None and entry.kind == "App" else None
    key = (id(entry.doc), id(project_doc), bool(project is not None and project.ok))
    with _VALIDATED_LOCK:
        hit = _VALIDATED.get(key)
        if hit is not None and hit[0] is entry.doc and hit[1] is project_doc:
            _VALIDATED.move_to_end(key)
    if hit is not None and hit[0] is entry.doc and hit[1] is project_doc:
        _doc, _project_doc, added, model, locator, project_name = hit
        entry.errors.extend(added)
        entry.model, entry.locator, entry.project = model, locator, project_name
        return
    before = len(entry.errors)
    _validate_workload(entry, project)
    result = (entry.doc, project_doc, tuple(entry.errors[before:]), entry.model, entry.locator, entry.project)
    with _VALIDATED_LOCK:
        _VALIDATED[key] = result
        while len(_VALIDATED) > _PARSED_MAX:
            _VALIDATED.popitem(last=False)


def _validate_workload(entry: _Entry, project: _Entry | None) -> None:
    data, subject = entry.data, f"{entry.kind} '{entry.name}'"
    origins: dict[Path, Origin] = {}
    if entry.kind != "App":
        project = None  # projects govern Apps only
    if project is not None and project.name is not None:
        entry.project = project.name
        data, origins = merge_defaults(data, project.doc, project.name)
        if not project.ok:
            entry.errors.append(
                Locator(entry.doc).error(
                    NAME_PATH,
                    f"project '{project.name}' ({project.where}) lists this app but has errors; "
                    "fix them first",
                )
            )
    locator = Locator(entry.doc, origins, subject)
    model = _validated(entry, locator, data)
    if not isinstance(model, App | Job):
        return
    spec = sync_spec(model.metadata.annotations)
    # A typo in a sync annotation is an error whatever the sync options say: it would change the
    # phase or wave the resource is applied in.
    issues: list[Issue] = list(check_annotations(model.metadata.annotations))
    if isinstance(model, App) and spec.hooks:
        issues.append(
            (
                ("metadata", "annotations", HOOK),
                "only Jobs can be hooks; remove synoscd.io/hook or make this a Job",
            )
        )
    if spec.validate:  # sync option Validate=false skips SynosCD's advisory checks (ARM still validates)
        issues += check_app(model) if isinstance(model, App) else check_job(model)
    # Policy is never advisory: Validate=false does not switch it off.
    if isinstance(model, App) and project is not None and isinstance(project.model, Project) and project.ok:
        issues += check_policy(model, project.model.spec.policy, f"project '{project.model.metadata.name}'")
    entry.errors.extend(locator.errors(issues))
    entry.model = render(model)
    entry.locator = locator


def _validate_synth(entry: _Entry, synthesizers: set[str]) -> None:
    """Synthesizers and Compositions: the schema, then the rules of synth/validate.py."""
    from synoscd.synth.validate import check_composition, check_synthesizer

    locator = Locator(entry.doc)
    model = _validated(entry, locator)
    if isinstance(model, Synthesizer):
        entry.errors.extend(locator.errors(check_synthesizer(model)))
    elif isinstance(model, Composition):
        entry.errors.extend(locator.errors(check_composition(model, synthesizers)))
    else:
        return
    entry.model = model
    entry.locator = locator


def _validate_target(entry: _Entry) -> None:
    locator = Locator(entry.doc)
    model = _validated(entry, locator)
    if isinstance(model, Target):
        entry.model = model
        entry.locator = locator


def _flag_shared_places(targets: list[_Entry]) -> None:
    """Two targets reconciling one environment from one folder would undo each other's writes."""
    groups: dict[tuple[str, ...], list[_Entry]] = defaultdict(list)
    for entry in targets:
        if isinstance(entry.model, Target):
            spec = entry.model.spec
            place = (spec.subscription_id.lower(), spec.resource_group.lower(), spec.environment, spec.path)
            groups[place].append(entry)
    for group in groups.values():
        for entry in group if len(group) > 1 else ():
            others = ", ".join(f"'{o.name}' ({o.where})" for o in group if o is not entry)
            entry.errors.append(
                Locator(entry.doc).error(
                    ("spec", "environment"),
                    f"target {others} reconciles the same environment from the same path; give each "
                    "target its own environment or path",
                )
            )


def _validated(entry: _Entry, locator: Locator, data: Any = None) -> Any:
    model_class = MODELS[entry.kind or ""]
    try:
        return model_class.model_validate(entry.data if data is None else data)
    except ValidationError as exc:
        entry.errors.extend(locator.errors(issues_from(exc, model_class)))
        return None


def _capped(errors: list[ManifestError]) -> list[ManifestError]:
    """At most MAX_ERRORS_PER_FILE errors per file, then one that says how many more there are."""
    per_file: dict[str, int] = defaultdict(int)
    for error in errors:
        per_file[error.file] += 1
    if all(count <= MAX_ERRORS_PER_FILE for count in per_file.values()):
        return errors
    out: list[ManifestError] = []
    shown: dict[str, int] = defaultdict(int)
    for error in errors:
        shown[error.file] += 1
        if shown[error.file] <= MAX_ERRORS_PER_FILE:
            out.append(error)
        elif shown[error.file] == MAX_ERRORS_PER_FILE + 1:
            more = per_file[error.file] - MAX_ERRORS_PER_FILE
            out.append(
                ManifestError(
                    error.file, error.line, "", f"{more} more errors in this file; fix the ones above first"
                )
            )
    return out


def _guarded(entry: _Entry, step: Any) -> None:
    try:
        step(entry)
    except Exception as exc:  # one document's surprise must not hide the others' errors
        entry.errors.append(_internal(entry.doc.file, entry.doc.line, exc))
        entry.model = None


def _internal(file: str, line: int, exc: Exception) -> ManifestError:
    return ManifestError(
        file, line, "", f"internal error while validating ({type(exc).__name__}); please report it"
    )


def _resource(entry: _Entry) -> Resource:
    assert entry.model is not None and entry.kind is not None
    return Resource(
        entry.kind,
        entry.model.metadata.name,
        entry.doc.file,
        entry.doc.line,
        entry.model,
        entry.project,
        entry.locator,
    )
