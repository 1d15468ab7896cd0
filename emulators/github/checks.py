"""The Checks API: check runs (create, update, get, list for a ref or a suite, annotations, rerequest)
and check suites (created with a commit's first check run or explicitly, get, list for a ref,
rerequest, repository preferences), with GitHub's documented limits and its answers to breaking them:

- `output.summary` and `output.text`: at most 65,535 characters ("Invalid request. Only 65535
  characters are allowed; N were supplied.") and 65,535 bytes ("summary exceeds a maximum bytesize
  of 65535", a Validation Failed);
- `output.annotations`: at most 50 per request ("No more than 50 items are allowed; N were
  supplied."); each update appends its annotations to the run's;
- `actions`: at most 3, label and identifier 20 characters, description 40;
- conclusion `stale` is GitHub's alone; a conclusion completes the run;
- 1,000 check runs of one name per suite (older ones are dropped);
- writes need the installation's `checks: write` ("Resource not accessible by integration").

Also the `check_run` and `check_suite` webhook payloads (rerequested and the rest)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from emulators.github.common import (
    REPO,
    SHA_RE,
    ZERO_SHA,
    Route,
    Urls,
    gh_error,
    iso_utc,
    json_body,
    node_id,
    not_found,
    paginate,
)
from emulators.github.gitrepo import GitRepo
from emulators.httpbase import HttpError, Request, Response

STATUSES = ("queued", "in_progress", "completed")
CONCLUSIONS = ("action_required", "cancelled", "failure", "neutral", "success", "skipped", "timed_out")
# A suite reports its runs' highest-priority conclusion (GitHub's docs: timed_out over success and
# neutral); the order here is GitHub's as documented for the checks UI.
CONCLUSION_PRIORITY = (
    "action_required",
    "cancelled",
    "timed_out",
    "failure",
    "startup_failure",
    "stale",
    "neutral",
    "success",
    "skipped",
)
LEVELS = ("notice", "warning", "failure")
MAX_OUTPUT_CHARS = 65535
MAX_ANNOTATIONS_PER_REQUEST = 50
MAX_ACTIONS = 3
MAX_RUNS_PER_NAME = 1000  # per check suite (GitHub changelog 2020-09-14)
MAX_ANNOTATION_BYTES = 64 * 1024
FIRST_ID = 5_000_000_000  # GitHub's check run and suite ids are above 2^32 nowadays


def invalid(problem: str) -> HttpError:
    """GitHub's answer to a request its schema refuses."""
    return HttpError(gh_error(422, f"Invalid request.\n\n{problem}"))


def validation_failed(field_name: str, message: str) -> HttpError:
    error = {"resource": "CheckRun", "code": "custom", "field": field_name, "message": message}
    return HttpError(gh_error(422, "Validation Failed", errors=[error]))


@dataclass
class CheckSuite:
    id: int
    repo: str  # owner/name, lower case
    head_sha: str
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    rerequested_at: float | None = None  # a rerequest resets status and conclusion


@dataclass
class CheckRun:
    id: int
    suite: int
    repo: str
    name: str
    head_sha: str
    status: str = "queued"
    conclusion: str | None = None
    external_id: str = ""
    details_url: str | None = None
    started_at: float = field(default_factory=time.time)
    completed_at: float | None = None
    output: dict[str, Any] = field(default_factory=lambda: {"title": None, "summary": None, "text": None})
    annotations: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    created: float = field(default_factory=time.time)


