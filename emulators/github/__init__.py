"""A GitHub REST API stand-in backed by real local git repositories, one module per resource family
(see emulator.py for how to add one), checked against recorded github.com answers by
tests/integration/test_github_conformance.py.

`repos_root/<owner>/<name>` is an ordinary git work tree; the stand-in serves what is committed there
(read with `git` subprocesses, cached by object sha because objects never change) in the shapes
api.github.com answers, so PyGithub runs unchanged against it. It also plays the GitHub App side:
JWT-authenticated installation tokens (carrying the permissions they were minted with), primary and
secondary rate limits, conditional requests (ETag / If-None-Match, a 304 is free), commit statuses,
pull requests, check runs and suites (with GitHub's limits), tarballs and webhook deliveries.

Admin API (in addition to the base's reset/calls/faults/latency):
  POST /_admin/repos                     {"owner", "name", "default_branch"?, "files"?: {path: text},
                                          "message"?} -> 201 {"path", "full_name", "default_branch", "head"}
  POST /_admin/repos/{owner}/{name}/commits
                                         {"files": {path: text | null (delete)}, "message"?, "branch"?,
                                          "from"?} -> 201 {"sha", "branch"}   (another branch than the
                                          default: committed without touching the work tree, a new
                                          one starting at `from`, the default branch by default)
  POST /_admin/repos/{owner}/{name}/pulls
                                         {"head", "base"?, "title"?, "body"?, "draft"?, "user"?} -> 201
                                         the pull request (it follows its head branch)
  PATCH /_admin/repos/{owner}/{name}/pulls/{number}
                                         {"state"?: "open"|"closed", "merged"?, "draft"?, "title"?}
  GET  /_admin/checks                    -> {"check_runs": [... with "annotations" and "actions"]}
  PUT  /_admin/repos/{owner}/{name}/branches/{branch}
                                         {"sha"} -> {"branch", "sha"}   (a force-push: any commit)
  PUT  /_admin/trees                     {"max_entries": n | null} -> recursive and plain tree answers
                                         with more entries come back `truncated: true` (GitHub: 100,000)
  POST /_admin/tokens/expire             {"token"?} -> {"expired": n}   (all installation tokens by default)
  GET  /_admin/ratelimit                 -> the rate-limit state
  PUT  /_admin/ratelimit                 {"remaining"?, "limit"?, "reset_in"?, "secondary"?: bool,
                                          "secondary_status"?: 403|429, "retry_after"?: s | null (none),
                                          "secondary_count"?: n} -> the rate-limit state
  POST /_admin/webhooks/deliver          {"url", "secret"?, "event": "push"|"ping"|"pull_request"|
                                          "check_run"|"check_suite", "owner"?, "name"?, "ref"?,
                                          "before"?, "after"?, "action"?, "number"? (pull_request),
                                          "check_run_id"? | "check_suite_id"? | "head_sha"?,
                                          "delivery_id"?, "hook_id"?, "payload"?}
                                         -> {"delivery_id", "status", "body", "payload", ...}
  GET  /_admin/webhooks/deliveries       -> {"deliveries": [...]}

Downloads GitHub serves from other hosts live here under `/_codeload/...` (tarball/zipball redirects)
and `/_raw/...` (contents `download_url`), authorised by a `?token=` in the link or an installation token.
"""

from emulators.github.common import gh_error
from emulators.github.emulator import GitHubEmulator
from emulators.github.gitrepo import GitRepo

__all__ = ["GitHubEmulator", "GitRepo", "gh_error"]