class Checks:
    """Mixin: check runs and check suites."""

    def _init_state(self) -> None:
        super()._init_state()  # type: ignore[misc]
        self._runs: dict[int, CheckRun] = {}
        self._suites: dict[int, CheckSuite] = {}
        self._check_ids = FIRST_ID
        self._suite_preferences: dict[str, list[dict[str, Any]]] = {}

    def check_routes(self) -> list[Route]:
        # Before the commits family: /commits/{ref} would otherwise swallow /commits/{ref}/check-runs.
        return [
            ("POST", REPO + r"/check-runs", self._create_run, "token", True),
            ("GET", REPO + r"/check-runs/(?P<run_id>\d+)", self._get_run, "token", True),
            ("PATCH", REPO + r"/check-runs/(?P<run_id>\d+)", self._update_run, "token", True),
            ("GET", REPO + r"/check-runs/(?P<run_id>\d+)/annotations", self._annotations, "token", True),
            ("POST", REPO + r"/check-runs/(?P<run_id>\d+)/rerequest", self._rerequest_run, "token", True),
            ("GET", REPO + r"/commits/(?P<ref>.+)/check-runs", self._runs_for_ref, "token", True),
            ("GET", REPO + r"/commits/(?P<ref>.+)/check-suites", self._suites_for_ref, "token", True),
            ("POST", REPO + r"/check-suites", self._create_suite, "token", True),
            ("PATCH", REPO + r"/check-suites/preferences", self._suite_prefs, "token", True),
            ("GET", REPO + r"/check-suites/(?P<suite_id>\d+)", self._get_suite, "token", True),
            (
                "GET",
                REPO + r"/check-suites/(?P<suite_id>\d+)/check-runs",
                self._runs_for_suite,
                "token",
                True,
            ),
            (
                "POST",
                REPO + r"/check-suites/(?P<suite_id>\d+)/rerequest",
                self._rerequest_suite,
                "token",
                True,
            ),
        ]

    def check_admin_routes(self) -> list[tuple[str, str, Any]]:
        return [("GET", r"/_admin/checks", self._admin_checks)]

    # -- state -----------------------------------------------------------------------------------
    def _new_id(self) -> int:
        self._check_ids += 1
        return self._check_ids

    def _suite_for(self, repo: GitRepo, sha: str) -> CheckSuite:
        key = repo.full_name.lower()
        for suite in self._suites.values():
            if suite.repo == key and suite.head_sha == sha:
                return suite
        suite = CheckSuite(self._new_id(), key, sha)
        self._suites[suite.id] = suite
        return suite

    def _run_of(self, repo: GitRepo, run_id: str | int) -> CheckRun:
        run = self._runs.get(int(run_id))
        if run is None or run.repo != repo.full_name.lower():
            raise not_found()
        return run

    def _suite(self, repo: GitRepo, suite_id: str | int) -> CheckSuite:
        suite = self._suites.get(int(suite_id))
        if suite is None or suite.repo != repo.full_name.lower():
            raise not_found()
        return suite

    def _suite_runs(self, suite: CheckSuite) -> list[CheckRun]:
        return [r for r in self._runs.values() if r.suite == suite.id]

    # -- JSON shapes -----------------------------------------------------------------------------
    def _run_json(self, base: str, repo: GitRepo, run: CheckRun, full_suite: bool = False) -> dict[str, Any]:
        u = Urls(base, repo.owner, repo.name)
        api = f"{u.api}/check-runs/{run.id}"
        suite = self._suites[run.suite]
        return {
            "id": run.id,
            "name": run.name,
            "node_id": node_id("CR", str(run.id)),
            "head_sha": run.head_sha,
            "external_id": run.external_id,
            "url": api,
            "html_url": f"{u.html}/runs/{run.id}",
            "details_url": run.details_url or u.html,
            "status": run.status,
            "conclusion": run.conclusion,
            "started_at": iso_utc(run.started_at),
            "completed_at": iso_utc(run.completed_at) if run.completed_at else None,
            "output": {
                "title": run.output.get("title"),
                "summary": run.output.get("summary"),
                "text": run.output.get("text"),
                "annotations_count": len(run.annotations),
                "annotations_url": f"{api}/annotations",
            },
            "check_suite": self._suite_json(base, repo, suite, embedded=True)
            if full_suite
            else {"id": suite.id},
            "app": self._app_json(base),
            "pull_requests": [
                self._pull_ref_json(base, repo, p) for p in self._open_pulls_at(repo, run.head_sha)
            ],
        }

    def _suite_json(
        self, base: str, repo: GitRepo, suite: CheckSuite, embedded: bool = False
    ) -> dict[str, Any]:
        u = Urls(base, repo.owner, repo.name)
        runs = self._suite_runs(suite)
        if suite.rerequested_at is not None:  # reset by a rerequest: only runs made since count
            runs = [r for r in runs if r.created >= suite.rerequested_at]
        commit = repo.commit(suite.head_sha)
        branches = [
            name.removeprefix("refs/heads/")
            for name, sha, _ in repo.refs("refs/heads/")
            if sha == suite.head_sha
        ]
        out = {
            "id": suite.id,
            "node_id": node_id("CS", str(suite.id)),
            "head_branch": branches[0] if branches else None,
            "head_sha": suite.head_sha,
            "status": _suite_status(runs),
            "conclusion": _suite_conclusion(runs),
            "url": f"{u.api}/check-suites/{suite.id}",
            "before": commit.parents[0] if commit.parents else ZERO_SHA,
            "after": suite.head_sha,
            "pull_requests": [
                self._pull_ref_json(base, repo, p) for p in self._open_pulls_at(repo, suite.head_sha)
            ],
            "app": self._app_json(base),
            "created_at": iso_utc(suite.created_at),
            "updated_at": iso_utc(suite.updated_at),
            "rerequestable": True,
            "runs_rerequestable": True,
            "latest_check_runs_count": len(_latest(runs)),
            "check_runs_url": f"{u.api}/check-suites/{suite.id}/check-runs",
            "head_commit": {
                "id": commit.sha,
                "tree_id": commit.tree,
                "message": commit.message,
                "timestamp": iso_utc(commit.committer.epoch),
                "author": {"name": commit.author.name, "email": commit.author.email},
                "committer": {"name": commit.committer.name, "email": commit.committer.email},
            },
        }
        if not embedded:
            out["repository"] = self._repo_json(base, repo)
        return out

    def _annotation_json(self, u: Urls, run: CheckRun, a: dict[str, Any]) -> dict[str, Any]:
        return {
            "path": a["path"],
            "blob_href": f"{u.html}/blob/{run.head_sha}/{quote(a['path'])}",
            "start_line": a["start_line"],
            "start_column": a.get("start_column"),
            "end_line": a["end_line"],
            "end_column": a.get("end_column"),
            "annotation_level": a["annotation_level"],
            "title": a.get("title"),
            "message": a["message"],
            "raw_details": a.get("raw_details"),
        }

    # -- validation, as GitHub answers ------------------------------------------------------------
    def _checked(self, body: dict[str, Any], creating: bool) -> dict[str, Any]:
        for key in ("name", "head_sha") if creating else ():
            if not isinstance(body.get(key), str) or not body.get(key):
                raise invalid(f'"{key}" wasn\'t supplied.')
        status, conclusion = body.get("status"), body.get("conclusion")
        if status is not None and status not in STATUSES:
            raise invalid(f"For 'properties/status', {_show(status)} is not one of {_list(STATUSES)}.")
        if conclusion == "stale":
            raise invalid("Only GitHub can set a check run's conclusion to stale.")
        if conclusion is not None and conclusion not in CONCLUSIONS:
            raise invalid(
                f"For 'properties/conclusion', {_show(conclusion)} is not one of {_list(CONCLUSIONS)}."
            )
        if conclusion is None and (status == "completed" or body.get("completed_at")) and creating:
            raise invalid('"conclusion" wasn\'t supplied.')
        for key in ("started_at", "completed_at"):
            if body.get(key) is not None and _timestamp(body[key]) is None:
                raise invalid(f"For 'properties/{key}', {_show(body[key])} is not a timestamp.")
        output = body.get("output")
        if output is not None:
            self._check_output(output)
        actions = body.get("actions")
        if actions is not None:
            _check_actions(actions)
        return body

    def _check_output(self, output: Any) -> None:
        if not isinstance(output, dict):
            raise invalid(f"For 'properties/output', {_show(output)} is not an object.")
        for key in ("title", "summary"):
            if not isinstance(output.get(key), str):
                raise invalid(f'"{key}" wasn\'t supplied.')
        for key in ("summary", "text"):
            value = output.get(key)
            if value is None:
                continue
            if len(value) > MAX_OUTPUT_CHARS:
                raise invalid(f"Only {MAX_OUTPUT_CHARS} characters are allowed; {len(value)} were supplied.")
            if len(value.encode("utf-8")) > MAX_OUTPUT_CHARS:
                raise validation_failed(key, f"{key} exceeds a maximum bytesize of {MAX_OUTPUT_CHARS}")
        annotations = output.get("annotations") or []
        if not isinstance(annotations, list):
            raise invalid(f"For 'properties/annotations', {_show(annotations)} is not an array.")
        if len(annotations) > MAX_ANNOTATIONS_PER_REQUEST:
            raise invalid(
                f"No more than {MAX_ANNOTATIONS_PER_REQUEST} items are allowed; "
                f"{len(annotations)} were supplied."
            )
        for a in annotations:
            _check_annotation(a)

    # -- check runs --------------------------------------------------------------------------------
    def _create_run(self, req: Request, owner: str, repo: str) -> Response:
        r = self._repo(owner, repo)
        self._require(req, "checks", "write")
        body = self._checked(json_body(req), creating=True)
        sha = str(body["head_sha"]).lower()
        if not SHA_RE.match(sha) or r.resolve(sha) is None:
            return gh_error(422, f"No commit found for SHA: {body['head_sha']}")
        suite = self._suite_for(r, sha)
        run = CheckRun(self._new_id(), suite.id, r.full_name.lower(), str(body["name"]), sha)
        self._apply(run, body, creating=True)
        self._runs[run.id] = run
        self._drop_beyond_limit(suite, run.name)
        suite.updated_at = time.time()
        u = Urls(req.base_url, r.owner, r.name)
        return Response.json(
            201, self._run_json(req.base_url, r, run), {"Location": f"{u.api}/check-runs/{run.id}"}
        )

    def _apply(self, run: CheckRun, body: dict[str, Any], creating: bool) -> None:
        now = time.time()
        completing = body.get("status") == "completed" or body.get("completed_at")
        if completing and not body.get("conclusion") and run.conclusion is None:
            raise invalid('"conclusion" wasn\'t supplied.')
        if "name" in body and not creating:
            run.name = str(body["name"])
        for key in ("external_id", "details_url"):
            if body.get(key) is not None:
                setattr(run, key, str(body[key]))
        if body.get("started_at"):
            run.started_at = _timestamp(body["started_at"]) or now
        if body.get("status"):
            run.status = str(body["status"])
        if body.get("conclusion"):
            run.conclusion, run.status = str(body["conclusion"]), "completed"
        if run.status == "completed":
            run.completed_at = _timestamp(body.get("completed_at")) or run.completed_at or now
        elif body.get("status") in ("queued", "in_progress"):
            run.conclusion, run.completed_at = None, None
        output = body.get("output")
        if output is not None:
            run.output = {"title": output["title"], "summary": output["summary"], "text": output.get("text")}
            run.annotations.extend(
                dict(a) for a in output.get("annotations") or []
            )  # appended, as GitHub does
        if body.get("actions") is not None:
            run.actions = list(body["actions"])

    def _drop_beyond_limit(self, suite: CheckSuite, name: str) -> None:
        same = sorted((r for r in self._suite_runs(suite) if r.name == name), key=lambda r: r.id)
        for old in same[:-MAX_RUNS_PER_NAME]:
            del self._runs[old.id]

    def _update_run(self, req: Request, owner: str, repo: str, run_id: str) -> Response:
        r = self._repo(owner, repo)
        self._require(req, "checks", "write")
        run = self._run_of(r, run_id)
        body = self._checked(json_body(req), creating=False)
        self._apply(run, body, creating=False)
        self._suites[run.suite].updated_at = time.time()
        return Response.json(200, self._run_json(req.base_url, r, run))

    def _get_run(self, req: Request, owner: str, repo: str, run_id: str) -> Response:
        r = self._repo(owner, repo)
        return Response.json(200, self._run_json(req.base_url, r, self._run_of(r, run_id)))

    def _annotations(self, req: Request, owner: str, repo: str, run_id: str) -> Response:
        r = self._repo(owner, repo)
        run = self._run_of(r, run_id)
        u = Urls(req.base_url, r.owner, r.name)
        page, headers = paginate(req, run.annotations, default=30, maximum=100)
        return Response.json(200, [self._annotation_json(u, run, a) for a in page], headers)

    def _rerequest_run(self, req: Request, owner: str, repo: str, run_id: str) -> Response:
        """GitHub then sends the App a check_run `rerequested` event (here: the admin delivery)."""
        r = self._repo(owner, repo)
        self._run_of(r, run_id)
        return Response.json(201, {})

    def _filtered(self, req: Request, runs: list[CheckRun]) -> list[CheckRun]:
        name, status = req.query.get("check_name"), req.query.get("status")
        app_id = req.query.get("app_id")
        if name:
            runs = [r for r in runs if r.name == name]
        if status:
            runs = [r for r in runs if r.status == status]
        if app_id and str(app_id) != str(self.app_id):
            runs = []
        if req.query.get("filter", "latest") == "latest":
            runs = _latest(runs)
        return sorted(runs, key=lambda r: r.id, reverse=True)

    def _runs_json(self, req: Request, r: GitRepo, runs: list[CheckRun]) -> Response:
        page, headers = paginate(req, runs, default=30, maximum=100)
        body = {"total_count": len(runs), "check_runs": [self._run_json(req.base_url, r, x) for x in page]}
        return Response.json(200, body, headers)

    def _runs_for_ref(self, req: Request, owner: str, repo: str, ref: str) -> Response:
        r = self._repo(owner, repo)
        sha = self._resolve(r, ref)
        runs = [x for x in self._runs.values() if x.repo == r.full_name.lower() and x.head_sha == sha]
        return self._runs_json(req, r, self._filtered(req, runs))

    def _runs_for_suite(self, req: Request, owner: str, repo: str, suite_id: str) -> Response:
        r = self._repo(owner, repo)
        suite = self._suite(r, suite_id)
        return self._runs_json(req, r, self._filtered(req, self._suite_runs(suite)))

    # -- check suites --------------------------------------------------------------------------------
    def _get_suite(self, req: Request, owner: str, repo: str, suite_id: str) -> Response:
        r = self._repo(owner, repo)
        return Response.json(200, self._suite_json(req.base_url, r, self._suite(r, suite_id)))

    def _suites_for_ref(self, req: Request, owner: str, repo: str, ref: str) -> Response:
        r = self._repo(owner, repo)
        sha = self._resolve(r, ref)
        suites = [s for s in self._suites.values() if s.repo == r.full_name.lower() and s.head_sha == sha]
        app_id, name = req.query.get("app_id"), req.query.get("check_name")
        if app_id and str(app_id) != str(self.app_id):
            suites = []
        if name:
            suites = [s for s in suites if any(x.name == name for x in self._suite_runs(s))]
        page, headers = paginate(req, suites, default=30, maximum=100)
        body = {
            "total_count": len(suites),
            "check_suites": [self._suite_json(req.base_url, r, s) for s in page],
        }
        return Response.json(200, body, headers)

    def _create_suite(self, req: Request, owner: str, repo: str) -> Response:
        r = self._repo(owner, repo)
        self._require(req, "checks", "write")
        body = json_body(req)
        sha = str(body.get("head_sha") or "").lower()
        if not sha:
            raise invalid('"head_sha" wasn\'t supplied.')
        if not SHA_RE.match(sha) or r.resolve(sha) is None:
            return gh_error(422, f"No commit found for SHA: {body['head_sha']}")
        suite = self._suite_for(r, sha)
        u = Urls(req.base_url, r.owner, r.name)
        location = {"Location": f"{u.api}/check-suites/{suite.id}"}
        return Response.json(201, self._suite_json(req.base_url, r, suite), location)

    def _rerequest_suite(self, req: Request, owner: str, repo: str, suite_id: str) -> Response:
        """Resets the suite (status queued, no conclusion); GitHub then sends the App a check_suite
        `rerequested` event (here: the admin delivery)."""
        r = self._repo(owner, repo)
        suite = self._suite(r, suite_id)
        suite.rerequested_at = suite.updated_at = time.time()
        return Response.json(201, {})

    def _suite_prefs(self, req: Request, owner: str, repo: str) -> Response:
        r = self._repo(owner, repo)
        body = json_body(req)
        auto = body.get("auto_trigger_checks")
        if not isinstance(auto, list) or not all(
            isinstance(a, dict) and isinstance(a.get("app_id"), int) and isinstance(a.get("setting"), bool)
            for a in auto
        ):
            raise invalid(
                "For 'properties/auto_trigger_checks', the value is not an array of {app_id, setting}."
            )
        prefs = {a["app_id"]: a for a in self._suite_preferences.get(r.full_name.lower(), [])}
        prefs.update({a["app_id"]: {"app_id": a["app_id"], "setting": a["setting"]} for a in auto})
        self._suite_preferences[r.full_name.lower()] = list(prefs.values())
        body = {
            "preferences": {"auto_trigger_checks": list(prefs.values())},
            "repository": self._repo_json(req.base_url, r),
        }
        return Response.json(200, body)

    # -- webhook payloads ------------------------------------------------------------------------
    def _check_run_payload(self, base: str, repo: GitRepo | None, spec: dict[str, Any]) -> dict[str, Any]:
        if repo is None:
            raise HttpError(gh_error(400, "owner and name are required for a check_run delivery"))
        run = self._run_of(repo, int(spec.get("check_run_id") or 0))
        action = str(spec.get("action") or "rerequested")
        payload = {
            "action": action,
            "check_run": self._run_json(base, repo, run, full_suite=True),
            "repository": self._hook_repo_json(base, repo),
            "sender": self._user_json(base, str(spec.get("sender") or "octocat"), "User"),
            "installation": {"id": self.installation_id, "node_id": node_id("I", str(self.installation_id))},
        }
        if action == "requested_action":
            payload["requested_action"] = {"identifier": str(spec.get("identifier") or "")}
        return payload

    def _check_suite_payload(self, base: str, repo: GitRepo | None, spec: dict[str, Any]) -> dict[str, Any]:
        if repo is None:
            raise HttpError(gh_error(400, "owner and name are required for a check_suite delivery"))
        if spec.get("check_suite_id"):
            suite = self._suite(repo, int(spec["check_suite_id"]))
        else:
            sha = repo.resolve(str(spec.get("head_sha") or repo.default_branch()))
            if sha is None:
                raise HttpError(gh_error(400, "head_sha must name a commit"))
            suite = self._suite_for(repo, sha)
        return {
            "action": str(spec.get("action") or "rerequested"),
            "check_suite": self._suite_json(base, repo, suite, embedded=True),
            "repository": self._hook_repo_json(base, repo),
            "sender": self._user_json(base, str(spec.get("sender") or "octocat"), "User"),
            "installation": {"id": self.installation_id, "node_id": node_id("I", str(self.installation_id))},
        }

    # -- admin ------------------------------------------------------------------------------------
    def _admin_checks(self, req: Request) -> Response:
        """Every check run with its output and annotations (tests read what was reported)."""
        runs = []
        for run in sorted(self._runs.values(), key=lambda r: r.id):
            owner, _, name = run.repo.partition("/")
            repo = self._repo(owner, name)
            body = self._run_json(req.base_url, repo, run)
            body["annotations"] = [
                self._annotation_json(Urls(req.base_url, repo.owner, repo.name), run, a)
                for a in run.annotations
            ]
            body["actions"] = run.actions
            runs.append(body)
        return Response.json(200, {"check_runs": runs})


def _latest(runs: list[CheckRun]) -> list[CheckRun]:
    """The most recent run of each name (the `filter=latest` GitHub applies by default)."""
    newest: dict[str, CheckRun] = {}
    for run in sorted(runs, key=lambda r: r.id):
        newest[run.name] = run
    return list(newest.values())


def _suite_status(runs: list[CheckRun]) -> str:
    latest = _latest(runs)
    if not latest:
        return "queued"
    if all(r.status == "completed" for r in latest):
        return "completed"
    return "in_progress" if any(r.status == "in_progress" for r in latest) else "queued"


def _suite_conclusion(runs: list[CheckRun]) -> str | None:
    latest = _latest(runs)
    if not latest or any(r.status != "completed" for r in latest):
        return None
    found = {r.conclusion for r in latest}
    return next((c for c in CONCLUSION_PRIORITY if c in found), None)


def _check_annotation(a: Any) -> None:
    if not isinstance(a, dict):
        raise invalid(f"For 'items', {_show(a)} is not an object.")
    for key in ("path", "start_line", "end_line", "annotation_level", "message"):
        if a.get(key) is None:
            raise invalid(f'"{key}" wasn\'t supplied.')
    for key in ("start_line", "end_line"):
        if not isinstance(a[key], int) or isinstance(a[key], bool) or a[key] < 1:
            raise invalid(f"For 'properties/{key}', {_show(a[key])} is not a positive integer.")
    if a["annotation_level"] not in LEVELS:
        raise invalid(
            f"For 'properties/annotation_level', {_show(a['annotation_level'])} "
            f"is not one of {_list(LEVELS)}."
        )
    columns = a.get("start_column") is not None or a.get("end_column") is not None
    if columns and a["start_line"] != a["end_line"]:
        raise validation_failed(
            "start_column", "start_column and end_column may only be given on a single line"
        )
    for key in ("message", "raw_details"):
        if isinstance(a.get(key), str) and len(a[key].encode("utf-8")) > MAX_ANNOTATION_BYTES:
            raise validation_failed(key, f"{key} exceeds a maximum bytesize of {MAX_ANNOTATION_BYTES}")
    if isinstance(a.get("title"), str) and len(a["title"]) > 255:
        raise invalid(f"Only 255 characters are allowed; {len(a['title'])} were supplied.")


def _check_actions(actions: Any) -> None:
    if not isinstance(actions, list):
        raise invalid(f"For 'properties/actions', {_show(actions)} is not an array.")
    if len(actions) > MAX_ACTIONS:
        raise invalid(f"No more than {MAX_ACTIONS} items are allowed; {len(actions)} were supplied.")
    for action in actions:
        if not isinstance(action, dict):
            raise invalid(f"For 'items', {_show(action)} is not an object.")
        for key, limit in (("label", 20), ("description", 40), ("identifier", 20)):
            value = action.get(key)
            if not isinstance(value, str):
                raise invalid(f'"{key}" wasn\'t supplied.')
            if len(value) > limit:
                raise invalid(f"Only {limit} characters are allowed; {len(value)} were supplied.")


def _timestamp(value: Any) -> float | None:
    """ISO 8601 as GitHub takes it (YYYY-MM-DDTHH:MM:SSZ)."""
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _show(value: Any) -> str:
    return json.dumps(value)[:80]


def _list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"
